//! Handlers of `mmu_update`, `mmuext_op` and `multicall`: reading the
//! guest's request vectors, running each request through the domain's
//! [`PvMmu`](crate::pvmmu::PvMmu), and Xen's partial-completion reporting.
//! The ABI is documented in `hypercall_abi::mmu` and
//! `hypercall_abi::multicall`.

use crate::hypercall::{self, Guest};
use crate::pvmmu::Ttbr;
use hypercall_abi::errno::{result_to_raw, Errno};
use hypercall_abi::mmu::{self as abi, MmuextOp};
use hypercall_abi::multicall::MULTICALL_MAX;
use hypercall_abi::nr;

/// Checks the arguments common to both batched calls and clears `pdone`;
/// `ENOSYS` if the domain has no PV MMU.
fn start(g: &mut impl Guest, count: u64, pdone: u64, foreigndom: u64) -> Result<usize, Errno> {
    g.with_mmu(&mut |_, _| {})?;
    if foreigndom != abi::DOMID_SELF {
        return Err(Errno::EPERM);
    }
    if count > abi::MMU_BATCH_MAX as u64 {
        return Err(Errno::EINVAL);
    }
    if pdone != 0 {
        g.write(pdone, &0u32.to_le_bytes())?;
    }
    Ok(count as usize)
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

/// Requests read from the guest at a time.
const CHUNK: usize = 32;

/// `mmu_update(reqs, count, pdone, foreigndom)`. Requests are read up to
/// [`CHUNK`] at a time and run under one [`Guest::with_mmu`]; a chunk that
/// cannot be read whole is read request by request, so that the ones
/// before an unreadable request still run.
pub fn mmu_update(g: &mut impl Guest, reqs: u64, count: u64, pdone: u64, foreigndom: u64) -> Result<u64, Errno> {
    let n = start(g, count, pdone, foreigndom)?;
    let mut done = 0;
    let mut r = Ok(());
    // Read as words: with the byte buffer the compiler could not know the
    // alignment and would assemble every word from single bytes.
    let mut words = [0u64; 2 * CHUNK];
    while done < n {
        let k = (n - done).min(CHUNK);
        // SAFETY: a byte view of exactly the array, which any bytes are
        // valid for; it is last used before the array is read below.
        let buf = unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), 16 * CHUNK) };
        let whole = entry(reqs, done, 16).and_then(|a| g.read(a, &mut buf[..16 * k]));
        let readable = match whole {
            Ok(()) => k,
            Err(_) => (0..k)
                .take_while(|&j| {
                    entry(reqs, done + j, 16)
                        .and_then(|a| g.read(a, &mut buf[16 * j..16 * j + 16]))
                        .is_ok()
                })
                .count(),
        };
        let mut ran = 0;
        let mut failed = Ok(());
        g.with_mmu(&mut |m, env| {
            while ran < readable {
                let (ptr, val) = (u64::from_le(words[2 * ran]), u64::from_le(words[2 * ran + 1]));
                if let Err(e) = m.update(env, ptr, val) {
                    failed = Err(e);
                    return;
                }
                ran += 1;
            }
        })?;
        done += ran;
        if failed.is_err() {
            r = failed;
            break;
        }
        if readable < k {
            r = Err(Errno::EFAULT);
            break;
        }
    }
    finish(g, pdone, done, r)
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
pub fn mmuext_op(g: &mut impl Guest, ops: u64, count: u64, pdone: u64, foreigndom: u64) -> Result<u64, Errno> {
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
