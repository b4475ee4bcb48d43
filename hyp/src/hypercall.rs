//! Hypercall handlers: plain functions over checked arguments. The calling
//! domain is reached only through the [`Guest`] trait, so every handler runs
//! in host tests against a simulated guest.

use crate::mmu_calls;
use crate::pvmmu::{MmuEnv, PvMmu, Ttbr};
use hypercall_abi::console::{check_count, CONSOLEIO_READ, CONSOLEIO_WRITE};
use hypercall_abi::errno::Errno;
use hypercall_abi::sched::{ShutdownReason, SCHEDOP_BLOCK, SCHEDOP_SHUTDOWN, SCHEDOP_YIELD};
use hypercall_abi::vcpu::VcpuGuestContext;
use hypercall_abi::version as ver;
use hypercall_abi::{nr, psci};

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
    /// `CONSOLEIO_read` of `count` bytes into guest memory at `gva`
    /// ([`crate::console_in::read_call`]); `EPERM` unless the domain owns
    /// console input.
    fn console_read(&mut self, count: u64, gva: u64) -> Result<u64, Errno> {
        let _ = (count, gva);
        Err(Errno::EPERM)
    }
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
    /// Return 0 once the vCPU has something to handle (an event or its
    /// timer); until then it does not run.
    Block,
    /// `SCHEDOP_poll`, arguments checked: return 0 once one of the `nr`
    /// ports listed at guest address `ports` is pending, at `timeout`
    /// (system time, ns; 0 = none), or when an event reaches the vCPU.
    Poll {
        /// Guest address of the `u32` port array.
        ports: u64,
        /// How many ports.
        nr: u32,
        /// Absolute timeout, 0 for none.
        timeout: u64,
    },
    /// `set_timer_op`: arm (or, with 0, cancel) the vCPU's one-shot timer at
    /// this system time in ns, and acknowledge a timer interrupt already
    /// delivered. Returns 0.
    SetTimer(u64),
    /// PSCI `CPU_ON`: start vCPU `target` (its MPIDR as the guest sees it) at
    /// `entry` with `x0 = context`.
    CpuOn {
        /// The vCPU's MPIDR.
        target: u64,
        /// Where it starts.
        entry: u64,
        /// Its `x0`.
        context: u64,
    },
    /// PSCI `CPU_OFF`: stop the calling vCPU.
    CpuOff,
    /// PSCI `AFFINITY_INFO` for the vCPU with this MPIDR.
    AffinityInfo(u64),
    /// `VCPUOP_initialise` of vCPU `vcpu` (index in the caller's domain)
    /// with a context already read and validated.
    VcpuInitialise {
        /// Target vCPU.
        vcpu: u64,
        /// Its start state.
        ctx: VcpuGuestContext,
    },
    /// `VCPUOP_up`.
    VcpuUp(u64),
    /// `VCPUOP_down`.
    VcpuDown(u64),
    /// `VCPUOP_is_up`.
    VcpuIsUp(u64),
    /// `VCPUOP_set_singleshot_timer` on the calling vCPU (which `vcpu`
    /// must name): like [`Action::SetTimer`], but with
    /// `VCPU_SSHOTTMR_future` a deadline in the past gives `-ETIME`.
    SingleShot {
        /// Target vCPU (must be the caller).
        vcpu: u64,
        /// Deadline, ns of system time.
        deadline: u64,
        /// Refuse a deadline in the past.
        future_only: bool,
    },
    /// End the domain.
    Shutdown(ShutdownReason),
    /// Continue the call (Xen's hypercall continuation): set `x0..x3` to
    /// these and step back onto the `hvc`, which runs again.
    Continue([u64; 4]),
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
#[inline(always)]
pub fn dispatch(g: &mut impl Guest, nr: u64, a: [u64; 5]) -> Action {
    match nr {
        nr::XEN_VERSION => ret(xen_version(g, a[0], a[1])),
        nr::SET_TIMER_OP => Action::SetTimer(a[0]),
        nr::SCHED_OP => sched_op(g, a[0], a[1]),
        nr::CONSOLE_IO => ret(console_io(g, a[0], a[1], a[2])),
        nr::VCPU_OP => vcpu_op(g, a[0], a[1], a[2]),
        _ => dispatch_other(g, nr, a),
    }
}

/// The hypercalls off the hot path (kept out of line so that the common
/// ones stay short).
#[inline(never)]
fn dispatch_other(g: &mut impl Guest, nr: u64, a: [u64; 5]) -> Action {
    match nr {
        nr::MMU_UPDATE => match mmu_calls::mmu_update_call(g, a[0], a[1], a[2], a[3]) {
            mmu_calls::Piece::Done(r) => ret(r),
            mmu_calls::Piece::Continue(args) => Action::Continue(args),
        },
        nr::MMUEXT_OP => ret(mmu_calls::mmuext_op(g, a[0], a[1], a[2], a[3])),
        nr::MULTICALL => ret(mmu_calls::multicall(g, a[0], a[1])),
        _ => ret(Err(Errno::ENOSYS)),
    }
}

/// `xen_version(cmd, arg)`.
#[inline(always)]
pub fn xen_version(g: &mut impl Guest, cmd: u64, arg: u64) -> Result<u64, Errno> {
    match xen_version_value(cmd) {
        Some(v) => Ok(v),
        None => xen_version_other(g, cmd, arg),
    }
}

/// The `xen_version` answers that need no guest memory (the trap fast
/// path gives them without the monitor lock).
#[inline(always)]
pub fn xen_version_value(cmd: u64) -> Option<u64> {
    match cmd {
        ver::XENVER_VERSION => Some(VERSION as u64),
        ver::XENVER_PAGESIZE => Some(ver::XEN_PAGE_SIZE),
        _ => None,
    }
}

/// The other `xen_version` commands.
#[inline(never)]
fn xen_version_other(g: &mut impl Guest, cmd: u64, arg: u64) -> Result<u64, Errno> {
    // A NUL-terminated string in a fixed-size guest buffer of `len` bytes.
    let mut put_str = |s: &[u8], len: usize| {
        let mut buf = [0u8; ver::XEN_CAPABILITIES_LEN];
        let n = s.len().min(len - 1);
        buf[..n].copy_from_slice(&s[..n]);
        g.write(arg, &buf[..len])
    };
    match cmd {
        ver::XENVER_EXTRAVERSION => put_str(EXTRAVERSION, ver::XEN_EXTRAVERSION_LEN).map(|_| 0),
        ver::XENVER_CAPABILITIES => put_str(CAPABILITIES, ver::XEN_CAPABILITIES_LEN).map(|_| 0),
        ver::XENVER_CHANGESET => put_str(
            env_or(option_env!("PVH_CHANGESET"), "unknown"),
            ver::XEN_CHANGESET_LEN,
        )
        .map(|_| 0),
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
        // Serial input, for the domain that owns it (`crate::console_in`).
        CONSOLEIO_READ => g.console_read(count, buf),
        _ => Err(Errno::ENOSYS),
    }
}

/// `sched_op(cmd, arg)`.
pub fn sched_op(g: &mut impl Guest, cmd: u64, arg: u64) -> Action {
    match cmd {
        SCHEDOP_YIELD => Action::Yield,
        SCHEDOP_BLOCK => Action::Block,
        hypercall_abi::sched::SCHEDOP_POLL => match poll_args(g, arg) {
            Ok(a) => a,
            Err(e) => ret(Err(e)),
        },
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

/// Most ports one `SCHEDOP_poll` may list (as Xen).
pub const POLL_MAX_PORTS: u32 = 128;
/// Ports of the 2-level event-channel ABI.
const NR_PORTS: u32 = 4096;

/// Reads and checks a `struct sched_poll` and its port list.
fn poll_args(g: &mut impl Guest, arg: u64) -> Result<Action, Errno> {
    let mut b = [0u8; 24];
    g.read(arg, &mut b)?;
    let ports = u64::from_le_bytes(b[0..8].try_into().unwrap());
    let nr = u32::from_le_bytes(b[8..12].try_into().unwrap());
    let timeout = u64::from_le_bytes(b[16..24].try_into().unwrap());
    if nr > POLL_MAX_PORTS {
        return Err(Errno::EINVAL);
    }
    let mut list = [0u8; 4 * POLL_MAX_PORTS as usize];
    let list = &mut list[..4 * nr as usize];
    g.read(ports, list)?;
    if list
        .chunks_exact(4)
        .any(|p| u32::from_le_bytes(p.try_into().unwrap()) >= NR_PORTS)
    {
        return Err(Errno::EINVAL);
    }
    Ok(Action::Poll { ports, nr, timeout })
}

/// `vcpu_op(cmd, vcpu, arg)`: decodes and checks the arguments; the
/// monitor applies the result to its vCPUs.
pub fn vcpu_op(g: &mut impl Guest, cmd: u64, vcpu: u64, arg: u64) -> Action {
    use hypercall_abi::vcpu as v;
    match cmd {
        v::VCPUOP_INITIALISE => {
            let mut b = [0u8; core::mem::size_of::<VcpuGuestContext>()];
            if let Err(e) = g.read(arg, &mut b) {
                return ret(Err(e));
            }
            let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
            let ctx = VcpuGuestContext {
                pc: w(0),
                sp: w(1),
                x0: w(2),
                flags: w(3),
            };
            match ctx.validate() {
                Ok(()) => Action::VcpuInitialise { vcpu, ctx },
                Err(e) => ret(Err(e)),
            }
        }
        v::VCPUOP_UP => Action::VcpuUp(vcpu),
        v::VCPUOP_DOWN => Action::VcpuDown(vcpu),
        v::VCPUOP_IS_UP => Action::VcpuIsUp(vcpu),
        v::VCPUOP_SET_SINGLESHOT_TIMER => {
            let mut b = [0u8; 16];
            if let Err(e) = g.read(arg, &mut b) {
                return ret(Err(e));
            }
            let deadline = u64::from_le_bytes(b[0..8].try_into().unwrap());
            let flags = u32::from_le_bytes(b[8..12].try_into().unwrap());
            if flags & !v::VCPU_SSHOTTMR_FUTURE != 0 {
                return ret(Err(Errno::EINVAL));
            }
            Action::SingleShot {
                vcpu,
                deadline,
                future_only: flags & v::VCPU_SSHOTTMR_FUTURE != 0,
            }
        }
        v::VCPUOP_STOP_SINGLESHOT_TIMER => Action::SingleShot {
            vcpu,
            deadline: 0,
            future_only: false,
        },
        _ => ret(Err(Errno::ENOSYS)),
    }
}

/// A PSCI call from a guest (`hvc #0`, or a trapped `smc #0`): function id in
/// w0, arguments in x1..x3. A guest may power itself off or reset itself
/// (which ends the domain) and start and stop its own vCPUs; it cannot reach
/// the machine's firmware.
pub fn psci_call(fid: u64, a: [u64; 3]) -> Action {
    let st = |c: i32| Action::Return(psci::status_to_x0(c) as i64);
    match fid as u32 {
        psci::PSCI_VERSION => Action::Return(psci::MONITOR_PSCI_VERSION as i64),
        psci::SYSTEM_OFF => Action::Shutdown(ShutdownReason::Poweroff),
        psci::SYSTEM_RESET => Action::Shutdown(ShutdownReason::Reboot),
        psci::PSCI_FEATURES => match a[0] as u32 {
            psci::PSCI_VERSION
            | psci::SYSTEM_OFF
            | psci::SYSTEM_RESET
            | psci::CPU_ON
            | psci::CPU_OFF
            | psci::AFFINITY_INFO
            | psci::PSCI_FEATURES => st(psci::SUCCESS),
            _ => st(psci::NOT_SUPPORTED),
        },
        psci::CPU_ON => Action::CpuOn {
            target: a[0],
            entry: a[1],
            context: a[2],
        },
        psci::CPU_OFF => Action::CpuOff,
        psci::AFFINITY_INFO => {
            // Only level 0 (one vCPU) is meaningful here.
            if a[1] != 0 {
                st(psci::INVALID_PARAMETERS)
            } else {
                Action::AffinityInfo(a[0])
            }
        }
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
        /// Serial input, if this guest owns it.
        pub input: Option<crate::console_in::InputBuffer<64>>,
    }

    impl SimGuest {
        /// A guest with `size` bytes at `base`.
        pub fn new(base: u64, size: usize) -> Self {
            Self {
                base,
                mem: vec![0; size],
                out: Vec::new(),
                input: None,
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
        fn console_read(&mut self, count: u64, gva: u64) -> Result<u64, Errno> {
            let mut input = self.input.take();
            let r = crate::console_in::read_call(input.as_mut(), count, |d| self.write(gva, d));
            self.input = input;
            r
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
    fn console_read_is_for_the_input_owner_only() {
        let io = |g: &mut SimGuest, count: u64, buf: u64| {
            raw(dispatch(
                g,
                nr::CONSOLE_IO,
                [CONSOLEIO_READ, count, buf, 0, 0],
            ))
        };
        // A domain that does not own console input: EPERM.
        let mut g = SimGuest::new(B, 8192);
        assert_eq!(io(&mut g, 16, B), -1);
        // The owner: the count read, bytes in its buffer, in order.
        let mut input = crate::console_in::InputBuffer::<64>::new();
        for c in b"ls -l\r" {
            input.push(*c);
        }
        g.input = Some(input);
        assert_eq!(io(&mut g, 4097, B), -22, "count over CONSOLE_IO_MAX");
        assert_eq!(io(&mut g, 4, B + 8190), -14, "buffer runs off its memory");
        assert_eq!(io(&mut g, 4, u64::MAX - 1), -14, "buffer wraps around");
        assert_eq!(g.input.as_ref().unwrap().pending(), 6, "nothing lost");
        assert_eq!(io(&mut g, 4, B + 100), 4);
        assert_eq!(&g.mem[100..104], b"ls -");
        assert_eq!(io(&mut g, 4096, B + 200), 2);
        assert_eq!(&g.mem[200..202], b"l\r");
        assert_eq!(io(&mut g, 4096, B + 300), 0, "nothing pending");
        assert_eq!(io(&mut g, 0, 0), 0);
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
    fn sched_poll_checks_its_arguments() {
        use hypercall_abi::sched::SCHEDOP_POLL;
        let mut g = SimGuest::new(B, 0x1000);
        let put = |g: &mut SimGuest, ports: u64, nr: u32, timeout: u64| {
            g.mem[0..8].copy_from_slice(&ports.to_le_bytes());
            g.mem[8..12].copy_from_slice(&nr.to_le_bytes());
            g.mem[16..24].copy_from_slice(&timeout.to_le_bytes());
        };
        g.mem[0x100..0x104].copy_from_slice(&5u32.to_le_bytes());
        g.mem[0x104..0x108].copy_from_slice(&4095u32.to_le_bytes());
        put(&mut g, B + 0x100, 2, 77);
        assert_eq!(
            dispatch(&mut g, nr::SCHED_OP, [SCHEDOP_POLL, B, 0, 0, 0]),
            Action::Poll {
                ports: B + 0x100,
                nr: 2,
                timeout: 77
            }
        );
        put(&mut g, B + 0x100, 0, 0);
        assert_eq!(
            dispatch(&mut g, nr::SCHED_OP, [SCHEDOP_POLL, B, 0, 0, 0]),
            Action::Poll {
                ports: B + 0x100,
                nr: 0,
                timeout: 0
            }
        );
        put(&mut g, B + 0x100, 129, 0);
        assert_eq!(
            raw(dispatch(&mut g, nr::SCHED_OP, [SCHEDOP_POLL, B, 0, 0, 0])),
            -22
        );
        g.mem[0x104..0x108].copy_from_slice(&4096u32.to_le_bytes());
        put(&mut g, B + 0x100, 2, 0);
        assert_eq!(
            raw(dispatch(&mut g, nr::SCHED_OP, [SCHEDOP_POLL, B, 0, 0, 0])),
            -22,
            "port out of range"
        );
        put(&mut g, 0x10, 2, 0);
        assert_eq!(
            raw(dispatch(&mut g, nr::SCHED_OP, [SCHEDOP_POLL, B, 0, 0, 0])),
            -14,
            "list outside memory"
        );
        assert_eq!(
            raw(dispatch(&mut g, nr::SCHED_OP, [SCHEDOP_POLL, 8, 0, 0, 0])),
            -14
        );
    }

    #[test]
    fn vcpu_op_decodes_and_checks() {
        use hypercall_abi::vcpu::*;
        let mut g = SimGuest::new(B, 0x1000);
        let ctx = [0x4008_0000u64, 0x4100_0000, 7, 0];
        let bytes: Vec<u8> = ctx.iter().flat_map(|w| w.to_le_bytes()).collect();
        g.mem[0..32].copy_from_slice(&bytes);
        assert_eq!(
            dispatch(&mut g, nr::VCPU_OP, [VCPUOP_INITIALISE, 1, B, 0, 0]),
            Action::VcpuInitialise {
                vcpu: 1,
                ctx: VcpuGuestContext::new(0x4008_0000, 0x4100_0000, 7)
            }
        );
        // Misaligned pc, unknown flag, pointer outside the guest.
        g.mem[0] = 2;
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::VCPU_OP,
                [VCPUOP_INITIALISE, 1, B, 0, 0]
            )),
            -22
        );
        g.mem[0] = 0;
        g.mem[24] = 0x80;
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::VCPU_OP,
                [VCPUOP_INITIALISE, 1, B, 0, 0]
            )),
            -22
        );
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::VCPU_OP,
                [VCPUOP_INITIALISE, 1, 8, 0, 0]
            )),
            -14
        );
        assert_eq!(
            dispatch(&mut g, nr::VCPU_OP, [VCPUOP_UP, 3, 0, 0, 0]),
            Action::VcpuUp(3)
        );
        assert_eq!(
            dispatch(&mut g, nr::VCPU_OP, [VCPUOP_IS_UP, 2, 0, 0, 0]),
            Action::VcpuIsUp(2)
        );
        assert_eq!(raw(dispatch(&mut g, nr::VCPU_OP, [77, 0, 0, 0, 0])), -38);
        g.mem[0..8].copy_from_slice(&5_000u64.to_le_bytes());
        g.mem[8..12].copy_from_slice(&VCPU_SSHOTTMR_FUTURE.to_le_bytes());
        assert_eq!(
            dispatch(
                &mut g,
                nr::VCPU_OP,
                [VCPUOP_SET_SINGLESHOT_TIMER, 0, B, 0, 0]
            ),
            Action::SingleShot {
                vcpu: 0,
                deadline: 5_000,
                future_only: true
            }
        );
        g.mem[8] = 0x6;
        assert_eq!(
            raw(dispatch(
                &mut g,
                nr::VCPU_OP,
                [VCPUOP_SET_SINGLESHOT_TIMER, 0, B, 0, 0]
            )),
            -22
        );
        assert_eq!(
            dispatch(&mut g, nr::SET_TIMER_OP, [99, 0, 0, 0, 0]),
            Action::SetTimer(99)
        );
    }

    #[test]
    fn psci_from_guests() {
        assert_eq!(
            psci_call(psci::SYSTEM_OFF as u64, [0; 3]),
            Action::Shutdown(ShutdownReason::Poweroff)
        );
        assert_eq!(
            psci_call(psci::SYSTEM_RESET as u64, [0; 3]),
            Action::Shutdown(ShutdownReason::Reboot)
        );
        assert_eq!(
            psci_call(psci::PSCI_VERSION as u64, [0; 3]),
            Action::Return(0x1_0001)
        );
        assert_eq!(psci_call(0x8400_00ff, [0; 3]), Action::Return(-1));
        assert_eq!(
            psci_call(psci::CPU_ON as u64, [1, 0x4008_0000, 7]),
            Action::CpuOn {
                target: 1,
                entry: 0x4008_0000,
                context: 7
            }
        );
        assert_eq!(psci_call(psci::CPU_OFF as u64, [0; 3]), Action::CpuOff);
        assert_eq!(
            psci_call(psci::AFFINITY_INFO as u64, [2, 0, 0]),
            Action::AffinityInfo(2)
        );
        assert_eq!(
            psci_call(psci::AFFINITY_INFO as u64, [2, 1, 0]),
            Action::Return(-2)
        );
        assert_eq!(
            psci_call(psci::PSCI_FEATURES as u64, [psci::CPU_ON as u64, 0, 0]),
            Action::Return(0)
        );
        assert_eq!(
            psci_call(psci::PSCI_FEATURES as u64, [0x8400_00ff, 0, 0]),
            Action::Return(-1)
        );
        // Only w0 counts: the upper half of x0 is ignored, as SMCCC says.
        assert_eq!(
            psci_call(0xdead_0000_8400_0008, [0; 3]),
            Action::Shutdown(ShutdownReason::Poweroff)
        );
    }
}
