//! `xen_version` (hypercall [`nr::XEN_VERSION`]): version and feature
//! queries.
//!
//! | register | value |
//! |---|---|
//! | `x16` | [`nr::XEN_VERSION`] (17) |
//! | `x0`  | sub-operation `XENVER_*` |
//! | `x1`  | guest virtual address of the output buffer/struct, or 0 |
//!
//! | sub-op | `x1` points to | result in `x0` |
//! |---|---|---|
//! | [`XENVER_VERSION`] | nothing (0) | `major << 16 \| minor`, see below |
//! | [`XENVER_EXTRAVERSION`] | `[u8; XEN_EXTRAVERSION_LEN]` | 0 |
//! | [`XENVER_COMPILE_INFO`] | [`XenCompileInfo`] | 0 |
//! | [`XENVER_CAPABILITIES`] | `[u8; XEN_CAPABILITIES_LEN]` | 0 |
//! | [`XENVER_CHANGESET`] | `[u8; XEN_CHANGESET_LEN]` | 0 |
//! | [`XENVER_PLATFORM_PARAMETERS`] | [`XenPlatformParameters`] | 0 |
//! | [`XENVER_GET_FEATURES`] | [`XenFeatureInfo`] (in: `submap_idx`, out: `submap`) | 0 |
//! | [`XENVER_PAGESIZE`] | nothing (0) | page size in bytes (4096) |
//! | [`XENVER_GUEST_HANDLE`] | `[u8; XEN_DOMAIN_HANDLE_LEN]` | 0 |
//! | [`XENVER_COMMANDLINE`] | `[u8; XEN_COMMANDLINE_LEN]` | 0 |
//! | [`XENVER_BUILD_ID`] | [`XenBuildId`] header + buffer | length of the id |
//!
//! Strings are NUL-terminated inside their fixed-size buffer, except a
//! string that fills the buffer completely; [`until_nul`] trims either
//! form. The monitor writes the whole buffer (zero-padded). An unwritable
//! buffer gives `-EFAULT`; an unknown sub-op `-ENOSYS`.
//!
//! # What `XENVER_VERSION` reports
//!
//! This monitor reports the version of **this ABI**, i.e.
//! `encode_version(ABI_VERSION_MAJOR, ABI_VERSION_MINOR)` of the ABI it
//! implements, not a Xen release number. A guest checks it with
//! [`guest_compatible`]. See the crate documentation for the versioning
//! rules. `XENVER_EXTRAVERSION` carries a free-form monitor identification
//! such as `"-microhyp"`.

#[allow(unused_imports)] // used by intra-doc links
use crate::nr;
use crate::{ABI_VERSION_MAJOR, ABI_VERSION_MINOR};
use core::mem::{align_of, size_of};

/// `XENVER_version`: returns `major << 16 | minor` in `x0`.
pub const XENVER_VERSION: u64 = 0;
/// `XENVER_extraversion`: fills a `[u8; XEN_EXTRAVERSION_LEN]` string.
pub const XENVER_EXTRAVERSION: u64 = 1;
/// `XENVER_compile_info`: fills a [`XenCompileInfo`].
pub const XENVER_COMPILE_INFO: u64 = 2;
/// `XENVER_capabilities`: fills a `[u8; XEN_CAPABILITIES_LEN]`
/// space-separated list of supported guest types.
pub const XENVER_CAPABILITIES: u64 = 3;
/// `XENVER_changeset`: fills a `[u8; XEN_CHANGESET_LEN]` source revision.
pub const XENVER_CHANGESET: u64 = 4;
/// `XENVER_platform_parameters`: fills a [`XenPlatformParameters`].
pub const XENVER_PLATFORM_PARAMETERS: u64 = 5;
/// `XENVER_get_features`: fills `submap` of a [`XenFeatureInfo`].
pub const XENVER_GET_FEATURES: u64 = 6;
/// `XENVER_pagesize`: returns the ABI page size (always 4096) in `x0`.
pub const XENVER_PAGESIZE: u64 = 7;
/// `XENVER_guest_handle`: fills the domain's 16-byte handle (UUID).
pub const XENVER_GUEST_HANDLE: u64 = 8;
/// `XENVER_commandline`: fills a `[u8; XEN_COMMANDLINE_LEN]` monitor
/// command line.
pub const XENVER_COMMANDLINE: u64 = 9;
/// `XENVER_build_id`: fills a [`XenBuildId`]; returns the id length.
pub const XENVER_BUILD_ID: u64 = 10;

/// Size of the `XENVER_extraversion` buffer.
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// Size of the `XENVER_capabilities` buffer.
pub const XEN_CAPABILITIES_LEN: usize = 1024;
/// Size of the `XENVER_changeset` buffer.
pub const XEN_CHANGESET_LEN: usize = 64;
/// Size of the `XENVER_commandline` buffer.
pub const XEN_COMMANDLINE_LEN: usize = 1024;
/// Size of the `XENVER_guest_handle` buffer (a domain UUID).
pub const XEN_DOMAIN_HANDLE_LEN: usize = 16;
/// Size of [`XenCompileInfo`].
pub const XEN_COMPILE_INFO_LEN: usize = 144;
/// Number of 32-bit feature submaps (`XENFEAT_NR_SUBMAPS`).
pub const XENFEAT_NR_SUBMAPS: u32 = 1;
/// The page size of the ABI (all frame numbers count 4 KiB frames).
pub const XEN_PAGE_SIZE: u64 = 4096;

/// Feature bit: `XENFEAT_writable_page_tables`.
pub const XENFEAT_WRITABLE_PAGE_TABLES: u32 = 0;
/// Feature bit: `XENFEAT_writable_descriptor_tables`.
pub const XENFEAT_WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
/// Feature bit: `XENFEAT_auto_translated_physmap`.
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
/// Feature bit: `XENFEAT_supervisor_mode_kernel`.
pub const XENFEAT_SUPERVISOR_MODE_KERNEL: u32 = 3;
/// Feature bit: `XENFEAT_pae_pgdir_above_4gb`.
pub const XENFEAT_PAE_PGDIR_ABOVE_4GB: u32 = 4;
/// Feature bit: `XENFEAT_mmu_pt_update_preserve_ad`.
pub const XENFEAT_MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
/// Feature bit: `XENFEAT_highmem_assist`.
pub const XENFEAT_HIGHMEM_ASSIST: u32 = 6;
/// Feature bit: `XENFEAT_gnttab_map_avail_bits`.
pub const XENFEAT_GNTTAB_MAP_AVAIL_BITS: u32 = 7;
/// Feature bit: `XENFEAT_hvm_callback_vector`.
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// Feature bit: `XENFEAT_hvm_safe_pvclock`.
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;
/// Feature bit: `XENFEAT_hvm_pirqs`.
pub const XENFEAT_HVM_PIRQS: u32 = 10;
/// Feature bit: `XENFEAT_dom0` (the caller is the control domain).
pub const XENFEAT_DOM0: u32 = 11;

/// Argument of [`XENVER_GET_FEATURES`] (`struct xen_feature_info`, 8 bytes).
///
/// The guest sets `submap_idx`; the monitor fills `submap`, in which bit
/// `n` is feature `32 * submap_idx + n` (see the `XENFEAT_*` constants).
/// `submap_idx >= XENFEAT_NR_SUBMAPS` gives `-EINVAL`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct XenFeatureInfo {
    /// In: which 32-bit submap to read.
    pub submap_idx: u32,
    /// Out: the feature bits of that submap.
    pub submap: u32,
}

/// Output of [`XENVER_COMPILE_INFO`] (`struct xen_compile_info`, 144 bytes).
/// All fields are NUL-padded strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct XenCompileInfo {
    /// Compiler identification.
    pub compiler: [u8; 64],
    /// Who built the monitor.
    pub compile_by: [u8; 16],
    /// Build host domain.
    pub compile_domain: [u8; 32],
    /// Build date.
    pub compile_date: [u8; 32],
}

impl Default for XenCompileInfo {
    fn default() -> Self {
        XenCompileInfo {
            compiler: [0; 64],
            compile_by: [0; 16],
            compile_domain: [0; 32],
            compile_date: [0; 32],
        }
    }
}

/// Output of [`XENVER_PLATFORM_PARAMETERS`]
/// (`struct xen_platform_parameters`, 8 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct XenPlatformParameters {
    /// Lowest virtual address reserved by the monitor in the guest's
    /// address space (0 when none is reserved, as with a stage-2-only
    /// monitor).
    pub virt_start: u64,
}

/// Header of the [`XENVER_BUILD_ID`] argument (`struct xen_build_id`,
/// 4 bytes followed by the buffer).
///
/// In: `len` = size of the buffer that immediately follows the header.
/// Out: the id bytes are written after the header and the call returns
/// their count; `-ENOBUFS` if `len` is too small, `-ENODATA` if the
/// monitor has no build id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct XenBuildId {
    /// Size in bytes of the buffer following this header.
    pub len: u32,
}

const _: () = {
    assert!(size_of::<XenFeatureInfo>() == 8 && align_of::<XenFeatureInfo>() == 4);
    assert!(size_of::<XenCompileInfo>() == XEN_COMPILE_INFO_LEN);
    assert!(size_of::<XenPlatformParameters>() == 8);
    assert!(size_of::<XenBuildId>() == 4);
};

/// Encode a version as `XENVER_VERSION` returns it: `major << 16 | minor`.
pub const fn encode_version(major: u16, minor: u16) -> u32 {
    ((major as u32) << 16) | minor as u32
}

/// Split a `XENVER_VERSION` result into `(major, minor)`.
pub const fn decode_version(v: u32) -> (u16, u16) {
    ((v >> 16) as u16, v as u16)
}

/// The value a monitor implementing this crate's ABI returns for
/// `XENVER_VERSION`.
pub const ABI_VERSION: u32 = encode_version(ABI_VERSION_MAJOR, ABI_VERSION_MINOR);

/// Whether a monitor reporting `reported` (from `XENVER_VERSION`) implements
/// everything a guest built against this crate may use: the same major
/// version and a minor version at least this crate's.
///
/// This is the conservative check. A guest that uses only older features
/// may accept a smaller minor version.
// While ABI_VERSION_MINOR is 0 the minor comparison is always true.
#[allow(clippy::absurd_extreme_comparisons)]
pub const fn guest_compatible(reported: u32) -> bool {
    let (major, minor) = decode_version(reported);
    major == ABI_VERSION_MAJOR && minor >= ABI_VERSION_MINOR
}

/// The bytes of a NUL-padded string buffer before its first NUL (the whole
/// buffer if it has none).
pub fn until_nul(buf: &[u8]) -> &[u8] {
    match buf.iter().position(|&b| b == 0) {
        Some(n) => &buf[..n],
        None => buf,
    }
}
