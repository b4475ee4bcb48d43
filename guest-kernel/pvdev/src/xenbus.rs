//! The `XenbusState` handshake as two small state machines. Each side
//! publishes its state in its own `state` key and reacts to the peer's;
//! [`Frontend::on_backend`] and [`Backend::on_frontend`] say what to do
//! and which state to publish next.
//!
//! Front end: `Initialising` → (back end `InitWait`) set up rings, publish
//! details, `Initialised` → (back end `Connected`) `Connected`. Back end
//! `Closing` → `Closing` (stop using the device); back end `Closed` →
//! `Closed`. When the back end restarts (it is seen `Initialising`,
//! `InitWait` or gone while we are past `Initialising`) or comes back
//! after `Closed`, the front end tears down and starts again from
//! `Initialising`, reconnecting at the next `InitWait`.
//!
//! Back end: `Initialising` → [`Backend::start`] publishes features and goes
//! `InitWait` → (front end `Initialised`/`Connected`) map the rings, bind
//! the channel, `Connected`. Front end `Closing` → `Closing`; front end
//! `Closed` → `Closed`, and back to `InitWait` when the front end
//! reappears (`Initialising`).
//!
//! ```
//! use pvdev::xenbus::*;
//! use hypercall_abi::io::xenbus::XenbusState::*;
//! let (mut f, mut b) = (Frontend::new(), Backend::new());
//! assert_eq!(b.start(), Action::Publish);
//! assert_eq!(f.on_backend(b.state()), Action::Setup);        // rings + details
//! assert_eq!(b.on_frontend(f.state()), Action::Connect);     // map + bind
//! assert_eq!(f.on_backend(b.state()), Action::Connected);
//! assert_eq!((f.state(), b.state()), (Connected, Connected));
//! ```

use hypercall_abi::io::xenbus::XenbusState;
use XenbusState::*;

/// What the caller must do after a transition (then publish `state()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing (the state may still have changed).
    None,
    /// Back end: publish the device's features (sectors, MAC, ...).
    Publish,
    /// Front end: allocate and grant rings, allocate the event channel,
    /// write their references to the store.
    Setup,
    /// Back end: read the front end's details, map its rings, bind its
    /// event channel.
    Connect,
    /// Front end: the device is usable.
    Connected,
    /// Stop using the device, fail outstanding requests, unmap or revoke
    /// the rings, close the channel.
    TearDown,
}

/// The front end's side.
#[derive(Clone, Copy, Debug)]
pub struct Frontend {
    state: XenbusState,
    /// Whether the device is wanted (reconnect after the back end restarts).
    pub wanted: bool,
    /// Times the front end started over after losing its back end.
    pub reconnects: u32,
}

impl Default for Frontend {
    fn default() -> Self {
        Self::new()
    }
}

impl Frontend {
    /// A front end that wants its device, in `Initialising`.
    pub fn new() -> Self {
        Frontend {
            state: Initialising,
            wanted: true,
            reconnects: 0,
        }
    }

    /// The state to publish.
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// Reacts to the back end's published state (`Unknown` if its `state`
    /// key is missing or unreadable).
    pub fn on_backend(&mut self, be: XenbusState) -> Action {
        match (self.state, be) {
            (Initialising, InitWait) if self.wanted => {
                self.state = Initialised;
                Action::Setup
            }
            (Initialised, Connected) => {
                self.state = Connected;
                Action::Connected
            }
            (Initialised | Connected, Unknown | Initialising | InitWait) => {
                // The back end restarted under us: start over.
                self.state = Initialising;
                self.reconnects += 1;
                // After tearing down, the caller calls again and, if the
                // back end is in InitWait, sets up anew.
                Action::TearDown
            }
            (Initialised | Connected, Closing) => {
                self.state = Closing;
                Action::TearDown
            }
            (Closing, Closed | Unknown) => {
                self.state = Closed;
                Action::None
            }
            (Initialised | Connected, Closed) => {
                self.state = Closed;
                Action::TearDown
            }
            (Closed, Initialising | InitWait) if self.wanted => {
                self.state = Initialising;
                self.reconnects += 1;
                if be == InitWait {
                    self.state = Initialised;
                    Action::Setup
                } else {
                    Action::None
                }
            }
            _ => Action::None,
        }
    }

    /// The guest no longer wants the device: go `Closing`.
    pub fn close(&mut self) -> Action {
        self.wanted = false;
        match self.state {
            Initialised | Connected => {
                self.state = Closing;
                Action::TearDown
            }
            _ => {
                self.state = Closed;
                Action::None
            }
        }
    }
}

/// The back end's side.
#[derive(Clone, Copy, Debug)]
pub struct Backend {
    state: XenbusState,
}

impl Default for Backend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend {
    /// A back end in `Initialising`.
    pub fn new() -> Self {
        Backend {
            state: Initialising,
        }
    }

    /// The state to publish.
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// Ready for a front end: publish features, go `InitWait`. Also how a
    /// restarted back end starts over.
    pub fn start(&mut self) -> Action {
        self.state = InitWait;
        Action::Publish
    }

    /// Reacts to the front end's published state.
    pub fn on_frontend(&mut self, fe: XenbusState) -> Action {
        match (self.state, fe) {
            (InitWait, Initialised | Connected) => {
                self.state = Connected;
                Action::Connect
            }
            (Connected, Closing) => {
                self.state = Closing;
                Action::TearDown
            }
            (Connected | Closing, Closed | Unknown) => {
                self.state = Closed;
                Action::TearDown
            }
            (Connected, Initialising) => {
                // The front end started over (it rebooted or reconnects).
                self.state = InitWait;
                Action::TearDown
            }
            (Closing, Initialising) | (Closed, Initialising) => {
                self.state = InitWait;
                Action::Publish
            }
            _ => Action::None,
        }
    }

    /// The back end is shutting down on its own: `Closing`.
    pub fn close(&mut self) -> Action {
        self.state = Closing;
        Action::TearDown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs both machines against each other until neither changes.
    fn settle(f: &mut Frontend, b: &mut Backend, log: &mut alloc::vec::Vec<(char, Action)>) {
        for _ in 0..10 {
            let (fs, bs) = (f.state(), b.state());
            let a = f.on_backend(bs);
            if a != Action::None {
                log.push(('f', a));
            }
            let a = b.on_frontend(f.state());
            if a != Action::None {
                log.push(('b', a));
            }
            if (fs, bs) == (f.state(), b.state()) {
                return;
            }
        }
        panic!("no fixed point: {:?} {:?}", f.state(), b.state());
    }

    #[test]
    fn connect_close_and_reconnect_after_backend_restart() {
        let (mut f, mut b) = (Frontend::new(), Backend::new());
        let mut log = alloc::vec::Vec::new();
        settle(&mut f, &mut b, &mut log);
        assert_eq!(
            f.state(),
            Initialising,
            "nothing happens before the back end starts"
        );
        b.start();
        settle(&mut f, &mut b, &mut log);
        assert_eq!((f.state(), b.state()), (Connected, Connected));
        assert_eq!(
            log,
            [
                ('f', Action::Setup),
                ('b', Action::Connect),
                ('f', Action::Connected)
            ]
        );

        // The back end dies and restarts: its state key reads Initialising
        // then InitWait. The front end tears down and reconnects.
        let mut b = Backend::new();
        log.clear();
        assert_eq!(f.on_backend(b.state()), Action::TearDown);
        assert_eq!(f.state(), Initialising);
        b.start();
        settle(&mut f, &mut b, &mut log);
        assert_eq!((f.state(), b.state()), (Connected, Connected));
        assert_eq!(f.reconnects, 1);
        assert_eq!(
            log,
            [
                ('f', Action::Setup),
                ('b', Action::Connect),
                ('f', Action::Connected)
            ]
        );
    }

    #[test]
    fn backend_closing_then_coming_back() {
        let (mut f, mut b) = (Frontend::new(), Backend::new());
        let mut log = alloc::vec::Vec::new();
        b.start();
        settle(&mut f, &mut b, &mut log);
        log.clear();
        assert_eq!(b.close(), Action::TearDown);
        assert_eq!(f.on_backend(Closing), Action::TearDown);
        assert_eq!(f.state(), Closing);
        assert_eq!(f.on_backend(Closed), Action::None);
        assert_eq!(f.state(), Closed);
        // A new back end instance appears: the front end reconnects.
        let mut b = Backend::new();
        b.start();
        settle(&mut f, &mut b, &mut log);
        assert_eq!((f.state(), b.state()), (Connected, Connected));
        assert_eq!(f.reconnects, 1);
    }

    #[test]
    fn backend_vanishing_from_the_store_is_a_restart() {
        let (mut f, mut b) = (Frontend::new(), Backend::new());
        b.start();
        settle(&mut f, &mut b, &mut alloc::vec::Vec::new());
        assert_eq!(f.on_backend(Unknown), Action::TearDown);
        assert_eq!(f.state(), Initialising);
    }

    #[test]
    fn frontend_close_and_return() {
        let (mut f, mut b) = (Frontend::new(), Backend::new());
        b.start();
        settle(&mut f, &mut b, &mut alloc::vec::Vec::new());
        assert_eq!(f.close(), Action::TearDown);
        assert_eq!(b.on_frontend(f.state()), Action::TearDown);
        assert_eq!(b.state(), Closing);
        assert_eq!(f.on_backend(b.state()), Action::None);
        assert_eq!(f.state(), Closing);
        assert_eq!(f.on_backend(Closed), Action::None);
        assert_eq!(b.on_frontend(Closed), Action::TearDown);
        assert_eq!((f.state(), b.state()), (Closed, Closed));
        // The guest reboots its driver: a fresh front end in Initialising.
        let mut f = Frontend::new();
        assert_eq!(b.on_frontend(f.state()), Action::Publish);
        assert_eq!(b.state(), InitWait);
        settle(&mut f, &mut b, &mut alloc::vec::Vec::new());
        assert_eq!((f.state(), b.state()), (Connected, Connected));
    }

    #[test]
    fn nonsense_peer_states_change_nothing() {
        let mut f = Frontend::new();
        for s in [
            Unknown,
            Initialising,
            Initialised,
            Connected,
            Closing,
            Reconfiguring,
            Reconfigured,
        ] {
            assert_eq!(f.on_backend(s), Action::None);
            assert_eq!(f.state(), Initialising);
        }
        let mut b = Backend::new();
        b.start();
        for s in [
            Unknown,
            Initialising,
            InitWait,
            Closing,
            Closed,
            Reconfigured,
        ] {
            assert_eq!(b.on_frontend(s), Action::None, "{s:?}");
            assert_eq!(b.state(), InitWait);
        }
    }
}
