//! `grant_table_op`: grant tables, how a domain lets another one map or
//! copy one of its pages (Xen's `public/grant_table.h`, version 1).
//!
//! The *granting* domain owns a table of [`GrantEntryV1`] in frames the
//! monitor provides: it asks for them with [`GNTTABOP_SETUP_TABLE`] (or
//! implicitly by mapping table frame `i` with `memory_op(
//! XENMEM_add_to_physmap)`, space
//! [`XENMAPSPACE_GRANT_TABLE`](crate::memory::XENMAPSPACE_GRANT_TABLE),
//! idx `i`), maps them into the window at
//! [`GUEST_GNTTAB_BASE`](crate::memory::GUEST_GNTTAB_BASE), and writes
//! entries there. Entry `r` (the *grant reference*) lets domain `domid` map
//! or copy the granter's own RAM frame `frame` (a guest frame number,
//! guest-physical address / 4096), read-only if [`GTF_READONLY`] is set.
//!
//! # Granting and revoking (granter)
//!
//! 1. write `domid` and `frame`; 2. a write barrier; 3. write `flags =
//!    GTF_PERMIT_ACCESS [| GTF_READONLY]`. [`GrantEntryV1::grant`] does this.
//! 2. to revoke, compare-and-swap `flags` to 0, which fails while the
//!    monitor has [`GTF_READING`]/[`GTF_WRITING`] set (the grant is mapped
//!    by the grantee): [`GrantEntryV1::try_revoke`]. A mapped grant cannot
//!    be revoked; its frame stays in use until the grantee unmaps it, even
//!    if the granter is destroyed.
//!
//! # Mapping (grantee)
//!
//! [`GnttabMapGrantRef`] with `flags = GNTMAP_HOST_MAP [| GNTMAP_READONLY]`,
//! `ref`, `dom` = the granter, and `host_addr` = a free page-aligned
//! guest-physical address in the grant-mapping window
//! [`GUEST_GRANT_MAP_BASE`](crate::memory::GUEST_GRANT_MAP_BASE)
//! (on Arm `host_addr` is an IPA, as in Xen). On success `status` is
//! [`GNTST_OKAY`] and `handle` is what [`GnttabUnmapGrantRef`] needs.
//! The unmap removes the stage-2 entry and flushes the TLBs before it
//! returns.
//!
//! The call is `grant_table_op(cmd, &ops[0], count)`: `x0` = command, `x1`
//! = address of an array of `count` structs (at most [`MAX_BATCH`]), `x2`
//! = `count`. It returns 0 when every op was *attempted* (each op's own
//! result is its `status`, a `GNTST_*` value) and `-errno` only when the
//! array could not be read or written (`EFAULT`), the command is unknown
//! (`ENOSYS`) or `count` is too large (`EINVAL`).
//!
//! ```ignore
//! use hypercall_abi::{grant_table as gt, gnttab_guest as g};
//! // granter: share frame `gfn` with domain 2, read-write, as ref 8
//! table[8].grant(2, gfn as u32, false);
//! // grantee: map it at the first page of the mapping window
//! let (handle, _) = g::map_grant_ref(1, 8, GUEST_GRANT_MAP_BASE, false)?;
//! g::unmap_grant_ref(GUEST_GRANT_MAP_BASE, handle)?;
//! ```

use core::sync::atomic::{fence, AtomicU16, AtomicU32, Ordering};

/// `grant_ref_t`.
pub type GrantRef = u32;
/// `grant_handle_t`.
pub type GrantHandle = u32;

/// `GNTTABOP_map_grant_ref`: [`GnttabMapGrantRef`].
pub const GNTTABOP_MAP_GRANT_REF: u64 = 0;
/// `GNTTABOP_unmap_grant_ref`: [`GnttabUnmapGrantRef`].
pub const GNTTABOP_UNMAP_GRANT_REF: u64 = 1;
/// `GNTTABOP_setup_table`: [`GnttabSetupTable`].
pub const GNTTABOP_SETUP_TABLE: u64 = 2;
/// `GNTTABOP_dump_table` (not implemented).
pub const GNTTABOP_DUMP_TABLE: u64 = 3;
/// `GNTTABOP_transfer` (x86 PV; not implemented).
pub const GNTTABOP_TRANSFER: u64 = 4;
/// `GNTTABOP_copy`: [`GnttabCopy`].
pub const GNTTABOP_COPY: u64 = 5;
/// `GNTTABOP_query_size`: [`GnttabQuerySize`].
pub const GNTTABOP_QUERY_SIZE: u64 = 6;

/// Ops per `grant_table_op` call.
pub const MAX_BATCH: u64 = 64;
/// Entries per grant-table frame (v1: 4096 / 8).
pub const ENTRIES_PER_FRAME: u32 = 512;
/// Grant-table frames per domain on this monitor (`max_nr_frames`).
pub const MAX_GRANT_FRAMES: u32 = 4;
/// References 0..8 are reserved by convention (0: console, 1: store).
pub const NR_RESERVED_ENTRIES: u32 = 8;

/// `GTF_invalid`: the entry grants nothing.
pub const GTF_INVALID: u16 = 0;
/// `GTF_permit_access`: `domid` may map or copy `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_accept_transfer` (not supported).
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// `GTF_transitive` (v2 only; not supported).
pub const GTF_TRANSITIVE: u16 = 3;
/// Mask of the type bits.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`: read-only access only (set by the granter).
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: the monitor has the frame mapped or in use for reading.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: the monitor has the frame mapped writable.
pub const GTF_WRITING: u16 = 1 << 4;
/// `GTF_sub_page`: sub-page grant (v2; not supported).
pub const GTF_SUB_PAGE: u16 = 1 << 8;

/// `GNTMAP_device_map` (no IOMMU here: refused).
pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
/// `GNTMAP_host_map`: map at `host_addr` (required).
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GNTMAP_readonly`: map read-only.
pub const GNTMAP_READONLY: u32 = 1 << 2;
/// `GNTMAP_application_map` (x86 PV; refused).
pub const GNTMAP_APPLICATION_MAP: u32 = 1 << 3;
/// `GNTMAP_contains_pte` (x86 PV; refused).
pub const GNTMAP_CONTAINS_PTE: u32 = 1 << 4;

/// `GNTST_okay`.
pub const GNTST_OKAY: i16 = 0;
/// `GNTST_general_error`.
pub const GNTST_GENERAL_ERROR: i16 = -1;
/// `GNTST_bad_domain`: no such domain.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// `GNTST_bad_gntref`: reference past the table, or not a valid grant.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// `GNTST_bad_handle`: no such mapping handle.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// `GNTST_bad_virt_addr`: `host_addr` unaligned, outside the window, or in use.
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
/// `GNTST_bad_dev_addr`.
pub const GNTST_BAD_DEV_ADDR: i16 = -6;
/// `GNTST_no_device_space`.
pub const GNTST_NO_DEVICE_SPACE: i16 = -7;
/// `GNTST_permission_denied`: not granted to the caller, or a writable
/// use of a read-only grant.
pub const GNTST_PERMISSION_DENIED: i16 = -8;
/// `GNTST_bad_page`: the granted frame is not the granter's own RAM.
pub const GNTST_BAD_PAGE: i16 = -9;
/// `GNTST_bad_copy_arg`: a copy crosses a page boundary.
pub const GNTST_BAD_COPY_ARG: i16 = -10;
/// `GNTST_address_too_big`.
pub const GNTST_ADDRESS_TOO_BIG: i16 = -11;
/// `GNTST_eagain`: try again.
pub const GNTST_EAGAIN: i16 = -12;
/// `GNTST_no_space`: no room (e.g. the table cannot grow further).
pub const GNTST_NO_SPACE: i16 = -13;

/// Xen's name for a `GNTST_*` value (for logs).
pub const fn status_name(st: i16) -> &'static str {
    match st {
        GNTST_OKAY => "okay",
        GNTST_GENERAL_ERROR => "general_error",
        GNTST_BAD_DOMAIN => "bad_domain",
        GNTST_BAD_GNTREF => "bad_gntref",
        GNTST_BAD_HANDLE => "bad_handle",
        GNTST_BAD_VIRT_ADDR => "bad_virt_addr",
        GNTST_BAD_DEV_ADDR => "bad_dev_addr",
        GNTST_NO_DEVICE_SPACE => "no_device_space",
        GNTST_PERMISSION_DENIED => "permission_denied",
        GNTST_BAD_PAGE => "bad_page",
        GNTST_BAD_COPY_ARG => "bad_copy_arg",
        GNTST_ADDRESS_TOO_BIG => "address_too_big",
        GNTST_EAGAIN => "eagain",
        GNTST_NO_SPACE => "no_space",
        _ => "unknown",
    }
}

/// `struct grant_entry_v1` (8 bytes), as atomics: both the granter and the
/// monitor update `flags`.
#[repr(C)]
#[derive(Debug)]
pub struct GrantEntryV1 {
    /// `GTF_*`.
    pub flags: AtomicU16,
    /// The domain allowed to use the grant.
    pub domid: AtomicU16,
    /// The granted guest frame number (of the granter's RAM).
    pub frame: AtomicU32,
}

impl GrantEntryV1 {
    /// An invalid entry.
    pub const fn new() -> GrantEntryV1 {
        GrantEntryV1 {
            flags: AtomicU16::new(0),
            domid: AtomicU16::new(0),
            frame: AtomicU32::new(0),
        }
    }

    /// Granter: grant `frame` to `domid` (read-only if `readonly`), in the
    /// order the protocol requires: fields, write barrier, flags.
    pub fn grant(&self, domid: u16, frame: u32, readonly: bool) {
        self.domid.store(domid, Ordering::Relaxed);
        self.frame.store(frame, Ordering::Relaxed);
        fence(Ordering::Release);
        let ro = if readonly { GTF_READONLY } else { 0 };
        self.flags.store(GTF_PERMIT_ACCESS | ro, Ordering::Release);
    }

    /// Granter: revoke the grant unless it is in use. Returns `false`
    /// (and changes nothing) while the monitor has it mapped.
    pub fn try_revoke(&self) -> bool {
        let mut f = self.flags.load(Ordering::Acquire);
        loop {
            if f & (GTF_READING | GTF_WRITING) != 0 {
                return false;
            }
            match self
                .flags
                .compare_exchange(f, 0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => f = now,
            }
        }
    }
}

impl Default for GrantEntryV1 {
    fn default() -> Self {
        Self::new()
    }
}

/// One grant-table frame: 512 v1 entries.
pub type GrantFrameV1 = [GrantEntryV1; ENTRIES_PER_FRAME as usize];

/// `struct gnttab_map_grant_ref` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabMapGrantRef {
    /// In: where to map (a guest-physical address on Arm).
    pub host_addr: u64,
    /// In: `GNTMAP_*`.
    pub flags: u32,
    /// In: the grant reference.
    pub r#ref: GrantRef,
    /// In: the granting domain.
    pub dom: u16,
    /// Out: `GNTST_*`.
    pub status: i16,
    /// Out: the handle for unmapping.
    pub handle: GrantHandle,
    /// Out: bus address for device maps (0 here).
    pub dev_bus_addr: u64,
}

/// `struct gnttab_unmap_grant_ref` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabUnmapGrantRef {
    /// In: the address the grant was mapped at (0: any).
    pub host_addr: u64,
    /// In: device bus address (ignored).
    pub dev_bus_addr: u64,
    /// In: the handle [`GnttabMapGrantRef`] returned.
    pub handle: GrantHandle,
    /// Out: `GNTST_*`.
    pub status: i16,
}

/// `struct gnttab_setup_table` (24 bytes): grow the caller's table to
/// `nr_frames` and write the guest frame number each table frame is
/// mapped at (or [`INVALID_GFN`] if not mapped yet) to `frame_list`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSetupTable {
    /// In: [`DOMID_SELF`](crate::event_channel::DOMID_SELF) or the caller.
    pub dom: u16,
    /// In: frames wanted (1..=[`MAX_GRANT_FRAMES`]).
    pub nr_frames: u32,
    /// Out: `GNTST_*`.
    pub status: i16,
    /// In: guest address of an array of `nr_frames` `u64` (`xen_pfn_t`).
    pub frame_list: u64,
}

/// `INVALID_GFN` in a [`GnttabSetupTable`] frame list: not mapped yet.
pub const INVALID_GFN: u64 = u64::MAX;

/// `struct gnttab_query_size` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabQuerySize {
    /// In: [`DOMID_SELF`](crate::event_channel::DOMID_SELF) or the caller.
    pub dom: u16,
    /// Out: current frames.
    pub nr_frames: u32,
    /// Out: maximum frames.
    pub max_nr_frames: u32,
    /// Out: `GNTST_*`.
    pub status: i16,
}

/// `GNTCOPY_source_gref`: the source is a grant reference.
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// `GNTCOPY_dest_gref`: the destination is a grant reference.
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

/// `struct gnttab_copy_ptr` (16 bytes): one side of a copy.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopyPtr {
    /// A grant reference (with `GNTCOPY_*_gref`) or the caller's own
    /// guest frame number.
    pub u: u64,
    /// The domain: the granter for a reference, the caller (or
    /// [`DOMID_SELF`](crate::event_channel::DOMID_SELF)) for a frame.
    pub domid: u16,
    /// Byte offset in the page.
    pub offset: u16,
}

/// `struct gnttab_copy` (40 bytes): copy `len` bytes; neither side may
/// cross its page.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopy {
    /// In: the source.
    pub source: GnttabCopyPtr,
    /// In: the destination.
    pub dest: GnttabCopyPtr,
    /// In: bytes.
    pub len: u16,
    /// In: `GNTCOPY_*`.
    pub flags: u16,
    /// Out: `GNTST_*`.
    pub status: i16,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<GrantEntryV1>() == 8);
    assert!(size_of::<GrantFrameV1>() == 4096);
    assert!(size_of::<GnttabMapGrantRef>() == 32);
    assert!(offset_of!(GnttabMapGrantRef, dom) == 16);
    assert!(offset_of!(GnttabMapGrantRef, status) == 18);
    assert!(offset_of!(GnttabMapGrantRef, handle) == 20);
    assert!(size_of::<GnttabUnmapGrantRef>() == 24);
    assert!(offset_of!(GnttabUnmapGrantRef, status) == 20);
    assert!(size_of::<GnttabSetupTable>() == 24);
    assert!(offset_of!(GnttabSetupTable, frame_list) == 16);
    assert!(size_of::<GnttabQuerySize>() == 16);
    assert!(size_of::<GnttabCopyPtr>() == 16);
    assert!(size_of::<GnttabCopy>() == 40);
    assert!(offset_of!(GnttabCopy, status) == 36);
};
