//! Safe guest wrappers for `grant_table_op` (aarch64 only). See
//! [`crate::grant_table`] for the semantics.
//!
//! ```ignore
//! use hypercall_abi::{gnttab_guest as g, memory::*};
//! let table = g::map_table_frame(0, GUEST_GNTTAB_BASE >> 12)?;   // &'static GrantFrameV1
//! table[8].grant(peer, my_page_gfn, false);
//! // the peer: let h = g::map_grant_ref(me, 8, GUEST_GRANT_MAP_BASE, false)?;
//! ```

use crate::errno::{result_from_raw, Errno};
use crate::event_channel::{DomId, DOMID_SELF};
use crate::grant_table::*;
use crate::hvc;
use crate::memory::XENMAPSPACE_GRANT_TABLE;
use crate::nr;

/// `grant_table_op(cmd, ops, len)` on a slice of the command's struct.
fn op<T>(cmd: u64, ops: &mut [T]) -> Result<(), Errno> {
    // SAFETY: `ops` is a live, writable array of `ops.len()` structs of the
    // type the monitor expects for `cmd` (each caller pairs them); the
    // monitor reads and writes only those.
    let r = unsafe {
        hvc::hypercall3(
            nr::GRANT_TABLE_OP,
            cmd,
            ops.as_mut_ptr() as u64,
            ops.len() as u64,
        )
    };
    result_from_raw(r).map(|_| ())
}

/// Turns a `GNTST_*` status into a `Result`.
pub fn status(st: i16) -> Result<(), i16> {
    if st == GNTST_OKAY {
        Ok(())
    } else {
        Err(st)
    }
}

/// A grant-table error: the call failed (`Errno`) or the op did (`GNTST_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The hypercall itself failed.
    Call(Errno),
    /// The op's status, a `GNTST_*` value.
    Status(i16),
}

impl core::fmt::Display for GrantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Call(e) => write!(f, "{e}"),
            Self::Status(s) => write!(f, "GNTST {s} ({})", status_name(*s)),
        }
    }
}

fn st(r: Result<(), Errno>, status: i16) -> Result<(), GrantError> {
    r.map_err(GrantError::Call)?;
    if status == GNTST_OKAY {
        Ok(())
    } else {
        Err(GrantError::Status(status))
    }
}

/// `GNTTABOP_map_grant_ref`: map grant `gref` of `dom` at guest-physical
/// `host_addr` (a free page of the grant-map window); returns the handle.
pub fn map_grant_ref(
    dom: DomId,
    gref: GrantRef,
    host_addr: u64,
    readonly: bool,
) -> Result<GrantHandle, GrantError> {
    let mut m = [GnttabMapGrantRef {
        host_addr,
        flags: GNTMAP_HOST_MAP | if readonly { GNTMAP_READONLY } else { 0 },
        r#ref: gref,
        dom,
        ..Default::default()
    }];
    let r = op(GNTTABOP_MAP_GRANT_REF, &mut m);
    st(r, m[0].status).map(|_| m[0].handle)
}

/// `GNTTABOP_map_grant_ref` on a batch; each op's `status` says how it went.
pub fn map_grant_refs(ops: &mut [GnttabMapGrantRef]) -> Result<(), Errno> {
    op(GNTTABOP_MAP_GRANT_REF, ops)
}

/// `GNTTABOP_unmap_grant_ref` of `handle` mapped at `host_addr`.
pub fn unmap_grant_ref(host_addr: u64, handle: GrantHandle) -> Result<(), GrantError> {
    let mut u = [GnttabUnmapGrantRef {
        host_addr,
        handle,
        ..Default::default()
    }];
    let r = op(GNTTABOP_UNMAP_GRANT_REF, &mut u);
    st(r, u[0].status)
}

/// `GNTTABOP_unmap_grant_ref` on a batch.
pub fn unmap_grant_refs(ops: &mut [GnttabUnmapGrantRef]) -> Result<(), Errno> {
    op(GNTTABOP_UNMAP_GRANT_REF, ops)
}

/// `GNTTABOP_setup_table`: grow the caller's table to `frames.len()`
/// frames; `frames` receives where each is mapped ([`INVALID_GFN`] if not
/// yet).
pub fn setup_table(frames: &mut [u64]) -> Result<(), GrantError> {
    let mut s = [GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: frames.len() as u32,
        status: 0,
        frame_list: frames.as_mut_ptr() as u64,
    }];
    let r = op(GNTTABOP_SETUP_TABLE, &mut s);
    st(r, s[0].status)
}

/// `GNTTABOP_query_size`: `(nr_frames, max_nr_frames)` of the caller.
pub fn query_size() -> Result<(u32, u32), GrantError> {
    let mut q = [GnttabQuerySize {
        dom: DOMID_SELF,
        ..Default::default()
    }];
    let r = op(GNTTABOP_QUERY_SIZE, &mut q);
    st(r, q[0].status).map(|_| (q[0].nr_frames, q[0].max_nr_frames))
}

/// `GNTTABOP_copy` of one op.
pub fn copy(c: GnttabCopy) -> Result<(), GrantError> {
    let mut c = [c];
    let r = op(GNTTABOP_COPY, &mut c);
    st(r, c[0].status)
}

/// Places grant-table frame `idx` at guest frame `gpfn` (of the
/// grant-table window) and returns it.
pub fn map_table_frame(idx: u64, gpfn: u64) -> Result<&'static GrantFrameV1, Errno> {
    crate::evtchn_guest::add_to_physmap(XENMAPSPACE_GRANT_TABLE, idx, gpfn)?;
    let addr = gpfn << 12;
    // SAFETY: the monitor has just mapped its grant-table frame at `addr`
    // (outside RAM, where no Rust object lives) for the domain's lifetime;
    // the entries are atomics, so sharing with the monitor is sound.
    Ok(unsafe { &*(addr as *const GrantFrameV1) })
}
