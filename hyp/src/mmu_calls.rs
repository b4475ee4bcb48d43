//! Handlers of `mmu_update`, `mmuext_op` and `multicall`: reading the
//! guest's request vectors, running each request through the domain's
//! [`PvMmu`](crate::pvmmu::PvMmu), and Xen's partial-completion reporting.
//! The ABI is documented in `hypercall_abi::mmu` and
//! `hypercall_abi::multicall`.

use crate::hypercall::{self, Guest};
use crate::pvmmu::Ttbr;
use core::sync::atomic::AtomicU64;
use hypercall_abi::errno::{result_to_raw, Errno};
use hypercall_abi::mmu::{self as abi, MmuextOp};
use hypercall_abi::multicall::MULTICALL_MAX;
use hypercall_abi::nr;

/// Checks the arguments common to both batched calls and clears `pdone`;
/// `ENOSYS` if the domain has no PV MMU.
fn start(g: &mut impl Guest, count: u64, pdone: u64, foreigndom: u64) -> Result<usize, Errno> {
    check_args(g, count, foreigndom)?;
    if pdone != 0 {
        g.write(pdone, &0u32.to_le_bytes())?;
    }
    Ok(count as usize)
}

fn check_args(g: &mut impl Guest, count: u64, foreigndom: u64) -> Result<(), Errno> {
    g.with_mmu(&mut |_, _| {})?;
    if foreigndom != abi::DOMID_SELF {
        return Err(Errno::EPERM);
    }
    if count > abi::MMU_BATCH_MAX as u64 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Stores the number done at `pdone` and returns the batch's result.
fn finish(g: &mut impl Guest, pdone: u64, done: usize, r: Result<(), Errno>) -> Result<u64, Errno> {
    if pdone != 0 {
        // Checked writable in `start`; a concurrent change is reported.
        g.write(pdone, &(done as u32).to_le_bytes())?;
    }
    r.map(|_| 0)
}

/// Guest virtual address of entry `i` of `size` bytes at `base`.
fn entry(base: u64, i: usize, size: usize) -> Result<u64, Errno> {
    (i as u64)
        .checked_mul(size as u64)
        .and_then(|o| base.checked_add(o))
        .ok_or(Errno::EFAULT)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

const PAGE: u64 = 4096;

/// Runs requests `[0, n)` of the vector at `reqs`: each page of the vector
/// is translated once and its requests are read in place, one at a time
/// just before each runs ([`vector_ipa`](crate::pvmmu::MmuEnv::vector_ipa) and [`frame`](crate::pvmmu::MmuEnv::frame));
/// a request that straddles a page, a misaligned vector or one the
/// environment cannot read in place is copied in through [`Guest::read`].
/// Returns how many were done and the error of the first that was not
/// (`EFAULT` if it was unreadable).
fn run_updates(g: &mut impl Guest, reqs: u64, n: usize) -> (usize, Result<(), Errno>) {
    let mut done = 0;
    while done < n {
        let Ok(at) = entry(reqs, done, 16) else {
            return (done, Err(Errno::EFAULT));
        };
        let in_page = if at % 8 == 0 {
            ((PAGE - at % PAGE) / 16) as usize
        } else {
            0
        };
        let mut ran = None;
        if in_page > 0 {
            let k = in_page.min(n - done);
            let called = g.with_mmu(&mut |m, env| {
                let Some(ipa) = env.vector_ipa(at) else {
                    return;
                };
                let Some(w) = env.frame(ipa & !(PAGE - 1)) else {
                    return;
                };
                let first = (ipa % PAGE / 8) as usize;
                ran = Some(env.update_batch(m, &w[first..first + 2 * k]));
            });
            if let Err(e) = called {
                return (done, Err(e));
            }
        }
        let (k, r) = match ran {
            Some(kr) => kr,
            None => {
                let mut b = [0u8; 16];
                if let Err(e) = g.read(at, &mut b) {
                    return (done, Err(e));
                }
                let req = [AtomicU64::new(u64_at(&b, 0)), AtomicU64::new(u64_at(&b, 8))];
                let mut r = (0, Ok(()));
                if let Err(e) = g.with_mmu(&mut |m, env| r = env.update_batch(m, &req)) {
                    return (done, Err(e));
                }
                r
            }
        };
        done += k;
        if r.is_err() {
            return (done, r);
        }
    }
    (done, Ok(()))
}

/// `mmu_update(reqs, count, pdone, foreigndom)`, run whole (inside a
/// `multicall`, which cannot be continued).
pub fn mmu_update(
    g: &mut impl Guest,
    reqs: u64,
    count: u64,
    pdone: u64,
    foreigndom: u64,
) -> Result<u64, Errno> {
    let n = start(g, count, pdone, foreigndom)?;
    let (done, r) = run_updates(g, reqs, n);
    finish(g, pdone, done, r)
}

/// What a preemptible `mmu_update` trap ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// The call's result.
    Done(Result<u64, Errno>),
    /// [`abi::MMU_UPDATE_PIECE`] requests done and more left: the guest
    /// re-executes the same `hvc` with these `x0..x3` (Xen's hypercall
    /// continuation: the rest of the vector, the count left with
    /// [`abi::MMU_UPDATE_PREEMPTED`], the same `pdone` and `foreigndom`).
    Continue([u64; 4]),
}

/// `mmu_update` as a hypercall: at most [`abi::MMU_UPDATE_PIECE`] requests
/// per trap. A longer batch is continued the Xen way: the monitor stores
/// the number done so far at `pdone`, rewrites the arguments to describe
/// the rest (count flagged [`abi::MMU_UPDATE_PREEMPTED`]) and steps the
/// guest back onto its `hvc`, so that the call resumes where it stopped
/// after any pending interrupt or reschedule; a continued call reads the
/// number already done back from `pdone` and adds to it. The guest sees
/// one call.
pub fn mmu_update_call(
    g: &mut impl Guest,
    reqs: u64,
    count: u64,
    pdone: u64,
    foreigndom: u64,
) -> Piece {
    let r = (|| {
        let preempted = count & abi::MMU_UPDATE_PREEMPTED != 0 && count >> 32 == 0;
        let count = if preempted {
            count & !abi::MMU_UPDATE_PREEMPTED
        } else {
            count
        };
        check_args(g, count, foreigndom)?;
        let mut before = 0u32;
        if pdone != 0 {
            let mut b = [0u8; 4];
            if preempted {
                g.read(pdone, &mut b)?;
                before = u32::from_le_bytes(b);
            }
            g.write(pdone, &before.to_le_bytes())?;
        }
        let n = count as usize;
        let (done, r) = run_updates(g, reqs, n.min(abi::MMU_UPDATE_PIECE));
        let total = (before as usize).wrapping_add(done);
        if r.is_ok() && done < n {
            finish(g, pdone, total, Ok(()))?;
            g.with_mmu(&mut |m, _| m.stats.continued += 1)?;
            let rest = ((n - done) as u64) | abi::MMU_UPDATE_PREEMPTED;
            return Ok(Piece::Continue([
                reqs.wrapping_add(16 * done as u64),
                rest,
                pdone,
                foreigndom,
            ]));
        }
        Ok(Piece::Done(finish(g, pdone, total, r)))
    })();
    r.unwrap_or_else(|e| Piece::Done(Err(e)))
}

/// Guest-physical address of frame number `gfn`.
fn frame(gfn: u64) -> Result<u64, Errno> {
    gfn.checked_mul(4096)
        .filter(|a| a >> 48 == 0)
        .ok_or(Errno::EPERM)
}

/// One `mmuext_op` operation.
fn mmuext_one(g: &mut impl Guest, op: MmuextOp) -> Result<(), Errno> {
    let mut r = Ok(());
    match op.cmd {
        c if abi::pin_level(c).is_some() => {
            let (ipa, level) = (frame(op.arg1)?, abi::pin_level(c).unwrap_or(0));
            g.with_mmu(&mut |m, env| r = m.pin(env, ipa, level))?;
        }
        abi::MMUEXT_UNPIN_TABLE => {
            let ipa = frame(op.arg1)?;
            g.with_mmu(&mut |m, env| r = m.unpin(env, ipa))?;
        }
        abi::MMUEXT_NEW_BASEPTR | abi::MMUEXT_NEW_TTBR1_BASEPTR => {
            let which = if op.cmd == abi::MMUEXT_NEW_BASEPTR {
                Ttbr::Ttbr0
            } else {
                Ttbr::Ttbr1
            };
            let ipa = frame(op.arg1)?;
            if op.arg2 > u16::MAX as u64 {
                return Err(Errno::EINVAL);
            }
            let vcpu = g.vcpu();
            g.with_mmu(&mut |m, env| r = m.set_base(env, vcpu, which, ipa))?;
            r?;
            g.load_ttbr(which, op.arg2 << 48 | ipa);
        }
        abi::MMUEXT_TLB_FLUSH_LOCAL | abi::MMUEXT_TLB_FLUSH_ALL => g.tlb_flush(None),
        abi::MMUEXT_INVLPG_LOCAL | abi::MMUEXT_INVLPG_ALL => g.tlb_flush(Some(op.arg1)),
        _ => return Err(Errno::ENOSYS),
    }
    r
}

/// `mmuext_op(ops, count, pdone, foreigndom)`.
pub fn mmuext_op(
    g: &mut impl Guest,
    ops: u64,
    count: u64,
    pdone: u64,
    foreigndom: u64,
) -> Result<u64, Errno> {
    let n = start(g, count, pdone, foreigndom)?;
    let mut done = 0;
    let mut r = Ok(());
    while done < n {
        let mut b = [0u8; 24];
        if let Err(e) = entry(ops, done, 24).and_then(|a| g.read(a, &mut b)) {
            r = Err(e);
            break;
        }
        let op = MmuextOp::new(u64_at(&b, 0) as u32, u64_at(&b, 8), u64_at(&b, 16));
        if let Err(e) = mmuext_one(g, op) {
            r = Err(e);
            break;
        }
        done += 1;
    }
    finish(g, pdone, done, r)
}

/// `multicall(calls, nr_calls)`: runs each entry, stores each result.
pub fn multicall(g: &mut impl Guest, calls: u64, nr_calls: u64) -> Result<u64, Errno> {
    if nr_calls > MULTICALL_MAX as u64 {
        return Err(Errno::EINVAL);
    }
    for i in 0..nr_calls as usize {
        let at = entry(calls, i, 64)?;
        let mut b = [0u8; 64];
        g.read(at, &mut b)?;
        let a: [u64; 5] = core::array::from_fn(|k| u64_at(&b, 16 + 8 * k));
        let r = match u64_at(&b, 0) {
            nr::MMU_UPDATE => mmu_update(g, a[0], a[1], a[2], a[3]),
            nr::MMUEXT_OP => mmuext_op(g, a[0], a[1], a[2], a[3]),
            nr::XEN_VERSION => hypercall::xen_version(g, a[0], a[1]),
            nr::CONSOLE_IO => hypercall::console_io(g, a[0], a[1], a[2]),
            _ => Err(Errno::ENOSYS),
        };
        g.write(at + 8, &result_to_raw(r).to_le_bytes())?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
