//! `virtio_drivers::Hal` over the DMA window.
//!
//! The window is identity-mapped (guest-physical == machine-physical) and
//! the kernel runs with its MMU off, so an address in the window is at
//! once the pointer the driver uses and the address the device is given.
//! `share` copies the caller's buffer into fresh window pages (and
//! `unshare` copies device-written data back), so buffers anywhere in the
//! kernel's memory can be used for I/O; a buffer already in the window (a
//! [`DmaBuf`]) is given to the device as it is, with no bounce.

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

/// Whether `addr..addr + len` lies inside the window.
fn in_window(addr: u64, len: usize) -> bool {
    WINDOW
        .lock()
        .as_ref()
        .is_some_and(|w| w.contains(addr, len as u64))
}

/// A buffer in the DMA window, owned by one user until dropped: a device
/// reads or writes it directly (`share` passes it through unbounced).
pub struct DmaBuf {
    addr: u64,
    len: usize,
}

impl DmaBuf {
    /// `len` bytes (> 0) of fresh window pages, or `None` if the window is
    /// full. Not zeroed: a user fills or reads into all of it.
    pub fn new(len: usize) -> Option<DmaBuf> {
        if len == 0 {
            return None;
        }
        Some(DmaBuf {
            addr: alloc(pages_for(len))?,
            len,
        })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `addr..addr + len` are window pages allocated to this
        // buffer alone until `drop` (the allocator never hands a page out
        // twice), identity-mapped RAM of this domain.
        unsafe { core::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }

    /// The bytes, mutably.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) }
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        free(self.addr, pages_for(self.len));
    }
}

/// The HAL.
pub struct WindowHal;

// SAFETY: allocations are distinct runs of window pages (the allocator
// never hands out a page twice), zeroed, identity-mapped and thus valid
// both for the CPU and the device until freed; `share` returns window
// addresses holding a copy of the buffer that stays valid until `unshare`,
// or, for a buffer already inside the window, the buffer's own address
// (identity-mapped: the device reaches the same bytes).
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
        let at = buffer.as_ptr() as *const u8 as u64;
        if in_window(at, len) {
            // Already where the device can reach it (a `DmaBuf`).
            return at;
        }
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
        if paddr == buffer.as_ptr() as *const u8 as u64 {
            // Shared in place (`share` found it in the window): no bounce.
            return;
        }
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
