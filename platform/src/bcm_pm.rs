//! Broadcom power-management block (BCM2711): the only way to power off a
//! Raspberry Pi 4, which has no PSCI firmware.

const PM_PASSWORD: u32 = 0x5a00_0000;
const PM_RSTC: usize = 0x1c;
const PM_RSTS: usize = 0x20;
/// Partition 63 in RSTS tells the firmware "halt" instead of "boot".
const RSTS_HALT: u32 = 0x555;
/// RSTC full reset.
const RSTC_FULL_RESET: u32 = 0x20;

/// Powers the board off (QEMU's raspi4b exits with status 0).
///
/// # Safety
/// `base` must be the PM block's registers, mapped as device memory.
pub unsafe fn power_off(base: usize) -> ! {
    // SAFETY: the caller guarantees `base` maps the PM block.
    unsafe {
        core::ptr::write_volatile((base + PM_RSTS) as *mut u32, PM_PASSWORD | RSTS_HALT);
        core::ptr::write_volatile((base + PM_RSTC) as *mut u32, PM_PASSWORD | RSTC_FULL_RESET);
    }
    loop {
        core::hint::spin_loop();
    }
}
