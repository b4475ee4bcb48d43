//! The AArch64 architecture layer: everything that touches system registers,
//! barriers, TLBs and caches. Built only for the bare-metal target.

core::arch::global_asm!(include_str!("boot.S"));
core::arch::global_asm!(include_str!("vectors.S"));

pub mod cache;
pub mod el1;
pub mod firmware;
pub mod fp;
pub mod mmu;
pub mod pvmmu;
pub mod stage2;
pub mod timer;

/// Reads a system register by name.
#[macro_export]
macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a system register has no memory effects.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

/// Writes a system register by name.
#[macro_export]
macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the callers write registers that configure the monitor or
        // the guest state; each call site states why the value is right.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nostack)) };
    }};
}

/// Instruction synchronisation barrier.
#[inline(always)]
pub fn isb() {
    // SAFETY: a barrier has no other effect.
    unsafe { core::arch::asm!("isb", options(nostack)) };
}

/// Full-system data synchronisation barrier.
#[inline(always)]
pub fn dsb_sy() {
    // SAFETY: a barrier has no other effect.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Inner-shareable data synchronisation barrier.
#[inline(always)]
pub fn dsb_ish() {
    // SAFETY: a barrier has no other effect.
    unsafe { core::arch::asm!("dsb ish", options(nostack)) };
}

/// Waits for an interrupt (the monitor keeps IRQs masked; a pending one
/// still wakes it).
#[inline(always)]
pub fn wfi() {
    // SAFETY: waiting has no memory effects.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
}

/// This CPU's affinity (MPIDR_EL1 Aff3..Aff0, without the flag bits).
pub fn mpidr() -> u64 {
    mrs!("mpidr_el1") & 0xff_00ff_ffff
}

/// Signals an event to every CPU (wakes `wfe`).
#[inline(always)]
pub fn sev() {
    // SAFETY: an event signal has no memory effects.
    unsafe { core::arch::asm!("dsb sy", "sev", options(nostack)) };
}

extern "C" {
    /// Where a secondary CPU starts (boot.S): MMU off, EL2, any x0.
    pub fn secondary_start();
    /// MPIDR affinity of each CPU index, read by `secondary_start` with the
    /// MMU off (clean it to the point of coherency after writing).
    pub static mut cpu_mpidr: [u64; MAX_CPUS];
    /// Per-CPU parking slots of boot.S's `park` loop (cores that a loader
    /// started at the image's entry together with the boot core).
    pub static mut secondary_entry: [u64; MAX_CPUS];
}

/// The current exception level.
pub fn current_el() -> u64 {
    (mrs!("CurrentEL") >> 2) & 3
}

extern "C" {
    /// Resumes the vCPU whose registers TPIDR_EL2 points at (vectors.S).
    pub fn guest_restore() -> !;
}

/// Linker-script symbols bounding the monitor image.
pub fn image_range() -> (u64, u64, u64) {
    extern "C" {
        static __image_start: u8;
        static __text_end: u8;
        static __image_end: u8;
    }
    (
        core::ptr::addr_of!(__image_start) as u64,
        core::ptr::addr_of!(__text_end) as u64,
        core::ptr::addr_of!(__image_end) as u64,
    )
}

/// Stack of each CPU: an unmapped guard page, then the stack (must match
/// STACK_SIZE and GUARD_SIZE in boot.S).
pub const STACK_SIZE: u64 = 0x2_0000;
const GUARD_SIZE: u64 = 0x1000;
/// Most CPUs the monitor runs on.
pub const MAX_CPUS: usize = 8;

fn stacks_base() -> u64 {
    extern "C" {
        static boot_stacks: u8;
    }
    core::ptr::addr_of!(boot_stacks) as u64
}

/// Index of the CPU running this code, from its stack pointer (each CPU
/// runs the monitor on its own stack, `stack_top(i)`).
#[inline(always)]
pub fn stack_index() -> usize {
    let sp: u64;
    // SAFETY: reading the stack pointer has no effects.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    // A full stack's pointer is its top, `stack_top(i)`, which is also the
    // bottom of the next slot: count it as CPU i's (hence the - 1).
    (sp.wrapping_sub(stacks_base() + 1) / (GUARD_SIZE + STACK_SIZE)) as usize
}

/// Top of the boot stack of CPU `i`.
pub fn stack_top(i: usize) -> u64 {
    stacks_base() + (i as u64 + 1) * (GUARD_SIZE + STACK_SIZE)
}

/// The guard pages below the CPUs' stacks, which the EL2 map leaves out.
pub fn stack_guards() -> impl Iterator<Item = u64> {
    (0..MAX_CPUS as u64).map(|i| stacks_base() + i * (GUARD_SIZE + STACK_SIZE))
}

/// Copies physical memory at `src` (identity-mapped, or with the MMU off)
/// into `dst`, with plain loads: it may read address 0, which no Rust
/// reference may point at.
pub fn copy_from_phys(src: u64, dst: &mut [u8]) {
    for (i, d) in dst.iter_mut().enumerate() {
        let v: u32;
        // SAFETY: a byte load from RAM the caller names; no Rust reference
        // to the source is formed.
        unsafe {
            core::arch::asm!("ldrb {0:w}, [{1}]", out(reg) v, in(reg) src + i as u64, options(nostack, readonly))
        };
        *d = v as u8;
    }
}
