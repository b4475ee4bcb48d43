//! `echo backend=N`: console input through the paravirtual console. The
//! guest connects to driver domain N (store and console, as the block
//! modes do), says `guest: echo: ready`, then reads its console's `in`
//! ring (woken by events on the console port) and prints every line it
//! gets back as `echo: LINE`. The line `quit` ends it (`guest: echo:
//! bye`, then it powers itself off); so does the back end going away.

use crate::console::println;
use crate::dt::BootInfo;
use crate::pv::console_front::{installed_port, read_installed};
use crate::ring_test::opt;
use alloc::string::String;
use hypercall_abi::guest;
use pvdev::consback::LineReader;

/// `echo`.
pub fn run(info: &BootInfo) -> ! {
    let Some(backend) = opt(info, "backend") else {
        println!("guest: echo: FAIL: no backend=N on the command line");
        guest::crash()
    };
    if let Err(e) = crate::pv::start(backend as u16, 30_000_000_000) {
        println!("guest: echo: FAIL: {e}");
        guest::crash()
    }
    let Some(port) = installed_port() else {
        println!("guest: echo: FAIL: no console front end");
        guest::crash()
    };
    println!("guest: echo: ready, reading lines from the console (quit to end)");
    let mut lines = LineReader::new();
    let mut buf = [0u8; 256];
    let mut quit = false;
    let mut count = 0u32;
    loop {
        let seen = crate::events::count(port);
        let Some(n) = read_installed(&mut buf) else {
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
        if n == 0 && !crate::pv::wait_event(port, seen) {
            println!("guest: echo: the console's back end is gone after {count} line(s)");
            guest::poweroff()
        }
    }
}
