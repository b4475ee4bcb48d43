//! The store entries of a vif (Xen's layout, as `xl` writes them) and the
//! checks on what a netif front end publishes.
//!
//! For guest `G`, driver domain `D`, vif `0`:
//!
//! | path | value |
//! |---|---|
//! | `/local/domain/G/device/vif/0/{backend,backend-id,handle,mac}` | `/local/domain/D/backend/vif/G/0`, `D`, `0`, the MAC |
//! | `/local/domain/G/device/vif/0/state` | front end's `XenbusState` |
//! | `.../device/vif/0/{tx-ring-ref,rx-ring-ref,event-channel,request-rx-copy}` | written by the front end |
//! | `/local/domain/D/backend/vif/G/0/{frontend,frontend-id,handle,online}` | the front end's directory, `G`, `0`, `1` |
//! | `/local/domain/D/backend/vif/G/0/{mac,feature-rx-copy}` | the MAC, `1` |
//! | `/local/domain/D/backend/vif/G/0/state` | back end's `XenbusState` |
//!
//! MACs are Xen's `00:16:3e` prefix followed by the guest's domain id.

use crate::devices::{DetailsError, VbdPaths};
use crate::netback::Mac;
use crate::store::{Perm, Store, XsError, PERM_READ};
use crate::DomId;
use alloc::format;
use alloc::string::String;
use hypercall_abi::io::netif::keys;
use hypercall_abi::io::xenbus::XenbusState;

/// The vif number every guest gets.
pub const VIF_0: u32 = 0;

/// The MAC the toolstack assigns to `guest`'s vif `n`.
pub fn vif_mac(guest: DomId, n: u32) -> Mac {
    [0x00, 0x16, 0x3e, n as u8, (guest >> 8) as u8, guest as u8]
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// The directories of vif `n` of `guest` served by `drv` (front end's,
/// back end's).
pub fn vif_paths(drv: DomId, guest: DomId, n: u32) -> VbdPaths {
    VbdPaths {
        front: format!("/local/domain/{guest}/device/vif/{n}"),
        back: format!("/local/domain/{drv}/backend/vif/{guest}/{n}"),
    }
}

/// Writes every entry of a new vif (states `Initialising`) with the
/// permissions (the guest owns its side, the driver domain the other;
/// each may read the other's); `drv` must be privileged in the store.
pub fn create_vif(
    store: &mut Store,
    drv: DomId,
    guest: DomId,
    n: u32,
    mac: &Mac,
) -> Result<VbdPaths, XsError> {
    for d in [drv, guest] {
        if !store.is_introduced(d) {
            store.introduce(d)?;
        }
    }
    let p = vif_paths(drv, guest, n);
    let init = XenbusState::Initialising.as_str();
    let mac = format_mac(mac);
    let front: [(&str, String); 5] = [
        ("backend", p.back.clone()),
        ("backend-id", format!("{drv}")),
        ("handle", format!("{n}")),
        (keys::MAC, mac.clone()),
        ("state", init.into()),
    ];
    let back: [(&str, String); 7] = [
        ("frontend", p.front.clone()),
        ("frontend-id", format!("{guest}")),
        ("handle", format!("{n}")),
        ("online", "1".into()),
        (keys::MAC, mac),
        (keys::FEATURE_RX_COPY, "1".into()),
        ("state", init.into()),
    ];
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
    for (dir, kv, perms) in [
        (&p.front, &front[..], &front_perms),
        (&p.back, &back[..], &back_perms),
    ] {
        for (k, v) in kv {
            store.write(drv, 0, &format!("{dir}/{k}"), v.as_bytes())?;
        }
        for k in store
            .paths()
            .into_iter()
            .filter(|k| k == dir || k.starts_with(&format!("{dir}/")))
        {
            store.set_perms(drv, 0, &k, perms)?;
        }
    }
    // The guest must be able to read the way to its back end's directory.
    for anc in [
        format!("/local/domain/{drv}/backend"),
        format!("/local/domain/{drv}/backend/vif"),
        format!("/local/domain/{drv}/backend/vif/{guest}"),
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

/// Removes the back-end directories of `guest`'s vifs.
pub fn remove_vifs(store: &mut Store, drv: DomId, guest: DomId) {
    let _ = store.rm(drv, 0, &format!("/local/domain/{drv}/backend/vif/{guest}"));
}

/// What a netif front end published for the back end to connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VifDetails {
    /// Grant reference of the tx ring page.
    pub tx_ring_ref: u32,
    /// Grant reference of the rx ring page.
    pub rx_ring_ref: u32,
    /// The front end's unbound port for the back end (one for both rings).
    pub event_channel: u32,
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
    s.trim_end_matches('\0')
        .parse()
        .map_err(|_| DetailsError::Bad(key))
}

/// Reads and checks `tx-ring-ref`, `rx-ring-ref`, `event-channel` (not 0)
/// and `request-rx-copy` (must be 1: this back end only copies into
/// posted pages, it never flips pages).
pub fn read_vif_details(
    store: &mut Store,
    drv: DomId,
    front: &str,
) -> Result<VifDetails, DetailsError> {
    let tx_ring_ref = read_num(store, drv, front, keys::TX_RING_REF)?;
    let rx_ring_ref = read_num(store, drv, front, keys::RX_RING_REF)?;
    let event_channel = read_num(store, drv, front, keys::EVENT_CHANNEL)?;
    if event_channel == 0 {
        return Err(DetailsError::Bad(keys::EVENT_CHANNEL));
    }
    if read_num(store, drv, front, keys::REQUEST_RX_COPY)? != 1 {
        return Err(DetailsError::Bad(keys::REQUEST_RX_COPY));
    }
    if tx_ring_ref == rx_ring_ref {
        return Err(DetailsError::Bad(keys::RX_RING_REF));
    }
    Ok(VifDetails {
        tx_ring_ref,
        rx_ring_ref,
        event_channel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::BackendLink;
    use crate::netback::parse_mac;
    use crate::store::Limits;
    use crate::xenbus::Action;
    use proptest::prelude::*;

    fn setup() -> (Store, VbdPaths) {
        let mut s = Store::new(Limits::default());
        s.set_privileged(1, true);
        let p = create_vif(&mut s, 1, 4, VIF_0, &vif_mac(4, 0)).unwrap();
        (s, p)
    }

    #[test]
    fn entries_follow_xens_layout_and_permissions() {
        let (mut s, p) = setup();
        assert_eq!(p.front, "/local/domain/4/device/vif/0");
        assert_eq!(p.back, "/local/domain/1/backend/vif/4/0");
        assert_eq!(
            s.read(4, 0, "device/vif/0/backend").unwrap(),
            p.back.as_bytes()
        );
        assert_eq!(s.read(4, 0, "device/vif/0/backend-id").unwrap(), b"1");
        assert_eq!(
            s.read(4, 0, &format!("{}/mac", p.back)).unwrap(),
            b"00:16:3e:00:00:04"
        );
        assert_eq!(
            s.read(4, 0, &format!("{}/feature-rx-copy", p.back))
                .unwrap(),
            b"1"
        );
        assert_eq!(s.read(4, 0, &format!("{}/state", p.back)).unwrap(), b"1");
        assert!(s.directory(4, 0, "/local/domain/1/backend/vif/4").is_ok());
        s.write(4, 0, "device/vif/0/tx-ring-ref", b"9").unwrap();
        assert_eq!(
            s.write(4, 0, &format!("{}/mac", p.back), b"00:16:3e:00:00:05"),
            Err(XsError::EACCES)
        );
        s.introduce(5).unwrap();
        assert_eq!(
            s.read(5, 0, &format!("{}/mac", p.back)),
            Err(XsError::EACCES)
        );
        assert_eq!(
            s.read(5, 0, &format!("{}/tx-ring-ref", p.front)),
            Err(XsError::EACCES)
        );
        remove_vifs(&mut s, 1, 4);
        crate::devices::remove_domain(&mut s, 1, 4);
        assert!(s
            .paths()
            .iter()
            .all(|k| !k.contains("/4/") && !k.ends_with("/4")));
    }

    #[test]
    fn details_are_checked_and_the_handshake_runs() {
        let (mut s, p) = setup();
        let mut link = BackendLink::start(&mut s, 1, p.clone()).unwrap();
        let w = |s: &mut Store, k: &str, v: &str| {
            s.write(4, 0, &format!("device/vif/0/{k}"), v.as_bytes())
                .unwrap()
        };
        assert_eq!(
            read_vif_details(&mut s, 1, &p.front),
            Err(DetailsError::Missing("tx-ring-ref"))
        );
        w(&mut s, "tx-ring-ref", "8");
        w(&mut s, "rx-ring-ref", "8");
        w(&mut s, "event-channel", "3");
        assert_eq!(
            read_vif_details(&mut s, 1, &p.front),
            Err(DetailsError::Missing("request-rx-copy"))
        );
        w(&mut s, "request-rx-copy", "0");
        assert_eq!(
            read_vif_details(&mut s, 1, &p.front),
            Err(DetailsError::Bad("request-rx-copy"))
        );
        w(&mut s, "request-rx-copy", "1");
        assert_eq!(
            read_vif_details(&mut s, 1, &p.front),
            Err(DetailsError::Bad("rx-ring-ref"))
        );
        w(&mut s, "rx-ring-ref", "9");
        w(&mut s, "event-channel", "0");
        assert_eq!(
            read_vif_details(&mut s, 1, &p.front),
            Err(DetailsError::Bad("event-channel"))
        );
        w(&mut s, "event-channel", "x3");
        assert_eq!(
            read_vif_details(&mut s, 1, &p.front),
            Err(DetailsError::Bad("event-channel"))
        );
        w(&mut s, "event-channel", "3");
        assert_eq!(
            read_vif_details(&mut s, 1, &p.front),
            Ok(VifDetails {
                tx_ring_ref: 8,
                rx_ring_ref: 9,
                event_channel: 3
            })
        );
        w(&mut s, "state", "3");
        assert_eq!(link.poll(&mut s, 1), Action::Connect);
        link.connected(&mut s, 1);
        assert_eq!(s.read(4, 0, &format!("{}/state", p.back)).unwrap(), b"4");
    }

    proptest! {
        #[test]
        fn macs_are_unicast_distinct_and_round_trip(a in 1u16..0x7ff0, b in 1u16..0x7ff0, n in 0u32..4) {
            let m = vif_mac(a, n);
            prop_assert!(!crate::netback::is_multicast(&m));
            prop_assert_eq!(parse_mac(&format_mac(&m)), Some(m));
            prop_assert_eq!(a == b, vif_mac(a, n) == vif_mac(b, n));
        }

        /// Whatever the front end writes, the details are either refused
        /// with a reason or hold exactly the numbers it wrote.
        #[test]
        fn arbitrary_details_never_panic(tx in "[0-9a-z]{0,6}", rx in "[0-9]{0,5}", ev in "[0-9]{0,4}", copy in "[01x]?") {
            let (mut s, p) = setup();
            for (k, v) in [("tx-ring-ref", &tx), ("rx-ring-ref", &rx), ("event-channel", &ev), ("request-rx-copy", &copy)] {
                if !v.is_empty() { s.write(4, 0, &format!("device/vif/0/{k}"), v.as_bytes()).unwrap(); }
            }
            if let Ok(d) = read_vif_details(&mut s, 1, &p.front) {
                prop_assert_eq!(Ok(d.tx_ring_ref), tx.parse::<u32>());
                prop_assert_eq!(Ok(d.rx_ring_ref), rx.parse::<u32>());
                prop_assert!(d.event_channel != 0 && d.tx_ring_ref != d.rx_ring_ref && copy == "1");
            }
        }
    }
}
