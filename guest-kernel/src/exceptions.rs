//! The EL1 vector table. Every entry saves the general-purpose registers
//! and calls [`exception_handler`], which prints a report and shuts the
//! domain down with reason `Crash`, except in two cases: a synchronous
//! exception from EL0 goes to the task switcher (`tasks::el0_sync`), and a
//! synchronous exception at EL1 that a check announced with [`expect`] is
//! recorded, stepped over and returned from.

use crate::console::println;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use hypercall_abi::guest;

core::arch::global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 2048
    .global guest_vectors
guest_vectors:
    .irp    n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 128
    .if     \n == 8
    b       el0_sync            // synchronous from EL0: a task trapped
    .elseif \n == 5
    b       irq_entry           // IRQ at EL1 with SP_EL1: the event upcall
    .else
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp]
    mov     x0, #\n
    b       exception_common
    .endif
    .endr

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    mov     x1, sp
    bl      exception_handler
    // The handler returned: an interrupt was handled, or an expected
    // exception with ELR_EL1 moved on; resume.
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    ldp     x0, x1, [sp]
    add     sp, sp, #{frame}
    eret
    .text
"#,
    frame = const core::mem::size_of::<Regs>(),
);

/// General-purpose registers at the exception, as saved by the vectors.
#[repr(C)]
pub struct Regs {
    /// `x0`..`x30`.
    pub x: [u64; 31],
    _pad: u64,
}

/// Name of the vector with index `n` (0..16) of the table.
fn vector_name(n: u64) -> (&'static str, &'static str) {
    let from = match n / 4 {
        0 => "current EL with SP_EL0",
        1 => "current EL with SP_ELx",
        2 => "lower EL (AArch64)",
        _ => "lower EL (AArch32)",
    };
    let kind = match n % 4 {
        0 => "synchronous",
        1 => "IRQ",
        2 => "FIQ",
        _ => "SError",
    };
    (kind, from)
}

/// Name of an exception class (ESR_ELx.EC), for the common ones.
fn ec_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason / undefined instruction",
        0x01 => "WFI/WFE",
        0x0e => "illegal execution state",
        0x15 => "SVC",
        0x16 => "HVC",
        0x17 => "SMC",
        0x18 => "system register access",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK",
        _ => "other",
    }
}

/// Set by [`expect`]: the next synchronous exception at EL1 is recorded.
static EXPECTING: AtomicBool = AtomicBool::new(false);
/// ESR_EL1 of the last expected exception, 0 if none came.
static CAUGHT: AtomicU64 = AtomicU64::new(0);

/// Runs `f`, which is expected to raise one synchronous exception at EL1
/// (e.g. a trapped instruction the monitor refuses); returns its ESR_EL1,
/// or `None` if `f` completed without one. The faulting instruction is
/// skipped.
pub fn expect(f: impl FnOnce()) -> Option<u64> {
    CAUGHT.store(0, Ordering::SeqCst);
    EXPECTING.store(true, Ordering::SeqCst);
    f();
    EXPECTING.store(false, Ordering::SeqCst);
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        esr => Some(esr),
    }
}

/// Called by every vector entry with its index and the saved registers.
/// Returns only for an interrupt from the kernel itself (vectors 1 and 5),
/// which [`crate::irq::handle`] deals with.
#[no_mangle]
extern "C" fn exception_handler(vector: u64, regs: &Regs) {
    if vector == 1 || vector == 5 {
        crate::irq::handle();
        return;
    }
    let (esr, far, elr): (u64, u64, u64);
    // SAFETY: reading EL1 syndrome registers has no side effects.
    unsafe {
        asm!(
            "mrs {esr}, esr_el1",
            "mrs {far}, far_el1",
            "mrs {elr}, elr_el1",
            esr = out(reg) esr,
            far = out(reg) far,
            elr = out(reg) elr,
            options(nomem, nostack, preserves_flags),
        );
    }
    // Vector 4: synchronous, current EL with SP_ELx.
    if vector == 4 && EXPECTING.swap(false, Ordering::SeqCst) {
        CAUGHT.store(esr, Ordering::SeqCst);
        // SAFETY: resume after the faulting (32-bit) instruction.
        unsafe { asm!("msr elr_el1, {}", in(reg) elr + 4, options(nomem, nostack)) };
        return;
    }
    let (kind, from) = vector_name(vector);
    let ec = esr >> 26;
    println!("guest: unexpected exception: {kind} from {from} (vector {vector})");
    println!(
        "guest:   ESR_EL1 {esr:#x} (EC {ec:#04x}: {}) FAR_EL1 {far:#x} ELR_EL1 {elr:#x}",
        ec_name(ec)
    );
    println!(
        "guest:   x0 {:#x} x1 {:#x} x29 {:#x} x30 {:#x}",
        regs.x[0], regs.x[1], regs.x[29], regs.x[30]
    );
    guest::crash()
}

/// Print the panic message and shut down with reason `Crash`.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => println!(
            "guest: panic at {}:{}: {}",
            l.file(),
            l.line(),
            info.message()
        ),
        None => println!("guest: panic: {}", info.message()),
    }
    guest::crash()
}
