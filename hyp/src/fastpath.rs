//! Decisions of the trap fast path: the hypercalls the monitor answers
//! without its global lock, and what happens to the virtual IRQ line on
//! the way back to the guest. Plain functions over register values; the
//! target glue is `monitor::fast`.
//!
//! A hypercall qualifies when it needs nothing but the caller's own
//! registers and memory, or (`EVTCHNOP_send`) the event-channel state,
//! which has a lock of its own. Anything else, and any case the fast path
//! cannot settle cheaply, goes the ordinary way.

use crate::esr::{ec, Esr};
use crate::hypercall;
use hypercall_abi::event_channel::EVTCHNOP_SEND;
use hypercall_abi::nr;

/// A hypercall the fast path handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastCall {
    /// Answered from the arguments alone: the value for x0.
    Value(u64),
    /// `EVTCHNOP_send` with its argument struct at this guest address.
    EvtchnSend {
        /// Guest virtual address of the `evtchn_send` struct.
        arg: u64,
    },
}

/// The fast-path hypercall an exception with syndrome `esr` and registers
/// `x16` (number), `x0`, `x1` is, if any.
#[inline(always)]
pub fn classify(esr: u64, x16: u64, x0: u64, x1: u64) -> Option<FastCall> {
    let e = Esr(esr);
    if e.ec() != ec::HVC64 || e.imm16() != nr::HVC_IMM {
        return None;
    }
    match x16 {
        nr::XEN_VERSION => hypercall::xen_version_value(x0).map(FastCall::Value),
        nr::EVENT_CHANNEL_OP if x0 == EVTCHNOP_SEND => Some(FastCall::EvtchnSend { arg: x1 }),
        _ => None,
    }
}

/// What to do with the virtual IRQ line (HCR_EL2.VI) before returning to
/// the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// It is right as it is.
    Keep,
    /// Raise it.
    Raise,
    /// Drop it.
    Drop,
}

/// The line is up exactly when the vCPU's `evtchn_upcall_pending` is set
/// or its one-shot timer fired (`timer_pending`). The fast path reads the
/// first but not the second (other CPUs set it under the monitor lock), so
/// it uses `timer_seen`, the value the locked path last saw. That suffices:
/// only the vCPU itself clears it (through the locked path, which updates
/// `timer_seen`), and a CPU that sets it while the vCPU runs elsewhere
/// kicks that CPU, whose locked path then raises the line.
///
/// `up`: the line now; `upcall`: `evtchn_upcall_pending` now.
#[inline(always)]
pub fn line(up: bool, upcall: bool, timer_seen: bool) -> Line {
    match (up, upcall || timer_seen) {
        (false, true) => Line::Raise,
        (true, false) => Line::Drop,
        _ => Line::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercall_abi::version as ver;

    fn esr(ec: u8, imm: u16) -> u64 {
        (ec as u64) << 26 | 1 << 25 | imm as u64
    }

    #[test]
    fn only_xen_hvcs_qualify() {
        let x = nr::XEN_VERSION;
        let v = ver::XENVER_VERSION;
        assert!(classify(esr(ec::HVC64, nr::HVC_IMM), x, v, 0).is_some());
        assert_eq!(classify(esr(ec::HVC64, 0), x, v, 0), None, "PSCI");
        assert_eq!(classify(esr(ec::HVC64, 1), x, v, 0), None);
        assert_eq!(classify(esr(ec::SMC64, nr::HVC_IMM), x, v, 0), None);
        assert_eq!(classify(esr(ec::SVC64, nr::HVC_IMM), x, v, 0), None);
        assert_eq!(classify(esr(ec::DABT_LOWER, 0), x, v, 0), None);
    }

    #[test]
    fn version_answers_match_the_full_handler() {
        struct NoMem;
        impl hypercall::Guest for NoMem {
            fn read(&self, _: u64, _: &mut [u8]) -> Result<(), hypercall_abi::errno::Errno> {
                Err(hypercall_abi::errno::Errno::EFAULT)
            }
            fn write(&mut self, _: u64, _: &[u8]) -> Result<(), hypercall_abi::errno::Errno> {
                Err(hypercall_abi::errno::Errno::EFAULT)
            }
            fn console(&mut self, _: &[u8]) {}
            fn handle(&self) -> [u8; 16] {
                [0; 16]
            }
        }
        let e = esr(ec::HVC64, nr::HVC_IMM);
        for cmd in 0..32u64 {
            let full = hypercall::dispatch(&mut NoMem, nr::XEN_VERSION, [cmd, 0x1000, 0, 0, 0]);
            match classify(e, nr::XEN_VERSION, cmd, 0x1000) {
                Some(FastCall::Value(v)) => {
                    assert_eq!(full, hypercall::Action::Return(v as i64), "cmd {cmd}")
                }
                None => {}
                other => panic!("cmd {cmd}: {other:?}"),
            }
        }
        assert_eq!(
            classify(e, nr::XEN_VERSION, ver::XENVER_VERSION, 0),
            Some(FastCall::Value(hypercall::VERSION as u64))
        );
        // Commands that touch guest memory go the ordinary way.
        assert_eq!(
            classify(e, nr::XEN_VERSION, ver::XENVER_EXTRAVERSION, 0),
            None
        );
    }

    #[test]
    fn only_evtchn_send_qualifies_among_event_ops() {
        let e = esr(ec::HVC64, nr::HVC_IMM);
        assert_eq!(
            classify(e, nr::EVENT_CHANNEL_OP, EVTCHNOP_SEND, 0x4000_1000),
            Some(FastCall::EvtchnSend { arg: 0x4000_1000 })
        );
        for cmd in 0..16u64 {
            if cmd != EVTCHNOP_SEND {
                assert_eq!(classify(e, nr::EVENT_CHANNEL_OP, cmd, 0), None, "cmd {cmd}");
            }
        }
        for n in [
            nr::GRANT_TABLE_OP,
            nr::MEMORY_OP,
            nr::SCHED_OP,
            nr::DOMCTL,
            9999,
        ] {
            assert_eq!(classify(e, n, EVTCHNOP_SEND, 0), None, "nr {n}");
        }
    }

    /// The line the locked path would set: up iff upcall or timer.
    fn wanted(upcall: bool, timer: bool) -> bool {
        upcall || timer
    }

    #[test]
    fn line_follows_the_upcall_and_never_drops_a_timer_it_saw() {
        for up in [false, true] {
            for upcall in [false, true] {
                for timer in [false, true] {
                    let after = match line(up, upcall, timer) {
                        Line::Keep => up,
                        Line::Raise => true,
                        Line::Drop => false,
                    };
                    if up == wanted(upcall, timer) {
                        assert_eq!(line(up, upcall, timer), Line::Keep);
                    }
                    assert_eq!(after, wanted(upcall, timer), "{up} {upcall} {timer}");
                }
            }
        }
    }

    #[test]
    fn the_guest_dropping_its_upcall_drops_the_line() {
        // The upcall handler cleared `evtchn_upcall_pending` and makes a
        // null hypercall so that the line goes down.
        assert_eq!(line(true, false, false), Line::Drop);
        // Not while a timer interrupt is pending.
        assert_eq!(line(true, false, true), Line::Keep);
    }
}
