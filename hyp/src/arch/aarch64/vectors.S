// EL2 exception vectors.
//
// Exceptions from a guest save the whole general register file, SP_EL0,
// ELR_EL2 and SPSR_EL2 into the running vCPU's register frame (pointed to by
// TPIDR_EL2), call `rust_guest_exception(frame, kind)`, and then resume
// whatever vCPU TPIDR_EL2 names by then (the scheduler may have switched).
// EL1 system registers are not touched here: they are saved and restored only
// when the vCPU on this CPU changes.
//
// Exceptions taken from EL2 itself are monitor bugs: they are reported by
// `rust_el2_exception(kind, frame)`, which does not return.

// Layout of struct VcpuRegs (hyp/src/arch/aarch64/regs.rs).
.equ REGS_SP_EL0,   248
.equ REGS_ELR,      256
.equ REGS_HOST_SP,  272

// Kinds, as in `ExceptionKind` (hyp/src/esr.rs).
.equ KIND_SYNC,     0
.equ KIND_IRQ,      1
.equ KIND_FIQ,      2
.equ KIND_SERROR,   3

.macro ventry target
.balign 0x80
    b       \target
.endm

.macro guest_entry kind
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el2
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    str     x30, [x0, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0, #0]            // guest x0, x1
    mrs     x4, sp_el0
    mrs     x5, elr_el2
    mrs     x6, spsr_el2
    str     x4, [x0, #REGS_SP_EL0]
    stp     x5, x6, [x0, #REGS_ELR]
    mov     x1, #\kind
    bl      rust_guest_exception
    b       guest_restore
.endm

.macro el2_entry kind
    // A fault at EL2 is fatal: report it from a stack of its own, so that
    // an overflow of the normal stack (into its guard page) is reported too.
    // TPIDR_EL2 (the running vCPU) is not needed any more.
    msr     tpidr_el2, x0
    adrp    x0, emergency_stack_top
    add     x0, x0, :lo12:emergency_stack_top
    mov     sp, x0
    mrs     x0, tpidr_el2
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
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
    add     x1, sp, #272
    stp     x30, x1, [sp, #240]
    mrs     x1, elr_el2
    mrs     x2, spsr_el2
    stp     x1, x2, [sp, #256]
    mov     x0, #\kind
    mov     x1, sp
    bl      rust_el2_exception
1:  wfe
    b       1b
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    // Current EL with SP_EL0 (never used by the monitor).
    ventry  el2_sync
    ventry  el2_irq
    ventry  el2_fiq
    ventry  el2_serror
    // Current EL with SP_EL2.
    ventry  el2_sync
    ventry  el2_irq
    ventry  el2_fiq
    ventry  el2_serror
    // Lower EL, AArch64: the guests.
    ventry  guest_sync
    ventry  guest_irq
    ventry  guest_fiq
    ventry  guest_serror
    // Lower EL, AArch32: not supported; reported and the guest ended.
    ventry  guest_sync
    ventry  guest_irq
    ventry  guest_fiq
    ventry  guest_serror

guest_sync:     guest_entry KIND_SYNC
guest_irq:      guest_entry KIND_IRQ
guest_fiq:      guest_entry KIND_FIQ
guest_serror:   guest_entry KIND_SERROR

el2_sync:       el2_entry KIND_SYNC
el2_irq:        el2_entry KIND_IRQ
el2_fiq:        el2_entry KIND_FIQ
el2_serror:     el2_entry KIND_SERROR

// Resume the vCPU that TPIDR_EL2 names, on a fresh EL2 stack.
.global guest_restore
guest_restore:
    mrs     x0, tpidr_el2
    ldr     x1, [x0, #REGS_HOST_SP]
    mov     sp, x1
    ldr     x2, [x0, #REGS_SP_EL0]
    ldp     x3, x4, [x0, #REGS_ELR]
    msr     sp_el0, x2
    msr     elr_el2, x3
    msr     spsr_el2, x4
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret
    dsb     nsh
    isb

// Benchmark floor: a vector table whose handler for synchronous exceptions
// from a guest only returns (`eret`), so that `hvc` round trips cost what the
// emulator's exception entry and return cost and nothing else. Installed only
// with the monitor option `bench-floor`, and replaced by `el2_vectors` at the
// first interrupt.
.balign 0x800
.global el2_floor_vectors
el2_floor_vectors:
    ventry  el2_sync
    ventry  el2_irq
    ventry  el2_fiq
    ventry  el2_serror
    ventry  el2_sync
    ventry  el2_irq
    ventry  el2_fiq
    ventry  el2_serror
.balign 0x80
    eret
    ventry  guest_irq
    ventry  guest_fiq
    ventry  guest_serror
    ventry  guest_sync
    ventry  guest_irq
    ventry  guest_fiq
    ventry  guest_serror
