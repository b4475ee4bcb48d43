//! Serial input: the bytes the UART received, kept for the one domain
//! that owns console input until it reads them with `CONSOLEIO_read`.
//!
//! As in Xen, where the hardware domain gets the serial line's input: the
//! owner is the driver domain while there is one, else the privileged
//! domain ([`owner_of`]). The UART's receive interrupt moves its bytes into
//! an [`InputBuffer`] and raises `VIRQ_CONSOLE` for the owner; the owner
//! reads them with `CONSOLEIO_read`, which returns how many bytes it copied
//! (0 when nothing is pending). Every other domain gets `-EPERM`.
//!
//! The buffer is bounded ([`INPUT_BYTES`]): when the owner does not read
//! (it has no console reader, e.g. the default configuration's `hello`
//! guest), the newest bytes are dropped and counted, and the interrupt
//! handler never waits.

use core::sync::atomic::{AtomicU16, Ordering};
use hypercall_abi::console::check_count;
use hypercall_abi::errno::Errno;

/// Bytes of serial input kept for the owner.
pub const INPUT_BYTES: usize = 1024;

/// What [`InputBuffer::push`] did with a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Kept for the owner.
    Kept,
    /// Dropped (the buffer is full); `first` is true for the first byte
    /// dropped since the owner last read (the moment to say so, once).
    Dropped {
        /// First drop of this episode.
        first: bool,
    },
}

/// A bounded first-in first-out byte buffer that counts what it drops.
#[derive(Debug)]
pub struct InputBuffer<const N: usize = INPUT_BYTES> {
    bytes: heapless::Deque<u8, N>,
    dropped: u64,
    dropping: bool,
}

impl<const N: usize> Default for InputBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> InputBuffer<N> {
    /// Empty.
    pub const fn new() -> Self {
        InputBuffer {
            bytes: heapless::Deque::new(),
            dropped: 0,
            dropping: false,
        }
    }

    /// Keeps `b` if there is room, else drops and counts it.
    pub fn push(&mut self, b: u8) -> Pushed {
        if self.bytes.push_back(b).is_ok() {
            return Pushed::Kept;
        }
        self.dropped += 1;
        let first = !self.dropping;
        self.dropping = true;
        Pushed::Dropped { first }
    }

    /// Bytes waiting.
    pub fn pending(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes dropped so far because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Hands up to `max` bytes, oldest first, to `deliver`; they are
    /// removed only if `deliver` succeeds. Returns how many.
    pub fn take(
        &mut self,
        max: usize,
        deliver: impl FnOnce(&[u8]) -> Result<(), Errno>,
    ) -> Result<usize, Errno> {
        let n = max.min(self.bytes.len());
        if n == 0 {
            return Ok(0);
        }
        let mut tmp = [0u8; N];
        for (t, b) in tmp.iter_mut().zip(self.bytes.iter()).take(n) {
            *t = *b;
        }
        deliver(&tmp[..n])?;
        for _ in 0..n {
            self.bytes.pop_front();
        }
        self.dropping = false;
        Ok(n)
    }
}

/// `CONSOLEIO_read` of `count` bytes for a domain: `input` is the buffer if
/// the caller owns console input (else `-EPERM`); `write` copies into the
/// guest's buffer (all or nothing, `-EFAULT`). Returns the bytes read.
pub fn read_call<const N: usize>(
    input: Option<&mut InputBuffer<N>>,
    count: u64,
    write: impl FnOnce(&[u8]) -> Result<(), Errno>,
) -> Result<u64, Errno> {
    let input = input.ok_or(Errno::EPERM)?;
    let n = check_count(count)?;
    input.take(n, write).map(|n| n as u64)
}

/// Who owns console input: the driver domain if there is one, else the
/// privileged domain (0 if neither).
pub fn owner_of(driver: Option<u16>, privileged: u16) -> u16 {
    driver.unwrap_or(privileged)
}

/// The machine's serial input.
pub static INPUT: spin::Mutex<InputBuffer> = spin::Mutex::new(InputBuffer::new());
static OWNER: AtomicU16 = AtomicU16::new(0);

/// Records the domain that owns console input (0: none).
pub fn set_owner(dom: u16) {
    OWNER.store(dom, Ordering::Release);
}

/// The domain that owns console input, if any.
pub fn owner() -> Option<u16> {
    match OWNER.load(Ordering::Acquire) {
        0 => None,
        d => Some(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn take_all<const N: usize>(b: &mut InputBuffer<N>, max: usize) -> Vec<u8> {
        let mut got = Vec::new();
        b.take(max, |d| {
            got.extend_from_slice(d);
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn keeps_order_and_counts_drops_once_full() {
        let mut b = InputBuffer::<4>::new();
        for (i, c) in b"abcdef".iter().enumerate() {
            let r = b.push(*c);
            match i {
                0..=3 => assert_eq!(r, Pushed::Kept),
                4 => assert_eq!(r, Pushed::Dropped { first: true }),
                _ => assert_eq!(r, Pushed::Dropped { first: false }),
            }
        }
        assert_eq!((b.pending(), b.dropped()), (4, 2));
        assert_eq!(take_all(&mut b, 3), b"abc");
        assert_eq!(b.push(b'g'), Pushed::Kept);
        assert_eq!(b.push(b'h'), Pushed::Kept);
        assert_eq!(b.push(b'i'), Pushed::Kept);
        assert_eq!(b.push(b'j'), Pushed::Dropped { first: true });
        assert_eq!(take_all(&mut b, 10), b"dghi");
        assert_eq!(take_all(&mut b, 10), b"");
        assert_eq!(b.dropped(), 3);
    }

    #[test]
    fn failed_delivery_keeps_the_bytes() {
        let mut b = InputBuffer::<8>::new();
        for c in b"xyz" {
            b.push(*c);
        }
        assert_eq!(b.take(2, |_| Err(Errno::EFAULT)), Err(Errno::EFAULT));
        assert_eq!(b.pending(), 3);
        assert_eq!(take_all(&mut b, 8), b"xyz");
    }

    #[test]
    fn read_call_checks_permission_count_and_buffer() {
        let mut b = InputBuffer::<8>::new();
        for c in b"hello" {
            b.push(*c);
        }
        // Not the owner: EPERM, whatever the arguments.
        assert_eq!(
            read_call::<8>(None, 4, |_| unreachable!()),
            Err(Errno::EPERM)
        );
        assert_eq!(
            read_call(Some(&mut b), 4097, |_| unreachable!()),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            read_call(Some(&mut b), 3, |_| Err(Errno::EFAULT)),
            Err(Errno::EFAULT)
        );
        let mut got = Vec::new();
        // The count read is returned, never silently less.
        assert_eq!(
            read_call(Some(&mut b), 3, |d| {
                got.extend_from_slice(d);
                Ok(())
            }),
            Ok(3)
        );
        assert_eq!(
            read_call(Some(&mut b), 4096, |d| {
                got.extend_from_slice(d);
                Ok(())
            }),
            Ok(2)
        );
        assert_eq!(got, b"hello");
        assert_eq!(read_call(Some(&mut b), 4096, |_| unreachable!()), Ok(0));
        assert_eq!(read_call(Some(&mut b), 0, |_| unreachable!()), Ok(0));
    }

    #[test]
    fn the_driver_domain_owns_input_before_the_privileged_one() {
        assert_eq!(owner_of(Some(3), 1), 3);
        assert_eq!(owner_of(None, 1), 1);
    }

    proptest! {
        /// Whatever arrives and however it is read, what the owner gets is
        /// exactly the arrived bytes minus the dropped ones, in order, the
        /// buffer never holds more than its size, and kept + dropped =
        /// arrived.
        #[test]
        fn bounded_and_lossless_except_counted_drops(
            ops in proptest::collection::vec(prop_oneof![
                (0u8..=255).prop_map(|b| (true, b as usize)),
                (0usize..20).prop_map(|n| (false, n)),
            ], 0..400)
        ) {
            let mut b = InputBuffer::<16>::new();
            let mut kept = Vec::new();
            let mut got = Vec::new();
            let mut arrived = 0u64;
            for (push, v) in ops {
                if push {
                    arrived += 1;
                    if b.push(v as u8) == Pushed::Kept {
                        kept.push(v as u8);
                    }
                } else {
                    got.extend(take_all(&mut b, v));
                }
                prop_assert!(b.pending() <= 16);
            }
            got.extend(take_all(&mut b, 16));
            prop_assert_eq!(&got, &kept);
            prop_assert_eq!(kept.len() as u64 + b.dropped(), arrived);
        }
    }
}
