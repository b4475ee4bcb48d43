//! Domain management (`domctl`) on the running monitor: the
//! [`Manager`](crate::domctl::Manager) the generic handlers act on, and the
//! copy of the request between guest memory and the handler.

use super::{End, LiveGuest, Monitor};
use crate::config::{Devices, DomainConfig, KernelFormat};
use crate::domctl::{self, Manager, NewDomain};
use crate::hypercall::Guest;
use crate::pagetable::PAGE_SIZE;
use crate::sched::VcpuId;
use crate::vcpu::Power;
use hypercall_abi::domctl::{
    DomainInfo, Domctl, DOMINF_BLOCKED, DOMINF_DYING, DOMINF_PAUSED, DOMINF_RUNNING,
    DOMINF_SHUTDOWN,
};
use hypercall_abi::Errno;

const SIZE: usize = core::mem::size_of::<Domctl>();

impl Monitor {
    /// `domctl(op)` from `cur`'s domain; the value for x0.
    pub(super) fn domctl(&mut self, cur: VcpuId, op_gva: u64) -> i64 {
        let Some(i) = self.dom_index(cur.dom) else {
            return Errno::ESRCH.to_raw();
        };
        let mut b = [0u8; SIZE];
        let g = LiveGuest {
            dom: &mut self.domains[i],
            frames: &mut self.frames,
            vcpu: cur.vcpu as usize,
        };
        if let Err(e) = g.read(op_gva, &mut b) {
            return e.to_raw();
        }
        // SAFETY: `Domctl` is `repr(C)` plain data (integers and byte
        // arrays, no padding: its size is asserted in the ABI crate), so
        // every bit pattern of `SIZE` bytes is a valid value.
        let mut op: Domctl = unsafe { core::ptr::read_unaligned(b.as_ptr().cast()) };
        let r = domctl::domctl(self, cur.dom, &mut op);
        if r.is_ok() {
            // SAFETY: as above; a `Domctl` has no uninitialised bytes.
            let out: [u8; SIZE] = unsafe { core::mem::transmute(op) };
            let Some(i) = self.dom_index(cur.dom) else {
                return Errno::ESRCH.to_raw();
            };
            let mut g = LiveGuest {
                dom: &mut self.domains[i],
                frames: &mut self.frames,
                vcpu: cur.vcpu as usize,
            };
            if let Err(e) = g.write(op_gva, &out) {
                return e.to_raw();
            }
        }
        hypercall_abi::result_to_raw(r)
    }

    fn live(&self, dom: u16) -> Option<usize> {
        self.dom_index(dom)
            .filter(|&i| self.domains[i].ended.is_none())
    }
}

impl Manager for Monitor {
    fn privileged(&self) -> u16 {
        self.privileged
    }

    fn driver(&self) -> Option<u16> {
        self.driver
    }

    fn exists(&self, dom: u16) -> bool {
        self.live(dom).is_some()
    }

    fn name_in_use(&self, name: &str) -> bool {
        self.domains
            .iter()
            .any(|d| d.mem.is_some() && d.name.as_str() == name)
    }

    fn free_kib(&self) -> u64 {
        self.frames.free_frames() * PAGE_SIZE / 1024
    }

    fn create(&mut self, d: &NewDomain<'_>) -> Result<u16, Errno> {
        let mut cfg = DomainConfig {
            name: heapless::String::new(),
            mem_mib: d.mem_mib,
            kernel: if d.image {
                KernelFormat::Image
            } else {
                KernelFormat::Elf
            },
            args: heapless::String::new(),
            vcpus: d.vcpus as u16,
            weight: d.weight,
            cap: d.cap,
            privileged: false,
            driver: d.driver,
            devices: Devices::CONSOLE,
            pin: None,
        };
        cfg.name.push_str(d.name).map_err(|_| Errno::EINVAL)?;
        cfg.args.push_str(d.cmdline).map_err(|_| Errno::E2BIG)?;
        self.create_domain(&cfg).map_err(|_| Errno::ENOMEM)
    }

    fn destroy(&mut self, dom: u16) -> Result<(), Errno> {
        self.live(dom).ok_or(Errno::ESRCH)?;
        self.end_domain(dom, End::Destroyed);
        Ok(())
    }

    fn pause(&mut self, dom: u16) -> Result<(), Errno> {
        self.live(dom).ok_or(Errno::ESRCH)?;
        let m = self.sched.pause(dom).map_err(Errno::from)?;
        self.kick_mask(m);
        Ok(())
    }

    fn unpause(&mut self, dom: u16) -> Result<(), Errno> {
        self.live(dom).ok_or(Errno::ESRCH)?;
        let m = self.sched.unpause(dom).map_err(Errno::from)?;
        self.kick_mask(m);
        Ok(())
    }

    fn info_from(&self, from: u16) -> Option<DomainInfo> {
        let now = self.now();
        let d = self
            .domains
            .iter()
            .filter(|d| d.id >= from && d.mem.is_some())
            .min_by_key(|d| d.id)?;
        let mut info = DomainInfo {
            domain: d.id,
            vcpus: d.vcpus.len() as u32,
            mem_kib: d.mem.as_ref().map_or(0, |m| m.frames() * PAGE_SIZE / 1024),
            cpu_time_ns: self.sched.domain_time(d.id, now).unwrap_or(0),
            ..DomainInfo::default()
        };
        let (w, c) = self.sched.get_params(d.id).unwrap_or((0, 0));
        info.weight = w as u32;
        info.cap = c as u32;
        match d.ended {
            Some(End::Shutdown(r)) => {
                info.flags |= DOMINF_SHUTDOWN | DOMINF_DYING;
                info.shutdown_reason = r as u32;
            }
            Some(_) => info.flags |= DOMINF_DYING,
            None => {
                if self.sched.is_paused(d.id).unwrap_or(false) {
                    info.flags |= DOMINF_PAUSED;
                }
                if d.vcpus.iter().any(|v| v.on_cpu.is_some()) {
                    info.flags |= DOMINF_RUNNING;
                } else if d.vcpus.iter().all(|v| v.power == Power::Down || v.blocked) {
                    info.flags |= DOMINF_BLOCKED;
                }
            }
        }
        let n = d.name.len().min(info.name.len() - 1);
        info.name[..n].copy_from_slice(&d.name.as_bytes()[..n]);
        Some(info)
    }

    fn vcpus(&self, dom: u16) -> u32 {
        self.live(dom)
            .map_or(0, |i| self.domains[i].vcpus.len() as u32)
    }

    fn sched_params(&self, dom: u16) -> (u16, u16) {
        self.sched.get_params(dom).unwrap_or((0, 0))
    }

    fn set_sched_params(&mut self, dom: u16, weight: u16, cap: u16) -> Result<(), Errno> {
        self.sched.set_params(dom, weight, cap).map_err(Errno::from)
    }
}
