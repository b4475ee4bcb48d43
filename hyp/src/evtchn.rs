//! Event channels: the per-domain port state machine of `event_channel_op`
//! and delivery through each domain's shared-info page (2-level ABI).
//!
//! Ports refer to each other by (domain id, port number), never by
//! pointer, so closing one end or removing a domain leaves nothing
//! dangling: the peer of a closed or destroyed end goes back to
//! `Unbound` (send on it: `ENOTCONN`). Every operation validates all of
//! its arguments before it changes anything, so a refused call leaves the
//! state unchanged.
//!
//! The shared-info page is any `P: Deref<Target = SharedInfo>`: a monitor
//! frame on the target, a heap page in tests. Operations that make a port
//! pending return the [`Upcall`] to raise, if any; the monitor also
//! re-derives its virtual IRQ line from the page on every guest entry.

use alloc::vec::Vec;
use core::ops::Deref;
use hypercall_abi::errno::Errno;
use hypercall_abi::event_channel::*;
use hypercall_abi::shared_info::SharedInfo;

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not allocated.
    Free,
    /// Allocated for `remote` to bind (or left by a peer that closed).
    Unbound {
        /// The only domain that may bind.
        remote: DomId,
    },
    /// Connected to `port` of `remote`.
    Interdomain {
        /// The peer domain.
        remote: DomId,
        /// The peer's port.
        port: Port,
    },
    /// Bound to a virtual IRQ.
    Virq(u32),
    /// An inter-vCPU channel.
    Ipi,
}

/// One port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortEntry {
    /// Binding.
    pub state: PortState,
    /// vCPU notified.
    pub vcpu: u32,
}

const FREE: PortEntry = PortEntry {
    state: PortState::Free,
    vcpu: 0,
};

/// A vCPU whose upcall line must be raised (`evtchn_upcall_pending` went
/// from 0 to 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upcall {
    /// Domain.
    pub dom: DomId,
    /// vCPU.
    pub vcpu: u32,
}

/// A domain's event-channel state.
#[derive(Debug)]
pub struct DomainEvents<P> {
    ports: Vec<PortEntry>,
    virqs: [Option<Port>; NR_VIRQS as usize],
    vcpus: u32,
    page: P,
}

impl<P> DomainEvents<P> {
    /// The ports (index = port number; port 0 is never allocated).
    pub fn ports(&self) -> &[PortEntry] {
        &self.ports
    }
    /// Port bound to each VIRQ.
    pub fn virqs(&self) -> &[Option<Port>] {
        &self.virqs
    }
}

/// Largest domain id this table takes (ids index a vector).
pub const MAX_DOMID: DomId = 1023;

/// Every domain's event channels.
#[derive(Debug)]
pub struct EventChannels<P> {
    doms: Doms<DomainEvents<P>>,
}

impl<P> Default for EventChannels<P> {
    fn default() -> Self {
        Self {
            doms: Doms(Vec::new()),
        }
    }
}

/// Domains by id: a vector indexed by id (ids are small and dense), with
/// the map operations the state machine needs.
#[derive(Debug)]
struct Doms<T>(Vec<Option<T>>);

impl<T> Doms<T> {
    #[inline(always)]
    fn get(&self, id: &DomId) -> Option<&T> {
        self.0.get(*id as usize)?.as_ref()
    }
    fn get_mut(&mut self, id: &DomId) -> Option<&mut T> {
        self.0.get_mut(*id as usize)?.as_mut()
    }
    fn contains_key(&self, id: &DomId) -> bool {
        self.get(id).is_some()
    }
    fn insert(&mut self, id: DomId, v: T) {
        let i = id as usize;
        if self.0.len() <= i {
            self.0.resize_with(i + 1, || None);
        }
        self.0[i] = Some(v);
    }
    fn remove(&mut self, id: &DomId) -> Option<T> {
        self.0.get_mut(*id as usize)?.take()
    }
    fn iter(&self) -> impl Iterator<Item = (DomId, &T)> {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as DomId, v)))
    }
}

fn resolve(caller: DomId, dom: DomId) -> DomId {
    if dom == DOMID_SELF {
        caller
    } else {
        dom
    }
}

impl<P: Deref<Target = SharedInfo>> EventChannels<P> {
    /// No domains.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers domain `dom` with `vcpus` vCPUs and its shared-info page.
    pub fn add_domain(&mut self, dom: DomId, vcpus: u32, page: P) -> Result<(), Errno> {
        if dom > MAX_DOMID || vcpus == 0 {
            return Err(Errno::EINVAL);
        }
        if self.doms.contains_key(&dom) {
            return Err(Errno::EEXIST);
        }
        self.doms.insert(
            dom,
            DomainEvents {
                ports: alloc::vec![FREE],
                virqs: [None; NR_VIRQS as usize],
                vcpus,
                page,
            },
        );
        Ok(())
    }

    /// Removes domain `dom` (destruction): its interdomain peers go back to
    /// unbound (remote = `dom`). Returns its page so the caller can free it.
    pub fn remove_domain(&mut self, dom: DomId) -> Option<P> {
        let d = self.doms.remove(&dom)?;
        for e in &d.ports {
            if let PortState::Interdomain { remote, port } = e.state {
                if let Some(r) = self.doms.get_mut(&remote) {
                    if let Some(pe) = r.ports.get_mut(port as usize) {
                        pe.state = PortState::Unbound { remote: dom };
                    }
                }
            }
        }
        Some(d.page)
    }

    /// Domain `dom`'s state, if registered.
    pub fn domain(&self, dom: DomId) -> Option<&DomainEvents<P>> {
        self.doms.get(&dom)
    }

    /// Registered domains.
    pub fn domains(&self) -> impl Iterator<Item = (DomId, &DomainEvents<P>)> {
        self.doms.iter()
    }

    /// The shared-info page of `dom`.
    pub fn page(&self, dom: DomId) -> Option<&P> {
        self.doms.get(&dom).map(|d| &d.page)
    }

    /// Whether vCPU 0 of `dom` has its upcall pending (the virtual IRQ
    /// line the monitor presents).
    pub fn upcall_pending(&self, dom: DomId) -> bool {
        self.doms
            .get(&dom)
            .is_some_and(|d| d.page.vcpu_info[0].upcall_pending())
    }

    #[inline(always)]
    fn dom(&self, dom: DomId) -> Result<&DomainEvents<P>, Errno> {
        self.doms.get(&dom).ok_or(Errno::ESRCH)
    }

    fn dom_mut(&mut self, dom: DomId) -> Result<&mut DomainEvents<P>, Errno> {
        self.doms.get_mut(&dom).ok_or(Errno::ESRCH)
    }

    /// The bound (non-free) port `port` of `dom`: `EINVAL` otherwise.
    #[inline(always)]
    fn bound(&self, dom: DomId, port: Port) -> Result<PortEntry, Errno> {
        let d = self.dom(dom)?;
        match d.ports.get(port as usize) {
            Some(e) if port != 0 && e.state != PortState::Free => Ok(*e),
            _ => Err(Errno::EINVAL),
        }
    }

    /// A free port number of `dom` (not yet taken): the lowest free one.
    fn free_port(&self, dom: DomId) -> Result<Port, Errno> {
        let d = self.dom(dom)?;
        if let Some(p) = (1..d.ports.len()).find(|&p| d.ports[p].state == PortState::Free) {
            return Ok(p as Port);
        }
        if d.ports.len() >= NR_EVENT_CHANNELS as usize {
            return Err(Errno::ENOSPC);
        }
        Ok(d.ports.len() as Port)
    }

    fn set(&mut self, dom: DomId, port: Port, e: PortEntry) {
        if let Some(d) = self.doms.get_mut(&dom) {
            let p = port as usize;
            if p >= d.ports.len() {
                d.ports.resize(p + 1, FREE);
            }
            d.ports[p] = e;
        }
    }

    #[inline(always)]
    fn mark(&self, dom: DomId, port: Port) -> Option<Upcall> {
        let d = self.doms.get(&dom)?;
        let vcpu = d.ports.get(port as usize)?.vcpu;
        d.page.mark_pending(port).then_some(Upcall { dom, vcpu })
    }

    /// `EVTCHNOP_alloc_unbound`.
    pub fn alloc_unbound(
        &mut self,
        caller: DomId,
        dom: DomId,
        remote: DomId,
    ) -> Result<Port, Errno> {
        if resolve(caller, dom) != caller {
            return Err(Errno::EPERM);
        }
        let remote = resolve(caller, remote);
        let p = self.free_port(caller)?;
        self.set(
            caller,
            p,
            PortEntry {
                state: PortState::Unbound { remote },
                vcpu: 0,
            },
        );
        Ok(p)
    }

    /// `EVTCHNOP_bind_interdomain`: returns the new local port and the
    /// upcall caused by marking it pending.
    pub fn bind_interdomain(
        &mut self,
        caller: DomId,
        remote_dom: DomId,
        remote_port: Port,
    ) -> Result<(Port, Option<Upcall>), Errno> {
        let rd = resolve(caller, remote_dom);
        self.dom(caller)?;
        self.dom(rd)?;
        match self.bound(rd, remote_port)?.state {
            PortState::Unbound { remote } if remote == caller => {}
            _ => return Err(Errno::EINVAL),
        }
        // (A loopback bind never gets the remote port itself: it is not free.)
        let lp = self.free_port(caller)?;
        self.set(
            caller,
            lp,
            PortEntry {
                state: PortState::Interdomain {
                    remote: rd,
                    port: remote_port,
                },
                vcpu: 0,
            },
        );
        // `bound` checked the remote port above.
        let rvcpu = self.bound(rd, remote_port)?.vcpu;
        self.set(
            rd,
            remote_port,
            PortEntry {
                state: PortState::Interdomain {
                    remote: caller,
                    port: lp,
                },
                vcpu: rvcpu,
            },
        );
        Ok((lp, self.mark(caller, lp)))
    }

    /// `EVTCHNOP_bind_virq`.
    pub fn bind_virq(&mut self, caller: DomId, virq: u32, vcpu: u32) -> Result<Port, Errno> {
        let d = self.dom(caller)?;
        if virq >= NR_VIRQS {
            return Err(Errno::EINVAL);
        }
        if vcpu >= d.vcpus {
            return Err(Errno::ENOENT);
        }
        if !virq_is_per_vcpu(virq) && vcpu != 0 {
            return Err(Errno::EINVAL);
        }
        // One vCPU per domain here: one binding per VIRQ.
        if d.virqs[virq as usize].is_some() {
            return Err(Errno::EEXIST);
        }
        let p = self.free_port(caller)?;
        self.set(
            caller,
            p,
            PortEntry {
                state: PortState::Virq(virq),
                vcpu,
            },
        );
        self.dom_mut(caller)?.virqs[virq as usize] = Some(p);
        Ok(p)
    }

    /// `EVTCHNOP_bind_ipi`.
    pub fn bind_ipi(&mut self, caller: DomId, vcpu: u32) -> Result<Port, Errno> {
        if vcpu >= self.dom(caller)?.vcpus {
            return Err(Errno::ENOENT);
        }
        let p = self.free_port(caller)?;
        self.set(
            caller,
            p,
            PortEntry {
                state: PortState::Ipi,
                vcpu,
            },
        );
        Ok(p)
    }

    /// `EVTCHNOP_close`: frees the port (and clears its pending bit); an
    /// interdomain peer becomes unbound, waiting for the caller again.
    pub fn close(&mut self, caller: DomId, port: Port) -> Result<(), Errno> {
        let e = self.bound(caller, port)?;
        match e.state {
            PortState::Interdomain { remote, port: rp } => {
                if let Some(r) = self.doms.get_mut(&remote) {
                    if let Some(pe) = r.ports.get_mut(rp as usize) {
                        pe.state = PortState::Unbound { remote: caller };
                    }
                }
            }
            PortState::Virq(v) => self.dom_mut(caller)?.virqs[v as usize] = None,
            _ => {}
        }
        self.set(caller, port, FREE);
        self.dom(caller)?.page.clear_pending(port);
        Ok(())
    }

    /// `EVTCHNOP_send`: marks the other end pending (on a port already
    /// pending, that changes nothing: no upcall). `ESRCH` only if `caller`
    /// is not registered.
    #[inline(always)]
    pub fn send(&mut self, caller: DomId, port: Port) -> Result<Option<Upcall>, Errno> {
        match self.bound(caller, port)?.state {
            PortState::Interdomain { remote, port } => Ok(self.mark(remote, port)),
            PortState::Ipi => Ok(self.mark(caller, port)),
            PortState::Unbound { .. } => Err(Errno::ENOTCONN),
            _ => Err(Errno::EINVAL),
        }
    }

    /// `EVTCHNOP_status`.
    pub fn status(&self, caller: DomId, dom: DomId, port: Port) -> Result<EvtchnStatus, Errno> {
        let dom = resolve(caller, dom);
        if dom != caller {
            return Err(Errno::EPERM);
        }
        let d = self.dom(dom)?;
        let e = match d.ports.get(port as usize) {
            Some(e) if port != 0 => *e,
            _ => return Err(Errno::EINVAL),
        };
        let mut s = EvtchnStatus {
            dom,
            port,
            vcpu: e.vcpu,
            ..Default::default()
        };
        match e.state {
            PortState::Free => s.status = EVTCHNSTAT_CLOSED,
            PortState::Unbound { remote } => {
                s.status = EVTCHNSTAT_UNBOUND;
                s.u[0..2].copy_from_slice(&remote.to_le_bytes());
            }
            PortState::Interdomain { remote, port } => {
                s.status = EVTCHNSTAT_INTERDOMAIN;
                s.u[0..2].copy_from_slice(&remote.to_le_bytes());
                s.u[4..8].copy_from_slice(&port.to_le_bytes());
            }
            PortState::Virq(v) => {
                s.status = EVTCHNSTAT_VIRQ;
                s.u[0..4].copy_from_slice(&v.to_le_bytes());
            }
            PortState::Ipi => s.status = EVTCHNSTAT_IPI,
        }
        Ok(s)
    }

    /// `EVTCHNOP_unmask`.
    pub fn unmask(&mut self, caller: DomId, port: Port) -> Result<Option<Upcall>, Errno> {
        let d = self.dom(caller)?;
        let e = match d.ports.get(port as usize) {
            Some(e) if port != 0 => *e,
            _ => return Err(Errno::EINVAL),
        };
        Ok(d.page.unmask(port).then_some(Upcall {
            dom: caller,
            vcpu: e.vcpu,
        }))
    }

    /// `EVTCHNOP_bind_vcpu`.
    pub fn bind_vcpu(&mut self, caller: DomId, port: Port, vcpu: u32) -> Result<(), Errno> {
        let e = self.bound(caller, port)?;
        if vcpu >= self.dom(caller)?.vcpus {
            return Err(Errno::ENOENT);
        }
        match e.state {
            PortState::Virq(v) if virq_is_per_vcpu(v) => return Err(Errno::EINVAL),
            PortState::Ipi => return Err(Errno::EINVAL),
            _ => {}
        }
        self.set(caller, port, PortEntry { vcpu, ..e });
        Ok(())
    }

    /// Raises `virq` for `dom` if it is bound (the monitor's side).
    pub fn raise_virq(&mut self, dom: DomId, virq: u32) -> Option<Upcall> {
        self.raise_virq_if_bound(dom, virq).flatten()
    }

    /// Raises `virq` for `dom`: `None` if `dom` did not bind it (the
    /// caller may deliver it some other way), else `Some` of the upcall it
    /// raised, if any (none when the port was already pending or masked).
    pub fn raise_virq_if_bound(&mut self, dom: DomId, virq: u32) -> Option<Option<Upcall>> {
        let p = (*self.doms.get(&dom)?.virqs.get(virq as usize)?)?;
        Some(self.mark(dom, p))
    }

    /// Raises `virq` for every domain that bound it.
    pub fn raise_virq_all(&mut self, virq: u32) {
        for i in 0..self.doms.0.len() {
            self.raise_virq(i as DomId, virq);
        }
    }

    /// Checks the cross-references (tests and debugging): every
    /// interdomain port's peer points back at it, every VIRQ entry names a
    /// port bound to that VIRQ and vice versa, port 0 is free.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        for (id, d) in self.doms.iter() {
            if d.ports.first() != Some(&FREE) {
                return Err("port 0 allocated");
            }
            for (p, e) in d.ports.iter().enumerate() {
                match e.state {
                    PortState::Interdomain { remote, port } => {
                        let back = self
                            .doms
                            .get(&remote)
                            .and_then(|r| r.ports.get(port as usize))
                            .ok_or("interdomain peer missing")?;
                        if back.state
                            != (PortState::Interdomain {
                                remote: id,
                                port: p as Port,
                            })
                        {
                            return Err("interdomain peer does not point back");
                        }
                    }
                    PortState::Virq(v) if d.virqs.get(v as usize) != Some(&Some(p as Port)) => {
                        return Err("virq port not in the virq table");
                    }
                    _ => {}
                }
                if e.vcpu >= d.vcpus {
                    return Err("port notifies a vCPU that does not exist");
                }
            }
            for (v, p) in d.virqs.iter().enumerate() {
                if let Some(p) = p {
                    if d.ports.get(*p as usize).map(|e| e.state) != Some(PortState::Virq(v as u32))
                    {
                        return Err("virq table names a port not bound to it");
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
