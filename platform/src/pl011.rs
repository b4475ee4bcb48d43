//! Arm PL011 UART: polled transmit; receive polled or by interrupt.

use tock_registers::{
    interfaces::{ReadWriteable, Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite, WriteOnly},
};

register_bitfields! [u32,
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) [],
    ],
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) [],
    ],
    /// IMSC (mask: 1 = enabled), RIS, MIS and ICR share this layout.
    INT [
        /// Overrun, break, parity and framing errors.
        ERRORS OFFSET(7) NUMBITS(4) [],
        /// Receive timeout (bytes waiting below the FIFO level).
        RT OFFSET(6) NUMBITS(1) [],
        /// Receive (FIFO at its level, or a byte without the FIFO).
        RX OFFSET(4) NUMBITS(1) [],
    ],
];

register_structs! {
    Regs {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x30 => cr: ReadWrite<u32, CR::Register>),
        (0x34 => _ifls),
        (0x38 => imsc: ReadWrite<u32, INT::Register>),
        (0x3c => _ris),
        (0x40 => _mis),
        (0x44 => icr: WriteOnly<u32, INT::Register>),
        (0x48 => @END),
    }
}

/// A PL011 at a fixed MMIO address.
pub struct Pl011 {
    regs: *const Regs,
}

// SAFETY: the registers are MMIO; callers serialise access (the monitor's
// console lock), and the pointer itself is just an address.
unsafe impl Send for Pl011 {}
unsafe impl Sync for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` must be the address of a PL011's registers, mapped as device
    /// memory for as long as this value is used.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            regs: base as *const Regs,
        }
    }

    fn regs(&self) -> &Regs {
        // SAFETY: `new`'s contract: `regs` points at live PL011 registers.
        unsafe { &*self.regs }
    }

    /// Writes one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&self, b: u8) {
        while self.regs().fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs().dr.set(b as u32);
    }

    /// Writes bytes, turning `\n` into `\r\n`.
    pub fn write_bytes(&self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }

    /// Reads one byte if one is waiting.
    pub fn read_byte(&self) -> Option<u8> {
        if self.regs().fr.is_set(FR::RXFE) {
            None
        } else {
            Some(self.regs().dr.get() as u8)
        }
    }

    /// Interrupts on received bytes and on nothing else (receive and
    /// receive timeout, so that a byte below the FIFO's level is not left
    /// waiting), with the receiver on; clears what was pending before.
    pub fn enable_rx_interrupt(&self) {
        self.regs()
            .icr
            .write(INT::RX::SET + INT::RT::SET + INT::ERRORS.val(0xf));
        // Only these: a loader may have left others (transmit) unmasked,
        // which the monitor would never clear.
        self.regs().imsc.write(INT::RX::SET + INT::RT::SET);
        self.regs().cr.modify(CR::UARTEN::SET + CR::RXE::SET);
    }

    /// Clears the receive interrupts (and any error condition); call it
    /// before draining the FIFO, so that a byte arriving after the last
    /// read raises the interrupt again.
    pub fn clear_rx_interrupt(&self) {
        self.regs()
            .icr
            .write(INT::RX::SET + INT::RT::SET + INT::ERRORS.val(0xf));
    }

    /// Waits until everything written has left the UART.
    pub fn flush(&self) {
        while self.regs().fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}
