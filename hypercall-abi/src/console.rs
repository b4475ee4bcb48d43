//! `console_io` (hypercall [`nr::CONSOLE_IO`]): the early debug console.
//!
//! | register | value |
//! |---|---|
//! | `x16` | [`nr::CONSOLE_IO`] (18) |
//! | `x0`  | command: [`CONSOLEIO_WRITE`] or [`CONSOLEIO_READ`] |
//! | `x1`  | count: number of bytes, `0..=CONSOLE_IO_MAX` |
//! | `x2`  | buffer: guest virtual address of `count` bytes |
//!
//! # `CONSOLEIO_WRITE`
//!
//! The monitor copies all `count` bytes from the guest buffer to its
//! console and returns **0** (like Xen). There is no partial write and no
//! silent truncation:
//!
//! * `count > CONSOLE_IO_MAX` → `-EINVAL`, nothing is written;
//! * any byte of the buffer not readable through the guest's stage-1 and
//!   stage-2 translation → `-EFAULT`, nothing is written (the monitor
//!   checks the whole range before writing anything);
//! * `count == 0` → 0, nothing is written.
//!
//! Bytes are passed through unchanged (no newline translation). A guest
//! that wants to write more than [`CONSOLE_IO_MAX`] bytes splits the data
//! itself; [`write_chunked`] does this and the guest wrapper
//! `guest::console_write` uses it.
//!
//! # `CONSOLEIO_READ`
//!
//! Reads up to `count` bytes of pending console input (what was typed on
//! the machine's serial line) into the buffer and returns the number of
//! bytes read (0 if none is pending); the caller loops until 0. The same
//! `-EINVAL`/`-EFAULT` rules apply, and on an error nothing is consumed.
//!
//! Only one domain owns the serial input: the driver domain while there is
//! one, else the privileged domain (Xen gives it to dom0). The monitor
//! raises the global [`VIRQ_CONSOLE`](crate::event_channel::VIRQ_CONSOLE)
//! for it when bytes arrive (bind it with `EVTCHNOP_bind_virq`, then read
//! once, since bytes may have come before). Every other domain gets
//! `-EPERM`. The monitor keeps a bounded amount of unread input and drops
//! (and counts) what does not fit.
//!
//! Any other command returns `-ENOSYS`.

use crate::errno::{result_from_raw, Errno};
#[allow(unused_imports)] // used by intra-doc links
use crate::nr;

/// `CONSOLEIO_write`: write bytes to the monitor's console.
pub const CONSOLEIO_WRITE: u64 = 0;
/// `CONSOLEIO_read`: read pending console input.
pub const CONSOLEIO_READ: u64 = 1;

/// Largest `count` accepted by one `console_io` call, in bytes. Larger
/// counts fail with `-EINVAL`.
pub const CONSOLE_IO_MAX: usize = 4096;

/// Monitor side: validate the `count` argument of a `console_io` call.
///
/// Returns the count as `usize` if `count <= CONSOLE_IO_MAX`, otherwise
/// [`Errno::EINVAL`].
pub const fn check_count(count: u64) -> Result<usize, Errno> {
    if count <= CONSOLE_IO_MAX as u64 {
        Ok(count as usize)
    } else {
        Err(Errno::EINVAL)
    }
}

/// Guest side: write `bytes` as a sequence of `CONSOLEIO_WRITE` calls of
/// at most [`CONSOLE_IO_MAX`] bytes each.
///
/// `call` performs one hypercall for one chunk and returns the raw `x0`
/// value. Stops at the first error and returns it. An empty `bytes` makes
/// no call. The aarch64 guest wrapper passes a closure that issues the
/// real `hvc`; tests pass a recording closure.
pub fn write_chunked<F>(bytes: &[u8], mut call: F) -> Result<(), Errno>
where
    F: FnMut(&[u8]) -> i64,
{
    for chunk in bytes.chunks(CONSOLE_IO_MAX) {
        result_from_raw(call(chunk))?;
    }
    Ok(())
}
