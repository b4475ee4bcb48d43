//! `test=...` modes: hypercall error checks, and deliberate faults that
//! the monitor (or this kernel's own vectors) must contain.
//!
//! A check is a small function returning the raw `x0` of one call; the
//! tables list each with its name and the accepted results.

use crate::console::println;
use crate::dt::BootInfo;
use core::arch::asm;
use core::fmt;
use hypercall_abi::console::{CONSOLEIO_WRITE, CONSOLE_IO_MAX};
use hypercall_abi::guest::{self, raw};
use hypercall_abi::sched::{SchedShutdown, SCHEDOP_SHUTDOWN};
use hypercall_abi::version::XENVER_EXTRAVERSION;
use hypercall_abi::{nr, psci, Errno};

const ENOSYS: i64 = Errno::ENOSYS.to_raw();
const EFAULT: i64 = Errno::EFAULT.to_raw();
const EINVAL: i64 = Errno::EINVAL.to_raw();

/// A guest-physical address with nothing mapped (guest RAM is far below).
const OUTSIDE_RAM: u64 = 0x1_0000_0000;
/// An address the monitor does not map for this guest (`test=s2fault`).
const NOT_MY_MEMORY: usize = 0x8000_0000;

/// One hypercall check.
pub struct Check {
    /// Printed as `guest: check <name>: ...`.
    pub name: &'static str,
    /// Makes the call and returns the raw `x0`.
    pub run: fn(&BootInfo) -> i64,
    /// The accepted results.
    pub expect: &'static [i64],
}

/// `test=enosys`: unknown or unimplemented hypercalls.
pub const ENOSYS_CHECKS: &[Check] = &[
    Check {
        name: "hypercall_99",
        run: hypercall_99,
        expect: &[ENOSYS],
    },
    Check {
        name: "update_va_mapping",
        run: update_va_mapping,
        expect: &[ENOSYS],
    },
    Check {
        name: "hvc_wrong_immediate",
        run: hvc_wrong_immediate,
        expect: &[ENOSYS],
    },
    Check {
        name: "hvm_op_unknown_subop",
        run: hvm_op_unknown_subop,
        expect: &[ENOSYS],
    },
];

/// `test=efault`: buffers the monitor cannot access.
pub const EFAULT_CHECKS: &[Check] = &[
    Check {
        name: "console_write_outside_ram",
        run: console_write_outside_ram,
        expect: &[EFAULT],
    },
    Check {
        name: "console_write_across_ram_end",
        run: console_write_across_ram_end,
        expect: &[EFAULT],
    },
    Check {
        name: "xen_version_extraversion_outside_ram",
        run: extraversion_outside_ram,
        expect: &[EFAULT],
    },
    Check {
        name: "sched_shutdown_outside_ram",
        run: sched_shutdown_outside_ram,
        expect: &[EFAULT],
    },
    Check {
        name: "hvm_get_param_outside_ram",
        run: hvm_get_param_outside_ram,
        expect: &[EFAULT],
    },
];

/// `test=einval`: invalid arguments.
pub const EINVAL_CHECKS: &[Check] = &[
    Check {
        name: "console_write_too_long",
        run: console_write_too_long,
        expect: &[EINVAL],
    },
    Check {
        name: "sched_shutdown_bad_reason",
        run: sched_shutdown_bad_reason,
        expect: &[EINVAL],
    },
    Check {
        name: "console_io_bad_command",
        run: console_io_bad_command,
        expect: &[ENOSYS, EINVAL],
    },
    Check {
        name: "hvm_get_param_unknown_index",
        run: hvm_get_param_unknown_index,
        expect: &[EINVAL],
    },
];

fn hvm_op_unknown_subop(_: &BootInfo) -> i64 {
    let mut p = hypercall_abi::hvm::HvmParam::default();
    // SAFETY: `p` is a live 16-byte struct; an unknown sub-operation
    // touches nothing.
    unsafe {
        raw(
            nr::HVM_OP,
            [99, core::ptr::from_mut(&mut p) as u64, 0, 0, 0],
        )
    }
}

fn hvm_get_param_outside_ram(_: &BootInfo) -> i64 {
    // SAFETY: the monitor must refuse the address, not write there.
    unsafe {
        raw(
            nr::HVM_OP,
            [hypercall_abi::hvm::HVMOP_GET_PARAM, OUTSIDE_RAM, 0, 0, 0],
        )
    }
}

fn hvm_get_param_unknown_index(_: &BootInfo) -> i64 {
    let mut p = hypercall_abi::hvm::HvmParam {
        domid: hypercall_abi::event_channel::DOMID_SELF,
        index: hypercall_abi::hvm::HVM_PARAM_STORE_PFN,
        ..Default::default()
    };
    // SAFETY: `p` is a live, writable 16-byte struct (written back only
    // on success).
    unsafe {
        raw(
            nr::HVM_OP,
            [
                hypercall_abi::hvm::HVMOP_GET_PARAM,
                core::ptr::from_mut(&mut p) as u64,
                0,
                0,
                0,
            ],
        )
    }
}

fn hypercall_99(_: &BootInfo) -> i64 {
    // SAFETY: an unknown hypercall has no effect.
    unsafe { raw(99, [0; 5]) }
}

fn update_va_mapping(_: &BootInfo) -> i64 {
    // SAFETY: an x86-only call the monitor does not provide.
    unsafe { raw(nr::UPDATE_VA_MAPPING, [0; 5]) }
}

fn hvc_wrong_immediate(_: &BootInfo) -> i64 {
    let ret: i64;
    // SAFETY: an HVC with an immediate the monitor does not define; it
    // returns -ENOSYS in x0. x0-x17 are treated as clobbered, as for an
    // SMCCC call.
    unsafe {
        asm!(
            "hvc #0x123",
            inout("x0") 0i64 => ret,
            inout("x16") nr::XEN_VERSION => _,
            lateout("x1") _, lateout("x2") _, lateout("x3") _, lateout("x4") _,
            lateout("x5") _, lateout("x6") _, lateout("x7") _, lateout("x8") _,
            lateout("x9") _, lateout("x10") _, lateout("x11") _, lateout("x12") _,
            lateout("x13") _, lateout("x14") _, lateout("x15") _, lateout("x17") _,
            options(nostack),
        );
    }
    ret
}

fn console_write_outside_ram(_: &BootInfo) -> i64 {
    // SAFETY: the monitor only reads the buffer, which is not accessible.
    unsafe { raw(nr::CONSOLE_IO, [CONSOLEIO_WRITE, 16, OUTSIDE_RAM, 0, 0]) }
}

fn console_write_across_ram_end(info: &BootInfo) -> i64 {
    let buf = info.ram_end() as u64 - 8;
    // SAFETY: the monitor only reads; the last 8 bytes lie beyond RAM.
    unsafe { raw(nr::CONSOLE_IO, [CONSOLEIO_WRITE, 16, buf, 0, 0]) }
}

fn extraversion_outside_ram(_: &BootInfo) -> i64 {
    // SAFETY: the output buffer is not accessible, so nothing is written.
    unsafe { raw(nr::XEN_VERSION, [XENVER_EXTRAVERSION, OUTSIDE_RAM, 0, 0, 0]) }
}

fn sched_shutdown_outside_ram(_: &BootInfo) -> i64 {
    // SAFETY: the argument cannot be read, so the domain keeps running.
    unsafe { raw(nr::SCHED_OP, [SCHEDOP_SHUTDOWN, OUTSIDE_RAM, 0, 0, 0]) }
}

/// A valid buffer one byte longer than a `console_io` call accepts.
static TOO_LONG: [u8; CONSOLE_IO_MAX + 1] = [b'x'; CONSOLE_IO_MAX + 1];

fn console_write_too_long(_: &BootInfo) -> i64 {
    let args = [
        CONSOLEIO_WRITE,
        TOO_LONG.len() as u64,
        TOO_LONG.as_ptr() as u64,
        0,
        0,
    ];
    // SAFETY: the buffer is valid and only read.
    unsafe { raw(nr::CONSOLE_IO, args) }
}

fn sched_shutdown_bad_reason(_: &BootInfo) -> i64 {
    let arg = SchedShutdown { reason: 99 };
    let ptr = core::ptr::from_ref(&arg) as u64;
    // SAFETY: `arg` is live and only read; reason 99 is refused.
    unsafe { raw(nr::SCHED_OP, [SCHEDOP_SHUTDOWN, ptr, 0, 0, 0]) }
}

fn console_io_bad_command(_: &BootInfo) -> i64 {
    let buf = b"x";
    // SAFETY: an unknown command with a valid 1-byte buffer.
    unsafe { raw(nr::CONSOLE_IO, [7, 1, buf.as_ptr() as u64, 0, 0]) }
}

/// A raw result with its errno name: `-38 (ENOSYS)`.
struct Raw(i64);

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Errno::from_raw(self.0) {
            Some(e) => write!(f, "{} ({})", self.0, e.name()),
            None => write!(f, "{} (not an errno)", self.0),
        }
    }
}

/// The accepted results: `-38 (ENOSYS) or -22 (EINVAL)`.
struct OneOf(&'static [i64]);

impl fmt::Display for OneOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            write!(f, "{}", Raw(v))?;
        }
        Ok(())
    }
}

/// Run `checks`, print each result and the summary, then power off if all
/// passed and crash otherwise.
pub fn run_checks(info: &BootInfo, checks: &[Check]) -> ! {
    let mut passed = 0;
    for c in checks {
        let got = (c.run)(info);
        if c.expect.contains(&got) {
            passed += 1;
            println!("guest: check {}: got {} ok", c.name, Raw(got));
        } else {
            println!(
                "guest: check {}: got {} FAIL (expected {})",
                c.name,
                Raw(got),
                OneOf(c.expect)
            );
        }
    }
    println!("guest: checks passed {}/{}", passed, checks.len());
    if passed == checks.len() {
        guest::poweroff()
    } else {
        guest::crash()
    }
}

/// `test=s2fault`: read memory the monitor did not give this guest.
pub fn s2fault() -> ! {
    println!("guest: touching memory outside my own");
    // SAFETY: deliberately invalid: the monitor must stop the guest (or
    // inject an abort, which the vectors report) before this returns.
    let v = unsafe { core::ptr::read_volatile(NOT_MY_MEMORY as *const u64) };
    println!("guest: BUG: still running after a stage-2 fault (read {v:#x})");
    guest::crash()
}

/// `test=undef`: the kernel's own vector reports the exception.
pub fn undef() -> ! {
    println!("guest: executing an undefined instruction");
    // SAFETY: `udf` traps to this kernel's EL1 vectors, which never return.
    unsafe { asm!("udf #0", options(nomem, nostack)) };
    println!("guest: BUG: still running after udf");
    guest::crash()
}

/// `test=smc`: PSCI `SYSTEM_OFF` through an SMC, which the monitor traps.
pub fn smc() -> ! {
    println!("guest: powering off through PSCI SYSTEM_OFF via smc");
    let x0: u64;
    // SAFETY: SYSTEM_OFF ends the domain; if it returns, x0-x17 are
    // treated as clobbered (SMCCC).
    unsafe {
        asm!(
            "smc #0",
            inout("x0") psci::SYSTEM_OFF as u64 => x0,
            lateout("x1") _, lateout("x2") _, lateout("x3") _, lateout("x4") _,
            lateout("x5") _, lateout("x6") _, lateout("x7") _, lateout("x8") _,
            lateout("x9") _, lateout("x10") _, lateout("x11") _, lateout("x12") _,
            lateout("x13") _, lateout("x14") _, lateout("x15") _, lateout("x16") _,
            lateout("x17") _,
            options(nostack),
        );
    }
    println!("guest: smc returned x0 = {x0:#x}");
    guest::crash()
}

/// `test=panic`: the panic handler reports and crashes.
pub fn panic() -> ! {
    panic!("deliberate panic")
}
