//! Grant references and shareable pages for the front ends.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use hypercall_abi::errno::Errno;
use hypercall_abi::gnttab_guest as gt;
use hypercall_abi::grant_table::{
    GrantFrameV1, GrantRef, ENTRIES_PER_FRAME, GTF_INVALID, GTF_TYPE_MASK, NR_RESERVED_ENTRIES,
};
use hypercall_abi::memory::GUEST_GNTTAB_BASE;

/// A value on its own 4 KiB page (what can be granted).
#[repr(C, align(4096))]
pub struct Page<T>(pub T);

/// Allocates `v` on a fresh page that lives as long as the kernel.
pub fn leak_page<T>(v: T) -> &'static mut Page<T> {
    Box::leak(Box::new(Page(v)))
}

/// The guest frame number of a page (the MMU is off: addresses are
/// guest-physical).
pub fn gfn_of<T>(p: &Page<T>) -> u32 {
    (p as *const Page<T> as usize >> 12) as u32
}

/// The guest's grant table (frame 0) and the references in use.
pub struct Grants {
    table: &'static GrantFrameV1,
    free: Vec<GrantRef>,
}

impl Grants {
    /// Maps grant-table frame 0 and makes references 8..512 available.
    pub fn init() -> Result<Grants, Errno> {
        let table = gt::map_table_frame(0, GUEST_GNTTAB_BASE >> 12)?;
        let free = (NR_RESERVED_ENTRIES..ENTRIES_PER_FRAME).rev().collect();
        Ok(Grants { table, free })
    }

    /// Grants page `gfn` to `dom` at reserved reference `r` (0: console,
    /// 1: store).
    pub fn grant_reserved(&self, r: GrantRef, dom: u16, gfn: u32) {
        self.table[r as usize].grant(dom, gfn, false);
    }

    /// Grants page `gfn` to `dom`; `None` when all references are used.
    pub fn grant(&mut self, dom: u16, gfn: u32, readonly: bool) -> Option<GrantRef> {
        let r = self.free.pop()?;
        self.table[r as usize].grant(dom, gfn, readonly);
        Some(r)
    }

    /// Revokes `r` (false while the peer still has it mapped: try later).
    /// A reference that is not granted (never, or already revoked) is
    /// left as it is: revoking twice frees it once.
    pub fn revoke(&mut self, r: GrantRef) -> bool {
        let Some(e) = self.table.get(r as usize) else {
            return false;
        };
        if e.flags.load(Ordering::Acquire) & GTF_TYPE_MASK == GTF_INVALID {
            return true;
        }
        let ok = e.try_revoke();
        if ok && r >= NR_RESERVED_ENTRIES {
            self.free.push(r);
        }
        ok
    }
}
