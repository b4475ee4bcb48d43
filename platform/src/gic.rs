//! The interrupt controller as the monitor sees it: one trait over GICv2 and
//! GICv3, enough to take private (PPI) and shared interrupts at EL2.

/// INTIDs 1020..=1023 are special ("spurious" and friends).
pub const SPURIOUS_FIRST: u32 = 1020;

/// What the monitor needs from an interrupt controller.
pub trait IrqChip: Send + Sync {
    /// Distributor set-up, once, on the boot CPU.
    fn init_distributor(&self);
    /// This CPU's interface (and redistributor on GICv3).
    fn init_cpu(&self);
    /// Enables an interrupt and gives it the default priority.
    fn enable(&self, intid: u32);
    /// Disables an interrupt.
    fn disable(&self, intid: u32);
    /// Acknowledges the highest-priority pending interrupt, if any.
    fn ack(&self) -> Option<Irq>;
    /// Ends handling of an interrupt returned by `ack`.
    fn eoi(&self, irq: Irq);
    /// Sends software-generated interrupt `intid` (0..16) to the CPU whose
    /// MPIDR is `mpidr`; that CPU must have run `init_cpu`.
    fn send_sgi(&self, mpidr: u64, intid: u32);
    /// A name for reports ("GICv2", "GICv3").
    fn name(&self) -> &'static str;
}

/// Default priority for everything the monitor enables.
pub const DEFAULT_PRIORITY: u8 = 0xa0;

/// An acknowledged interrupt: its INTID and what must be written back at EOI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    /// The interrupt's INTID.
    pub intid: u32,
    /// The raw acknowledge value (GICv2 includes the source CPU for SGIs).
    pub raw: u32,
}
