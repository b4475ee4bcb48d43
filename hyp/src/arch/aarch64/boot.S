// Entry point of the monitor. The loader enters here on one core (QEMU virt,
// Raspberry Pi firmware) or on every core (QEMU raspi4b with an ELF), at EL3
// or at EL2, with x0 = the device tree's address (or 0 when the loader left
// it at a board-specific place).
//
// Every core drops from EL3 to EL2 if needed. Core 0 (MPIDR affinity 0.0.0)
// takes the boot path; every other core parks in `park`, waiting on its slot
// of `secondary_entry` (written by the boot core once SMP is brought up).

.equ SCR_EL3_VALUE,   0x531        // NS | RES1(5:4) | HCE | RW: EL2 is AArch64, non-secure
.equ SPSR_EL2H_MASKED, 0x3c9       // EL2h with D, A, I, F masked
.equ SCTLR_EL2_RES1,  0x30c50830   // MMU and caches off, little-endian
.equ STACK_SIZE,      0x20000      // per CPU, below an unmapped guard page
.equ GUARD_SIZE,      0x1000
.equ STACK_SLOT,      GUARD_SIZE + STACK_SIZE
.equ MAX_CPUS,        8

.macro adr_l reg, sym
    adrp \reg, \sym
    add  \reg, \reg, :lo12:\sym
.endm

.section .text.boot, "ax"
.global _start
_start:
    mov     x19, x0                     // device tree (or 0)
    mrs     x20, CurrentEL              // exception level at entry, for the banner
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #3
    b.ne    1f
    // At EL3: configure EL2 as AArch64, non-secure, and drop to it.
    ldr     x1, =SCR_EL3_VALUE
    msr     scr_el3, x1
    msr     cptr_el3, xzr
    ldr     x1, =SPSR_EL2H_MASKED
    msr     spsr_el3, x1
    adr     x1, 1f
    msr     elr_el3, x1
    isb
    eret
1:
    ldr     x1, =SCTLR_EL2_RES1
    msr     sctlr_el2, x1
    isb
    mrs     x1, mpidr_el1
    and     x1, x1, #0xffffff           // Aff2.Aff1.Aff0
    cbnz    x1, park

    // Boot core: clear .bss, take stack 0, install the vectors.
    adr_l   x1, __bss_start
    adr_l   x2, __bss_end
2:  cmp     x1, x2
    b.hs    3f
    stp     xzr, xzr, [x1], #16
    b       2b
3:  adr_l   x1, boot_stacks
    add     x1, x1, #STACK_SLOT
    mov     sp, x1
    adr_l   x1, el2_vectors
    msr     vbar_el2, x1
    isb
    mov     x0, x19
    lsr     x1, x20, #2
    bl      rust_boot_main
4:  wfe
    b       4b

// Secondary cores wait here, at EL2 with the MMU off, until the boot core
// writes an entry address into their slot and signals an event.
park:
    and     x2, x1, #0xff               // Aff0 selects the slot
    cmp     x2, #MAX_CPUS
    b.hs    6f
    adr_l   x3, secondary_entry
5:  wfe
    ldr     x4, [x3, x2, lsl #3]
    cbz     x4, 5b
    mov     x0, x2
    br      x4
6:  wfe
    b       6b

// A secondary CPU started by the boot core (PSCI CPU_ON, a spin-table
// release, or a `park` slot): EL2, MMU off, x0 meaningless. Finds its index
// in `cpu_mpidr`, takes that CPU's stack and calls
// `rust_secondary_main(index)`.
.global secondary_start
secondary_start:
    ldr     x1, =SCTLR_EL2_RES1
    msr     sctlr_el2, x1
    isb
    mrs     x1, mpidr_el1
    ldr     x2, =0xff00ffffff
    and     x1, x1, x2
    adr_l   x2, cpu_mpidr
    mov     x3, #1                      // index 0 is the boot CPU
7:  cmp     x3, #MAX_CPUS
    b.hs    9f
    ldr     x4, [x2, x3, lsl #3]
    cmp     x4, x1
    b.eq    8f
    add     x3, x3, #1
    b       7b
8:  adr_l   x1, boot_stacks
    ldr     x2, =STACK_SLOT
    add     x4, x3, #1
    madd    x1, x4, x2, x1
    mov     sp, x1
    adr_l   x1, el2_vectors
    msr     vbar_el2, x1
    isb
    mov     x0, x3
    bl      rust_secondary_main
9:  wfe
    b       9b

.section .data
.balign 8
.global secondary_entry
secondary_entry:
    .fill MAX_CPUS, 8, 0
// MPIDR affinity of each CPU index (written by the boot core).
.global cpu_mpidr
cpu_mpidr:
    .rept MAX_CPUS
    .quad 0xffffffffffffffff
    .endr

.section .bss.stacks, "aw", %nobits
.balign 4096
// CPU i's stack occupies [boot_stacks + i*STACK_SLOT + GUARD_SIZE,
// boot_stacks + (i+1)*STACK_SLOT); the guard page below it is left out of the
// EL2 map, so an overflow faults instead of corrupting memory.
.global boot_stacks
boot_stacks:
    .fill MAX_CPUS * STACK_SLOT, 1, 0
.balign 16
// Stack for reporting monitor faults (a stack overflow among them).
.global emergency_stack
emergency_stack:
    .fill 0x4000, 1, 0
.global emergency_stack_top
emergency_stack_top:
