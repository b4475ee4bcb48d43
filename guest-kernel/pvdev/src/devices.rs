//! The toolstack's share of device setup, done by the driver domain
//! against its own [`Store`]: the store entries that tell a guest where
//! its devices are (Xen's layout), and the back end's side of the
//! `XenbusState` handshake read from and written to those entries.
//!
//! For guest `G`, driver domain `D` and virtual block device `N` (Xen's
//! `virtual-device` number: 51712 = `xvda`, major 202, minor 0):
//!
//! | path | value |
//! |---|---|
//! | `/local/domain/G/device/vbd/N/backend` | `/local/domain/D/backend/vbd/G/N` |
//! | `/local/domain/G/device/vbd/N/backend-id` | `D` |
//! | `/local/domain/G/device/vbd/N/virtual-device` | `N` |
//! | `/local/domain/G/device/vbd/N/device-type` | `disk` |
//! | `/local/domain/G/device/vbd/N/state` | front end's `XenbusState` |
//! | `.../device/vbd/N/{ring-ref,event-channel,protocol,feature-persistent}` | written by the front end |
//! | `/local/domain/D/backend/vbd/G/N/{frontend,frontend-id}` | the front end's directory, `G` |
//! | `/local/domain/D/backend/vbd/G/N/{online,type,mode,removable}` | `1`, `ram`, `w`, `0` |
//! | `/local/domain/D/backend/vbd/G/N/{sectors,sector-size,info}` | disk size, `512`, `VDISK_*` |
//! | `/local/domain/D/backend/vbd/G/N/feature-{flush-cache,barrier,persistent}` | `1` |
//! | `/local/domain/D/backend/vbd/G/N/state` | back end's `XenbusState` |
//! | `/local/domain/G/console/{backend-id,ring-ref,port}` | `D`, `0` (the grant), `2` |
//!
//! The front end's directory belongs to the guest (the driver domain may
//! read it); the back end's to the driver domain (the guest may read it).

use crate::store::{Perm, Store, XsError, PERM_READ};
use crate::xenbus::{Action, Backend};
use crate::DomId;
use alloc::format;
use alloc::string::String;
use hypercall_abi::io::blkif::keys;
use hypercall_abi::io::xenbus::XenbusState;

/// `virtual-device` of the first disk, `xvda` (202 << 8).
pub const VBD_XVDA: u32 = 51712;
/// Key: the front end keeps granted data pages mapped (`feature-persistent`).
pub const FEATURE_PERSISTENT: &str = "feature-persistent";

/// A block device's two directories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VbdPaths {
    /// The front end's (`/local/domain/G/device/vbd/N`).
    pub front: String,
    /// The back end's (`/local/domain/D/backend/vbd/G/N`).
    pub back: String,
}

/// The directories of vbd `devid` of `guest` served by `drv`.
pub fn vbd_paths(drv: DomId, guest: DomId, devid: u32) -> VbdPaths {
    VbdPaths {
        front: format!("/local/domain/{guest}/device/vbd/{devid}"),
        back: format!("/local/domain/{drv}/backend/vbd/{guest}/{devid}"),
    }
}

/// Makes sure `dom` has a home in the store.
fn ensure_introduced(store: &mut Store, dom: DomId) -> Result<(), XsError> {
    if store.is_introduced(dom) {
        return Ok(());
    }
    store.introduce(dom)
}

/// Writes every entry of a new vbd (states `Initialising`) and sets the
/// permissions; `drv` must be privileged in the store.
pub fn create_vbd(
    store: &mut Store,
    drv: DomId,
    guest: DomId,
    devid: u32,
    sectors: u64,
    read_only: bool,
) -> Result<VbdPaths, XsError> {
    ensure_introduced(store, drv)?;
    ensure_introduced(store, guest)?;
    let p = vbd_paths(drv, guest, devid);
    let init = XenbusState::Initialising.as_str();
    let f = |k: &str| format!("{}/{k}", p.front);
    store.write(drv, 0, &f("backend"), p.back.as_bytes())?;
    store.write(drv, 0, &f("backend-id"), format!("{drv}").as_bytes())?;
    store.write(drv, 0, &f("virtual-device"), format!("{devid}").as_bytes())?;
    store.write(drv, 0, &f("device-type"), b"disk")?;
    store.write(drv, 0, &f(keys::STATE), init.as_bytes())?;
    let b = |k: &str| format!("{}/{k}", p.back);
    store.write(drv, 0, &b("frontend"), p.front.as_bytes())?;
    store.write(drv, 0, &b("frontend-id"), format!("{guest}").as_bytes())?;
    store.write(drv, 0, &b("online"), b"1")?;
    store.write(drv, 0, &b("type"), b"ram")?;
    store.write(drv, 0, &b("mode"), if read_only { b"r" } else { b"w" })?;
    store.write(drv, 0, &b("removable"), b"0")?;
    store.write(drv, 0, &b(keys::SECTORS), format!("{sectors}").as_bytes())?;
    store.write(drv, 0, &b(keys::SECTOR_SIZE), b"512")?;
    let info = if read_only {
        hypercall_abi::io::blkif::VDISK_READONLY
    } else {
        0
    };
    store.write(drv, 0, &b(keys::INFO), format!("{info}").as_bytes())?;
    store.write(drv, 0, &b(keys::FEATURE_FLUSH), b"1")?;
    store.write(drv, 0, &b(keys::FEATURE_BARRIER), b"1")?;
    store.write(drv, 0, &b(FEATURE_PERSISTENT), b"1")?;
    store.write(drv, 0, &b(keys::STATE), init.as_bytes())?;
    // The guest owns its side, the driver domain reads it; and the other
    // way round.
    let front_perms = [
        Perm {
            dom: guest,
            access: 0,
        },
        Perm {
            dom: drv,
            access: PERM_READ,
        },
    ];
    let back_perms = [
        Perm {
            dom: drv,
            access: 0,
        },
        Perm {
            dom: guest,
            access: PERM_READ,
        },
    ];
    for k in store
        .paths()
        .into_iter()
        .filter(|k| k == &p.front || k.starts_with(&format!("{}/", p.front)))
    {
        store.set_perms(drv, 0, &k, &front_perms)?;
    }
    for k in store
        .paths()
        .into_iter()
        .filter(|k| k == &p.back || k.starts_with(&format!("{}/", p.back)))
    {
        store.set_perms(drv, 0, &k, &back_perms)?;
    }
    // The guest must be able to list the way to its back end's directory.
    for anc in [
        format!("/local/domain/{drv}/backend"),
        format!("/local/domain/{drv}/backend/vbd"),
        format!("/local/domain/{drv}/backend/vbd/{guest}"),
    ] {
        let mut perms = store.get_perms(drv, 0, &anc)?;
        if !perms.iter().skip(1).any(|q| q.dom == guest) {
            perms.push(Perm {
                dom: guest,
                access: PERM_READ,
            });
            store.set_perms(drv, 0, &anc, &perms)?;
        }
    }
    Ok(p)
}

/// Writes the console entries of `guest` (its page is grant `ring_ref`,
/// its channel port `port`).
pub fn create_console(
    store: &mut Store,
    drv: DomId,
    guest: DomId,
    ring_ref: u32,
    port: u32,
) -> Result<(), XsError> {
    ensure_introduced(store, guest)?;
    let d = format!("/local/domain/{guest}/console");
    store.write(
        drv,
        0,
        &format!("{d}/backend-id"),
        format!("{drv}").as_bytes(),
    )?;
    store.write(
        drv,
        0,
        &format!("{d}/ring-ref"),
        format!("{ring_ref}").as_bytes(),
    )?;
    store.write(drv, 0, &format!("{d}/port"), format!("{port}").as_bytes())?;
    for k in ["", "/backend-id", "/ring-ref", "/port"] {
        store.set_perms(
            drv,
            0,
            &format!("{d}{k}"),
            &[
                Perm {
                    dom: drv,
                    access: 0,
                },
                Perm {
                    dom: guest,
                    access: PERM_READ,
                },
            ],
        )?;
    }
    Ok(())
}

/// Removes a departed guest's entries and its back-end directories.
pub fn remove_domain(store: &mut Store, drv: DomId, guest: DomId) {
    store.release(guest);
    let _ = store.rm(drv, 0, &format!("/local/domain/{guest}"));
    let _ = store.rm(drv, 0, &format!("/local/domain/{drv}/backend/vbd/{guest}"));
}

/// What the front end published for the back end to connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontDetails {
    /// Grant reference of the ring page.
    pub ring_ref: u32,
    /// The front end's unbound port for the back end.
    pub event_channel: u32,
    /// The front end agreed to keep its data grants mapped.
    pub persistent: bool,
}

/// Why the front end's details are unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DetailsError {
    /// A key is missing or unreadable.
    Missing(&'static str),
    /// A key holds something that is not what it must be.
    Bad(&'static str),
}

impl core::fmt::Display for DetailsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DetailsError::Missing(k) => write!(f, "missing {k}"),
            DetailsError::Bad(k) => write!(f, "bad {k}"),
        }
    }
}

fn read_num(
    store: &mut Store,
    drv: DomId,
    dir: &str,
    key: &'static str,
) -> Result<u32, DetailsError> {
    let v = store
        .read(drv, 0, &format!("{dir}/{key}"))
        .map_err(|_| DetailsError::Missing(key))?;
    let s = core::str::from_utf8(&v).map_err(|_| DetailsError::Bad(key))?;
    s.trim().parse().map_err(|_| DetailsError::Bad(key))
}

/// Reads and checks the front end's `ring-ref`, `event-channel`,
/// `protocol` (absent or `arm-abi`, the native one) and
/// `feature-persistent`.
pub fn read_front_details(
    store: &mut Store,
    drv: DomId,
    front: &str,
) -> Result<FrontDetails, DetailsError> {
    let ring_ref = read_num(store, drv, front, keys::RING_REF)?;
    let event_channel = read_num(store, drv, front, keys::EVENT_CHANNEL)?;
    if event_channel == 0 {
        return Err(DetailsError::Bad(keys::EVENT_CHANNEL));
    }
    if let Ok(p) = store.read(drv, 0, &format!("{front}/{}", keys::PROTOCOL)) {
        if p != b"arm-abi" {
            return Err(DetailsError::Bad(keys::PROTOCOL));
        }
    }
    let persistent = matches!(read_num(store, drv, front, FEATURE_PERSISTENT), Ok(1));
    Ok(FrontDetails {
        ring_ref,
        event_channel,
        persistent,
    })
}

/// The back end's handshake for one device, through the store: starts
/// in `InitWait`, follows the front end's `state`, publishes its own.
#[derive(Clone, Debug)]
pub struct BackendLink {
    /// The device's directories.
    pub paths: VbdPaths,
    machine: Backend,
    seen: XenbusState,
}

impl BackendLink {
    /// Starts the back end of `paths` (publishes `InitWait`).
    pub fn start(store: &mut Store, drv: DomId, paths: VbdPaths) -> Result<BackendLink, XsError> {
        let mut machine = Backend::new();
        machine.start();
        let l = BackendLink {
            paths,
            machine,
            seen: XenbusState::Unknown,
        };
        l.publish(store, drv)?;
        Ok(l)
    }

    fn publish(&self, store: &mut Store, drv: DomId) -> Result<(), XsError> {
        store.write(
            drv,
            0,
            &format!("{}/{}", self.paths.back, keys::STATE),
            self.machine.state().as_str().as_bytes(),
        )
    }

    /// The back end's state.
    pub fn state(&self) -> XenbusState {
        self.machine.state()
    }

    /// The front end's state as published (`Unknown` if missing or bad).
    pub fn front_state(&self, store: &mut Store, drv: DomId) -> XenbusState {
        store
            .read(drv, 0, &format!("{}/{}", self.paths.front, keys::STATE))
            .ok()
            .and_then(|v| core::str::from_utf8(&v).ok().and_then(XenbusState::parse))
            .unwrap_or(XenbusState::Unknown)
    }

    /// Looks at the front end's state; if it changed, runs the machine
    /// and publishes the new state. Returns what the caller must do
    /// (`Connect`: read [`read_front_details`], map, bind, then call
    /// [`connected`](Self::connected) or [`failed`](Self::failed);
    /// `TearDown`: unmap and unbind).
    pub fn poll(&mut self, store: &mut Store, drv: DomId) -> Action {
        let fe = self.front_state(store, drv);
        if fe == self.seen {
            return Action::None;
        }
        self.seen = fe;
        let before = self.machine.state();
        let a = self.machine.on_frontend(fe);
        if a == Action::Connect {
            // Published once the caller has connected.
            return a;
        }
        if self.machine.state() != before {
            let _ = self.publish(store, drv);
        }
        a
    }

    /// The caller connected: publish `Connected`.
    pub fn connected(&mut self, store: &mut Store, drv: DomId) {
        let _ = self.publish(store, drv);
    }

    /// The caller could not connect (bad details, unusable grant or
    /// port): publish `Closing` and an `error` node, as Xen's back ends do.
    pub fn failed(&mut self, store: &mut Store, drv: DomId, why: &str) {
        self.machine.close();
        let _ = store.write(
            drv,
            0,
            &format!("{}/error", self.paths.back),
            why.as_bytes(),
        );
        let _ = self.publish(store, drv);
    }

    /// The back end goes away on its own (`Closing`, then `Closed`).
    pub fn close(&mut self, store: &mut Store, drv: DomId) {
        self.machine.close();
        let _ = self.publish(store, drv);
        let _ = store.write(
            drv,
            0,
            &format!("{}/{}", self.paths.back, keys::STATE),
            XenbusState::Closed.as_str().as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Limits;
    use crate::xenbus::Frontend;

    fn setup() -> (Store, VbdPaths) {
        let mut s = Store::new(Limits::default());
        s.set_privileged(9, true);
        let p = create_vbd(&mut s, 9, 3, VBD_XVDA, 2048, false).unwrap();
        (s, p)
    }

    #[test]
    fn entries_follow_xens_layout_and_permissions() {
        let (mut s, p) = setup();
        assert_eq!(p.front, "/local/domain/3/device/vbd/51712");
        assert_eq!(p.back, "/local/domain/9/backend/vbd/3/51712");
        // The guest reads its own entries relatively, and the back end's.
        assert_eq!(
            s.read(3, 0, "device/vbd/51712/backend").unwrap(),
            p.back.as_bytes()
        );
        assert_eq!(s.read(3, 0, "device/vbd/51712/backend-id").unwrap(), b"9");
        assert_eq!(
            s.read(3, 0, &format!("{}/sectors", p.back)).unwrap(),
            b"2048"
        );
        assert_eq!(
            s.read(3, 0, &format!("{}/sector-size", p.back)).unwrap(),
            b"512"
        );
        assert_eq!(s.read(3, 0, &format!("{}/state", p.back)).unwrap(), b"1");
        assert!(s.directory(3, 0, "/local/domain/9/backend/vbd/3").is_ok());
        // The guest writes its own state but not the back end's, and
        // another guest sees neither.
        s.write(3, 0, "device/vbd/51712/state", b"3").unwrap();
        assert_eq!(
            s.write(3, 0, &format!("{}/state", p.back), b"4"),
            Err(XsError::EACCES)
        );
        assert_eq!(
            s.write(3, 0, &format!("{}/sectors", p.back), b"1"),
            Err(XsError::EACCES)
        );
        s.introduce(4).unwrap();
        assert_eq!(
            s.read(4, 0, &format!("{}/state", p.front)),
            Err(XsError::EACCES)
        );
        assert_eq!(
            s.read(4, 0, &format!("{}/state", p.back)),
            Err(XsError::EACCES)
        );
        // Cleaning up after the guest removes both sides.
        remove_domain(&mut s, 9, 3);
        assert!(s
            .paths()
            .iter()
            .all(|k| !k.contains("/3/") && !k.ends_with("/3")));
    }

    #[test]
    fn front_details_are_checked() {
        let (mut s, p) = setup();
        let w = |s: &mut Store, k: &str, v: &str| {
            s.write(3, 0, &format!("device/vbd/51712/{k}"), v.as_bytes())
                .unwrap()
        };
        assert_eq!(
            read_front_details(&mut s, 9, &p.front),
            Err(DetailsError::Missing("ring-ref"))
        );
        w(&mut s, "ring-ref", "12");
        w(&mut s, "event-channel", "x");
        assert_eq!(
            read_front_details(&mut s, 9, &p.front),
            Err(DetailsError::Bad("event-channel"))
        );
        w(&mut s, "event-channel", "0");
        assert_eq!(
            read_front_details(&mut s, 9, &p.front),
            Err(DetailsError::Bad("event-channel"))
        );
        w(&mut s, "event-channel", "3");
        w(&mut s, "protocol", "x86_32-abi");
        assert_eq!(
            read_front_details(&mut s, 9, &p.front),
            Err(DetailsError::Bad("protocol"))
        );
        w(&mut s, "protocol", "arm-abi");
        assert_eq!(
            read_front_details(&mut s, 9, &p.front),
            Ok(FrontDetails {
                ring_ref: 12,
                event_channel: 3,
                persistent: false
            })
        );
        w(&mut s, "feature-persistent", "1");
        assert!(read_front_details(&mut s, 9, &p.front).unwrap().persistent);
    }

    /// A front end state machine driven through the store against the
    /// link: connect, a failed connect, the front end restarting, closing.
    #[test]
    fn handshake_through_the_store() {
        let (mut s, p) = setup();
        let mut link = BackendLink::start(&mut s, 9, p.clone()).unwrap();
        let mut f = Frontend::new();
        let be = |s: &mut Store| {
            XenbusState::parse(
                core::str::from_utf8(&s.read(3, 0, &format!("{}/state", p.back)).unwrap()).unwrap(),
            )
            .unwrap()
        };
        let fset = |s: &mut Store, st: XenbusState| {
            s.write(3, 0, "device/vbd/51712/state", st.as_str().as_bytes())
                .unwrap()
        };
        fset(&mut s, f.state());
        assert_eq!(link.poll(&mut s, 9), Action::None);
        assert_eq!(be(&mut s), XenbusState::InitWait);
        assert_eq!(f.on_backend(be(&mut s)), Action::Setup);
        fset(&mut s, f.state());
        assert_eq!(link.poll(&mut s, 9), Action::Connect);
        assert_eq!(
            be(&mut s),
            XenbusState::InitWait,
            "not Connected before the caller has connected"
        );
        link.connected(&mut s, 9);
        assert_eq!(f.on_backend(be(&mut s)), Action::Connected);
        fset(&mut s, f.state());
        assert_eq!(link.poll(&mut s, 9), Action::None);
        assert_eq!(link.poll(&mut s, 9), Action::None, "nothing new");
        // The front end restarts.
        fset(&mut s, XenbusState::Initialising);
        assert_eq!(link.poll(&mut s, 9), Action::TearDown);
        assert_eq!(be(&mut s), XenbusState::InitWait);
        fset(&mut s, XenbusState::Initialised);
        assert_eq!(link.poll(&mut s, 9), Action::Connect);
        link.failed(&mut s, 9, "ring-ref not granted");
        assert_eq!(be(&mut s), XenbusState::Closing);
        assert_eq!(
            s.read(3, 0, &format!("{}/error", p.back)).unwrap(),
            b"ring-ref not granted"
        );
        // A front end that disappears from the store is closed.
        let mut link2 = BackendLink::start(&mut s, 9, p.clone()).unwrap();
        fset(&mut s, XenbusState::Initialised);
        assert_eq!(link2.poll(&mut s, 9), Action::Connect);
        link2.connected(&mut s, 9);
        s.rm(3, 0, "device/vbd/51712/state").unwrap();
        assert_eq!(link2.poll(&mut s, 9), Action::TearDown);
        assert_eq!(be(&mut s), XenbusState::Closed);
    }
}
