//! `XenbusState` (Xen's `io/xenbus.h`): the state a front end and a back
//! end each publish in their device directory's `state` key, as a decimal
//! number, to drive the connection handshake:
//!
//! 1. both start `Initialising`; the back end, ready for the front end's
//!    details, goes to `InitWait`;
//! 2. the front end writes its ring references and event channel, then
//!    goes to `Initialised` (or `Connected` at once);
//! 3. the back end maps the rings, binds the channel and goes to
//!    `Connected`; the front end, seeing it, goes to `Connected`;
//! 4. either side going to `Closing` makes the other close too; both end
//!    `Closed`. A front end that sees its back end `Closed` while it wants
//!    the device starts again from `Initialising`.
//!
//! ```
//! use hypercall_abi::io::xenbus::XenbusState;
//! assert_eq!(XenbusState::parse("4"), Some(XenbusState::Connected));
//! assert_eq!(XenbusState::Closing as u32, 5);
//! assert_eq!(XenbusState::parse("9"), None);
//! ```

/// `enum xenbus_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum XenbusState {
    /// `XenbusStateUnknown`: no `state` key (or not readable).
    Unknown = 0,
    /// `XenbusStateInitialising`.
    Initialising = 1,
    /// `XenbusStateInitWait`: waiting for the peer's details.
    InitWait = 2,
    /// `XenbusStateInitialised`: details published, waiting to connect.
    Initialised = 3,
    /// `XenbusStateConnected`.
    Connected = 4,
    /// `XenbusStateClosing`: going away; the peer should close.
    Closing = 5,
    /// `XenbusStateClosed`.
    Closed = 6,
    /// `XenbusStateReconfiguring`.
    Reconfiguring = 7,
    /// `XenbusStateReconfigured`.
    Reconfigured = 8,
}

impl XenbusState {
    /// The state with number `n`.
    pub fn from_u32(n: u32) -> Option<XenbusState> {
        use XenbusState::*;
        Some(match n {
            0 => Unknown,
            1 => Initialising,
            2 => InitWait,
            3 => Initialised,
            4 => Connected,
            5 => Closing,
            6 => Closed,
            7 => Reconfiguring,
            8 => Reconfigured,
            _ => return None,
        })
    }

    /// Parses a `state` value (decimal, surrounding whitespace and a
    /// trailing NUL allowed).
    pub fn parse(s: &str) -> Option<XenbusState> {
        s.trim_end_matches('\0')
            .trim()
            .parse()
            .ok()
            .and_then(Self::from_u32)
    }

    /// The decimal text written to the store (`"4"` for `Connected`).
    pub fn as_str(self) -> &'static str {
        ["0", "1", "2", "3", "4", "5", "6", "7", "8"][self as usize]
    }
}
