//! The monitor's side of the PV MMU: each domain's `PvMmu` (created on
//! first use, when its RAM is remapped with pages in stage 2), the machine
//! hooks the validator uses, trapped EL1 translation-register writes
//! (HCR_EL2.TVM) and trapped stores into protected tables.

use super::{Domain, Monitor, RealPhys};
use crate::arch::el1;
use crate::arch::pvmmu as cpu;
use crate::builder;
use crate::builder::DomainMemory;
use crate::esr::Esr;
use crate::frames::Frames;
use crate::pvmmu::sysreg::{self, Decision, Reg};
use crate::pvmmu::{desc, trap, MmuEnv, PvMmu, Ttbr, Words};
use crate::sched::VcpuId;
use crate::{mrs, println};
use hypercall_abi::errno::Errno;

/// Guest memory through the domain's P2M, with stage-2 protection.
struct LiveEnv<'a> {
    mem: &'a DomainMemory,
}

impl LiveEnv<'_> {
    fn pa(&self, ipa: u64) -> Option<u64> {
        self.mem.ram_pa(ipa)
    }
}

impl MmuEnv for LiveEnv<'_> {
    #[inline]
    fn read(&self, ipa: u64) -> u64 {
        match self.pa(ipa) {
            // SAFETY: `pa` is the domain's RAM (its P2M says so),
            // identity-mapped at EL2; `ipa` is 8-byte aligned.
            Some(pa) => unsafe { (pa as *const u64).read_volatile() },
            None => 0,
        }
    }
    #[inline]
    fn write(&self, ipa: u64, val: u64) {
        if let Some(pa) = self.pa(ipa) {
            // SAFETY: as in `read`.
            unsafe { (pa as *mut u64).write_volatile(val) }
        }
    }
    fn protect(&self, ipa: u64, table: bool) {
        // RAM is mapped with pages once the PV MMU exists, so this cannot
        // fail for a frame of the domain's RAM (the only ones passed).
        let _ = self.mem.p2m.set_page_write(&mut RealPhys, ipa, !table);
        cpu::flush_ipa(ipa);
    }
    #[inline]
    fn frame(&self, ipa: u64) -> Option<&Words> {
        let pa = self.pa(ipa & !0xfff)?;
        // SAFETY: `pa` is a page-aligned frame of the domain's RAM (its
        // P2M says so), identity-mapped at EL2 and owned by the domain for
        // at least as long as `self.mem` is borrowed. `AtomicU64` has the
        // size and alignment of `u64`; the guest's own concurrent stores are
        // what the atomics are for.
        Some(unsafe { &*(pa as *const Words) })
    }
    fn vector_ipa(&self, gva: u64) -> Option<u64> {
        // The running vCPU's EL1 registers are live: its MMU state decides
        // (as in `LiveGuest::translate`).
        let ipa = if mrs!("sctlr_el1") & 1 != 0 && mrs!("hcr_el2") & (1 << 12) == 0 {
            el1::gva_to_ipa(gva, false)?
        } else {
            gva
        };
        self.pa(ipa).map(|_| ipa)
    }
}

/// Runs `f` on the domain's PV MMU, creating it on first use.
pub(super) fn with_mmu(
    dom: &mut Domain,
    frames: &mut Frames,
    f: &mut dyn FnMut(&mut PvMmu, &mut dyn MmuEnv),
) -> Result<(), Errno> {
    let mem = dom.mem.as_mut().ok_or(Errno::EFAULT)?;
    if dom.pvmmu.is_none() {
        builder::split_ram(&mut RealPhys, frames, mem).map_err(|_| Errno::ENOMEM)?;
        crate::arch::stage2::flush_vmid(mem.p2m.root, dom.vmid);
        dom.pvmmu = Some(PvMmu::new(mem.ram.0, mem.ram.1, dom.vcpus.len().max(1)));
    }
    let mut env = LiveEnv { mem: &*mem };
    match dom.pvmmu.as_mut() {
        Some(m) => {
            f(m, &mut env);
            Ok(())
        }
        None => Err(Errno::ENOSYS),
    }
}

/// Loads a TTBR of the running vCPU.
pub(super) fn load_ttbr(which: Ttbr, val: u64) {
    let reg = match which {
        Ttbr::Ttbr0 => Reg::Ttbr0,
        Ttbr::Ttbr1 => Reg::Ttbr1,
    };
    cpu::write_el1(reg, val);
}

/// Invalidates the running domain's stage-1 TLB entries.
pub(super) fn tlb_flush(va: Option<u64>) {
    cpu::flush_stage1(va);
}

/// Prints a domain's PV MMU counters when it ends (if it used one).
pub(super) fn report(d: &Domain) {
    if let Some(m) = &d.pvmmu {
        let s = m.stats;
        println!(
            "hyp: dom{} ({}): pv mmu: {} updates, {} trapped stores, {} refused, {} tables validated, {} continued",
            d.id, d.name, s.updates, s.trapped, s.refused, s.validated, s.continued
        );
    }
}

impl Monitor {
    fn reg_value(&mut self, c: usize, rt: u8) -> u64 {
        if rt >= 31 {
            0
        } else {
            self.regs(c).x[rt as usize]
        }
    }

    /// A trapped MSR/MRS (HCR_EL2.TVM traps writes of the EL1 translation
    /// registers): done if the rules allow it, else an undefined-instruction
    /// exception for the guest.
    pub(super) fn sysreg_trap(&mut self, c: usize, cur: VcpuId, esr: Esr) {
        let a = sysreg::decode(esr.iss());
        let r = match a.reg {
            Some(reg) if a.write => {
                let v = self.reg_value(c, a.rt);
                self.sysreg_write(c, cur, reg, v)
            }
            _ => Err(Errno::ENOSYS),
        };
        let regs = self.regs(c);
        match r {
            Ok(()) => regs.elr += 4,
            Err(_) => cpu::inject_sync(regs, cpu::ESR_UNDEF, 0),
        }
    }

    fn sysreg_write(&mut self, c: usize, cur: VcpuId, reg: Reg, val: u64) -> Result<(), Errno> {
        let i = self.dom_index(cur.dom).ok_or(Errno::ESRCH)?;
        let v = cur.vcpu as usize;
        let d = &mut self.domains[i];
        let bases = d.pvmmu.as_ref().map_or([false; 2], |m| {
            [
                m.base(v, Ttbr::Ttbr0).is_some(),
                m.base(v, Ttbr::Ttbr1).is_some(),
            ]
        });
        if let Decision::Base(which, ipa) = sysreg::check(reg, val, cpu::tcr_el1(), bases)? {
            let mut r = Ok(());
            with_mmu(d, &mut self.frames, &mut |m, env| {
                r = m.set_base(env, v, which, ipa)
            })?;
            r?;
        }
        if let Some(m) = d.pvmmu.as_mut() {
            match reg {
                // Descriptors are validated against the domain's MAIR.
                Reg::Mair => m.set_mair(val)?,
                // The MMU goes on only with this vCPU's MAIR of the same
                // classes as the one descriptors were validated against.
                Reg::Sctlr if sysreg::mmu_on(val) => {
                    if desc::device_mask(mrs!("mair_el1")) != m.device_mask() {
                        return Err(Errno::EINVAL);
                    }
                }
                _ => {}
            }
        }
        cpu::write_el1(reg, val);
        if reg == Reg::Sctlr {
            // HCR_EL2.DC follows (written before the guest resumes).
            super::fast::FAST[c]
                .dc
                .store(!sysreg::mmu_on(val), core::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// A trapped store without a syndrome (`stp`, or `str`/`stp` with
    /// writeback): fetches the instruction at ELR (translated like a
    /// hypercall buffer), decodes it ([`trap::decode_store`]), checks that
    /// the address it forms from the registers is the faulting one (within
    /// the faulting page), emulates it through the validator and writes the
    /// base register back. Nothing changes if any step fails.
    #[inline(never)]
    fn decoded_table_store(&mut self, c: usize, i: usize, far: u64, ipa: u64) -> Result<(), Errno> {
        let elr = self.regs(c).elr;
        let mem = self.domains[i].mem.as_ref().ok_or(Errno::EFAULT)?;
        let pc = if mrs!("sctlr_el1") & 1 != 0 && mrs!("hcr_el2") & (1 << 12) == 0 {
            el1::gva_to_ipa(elr, false).ok_or(Errno::EFAULT)?
        } else {
            elr
        };
        if pc % 4 != 0 {
            return Err(Errno::EINVAL);
        }
        let pa = mem.ram_pa(pc).ok_or(Errno::EFAULT)?;
        // SAFETY: `pa` is 4-byte aligned guest RAM (the P2M says so),
        // identity-mapped at EL2.
        let insn = unsafe { (pa as *const u32).read_volatile() };
        let st = trap::decode_store(insn)?;
        let xn = self.reg_value(c, st.rn);
        let (va, wb) = st.address(xn);
        let at = trap::store_ipa(va, st.size(), far, ipa)?;
        let vals = [self.reg_value(c, st.rt[0]), self.reg_value(c, st.rt[1])];
        let mut r = Ok(());
        let d = &mut self.domains[i];
        with_mmu(d, &mut self.frames, &mut |m, env| {
            r = if st.pair {
                m.trapped_pair(env, at, vals)
            } else {
                m.trapped_store(env, at, vals[0])
            }
        })?;
        r?;
        if let Some(v) = wb {
            self.regs(c).x[st.rn as usize] = v;
        }
        Ok(())
    }

    /// A stage-2 permission fault: if it is a store into one of the
    /// domain's protected tables, emulate it through the validator (and
    /// step over it) or, if refused, give the guest the permission fault.
    /// Returns false for any other fault.
    pub(super) fn table_store(&mut self, c: usize, cur: VcpuId, esr: Esr) -> bool {
        if !(0x0d..=0x0f).contains(&esr.fault_status()) {
            return false;
        }
        let Some(i) = self.dom_index(cur.dom) else {
            return false;
        };
        let far = mrs!("far_el2");
        let ipa = trap::fault_ipa(mrs!("hpfar_el2"), far);
        if !self.domains[i]
            .pvmmu
            .as_ref()
            .is_some_and(|m| m.is_table(ipa))
        {
            return false;
        }
        let r = if trap::needs_decode(esr.0) {
            self.decoded_table_store(c, i, far, ipa)
        } else {
            trap::store_register(esr.0, ipa).and_then(|rt| {
                let val = self.reg_value(c, rt);
                let mut r = Ok(());
                let d = &mut self.domains[i];
                with_mmu(d, &mut self.frames, &mut |m, env| {
                    r = env.trapped_store(m, ipa, val)
                })?;
                r
            })
        };
        match r {
            Ok(()) => self.regs(c).elr += 4,
            Err(e) => {
                println!(
                    "hyp: dom{}: refused a direct store into the table at {ipa:#x} ({e}, ESR {:#x})",
                    cur.dom, esr.0
                );
                let regs = self.regs(c);
                let from_el0 = regs.spsr & 0xf == 0;
                cpu::inject_sync(regs, cpu::esr_write_fault(from_el0), far);
            }
        }
        true
    }
}
