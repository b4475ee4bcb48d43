//! The running monitor: boot, the domain table, trap handling, the
//! round-robin scheduler and the clean end. Target only.

use crate::arch::{self, el1, firmware, mmu, stage2, timer};
use crate::builder::{self, DomainMemory, Phys};
use crate::config::{self, Config, KernelFormat};
use crate::console::{self, LineBuffer};
use crate::esr::{self, ec, Esr, ExceptionKind};
use crate::frames::Frames;
use crate::hypercall::{self, Action, Guest};
use crate::memmap::{self, Range};
use crate::pagetable::{MemType, TableMemory, PAGE_SIZE};
use crate::vcpu::{Vcpu, VcpuRegs};
use crate::{mrs, msr, println};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use hypercall_abi::errno::Errno;
use hypercall_abi::sched::ShutdownReason;
use platform::devtree::{self, MachineInfo, PsciMethod};
use platform::gic::IrqChip;

#[path = "monitor_pv.rs"]
mod pv;

/// Heap for the monitor's own allocations.
const HEAP_SIZE: u64 = 8 << 20;

#[global_allocator]
static HEAP: buddy_system_allocator::LockedHeap<32> = buddy_system_allocator::LockedHeap::empty();

static MONITOR: spin::Mutex<Option<Monitor>> = spin::Mutex::new(None);
static SEMIHOSTING: AtomicBool = AtomicBool::new(false);
static LOGGER: console::Logger = console::Logger;

#[cfg(has_guest)]
static GUEST_ELF: &[u8] = include_bytes!(env!("PVH_GUEST_ELF_PATH"));
#[cfg(has_guest)]
static GUEST_IMAGE: &[u8] = include_bytes!(env!("PVH_GUEST_IMAGE_PATH"));
#[cfg(not(has_guest))]
static GUEST_ELF: &[u8] = &[];
#[cfg(not(has_guest))]
static GUEST_IMAGE: &[u8] = &[];

/// How the machine is turned off.
#[derive(Clone, Copy)]
enum PowerOff {
    Psci(PsciMethod),
    BcmPm(u64),
    None,
}

/// Why a domain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Shutdown(ShutdownReason),
    Fault,
}

struct Domain {
    id: u16,
    name: heapless::String<{ config::MAX_NAME }>,
    mem: Option<DomainMemory>,
    vcpu: Box<Vcpu>,
    ended: Option<End>,
    line: LineBuffer,
}

struct Monitor {
    domains: Vec<Domain>,
    current: usize,
    frames: Frames,
    gic: &'static dyn IrqChip,
    timer_intid: u32,
    tick: u64,
    ticks: u64,
    power: PowerOff,
    floor: bool,
}

/// Machine memory, identity-mapped at EL2.
struct RealPhys;

impl TableMemory for RealPhys {
    fn alloc_table(&mut self) -> Option<u64> {
        None
    }
    fn read(&self, table: u64, idx: usize) -> u64 {
        // SAFETY: `table` is a stage-2 table frame owned by the monitor,
        // identity-mapped; idx < 512.
        unsafe { (table as *const u64).add(idx).read_volatile() }
    }
    fn write(&mut self, table: u64, idx: usize, val: u64) {
        // SAFETY: as in `read`.
        unsafe { (table as *mut u64).add(idx).write_volatile(val) }
    }
}

impl Phys for RealPhys {
    fn write_bytes(&mut self, pa: u64, data: &[u8]) {
        // SAFETY: `pa` is a frame the monitor allocated, identity-mapped RAM.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), pa as *mut u8, data.len()) };
    }
    fn zero(&mut self, pa: u64, len: u64) {
        // SAFETY: as in `write_bytes`.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, len as usize) };
    }
}

/// The calling domain, as hypercall handlers see it.
struct LiveGuest<'a> {
    dom: &'a mut Domain,
}

impl LiveGuest<'_> {
    /// Machine address of guest virtual address `gva`, for an access that
    /// stays within its page.
    fn translate(&self, gva: u64, write: bool) -> Result<u64, Errno> {
        let mem = self.dom.mem.as_ref().ok_or(Errno::EFAULT)?;
        // The running vCPU's EL1 registers are live: its MMU state decides.
        let ipa = if mrs!("sctlr_el1") & 1 != 0 && mrs!("hcr_el2") & (1 << 12) == 0 {
            el1::gva_to_ipa(gva, write).ok_or(Errno::EFAULT)?
        } else {
            gva
        };
        let (pa, attrs, _) = mem.p2m.translate(&RealPhys, ipa).ok_or(Errno::EFAULT)?;
        if attrs.mem != MemType::Normal || (write && !attrs.write) {
            return Err(Errno::EFAULT);
        }
        Ok(pa)
    }

    /// Calls `f(pa, offset, len)` for each page-sized piece of
    /// `[gva, gva+len)`, after checking that every piece is accessible.
    fn pieces(
        &self,
        gva: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(u64, usize, usize),
    ) -> Result<(), Errno> {
        gva.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mut plan: heapless::Vec<(u64, usize, usize), 4> = heapless::Vec::new();
        let mut off = 0;
        while off < len {
            let a = gva + off as u64;
            let n = ((PAGE_SIZE - a % PAGE_SIZE) as usize).min(len - off);
            plan.push((self.translate(a, write)?, off, n))
                .map_err(|_| Errno::E2BIG)?;
            off += n;
        }
        for (pa, off, n) in plan {
            f(pa, off, n);
        }
        Ok(())
    }
}

impl Guest for LiveGuest<'_> {
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let p = buf.as_mut_ptr();
        self.pieces(gva, buf.len(), false, |pa, off, n| {
            // SAFETY: `pa..pa+n` is the guest's own RAM (checked through its
            // P2M), identity-mapped at EL2; `off+n <= buf.len()`.
            unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, p.add(off), n) }
        })
    }
    fn write(&mut self, gva: u64, data: &[u8]) -> Result<(), Errno> {
        self.pieces(gva, data.len(), true, |pa, off, n| {
            // SAFETY: as in `read`, for writable guest RAM.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr().add(off), pa as *mut u8, n) }
        })
    }
    fn console(&mut self, bytes: &[u8]) {
        let name = &self.dom.name;
        self.dom.line.push(bytes, |l| console::domain_line(name, l));
    }
    fn handle(&self) -> [u8; 16] {
        let mut h = [0u8; 16];
        h[14..16].copy_from_slice(&self.dom.id.to_be_bytes());
        h
    }
}

/// Room for a device tree that must be moved (one at physical address 0,
/// where QEMU's raspi4b puts it, cannot be referred to by a Rust slice).
const DTB_COPY_SIZE: usize = 256 << 10;
#[repr(C, align(8))]
struct DtbCopy(core::cell::UnsafeCell<[u8; DTB_COPY_SIZE]>);
// SAFETY: written once by the boot CPU before anything else runs.
unsafe impl Sync for DtbCopy {}
static DTB_COPY: DtbCopy = DtbCopy(core::cell::UnsafeCell::new([0; DTB_COPY_SIZE]));

/// Finds the device tree: x0 if it points at one, else where this board's
/// loader leaves it for a bare-metal image (QEMU virt: the start of RAM;
/// QEMU raspi4b with an ELF: address 0). Returns the tree (moved into
/// `DTB_COPY` if it sits at address 0) and where the loader put it.
fn find_dtb(x0: usize) -> Option<(&'static mut [u8], Range)> {
    let mut seen_zero = false;
    for a in [x0 as u64, 0x4000_0000, 0] {
        if a == 0 {
            if seen_zero {
                continue;
            }
            seen_zero = true;
        }
        let mut hdr = [0u8; 40];
        arch::copy_from_phys(a, &mut hdr);
        let Some(size) = devtree::total_size(&hdr) else {
            continue;
        };
        let at = Range::sized(a, size as u64);
        if a != 0 {
            // SAFETY: the header says a tree of `size` bytes starts here; it
            // is the monitor's from now on (kept out of free memory).
            return Some((
                unsafe { core::slice::from_raw_parts_mut(a as *mut u8, size) },
                at,
            ));
        }
        if size > DTB_COPY_SIZE {
            return None;
        }
        // SAFETY: boot CPU only, before anything else uses the buffer.
        let buf = unsafe { &mut *DTB_COPY.0.get() };
        arch::copy_from_phys(0, &mut buf[..size]);
        return Some((&mut buf[..size], at));
    }
    None
}

fn hang() -> ! {
    loop {
        arch::wfi();
    }
}

/// Entered from boot.S on the boot CPU at EL2, MMU off.
#[no_mangle]
extern "C" fn rust_boot_main(x0: usize, entry_el: u64) -> ! {
    let Some((dtb, dtb_at)) = find_dtb(x0) else {
        hang()
    };
    // Loaders that edit the tree leave FDT_NOP tokens; remove them first.
    let nops = devtree::strip_nops(dtb);
    let dtb: &'static [u8] = dtb;
    let info = match nops.and_then(|_| devtree::parse(dtb)) {
        Ok(i) => i,
        Err(_) => hang(),
    };
    if let Some(u) = &info.uart {
        console::init(u.base as usize);
    }
    println!("");
    println!(
        "pvh: a paravirtual microhypervisor for AArch64, v{}",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "hyp: entered at EL{}, running at EL{}, device tree at {:#x} ({} bytes)",
        entry_el,
        arch::current_el(),
        dtb_at.start,
        dtb.len()
    );
    match start(dtb_at, &info) {
        Ok(()) => {}
        Err(e) => {
            println!("hyp: cannot start: {e}");
            power_off(power_method(&info));
        }
    }
    // SAFETY: `start` made TPIDR_EL2 point at the first vCPU's registers.
    unsafe { arch::guest_restore() }
}

fn power_method(info: &MachineInfo) -> PowerOff {
    match (info.psci, info.power) {
        (Some(m), _) => PowerOff::Psci(m),
        (None, Some(r)) => PowerOff::BcmPm(r.base),
        _ => PowerOff::None,
    }
}

fn start(dtb_at: Range, info: &MachineInfo) -> Result<(), &'static str> {
    let ram: heapless::Vec<Range, 8> = info
        .memory
        .iter()
        .filter(|m| m.size > 0)
        .map(|m| Range::sized(m.base, m.size))
        .collect();
    if ram.is_empty() {
        return Err("the device tree declares no memory");
    }
    let gic = info.gic.as_ref().ok_or("the device tree has no GIC")?;
    let timer_info = info
        .timer
        .as_ref()
        .ok_or("the device tree has no architected timer")?;
    let uart = info.uart.as_ref().ok_or("no PL011 UART")?;

    // The monitor's own map.
    let image = arch::image_range();
    let mut pool = mmu::PoolMemory::take();
    let pt = mmu::new_table(&mut pool).map_err(|_| "no table for the EL2 map")?;
    mmu::map_ram(&pt, &mut pool, &ram, image).map_err(|_| "cannot map RAM at EL2")?;
    let mut devices: heapless::Vec<(u64, u64), 8> = heapless::Vec::new();
    let _ = devices.push((uart.base, uart.size.max(0x1000)));
    let _ = devices.push((gic.gicd.base, gic.gicd.size));
    for r in [gic.gicc, gic.gicr, gic.gich].into_iter().flatten() {
        let _ = devices.push((r.base, r.size));
    }
    if let Some(p) = info.power {
        let _ = devices.push((p.base, p.size));
    }
    for (b, s) in &devices {
        mmu::map_device(&pt, &mut pool, *b, *s).map_err(|_| "cannot map a device at EL2")?;
    }
    mmu::enable(pt.root);

    // Free memory: RAM minus the image, the tree and firmware reservations.
    let mut used: heapless::Vec<Range, 24> = heapless::Vec::new();
    let _ = used.push(Range {
        start: image.0,
        end: image.2,
    });
    let _ = used.push(dtb_at);
    for r in &info.reserved {
        used.push(Range::sized(r.base, r.size))
            .map_err(|_| "too many reserved ranges")?;
    }
    let free = memmap::free_ranges(&ram, &used, PAGE_SIZE).map_err(|_| "too many free ranges")?;
    let heap_at = free
        .iter()
        .find(|r| r.size() >= HEAP_SIZE)
        .ok_or("no room for the heap")?
        .start;
    // SAFETY: `heap_at..+HEAP_SIZE` is free RAM, mapped read-write, used for
    // nothing else from now on.
    unsafe { HEAP.lock().init(heap_at as usize, HEAP_SIZE as usize) };
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    let mut frames = Frames::new();
    for r in &free {
        if r.start == heap_at {
            frames.add(Range {
                start: r.start + HEAP_SIZE,
                end: r.end,
            });
        } else {
            frames.add(*r);
        }
    }

    // Report what was found.
    println!("hyp: board: {} ({})", info.model, info.compatible);
    for r in &ram {
        println!(
            "hyp: memory: {:#x}..{:#x} ({} MiB)",
            r.start,
            r.end,
            r.size() >> 20
        );
    }
    println!(
        "hyp: monitor image: {:#x}..{:#x}; heap: {} MiB at {:#x}",
        image.0,
        image.2,
        HEAP_SIZE >> 20,
        heap_at
    );
    println!("hyp: console: PL011 at {:#x}", uart.base);
    let chip: &'static dyn IrqChip = match gic.version {
        platform::devtree::GicVersion::V2 => {
            let c = gic.gicc.ok_or("GICv2 without a CPU interface")?;
            println!(
                "hyp: interrupt controller: GICv2, distributor {:#x}, CPU interface {:#x}",
                gic.gicd.base, c.base
            );
            // SAFETY: addresses from the tree, mapped as device memory above.
            Box::leak(Box::new(unsafe {
                platform::gicv2::GicV2::new(gic.gicd.base as usize, c.base as usize)
            }))
        }
        platform::devtree::GicVersion::V3 => {
            let r = gic.gicr.ok_or("GICv3 without redistributors")?;
            println!(
                "hyp: interrupt controller: GICv3, distributor {:#x}, redistributors {:#x}",
                gic.gicd.base, r.base
            );
            // SAFETY: as above.
            Box::leak(Box::new(unsafe {
                platform::gicv3::GicV3::new(
                    gic.gicd.base as usize,
                    r.base as usize,
                    r.size as usize,
                )
            }))
        }
    };
    let freq = timer::frequency();
    println!(
        "hyp: timer: {} Hz, hypervisor timer INTID {}, virtual timer INTID {}",
        freq, timer_info.hyp_intid, timer_info.virt_intid
    );
    let power = power_method(info);
    match power {
        PowerOff::Psci(m) => println!(
            "hyp: power-off: PSCI SYSTEM_OFF via {}",
            if m == PsciMethod::Smc { "smc" } else { "hvc" }
        ),
        PowerOff::BcmPm(b) => println!("hyp: power-off: Broadcom PM block at {b:#x}"),
        PowerOff::None => println!("hyp: power-off: none found (the machine will halt)"),
    }
    println!("hyp: cpus: {} (secondary cpus parked)", info.cpus.len());
    println!(
        "hyp: {} MiB free for domains",
        frames.free_frames() * PAGE_SIZE >> 20
    );

    chip.init_distributor();
    chip.init_cpu();
    chip.enable(timer_info.hyp_intid);
    el1::init_cpu();
    stage2::init_cpu();

    let cfg = match config::parse(&info.bootargs) {
        Ok(c) => c,
        Err(e) => {
            println!("hyp: bad command line \"{}\": {}", info.bootargs, e);
            return Err("bad command line");
        }
    };
    SEMIHOSTING.store(cfg.semihosting, Ordering::Relaxed);
    let tick = freq * cfg.tick_ms as u64 / 1000;
    let domains = build_domains(&cfg, &mut frames);
    if domains.is_empty() {
        return Err("no domain could be built");
    }
    let mut m = Monitor {
        domains,
        current: 0,
        frames,
        gic: chip,
        timer_intid: timer_info.hyp_intid,
        tick,
        ticks: 0,
        power,
        floor: cfg.bench_floor,
    };
    timer::arm(tick);
    println!(
        "hyp: starting {} domain(s); tick every {} ms",
        m.domains.len(),
        cfg.tick_ms
    );
    m.load(0);
    if m.floor {
        println!("hyp: bench-floor: bare-eret vectors until the first tick");
        set_vectors(true);
    }
    *MONITOR.lock() = Some(m);
    Ok(())
}

fn build_domains(cfg: &Config, frames: &mut Frames) -> Vec<Domain> {
    let mut out = Vec::new();
    for (i, d) in cfg.domains.iter().enumerate() {
        let id = i as u16 + 1;
        let image = match d.kernel {
            KernelFormat::Elf => GUEST_ELF,
            KernelFormat::Image => GUEST_IMAGE,
        };
        match builder::build(&mut RealPhys, frames, d, image) {
            Ok(mem) => {
                // The chunks need not be contiguous: make each one's new
                // contents visible to instruction fetch.
                for &(pa, n) in &mem.chunks {
                    arch::cache::sync_icache(pa, n * PAGE_SIZE);
                }
                println!(
                    "hyp: dom{} ({}): {} MiB, {:?} kernel, entry {:#x}, device tree at {:#x}, command line \"{}\"",
                    id, d.name, d.mem_mib, d.kernel, mem.entry, mem.dtb, d.args
                );
                let mut vcpu = Box::new(Vcpu::new(0, mem.entry, mem.dtb));
                vcpu.regs.host_sp = arch::stack_top(0);
                out.push(Domain {
                    id,
                    name: d.name.clone(),
                    mem: Some(mem),
                    vcpu,
                    ended: None,
                    line: LineBuffer::default(),
                });
            }
            Err(e) => println!("hyp: dom{} ({}): cannot build: {}", id, d.name, e),
        }
    }
    out
}

impl Monitor {
    /// Makes domain `i` the one this CPU runs.
    fn load(&mut self, i: usize) {
        let d = &mut self.domains[i];
        let mem = d.mem.as_ref().expect("runnable domains have memory");
        el1::restore(&d.vcpu.el1);
        stage2::activate(mem.p2m.root, d.id);
        el1::set_vmpidr(d.vcpu.id);
        let regs: *mut VcpuRegs = &mut d.vcpu.regs;
        msr!("tpidr_el2", regs as u64);
        self.current = i;
    }

    /// Runs the next runnable domain after the current one (round robin);
    /// powers off when none is left.
    fn schedule(&mut self) {
        let n = self.domains.len();
        let cur = self.current;
        let next = (1..=n)
            .map(|k| (cur + k) % n)
            .find(|&i| self.domains[i].ended.is_none());
        match next {
            None => self.finish(),
            Some(i) if i == cur => {}
            Some(i) => {
                if self.domains[cur].ended.is_none() {
                    el1::save(&mut self.domains[cur].vcpu.el1);
                }
                self.load(i);
            }
        }
    }

    fn regs(&mut self) -> &mut VcpuRegs {
        &mut self.domains[self.current].vcpu.regs
    }

    fn apply(&mut self, a: Action) {
        match a {
            Action::Return(v) => self.regs().x[0] = v as u64,
            Action::Yield => {
                self.regs().x[0] = 0;
                self.schedule();
            }
            Action::Shutdown(r) => {
                self.end_current(End::Shutdown(r));
                self.schedule();
            }
        }
    }

    fn guest_sync(&mut self) {
        let esr = Esr(mrs!("esr_el2"));
        match esr.ec() {
            ec::HVC64 => match esr.imm16() {
                hypercall_abi::nr::HVC_IMM => {
                    let r = &self.domains[self.current].vcpu.regs;
                    let (nr, args) = (r.x[16], [r.x[0], r.x[1], r.x[2], r.x[3], r.x[4]]);
                    let a = match pv::hypercall(self, nr, args) {
                        Some(a) => a,
                        None => {
                            let dom = &mut self.domains[self.current];
                            hypercall::dispatch(&mut LiveGuest { dom }, nr, args)
                        }
                    };
                    self.apply(a);
                }
                0 => {
                    let a = hypercall::psci_call(self.regs().x[0]);
                    self.apply(a);
                }
                _ => self.regs().x[0] = Errno::ENOSYS.to_raw() as u64,
            },
            ec::SMC64 => {
                self.regs().elr += 4;
                let a = hypercall::psci_call(self.regs().x[0]);
                self.apply(a);
            }
            ec::WFX => {
                self.regs().elr += 4;
                self.apply(Action::Yield);
            }
            _ => {
                self.report(ExceptionKind::Sync, esr);
                self.end_current(End::Fault);
                self.schedule();
            }
        }
    }

    fn irq(&mut self) {
        if self.floor {
            self.floor = false;
            set_vectors(false);
        }
        let mut preempt = false;
        while let Some(irq) = self.gic.ack() {
            if irq.intid == self.timer_intid {
                timer::arm(self.tick);
                self.ticks += 1;
                preempt = true;
                pv::tick();
            } else {
                log::warn!("unexpected interrupt {}", irq.intid);
                self.gic.disable(irq.intid);
            }
            self.gic.eoi(irq);
        }
        if preempt {
            self.schedule();
        }
    }

    fn report(&mut self, kind: ExceptionKind, esr: Esr) {
        let d = &self.domains[self.current];
        let r = &d.vcpu.regs;
        let far = mrs!("far_el2");
        println!(
            "hyp: dom{} ({}): unhandled {} exception: {} (EC {:#04x})",
            d.id,
            d.name,
            kind.name(),
            esr.ec_name(),
            esr.ec()
        );
        if matches!(esr.ec(), ec::DABT_LOWER | ec::IABT_LOWER) {
            let ipa = ((mrs!("hpfar_el2") >> 4) << 12) | (far & 0xfff);
            let fsc = esr.fault_status();
            println!(
                "hyp:   {} (level {}) on a {} at guest-physical {:#x}, outside the domain's memory map",
                esr::fault_status_name(fsc),
                esr::fault_level(fsc).map_or(-1, |l| l as i32),
                if esr.ec() == ec::IABT_LOWER { "fetch" } else if esr.is_write() { "write" } else { "read" },
                ipa
            );
        }
        println!(
            "hyp:   ESR {:#010x}  FAR {:#x}  ELR {:#x}  SPSR {:#x}",
            esr.0, far, r.elr, r.spsr
        );
    }

    fn end_current(&mut self, how: End) {
        let i = self.current;
        pv::domain_ended(self, i);
        let d = &mut self.domains[i];
        let name = d.name.clone();
        d.line.flush(|l| console::domain_line(&name, l));
        d.ended = Some(how);
        match how {
            End::Shutdown(r) => println!("hyp: dom{} ({}): shut down ({})", d.id, d.name, r.name()),
            End::Fault => println!(
                "hyp: dom{} ({}): ended after a fault; the other domains go on",
                d.id, d.name
            ),
        }
        if let Some(mem) = d.mem.take() {
            stage2::flush_vmid(mem.p2m.root, d.id);
            let frames = mem.frames();
            builder::release(&mut RealPhys, &mut self.frames, mem);
            println!(
                "hyp: dom{} ({}): {} frames scrubbed and freed",
                d.id, d.name, frames
            );
        }
    }

    fn finish(&mut self) -> ! {
        timer::stop();
        println!("hyp: all domains have ended ({} timer ticks)", self.ticks);
        for d in &self.domains {
            let how = match d.ended {
                Some(End::Shutdown(r)) => r.name(),
                Some(End::Fault) => "fault",
                None => "running",
            };
            println!("hyp:   dom{} ({}): {}", d.id, d.name, how);
        }
        println!(
            "hyp: {} MiB free; powering off",
            self.frames.free_frames() * PAGE_SIZE >> 20
        );
        power_off(self.power)
    }
}

/// Installs the normal vectors, or the benchmark floor ones.
fn set_vectors(floor: bool) {
    extern "C" {
        static el2_vectors: u8;
        static el2_floor_vectors: u8;
    }
    let v = if floor {
        core::ptr::addr_of!(el2_floor_vectors)
    } else {
        core::ptr::addr_of!(el2_vectors)
    };
    msr!("vbar_el2", v as u64);
    arch::isb();
}

fn power_off(p: PowerOff) -> ! {
    match p {
        PowerOff::Psci(PsciMethod::Smc) => {
            firmware::smc(firmware::PSCI_SYSTEM_OFF, 0, 0, 0);
        }
        // SAFETY: the PM block's base came from the tree and is mapped.
        PowerOff::BcmPm(b) => unsafe { platform::bcm_pm::power_off(b as usize) },
        _ => {}
    }
    println!("hyp: power-off failed; halting");
    hang()
}

/// Called by vectors.S for every exception from a guest.
#[no_mangle]
extern "C" fn rust_guest_exception(_regs: *mut VcpuRegs, kind: u64) {
    let mut g = MONITOR.lock();
    let Some(m) = g.as_mut() else { return };
    match ExceptionKind::from_raw(kind) {
        ExceptionKind::Sync => m.guest_sync(),
        ExceptionKind::Irq => m.irq(),
        k @ (ExceptionKind::Fiq | ExceptionKind::SError) => {
            m.report(k, Esr(mrs!("esr_el2")));
            m.end_current(End::Fault);
            m.schedule();
        }
    }
    pv::update_vi(m);
}

/// Called by vectors.S for an exception taken at EL2: a monitor bug.
#[no_mangle]
extern "C" fn rust_el2_exception(kind: u64, frame: *const u64) -> ! {
    let esr = Esr(mrs!("esr_el2"));
    // SAFETY: vectors.S passes a frame of 34 saved registers.
    let f = unsafe { core::slice::from_raw_parts(frame, 34) };
    console::write_fmt_unlocked(format_args!(
        "hyp: MONITOR FAULT: {} exception at EL2: {} (EC {:#04x}), ESR {:#010x} FAR {:#x} ELR {:#x}\n",
        ExceptionKind::from_raw(kind).name(),
        esr.ec_name(),
        esr.ec(),
        esr.0,
        mrs!("far_el2"),
        f[32]
    ));
    for i in (0..31).step_by(4) {
        console::write_fmt_unlocked(format_args!("hyp:   x{:<2} {:#018x}\n", i, f[i]));
    }
    fatal(3)
}

fn fatal(code: u32) -> ! {
    if SEMIHOSTING.load(Ordering::Relaxed) {
        firmware::semihosting_exit(code);
    }
    hang()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::write_fmt_unlocked(format_args!("hyp: MONITOR PANIC: {info}\n"));
    fatal(2)
}
