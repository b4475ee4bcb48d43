//! Cache maintenance.

const LINE: u64 = 64;

/// Cleans `[start, start+len)` to the point of unification and invalidates
/// the instruction cache, so that code written through the data side can be
/// executed (a loaded guest kernel).
pub fn sync_icache(start: u64, len: u64) {
    let mut a = start & !(LINE - 1);
    while a < start + len {
        // SAFETY: cache maintenance by VA on mapped memory has no other effect.
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) a, options(nostack)) };
        a += LINE;
    }
    // SAFETY: barriers and a full I-cache invalidate have no other effect.
    unsafe { core::arch::asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Cleans `[start, start+len)` to the point of coherency, so that a CPU
/// running with its MMU and caches off (a secondary CPU starting up) reads
/// what this one wrote.
pub fn clean_to_poc(start: u64, len: u64) {
    let mut a = start & !(LINE - 1);
    while a < start + len {
        // SAFETY: cache maintenance by VA on mapped memory has no other effect.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack)) };
        a += LINE;
    }
    // SAFETY: a barrier has no other effect.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}
