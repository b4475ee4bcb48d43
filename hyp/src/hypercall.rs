//! Hypercall handlers: plain functions over checked arguments. The calling
//! domain is reached only through the [`Guest`] trait, so every handler runs
//! in host tests against a simulated guest.

use hypercall_abi::console::{check_count, CONSOLEIO_READ, CONSOLEIO_WRITE};
use hypercall_abi::errno::Errno;
use hypercall_abi::sched::{ShutdownReason, SCHEDOP_BLOCK, SCHEDOP_SHUTDOWN, SCHEDOP_YIELD};
use hypercall_abi::version as ver;
use hypercall_abi::{nr, psci};
use crate::mmu_calls;
use crate::pvmmu::{MmuEnv, PvMmu, Ttbr};

/// What a handler may ask of the calling domain.
pub trait Guest {
    /// Copies guest memory at virtual address `gva` into `buf`; `EFAULT` if
    /// any byte is not the guest's own readable memory.
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copies `data` to guest memory at `gva`; `EFAULT` if any byte is not
    /// the guest's own writable memory. Nothing is written on failure.
    fn write(&mut self, gva: u64, data: &[u8]) -> Result<(), Errno>;
    /// Appends bytes to the domain's console.
    fn console(&mut self, bytes: &[u8]);
    /// The domain's handle (UUID).
    fn handle(&self) -> [u8; 16];
    /// Runs `f` on the domain's PV MMU state and the machine hooks it
    /// needs; `ENOSYS` if the domain has none (see [`crate::mmu_calls`]).
    fn with_mmu(&mut self, f: &mut dyn FnMut(&mut PvMmu, &mut dyn MmuEnv)) -> Result<(), Errno> {
        let _ = f;
        Err(Errno::ENOSYS)
    }
    /// Index of the calling vCPU in its domain.
    fn vcpu(&self) -> usize {
        0
    }
    /// Loads TTBR0_EL1 or TTBR1_EL1 of the calling vCPU with `val`
    /// (already validated).
    fn load_ttbr(&mut self, which: Ttbr, val: u64) {
        let _ = (which, val);
    }
    /// Invalidates the domain's stage-1 TLB entries: all, or one VA.
    fn tlb_flush(&mut self, va: Option<u64>) {
        let _ = va;
    }
}

/// What the monitor does after a hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Return this value in x0 and resume the caller.
    Return(i64),
    /// Return 0 and let another vCPU run.
    Yield,
    /// End the domain.
    Shutdown(ShutdownReason),
}

fn ret(r: Result<u64, Errno>) -> Action {
    Action::Return(hypercall_abi::result_to_raw(r))
}

/// The version this monitor reports (XENVER_version).
pub const VERSION: u32 = ver::ABI_VERSION;
/// XENVER_extraversion.
pub const EXTRAVERSION: &[u8] = b"-pvh";
/// XENVER_capabilities.
pub const CAPABILITIES: &[u8] = b"xen-3.0-aarch64 ";

/// Dispatches hypercall `nr` with arguments x0..x4.
pub fn dispatch(g: &mut impl Guest, nr: u64, a: [u64; 5]) -> Action {
    match nr {
        nr::XEN_VERSION => ret(xen_version(g, a[0], a[1])),
        nr::CONSOLE_IO => ret(console_io(g, a[0], a[1], a[2])),
        nr::SCHED_OP => sched_op(g, a[0], a[1]),
        nr::MMU_UPDATE => ret(mmu_calls::mmu_update(g, a[0], a[1], a[2], a[3])),
        nr::MMUEXT_OP => ret(mmu_calls::mmuext_op(g, a[0], a[1], a[2], a[3])),
        nr::MULTICALL => ret(mmu_calls::multicall(g, a[0], a[1])),
        _ => ret(Err(Errno::ENOSYS)),
    }
}

/// `xen_version(cmd, arg)`.
pub fn xen_version(g: &mut impl Guest, cmd: u64, arg: u64) -> Result<u64, Errno> {
    // A NUL-terminated string in a fixed-size guest buffer of `len` bytes.
    let mut put_str = |s: &[u8], len: usize| {
        let mut buf = [0u8; ver::XEN_CAPABILITIES_LEN];
        let n = s.len().min(len - 1);
        buf[..n].copy_from_slice(&s[..n]);
        g.write(arg, &buf[..len])
    };
    match cmd {
        ver::XENVER_VERSION => Ok(VERSION as u64),
        ver::XENVER_EXTRAVERSION => put_str(EXTRAVERSION, ver::XEN_EXTRAVERSION_LEN).map(|_| 0),
        ver::XENVER_CAPABILITIES => put_str(CAPABILITIES, ver::XEN_CAPABILITIES_LEN).map(|_| 0),
        ver::XENVER_CHANGESET => put_str(
            env_or(option_env!("PVH_CHANGESET"), "unknown"),
            ver::XEN_CHANGESET_LEN,
        )
        .map(|_| 0),
        ver::XENVER_PAGESIZE => Ok(ver::XEN_PAGE_SIZE),
        ver::XENVER_GET_FEATURES => {
            let mut b = [0u8; 8];
            g.read(arg, &mut b)?;
            let idx = u32::from_le_bytes(b[0..4].try_into().unwrap());
            if idx >= ver::XENFEAT_NR_SUBMAPS {
                return Err(Errno::EINVAL);
            }
            // Arm guests are always auto-translated.
            let map = 1u32 << ver::XENFEAT_AUTO_TRANSLATED_PHYSMAP;
            b[4..8].copy_from_slice(&map.to_le_bytes());
            g.write(arg, &b)?;
            Ok(0)
        }
        ver::XENVER_GUEST_HANDLE => {
            let h = g.handle();
            g.write(arg, &h)?;
            Ok(0)
        }
        // The monitor's command line and build details are not a guest's business.
        ver::XENVER_COMMANDLINE | ver::XENVER_BUILD_ID | ver::XENVER_COMPILE_INFO => {
            Err(Errno::EPERM)
        }
        ver::XENVER_PLATFORM_PARAMETERS => Err(Errno::EINVAL),
        _ => Err(Errno::ENOSYS),
    }
}

fn env_or(v: Option<&'static str>, d: &'static str) -> &'static [u8] {
    v.unwrap_or(d).as_bytes()
}

/// `console_io(cmd, count, buffer)`: all or nothing.
pub fn console_io(g: &mut impl Guest, cmd: u64, count: u64, buf: u64) -> Result<u64, Errno> {
    match cmd {
        CONSOLEIO_WRITE => {
            let n = check_count(count)?;
            let mut tmp = [0u8; hypercall_abi::console::CONSOLE_IO_MAX];
            g.read(buf, &mut tmp[..n])?;
            g.console(&tmp[..n]);
            Ok(0)
        }
        // No console input is routed to guests yet.
        CONSOLEIO_READ => Err(Errno::EPERM),
        _ => Err(Errno::ENOSYS),
    }
}

/// `sched_op(cmd, arg)`.
pub fn sched_op(g: &mut impl Guest, cmd: u64, arg: u64) -> Action {
    match cmd {
        // Without event channels there is nothing to wait for: block yields.
        SCHEDOP_YIELD | SCHEDOP_BLOCK => Action::Yield,
        SCHEDOP_SHUTDOWN => {
            let mut b = [0u8; 4];
            if let Err(e) = g.read(arg, &mut b) {
                return ret(Err(e));
            }
            match ShutdownReason::from_raw(u32::from_le_bytes(b)) {
                Some(r) => Action::Shutdown(r),
                None => ret(Err(Errno::EINVAL)),
            }
        }
        _ => ret(Err(Errno::ENOSYS)),
    }
}

/// A PSCI call from a guest (`hvc #0`, or a trapped `smc #0`): function id in
/// w0. A guest may power itself off or reset itself (which ends the domain);
/// it cannot reach the machine's firmware.
pub fn psci_call(fid: u64) -> Action {
    let st = |c: i32| Action::Return(psci::status_to_x0(c) as i64);
    match fid as u32 {
        psci::PSCI_VERSION => Action::Return(psci::MONITOR_PSCI_VERSION as i64),
        psci::SYSTEM_OFF => Action::Shutdown(ShutdownReason::Poweroff),
        psci::SYSTEM_RESET => Action::Shutdown(ShutdownReason::Reboot),
        psci::PSCI_FEATURES => st(psci::NOT_SUPPORTED),
        // Secondary vCPUs arrive with SMP support.
        psci::CPU_ON | psci::CPU_ON_32 => st(psci::DENIED),
        _ => st(psci::NOT_SUPPORTED),
    }
}

#[cfg(test)]
pub mod sim {
    //! A simulated guest: flat memory at a guest-physical base, identity-mapped.
    use super::*;

    /// Memory `[base, base+mem.len())` and what the guest printed.
    pub struct SimGuest {
        /// Base address.
        pub base: u64,
        /// Contents.
        pub mem: Vec<u8>,
        /// Console output.
        pub out: Vec<u8>,
    }

    impl SimGuest {
        /// A guest with `size` bytes at `base`.
        pub fn new(base: u64, size: usize) -> Self {
            Self {
                base,
                mem: vec![0; size],
                out: Vec::new(),
            }
        }
        fn range(&self, gva: u64, len: usize) -> Result<core::ops::Range<usize>, Errno> {
            let off = gva.checked_sub(self.base).ok_or(Errno::EFAULT)? as usize;
            let end = off.checked_add(len).ok_or(Errno::EFAULT)?;
            if end > self.mem.len() {
                return Err(Errno::EFAULT);
            }
            Ok(off..end)
        }
    }

    impl Guest for SimGuest {
        fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), Errno> {
            let r = self.range(gva, buf.len())?;
            buf.copy_from_slice(&self.mem[r]);
            Ok(())
        }
        fn write(&mut self, gva: u64, data: &[u8]) -> Result<(), Errno> {
            let r = self.range(gva, data.len())?;
            self.mem[r].copy_from_slice(data);
            Ok(())
        }
        fn console(&mut self, bytes: &[u8]) {
            self.out.extend_from_slice(bytes);
        }
        fn handle(&self) -> [u8; 16] {
            [7; 16]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sim::SimGuest;
    use super::*;

    const B: u64 = 0x4000_0000;

    fn raw(a: Action) -> i64 {
        match a {
            Action::Return(v) => v,
            other => panic!("expected a return, got {other:?}"),
        }
    }

    #[test]
    fn unknown_hypercalls_get_enosys() {
        let mut g = SimGuest::new(B, 4096);
        for n in [1, 14, 26, 99, u64::MAX] {
            assert_eq!(raw(dispatch(&mut g, n, [0; 5])), -38);
        }
    }

    #[test]
    fn version_calls() {
        let mut g = SimGuest::new(B, 4096);
        assert_eq!(
            raw(dispatch(&mut g, nr::XEN_VERSION, [0; 5])),
            VERSION as i64
        );
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::XEN_VERSION,
                [ver::XENVER_EXTRAVERSION, B + 100, 0, 0, 0]
            )),
            0
        );
        assert_eq!(&g.mem[100..105], b"-pvh\0");
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::XEN_VERSION,
                [ver::XENVER_EXTRAVERSION, B + 4090, 0, 0, 0]
            )),
            -14
        );
        assert_eq!(&g.mem[4090..4096], &[0; 6], "nothing written on EFAULT");
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::XEN_VERSION,
                [ver::XENVER_PAGESIZE, 0, 0, 0, 0]
            )),
            4096
        );
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::XEN_VERSION,
                [ver::XENVER_COMMANDLINE, B, 0, 0, 0]
            )),
            -1
        );
        assert_eq!(
            raw(dispatch(&mut g, nr::XEN_VERSION, [77, B, 0, 0, 0])),
            -38
        );
        // get_features: submap 0 has auto-translated; submap 5 does not exist.
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::XEN_VERSION,
                [ver::XENVER_GET_FEATURES, B, 0, 0, 0]
            )),
            0
        );
        assert_eq!(u32::from_le_bytes(g.mem[4..8].try_into().unwrap()), 1 << 2);
        g.mem[0] = 5;
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::XEN_VERSION,
                [ver::XENVER_GET_FEATURES, B, 0, 0, 0]
            )),
            -22
        );
    }

    #[test]
    fn console_write_is_checked() {
        let mut g = SimGuest::new(B, 8192);
        g.mem[..5].copy_from_slice(b"hello");
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::CONSOLE_IO,
                [CONSOLEIO_WRITE, 5, B, 0, 0]
            )),
            0
        );
        assert_eq!(g.out, b"hello");
        // Outside memory, crossing its end, too long, unknown command.
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::CONSOLE_IO,
                [CONSOLEIO_WRITE, 5, 0x1_0000_0000, 0, 0]
            )),
            -14
        );
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::CONSOLE_IO,
                [CONSOLEIO_WRITE, 16, B + 8192 - 8, 0, 0]
            )),
            -14
        );
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::CONSOLE_IO,
                [CONSOLEIO_WRITE, 4097, B, 0, 0]
            )),
            -22
        );
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::CONSOLE_IO,
                [CONSOLEIO_WRITE, u64::MAX, B, 0, 0]
            )),
            -22
        );
        assert_eq!(raw(dispatch(&mut g, nr::CONSOLE_IO, [7, 1, B, 0, 0])), -38);
        assert_eq!(g.out, b"hello", "failed writes print nothing");
        // Address arithmetic that wraps.
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::CONSOLE_IO,
                [CONSOLEIO_WRITE, 16, u64::MAX - 4, 0, 0]
            )),
            -14
        );
    }

    #[test]
    fn sched_shutdown_reads_its_reason() {
        let mut g = SimGuest::new(B, 4096);
        assert_eq!(
            dispatch(&mut g, nr::SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]),
            Action::Yield
        );
        g.mem[0..4].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(
            dispatch(&mut g, nr::SCHED_OP, [SCHEDOP_SHUTDOWN, B, 0, 0, 0]),
            Action::Shutdown(ShutdownReason::Crash)
        );
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::SCHED_OP,
                [SCHEDOP_SHUTDOWN, 0x10, 0, 0, 0]
            )),
            -14
        );
        g.mem[0..4].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::SCHED_OP,
                [SCHEDOP_SHUTDOWN, B, 0, 0, 0]
            )),
            -22
        );
        assert_eq!(raw(dispatch(&mut g, nr::SCHED_OP, [42, 0, 0, 0, 0])), -38);
    }

    #[test]
    fn psci_from_guests() {
        assert_eq!(
            psci_call(psci::SYSTEM_OFF as u64),
            Action::Shutdown(ShutdownReason::Poweroff)
        );
        assert_eq!(
            psci_call(psci::SYSTEM_RESET as u64),
            Action::Shutdown(ShutdownReason::Reboot)
        );
        assert_eq!(
            psci_call(psci::PSCI_VERSION as u64),
            Action::Return(0x1_0001)
        );
        assert_eq!(psci_call(0x8400_00ff), Action::Return(-1));
        // Only w0 counts: the upper half of x0 is ignored, as SMCCC says.
        assert_eq!(
            psci_call(0xdead_0000_8400_0008),
            Action::Shutdown(ShutdownReason::Poweroff)
        );
    }
}
