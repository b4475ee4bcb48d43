//! `test=devices`: what a domain sees of the machine's devices. In the
//! driver domain (configured `driver`): every `virtio,mmio` node of its
//! device tree is a live virtio transport (magic, version, device ID), its
//! DMA window is RAM it can use at the identity address, and
//! `PHYSDEVOP_eoi` accepts its devices' VIRQs and refuses others. In any
//! other domain: no device nodes, `PHYSDEVOP_eoi` refused with `EPERM`, and
//! (with `touch=ADDR`) a read of a device page ends the domain with a
//! stage-2 fault.

use crate::console::println;
use crate::dt::BootInfo;
use crate::tally::Tally;
use hypercall_abi::physdev::VIRQ_DEVICE_FIRST;
use hypercall_abi::{guest, Errno};

/// Reads a 32-bit device register.
fn mmio32(addr: u64) -> u32 {
    // SAFETY: `addr` is a register of a device the monitor mapped into
    // this domain (or, for `touch=`, deliberately not: the monitor ends
    // the domain); reading virtio's identification registers has no side
    // effects.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// `test=devices`.
pub fn run(info: &BootInfo) -> ! {
    let mut t = Tally::new("check");
    let fdt = &info.fdt;
    let mut virqs = [0u32; 8];
    let mut n = 0;
    for node in fdt
        .all_nodes()
        .filter(|n| n.name.starts_with("virtio_mmio@"))
    {
        let Some(r) = node.reg().and_then(|mut r| r.next()) else {
            continue;
        };
        let base = r.starting_address as u64;
        let virq = node
            .property("pvh,virq")
            .and_then(|p| p.as_usize())
            .unwrap_or(0) as u32;
        let (magic, version, id) = (mmio32(base), mmio32(base + 4), mmio32(base + 8));
        t.check(
            "virtio_transport",
            magic == 0x7472_6976 && (1..=2).contains(&version) && id != 0,
            format_args!(
                "{base:#x}: magic {magic:#x}, version {version}, device {id}, virq {virq}"
            ),
        );
        if n < virqs.len() {
            virqs[n] = virq;
            n += 1;
        }
    }
    let dma = fdt
        .find_node("/hypervisor")
        .and_then(|h| h.property("pvh,dma-window"))
        .map(|p| p.value)
        .filter(|v| v.len() == 16)
        .map(|v| {
            let w = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().unwrap());
            (w(0), w(8))
        });
    let driver = n > 0;
    if driver {
        match dma {
            Some((base, size)) => {
                // The window is ordinary RAM at its identity address.
                let p = (base + size - 8) as *mut u64;
                // SAFETY: the last word of the DMA window the monitor
                // mapped read-write for this domain.
                let back = unsafe {
                    p.write_volatile(0x5eed_1234_abcd_0042);
                    p.read_volatile()
                };
                t.check(
                    "dma_window",
                    back == 0x5eed_1234_abcd_0042,
                    format_args!("{base:#x}+{size:#x} read back"),
                );
            }
            None => t.check("dma_window", false, format_args!("missing")),
        }
        for &v in &virqs[..n] {
            let r = guest::physdev_eoi(v);
            t.check("eoi_own_virq", r.is_ok(), format_args!("virq {v}: {r:?}"));
        }
        let r = guest::physdev_eoi(VIRQ_DEVICE_FIRST + 7);
        t.check(
            "eoi_unknown_virq",
            r == Err(Errno::EINVAL),
            format_args!("{r:?}"),
        );
    } else {
        t.check(
            "no_devices",
            dma.is_none(),
            format_args!("no device nodes, no DMA window"),
        );
        let r = guest::physdev_eoi(VIRQ_DEVICE_FIRST);
        t.check("eoi_refused", r == Err(Errno::EPERM), format_args!("{r:?}"));
    }
    println!("guest: devices checks passed {}/{}", t.ok, t.all);
    if let Some(a) = info
        .bootargs
        .split_whitespace()
        .find_map(|w| w.strip_prefix("touch="))
    {
        if let Ok(addr) = u64::from_str_radix(a.trim_start_matches("0x"), 16) {
            println!("guest: reading device page {addr:#x}");
            let v = mmio32(addr);
            println!("guest: FAIL: read {v:#x} from a device that is not mine");
        }
    }
    guest::poweroff()
}
