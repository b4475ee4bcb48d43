use super::*;
use crate::fdt_writer::FdtWriter;
use alloc::vec::Vec;
use proptest::prelude::*;

const VIRT_V3: &[u8] = include_bytes!("../../testdata/qemu-virt-gicv3.dtb");
const VIRT_V2: &[u8] = include_bytes!("../../testdata/qemu-virt-gicv2.dtb");
const RPI4: &[u8] = include_bytes!("../../testdata/bcm2711-rpi-4-b.dtb");
const FIXTURES: [&[u8]; 3] = [VIRT_V3, VIRT_V2, RPI4];

fn r(base: u64, size: u64) -> MemRange {
    MemRange::new(base, size)
}

#[test]
fn mem_range_helpers() {
    let m = r(0x1000, 0x100);
    assert_eq!(m.end(), 0x1100);
    assert!(m.contains(0x1000) && m.contains(0x10ff));
    assert!(!m.contains(0xfff) && !m.contains(0x1100));
    assert!(!r(5, 0).contains(5));
    assert_eq!(r(u64::MAX, 2).end(), u64::MAX);
    assert!(r(u64::MAX - 1, 2).contains(u64::MAX));
}

#[test]
fn total_size_reads_header() {
    for f in FIXTURES {
        assert_eq!(total_size(f), Some(f.len()));
        assert_eq!(total_size(&f[..40]), Some(f.len()));
    }
    assert_eq!(total_size(&[0; 40]), None);
    assert_eq!(total_size(&[0xd0, 0x0d, 0xfe]), None);
    assert_eq!(total_size(&[0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 8]), None);
}

#[test]
fn qemu_virt_gicv3() {
    let m = parse(VIRT_V3).unwrap();
    // QEMU virt's 32 virtio-mmio transports: 0x200 apart from 0x0a00_0000,
    // SPIs 16..48 (INTID 48..80), each once.
    assert_eq!(m.virtio_mmio.len(), 32);
    let mut seen: Vec<(u64, u32)> = m.virtio_mmio.iter().map(|(r, i)| (r.base, *i)).collect();
    seen.sort();
    for (n, (base, intid)) in seen.iter().enumerate() {
        assert_eq!(*base, 0x0a00_0000 + 0x200 * n as u64);
        assert_eq!(*intid, 48 + n as u32);
    }
    assert!(m.virtio_mmio.iter().all(|(r, _)| r.size == 0x200));
    assert_eq!(m.model.as_str(), "linux,dummy-virt");
    assert_eq!(m.compatible.as_str(), "linux,dummy-virt");
    assert_eq!(m.memory.as_slice(), &[r(0x4000_0000, 0x2000_0000)]);
    assert!(m.reserved.is_empty());
    let u = m.uart.unwrap();
    assert_eq!(
        u,
        UartInfo {
            base: 0x0900_0000,
            size: 0x1000,
            compatible: UartKind::Pl011,
            intid: Some(33),
        }
    );
    let g = m.gic.unwrap();
    assert_eq!(g.version, GicVersion::V3);
    assert_eq!(g.gicd, r(0x0800_0000, 0x1_0000));
    assert_eq!(g.gicr, Some(r(0x080a_0000, 0xf6_0000)));
    // QEMU's GICv3 node lists no GICC/GICH/GICV.
    assert_eq!((g.gicc, g.gich, g.gicv), (None, None, None));
    assert_eq!(g.maintenance_intid, Some(25));
    let t = m.timer.unwrap();
    assert_eq!(
        (t.sec_phys_intid, t.phys_intid, t.virt_intid, t.hyp_intid),
        (29, 30, 27, 26)
    );
    assert_eq!(t.frequency, None);
    assert_eq!(m.psci, Some(PsciMethod::Smc));
    assert_eq!(m.cpus.len(), 4);
    for (i, c) in m.cpus.iter().enumerate() {
        assert_eq!(c.mpidr, i as u64);
        assert_eq!(c.enable, CpuEnable::Psci);
    }
    assert_eq!(m.bootargs.as_str(), "");
    assert_eq!(m.power, None);
}

#[test]
fn qemu_virt_gicv2() {
    let m = parse(VIRT_V2).unwrap();
    let g = m.gic.unwrap();
    assert_eq!(g.version, GicVersion::V2);
    assert_eq!(g.gicd, r(0x0800_0000, 0x1_0000));
    assert_eq!(g.gicc, Some(r(0x0801_0000, 0x1_0000)));
    assert_eq!(g.gich, Some(r(0x0803_0000, 0x1_0000)));
    assert_eq!(g.gicv, Some(r(0x0804_0000, 0x1_0000)));
    assert_eq!(g.gicr, None);
    assert_eq!(g.maintenance_intid, Some(25));
    assert_eq!(m.uart.unwrap().base, 0x0900_0000);
    assert_eq!(m.memory.as_slice(), &[r(0x4000_0000, 0x2000_0000)]);
    let t = m.timer.unwrap();
    assert_eq!(
        (t.sec_phys_intid, t.phys_intid, t.virt_intid, t.hyp_intid),
        (29, 30, 27, 26)
    );
    assert_eq!(m.psci, Some(PsciMethod::Smc));
    // This fixture was dumped with -smp 1, and QEMU then gives the CPU no
    // enable-method at all.
    assert_eq!(
        m.cpus.as_slice(),
        &[CpuInfo {
            mpidr: 0,
            enable: CpuEnable::Unknown
        }]
    );
}

#[test]
fn raspberry_pi_4() {
    let m = parse(RPI4).unwrap();
    assert_eq!(m.model.as_str(), "Raspberry Pi 4 Model B");
    assert_eq!(m.compatible.as_str(), "raspberrypi,4-model-b");
    // The stock tree's memory node is a placeholder the firmware fills in:
    // memory@0 { reg = <0 0 0>; }.
    assert_eq!(m.memory.as_slice(), &[r(0, 0)]);
    // /memreserve/ 0x0 0x1000 (the spin tables); the reserved-memory
    // children are either dynamic (linux,cma) or disabled (nvram@0).
    assert_eq!(m.reserved.as_slice(), &[r(0, 0x1000)]);
    // stdout-path = "serial1:115200n8" is the mini UART; the PL011 serial0
    // is taken through the fallback.
    let u = m.uart.unwrap();
    assert_eq!(
        u,
        UartInfo {
            base: 0xfe20_1000,
            size: 0x200,
            compatible: UartKind::Pl011,
            intid: Some(32 + 0x79),
        }
    );
    let g = m.gic.unwrap();
    assert_eq!(g.version, GicVersion::V2);
    assert_eq!(g.gicd, r(0xff84_1000, 0x1000));
    assert_eq!(g.gicc, Some(r(0xff84_2000, 0x2000)));
    assert_eq!(g.gich, Some(r(0xff84_4000, 0x2000)));
    assert_eq!(g.gicv, Some(r(0xff84_6000, 0x2000)));
    assert_eq!(g.maintenance_intid, Some(25));
    let t = m.timer.unwrap();
    assert_eq!(
        (t.sec_phys_intid, t.phys_intid, t.virt_intid, t.hyp_intid),
        (29, 30, 27, 26)
    );
    assert_eq!(m.psci, None);
    let rel: Vec<_> = m.cpus.iter().map(|c| (c.mpidr, c.enable)).collect();
    assert_eq!(
        rel,
        [0xd8, 0xe0, 0xe8, 0xf0]
            .iter()
            .enumerate()
            .map(|(i, &a)| (i as u64, CpuEnable::SpinTable { release_addr: a }))
            .collect::<Vec<_>>()
    );
    assert_eq!(m.power, Some(r(0xfe10_0000, 0x114)));
    assert_eq!(m.bootargs.as_str(), "");
}

#[test]
fn translation_rpi4() {
    let reg = |p: &str, i: usize| node_reg(RPI4, p, i).unwrap();
    // /soc: 0x7e000000 -> 0xfe000000, 0x40000000 -> 0xff800000
    assert_eq!(reg("/soc/serial@7e201000", 0), Some(r(0xfe20_1000, 0x200)));
    assert_eq!(reg("/soc/serial@7e215040", 0), Some(r(0xfe21_5040, 0x40)));
    assert_eq!(
        reg("/soc/interrupt-controller@40041000", 3),
        Some(r(0xff84_6000, 0x2000))
    );
    assert_eq!(reg("/soc/interrupt-controller@40041000", 4), None);
    assert_eq!(
        node_reg_count(RPI4, "/soc/interrupt-controller@40041000").unwrap(),
        4
    );
    assert_eq!(reg("/soc/watchdog@7e100000", 1), Some(r(0xfe00_a000, 0x24)));
    assert_eq!(reg("/soc/watchdog@7e100000", 2), Some(r(0xfec1_1000, 0x20)));
    // unit address may be left out
    assert_eq!(reg("/soc/watchdog", 0), Some(r(0xfe10_0000, 0x114)));
    // 2-cell child addresses on /emmc2bus and /scb
    assert_eq!(
        reg("/emmc2bus/mmc@7e340000", 0),
        Some(r(0xfe34_0000, 0x100))
    );
    assert_eq!(reg("/scb/pcie@7d500000", 0), Some(r(0xfd50_0000, 0x9310)));
    // reserved-memory has an empty ranges (identity) and 2/1 cells
    assert_eq!(reg("/reserved-memory/nvram@0", 0), Some(r(0, 0)));
    assert_eq!(reg("/memory@0", 0), Some(r(0, 0)));
    assert_eq!(reg("/soc", 0), None);
    assert_eq!(
        node_reg(RPI4, "/soc/nonexistent", 0),
        Err(DtError::NotFound)
    );
}

#[test]
fn translation_qemu_virt() {
    let reg = |p: &str, i: usize| node_reg(VIRT_V3, p, i).unwrap();
    assert_eq!(reg("/pl011@9000000", 0), Some(r(0x0900_0000, 0x1000)));
    // the ITS sits under the GIC node, whose ranges is empty (identity)
    assert_eq!(
        reg("/intc@8000000/its@8080000", 0),
        Some(r(0x0808_0000, 0x2_0000))
    );
    assert_eq!(reg("/intc@8000000", 1), Some(r(0x080a_0000, 0xf6_0000)));
    assert_eq!(reg("/flash@0", 1), Some(r(0x0400_0000, 0x0400_0000)));
    assert_eq!(
        reg("/pcie@10000000", 0),
        Some(r(0x40_1000_0000, 0x1000_0000))
    );
    let reg2 = |p: &str, i: usize| node_reg(VIRT_V2, p, i).unwrap();
    assert_eq!(reg2("/intc@8000000", 3), Some(r(0x0804_0000, 0x1_0000)));
    assert_eq!(
        reg2("/intc@8000000/v2m@8020000", 0),
        Some(r(0x0802_0000, 0x1000))
    );
}

// ---------------------------------------------------------------------------
// Crafted trees

fn pl011(w: &mut FdtWriter, name: &str, reg: &[u32], status: Option<&str>) {
    let n = w.begin_node(name).unwrap();
    w.property_string_list("compatible", &["arm,pl011", "arm,primecell"])
        .unwrap();
    w.property_cells("reg", reg).unwrap();
    if let Some(s) = status {
        w.property_string("status", s).unwrap();
    }
    w.end_node(n).unwrap();
}

#[test]
fn multi_level_translation_and_missing_ranges() {
    let mut w = FdtWriter::new();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    {
        // no ranges: children are not translatable
        let b = w.begin_node("nobus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        pl011(&mut w, "uart@1000", &[0x1000, 0x100], None);
        w.end_node(b).unwrap();
    }
    {
        let b1 = w.begin_node("bus1").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        // child 0x0.. -> parent 0x1_8000_0000 (2 cells), size 0x1000_0000
        w.property_cells("ranges", &[0, 1, 0x8000_0000, 0x1000_0000])
            .unwrap();
        let b2 = w.begin_node("bus2").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        // two windows; the second maps child 5:0x100.. to bus1 0x2000
        w.property_cells("ranges", &[0, 0, 0x0, 0x10, 5, 0x100, 0x2000, 0x1000])
            .unwrap();
        pl011(&mut w, "uart@5,180", &[5, 0x180, 0x10], None);
        pl011(&mut w, "uart@6,0", &[6, 0, 0x10], None);
        w.end_node(b2).unwrap();
        w.end_node(b1).unwrap();
    }
    pl011(&mut w, "serial@9000000", &[0, 0x0900_0000, 0x1000], None);
    w.end_node(root).unwrap();
    let blob = w.finish().unwrap();

    assert_eq!(
        node_reg(&blob, "/nobus/uart@1000", 0),
        Err(DtError::NotTranslatable)
    );
    assert_eq!(
        node_reg(&blob, "/bus1/bus2/uart@5,180", 0),
        Ok(Some(r(0x1_8000_2080, 0x10)))
    );
    assert_eq!(
        node_reg(&blob, "/bus1/bus2/uart@6,0", 0),
        Err(DtError::NotTranslatable)
    );
    // the untranslatable PL011 is skipped; the first usable one is taken
    let m = parse(&blob).unwrap();
    assert_eq!(m.uart.unwrap().base, 0x1_8000_2080);
}

fn uart_tree(stdout: &str, bootargs: Option<&str>) -> Vec<u8> {
    let mut w = FdtWriter::new();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let a = w.begin_node("aliases").unwrap();
    w.property_string("serial0", "/soc/uart@1000").unwrap();
    w.property_string("serial1", "/soc/uart@2000").unwrap();
    w.property_string("serial2", "/soc/uart@3000").unwrap();
    w.property_string("bus", "/soc").unwrap();
    w.end_node(a).unwrap();
    let c = w.begin_node("chosen").unwrap();
    w.property_string("stdout-path", stdout).unwrap();
    if let Some(b) = bootargs {
        w.property_string("bootargs", b).unwrap();
    }
    w.end_node(c).unwrap();
    let soc = w.begin_node("soc").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_null("ranges").unwrap();
    pl011(&mut w, "uart@1000", &[0x1000, 0x100], None);
    pl011(&mut w, "uart@2000", &[0x2000, 0x100], Some("okay"));
    pl011(&mut w, "uart@3000", &[0x3000, 0x100], Some("disabled"));
    w.end_node(soc).unwrap();
    let cpus = w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    for (i, mpidr) in [0u64, 0x1_0000_0100].iter().enumerate() {
        let cpu = w.begin_node(&alloc::format!("cpu@{i}")).unwrap();
        w.property_string("device_type", "cpu").unwrap();
        w.property_u64("reg", *mpidr).unwrap();
        w.property_string("enable-method", "spin-table").unwrap();
        w.property_u64("cpu-release-addr", 0x8000_0000_0000 + i as u64)
            .unwrap();
        w.end_node(cpu).unwrap();
    }
    let cpu = w.begin_node("cpu@2").unwrap();
    w.property_string("device_type", "cpu").unwrap();
    w.property_u64("reg", 2).unwrap();
    w.end_node(cpu).unwrap();
    w.end_node(cpus).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

#[test]
fn stdout_path_resolution() {
    let base = |s: &str| parse(&uart_tree(s, None)).unwrap().uart.map(|u| u.base);
    assert_eq!(base("serial1:115200n8"), Some(0x2000));
    assert_eq!(base("serial1"), Some(0x2000));
    assert_eq!(base("/soc/uart@2000:115200"), Some(0x2000));
    assert_eq!(base("bus/uart@2000"), Some(0x2000));
    // disabled or unknown targets fall back to the first enabled PL011
    assert_eq!(base("serial2"), Some(0x1000));
    assert_eq!(base("nosuchalias"), Some(0x1000));
    assert_eq!(base(""), Some(0x1000));
}

#[test]
fn two_cell_cpu_ids_and_spin_table() {
    let m = parse(&uart_tree("serial0", None)).unwrap();
    assert_eq!(
        m.cpus.as_slice(),
        &[
            CpuInfo {
                mpidr: 0,
                enable: CpuEnable::SpinTable {
                    release_addr: 0x8000_0000_0000
                }
            },
            CpuInfo {
                mpidr: 0x1_0000_0100,
                enable: CpuEnable::SpinTable {
                    release_addr: 0x8000_0000_0001
                }
            },
            CpuInfo {
                mpidr: 2,
                enable: CpuEnable::Unknown
            },
        ]
    );
}

#[test]
fn bootargs_limits() {
    let ok = "x".repeat(512);
    let m = parse(&uart_tree("serial0", Some(&ok))).unwrap();
    assert_eq!(m.bootargs.as_str(), ok);
    let m = parse(&uart_tree("serial0", Some("console=ttyAMA0 earlycon"))).unwrap();
    assert_eq!(m.bootargs.as_str(), "console=ttyAMA0 earlycon");
    let long = "x".repeat(513);
    assert_eq!(
        parse(&uart_tree("serial0", Some(&long))),
        Err(DtError::BootargsTooLong)
    );
}

#[test]
fn too_many_memory_ranges_is_an_error() {
    let mut w = FdtWriter::new();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let mem = w.begin_node("memory@0").unwrap();
    w.property_string("device_type", "memory").unwrap();
    let cells: Vec<u32> = (0..9).flat_map(|i| [i * 0x1000_0000, 0x100_0000]).collect();
    w.property_cells("reg", &cells).unwrap();
    w.end_node(mem).unwrap();
    w.end_node(root).unwrap();
    let blob = w.finish().unwrap();
    assert_eq!(parse(&blob), Err(DtError::TooMany("memory")));
}

// ---------------------------------------------------------------------------
// Malformed input

#[test]
fn header_errors() {
    assert_eq!(parse(&[]), Err(DtError::Truncated));
    assert_eq!(parse(&[0; 64]), Err(DtError::BadMagic));
    let mut v = VIRT_V3.to_vec();
    v[20..24].copy_from_slice(&15u32.to_be_bytes());
    assert_eq!(parse(&v), Err(DtError::BadVersion));
    let mut v = VIRT_V3.to_vec();
    v[8..12].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    assert_eq!(parse(&v), Err(DtError::BadHeader));
    assert_eq!(
        parse(&VIRT_V3[..VIRT_V3.len() - 1]),
        Err(DtError::Truncated)
    );
    // trailing bytes past totalsize are fine
    let mut v = VIRT_V3.to_vec();
    v.extend_from_slice(&[0xff; 100]);
    assert!(parse(&v).is_ok());
}

#[test]
fn truncation_never_panics() {
    for f in FIXTURES {
        for len in (0..f.len()).step_by(7).chain(0..64) {
            assert!(parse(&f[..len]).is_err(), "len {len}");
        }
    }
}

/// Pretends the blob is shorter by rewriting `totalsize` and the block sizes,
/// so truncation reaches the structure parser instead of the header check.
#[test]
fn shrunken_header_never_panics() {
    for f in FIXTURES {
        for cut in (0..f.len()).step_by(13) {
            let mut v = f[..cut.max(40)].to_vec();
            let len = v.len() as u32;
            v[4..8].copy_from_slice(&len.to_be_bytes());
            let off_struct = u32::from_be_bytes(v[8..12].try_into().unwrap());
            v[36..40].copy_from_slice(&len.saturating_sub(off_struct).to_be_bytes());
            let _ = parse(&v);
            let _ = node_reg(&v, "/soc/serial@7e201000", 0);
        }
    }
}

#[test]
fn byte_flips_never_panic() {
    for f in FIXTURES {
        let mut v = f.to_vec();
        // every header/reservation-map byte, then a stride through the rest
        for i in (0..128).chain((128..v.len()).step_by(11)) {
            for x in [0xff, 0x01, 0x80] {
                v[i] ^= x;
                let _ = parse(&v);
                v[i] ^= x;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_mutations_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16),
        cut in any::<usize>(),
    ) {
        let mut v = FIXTURES[which].to_vec();
        for (pos, byte) in edits {
            let i = pos % v.len();
            v[i] = byte;
        }
        let _ = parse(&v);
        let _ = node_reg(&v, "/soc/serial@7e201000", 0);
        let cut = cut % (v.len() + 1);
        let _ = parse(&v[..cut]);
    }

    #[test]
    fn random_cell_values_never_panic(
        which in 0usize..3,
        words in proptest::collection::vec((any::<usize>(), prop_oneof![
            Just(0u32), Just(1), Just(2), Just(3), Just(4), Just(9), Just(0xffff_ffff), any::<u32>()
        ]), 1..8),
    ) {
        // 4-byte aligned rewrites hit tokens, lengths and cell values.
        let mut v = FIXTURES[which].to_vec();
        for (pos, word) in words {
            let i = (pos % (v.len() / 4)) * 4;
            v[i..i + 4].copy_from_slice(&word.to_be_bytes());
        }
        let _ = parse(&v);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&bytes);
        let _ = total_size(&bytes);
    }
}

#[test]
fn non_pl011_stdout_reported_when_no_pl011() {
    let mut w = FdtWriter::new();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let c = w.begin_node("chosen").unwrap();
    w.property_string("stdout-path", "/serial@215040:115200n8")
        .unwrap();
    w.end_node(c).unwrap();
    let u = w.begin_node("serial@215040").unwrap();
    w.property_string("compatible", "brcm,bcm2835-aux-uart")
        .unwrap();
    w.property_cells("reg", &[0x21_5040, 0x40]).unwrap();
    w.property_cells("interrupts", &[0, 0x5d, 4]).unwrap();
    w.end_node(u).unwrap();
    w.end_node(root).unwrap();
    let m = parse(&w.finish().unwrap()).unwrap();
    assert_eq!(
        m.uart,
        Some(UartInfo {
            base: 0x21_5040,
            size: 0x40,
            compatible: UartKind::Other,
            intid: Some(32 + 0x5d),
        })
    );
}
