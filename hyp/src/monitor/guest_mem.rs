//! A domain's memory as hypercall handlers reach it: guest virtual
//! addresses of the calling vCPU (whose EL1 registers are live on this CPU)
//! through its stage-1 tables when its MMU is on, then its P2M.

use super::RealPhys;
use crate::arch::el1;
use crate::mrs;
use crate::pagetable::{MemType, PageTable, PAGE_SIZE};
use hypercall_abi::errno::Errno;

/// The calling domain's memory.
#[derive(Clone, Copy)]
pub(super) struct GuestView {
    /// Its P2M.
    pub p2m: PageTable,
    /// Its RAM (guest-physical base, size).
    pub ram: (u64, u64),
    /// Only its own RAM may hold the buffers (not granted or placed pages).
    pub ram_only: bool,
    /// A guest page already known to be its RAM at this machine page
    /// (MMU off): (page, machine page).
    pub fast: Option<(u64, u64)>,
}

impl GuestView {
    /// Machine address of `gva`, for an access within its page.
    pub fn translate(&self, gva: u64, write: bool) -> Result<u64, Errno> {
        if let Some((page, pa)) = self.fast {
            if gva & !(PAGE_SIZE - 1) == page {
                return Ok(pa + (gva & (PAGE_SIZE - 1)));
            }
        }
        let ipa = if mrs!("sctlr_el1") & 1 != 0 && mrs!("hcr_el2") & el1::HCR_DC == 0 {
            el1::gva_to_ipa(gva, write).ok_or(Errno::EFAULT)?
        } else {
            gva
        };
        if self.ram_only && (ipa < self.ram.0 || ipa - self.ram.0 >= self.ram.1) {
            return Err(Errno::EFAULT);
        }
        let (pa, attrs, _) = self.p2m.translate(&RealPhys, ipa).ok_or(Errno::EFAULT)?;
        if attrs.mem != MemType::Normal || (write && !attrs.write) {
            return Err(Errno::EFAULT);
        }
        Ok(pa)
    }

    /// Calls `f(pa, offset, len)` for each page-sized piece of
    /// `[gva, gva+len)`, after checking that every piece is accessible
    /// (nothing is done if one is not).
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

    /// Copies guest memory at `gva` into `buf`.
    pub fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if buf.len() <= 32 && gva % PAGE_SIZE + buf.len() as u64 <= PAGE_SIZE {
            // A short argument in one page: byte loads, no call to memcpy.
            let pa = self.translate(gva, false)?;
            for (i, b) in buf.iter_mut().enumerate() {
                // SAFETY: `pa..pa+len` is the guest's readable memory
                // (checked through its P2M), within one page,
                // identity-mapped at EL2.
                *b = unsafe { core::ptr::read_volatile((pa + i as u64) as *const u8) };
            }
            return Ok(());
        }
        let p = buf.as_mut_ptr();
        self.pieces(gva, buf.len(), false, |pa, off, n| {
            // SAFETY: `pa..pa+n` is the guest's memory (checked through its
            // P2M), identity-mapped at EL2; `off+n <= buf.len()`.
            unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, p.add(off), n) }
        })
    }

    /// Copies `data` to guest memory at `gva`; nothing is written on error.
    pub fn write(&self, gva: u64, data: &[u8]) -> Result<(), Errno> {
        self.pieces(gva, data.len(), true, |pa, off, n| {
            // SAFETY: as in `read`, for writable guest memory.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr().add(off), pa as *mut u8, n) }
        })
    }
}
