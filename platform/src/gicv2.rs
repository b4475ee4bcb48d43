//! GICv2 (GIC-400 on the Raspberry Pi 4, QEMU virt with gic-version=2).

use crate::gic::{Irq, IrqChip, DEFAULT_PRIORITY, SPURIOUS_FIRST};
use core::sync::atomic::{AtomicU8, Ordering};
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::{ReadOnly, ReadWrite, WriteOnly},
};

register_structs! {
    Distributor {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => typer: ReadOnly<u32>),
        (0x008 => _r0),
        (0x080 => igroupr: [ReadWrite<u32>; 32]),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _r1),
        (0x400 => ipriorityr: [ReadWrite<u8>; 1020]),
        (0x7fc => _r2),
        (0x800 => itargetsr: [ReadWrite<u8>; 1020]),
        (0xbfc => _r3),
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => @END),
    }
}

register_structs! {
    CpuInterface {
        (0x00 => ctlr: ReadWrite<u32>),
        (0x04 => pmr: ReadWrite<u32>),
        (0x08 => bpr: ReadWrite<u32>),
        (0x0c => iar: ReadOnly<u32>),
        (0x10 => eoir: WriteOnly<u32>),
        (0x14 => @END),
    }
}

/// A GICv2 distributor and CPU interface.
pub struct GicV2 {
    gicd: *const Distributor,
    gicc: *const CpuInterface,
    /// Each CPU's interface bit (by MPIDR Aff0), learned in `init_cpu`.
    iface: [AtomicU8; MAX_CPUS],
}

/// CPUs whose interface bits are remembered for SGIs.
const MAX_CPUS: usize = 8;

// SAFETY: MMIO registers; the GIC's own registers are safe to use from any CPU
// (banked per CPU where they need to be).
unsafe impl Send for GicV2 {}
unsafe impl Sync for GicV2 {}

impl GicV2 {
    /// # Safety
    /// The addresses must be a GICv2 distributor and CPU interface, mapped as
    /// device memory for as long as this value is used.
    pub const unsafe fn new(gicd: usize, gicc: usize) -> Self {
        Self {
            gicd: gicd as *const Distributor,
            gicc: gicc as *const CpuInterface,
            iface: [const { AtomicU8::new(0) }; MAX_CPUS],
        }
    }

    fn d(&self) -> &Distributor {
        // SAFETY: `new`'s contract.
        unsafe { &*self.gicd }
    }

    fn c(&self) -> &CpuInterface {
        // SAFETY: `new`'s contract.
        unsafe { &*self.gicc }
    }

    fn lines(&self) -> usize {
        ((self.d().typer.get() as usize & 0x1f) + 1) * 32
    }

    /// Interrupt group for everything: without security extensions (QEMU's
    /// GICs) the monitor's view is the only one and group 0 is acknowledged
    /// through GICC_IAR; with them, the monitor is non-secure and only
    /// group 1 reaches it (firmware sets groups; the writes are ignored).
    fn group_word(&self) -> u32 {
        const SECURITY_EXTN: u32 = 1 << 10;
        if self.d().typer.get() & SECURITY_EXTN != 0 {
            u32::MAX
        } else {
            0
        }
    }
}

impl IrqChip for GicV2 {
    fn init_distributor(&self) {
        let d = self.d();
        d.ctlr.set(0);
        let words = self.lines() / 32;
        for i in 1..words.min(32) {
            d.icenabler[i].set(u32::MAX);
            d.igroupr[i].set(self.group_word());
        }
        for i in 32..self.lines().min(1020) {
            d.ipriorityr[i].set(DEFAULT_PRIORITY);
            d.itargetsr[i].set(1);
        }
        // Enable group 0 and group 1 forwarding.
        d.ctlr.set(0b11);
    }

    fn init_cpu(&self) {
        let d = self.d();
        // ITARGETSR0..7 are banked and read as this CPU's own interface bit.
        if let Some(slot) = self.iface.get(aff0()) {
            slot.store(d.itargetsr[0].get(), Ordering::Relaxed);
        }
        d.icenabler[0].set(u32::MAX);
        d.igroupr[0].set(self.group_word());
        for i in 0..32 {
            d.ipriorityr[i].set(DEFAULT_PRIORITY);
        }
        let c = self.c();
        c.pmr.set(0xff);
        c.bpr.set(0);
        c.ctlr.set(0b11);
    }

    fn enable(&self, intid: u32) {
        let i = intid as usize;
        if i < 1020 {
            self.d().ipriorityr[i].set(DEFAULT_PRIORITY);
            self.d().isenabler[i / 32].set(1 << (i % 32));
        }
    }

    fn disable(&self, intid: u32) {
        let i = intid as usize;
        if i < 1020 {
            self.d().icenabler[i / 32].set(1 << (i % 32));
        }
    }

    fn ack(&self) -> Option<Irq> {
        let raw = self.c().iar.get();
        let intid = raw & 0x3ff;
        if intid >= SPURIOUS_FIRST {
            None
        } else {
            Some(Irq { intid, raw })
        }
    }

    fn eoi(&self, irq: Irq) {
        self.c().eoir.set(irq.raw);
    }

    fn send_sgi(&self, mpidr: u64, intid: u32) {
        let Some(slot) = self.iface.get((mpidr & 0xff) as usize) else {
            return;
        };
        let mask = slot.load(Ordering::Relaxed) as u32;
        // TargetListFilter 0 (use the list), NSATT 0 (group 0, or the only
        // group the non-secure monitor has).
        self.d().sgir.set((mask << 16) | (intid & 0xf));
    }

    fn name(&self) -> &'static str {
        "GICv2"
    }
}

fn aff0() -> usize {
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: reading MPIDR_EL1 has no side effects.
        unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) v) };
        (v & 0xff) as usize
    }
    #[cfg(not(target_arch = "aarch64"))]
    0
}
