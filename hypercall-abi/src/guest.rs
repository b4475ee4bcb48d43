//! Safe hypercall wrappers for a guest kernel (aarch64 only).
//!
//! The wrappers are free functions: there is exactly one monitor, and a
//! guest kernel can call them from anywhere (including a panic handler)
//! without threading a handle around.
//!
//! # Pointer arguments
//!
//! Where a hypercall takes a buffer, the wrapper passes the buffer's
//! address as the program sees it, i.e. a **guest virtual address**. The
//! monitor translates it through the guest's current stage-1 tables (if
//! the guest MMU is on) and then its stage-2 tables, exactly like a load or
//! store by the guest at EL1. For now guests run with the MMU off or
//! identity-mapped, so the value is also the guest physical address (IPA).
//! A buffer must be mapped as Normal write-back memory and must not cross
//! into unmapped pages, otherwise the call fails with `EFAULT`.
//!
//! # Example
//!
//! ```ignore
//! use hypercall_abi::guest;
//! guest::console_write(b"hello\n").ok();
//! let (major, minor) = guest::xen_version().unwrap_or((0, 0));
//! guest::poweroff();
//! ```

use crate::console::{self, CONSOLEIO_READ, CONSOLEIO_WRITE};
use crate::errno::{result_from_raw, Errno};
use crate::hvc;
use crate::mmu;
use crate::multicall::MulticallEntry;
use crate::nr;
use crate::psci;
use crate::sched::{self, SchedShutdown, ShutdownReason};
use crate::version::{self, XenFeatureInfo, XEN_EXTRAVERSION_LEN};
use core::fmt;

/// Issue hypercall `nr` with all five argument registers and return the raw
/// `x0` (decode it with [`crate::result_from_raw`]). Unused arguments
/// should be 0.
///
/// # Safety
///
/// As for [`hvc::hypercall5`]: the caller upholds the contract of hypercall
/// `nr`, including the validity of any memory passed by address.
#[inline]
pub unsafe fn raw(nr: u64, args: [u64; 5]) -> i64 {
    // SAFETY: forwarded to the caller, see `# Safety`.
    unsafe { hvc::hypercall5(nr, args[0], args[1], args[2], args[3], args[4]) }
}

/// Write `bytes` to the monitor console, in chunks of at most
/// [`console::CONSOLE_IO_MAX`] bytes. Stops at the first failing chunk.
pub fn console_write(bytes: &[u8]) -> Result<(), Errno> {
    console::write_chunked(bytes, |chunk| {
        // SAFETY: `chunk` is a live, readable slice of `chunk.len() <=
        // CONSOLE_IO_MAX` bytes; console_io write only reads it.
        unsafe {
            hvc::hypercall3(
                nr::CONSOLE_IO,
                CONSOLEIO_WRITE,
                chunk.len() as u64,
                chunk.as_ptr() as u64,
            )
        }
    })
}

/// Read pending console input into `buf` (at most
/// [`console::CONSOLE_IO_MAX`] bytes); returns the number of bytes read,
/// 0 if none is pending.
pub fn console_read(buf: &mut [u8]) -> Result<usize, Errno> {
    let len = buf.len().min(console::CONSOLE_IO_MAX);
    // SAFETY: `buf[..len]` is a live, writable buffer owned by the caller
    // for the duration of the call; the monitor writes at most `len` bytes.
    let ret = unsafe {
        hvc::hypercall3(
            nr::CONSOLE_IO,
            CONSOLEIO_READ,
            len as u64,
            buf.as_mut_ptr() as u64,
        )
    };
    let n = result_from_raw(ret)?;
    Ok((n as usize).min(len))
}

/// The monitor console as a [`core::fmt::Write`] sink, so a guest can use
/// `write!(Console, ...)`. A failed hypercall becomes [`fmt::Error`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        console_write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// `SCHEDOP_yield`: let other vCPUs run; returns when this one runs again.
pub fn sched_yield() -> Result<(), Errno> {
    // SAFETY: SCHEDOP_yield takes no memory argument and has no effect on
    // the guest beyond a reschedule.
    let ret = unsafe { hvc::hypercall2(nr::SCHED_OP, sched::SCHEDOP_YIELD, 0) };
    result_from_raw(ret).map(|_| ())
}

/// `SCHEDOP_block`: sleep until an event is pending for this vCPU.
/// (`ENOSYS` if the monitor does not implement it; use `wfi` instead.)
pub fn sched_block() -> Result<(), Errno> {
    // SAFETY: SCHEDOP_block takes no memory argument; it only suspends the
    // calling vCPU until an event arrives.
    let ret = unsafe { hvc::hypercall2(nr::SCHED_OP, sched::SCHEDOP_BLOCK, 0) };
    result_from_raw(ret).map(|_| ())
}

/// `SCHEDOP_shutdown` with `reason`.
///
/// On success this does not return, except for
/// [`ShutdownReason::Suspend`], which returns `Ok(0)` when resumed in a new
/// domain and `Ok(1)` when the suspend was cancelled. A returned `Err` is
/// the monitor's refusal. See [`poweroff`], [`reboot`] and [`crash`] for
/// versions that never return.
pub fn sched_shutdown(reason: ShutdownReason) -> Result<u64, Errno> {
    let arg = SchedShutdown::new(reason);
    // SAFETY: `arg` is a live, properly aligned `SchedShutdown` that the
    // monitor only reads. Stopping the domain is the intended effect.
    let ret = unsafe {
        hvc::hypercall2(
            nr::SCHED_OP,
            sched::SCHEDOP_SHUTDOWN,
            core::ptr::from_ref(&arg) as u64,
        )
    };
    result_from_raw(ret)
}

/// Spin forever, yielding the pCPU to the monitor on every iteration.
fn park() -> ! {
    loop {
        let _ = sched_yield();
        core::hint::spin_loop();
    }
}

/// Shut the domain down with `reason`, falling back to the PSCI call with
/// `psci_fid` (if any), then parking the vCPU forever.
fn shutdown_or_park(reason: ShutdownReason, psci_fid: Option<u32>) -> ! {
    let _ = sched_shutdown(reason);
    if let Some(fid) = psci_fid {
        // SAFETY: SYSTEM_OFF/SYSTEM_RESET take no arguments and end the
        // domain, which is the intended effect.
        unsafe { hvc::smccc_hvc0(fid, 0, 0, 0) };
    }
    park()
}

/// Power the domain off (`SHUTDOWN_poweroff`). Falls back to PSCI
/// `SYSTEM_OFF`, and if that returns too, parks the vCPU. Never returns.
pub fn poweroff() -> ! {
    shutdown_or_park(ShutdownReason::Poweroff, Some(psci::SYSTEM_OFF))
}

/// Reboot the domain (`SHUTDOWN_reboot`). Falls back to PSCI
/// `SYSTEM_RESET`, and if that returns too, parks the vCPU. Never returns.
pub fn reboot() -> ! {
    shutdown_or_park(ShutdownReason::Reboot, Some(psci::SYSTEM_RESET))
}

/// Report a crash (`SHUTDOWN_crash`); use it from the panic handler. If
/// the monitor refuses, parks the vCPU. Never returns.
pub fn crash() -> ! {
    shutdown_or_park(ShutdownReason::Crash, None)
}

/// `XENVER_version`: the monitor's ABI version as `(major, minor)`; check
/// it with [`version::guest_compatible`].
pub fn xen_version() -> Result<(u16, u16), Errno> {
    // SAFETY: XENVER_version takes no memory argument.
    let ret = unsafe { hvc::hypercall2(nr::XEN_VERSION, version::XENVER_VERSION, 0) };
    result_from_raw(ret).map(|v| version::decode_version(v as u32))
}

/// `XENVER_extraversion`: the monitor's 16-byte identification string
/// (NUL-padded; trim with [`version::until_nul`]).
pub fn xen_extraversion() -> Result<[u8; XEN_EXTRAVERSION_LEN], Errno> {
    let mut buf = [0u8; XEN_EXTRAVERSION_LEN];
    // SAFETY: `buf` is a live, writable buffer of exactly the size the
    // monitor writes for this sub-op.
    let ret = unsafe {
        hvc::hypercall2(
            nr::XEN_VERSION,
            version::XENVER_EXTRAVERSION,
            buf.as_mut_ptr() as u64,
        )
    };
    result_from_raw(ret).map(|_| buf)
}

/// `XENVER_get_features`: the feature bits of submap `submap_idx` (bit `n`
/// = feature `32 * submap_idx + n`).
pub fn xen_get_features(submap_idx: u32) -> Result<u32, Errno> {
    let mut info = XenFeatureInfo {
        submap_idx,
        submap: 0,
    };
    // SAFETY: `info` is a live, aligned `XenFeatureInfo` the monitor reads
    // and writes in place.
    let ret = unsafe {
        hvc::hypercall2(
            nr::XEN_VERSION,
            version::XENVER_GET_FEATURES,
            core::ptr::from_mut(&mut info) as u64,
        )
    };
    result_from_raw(ret).map(|_| info.submap)
}

/// PSCI `PSCI_VERSION` as `(major, minor)`.
pub fn psci_version() -> (u16, u16) {
    // SAFETY: PSCI_VERSION takes no arguments and has no side effects.
    let v = unsafe { hvc::smccc_hvc0(psci::PSCI_VERSION, 0, 0, 0) };
    version::decode_version(v as u32)
}

/// PSCI `AFFINITY_INFO(target_mpidr, 0)`: one of
/// [`psci::AFFINITY_ON`], [`psci::AFFINITY_OFF`],
/// [`psci::AFFINITY_ON_PENDING`], or a negative PSCI status.
pub fn psci_affinity_info(target_mpidr: u64) -> i32 {
    // SAFETY: AFFINITY_INFO only queries vCPU state.
    let r = unsafe { hvc::smccc_hvc0(psci::AFFINITY_INFO, target_mpidr, 0, 0) };
    psci::status_from_x0(r)
}

/// PSCI `CPU_ON`: start the vCPU with affinity `target_mpidr` at guest
/// physical address `entry_ipa` (MMU off, EL1h, interrupts masked) with
/// `x0 = context_id`. Returns the PSCI status ([`psci::SUCCESS`], ...).
///
/// # Safety
///
/// `entry_ipa` must be code that can run on a fresh vCPU with the MMU off,
/// and whatever `context_id` designates must stay valid for it.
pub unsafe fn psci_cpu_on(target_mpidr: u64, entry_ipa: u64, context_id: u64) -> i32 {
    // SAFETY: forwarded to the caller, see `# Safety`.
    let r = unsafe { hvc::smccc_hvc0(psci::CPU_ON, target_mpidr, entry_ipa, context_id) };
    psci::status_from_x0(r)
}

/// PSCI `CPU_OFF`: stop the calling vCPU. Returns only on failure, with the
/// PSCI status (e.g. [`psci::DENIED`]).
pub fn psci_cpu_off() -> i32 {
    // SAFETY: CPU_OFF takes no arguments; stopping this vCPU is the
    // intended effect and is sound because this function does not return
    // on success (no Rust state is left half-updated).
    let r = unsafe { hvc::smccc_hvc0(psci::CPU_OFF, 0, 0, 0) };
    psci::status_from_x0(r)
}

/// `mmu_update(reqs, reqs.len(), &done, DOMID_SELF)`: how many requests
/// were done, and the error of the first one that was not (see
/// [`crate::mmu`]).
pub fn mmu_update(reqs: &[mmu::MmuUpdate]) -> (usize, Result<(), Errno>) {
    let mut done: u32 = 0;
    // SAFETY: `reqs` is a live slice the monitor only reads; `done` is a
    // live u32 it writes. The monitor validates every page-table change
    // against the domain's own memory; keeping the program's own code and
    // data mapped is the caller's concern, exactly as with a direct store
    // into one of its tables.
    let ret = unsafe {
        hvc::hypercall4(
            nr::MMU_UPDATE,
            reqs.as_ptr() as u64,
            reqs.len() as u64,
            core::ptr::from_mut(&mut done) as u64,
            mmu::DOMID_SELF,
        )
    };
    (done as usize, result_from_raw(ret).map(|_| ()))
}

/// `mmuext_op(ops, ops.len(), &done, DOMID_SELF)`: how many operations
/// were done, and the error of the first one that was not.
pub fn mmuext_op(ops: &[mmu::MmuextOp]) -> (usize, Result<(), Errno>) {
    let mut done: u32 = 0;
    // SAFETY: as for `mmu_update`: `ops` is only read, `done` written.
    let ret = unsafe {
        hvc::hypercall4(
            nr::MMUEXT_OP,
            ops.as_ptr() as u64,
            ops.len() as u64,
            core::ptr::from_mut(&mut done) as u64,
            mmu::DOMID_SELF,
        )
    };
    (done as usize, result_from_raw(ret).map(|_| ()))
}

/// `multicall(calls, calls.len())`: runs each entry and stores its result
/// in its `result` field.
pub fn multicall(calls: &mut [MulticallEntry]) -> Result<(), Errno> {
    // SAFETY: `calls` is a live slice the monitor reads and writes (the
    // `result` fields); the entries' own buffers are the caller's business
    // as for direct calls of the batched hypercalls, which are limited to
    // ones that only read or write memory they are given.
    let ret =
        unsafe { hvc::hypercall2(nr::MULTICALL, calls.as_mut_ptr() as u64, calls.len() as u64) };
    result_from_raw(ret).map(|_| ())
}

/// The monitor, as the [`mmu::Submit`] of an [`mmu::MmuBatch`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Hypervisor;

impl mmu::Submit for Hypervisor {
    fn mmu_update(&mut self, reqs: &[mmu::MmuUpdate]) -> (usize, Result<(), Errno>) {
        mmu_update(reqs)
    }
    fn mmuext_op(&mut self, ops: &[mmu::MmuextOp]) -> (usize, Result<(), Errno>) {
        mmuext_op(ops)
    }
}

/// `VCPUOP_initialise`: set where down vCPU `vcpu` of this domain starts.
pub fn vcpu_initialise(vcpu: u32, ctx: &crate::vcpu::VcpuGuestContext) -> Result<(), Errno> {
    // SAFETY: `ctx` is a live, aligned `VcpuGuestContext` the monitor only
    // reads; starting the vCPU there is up to a later `VCPUOP_up`.
    let ret = unsafe {
        hvc::hypercall3(
            nr::VCPU_OP,
            crate::vcpu::VCPUOP_INITIALISE,
            vcpu as u64,
            core::ptr::from_ref(ctx) as u64,
        )
    };
    result_from_raw(ret).map(|_| ())
}

/// `VCPUOP_up` / `VCPUOP_down` / `VCPUOP_is_up` on vCPU `vcpu` of this
/// domain (`op` is one of those constants of [`crate::vcpu`]); returns
/// the monitor's value (1/0 for `is_up`).
pub fn vcpu_op(op: u64, vcpu: u32) -> Result<u64, Errno> {
    // SAFETY: these sub-ops take no memory argument; starting or stopping
    // a vCPU of this domain is the intended effect.
    let ret = unsafe { hvc::hypercall3(nr::VCPU_OP, op, vcpu as u64, 0) };
    result_from_raw(ret)
}

/// `set_timer_op`: raise this vCPU's timer interrupt at `deadline_ns` of
/// system time (0 cancels). The interrupt is `VIRQ_TIMER` once the domain
/// has bound it, else the vCPU's own virtual IRQ line, acknowledged by the
/// next `set_timer_op`.
///
/// To sleep until it fires, check what the interrupt will change and run
/// `wfi` with IRQs masked (the monitor wakes the vCPU when its line is up,
/// masked or not), then unmask to take it. With IRQs unmasked, an
/// interrupt taken between the check and the `wfi` leaves the `wfi`
/// asleep:
///
/// ```ignore
/// // IRQs masked (DAIF.I set)
/// set_timer(deadline)?;
/// while !fired() {
///     wfi();          // returns once the line is up
///     unmask_then_mask_irqs(); // the handler runs here
/// }
/// ```
pub fn set_timer(deadline_ns: u64) -> Result<(), Errno> {
    // SAFETY: set_timer_op takes no memory argument.
    let ret = unsafe { hvc::hypercall1(nr::SET_TIMER_OP, deadline_ns) };
    result_from_raw(ret).map(|_| ())
}

/// `domctl` with `op`, which the monitor reads and writes back.
pub fn domctl(op: &mut crate::domctl::Domctl) -> Result<u64, Errno> {
    // SAFETY: `op` is a live, aligned, writable `Domctl` for the duration
    // of the call; the monitor reads and writes only its bytes.
    let ret = unsafe { hvc::hypercall1(nr::DOMCTL, core::ptr::from_mut(op) as u64) };
    result_from_raw(ret)
}

/// `hvm_op(HVMOP_get_param)` of parameter `index` of this domain (see
/// [`crate::hvm`]).
pub fn hvm_get_param(index: u32) -> Result<u64, Errno> {
    let mut p = crate::hvm::HvmParam {
        domid: crate::event_channel::DOMID_SELF,
        pad: 0,
        index,
        value: 0,
    };
    // SAFETY: `p` is a live, aligned, writable 16-byte struct for the
    // duration of the call; the monitor reads and writes only its bytes.
    let ret = unsafe {
        hvc::hypercall2(
            nr::HVM_OP,
            crate::hvm::HVMOP_GET_PARAM,
            core::ptr::from_mut(&mut p) as u64,
        )
    };
    result_from_raw(ret).map(|_| p.value)
}

/// The current driver domain ([`crate::hvm::HVM_PARAM_DRIVER_DOMAIN`]).
pub fn driver_domain() -> Result<crate::hvm::DriverDomain, Errno> {
    let v = hvm_get_param(crate::hvm::HVM_PARAM_DRIVER_DOMAIN)?;
    crate::hvm::DriverDomain::decode(v).ok_or(Errno::EINVAL)
}

/// `physdev_op(PHYSDEVOP_eoi, {irq})`: the driver domain has handled the
/// device behind VIRQ `irq`; the monitor unmasks its interrupt (see
/// [`crate::physdev`]).
pub fn physdev_eoi(irq: u32) -> Result<(), Errno> {
    let eoi = crate::physdev::PhysdevEoi { irq };
    // SAFETY: `eoi` is a live 4-byte struct the monitor only reads.
    let ret = unsafe {
        hvc::hypercall2(
            nr::PHYSDEV_OP,
            crate::physdev::PHYSDEVOP_EOI,
            core::ptr::from_ref(&eoi) as u64,
        )
    };
    result_from_raw(ret).map(|_| ())
}
