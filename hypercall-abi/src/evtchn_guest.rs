//! Safe guest wrappers for `event_channel_op` and for placing the
//! shared-info page (aarch64 only). See [`crate::event_channel`] for the
//! semantics and the upcall scheme.
//!
//! ```ignore
//! use hypercall_abi::{evtchn_guest as ev, memory::GUEST_MAGIC_BASE};
//! let shared = ev::map_shared_info(GUEST_MAGIC_BASE >> 12)?; // &'static SharedInfo
//! let port = ev::alloc_unbound(2)?;          // for domain 2 to bind
//! ev::unmask(port)?;
//! ev::send(port)?;                            // -ENOTCONN until bound
//! ```

use crate::errno::{result_from_raw, Errno};
use crate::event_channel::*;
use crate::hvc;
use crate::memory::{XenAddToPhysmap, XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP};
use crate::nr;
use crate::shared_info::SharedInfo;

fn op<T>(cmd: u64, arg: &mut T) -> Result<(), Errno> {
    // SAFETY: `arg` is a live, aligned `#[repr(C)]` struct of the type the
    // monitor expects for `cmd` (each caller below pairs them); the monitor
    // reads and writes only that struct.
    let r = unsafe { hvc::hypercall2(nr::EVENT_CHANNEL_OP, cmd, core::ptr::from_mut(arg) as u64) };
    result_from_raw(r).map(|_| ())
}

/// `EVTCHNOP_alloc_unbound`: a new port of the caller that `remote_dom`
/// may bind to.
pub fn alloc_unbound(remote_dom: DomId) -> Result<Port, Errno> {
    let mut a = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom,
        port: 0,
    };
    op(EVTCHNOP_ALLOC_UNBOUND, &mut a).map(|_| a.port)
}

/// `EVTCHNOP_alloc_unbound` with an explicit `dom` (to check refusals:
/// only [`DOMID_SELF`] or the caller's own id are allowed).
pub fn alloc_unbound_in(dom: DomId, remote_dom: DomId) -> Result<Port, Errno> {
    let mut a = EvtchnAllocUnbound {
        dom,
        remote_dom,
        port: 0,
    };
    op(EVTCHNOP_ALLOC_UNBOUND, &mut a).map(|_| a.port)
}

/// `EVTCHNOP_bind_interdomain`: connect to `remote_port` of `remote_dom`;
/// returns the new local port (already marked pending).
pub fn bind_interdomain(remote_dom: DomId, remote_port: Port) -> Result<Port, Errno> {
    let mut a = EvtchnBindInterdomain {
        remote_dom,
        remote_port,
        local_port: 0,
    };
    op(EVTCHNOP_BIND_INTERDOMAIN, &mut a).map(|_| a.local_port)
}

/// `EVTCHNOP_bind_virq`: bind `virq` on `vcpu`.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<Port, Errno> {
    let mut a = EvtchnBindVirq {
        virq,
        vcpu,
        port: 0,
    };
    op(EVTCHNOP_BIND_VIRQ, &mut a).map(|_| a.port)
}

/// `EVTCHNOP_bind_ipi`: a port that notifies `vcpu` of this domain.
pub fn bind_ipi(vcpu: u32) -> Result<Port, Errno> {
    let mut a = EvtchnBindIpi { vcpu, port: 0 };
    op(EVTCHNOP_BIND_IPI, &mut a).map(|_| a.port)
}

/// `EVTCHNOP_close`.
pub fn close(port: Port) -> Result<(), Errno> {
    op(EVTCHNOP_CLOSE, &mut EvtchnClose { port })
}

/// `EVTCHNOP_send`: notify the other end of `port`.
#[inline]
pub fn send(port: Port) -> Result<(), Errno> {
    op(EVTCHNOP_SEND, &mut EvtchnSend { port })
}

/// `EVTCHNOP_status` of `port` in `dom` ([`DOMID_SELF`] for the caller).
pub fn status(dom: DomId, port: Port) -> Result<EvtchnStatus, Errno> {
    let mut a = EvtchnStatus {
        dom,
        port,
        ..Default::default()
    };
    op(EVTCHNOP_STATUS, &mut a).map(|_| a)
}

/// `EVTCHNOP_unmask`: unmask `port` (delivering it if pending).
pub fn unmask(port: Port) -> Result<(), Errno> {
    op(EVTCHNOP_UNMASK, &mut EvtchnUnmask { port })
}

/// `EVTCHNOP_bind_vcpu`: notify `vcpu` for `port`.
pub fn bind_vcpu(port: Port, vcpu: u32) -> Result<(), Errno> {
    op(EVTCHNOP_BIND_VCPU, &mut EvtchnBindVcpu { port, vcpu })
}

/// `memory_op(XENMEM_add_to_physmap)` with any arguments.
pub fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> Result<(), Errno> {
    let mut a = XenAddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space,
        idx,
        gpfn,
    };
    // SAFETY: `a` is a live, aligned `XenAddToPhysmap` that the monitor
    // only reads. Placing a monitor page at `gpfn` changes only the
    // window, never RAM (see `crate::memory`), so no Rust object moves.
    let r = unsafe {
        hvc::hypercall2(
            nr::MEMORY_OP,
            XENMEM_ADD_TO_PHYSMAP,
            core::ptr::from_mut(&mut a) as u64,
        )
    };
    result_from_raw(r).map(|_| ())
}

/// Places the shared-info page at guest frame `gpfn` (of the magic
/// window) and returns it. The MMU must be off or map the window
/// identically, as Normal memory.
pub fn map_shared_info(gpfn: u64) -> Result<&'static SharedInfo, Errno> {
    add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, gpfn)?;
    let addr = gpfn << 12;
    // SAFETY: the monitor has just mapped its shared-info page at `addr`
    // (a page outside RAM that no Rust object occupies) and keeps it there
    // for the domain's lifetime; `SharedInfo` is all atomics, so shared
    // access with the monitor is sound.
    Ok(unsafe { &*(addr as *const SharedInfo) })
}
