//! Calls into firmware and the emulator: PSCI through SMC, semihosting exit.

/// PSCI SYSTEM_OFF.
pub const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

/// PSCI CPU_ON (64-bit).
pub const PSCI_CPU_ON: u64 = 0xC400_0003;

/// An SMCCC call through `smc #0`.
pub fn smc(fid: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    let r: u64;
    // SAFETY: a firmware call with SMCCC conventions; x0-x3 are results or
    // clobbered.
    unsafe {
        core::arch::asm!("smc #0", inout("x0") fid => r, inout("x1") a1 => _, inout("x2") a2 => _,
            inout("x3") a3 => _, options(nostack));
    }
    r
}

/// An SMCCC call through `hvc #0` (firmware at EL2 is not ours; unused at EL2).
/// Exits QEMU with `code` through semihosting (only when QEMU runs with
/// `-semihosting`; otherwise this traps as an undefined instruction).
pub fn semihosting_exit(code: u32) {
    const SYS_EXIT: u64 = 0x18;
    const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as u64];
    // SAFETY: semihosting reads the two-word block passed in x1.
    unsafe {
        core::arch::asm!("hlt #0xf000", in("x0") SYS_EXIT, in("x1") block.as_ptr(), options(nostack));
    }
}
