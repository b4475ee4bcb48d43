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
