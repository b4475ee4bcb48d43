//! `virtio_drivers::Hal` over the DMA window.
//!
//! The window is identity-mapped (guest-physical == machine-physical) and
//! the kernel runs with its MMU off, so an address in the window is at
//! once the pointer the driver uses and the address the device is given.
//! `share` copies the caller's buffer into fresh window pages (and
//! `unshare` copies device-written data back), so buffers anywhere in the
//! kernel's memory can be used for I/O.

use core::ptr::NonNull;
use pvdev::dma::{DmaWindow, PAGE};
use spin::Mutex;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

static WINDOW: Mutex<Option<DmaWindow>> = Mutex::new(None);

/// Hands the window to the allocator (once, after discovery).
pub fn init(base: u64, size: u64) -> bool {
    match DmaWindow::new(base, size) {
        Ok(w) => {
            *WINDOW.lock() = Some(w);
            true
        }
        Err(_) => false,
    }
}

/// Pages free in the window.
pub fn free_pages() -> usize {
    WINDOW.lock().as_ref().map_or(0, |w| w.free_pages())
}

fn alloc(pages: usize) -> Option<u64> {
    WINDOW.lock().as_mut()?.alloc(pages)
}

fn free(addr: u64, pages: usize) {
    if let Some(w) = WINDOW.lock().as_mut() {
        // A refused free would be a driver bug; the pages then stay used.
        let _ = w.free(addr, pages);
    }
}

fn pages_for(len: usize) -> usize {
    len.div_ceil(PAGE as usize).max(1)
}

/// The HAL.
pub struct WindowHal;

// SAFETY: allocations are distinct runs of window pages (the allocator
// never hands out a page twice), zeroed, identity-mapped and thus valid
// both for the CPU and the device until freed; `share` returns window
// addresses holding a copy of the buffer that stays valid until `unshare`.
unsafe impl Hal for WindowHal {
    fn dma_alloc(pages: usize, _dir: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(pa) = alloc(pages) else {
            return (0, NonNull::dangling());
        };
        // SAFETY: `pa..pa + pages * 4096` is ours, inside the window the
        // monitor mapped as RAM for this domain.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, pages * PAGE as usize) };
        (
            pa,
            NonNull::new(pa as *mut u8).unwrap_or(NonNull::dangling()),
        )
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        free(paddr, pages);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, dir: BufferDirection) -> PhysAddr {
        let len = buffer.len();
        let Some(pa) = alloc(pages_for(len)) else {
            return 0;
        };
        if dir != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's buffer is valid for `len` bytes; the
            // bounce pages are ours and do not overlap it.
            unsafe {
                core::ptr::copy_nonoverlapping(buffer.as_ptr() as *const u8, pa as *mut u8, len)
            };
        }
        pa
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, dir: BufferDirection) {
        let len = buffer.len();
        if dir != BufferDirection::DriverToDevice {
            // SAFETY: as in `share`; the device has finished with the
            // bounce pages (the driver unshares after the used entry).
            unsafe {
                core::ptr::copy_nonoverlapping(paddr as *const u8, buffer.as_ptr() as *mut u8, len)
            };
        }
        free(paddr, pages_for(len));
    }
}
