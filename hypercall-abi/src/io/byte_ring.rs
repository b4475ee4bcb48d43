//! Byte rings in shared memory, as the console and store pages use them:
//! a power-of-two byte array with free-running `u32` consumer and producer
//! indices (`MASK_XENCONS_IDX`, `MASK_XENSTORE_IDX`).
//!
//! The producer writes bytes at `prod & (len - 1)`, issues a write
//! barrier, then advances `prod`; the consumer reads up to `prod`, issues
//! a full barrier, then advances `cons`. Both indices live in a page the
//! peer can write, so each call checks `prod - cons <= len` and refuses
//! with [`ByteRingError`] (changing nothing) when the peer broke it.
//!
//! ```
//! use core::sync::atomic::{AtomicU8, AtomicU32};
//! use hypercall_abi::io::byte_ring::ByteRing;
//! let buf: [AtomicU8; 8] = Default::default();
//! let (cons, prod) = (AtomicU32::new(0), AtomicU32::new(0));
//! let ring = ByteRing::new(&buf, &cons, &prod);
//! assert_eq!(ring.write(b"hello, world"), Ok(8)); // only 8 fit
//! let mut out = [0u8; 5];
//! assert_eq!(ring.read(&mut out), Ok(5));
//! assert_eq!(&out, b"hello");
//! ```

use core::sync::atomic::{fence, AtomicU32, AtomicU8, Ordering};

/// The peer left indices that cannot be right: `prod - cons` exceeds the
/// ring's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRingError {
    /// The consumer index read.
    pub cons: u32,
    /// The producer index read.
    pub prod: u32,
}

/// One direction of a shared byte ring. `buf.len()` must be a power of
/// two (the constructors of the page types guarantee it).
#[derive(Clone, Copy)]
pub struct ByteRing<'a> {
    buf: &'a [AtomicU8],
    cons: &'a AtomicU32,
    prod: &'a AtomicU32,
}

impl<'a> ByteRing<'a> {
    /// The ring over `buf` (length a power of two; a zero-length or
    /// non-power-of-two buffer is used up to its largest power of two).
    pub fn new(buf: &'a [AtomicU8], cons: &'a AtomicU32, prod: &'a AtomicU32) -> Self {
        let n = if buf.is_empty() {
            0
        } else {
            1usize << (usize::BITS - 1 - buf.len().leading_zeros())
        };
        ByteRing {
            buf: &buf[..n],
            cons,
            prod,
        }
    }

    fn len(&self) -> u32 {
        self.buf.len() as u32
    }

    fn indices(&self) -> Result<(u32, u32), ByteRingError> {
        let cons = self.cons.load(Ordering::Acquire);
        let prod = self.prod.load(Ordering::Acquire);
        if prod.wrapping_sub(cons) > self.len() {
            return Err(ByteRingError { cons, prod });
        }
        Ok((cons, prod))
    }

    /// Bytes written and not yet consumed.
    pub fn pending(&self) -> Result<u32, ByteRingError> {
        self.indices().map(|(c, p)| p.wrapping_sub(c))
    }

    /// Free space for the producer.
    pub fn space(&self) -> Result<u32, ByteRingError> {
        Ok(self.len() - self.pending()?)
    }

    /// Producer: writes as many bytes of `data` as fit; returns how many.
    pub fn write(&self, data: &[u8]) -> Result<usize, ByteRingError> {
        let (cons, prod) = self.indices()?;
        let room = (self.len() - prod.wrapping_sub(cons)) as usize;
        let n = room.min(data.len());
        let mask = self.len().wrapping_sub(1);
        for (i, &b) in data[..n].iter().enumerate() {
            let at = prod.wrapping_add(i as u32) & mask;
            self.buf[at as usize].store(b, Ordering::Relaxed);
        }
        fence(Ordering::Release);
        self.prod
            .store(prod.wrapping_add(n as u32), Ordering::Release);
        Ok(n)
    }

    /// Consumer: copies up to `out.len()` pending bytes out; returns how many.
    pub fn read(&self, out: &mut [u8]) -> Result<usize, ByteRingError> {
        let n = self.peek(out)?;
        self.consume(n as u32)?;
        Ok(n)
    }

    /// Consumer: copies pending bytes out without consuming them.
    pub fn peek(&self, out: &mut [u8]) -> Result<usize, ByteRingError> {
        let (cons, prod) = self.indices()?;
        let n = (prod.wrapping_sub(cons) as usize).min(out.len());
        let mask = self.len().wrapping_sub(1);
        for (i, o) in out[..n].iter_mut().enumerate() {
            let at = cons.wrapping_add(i as u32) & mask;
            *o = self.buf[at as usize].load(Ordering::Relaxed);
        }
        Ok(n)
    }

    /// Consumer: marks `n` bytes consumed (at most what is pending).
    pub fn consume(&self, n: u32) -> Result<(), ByteRingError> {
        let (cons, prod) = self.indices()?;
        let n = n.min(prod.wrapping_sub(cons));
        fence(Ordering::SeqCst); // reads of the bytes before freeing them
        self.cons.store(cons.wrapping_add(n), Ordering::Release);
        Ok(())
    }
}
