//! Serial input for the domain that owns it (target glue; the logic is
//! `crate::console_in`): the PL011's receive interrupt fills the input
//! buffer and raises `VIRQ_CONSOLE` for the owner, which reads with
//! `CONSOLEIO_read`.

use super::{pv, Monitor};
use crate::console;
use crate::console_in::{self, Pushed, INPUT};
use crate::println;
use hypercall_abi::event_channel::VIRQ_CONSOLE;

impl Monitor {
    /// Takes the UART's receive interrupt `intid` (from the device tree).
    pub(super) fn console_rx_start(&mut self, intid: Option<u32>) {
        let Some(intid) = intid else {
            println!(
                "hyp: console input: the UART has no interrupt in the device tree; input ignored"
            );
            return;
        };
        self.uart_intid = Some(intid);
        console::enable_input();
        self.gic.enable(intid);
        self.console_owner_changed();
        // Bytes that came before the interrupt was on (the receive
        // interrupt fires when the FIFO reaches its level, not above it).
        self.console_irq(intid);
    }

    /// The owner of console input may have changed (a driver domain came
    /// or went): record it and say so.
    pub(super) fn console_owner_changed(&mut self) {
        let Some(intid) = self.uart_intid else {
            return;
        };
        let owner = console_in::owner_of(self.driver, self.privileged);
        if console_in::owner() == Some(owner) {
            return;
        }
        console_in::set_owner(owner);
        let name = self
            .dom_index(owner)
            .map(|i| self.domains[i].name.as_str())
            .unwrap_or("?");
        println!("hyp: console input: UART INTID {intid} -> dom{owner} ({name}), VIRQ_CONSOLE and CONSOLEIO_read");
        if INPUT.lock().pending() > 0 {
            self.raise_console_virq(owner);
        }
    }

    fn raise_console_virq(&mut self, owner: u16) {
        if let Some(v) = pv::virq(owner, VIRQ_CONSOLE) {
            self.notify(v);
        }
    }

    /// The UART interrupted: keep its bytes for the owner and tell it.
    /// False if `intid` is not the UART's. (Out of line: the interrupt
    /// path's common cases stay as they were.)
    #[inline(never)]
    pub(super) fn console_irq(&mut self, intid: u32) -> bool {
        if self.uart_intid != Some(intid) {
            return false;
        }
        let (mut kept, mut first_drop) = (0usize, false);
        let dropped = {
            let mut input = INPUT.lock();
            console::drain_input(|b| match input.push(b) {
                Pushed::Kept => kept += 1,
                Pushed::Dropped { first } => first_drop |= first,
            });
            input.dropped()
        };
        let owner = console_in::owner();
        if first_drop {
            println!(
                "hyp: console input: buffer full ({} bytes), dropping input until dom{} reads it ({} dropped so far)",
                console_in::INPUT_BYTES,
                owner.unwrap_or(0),
                dropped
            );
        }
        if let (Some(o), 1..) = (owner, kept) {
            self.raise_console_virq(o);
        }
        true
    }
}
