//! `event_channel_op`: event channels, the paravirtual interrupts.
//!
//! An event channel connects two *ports*: a port is a small number local to
//! one domain (`1..`[`NR_EVENT_CHANNELS`]; port 0 is never allocated). A port
//! is bound to a peer domain's port (interdomain), to a virtual IRQ of the
//! monitor ([`VIRQ_TIMER`], ...) or to another vCPU of the same domain (IPI).
//! Sending on a port sets the peer port's bit in the peer's
//! [`evtchn_pending`](crate::shared_info::SharedInfo::evtchn_pending) bitmap;
//! the peer is interrupted (an *upcall*) if that port is not masked. The
//! numbers and structs are Xen's `public/event_channel.h`; the call is
//! `event_channel_op(cmd, &arg)` with `cmd` in `x0` and the address of the
//! command's struct in `x1`; it returns 0 or `-errno`, and writes its
//! results (ports) into the struct.
//!
//! # Connecting two domains
//!
//! ```text
//!  server (dom A)                               client (dom B)
//!  alloc_unbound{dom: SELF, remote_dom: B}
//!    -> port pA (state unbound, for B)
//!  ...tells B "pA" (device store, or a convention)...
//!                                               bind_interdomain{remote_dom: A, remote_port: pA}
//!                                                 -> port pB (both interdomain; pB marked pending)
//!  send{pA} -> B's pB pending, B upcalled        send{pB} -> A's pA pending, A upcalled
//!  close{pA} -> pA free; pB back to unbound (send on it: -ENOTCONN)
//! ```
//!
//! # Delivery and acknowledgement on this monitor
//!
//! The 2-level ABI of [`crate::shared_info`]: the monitor sets the pending
//! bit, and if the port is unmasked and its selector bit in
//! `evtchn_pending_sel` was clear, sets the selector bit and
//! `evtchn_upcall_pending`. Guests have no interrupt controller: the
//! upcall is the **virtual IRQ line** (`HCR_EL2.VI`) of the domain's vCPU,
//! taken at the guest's EL1 IRQ vector when `PSTATE.I` is clear.
//!
//! The line is *level-triggered on `evtchn_upcall_pending`*: every time the
//! monitor returns to a vCPU (after any hypercall, trap or interrupt), it
//! sets `VI` if and only if `vcpu_info.evtchn_upcall_pending` is non-zero.
//! There is nothing to EOI. The guest's IRQ handler therefore:
//!
//! 1. writes 0 to `evtchn_upcall_pending`;
//! 2. swaps `evtchn_pending_sel` with 0 and, for each set bit `w`, takes
//!    `evtchn_pending[w] & !evtchn_mask[w]`, clears those bits (atomic
//!    and-not) and runs each port's handler;
//! 3. makes one cheap hypercall before unmasking IRQs (the guest kernel
//!    uses `xen_version(XENVER_version)`, the null hypercall), so that the
//!    monitor re-evaluates the line: it drops `VI` unless a new event set
//!    `evtchn_upcall_pending` again in the meantime, in which case the IRQ
//!    is taken again and nothing is lost.
//!
//! Step 3 is the cheapest correct scheme without an interrupt controller:
//! one trap per upcall batch, none per event, and no extra hypercall number.
//! (A handler that skipped it would just take the IRQ again, find nothing,
//! and eventually trap on the timer tick.)
//!
//! # Differences from Xen
//!
//! * Sending on a port whose peer has closed (state unbound) fails with
//!   [`Errno::ENOTCONN`](crate::Errno::ENOTCONN); Xen drops such a
//!   notification silently. A guest learns that its peer went away.
//! * `bind_pirq`, `reset`, and the FIFO ABI ([`EVTCHNOP_INIT_CONTROL`],
//!   ...) return `-ENOSYS`.
//!
//! # Example (with the guest wrappers)
//!
//! ```ignore
//! use hypercall_abi::evtchn_guest as ev;
//! let port = ev::alloc_unbound(peer)?;       // server side
//! // ... client: let port = ev::bind_interdomain(server, server_port)?;
//! ev::send(port)?;                           // notify the peer
//! ```

/// An event-channel port number (`evtchn_port_t`).
pub type Port = u32;
/// A domain id (`domid_t`).
pub type DomId = u16;

/// `DOMID_SELF`: "the calling domain" wherever a domain id is expected.
pub const DOMID_SELF: DomId = 0x7FF0;
/// `DOMID_INVALID`.
pub const DOMID_INVALID: DomId = 0x7FF4;
/// `DOMID_FIRST_RESERVED`: ids from here up are special (`DOMID_SELF`, ...).
pub const DOMID_FIRST_RESERVED: DomId = 0x7FF0;
/// Ports of the 2-level ABI on a 64-bit guest: 64 words of 64 bits.
pub const NR_EVENT_CHANNELS: u32 = 64 * 64;

/// `EVTCHNOP_bind_interdomain`: [`EvtchnBindInterdomain`].
pub const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
/// `EVTCHNOP_bind_virq`: [`EvtchnBindVirq`].
pub const EVTCHNOP_BIND_VIRQ: u64 = 1;
/// `EVTCHNOP_bind_pirq` (not implemented: no physical IRQs for guests).
pub const EVTCHNOP_BIND_PIRQ: u64 = 2;
/// `EVTCHNOP_close`: [`EvtchnClose`].
pub const EVTCHNOP_CLOSE: u64 = 3;
/// `EVTCHNOP_send`: [`EvtchnSend`].
pub const EVTCHNOP_SEND: u64 = 4;
/// `EVTCHNOP_status`: [`EvtchnStatus`].
pub const EVTCHNOP_STATUS: u64 = 5;
/// `EVTCHNOP_alloc_unbound`: [`EvtchnAllocUnbound`].
pub const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
/// `EVTCHNOP_bind_ipi`: [`EvtchnBindIpi`].
pub const EVTCHNOP_BIND_IPI: u64 = 7;
/// `EVTCHNOP_bind_vcpu`: [`EvtchnBindVcpu`].
pub const EVTCHNOP_BIND_VCPU: u64 = 8;
/// `EVTCHNOP_unmask`: [`EvtchnUnmask`].
pub const EVTCHNOP_UNMASK: u64 = 9;
/// `EVTCHNOP_reset` (not implemented).
pub const EVTCHNOP_RESET: u64 = 10;
/// `EVTCHNOP_init_control` (FIFO ABI, not implemented).
pub const EVTCHNOP_INIT_CONTROL: u64 = 11;
/// `EVTCHNOP_expand_array` (FIFO ABI, not implemented).
pub const EVTCHNOP_EXPAND_ARRAY: u64 = 12;
/// `EVTCHNOP_set_priority` (FIFO ABI, not implemented).
pub const EVTCHNOP_SET_PRIORITY: u64 = 13;

/// `VIRQ_TIMER`: the vCPU's one-shot timer (`set_timer_op`,
/// `VCPUOP_set_singleshot_timer`) reached its deadline. As in Xen, it is
/// lost if the domain has not bound it.
pub const VIRQ_TIMER: u32 = 0;
/// `VIRQ_DEBUG`: per-vCPU debug request.
pub const VIRQ_DEBUG: u32 = 1;
/// `VIRQ_CONSOLE`: global, console input for the control domain.
pub const VIRQ_CONSOLE: u32 = 2;
/// `VIRQ_DOM_EXC`: global, a domain changed state (e.g. was destroyed).
pub const VIRQ_DOM_EXC: u32 = 3;
/// `VIRQ_TBUF`: global, trace buffer.
pub const VIRQ_TBUF: u32 = 4;
/// `VIRQ_DEBUGGER`: global, a domain hit a debug event.
pub const VIRQ_DEBUGGER: u32 = 6;
/// `VIRQ_XENOPROF`: per-vCPU profiling.
pub const VIRQ_XENOPROF: u32 = 7;
/// `VIRQ_CON_RING`: global, console ring.
pub const VIRQ_CON_RING: u32 = 8;
/// `VIRQ_PCPU_STATE`: global, physical CPU state change.
pub const VIRQ_PCPU_STATE: u32 = 9;
/// `VIRQ_MEM_EVENT`: global, memory event.
pub const VIRQ_MEM_EVENT: u32 = 10;
/// `VIRQ_ARGO`: per-domain, Argo messages.
pub const VIRQ_ARGO: u32 = 11;
/// `VIRQ_ENOMEM`: global, the monitor is low on memory.
pub const VIRQ_ENOMEM: u32 = 12;
/// `VIRQ_XENPMU`: per-vCPU, PMU.
pub const VIRQ_XENPMU: u32 = 13;
/// `NR_VIRQS`: virtual IRQs are `0..NR_VIRQS` (16..23 are arch-specific).
pub const NR_VIRQS: u32 = 24;

/// Whether `virq` is per-vCPU (bound once per vCPU) rather than global
/// (bound once per domain, movable with `bind_vcpu`).
pub const fn virq_is_per_vcpu(virq: u32) -> bool {
    matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// `EVTCHNSTAT_closed`: the port is free.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `EVTCHNSTAT_unbound`: waiting for (or lost) its interdomain peer.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `EVTCHNSTAT_interdomain`: connected to a port of another domain.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `EVTCHNSTAT_pirq`: bound to a physical IRQ.
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// `EVTCHNSTAT_virq`: bound to a virtual IRQ.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `EVTCHNSTAT_ipi`: an inter-vCPU channel.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// `struct evtchn_alloc_unbound`: allocate a port in `dom` (must be
/// [`DOMID_SELF`] or the caller's own id) that `remote_dom` may bind to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnAllocUnbound {
    /// In: the domain to allocate in.
    pub dom: DomId,
    /// In: the only domain allowed to bind the port.
    pub remote_dom: DomId,
    /// Out: the new port.
    pub port: Port,
}

/// `struct evtchn_bind_interdomain`: connect a new local port to
/// `remote_port` of `remote_dom`, which must be unbound and allocated for
/// the caller. Both ends become interdomain; the local port is marked
/// pending (as Xen does), so the binder sees one event at once.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindInterdomain {
    /// In: the peer domain.
    pub remote_dom: DomId,
    /// In: the peer's unbound port.
    pub remote_port: Port,
    /// Out: the new local port.
    pub local_port: Port,
}

/// `struct evtchn_bind_virq`: bind virtual IRQ `virq` on `vcpu` to a new
/// port. A VIRQ can be bound once per vCPU (`-EEXIST` the second time).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVirq {
    /// In: the VIRQ (`VIRQ_*`, below [`NR_VIRQS`]).
    pub virq: u32,
    /// In: the vCPU to notify.
    pub vcpu: u32,
    /// Out: the new port.
    pub port: Port,
}

/// `struct evtchn_bind_ipi`: a new port that notifies `vcpu` of the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindIpi {
    /// In: the vCPU to notify.
    pub vcpu: u32,
    /// Out: the new port.
    pub port: Port,
}

/// `struct evtchn_close`: free `port`. An interdomain peer goes back to
/// unbound (it may be bound again by the same domain).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnClose {
    /// In: the port.
    pub port: Port,
}

/// `struct evtchn_send`: notify the other end of `port`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSend {
    /// In: the port.
    pub port: Port,
}

/// `struct evtchn_status`: what `port` of `dom` is bound to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatus {
    /// In: the domain ([`DOMID_SELF`] or the caller's id).
    pub dom: DomId,
    /// In: the port.
    pub port: Port,
    /// Out: `EVTCHNSTAT_*`.
    pub status: u32,
    /// Out: the vCPU notified.
    pub vcpu: u32,
    /// Out: for unbound, `u[0..2]` is the allowed remote domain; for
    /// interdomain, `u[0..2]` the peer domain and `u[4..8]` the peer port;
    /// for virq, `u[0..4]` the VIRQ (all little-endian). See
    /// [`EvtchnStatus::remote_dom`], [`EvtchnStatus::remote_port`],
    /// [`EvtchnStatus::virq`].
    pub u: [u8; 8],
}

impl EvtchnStatus {
    /// The remote domain (unbound and interdomain ports).
    pub fn remote_dom(&self) -> DomId {
        u16::from_le_bytes([self.u[0], self.u[1]])
    }
    /// The remote port (interdomain ports).
    pub fn remote_port(&self) -> Port {
        u32::from_le_bytes([self.u[4], self.u[5], self.u[6], self.u[7]])
    }
    /// The VIRQ (virq ports).
    pub fn virq(&self) -> u32 {
        u32::from_le_bytes([self.u[0], self.u[1], self.u[2], self.u[3]])
    }
}

/// `struct evtchn_bind_vcpu`: notify `vcpu` instead (interdomain, unbound
/// and global-VIRQ ports; per-vCPU VIRQs and IPIs cannot move).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVcpu {
    /// In: the port.
    pub port: Port,
    /// In: the vCPU.
    pub vcpu: u32,
}

/// `struct evtchn_unmask`: clear `port`'s mask bit; if it is pending, the
/// upcall is raised as if it had just been sent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnUnmask {
    /// In: the port.
    pub port: Port,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<EvtchnAllocUnbound>() == 8);
    assert!(size_of::<EvtchnBindInterdomain>() == 12);
    assert!(offset_of!(EvtchnBindInterdomain, remote_port) == 4);
    assert!(size_of::<EvtchnBindVirq>() == 12);
    assert!(size_of::<EvtchnBindIpi>() == 8);
    assert!(size_of::<EvtchnClose>() == 4);
    assert!(size_of::<EvtchnSend>() == 4);
    assert!(size_of::<EvtchnStatus>() == 24);
    assert!(offset_of!(EvtchnStatus, status) == 8);
    assert!(offset_of!(EvtchnStatus, u) == 16);
    assert!(size_of::<EvtchnBindVcpu>() == 8);
    assert!(size_of::<EvtchnUnmask>() == 4);
};
