//! EL0 tasks: entering one (`run_task`) and getting back to the kernel when
//! it traps (`el0_sync`, the vector of synchronous exceptions from EL0),
//! and the code of the tiny task the `mmu` mode runs.

core::arch::global_asm!(
    r#"
    .text
    .global run_task
    // run_task(entry x0, stack x1, argument x2) -> (task's x0, ESR_EL1)
run_task:
    stp     x29, x30, [sp, #-96]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    adrp    x9, kernel_sp
    mov     x10, sp
    str     x10, [x9, :lo12:kernel_sp]
    msr     elr_el1, x0
    msr     sp_el0, x1
    mov     x10, #0x3c0         // EL0t with D, A, I, F masked
    msr     spsr_el1, x10
    mov     x0, x2
    mov     x1, xzr
    mov     x2, xzr
    eret

    .global el0_sync
el0_sync:
    mrs     x1, esr_el1
    adrp    x9, kernel_sp
    ldr     x10, [x9, :lo12:kernel_sp]
    mov     sp, x10
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #96
    ret

    // The task: keep the argument on its own stack, read it back, return
    // twice its value to the kernel with `svc #0`.
    .balign 8
    .global task_code_start
task_code_start:
    str     x0, [sp, #-16]!
    ldr     x1, [sp], #16
    add     x0, x1, x1
    svc     #0
1:  b       1b
    .global task_code_end
task_code_end:

    .bss
    .balign 8
kernel_sp:
    .quad   0
    .text
"#
);

/// How a task came back: its `x0` and the syndrome of its trap.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskExit {
    /// The task's `x0` at the trap.
    pub x0: u64,
    /// ESR_EL1 of the trap (EC 0x15 for `svc`).
    pub esr: u64,
}

extern "C" {
    fn run_task(entry: u64, sp: u64, arg: u64) -> TaskExit;
    static task_code_start: u8;
    static task_code_end: u8;
}

/// Runs the EL0 code at `entry` with stack `sp` and `x0 = arg` in the
/// current TTBR0 address space until it traps.
pub fn run(entry: u64, sp: u64, arg: u64) -> TaskExit {
    // SAFETY: `run_task` saves the callee-saved registers and the stack
    // pointer, and `el0_sync` restores them when the task traps, so to the
    // caller it is an ordinary call. The task runs at EL0 in the current
    // address space, which maps the kernel for EL1 only.
    unsafe { run_task(entry, sp, arg) }
}

/// The task's code, to be copied into a page of its own.
pub fn code() -> &'static [u8] {
    // SAFETY: both symbols bound the task's code in .text, which is
    // mapped and never written.
    unsafe {
        let start = core::ptr::addr_of!(task_code_start);
        let end = core::ptr::addr_of!(task_code_end);
        core::slice::from_raw_parts(start, end as usize - start as usize)
    }
}
