//! GICv3 (QEMU virt with gic-version=3): distributor and redistributors in
//! memory, the CPU interface through ICC_* system registers.

use crate::gic::{Irq, IrqChip, DEFAULT_PRIORITY, SPURIOUS_FIRST};
use core::sync::atomic::{AtomicUsize, Ordering};
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::{ReadOnly, ReadWrite},
};

register_structs! {
    Distributor {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => typer: ReadOnly<u32>),
        (0x0008 => _r0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => _r1),
        (0x0400 => ipriorityr: [ReadWrite<u8>; 1020]),
        (0x07fc => _r2),
        (0x6100 => irouter: [ReadWrite<u64>; 988]),
        (0x7fe0 => @END),
    }
}

register_structs! {
    /// Control frame of one redistributor.
    RdControl {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => iidr: ReadOnly<u32>),
        (0x0008 => typer: ReadOnly<u64>),
        (0x0010 => _r0),
        (0x0014 => waker: ReadWrite<u32>),
        (0x0018 => @END),
    }
}

register_structs! {
    /// SGI/PPI frame of one redistributor (64 KiB after its control frame).
    RdSgi {
        (0x0000 => _r0),
        (0x0080 => igroupr0: ReadWrite<u32>),
        (0x0084 => _r1),
        (0x0100 => isenabler0: ReadWrite<u32>),
        (0x0104 => _r2),
        (0x0180 => icenabler0: ReadWrite<u32>),
        (0x0184 => _r3),
        (0x0400 => ipriorityr: [ReadWrite<u8>; 32]),
        (0x0420 => @END),
    }
}

const CTLR_RWP: u32 = 1 << 31;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_ENABLE_G1: u32 = 1 << 1;
const CTLR_ENABLE_G0: u32 = 1 << 0;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const TYPER_LAST: u64 = 1 << 4;
const RD_STRIDE: usize = 0x2_0000;
const MAX_CPUS: usize = 8;

/// A GICv3 distributor and its redistributor region.
pub struct GicV3 {
    gicd: usize,
    gicr: usize,
    gicr_size: usize,
    /// Redistributor of each CPU (index = MPIDR Aff0), found by `init_cpu`.
    rd_of_cpu: [AtomicUsize; MAX_CPUS],
}

impl GicV3 {
    /// # Safety
    /// `gicd` and `gicr..gicr+gicr_size` must be a GICv3's distributor and
    /// redistributor region, mapped as device memory while this value is used.
    pub const unsafe fn new(gicd: usize, gicr: usize, gicr_size: usize) -> Self {
        Self {
            gicd,
            gicr,
            gicr_size,
            rd_of_cpu: [const { AtomicUsize::new(0) }; MAX_CPUS],
        }
    }

    fn d(&self) -> &Distributor {
        // SAFETY: `new`'s contract.
        unsafe { &*(self.gicd as *const Distributor) }
    }

    fn wait_rwp(&self) {
        while self.d().ctlr.get() & CTLR_RWP != 0 {
            core::hint::spin_loop();
        }
    }

    fn my_rd(&self) -> Option<usize> {
        let a = self.rd_of_cpu.get(cpu_index())?.load(Ordering::Relaxed);
        (a != 0).then_some(a)
    }

    fn sgi(&self, rd: usize) -> &RdSgi {
        // SAFETY: `rd` came from the walk in `init_cpu`, inside the region.
        unsafe { &*((rd + 0x1_0000) as *const RdSgi) }
    }

    fn lines(&self) -> usize {
        (((self.d().typer.get() as usize & 0x1f) + 1) * 32).min(1020)
    }
}

fn cpu_index() -> usize {
    (mpidr() & 0xff) as usize
}

#[cfg(target_arch = "aarch64")]
fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) v) };
    v
}

#[cfg(not(target_arch = "aarch64"))]
fn mpidr() -> u64 {
    0
}

/// The ICC_* system registers used at EL2.
#[cfg(target_arch = "aarch64")]
mod icc {
    // SAFETY (all below): these are the GICv3 CPU-interface registers; the
    // monitor enables the system-register interface (ICC_SRE_EL2) first.
    pub fn enable_sre() {
        unsafe {
            let mut v: u64;
            core::arch::asm!("mrs {}, S3_4_C12_C9_5", out(reg) v); // ICC_SRE_EL2
            v |= 0b1001; // SRE | Enable (lower ELs may use SRE)
            core::arch::asm!("msr S3_4_C12_C9_5, {}", "isb", in(reg) v);
        }
    }
    pub fn init() {
        unsafe {
            core::arch::asm!("msr S3_0_C4_C6_0, {}", in(reg) 0xffu64); // ICC_PMR_EL1
            core::arch::asm!("msr S3_0_C12_C12_3, {}", in(reg) 0u64); // ICC_BPR1_EL1
            core::arch::asm!("msr S3_0_C12_C12_4, {}", in(reg) 0u64); // ICC_CTLR_EL1: EOImode 0
            core::arch::asm!("msr S3_0_C12_C12_7, {}", "isb", in(reg) 1u64); // ICC_IGRPEN1_EL1
        }
    }
    pub fn iar1() -> u32 {
        let v: u64;
        unsafe { core::arch::asm!("mrs {}, S3_0_C12_C12_0", out(reg) v) }; // ICC_IAR1_EL1
        v as u32
    }
    pub fn eoir1(intid: u32) {
        unsafe { core::arch::asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) intid as u64) };
        // ICC_EOIR1_EL1
    }
    pub fn sgi1r(v: u64) {
        // ICC_SGI1R_EL1; the barrier orders earlier memory writes before it.
        unsafe { core::arch::asm!("dsb ishst", "msr S3_0_C12_C11_5, {}", "isb", in(reg) v) };
    }
}

#[cfg(not(target_arch = "aarch64"))]
mod icc {
    pub fn enable_sre() {}
    pub fn init() {}
    pub fn iar1() -> u32 {
        1023
    }
    pub fn eoir1(_: u32) {}
    pub fn sgi1r(_: u64) {}
}

impl IrqChip for GicV3 {
    fn init_distributor(&self) {
        let d = self.d();
        d.ctlr.set(0);
        self.wait_rwp();
        d.ctlr.set(CTLR_ARE);
        self.wait_rwp();
        for i in 1..self.lines() / 32 {
            d.icenabler[i].set(u32::MAX);
            d.igroupr[i].set(u32::MAX);
        }
        for i in 32..self.lines() {
            d.ipriorityr[i].set(DEFAULT_PRIORITY);
            // Route shared interrupts to the boot CPU (affinity 0.0.0.0).
            d.irouter[i - 32].set(0);
        }
        d.ctlr.set(CTLR_ARE | CTLR_ENABLE_G1 | CTLR_ENABLE_G0);
        self.wait_rwp();
    }

    fn init_cpu(&self) {
        let me = mpidr();
        let aff = ((me >> 32) & 0xff) << 24 | (me & 0xff_ffff);
        let mut rd = self.gicr;
        let mut found = 0;
        while rd + RD_STRIDE <= self.gicr + self.gicr_size {
            // SAFETY: `rd` is inside the redistributor region given to `new`.
            let c = unsafe { &*(rd as *const RdControl) };
            let typer = c.typer.get();
            if (typer >> 32) as u64 == aff {
                found = rd;
                break;
            }
            if typer & TYPER_LAST != 0 {
                break;
            }
            rd += RD_STRIDE;
        }
        if found == 0 {
            log::error!("GICv3: no redistributor for MPIDR {me:#x}");
            return;
        }
        if let Some(slot) = self.rd_of_cpu.get(cpu_index()) {
            slot.store(found, Ordering::Relaxed);
        }
        // SAFETY: found above inside the region.
        let c = unsafe { &*(found as *const RdControl) };
        c.waker.set(c.waker.get() & !WAKER_PROCESSOR_SLEEP);
        while c.waker.get() & WAKER_CHILDREN_ASLEEP != 0 {
            core::hint::spin_loop();
        }
        let s = self.sgi(found);
        s.icenabler0.set(u32::MAX);
        s.igroupr0.set(u32::MAX);
        for p in s.ipriorityr.iter() {
            p.set(DEFAULT_PRIORITY);
        }
        icc::enable_sre();
        icc::init();
    }

    fn enable(&self, intid: u32) {
        let i = intid as usize;
        if i < 32 {
            if let Some(rd) = self.my_rd() {
                let s = self.sgi(rd);
                s.ipriorityr[i].set(DEFAULT_PRIORITY);
                s.isenabler0.set(1 << i);
            }
        } else if i < self.lines() {
            self.d().ipriorityr[i].set(DEFAULT_PRIORITY);
            self.d().isenabler[i / 32].set(1 << (i % 32));
        }
    }

    fn disable(&self, intid: u32) {
        let i = intid as usize;
        if i < 32 {
            if let Some(rd) = self.my_rd() {
                self.sgi(rd).icenabler0.set(1 << i);
            }
        } else if i < self.lines() {
            self.d().icenabler[i / 32].set(1 << (i % 32));
        }
    }

    fn ack(&self) -> Option<Irq> {
        let raw = icc::iar1();
        let intid = raw & 0xff_ffff;
        if (SPURIOUS_FIRST..1024).contains(&intid) {
            None
        } else {
            Some(Irq { intid, raw })
        }
    }

    fn eoi(&self, irq: Irq) {
        icc::eoir1(irq.raw);
    }

    fn send_sgi(&self, mpidr: u64, intid: u32) {
        icc::sgi1r(sgi1r_value(mpidr, intid));
    }

    fn name(&self) -> &'static str {
        "GICv3"
    }
}

/// ICC_SGI1R_EL1 for SGI `intid` to the one CPU `mpidr` (Aff0 < 16).
fn sgi1r_value(mpidr: u64, intid: u32) -> u64 {
    let aff0 = mpidr & 0xf;
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    (aff3 << 48) | (aff2 << 32) | ((intid as u64 & 0xf) << 24) | (aff1 << 16) | (1 << aff0)
}

#[cfg(test)]
mod sgi_tests {
    #[test]
    fn sgi1r_targets_one_cpu() {
        assert_eq!(super::sgi1r_value(0x8000_0002, 1), (1 << 24) | (1 << 2));
        assert_eq!(
            super::sgi1r_value(0x0001_0103, 15),
            (1 << 32) | (15 << 24) | (1 << 16) | (1 << 3)
        );
    }
}
