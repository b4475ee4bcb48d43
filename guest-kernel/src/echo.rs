//! `echo backend=N`: console input through the paravirtual console. The
//! guest connects to driver domain N (store and console, as the block
//! modes do), says `guest: echo: ready`, then reads its console's `in`
//! ring (woken by events on the console port) and prints every line it
//! gets back as `echo: LINE`. The line `quit` ends it (`guest: echo:
//! bye`, then it powers itself off); so does the back end going away.
//!
//! Without `backend=N`, the guest reads the serial line itself with
//! `CONSOLEIO_read`, woken by `VIRQ_CONSOLE`: the monitor allows that to
//! the domain that owns console input (the privileged domain when there
//! is no driver domain); any other gets `EPERM`, says so and powers off.

use crate::console::println;
use crate::dt::BootInfo;
use crate::pv::console_front::{installed_port, read_installed};
use crate::ring_test::opt;
use alloc::string::String;
use hypercall_abi::event_channel::VIRQ_CONSOLE;
use hypercall_abi::guest;
use pvdev::consback::LineReader;

/// Reads lines with `read` (0: nothing yet, `None`: gone), waiting with
/// `wait(seen)` on the events of `port`; echoes them until `quit`.
fn echo_lines(
    port: u32,
    mut read: impl FnMut(&mut [u8]) -> Option<usize>,
    wait: impl Fn(u32) -> bool,
) -> ! {
    let mut lines = LineReader::new();
    let mut buf = [0u8; 256];
    let mut quit = false;
    let mut count = 0u32;
    loop {
        let seen = crate::events::count(port);
        let Some(n) = read(&mut buf) else {
            println!("guest: echo: the console is gone after {count} line(s)");
            guest::poweroff()
        };
        lines.push(&buf[..n], |l| {
            count += 1;
            let text = String::from_utf8_lossy(l);
            println!("echo: {text}");
            quit |= l == b"quit";
        });
        if quit {
            println!("guest: echo: bye after {count} line(s)");
            guest::poweroff()
        }
        if n == 0 && !wait(seen) {
            println!("guest: echo: the console's back end is gone after {count} line(s)");
            guest::poweroff()
        }
    }
}

/// `echo` without a back end: the serial line through `CONSOLEIO_read`.
fn direct() -> ! {
    if let Err(e) = guest::console_read(&mut []) {
        println!("guest: echo: the serial line's input is not mine ({e:?})");
        guest::poweroff()
    }
    let fail = |what: &str| -> ! {
        println!("guest: echo: FAIL: {what}");
        guest::crash()
    };
    if crate::events::init().is_err() {
        fail("cannot map shared info");
    }
    if crate::events::bind_timer().is_err() {
        fail("cannot bind VIRQ_TIMER");
    }
    let Ok(port) = hypercall_abi::evtchn_guest::bind_virq(VIRQ_CONSOLE, 0) else {
        fail("cannot bind VIRQ_CONSOLE")
    };
    let _ = hypercall_abi::evtchn_guest::unmask(port);
    println!("guest: echo: ready, reading lines from the serial line (quit to end)");
    echo_lines(
        port,
        |b| guest::console_read(b).ok(),
        |seen| {
            crate::events::wait_sleeping(port, seen, || false);
            true
        },
    )
}

/// `echo`.
pub fn run(info: &BootInfo) -> ! {
    let Some(backend) = opt(info, "backend") else {
        direct()
    };
    if let Err(e) = crate::pv::start(Some(backend as u16), 30_000_000_000) {
        println!("guest: echo: FAIL: {e}");
        guest::crash()
    }
    let Some(port) = installed_port() else {
        println!("guest: echo: FAIL: no console front end");
        guest::crash()
    };
    println!("guest: echo: ready, reading lines from the console (quit to end)");
    echo_lines(port, read_installed, |seen| {
        crate::pv::wait_event(port, seen)
    })
}
