//! The console front end: the guest's `xencons_interface` page, granted to
//! the console back end as reference 0, notified on the console port.
//! Output goes through the `out` ring; input (the serial line's, when the
//! driver domain's console mux gives it to this domain) comes in the `in`
//! ring, with an event on the same port ([`read_installed`]).

use super::grants::{gfn_of, leak_page, Grants, Page};
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::io::console::XenconsInterface;

/// The console front end.
pub struct ConsoleFront {
    page: &'static Page<XenconsInterface>,
    port: u32,
    /// The back end has bound the port (it may bind it a little after
    /// the store's: until then output waits in the page).
    bound: core::sync::atomic::AtomicBool,
}

impl ConsoleFront {
    /// Allocates the page, grants it to `backend` as reference 0 and uses
    /// `port` (already allocated for `backend`).
    pub fn new(grants: &Grants, backend: u16, port: u32) -> Self {
        let page = leak_page(XenconsInterface::new());
        grants.grant_reserved(super::CONSOLE_REF, backend, gfn_of(page));
        ConsoleFront {
            page,
            port,
            bound: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Writes all of `bytes`, waiting for room (gives up if the back end
    /// is gone or corrupts the indices); returns the bytes written.
    pub fn write(&self, bytes: &[u8]) -> usize {
        let mut done = 0;
        while done < bytes.len() {
            let seen = crate::events::count(self.port);
            match self.page.0.out_ring().write(&bytes[done..]) {
                Ok(n) => done += n,
                Err(_) => break,
            }
            let _ = ev::send(self.port);
            if done < bytes.len() && !super::wait_event(self.port, seen) {
                break;
            }
        }
        done
    }

    /// Reads pending input into `buf`; returns how many bytes, or `None`
    /// if the back end left indices that cannot be right.
    pub fn read(&self, buf: &mut [u8]) -> Option<usize> {
        let n = self.page.0.in_ring().read(buf).ok()?;
        if n > 0 {
            let _ = ev::send(self.port);
        }
        Some(n)
    }

    /// The console's event-channel port.
    pub fn port(&self) -> u32 {
        self.port
    }
}

/// The console front end `println!` uses, once installed.
static INSTALLED: core::sync::atomic::AtomicPtr<ConsoleFront> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// From now on, the guest's console output goes through `c`.
pub fn install(c: ConsoleFront) {
    let p = alloc::boxed::Box::leak(alloc::boxed::Box::new(c));
    INSTALLED.store(p, core::sync::atomic::Ordering::Release);
}

/// From now on, the guest's console output goes through `console_io`
/// (its back end is gone; a new one may be installed later).
pub fn uninstall() {
    INSTALLED.store(core::ptr::null_mut(), core::sync::atomic::Ordering::Release);
}

fn installed() -> Option<&'static ConsoleFront> {
    let p = INSTALLED.load(core::sync::atomic::Ordering::Acquire);
    // SAFETY: only `install` stores a non-null pointer, to a leaked box
    // that lives as long as the kernel and is only read through `&`.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Reads pending console input of the installed front end into `buf`:
/// how many bytes (0: none yet; wait for an event on [`installed_port`]),
/// or `None` if no front end is installed (or it was dropped: the back
/// end is gone) or the `in` ring's indices are corrupt.
pub fn read_installed(buf: &mut [u8]) -> Option<usize> {
    installed()?.read(buf)
}

/// The installed front end's port.
pub fn installed_port() -> Option<u32> {
    installed().map(|c| c.port)
}

/// Writes `bytes` through the installed console front end; false if none
/// is installed, the back end is gone (the port, once bound, is unbound
/// again: the driver domain was destroyed or closed it; then the front
/// end is dropped for good) or took nothing (then use `console_io`).
pub fn write_installed(bytes: &[u8]) -> bool {
    use hypercall_abi::event_channel::{DOMID_SELF, EVTCHNSTAT_INTERDOMAIN};
    let Some(c) = installed() else {
        return false;
    };
    use core::sync::atomic::Ordering::{Acquire, Release};
    if ev::status(DOMID_SELF, c.port).map(|s| s.status) == Ok(EVTCHNSTAT_INTERDOMAIN) {
        c.bound.store(true, Release);
    } else if c.bound.load(Acquire) {
        INSTALLED.store(core::ptr::null_mut(), Release);
        return false;
    }
    c.write(bytes) == bytes.len()
}
