//! Entry: the arm64 `Image` header, then stack, `.bss`, vector table and
//! the jump to `kmain`.
//!
//! The monitor enters at the first byte of the image (0x4008_0000) at EL1h
//! with the MMU off (memory cacheable through HCR_EL2.DC), DAIF masked and
//! `x0` = guest-physical address of the device tree. The code only uses
//! PC-relative addressing, so it also runs before anything is set up.

/// Size of the boot stack (in `.bss`).
pub const STACK_SIZE: usize = 64 * 1024;

core::arch::global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    // arm64 Image header (Documentation/arch/arm64/booting.rst).
    b       primary_entry       // code0: branch to the real entry
    .long   0                   // code1
    .quad   0x80000             // text_offset
    .quad   __image_size        // image_size, including .bss (link.ld)
    .quad   0b0010              // flags: little-endian, 4K pages
    .quad   0                   // res2
    .quad   0                   // res3
    .quad   0                   // res4
    .long   0x644d5241          // magic "ARM\x64"
    .long   0                   // res5 (no PE header)

    .section .text.boot, "ax"
primary_entry:
    mov     x19, x0             // keep the device tree address

    adrp    x1, boot_stack_top
    add     x1, x1, :lo12:boot_stack_top
    mov     sp, x1

    // Zero .bss (16-byte aligned at both ends, see link.ld). The stack is
    // in .bss but nothing is on it yet.
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:  cmp     x1, x2
    b.hs    3f
    stp     xzr, xzr, [x1], #16
    b       2b
3:
    adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    isb

    mov     x0, x19
    mov     x29, xzr            // end of the frame-pointer chain
    mov     x30, xzr
    bl      kmain
4:  wfe                         // kmain does not return
    b       4b

    .section .bss.boot_stack, "aw", %nobits
    .balign 16
boot_stack_bottom:
    .space  {stack_size}
boot_stack_top:
    .text
"#,
    stack_size = const STACK_SIZE,
);
