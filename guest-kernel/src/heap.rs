//! The kernel heap: a buddy allocator over a static arena, so that the
//! device logic of `pvdev` (which uses `alloc`) runs in the guest.

use buddy_system_allocator::LockedHeap;

/// Heap size.
const HEAP_BYTES: usize = 2 << 20;

#[repr(C, align(4096))]
struct Arena([u8; HEAP_BYTES]);

static mut ARENA: Arena = Arena([0; HEAP_BYTES]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hands the arena to the allocator (once, at boot).
pub fn init() {
    let start = core::ptr::addr_of_mut!(ARENA) as usize;
    // SAFETY: ARENA is a static used by nothing else; `init` is called
    // once, by `kmain` before any allocation, so the range is handed to the
    // allocator exactly once and stays valid for the kernel's lifetime.
    unsafe { HEAP.lock().init(start, HEAP_BYTES) };
}

extern "C" {
    static __image_end: u8;
}

/// Gives the heap the domain's RAM between the end of the kernel image
/// and the device tree (the last 2 MiB), for a domain that needs more
/// than the arena (the driver domain's RAM disks); returns the bytes added.
pub fn grow(ram_end: usize) -> usize {
    let start = (core::ptr::addr_of!(__image_end) as usize + 0xfff) & !0xfff;
    let end = ram_end.saturating_sub(2 << 20);
    if end <= start {
        return 0;
    }
    // SAFETY: [start, end) is guest RAM past everything the kernel image
    // (code, data, .bss with the arena and stacks) occupies and below the
    // device tree; nothing else uses it, and it is added once (the caller,
    // the driver domain's start, runs once).
    unsafe { HEAP.lock().add_to_heap(start, end) };
    end - start
}
