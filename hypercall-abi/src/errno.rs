//! Error numbers and the "negative errno in `x0`" return convention.
//!
//! A hypercall returns a signed 64-bit value in `x0`. Values in
//! `-MAX_ERRNO..=-1` (that is `-4095..=-1`) mean failure with errno
//! `-x0`; every other value is a success value (usually 0, sometimes a
//! count or a handle). This is the convention of Xen and of Linux system
//! calls. The errno numbers are Xen's `public/errno.h`, which are the same
//! as Linux's asm-generic numbers.
//!
//! [`Errno`] holds any number in `1..=MAX_ERRNO`, including numbers this
//! crate has no name for, so a raw value always round-trips without loss.
//!
//! ```
//! use hypercall_abi::{result_from_raw, result_to_raw, Errno};
//! assert_eq!(result_from_raw(0), Ok(0));
//! assert_eq!(result_from_raw(-22), Err(Errno::EINVAL));
//! assert_eq!(Errno::EINVAL.name(), "EINVAL");
//! assert_eq!(Errno::EINVAL.to_raw(), -22);
//! assert_eq!(result_to_raw(Err(Errno::ENOSYS)), -38);
//! ```

use core::fmt;

/// Largest errno number; `x0` values in `-MAX_ERRNO..=-1` are errors.
pub const MAX_ERRNO: u16 = 4095;

/// A hypercall error number in `1..=MAX_ERRNO`.
///
/// The named constants (`Errno::EINVAL`, ...) are the numbers from Xen's
/// `public/errno.h`. Numbers without a name are still valid values: they
/// are kept as they are and [`Errno::name`] reports them as `"EUNKNOWN"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Errno(u16);

macro_rules! errnos {
    ($($(#[doc = $doc:literal])* $name:ident = $val:literal;)*) => {
        impl Errno {
            $(
                $(#[doc = $doc])*
                pub const $name: Errno = Errno($val);
            )*

            /// The symbolic name (`"EINVAL"`), or `"EUNKNOWN"` for a number
            /// this crate has no name for. Aliases (`EWOULDBLOCK`,
            /// `EDEADLOCK`) report their primary name.
            pub const fn name(self) -> &'static str {
                match self.0 {
                    $($val => stringify!($name),)*
                    _ => "EUNKNOWN",
                }
            }

            /// Whether this number has a name in this crate.
            pub const fn is_known(self) -> bool {
                matches!(self.0, $($val)|*)
            }
        }

        #[cfg(test)]
        pub(crate) const ALL_KNOWN: &[Errno] = &[$(Errno::$name),*];
    };
}

errnos! {
    /// Operation not permitted.
    EPERM = 1;
    /// No such file or directory (no such object).
    ENOENT = 2;
    /// No such process (no such domain or vCPU).
    ESRCH = 3;
    /// Interrupted.
    EINTR = 4;
    /// I/O error.
    EIO = 5;
    /// No such device or address.
    ENXIO = 6;
    /// Argument list too long.
    E2BIG = 7;
    /// Exec format error.
    ENOEXEC = 8;
    /// Bad file number (bad handle or port).
    EBADF = 9;
    /// No child processes.
    ECHILD = 10;
    /// Try again (also `EWOULDBLOCK`).
    EAGAIN = 11;
    /// Out of memory.
    ENOMEM = 12;
    /// Permission denied.
    EACCES = 13;
    /// Bad address: a guest pointer could not be translated or accessed.
    EFAULT = 14;
    /// Device or resource busy.
    EBUSY = 16;
    /// Already exists.
    EEXIST = 17;
    /// Cross-device link.
    EXDEV = 18;
    /// No such device.
    ENODEV = 19;
    /// Not a directory.
    ENOTDIR = 20;
    /// Is a directory.
    EISDIR = 21;
    /// Invalid argument.
    EINVAL = 22;
    /// File table overflow.
    ENFILE = 23;
    /// Too many open files.
    EMFILE = 24;
    /// No space left.
    ENOSPC = 28;
    /// Illegal seek.
    ESPIPE = 29;
    /// Read-only.
    EROFS = 30;
    /// Too many links.
    EMLINK = 31;
    /// Argument out of domain.
    EDOM = 33;
    /// Result out of range.
    ERANGE = 34;
    /// Deadlock would occur (also `EDEADLOCK`).
    EDEADLK = 35;
    /// Name too long.
    ENAMETOOLONG = 36;
    /// No locks available.
    ENOLCK = 37;
    /// Function not implemented: unknown hypercall number or sub-operation.
    ENOSYS = 38;
    /// Directory not empty.
    ENOTEMPTY = 39;
    /// No data available.
    ENODATA = 61;
    /// Timer expired.
    ETIME = 62;
    /// Bad message.
    EBADMSG = 74;
    /// Value too large for the destination.
    EOVERFLOW = 75;
    /// Illegal byte sequence.
    EILSEQ = 84;
    /// Restart the call (Xen-internal continuation marker).
    ERESTART = 85;
    /// Not a socket.
    ENOTSOCK = 88;
    /// Message too long.
    EMSGSIZE = 90;
    /// Operation not supported.
    EOPNOTSUPP = 95;
    /// Address already in use.
    EADDRINUSE = 98;
    /// Address not available.
    EADDRNOTAVAIL = 99;
    /// No buffer space available.
    ENOBUFS = 105;
    /// Already connected.
    EISCONN = 106;
    /// Not connected.
    ENOTCONN = 107;
    /// Timed out.
    ETIMEDOUT = 110;
    /// Connection refused.
    ECONNREFUSED = 111;
}

impl Errno {
    /// Alias of [`Errno::EAGAIN`].
    pub const EWOULDBLOCK: Errno = Errno::EAGAIN;
    /// Alias of [`Errno::EDEADLK`].
    pub const EDEADLOCK: Errno = Errno::EDEADLK;

    /// The errno with positive number `code`, or `None` unless
    /// `1 <= code <= MAX_ERRNO`.
    pub const fn new(code: u16) -> Option<Errno> {
        if code >= 1 && code <= MAX_ERRNO {
            Some(Errno(code))
        } else {
            None
        }
    }

    /// The positive errno number (`22` for `EINVAL`).
    pub const fn code(self) -> u16 {
        self.0
    }

    /// The errno encoded by a raw `x0` value, or `None` if `ret` is not in
    /// the error range `-MAX_ERRNO..=-1`.
    pub const fn from_raw(ret: i64) -> Option<Errno> {
        if ret < 0 && ret >= -(MAX_ERRNO as i64) {
            Some(Errno((-ret) as u16))
        } else {
            None
        }
    }

    /// The raw `x0` value the monitor returns for this error (`-code`).
    pub const fn to_raw(self) -> i64 {
        -(self.0 as i64)
    }
}

/// Decode a raw hypercall return value (`x0`, read as `i64`).
///
/// `-MAX_ERRNO..=-1` becomes `Err`; any other value, including large
/// positive values and negative values below `-MAX_ERRNO`, becomes `Ok`
/// with the same 64 bits reinterpreted as `u64`.
pub const fn result_from_raw(ret: i64) -> Result<u64, Errno> {
    match Errno::from_raw(ret) {
        Some(e) => Err(e),
        None => Ok(ret as u64),
    }
}

/// Encode a result as the raw `x0` value (the monitor side of
/// [`result_from_raw`]).
///
/// A success value whose bits read as `i64` fall in `-MAX_ERRNO..=-1`
/// would be decoded as an error by the guest; hypercalls are defined so
/// they never return such success values.
pub const fn result_to_raw(res: Result<u64, Errno>) -> i64 {
    match res {
        Ok(v) => v as i64,
        Err(e) => e.to_raw(),
    }
}

impl From<Errno> for i64 {
    fn from(e: Errno) -> i64 {
        e.to_raw()
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            f.write_str(self.name())
        } else {
            write!(f, "Errno({})", self.0)
        }
    }
}

/// Formats as `EINVAL (22)`, or `errno 1234` for an unnamed number.
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            write!(f, "{} ({})", self.name(), self.0)
        } else {
            write!(f, "errno {}", self.0)
        }
    }
}

impl core::error::Error for Errno {}
