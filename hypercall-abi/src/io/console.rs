//! The paravirtual console page (Xen's `io/console.h`,
//! `struct xencons_interface`): one page shared by a domain (front end) and
//! the console back end, with an input ring (back end to guest, 1024
//! bytes) and an output ring (guest to back end, 2048 bytes).
//!
//! | field | offset | size |
//! |---|---|---|
//! | `in` | 0 | 1024 |
//! | `out` | 1024 | 2048 |
//! | `in_cons`, `in_prod` | 3072, 3076 | 4 each |
//! | `out_cons`, `out_prod` | 3080, 3084 | 4 each |
//!
//! The guest writes output with [`XenconsInterface::out_ring`]`.write` and
//! notifies the back end over the console event channel; the back end
//! reads it with the same ring's `read`. Input goes the other way through
//! [`XenconsInterface::in_ring`].
//!
//! ```
//! use hypercall_abi::io::console::XenconsInterface;
//! let page = Box::new(XenconsInterface::new());
//! page.out_ring().write(b"guest says hi\n").unwrap();      // front end
//! let mut buf = [0u8; 64];
//! let n = page.out_ring().read(&mut buf).unwrap();          // back end
//! assert_eq!(&buf[..n], b"guest says hi\n");
//! ```

use super::byte_ring::ByteRing;
use core::sync::atomic::{AtomicU32, AtomicU8};

/// Bytes of the input ring.
pub const XENCONS_IN_SIZE: usize = 1024;
/// Bytes of the output ring.
pub const XENCONS_OUT_SIZE: usize = 2048;

/// `struct xencons_interface` (3088 bytes, at the start of a page).
#[repr(C)]
pub struct XenconsInterface {
    /// `in`: input for the guest.
    pub input: [AtomicU8; XENCONS_IN_SIZE],
    /// `out`: the guest's output.
    pub output: [AtomicU8; XENCONS_OUT_SIZE],
    /// `in_cons` (guest).
    pub in_cons: AtomicU32,
    /// `in_prod` (back end).
    pub in_prod: AtomicU32,
    /// `out_cons` (back end).
    pub out_cons: AtomicU32,
    /// `out_prod` (guest).
    pub out_prod: AtomicU32,
}

impl XenconsInterface {
    /// A zeroed page (tests and simulators).
    pub fn new() -> Self {
        XenconsInterface {
            input: core::array::from_fn(|_| AtomicU8::new(0)),
            output: core::array::from_fn(|_| AtomicU8::new(0)),
            in_cons: AtomicU32::new(0),
            in_prod: AtomicU32::new(0),
            out_cons: AtomicU32::new(0),
            out_prod: AtomicU32::new(0),
        }
    }

    /// The input ring (back end produces, guest consumes).
    pub fn in_ring(&self) -> ByteRing<'_> {
        ByteRing::new(&self.input, &self.in_cons, &self.in_prod)
    }

    /// The output ring (guest produces, back end consumes).
    pub fn out_ring(&self) -> ByteRing<'_> {
        ByteRing::new(&self.output, &self.out_cons, &self.out_prod)
    }
}

impl Default for XenconsInterface {
    fn default() -> Self {
        Self::new()
    }
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<XenconsInterface>() == 3088);
    assert!(offset_of!(XenconsInterface, output) == 1024);
    assert!(offset_of!(XenconsInterface, in_cons) == 3072);
    assert!(offset_of!(XenconsInterface, out_prod) == 3084);
};
