//! `domctl` handlers: domain management by the privileged domain, as plain
//! functions over a [`Domctl`] the monitor has copied in from the guest
//! (and copies back after the call), against the [`Manager`] trait the
//! monitor implements. Every argument is checked before anything changes.
//!
//! **Privilege**: only the privileged domain may manage domains; others
//! get `-EPERM`. The privileged domain is the one the boot configuration
//! marks `priv`, or, if none is marked, the first configured domain
//! ([`crate::config::Config::privileged`]). The driver domain (configured
//! `driver`) may also list domains (`DOMCTL_GETDOMAININFO`), to find the
//! guests it serves, and nothing else.

use crate::config::{MAX_MEM_MIB, MAX_VCPUS, MIN_MEM_MIB};
use crate::sched::DEFAULT_WEIGHT;
use hypercall_abi::domctl::{
    until_nul, CreateDomain, DomainInfo, Domctl, DOMCTL_CDF_DRIVER, DOMCTL_CREATEDOMAIN,
    DOMCTL_DESTROYDOMAIN, DOMCTL_GETDOMAININFO, DOMCTL_INTERFACE_VERSION, DOMCTL_PAUSEDOMAIN,
    DOMCTL_SCHEDULER_OP, DOMCTL_UNPAUSEDOMAIN, KERNEL_ELF, KERNEL_IMAGE, SCHEDOP_GETINFO,
    SCHEDOP_PUTINFO,
};
use hypercall_abi::Errno;

/// A checked [`CreateDomain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDomain<'a> {
    /// Name (ASCII letters, digits, `-`, `_`; 1..=15 bytes).
    pub name: &'a str,
    /// Memory, MiB.
    pub mem_mib: u32,
    /// vCPUs, `1..=MAX_VCPUS`.
    pub vcpus: u32,
    /// Weight, `1..=65535`.
    pub weight: u16,
    /// Cap, percent of one CPU, `0..=100 * vcpus`.
    pub cap: u16,
    /// Load the kernel as an `Image` (else as ELF).
    pub image: bool,
    /// Command line.
    pub cmdline: &'a str,
    /// To be the driver domain (`DOMCTL_CDF_DRIVER`).
    pub driver: bool,
}

/// What the monitor provides to the handlers.
pub trait Manager {
    /// The privileged domain's id.
    fn privileged(&self) -> u16;
    /// The driver domain's id, if there is one.
    fn driver(&self) -> Option<u16> {
        None
    }
    /// Whether domain `dom` exists.
    fn exists(&self, dom: u16) -> bool;
    /// Whether a domain is named `name`.
    fn name_in_use(&self, name: &str) -> bool;
    /// Free memory for new domains, KiB.
    fn free_kib(&self) -> u64;
    /// Builds and starts a domain; its id. Errors: `ENOSPC` (no slot),
    /// `ENOMEM`, or what building returns.
    fn create(&mut self, d: &NewDomain<'_>) -> Result<u16, Errno>;
    /// Destroys an existing domain (not the caller).
    fn destroy(&mut self, dom: u16) -> Result<(), Errno>;
    /// Pauses an existing domain (not the caller).
    fn pause(&mut self, dom: u16) -> Result<(), Errno>;
    /// Unpauses an existing domain.
    fn unpause(&mut self, dom: u16) -> Result<(), Errno>;
    /// State of the first domain with id `>= from`.
    fn info_from(&self, from: u16) -> Option<DomainInfo>;
    /// Number of vCPUs of an existing domain.
    fn vcpus(&self, dom: u16) -> u32;
    /// Scheduler weight and cap of an existing domain.
    fn sched_params(&self, dom: u16) -> (u16, u16);
    /// Sets scheduler weight and cap (checked) of an existing domain.
    fn set_sched_params(&mut self, dom: u16, weight: u16, cap: u16) -> Result<(), Errno>;
}

/// Handles one `domctl` from domain `caller`; on success `op` holds what is
/// to be copied back to the guest. On error `op` and the monitor are
/// unchanged.
pub fn domctl(m: &mut impl Manager, caller: u16, op: &mut Domctl) -> Result<u64, Errno> {
    if op.interface_version != DOMCTL_INTERFACE_VERSION {
        return Err(Errno::EACCES);
    }
    let lister = op.cmd == DOMCTL_GETDOMAININFO && m.driver() == Some(caller);
    if caller != m.privileged() && !lister {
        return Err(Errno::EPERM);
    }
    match op.cmd {
        DOMCTL_CREATEDOMAIN => {
            let d = check_create(&op.create)?;
            if m.name_in_use(d.name) || (d.driver && m.driver().is_some()) {
                return Err(Errno::EEXIST);
            }
            if u64::from(d.mem_mib) * 1024 > m.free_kib() {
                return Err(Errno::ENOMEM);
            }
            op.domain = m.create(&d)?;
            Ok(0)
        }
        DOMCTL_DESTROYDOMAIN | DOMCTL_PAUSEDOMAIN => {
            let dom = target(m, op.domain)?;
            if dom == caller {
                return Err(Errno::EINVAL);
            }
            if op.cmd == DOMCTL_DESTROYDOMAIN {
                m.destroy(dom)?;
            } else {
                m.pause(dom)?;
            }
            Ok(0)
        }
        DOMCTL_UNPAUSEDOMAIN => {
            let dom = target(m, op.domain)?;
            m.unpause(dom).map(|_| 0)
        }
        DOMCTL_GETDOMAININFO => {
            op.info = m.info_from(op.domain).ok_or(Errno::ESRCH)?;
            Ok(0)
        }
        DOMCTL_SCHEDULER_OP => {
            let dom = target(m, op.domain)?;
            match op.sched.op {
                SCHEDOP_GETINFO => {
                    let (w, c) = m.sched_params(dom);
                    op.sched.weight = w;
                    op.sched.cap = c;
                    Ok(0)
                }
                SCHEDOP_PUTINFO => {
                    let (w, c) = (op.sched.weight, op.sched.cap);
                    if w == 0 || u32::from(c) > 100 * m.vcpus(dom) {
                        return Err(Errno::EINVAL);
                    }
                    m.set_sched_params(dom, w, c).map(|_| 0)
                }
                _ => Err(Errno::EINVAL),
            }
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `dom` if it exists, else `ESRCH`.
fn target(m: &impl Manager, dom: u16) -> Result<u16, Errno> {
    if m.exists(dom) {
        Ok(dom)
    } else {
        Err(Errno::ESRCH)
    }
}

/// Checks a create request: every field in range, strings terminated.
pub fn check_create(c: &CreateDomain) -> Result<NewDomain<'_>, Errno> {
    let name = until_nul(&c.name)
        .and_then(|n| core::str::from_utf8(n).ok())
        .ok_or(Errno::EINVAL)?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Errno::EINVAL);
    }
    let cmdline = until_nul(&c.cmdline)
        .and_then(|n| core::str::from_utf8(n).ok())
        .ok_or(Errno::EINVAL)?;
    if !(MIN_MEM_MIB..=MAX_MEM_MIB).contains(&c.mem_mib)
        || !(1..=MAX_VCPUS as u32).contains(&c.vcpus)
        || c.weight > u32::from(u16::MAX)
        || c.cap > 100 * c.vcpus
        || c.flags & !DOMCTL_CDF_DRIVER != 0
    {
        return Err(Errno::EINVAL);
    }
    let image = match c.kernel {
        KERNEL_ELF => false,
        KERNEL_IMAGE => true,
        _ => return Err(Errno::EINVAL),
    };
    Ok(NewDomain {
        name,
        mem_mib: c.mem_mib,
        vcpus: c.vcpus,
        weight: if c.weight == 0 {
            DEFAULT_WEIGHT
        } else {
            c.weight as u16
        },
        cap: c.cap as u16,
        image,
        cmdline,
        driver: c.flags & DOMCTL_CDF_DRIVER != 0,
    })
}

#[cfg(test)]
mod tests;
