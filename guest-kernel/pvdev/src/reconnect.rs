//! Which driver domain a guest's front ends should use, and when to
//! connect to a new one: a small state machine over what the guest
//! observes (its back end gone: ports unbound, I/O failed with
//! `BackendGone`) and what the monitor says
//! (`hvm_op(HVMOP_get_param, HVM_PARAM_DRIVER_DOMAIN)`, a
//! [`DriverDomain`]: the current driver domain's id and generation).
//!
//! * Connected to a back end of generation `g`: nothing to do, unless the
//!   monitor names a driver domain of another generation (the back end was
//!   replaced before the guest noticed): then connect to it.
//! * Lost (the guest saw its back end go): wait until the monitor names a
//!   driver domain of another generation than the lost one, then connect.
//!   A driver domain of the same generation is the dead one (or none at
//!   all): keep waiting.
//! * A connection attempt that fails (that driver domain died too) makes
//!   its generation the lost one: wait for the next.
//!
//! Generations, not ids, tell driver domains apart: a new one could be
//! given the id of the old one.
//!
//! ```
//! use pvdev::reconnect::*;
//! use hypercall_abi::hvm::DriverDomain;
//! let first = DriverDomain { domid: Some(1), generation: 1 };
//! let mut t = Tracker::new(1, Some(first));
//! assert_eq!(t.poll(Some(first)), Next::Stay);
//! t.lost();
//! assert_eq!(t.poll(Some(DriverDomain { domid: None, generation: 1 })), Next::Wait);
//! let second = DriverDomain { domid: Some(4), generation: 2 };
//! assert_eq!(t.poll(Some(second)), Next::Connect(4));
//! t.connected(4, 2);
//! assert_eq!((t.backend(), t.reconnects()), (4, 1));
//! ```

use crate::DomId;
use hypercall_abi::hvm::DriverDomain;

/// What the front ends should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Connected: keep using the back end.
    Stay,
    /// The back end is gone and no new one is there yet.
    Wait,
    /// Connect (everything: store, console, devices) to this domain.
    Connect(DomId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connected,
    Lost,
}

/// The guest's view of its driver domain.
#[derive(Clone, Copy, Debug)]
pub struct Tracker {
    backend: DomId,
    /// Generation of `backend` (0: not known, e.g. named on the command
    /// line while the monitor named another).
    generation: u32,
    phase: Phase,
    reconnects: u32,
}

impl Tracker {
    /// Connected to `backend`; `now` is what the monitor says at that
    /// time (`None` if it cannot say), which gives `backend`'s generation
    /// when it names the same domain.
    pub fn new(backend: DomId, now: Option<DriverDomain>) -> Self {
        let generation = match now {
            Some(DriverDomain {
                domid: Some(d),
                generation,
            }) if d == backend => generation,
            _ => 0,
        };
        Tracker {
            backend,
            generation,
            phase: Phase::Connected,
            reconnects: 0,
        }
    }

    /// The back end in use (or last used).
    pub fn backend(&self) -> DomId {
        self.backend
    }

    /// Its generation (0 if not known).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Whether the back end was seen gone and no new one connected yet.
    pub fn is_lost(&self) -> bool {
        self.phase == Phase::Lost
    }

    /// Times the guest connected to a new driver domain.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// The back end is gone (a port unbound, an I/O failed with
    /// `BackendGone`).
    pub fn lost(&mut self) {
        self.phase = Phase::Lost;
    }

    /// What to do, given what the monitor says now.
    pub fn poll(&self, now: Option<DriverDomain>) -> Next {
        let new = match now {
            Some(DriverDomain {
                domid: Some(d),
                generation,
            }) if generation != self.generation => Some(d),
            _ => None,
        };
        match (self.phase, new) {
            (_, Some(d)) => Next::Connect(d),
            (Phase::Connected, None) => Next::Stay,
            (Phase::Lost, None) => Next::Wait,
        }
    }

    /// Connected to `backend` of `generation`.
    pub fn connected(&mut self, backend: DomId, generation: u32) {
        self.backend = backend;
        self.generation = generation;
        self.phase = Phase::Connected;
        self.reconnects += 1;
    }

    /// Connecting to `backend` of `generation` failed (it went away too):
    /// wait for a driver domain of another generation.
    pub fn failed(&mut self, backend: DomId, generation: u32) {
        self.backend = backend;
        self.generation = generation;
        self.phase = Phase::Lost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dd(domid: Option<DomId>, generation: u32) -> Option<DriverDomain> {
        Some(DriverDomain { domid, generation })
    }

    #[test]
    fn waits_while_there_is_no_new_driver_domain() {
        let mut t = Tracker::new(1, dd(Some(1), 1));
        assert_eq!(t.generation(), 1);
        assert_eq!(t.poll(dd(Some(1), 1)), Next::Stay);
        t.lost();
        assert!(t.is_lost());
        // The dead one still named (the monitor had not noticed yet), none
        // at all, or the monitor cannot say: wait.
        for now in [dd(Some(1), 1), dd(None, 1), None] {
            assert_eq!(t.poll(now), Next::Wait);
        }
        // A new one, even with the old id.
        assert_eq!(t.poll(dd(Some(1), 2)), Next::Connect(1));
        assert_eq!(t.poll(dd(Some(5), 2)), Next::Connect(5));
        t.connected(5, 2);
        assert!(!t.is_lost());
        assert_eq!((t.backend(), t.generation(), t.reconnects()), (5, 2, 1));
        assert_eq!(t.poll(dd(Some(5), 2)), Next::Stay);
    }

    #[test]
    fn a_replaced_back_end_is_noticed_without_an_error() {
        let t = Tracker::new(1, dd(Some(1), 1));
        assert_eq!(t.poll(dd(Some(3), 2)), Next::Connect(3));
        // Between the two: none named, nothing to do until an error.
        assert_eq!(t.poll(dd(None, 1)), Next::Stay);
    }

    #[test]
    fn a_driver_domain_that_dies_while_connecting_is_skipped() {
        let mut t = Tracker::new(1, dd(Some(1), 1));
        t.lost();
        assert_eq!(t.poll(dd(Some(2), 2)), Next::Connect(2));
        t.failed(2, 2);
        assert_eq!(t.poll(dd(Some(2), 2)), Next::Wait);
        assert_eq!(t.poll(dd(None, 2)), Next::Wait);
        assert_eq!(t.poll(dd(Some(3), 3)), Next::Connect(3));
        t.connected(3, 3);
        assert_eq!(t.reconnects(), 1);
    }

    #[test]
    fn a_back_end_named_on_the_command_line_has_an_unknown_generation() {
        // The monitor names another domain, or cannot say.
        for now in [dd(Some(2), 1), dd(None, 0), None] {
            let mut t = Tracker::new(1, now);
            assert_eq!(t.generation(), 0);
            t.lost();
            assert_eq!(t.poll(dd(Some(4), 3)), Next::Connect(4));
        }
    }

    proptest! {
        /// Whatever the monitor says, a lost tracker connects only to a
        /// named domain of another generation than the one it lost, and
        /// a connected one never waits.
        #[test]
        fn never_back_to_the_lost_generation(
            start in 0u32..4,
            says in proptest::collection::vec((proptest::option::of(0u16..6), 0u32..6, any::<bool>()), 1..40)
        ) {
            let mut t = Tracker::new(0, dd(Some(0), start));
            for (domid, generation, lose) in says {
                if lose {
                    t.lost();
                }
                let before = (t.is_lost(), t.generation());
                match t.poll(dd(domid, generation)) {
                    Next::Connect(d) => {
                        prop_assert_eq!(Some(d), domid);
                        prop_assert_ne!(generation, before.1);
                        t.connected(d, generation);
                    }
                    Next::Wait => prop_assert!(before.0),
                    Next::Stay => prop_assert!(!before.0),
                }
            }
        }
    }
}
