//! The running monitor: boot, the domain table, trap handling, the
//! round-robin scheduler and the clean end. Target only.

use crate::arch::{self, el1, firmware, mmu, stage2, timer};
use crate::builder::{self, DomainMemory, Phys};
use crate::config::{self, KernelFormat};
use crate::console::{self, LineBuffer};
use crate::esr::{self, ec, Esr, ExceptionKind};
use crate::frames::Frames;
use crate::hypercall::{self, Action, Guest};
use crate::memmap::{self, Range};
use crate::pagetable::{TableMemory, PAGE_SIZE};
use crate::vcpu::{Vcpu, VcpuRegs};
use crate::{mrs, msr, println};
mod console_rx;
mod devices;
mod fast;
mod guest_mem;
mod manage;
mod smp;

use crate::arch::fp;
use crate::config::DomainConfig;
use crate::sched::{self, Scheduler, VcpuId};
use crate::vcpu::Power;
use crate::vmid::VmidPool;
use crate::vtime::{self, Timers};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use hypercall_abi::errno::Errno;
use hypercall_abi::psci;
use hypercall_abi::sched::ShutdownReason;
use platform::devtree::{self, CpuEnable, MachineInfo, PsciMethod};
use platform::gic::IrqChip;

mod mmu_traps;
mod pv;

/// Heap for the monitor's own allocations.
const HEAP_SIZE: u64 = 8 << 20;

#[global_allocator]
static HEAP: buddy_system_allocator::LockedHeap<32> = buddy_system_allocator::LockedHeap::empty();

static MONITOR: spin::mutex::TicketMutex<Option<Monitor>> = spin::mutex::TicketMutex::new(None);
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
    /// By the privileged domain (`domctl`).
    Destroyed,
}

/// SGI that asks another CPU to run its scheduler.
const SGI_KICK: u32 = 1;
/// Largest domain id given out (ids wrap back to 1 after it); the
/// shared-info table (`pv::SHARED_PA`) has an entry per id up to here.
const MAX_DOMID: u16 = 63;

pub(crate) struct Domain {
    id: u16,
    name: heapless::String<{ config::MAX_NAME }>,
    mem: Option<DomainMemory>,
    vcpus: Vec<Box<Vcpu>>,
    vmid: u16,
    ended: Option<End>,
    line: LineBuffer,
    /// CPU time used, ns (recorded when the domain ends).
    cpu_ns: u64,
    /// Its paravirtual MMU state, from its first page-table hypercall.
    pvmmu: Option<crate::pvmmu::PvMmu>,
}

impl Domain {
    fn vcpu(&self, v: VcpuId) -> Option<&Vcpu> {
        self.vcpus.get(v.vcpu as usize).map(|b| &**b)
    }
}

/// What the monitor knows of one physical CPU.
struct PerCpu {
    mpidr: u64,
    enable: CpuEnable,
    online: bool,
    /// The vCPU whose state is in this CPU's registers.
    loaded: Option<VcpuId>,
    /// That vCPU (its box does not move or go away while it is loaded:
    /// a domain's vCPUs are freed only once none is loaded anywhere).
    loaded_ptr: *mut Vcpu,
    /// When the scheduler wants to be asked again (system time, ns).
    until: u64,
    /// The scheduler must run before returning to a guest.
    resched: bool,
    // HCR_EL2 as last written, and whether the loaded vCPU's MMU is off,
    // are in `fast::FAST`: the fast path needs them.
    /// The timer deadline this CPU's timer is armed for (system time, ns;
    /// `u64::MAX`: off), and the `timers_gen` it was computed at.
    armed: (u64, u64),
}

// SAFETY: `loaded_ptr` is dereferenced only by code holding the monitor
// lock, like every other part of the monitor's state.
unsafe impl Send for PerCpu {}

pub(crate) struct Monitor {
    domains: Vec<Domain>,
    frames: Frames,
    gic: &'static dyn IrqChip,
    timer_intid: u32,
    power: PowerOff,
    floor: bool,
    cpus: heapless::Vec<PerCpu, { arch::MAX_CPUS }>,
    sched: Scheduler,
    vmids: VmidPool,
    timers: Timers,
    /// `SCHEDOP_poll` timeouts (the number of vCPUs polling is
    /// `pv::POLLERS`).
    poll_timers: Timers,
    privileged: u16,
    /// Devices for the driver domain (present virtio-mmio transports).
    devices: Vec<devices::Device>,
    /// The driver domain, while it lives.
    driver: Option<u16>,
    /// Driver domains created since boot (`HVM_PARAM_DRIVER_DOMAIN`).
    driver_generation: u32,
    /// The last domain id given out (ids go up, wrapping).
    last_domid: u16,
    /// The UART's receive interrupt, once taken (`console_rx`).
    uart_intid: Option<u32>,
    freq: u64,
    /// ns per counter tick, 32.32 fixed point.
    ns_per_tick_32: u64,
    /// Bumped whenever a vCPU timer changes: CPUs re-arm their timer.
    timers_gen: u64,
    /// Physical counter at boot: system time 0, and every domain's CNTVOFF.
    boot_cnt: u64,
    ticks: u64,
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
    frames: &'a mut Frames,
    /// The calling vCPU's index.
    vcpu: usize,
}

impl LiveGuest<'_> {
    fn view(&self) -> Result<guest_mem::GuestView, Errno> {
        let mem = self.dom.mem.as_ref().ok_or(Errno::EFAULT)?;
        Ok(guest_mem::GuestView {
            p2m: mem.p2m,
            ram: mem.ram,
            ram_only: false,
            fast: None,
        })
    }
}

impl Guest for LiveGuest<'_> {
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.view()?.read(gva, buf)
    }
    fn write(&mut self, gva: u64, data: &[u8]) -> Result<(), Errno> {
        self.view()?.write(gva, data)
    }
    fn console(&mut self, bytes: &[u8]) {
        let name = &self.dom.name;
        self.dom.line.push(bytes, |l| console::domain_line(name, l));
    }
    fn console_read(&mut self, count: u64, gva: u64) -> Result<u64, Errno> {
        if crate::console_in::owner() != Some(self.dom.id) {
            return Err(Errno::EPERM);
        }
        let mut input = crate::console_in::INPUT.lock();
        crate::console_in::read_call(Some(&mut input), count, |d| self.write(gva, d))
    }
    fn handle(&self) -> [u8; 16] {
        let mut h = [0u8; 16];
        h[14..16].copy_from_slice(&self.dom.id.to_be_bytes());
        h
    }
    fn with_mmu(
        &mut self,
        f: &mut dyn FnMut(&mut crate::pvmmu::PvMmu, &mut dyn crate::pvmmu::MmuEnv),
    ) -> Result<(), Errno> {
        mmu_traps::with_mmu(self.dom, self.frames, f)
    }
    fn vcpu(&self) -> usize {
        self.vcpu
    }
    fn load_ttbr(&mut self, which: crate::pvmmu::Ttbr, val: u64) {
        mmu_traps::load_ttbr(which, val)
    }
    fn tlb_flush(&mut self, va: Option<u64>) {
        mmu_traps::tlb_flush(va)
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

pub(crate) fn hang() -> ! {
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
    run_boot_cpu()
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
    // virtio-mmio transports: probed below, for a driver domain.
    if let Some(w) = devices::el2_window(&info.virtio_mmio) {
        let _ = devices.push(w);
    }
    for (b, s) in &devices {
        mmu::map_device(&pt, &mut pool, *b, *s).map_err(|_| "cannot map a device at EL2")?;
    }
    mmu::enable(pt.root);
    let el2_root = pt.root;

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
    println!("hyp: cpus: {}", info.cpus.len());
    println!(
        "hyp: {} MiB free for domains ({} frames)",
        frames.free_frames() * PAGE_SIZE >> 20,
        frames.free_frames()
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
    let boot_cnt = timer::now();
    el1::set_cntvoff(boot_cnt);
    smp::publish(el2_root, boot_cnt);
    let mut cpus = heapless::Vec::new();
    for c in info.cpus.iter().take(arch::MAX_CPUS) {
        let _ = cpus.push(PerCpu {
            mpidr: c.mpidr & 0xff_00ff_ffff,
            enable: c.enable,
            online: false,
            loaded: None,
            loaded_ptr: core::ptr::null_mut(),
            until: u64::MAX,
            resched: true,
            armed: (u64::MAX, u64::MAX),
        });
    }
    let me = arch::mpidr();
    let Some(boot) = cpus.iter().position(|c: &PerCpu| c.mpidr == me) else {
        return Err("the boot CPU is not in the device tree");
    };
    // Index 0 is the boot CPU (boot.S and the stacks assume it).
    cpus.swap(0, boot);
    if let Some(n) = cfg.max_cpus {
        cpus.truncate(n as usize);
    }
    cpus[0].online = true;
    let slice_ns = cfg.tick_ms as u64 * 1_000_000;
    let params = sched::Params {
        slice_ns,
        period_ns: 3 * slice_ns,
        min_slice_ns: slice_ns / 20,
    };
    let mut m = Monitor {
        domains: Vec::new(),
        frames,
        gic: chip,
        timer_intid: timer_info.hyp_intid,
        power,
        floor: cfg.bench_floor,
        sched: Scheduler::new(cpus.len(), params),
        cpus,
        vmids: VmidPool::default(),
        timers: Timers::new(),
        poll_timers: Timers::new(),
        privileged: 0,
        devices: Vec::new(),
        driver: None,
        driver_generation: 0,
        last_domid: 0,
        uart_intid: None,
        freq,
        ns_per_tick_32: ((1_000_000_000u128 << 32) / freq.max(1) as u128) as u64,
        timers_gen: 0,
        boot_cnt,
        ticks: 0,
    };
    chip.enable(SGI_KICK);
    m.devices = devices::probe(&info.virtio_mmio);
    for d in &m.devices {
        let kind = match d.id {
            1 => "network",
            2 => "block",
            _ => "other",
        };
        println!(
            "hyp: device: virtio-mmio {} (id {}) at {:#x}, INTID {} -> VIRQ {} of the driver domain",
            kind, d.id, d.reg.base, d.intid, d.virq
        );
    }
    let privileged = cfg.privileged();
    for (i, d) in cfg.domains.iter().enumerate() {
        match m.create_domain(d) {
            Ok(id) if i == privileged => m.privileged = id,
            Ok(_) => {}
            Err(e) => println!("hyp: {} : cannot build: {}", d.name, e),
        }
    }
    if m.domains.is_empty() {
        return Err("no domain could be built");
    }
    m.console_rx_start(uart.intid);
    println!(
        "hyp: starting {} domain(s) on {} cpu(s); time slice {} ms",
        m.domains.len(),
        m.cpus.len(),
        cfg.tick_ms
    );
    if m.floor {
        println!("hyp: bench-floor: bare-eret vectors until the first tick");
        set_vectors(true);
    }
    *MONITOR.lock() = Some(m);
    smp::start_secondaries();
    Ok(())
}

impl Monitor {
    /// System time: ns since the monitor booted.
    fn now(&self) -> u64 {
        let t = timer::now().wrapping_sub(self.boot_cnt);
        // ticks * (1e9 / freq), with the factor as a 32.32 fixed-point
        // number rounded down, so this never runs ahead of the exact
        // vtime::ticks_to_ns (no 128-bit division on the hot path).
        ((t as u128 * self.ns_per_tick_32 as u128) >> 32) as u64
    }

    /// Reads guest memory of `cur`'s domain at `gva` (as `cur` sees it:
    /// `cur` is the vCPU loaded on this CPU).
    fn guest_read(&mut self, cur: VcpuId, gva: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let i = self.dom_index(cur.dom).ok_or(Errno::ESRCH)?;
        let g = LiveGuest {
            dom: &mut self.domains[i],
            frames: &mut self.frames,
            vcpu: cur.vcpu as usize,
        };
        g.read(gva, buf)
    }

    /// Index of the CPU running this code.
    #[inline(always)]
    fn this_cpu(&self) -> usize {
        arch::stack_index()
    }

    fn dom_index(&self, id: u16) -> Option<usize> {
        self.domains.iter().position(|d| d.id == id)
    }

    fn vcpu_mut(&mut self, v: VcpuId) -> Option<&mut Vcpu> {
        let i = self.dom_index(v.dom)?;
        self.domains[i]
            .vcpus
            .get_mut(v.vcpu as usize)
            .map(|b| &mut **b)
    }

    /// Builds a domain from its configuration and makes its first vCPU
    /// runnable. Returns its id.
    fn create_domain(&mut self, d: &DomainConfig) -> Result<u16, &'static str> {
        let id =
            crate::hvm::next_domid(self.last_domid, MAX_DOMID, |i| self.dom_index(i).is_some())
                .ok_or("no free domain id")?;
        let vmid = self.vmids.alloc().ok_or("no free VMID")?;
        let image = match d.kernel {
            KernelFormat::Elf => GUEST_ELF,
            KernelFormat::Image => GUEST_IMAGE,
        };
        let pass = if d.driver && self.driver.is_none() {
            match self.driver_passthrough((builder::GUEST_RAM_BASE, (d.mem_mib as u64) << 20)) {
                Some(p) => p,
                None => {
                    self.vmids.free(vmid);
                    return Err("no memory for the driver domain's DMA window");
                }
            }
        } else {
            builder::Passthrough::default()
        };
        let mem = match builder::build_with(&mut RealPhys, &mut self.frames, d, image, &pass) {
            Ok(mem) => mem,
            Err(e) => {
                self.vmids.free(vmid);
                println!("hyp: dom{} ({}): cannot build: {}", id, d.name, e);
                return Err("cannot build the domain");
            }
        };
        // The chunks need not be contiguous: make each one's new contents
        // visible to instruction fetch.
        for &(pa, n) in &mem.chunks {
            arch::cache::sync_icache(pa, n * PAGE_SIZE);
        }
        let (nvcpus, weight, cap) = domain_params(d);
        println!(
            "hyp: dom{} ({}): {} MiB, {} vcpu(s), weight {}, {:?} kernel, entry {:#x}, device tree at {:#x}, command line \"{}\"",
            id, d.name, d.mem_mib, nvcpus, weight, d.kernel, mem.entry, mem.dtb, d.args
        );
        let _ = self.sched.add_domain(id, weight, cap);
        self.last_domid = id;
        if let Some((pa, _)) = pass.dma {
            self.driver = Some(id);
            self.driver_generation += 1;
            for dev in &self.devices {
                self.gic.enable(dev.intid);
            }
            println!(
                "hyp: dom{} ({}): driver domain: {} device(s), DMA window {:#x}..{:#x}",
                id,
                d.name,
                pass.devices.len(),
                pa,
                pa + devices::DMA_BYTES
            );
        }
        let mut vcpus = Vec::with_capacity(nvcpus);
        let ncpus = self.cpus.len();
        for i in 0..nvcpus {
            let mut v = Box::new(Vcpu::new(i as u32, mem.entry, mem.dtb));
            let vid = VcpuId::new(id, i as u16);
            match d.pin.map(usize::from) {
                Some(p) if p < ncpus => {
                    let _ = self.sched.add_vcpu(vid, p);
                    let _ = self.sched.set_affinity(vid, Some(p));
                }
                pin => {
                    if let Some(p) = pin.filter(|_| i == 0) {
                        println!("hyp: {}: no cpu {} to pin to; not pinned", d.name, p);
                    }
                    let _ = self.sched.add_vcpu(vid, (id as usize + i) % ncpus);
                }
            }
            if i == 0 {
                v.power = Power::Up;
                v.initialised = true;
            }
            vcpus.push(v);
        }
        self.domains.push(Domain {
            id,
            name: d.name.clone(),
            mem: Some(mem),
            vcpus,
            vmid,
            ended: None,
            line: LineBuffer::default(),
            cpu_ns: 0,
            pvmmu: None,
        });
        pv::NEW_DOMAINS.store(true, Ordering::Relaxed);
        // A new driver domain takes the serial input.
        self.console_owner_changed();
        let now = self.now();
        if let Ok(Some(c)) = self.sched.wake(VcpuId::new(id, 0), now) {
            self.kick(c);
        }
        if self.driver == Some(id) {
            self.driver_changed();
        }
        Ok(id)
    }

    /// Asks CPU `c` to run its scheduler: at once if it is this CPU (before
    /// returning to a guest), else through an SGI.
    fn kick(&mut self, c: usize) {
        let me = self.this_cpu();
        let Some(cpu) = self.cpus.get_mut(c) else {
            return;
        };
        cpu.resched = true;
        if c != me && cpu.online {
            arch::dsb_ish();
            self.gic.send_sgi(cpu.mpidr, SGI_KICK);
        }
    }

    fn kick_mask(&mut self, m: sched::CpuMask) {
        for c in m.iter() {
            self.kick(c);
        }
    }

    /// Runs the scheduler on CPU `c` and loads what it chose.
    fn reschedule(&mut self, c: usize) {
        let now = self.now();
        let d = self.sched.pick(c, now);
        self.cpus[c].resched = false;
        self.cpus[c].until = d.run_until;
        self.kick_mask(d.kick);
        self.switch(c, d.next, now);
    }

    /// Makes `next` the vCPU in CPU `c`'s registers.
    fn switch(&mut self, c: usize, next: Option<VcpuId>, now: u64) {
        let prev = self.cpus[c].loaded;
        if prev == next {
            return;
        }
        if let Some(p) = prev {
            if let Some(v) = self.vcpu_mut(p) {
                el1::save(&mut v.el1);
                fp::save(&mut v.fp);
                v.on_cpu = None;
                v.cpu_time += now.saturating_sub(v.since);
            }
            self.cpus[c].loaded = None;
            self.cpus[c].loaded_ptr = core::ptr::null_mut();
            fast::FAST[c].load(None);
            msr!("tpidr_el2", 0);
            if let Some(i) = self.dom_index(p.dom) {
                if self.domains[i].ended.is_some() {
                    self.release(i);
                }
            }
        }
        if let Some(n) = next {
            let Some(i) = self.dom_index(n.dom) else {
                return;
            };
            let d = &mut self.domains[i];
            let (Some(mem), Some(v)) = (d.mem.as_ref(), d.vcpus.get_mut(n.vcpu as usize)) else {
                return;
            };
            el1::restore(&v.el1);
            fp::restore(&v.fp);
            let f = &fast::FAST[c];
            f.dc.store(v.el1.sctlr() & 1 == 0, Ordering::Relaxed);
            f.load(Some((n, mem)));
            stage2::activate(mem.p2m.root, d.vmid);
            el1::set_vmpidr(v.id);
            v.regs.host_sp = arch::stack_top(c);
            v.regs.cpu = c as u64;
            v.on_cpu = Some(c);
            if !v.ran {
                v.ran = true;
                println!(
                    "hyp: dom{} ({}): vcpu {} starts on cpu {}",
                    n.dom, d.name, n.vcpu, c
                );
            }
            v.since = now;
            let regs: *mut VcpuRegs = &mut v.regs;
            msr!("tpidr_el2", regs as u64);
            self.cpus[c].loaded_ptr = &mut **v;
            self.cpus[c].loaded = Some(n);
        }
    }

    /// Before returning to the guest on CPU `c`: run the scheduler if asked,
    /// signal the loaded vCPU's virtual IRQ line, and arm the timer. Returns
    /// false when there is nothing to run (the CPU goes idle).
    #[inline(always)]
    fn resume(&mut self, c: usize) -> bool {
        // The common case: same vCPU, same IRQ line, timer already armed.
        let cpu = &self.cpus[c];
        if !cpu.resched && cpu.armed == (cpu.until, self.timers_gen) {
            let id = cpu.loaded;
            let f = &fast::FAST[c];
            if let (Some(v), Some(id)) = (self.loaded(c), id) {
                let timer = v.irq_line();
                f.timer_seen.store(timer, Ordering::Relaxed);
                let hcr = hcr_for(
                    f.dc.load(Ordering::Relaxed),
                    timer || pv::upcall_pending(id),
                );
                if hcr == f.hcr.load(Ordering::Relaxed) {
                    return true;
                }
            }
        }
        self.resume_slow(c)
    }

    #[inline(never)]
    fn resume_slow(&mut self, c: usize) -> bool {
        if self.cpus[c].resched {
            self.reschedule(c);
        }
        let id = self.cpus[c].loaded;
        let f = &fast::FAST[c];
        let line = self.loaded(c).map(|v| {
            let timer = v.irq_line();
            f.timer_seen.store(timer, Ordering::Relaxed);
            timer || id.is_some_and(pv::upcall_pending)
        });
        let running = line.is_some();
        let hcr = hcr_for(f.dc.load(Ordering::Relaxed), line == Some(true));
        if running && f.hcr.load(Ordering::Relaxed) != hcr {
            msr!("hcr_el2", hcr);
            arch::isb();
            f.hcr.store(hcr, Ordering::Relaxed);
        }
        self.arm_timer(c);
        running
    }

    /// Arms CPU `c`'s timer for its scheduler deadline or the earliest vCPU
    /// timer, whichever is first (none: the timer stays off).
    fn arm_timer(&mut self, c: usize) {
        let until = self.cpus[c].until;
        if self.cpus[c].armed.1 == self.timers_gen && self.cpus[c].armed.0 == until {
            return;
        }
        let mut at = until;
        for t in [
            self.timers.earliest(|_| true),
            self.poll_timers.earliest(|_| true),
        ]
        .into_iter()
        .flatten()
        {
            at = at.min(t);
        }
        // Keyed by the scheduler deadline it started from.
        self.cpus[c].armed = (until, self.timers_gen);
        if at == u64::MAX {
            timer::stop();
        } else {
            timer::arm_at(
                self.boot_cnt
                    .wrapping_add(vtime::ns_to_ticks(at, self.freq)),
            );
        }
    }

    /// Fires every vCPU timer that is due.
    fn fire_timers(&mut self, now: u64) {
        self.timers_gen += 1;
        for id in self.poll_timers.expire(now) {
            self.notify(id);
        }
        for id in self.timers.expire(now) {
            // Xen's way once the domain bound VIRQ_TIMER: the event; before
            // that, this monitor's own timer line. (Not "once the domain
            // has event state": every live domain gets that as soon as any
            // domain makes an event-channel call, and a domain that never
            // bound VIRQ_TIMER then lost its timer and slept forever.)
            match pv::virq_if_bound(id.dom, hypercall_abi::event_channel::VIRQ_TIMER) {
                Some(Some(v)) => self.notify(v),
                Some(None) => {}
                None => {
                    if let Some(v) = self.vcpu_mut(id) {
                        v.timer_pending = true;
                        self.notify(id);
                    }
                }
            }
        }
    }

    /// Something is pending for `v`: wake it if it sleeps, make a CPU that
    /// runs it look at its IRQ line.
    fn notify(&mut self, id: VcpuId) {
        let now = self.now();
        let Some(v) = self.vcpu_mut(id) else { return };
        let on = v.on_cpu;
        let polled = core::mem::take(&mut v.polling);
        if v.blocked && v.power == Power::Up {
            v.blocked = false;
            if let Ok(Some(c)) = self.sched.wake(id, now) {
                self.kick(c);
            }
        }
        if polled {
            pv::poll_ended();
            self.poll_timers.cancel(id);
            self.timers_gen += 1;
        }
        // A CPU running it re-evaluates its line on its next return to it:
        // make it return now (this CPU does anyway).
        if let Some(c) = on.filter(|&c| c != self.this_cpu()) {
            self.kick(c);
        }
    }

    /// The vCPU loaded on CPU `c`.
    fn loaded(&mut self, c: usize) -> Option<&mut Vcpu> {
        let p = self.cpus[c].loaded_ptr;
        // SAFETY: `loaded_ptr` is null or points at the boxed vCPU loaded on
        // `c`, which stays allocated while loaded (see `PerCpu`); the
        // monitor lock is held (`&mut self`), so no other reference to it
        // is live.
        unsafe { p.as_mut() }
    }

    fn regs(&mut self, c: usize) -> &mut VcpuRegs {
        &mut self
            .loaded(c)
            .expect("a guest trapped, so a vCPU is loaded")
            .regs
    }

    #[inline(always)]
    fn apply(&mut self, c: usize, cur: VcpuId, a: Action) {
        if let Action::Return(v) = a {
            // The common case, kept short.
            self.regs(c).x[0] = v as u64;
        } else {
            self.apply_slow(c, cur, a);
        }
    }

    #[inline(never)]
    fn apply_slow(&mut self, c: usize, cur: VcpuId, a: Action) {
        let now = self.now();
        match a {
            Action::Return(_) => {}
            Action::Yield => {
                self.regs(c).x[0] = 0;
                let _ = self.sched.yield_(cur);
                self.cpus[c].resched = true;
            }
            Action::Block => {
                self.regs(c).x[0] = 0;
                self.block(c, cur);
            }
            Action::Poll { ports, nr, timeout } => {
                self.regs(c).x[0] = 0;
                self.poll(c, cur, ports, nr, timeout, now);
            }
            Action::SetTimer(t) => {
                self.regs(c).x[0] = 0;
                if let Some(v) = self.vcpu_mut(cur) {
                    v.timer_pending = false;
                }
                self.timers.set(cur, t);
                self.timers_gen += 1;
                if t != 0 && t <= now {
                    self.fire_timers(now);
                }
            }
            Action::Shutdown(r) => self.end_domain(cur.dom, End::Shutdown(r)),
            Action::Continue(args) => {
                let r = self.regs(c);
                r.x[..4].copy_from_slice(&args);
                r.elr -= 4; // back onto the `hvc` (x16 still holds its number)
            }
            Action::CpuOn {
                target,
                entry,
                context,
            } => {
                if self.retry_while_loaded(c, cur.dom, target) {
                    return;
                }
                let r = self.cpu_on(cur.dom, target, entry, context);
                self.regs(c).x[0] = psci::status_to_x0(r) as u64;
            }
            Action::CpuOff => {
                if let Some(v) = self.vcpu_mut(cur) {
                    v.power = Power::Down;
                    v.blocked = true;
                }
                let _ = self.sched.block(cur, now);
                self.cpus[c].resched = true;
            }
            a @ (Action::VcpuInitialise { .. }
            | Action::VcpuUp(_)
            | Action::VcpuDown(_)
            | Action::VcpuIsUp(_)
            | Action::SingleShot { .. }) => {
                if let Action::VcpuInitialise { vcpu, .. } = a {
                    if self.retry_while_loaded(c, cur.dom, vcpu) {
                        return;
                    }
                }
                let r = self.vcpu_op(cur, a);
                self.regs(c).x[0] = r as u64;
                // VCPUOP_down of itself: it leaves the CPU.
                if self.vcpu_mut(cur).is_some_and(|v| v.power == Power::Down) {
                    self.cpus[c].resched = true;
                }
            }
            Action::AffinityInfo(target) => {
                let on = self
                    .dom_index(cur.dom)
                    .and_then(|i| {
                        self.domains[i].vcpu(VcpuId::new(cur.dom, (target & 0xffff) as u16))
                    })
                    .filter(|_| target >> 16 == 0)
                    .map(|v| v.power == Power::Up);
                self.regs(c).x[0] = match on {
                    Some(true) => 0,
                    Some(false) => 1,
                    None => psci::status_to_x0(psci::INVALID_PARAMETERS) as u64,
                };
            }
        }
    }

    /// `vcpu_op` on vCPU `target` of the caller's domain; the value for x0.
    fn vcpu_op(&mut self, cur: VcpuId, a: Action) -> i64 {
        let now = self.now();
        let target = match a {
            Action::VcpuInitialise { vcpu, .. }
            | Action::VcpuUp(vcpu)
            | Action::VcpuDown(vcpu)
            | Action::VcpuIsUp(vcpu)
            | Action::SingleShot { vcpu, .. } => vcpu,
            _ => return Errno::EINVAL.to_raw(),
        };
        let Some(i) = self.dom_index(cur.dom) else {
            return Errno::ESRCH.to_raw();
        };
        let ram = self.domains[i]
            .mem
            .as_ref()
            .map(|m| m.ram)
            .unwrap_or((0, 0));
        let Some(v) = self.domains[i].vcpus.get_mut(target as usize) else {
            return Errno::ENOENT.to_raw();
        };
        let id = VcpuId::new(cur.dom, target as u16);
        match a {
            Action::VcpuInitialise { ctx, .. } => {
                if v.power == Power::Up {
                    return Errno::EEXIST.to_raw();
                }
                // With the MMU off the entry must be in the domain's RAM.
                if ctx.flags == 0 && (ctx.pc < ram.0 || ctx.pc >= ram.0 + ram.1) {
                    return Errno::EINVAL.to_raw();
                }
                v.reset(ctx.pc, ctx.x0);
                v.el1.r[16] = ctx.sp; // SP_EL1
                v.initialised = true;
                0
            }
            Action::VcpuUp(_) => {
                if !v.initialised {
                    return Errno::EINVAL.to_raw();
                }
                if v.power == Power::Up {
                    return 0;
                }
                v.power = Power::Up;
                v.blocked = true;
                self.notify(id);
                0
            }
            Action::VcpuDown(_) => {
                if v.power == Power::Down {
                    return 0;
                }
                v.power = Power::Down;
                v.blocked = true;
                self.timers.cancel(id);
                self.timers_gen += 1;
                if let Ok(Some(c)) = self.sched.block(id, now) {
                    self.kick(c);
                }
                0
            }
            Action::VcpuIsUp(_) => (v.power == Power::Up) as i64,
            Action::SingleShot {
                deadline,
                future_only,
                ..
            } => {
                if target != cur.vcpu as u64 {
                    return Errno::EINVAL.to_raw();
                }
                if future_only && deadline != 0 && deadline <= now {
                    return Errno::ETIME.to_raw();
                }
                v.timer_pending = false;
                self.timers.set(id, deadline);
                self.timers_gen += 1;
                if deadline != 0 && deadline <= now {
                    self.fire_timers(now);
                }
                0
            }
            _ => Errno::EINVAL.to_raw(),
        }
    }

    /// `SCHEDOP_poll`: returns at once if a listed port is pending or the
    /// timeout has passed; else the vCPU sleeps until an event reaches it
    /// (on any port: callers check their ports again, as with Xen) or the
    /// timeout.
    fn poll(&mut self, c: usize, cur: VcpuId, ports: u64, nr: u32, timeout: u64, now: u64) {
        let mut b = [0u8; 4 * hypercall::POLL_MAX_PORTS as usize];
        let b = &mut b[..4 * nr as usize];
        if let Err(e) = self.guest_read(cur, ports, b) {
            self.regs(c).x[0] = e.to_raw() as u64;
            return;
        }
        let list = b
            .chunks_exact(4)
            .map(|p| u32::from_le_bytes(p.try_into().unwrap()));
        if timeout != 0 && timeout <= now {
            return;
        }
        // Checked and counted under the event-channel lock: a send on
        // another CPU that takes the fast path sees this poller counted.
        if !pv::poll_started(cur.dom, list) {
            return;
        }
        let Some(v) = self.vcpu_mut(cur) else {
            pv::poll_ended();
            return;
        };
        if v.irq_line() || pv::upcall_pending(cur) {
            pv::poll_ended();
            return;
        }
        v.blocked = true;
        v.polling = true;
        if timeout != 0 {
            self.poll_timers.set(cur, timeout);
            self.timers_gen += 1;
        }
        let _ = self.sched.block(cur, now);
        self.cpus[c].resched = true;
    }

    /// Wakes every vCPU sleeping in `SCHEDOP_poll`.
    fn wake_pollers(&mut self) {
        let mut ids: Vec<VcpuId> = Vec::new();
        for d in &self.domains {
            for v in &d.vcpus {
                if v.polling {
                    ids.push(VcpuId::new(d.id, v.id as u16));
                }
            }
        }
        for id in ids {
            self.notify(id);
        }
    }

    /// The vCPU waits for an event or its timer (unless one is pending).
    fn block(&mut self, c: usize, cur: VcpuId) {
        let now = self.now();
        let Some(v) = self.vcpu_mut(cur) else { return };
        if v.irq_line() || pv::upcall_pending(cur) {
            return;
        }
        v.blocked = true;
        let _ = self.sched.block(cur, now);
        self.cpus[c].resched = true;
    }

    /// A vCPU that was just taken down may still be loaded on another CPU
    /// until that CPU next schedules: its registers are then still in that
    /// CPU, which would save them over a reset. If vCPU `target` of `dom`
    /// is loaded on a CPU other than `c`, kicks that CPU and rewinds the
    /// caller onto its `hvc` (x0-x3 unchanged), so the call runs again
    /// once the vCPU is off that CPU (as Xen pauses the target vCPU
    /// synchronously first). Returns whether it did.
    fn retry_while_loaded(&mut self, c: usize, dom: u16, target: u64) -> bool {
        let on = self
            .dom_index(dom)
            .and_then(|i| self.domains[i].vcpus.get(usize::try_from(target).ok()?))
            .and_then(|v| v.on_cpu)
            .filter(|&o| o != c);
        match on {
            Some(o) => {
                self.kick(o);
                self.regs(c).elr -= 4;
                true
            }
            None => false,
        }
    }

    /// PSCI CPU_ON for vCPU `target` of domain `dom`.
    fn cpu_on(&mut self, dom: u16, target: u64, entry: u64, context: u64) -> i32 {
        let Some(i) = self.dom_index(dom) else {
            return psci::DENIED;
        };
        if target >> 16 != 0 || target as usize >= self.domains[i].vcpus.len() {
            return psci::INVALID_PARAMETERS;
        }
        let ram = self.domains[i]
            .mem
            .as_ref()
            .map(|m| m.ram)
            .unwrap_or((0, 0));
        if entry < ram.0 || entry >= ram.0 + ram.1 || entry % 4 != 0 {
            return psci::INVALID_ADDRESS;
        }
        let v = &mut self.domains[i].vcpus[target as usize];
        if v.power == Power::Up {
            return psci::ALREADY_ON;
        }
        v.reset(entry, context);
        v.power = Power::Up;
        v.initialised = true;
        // Down vCPUs are blocked in the scheduler: `notify` wakes it.
        v.blocked = true;
        self.notify(VcpuId::new(dom, target as u16));
        psci::SUCCESS
    }

    #[inline(always)]
    fn guest_sync(&mut self, c: usize, cur: VcpuId) {
        let esr = Esr(mrs!("esr_el2"));
        match esr.ec() {
            ec::HVC64 => match esr.imm16() {
                hypercall_abi::nr::HVC_IMM => {
                    let r = self.regs(c);
                    let (nr, args) = (r.x[16], [r.x[0], r.x[1], r.x[2], r.x[3], r.x[4]]);
                    if matches!(
                        nr,
                        hypercall_abi::nr::DOMCTL
                            | hypercall_abi::nr::PHYSDEV_OP
                            | hypercall_abi::nr::HVM_OP
                    ) {
                        let v = match nr {
                            hypercall_abi::nr::DOMCTL => self.domctl(cur, args[0]),
                            hypercall_abi::nr::HVM_OP => self.hvm_op(cur, args[0], args[1]),
                            _ => self.physdev_op(cur, args[0], args[1]),
                        };
                        if self.cpus[c].loaded == Some(cur) {
                            self.regs(c).x[0] = v as u64;
                        }
                        return;
                    }
                    let Some(i) = self.dom_index(cur.dom) else {
                        return;
                    };
                    if matches!(
                        nr,
                        hypercall_abi::nr::EVENT_CHANNEL_OP
                            | hypercall_abi::nr::GRANT_TABLE_OP
                            | hypercall_abi::nr::MEMORY_OP
                    ) {
                        if let Some(a) = pv::hypercall(self, i, cur, nr, args) {
                            self.apply(c, cur, a);
                        }
                        return;
                    }
                    let dom = &mut self.domains[i];
                    let frames = &mut self.frames;
                    let vcpu = cur.vcpu as usize;
                    let a = hypercall::dispatch(&mut LiveGuest { dom, frames, vcpu }, nr, args);
                    self.apply(c, cur, a);
                }
                0 => {
                    let r = self.regs(c);
                    let a = hypercall::psci_call(r.x[0], [r.x[1], r.x[2], r.x[3]]);
                    self.apply(c, cur, a);
                }
                _ => self.regs(c).x[0] = Errno::ENOSYS.to_raw() as u64,
            },
            ec::SMC64 => {
                let r = self.regs(c);
                r.elr += 4;
                let a = hypercall::psci_call(r.x[0], [r.x[1], r.x[2], r.x[3]]);
                self.apply(c, cur, a);
            }
            ec::WFX => {
                self.regs(c).elr += 4;
                // WFI: sleep until something is pending; WFE: give way.
                if esr.0 & 1 == 0 {
                    self.block(c, cur);
                } else {
                    let _ = self.sched.yield_(cur);
                    self.cpus[c].resched = true;
                }
            }
            ec::SYSREG => self.sysreg_trap(c, cur, esr),
            ec::DABT_LOWER if self.table_store(c, cur, esr) => {}
            _ => {
                self.report(c, cur, ExceptionKind::Sync, esr);
                self.end_domain(cur.dom, End::Fault);
            }
        }
    }

    fn irq(&mut self, c: usize) {
        if self.floor {
            self.floor = false;
            set_vectors(false);
        }
        while let Some(irq) = self.gic.ack() {
            if irq.intid == self.timer_intid {
                timer::stop();
                self.cpus[c].armed = (u64::MAX, u64::MAX);
                self.ticks += 1;
                let now = self.now();
                self.fire_timers(now);
                if now >= self.cpus[c].until {
                    self.cpus[c].resched = true;
                }
            } else if irq.intid == SGI_KICK {
                self.cpus[c].resched = true;
            } else if self.device_irq(irq.intid) || self.console_irq(irq.intid) {
            } else {
                log::warn!("unexpected interrupt {}", irq.intid);
                self.gic.disable(irq.intid);
            }
            self.gic.eoi(irq);
        }
    }

    fn report(&mut self, c: usize, cur: VcpuId, kind: ExceptionKind, esr: Esr) {
        let (elr, spsr) = {
            let r = self.regs(c);
            (r.elr, r.spsr)
        };
        let Some(i) = self.dom_index(cur.dom) else {
            return;
        };
        let d = &self.domains[i];
        let far = mrs!("far_el2");
        println!(
            "hyp: dom{} ({}): vcpu {}: unhandled {} exception: {} (EC {:#04x})",
            d.id,
            d.name,
            cur.vcpu,
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
            esr.0, far, elr, spsr
        );
    }

    /// Ends domain `id`: it runs no more; its memory is released once none
    /// of its vCPUs is loaded on any CPU.
    fn end_domain(&mut self, id: u16, how: End) {
        let Some(i) = self.dom_index(id) else { return };
        let d = &mut self.domains[i];
        if d.ended.is_some() {
            return;
        }
        let name = d.name.clone();
        d.line.flush(|l| console::domain_line(&name, l));
        d.ended = Some(how);
        mmu_traps::report(&self.domains[i]);
        let d = &mut self.domains[i];
        match how {
            End::Shutdown(r) => println!("hyp: dom{} ({}): shut down ({})", d.id, d.name, r.name()),
            End::Fault => println!(
                "hyp: dom{} ({}): ended after a fault; the other domains go on",
                d.id, d.name
            ),
            End::Destroyed => println!("hyp: dom{} ({}): destroyed", d.id, d.name),
        }
        for v in d.vcpus.iter_mut() {
            v.power = Power::Down;
            if core::mem::take(&mut v.polling) {
                pv::poll_ended();
            }
        }
        self.poll_timers.cancel_domain(id);
        self.timers.cancel_domain(id);
        self.timers_gen += 1;
        if self.driver == Some(id) {
            self.driver_ended();
        }
        let now = self.now();
        self.domains[i].cpu_ns = self.sched.domain_time(id, now).unwrap_or(0);
        if let Ok(mask) = self.sched.remove_domain(id) {
            self.kick_mask(mask);
        }
        self.release(i);
    }

    /// Frees an ended domain's memory and VMID once none of its vCPUs is
    /// loaded anywhere; powers off when no domain is left.
    fn release(&mut self, i: usize) {
        if self.domains[i].vcpus.iter().any(|v| v.on_cpu.is_some()) {
            return;
        }
        if self.domains[i].mem.is_some() {
            // Ports closed, grants and mappings released (frames another
            // domain still maps are kept back until it unmaps them).
            pv::domain_ended(self, i);
        }
        let d = &mut self.domains[i];
        if let Some(mem) = d.mem.take() {
            stage2::flush_vmid(mem.p2m.root, d.vmid);
            self.vmids.free(d.vmid);
            let frames = mem.frames();
            builder::release(&mut RealPhys, &mut self.frames, mem);
            println!(
                "hyp: dom{} ({}): {} frames scrubbed and freed; {} MiB free",
                d.id,
                d.name,
                frames,
                self.frames.free_frames() * PAGE_SIZE >> 20
            );
        }
        d.vcpus.clear();
        // Destroyed domains leave no trace but their report lines; their id
        // may be used again.
        if d.ended == Some(End::Destroyed) {
            self.domains.remove(i);
        }
        if self
            .domains
            .iter()
            .all(|d| d.ended.is_some() && d.mem.is_none())
        {
            self.finish();
        }
    }

    fn finish(&mut self) -> ! {
        timer::stop();
        println!(
            "hyp: all domains have ended ({} timer interrupts)",
            self.ticks
        );
        for d in &self.domains {
            let how = match d.ended {
                Some(End::Shutdown(r)) => r.name(),
                Some(End::Fault) => "fault",
                Some(End::Destroyed) => "destroyed",
                None => "running",
            };
            println!(
                "hyp:   dom{} ({}): {}, {} ms of CPU time",
                d.id,
                d.name,
                how,
                d.cpu_ns / 1_000_000
            );
        }
        println!(
            "hyp: {} MiB free ({} frames); powering off",
            self.frames.free_frames() * PAGE_SIZE >> 20,
            self.frames.free_frames()
        );
        power_off(self.power)
    }
}

/// HCR_EL2 for a guest: DC while its MMU is off, VI while an interrupt is
/// pending for it.
fn hcr_for(dc: bool, irq: bool) -> u64 {
    let mut h = el1::HCR_GUEST;
    if !dc {
        h &= !el1::HCR_DC;
    }
    if irq {
        h |= el1::HCR_VI;
    }
    h
}

/// A domain's vCPUs, weight and cap.
fn domain_params(d: &DomainConfig) -> (usize, u16, u16) {
    (d.vcpus.max(1) as usize, d.weight, d.cap)
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

/// Called by vectors.S for every exception from a guest, with the
/// register frame of the vCPU loaded on this CPU.
#[no_mangle]
extern "C" fn rust_guest_exception(regs: *mut VcpuRegs, kind: u64) {
    if kind == ExceptionKind::Sync as u64 {
        match fast::guest_sync(regs) {
            fast::After::Done => {}
            after => locked(regs, ExceptionKind::Sync, after),
        }
    } else {
        locked(regs, ExceptionKind::from_raw(kind), fast::After::Unhandled)
    }
}

/// The rest of `rust_guest_exception`, under the monitor lock.
#[inline(never)]
fn locked(regs: *mut VcpuRegs, kind: ExceptionKind, after: fast::After) {
    let mut g = MONITOR.lock();
    let Some(m) = g.as_mut() else { return };
    // This CPU's index, as recorded in the frame of the vCPU loaded here
    // when it was loaded (cheaper than `this_cpu`, the same value).
    // SAFETY: `regs` is that vCPU's register frame, which only this CPU
    // accesses while the vCPU is loaded (see `fast::guest_sync`).
    let c = unsafe { (*regs).cpu } as usize;
    if let Some(cur) = m.cpus.get(c).and_then(|p| p.loaded) {
        match (after, kind) {
            (fast::After::Done, _) => {}
            (
                fast::After::Resume {
                    notify,
                    wake_pollers,
                },
                _,
            ) => {
                if wake_pollers {
                    m.wake_pollers();
                }
                if let Some(v) = notify {
                    m.notify(v);
                }
            }
            (fast::After::Unhandled, ExceptionKind::Sync) => m.guest_sync(c, cur),
            (fast::After::Unhandled, ExceptionKind::Irq) => m.irq(c),
            (fast::After::Unhandled, k @ (ExceptionKind::Fiq | ExceptionKind::SError)) => {
                m.report(c, cur, k, Esr(mrs!("esr_el2")));
                m.end_domain(cur.dom, End::Fault);
            }
        }
    }
    if !m.resume(c) {
        drop(g);
        idle(c)
    }
}

/// A CPU with nothing to run: sleep until an interrupt (a timer or a kick),
/// then ask the scheduler again.
fn idle(c: usize) -> ! {
    loop {
        arch::wfi();
        let mut g = MONITOR.lock();
        let Some(m) = g.as_mut() else { continue };
        m.irq(c);
        m.cpus[c].resched = true;
        if m.resume(c) {
            drop(g);
            // SAFETY: `resume` loaded a vCPU: TPIDR_EL2 points at its registers.
            unsafe { arch::guest_restore() }
        }
    }
}

/// Where the boot CPU goes once the monitor is set up: the first vCPU, or
/// idle.
fn run_boot_cpu() -> ! {
    let mut g = MONITOR.lock();
    let Some(m) = g.as_mut() else { hang() };
    m.cpus[0].resched = true;
    if m.resume(0) {
        drop(g);
        // SAFETY: `resume` loaded a vCPU: TPIDR_EL2 points at its registers.
        unsafe { arch::guest_restore() }
    }
    drop(g);
    idle(0)
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
