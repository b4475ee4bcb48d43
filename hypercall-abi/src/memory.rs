//! `memory_op`: the physmap operations used to place the monitor's pages
//! (the shared-info page, grant-table frames) in a guest's physical
//! address space (Xen's `public/memory.h`), and the guest-physical windows
//! this monitor reserves for them.
//!
//! # Guest-physical layout
//!
//! | window | base | size | what |
//! |---|---|---|---|
//! | grant-map window | [`GUEST_GRANT_MAP_BASE`] | [`GUEST_GRANT_MAP_SIZE`] | `host_addr` of grant mappings of *other* domains' pages |
//! | grant-table window | [`GUEST_GNTTAB_BASE`] | [`GUEST_GNTTAB_SIZE`] | the domain's own grant-table frames (as Xen on Arm's `GUEST_GNTTAB_BASE`, also in the device tree's `/hypervisor` `reg`) |
//! | magic window | [`GUEST_MAGIC_BASE`] | [`GUEST_MAGIC_SIZE`] | the shared-info page (Xen's `GUEST_MAGIC_BASE`) |
//! | RAM | `0x4000_0000` | per domain | the domain's own memory |
//!
//! `XENMEM_add_to_physmap` places the page at `gpfn`, which must be a page
//! of the window for its space (`-EINVAL` otherwise) that holds nothing
//! else (`-EBUSY`). Placing a page that is already placed moves it (the
//! old address is unmapped and the TLB flushed). Unlike Xen, which lets a
//! guest replace one of its RAM pages, this monitor keeps RAM and the
//! monitor's pages apart: the monitor never has to split a RAM block.
//!
//! ```ignore
//! use hypercall_abi::{memory::*, evtchn_guest};
//! evtchn_guest::map_shared_info(GUEST_MAGIC_BASE >> 12)?;
//! ```

/// `XENMEM_add_to_physmap`: [`XenAddToPhysmap`].
pub const XENMEM_ADD_TO_PHYSMAP: u64 = 7;

/// `XENMAPSPACE_shared_info`: `idx` must be 0.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`: `idx` is the grant-table frame (the table
/// grows to `idx + 1` frames if needed); bit 31 (status frames of v2)
/// is refused.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `XENMAPSPACE_gmfn` (not implemented).
pub const XENMAPSPACE_GMFN: u32 = 2;
/// `XENMAPSPACE_gmfn_range` (not implemented).
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
/// `XENMAPSPACE_gmfn_foreign` (not implemented).
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;
/// `XENMAPSPACE_dev_mmio` (not implemented).
pub const XENMAPSPACE_DEV_MMIO: u32 = 5;

/// `XENMAPIDX_grant_table_status`: v2 status frames (refused).
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 1 << 31;

/// `struct xen_add_to_physmap` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenAddToPhysmap {
    /// [`DOMID_SELF`](crate::event_channel::DOMID_SELF) or the caller's id.
    pub domid: u16,
    /// Pages for `gmfn_range` (ignored otherwise).
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index in the space.
    pub idx: u64,
    /// Guest frame number to place the page at.
    pub gpfn: u64,
}

const _: () = assert!(core::mem::size_of::<XenAddToPhysmap>() == 24);

/// Base of the grant-mapping window.
pub const GUEST_GRANT_MAP_BASE: u64 = 0x3000_0000;
/// Size of the grant-mapping window (128 MiB: 32768 mappings).
pub const GUEST_GRANT_MAP_SIZE: u64 = 0x800_0000;
/// Base of the grant-table window (Xen's `GUEST_GNTTAB_BASE`).
pub const GUEST_GNTTAB_BASE: u64 = 0x3800_0000;
/// Size of the grant-table window.
pub const GUEST_GNTTAB_SIZE: u64 = 0x100_0000;
/// Base of the magic-page window (Xen's `GUEST_MAGIC_BASE`).
pub const GUEST_MAGIC_BASE: u64 = 0x3900_0000;
/// Size of the magic-page window.
pub const GUEST_MAGIC_SIZE: u64 = 0x100_0000;

/// The window `gpfn` must lie in for `space`, as `(base, size)` in bytes,
/// or `None` for a space this monitor does not implement.
pub const fn window(space: u32) -> Option<(u64, u64)> {
    match space {
        XENMAPSPACE_SHARED_INFO => Some((GUEST_MAGIC_BASE, GUEST_MAGIC_SIZE)),
        XENMAPSPACE_GRANT_TABLE => Some((GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE)),
        _ => None,
    }
}
