//! Recounting every reference from scratch, for tests: the invariants the
//! incremental bookkeeping must keep.

use super::desc::{self, Desc};
use super::sim::SimEnv;
use super::{MmuEnv, PvMmu, Type, ENTRIES, PAGE};

impl PvMmu {
    /// Checks that every count equals a recount from the pins, the bases
    /// and the entries of the validated tables; that no validated entry
    /// reaches outside the domain's RAM or maps a table writable; and that
    /// exactly the validated tables are protected in stage 2.
    pub fn audit(&self, env: &SimEnv) -> Result<(), String> {
        let n = self.frames.len();
        let mut count = vec![0u32; n];
        let mut ty = vec![Type::None; n];
        let mut want = |i: usize, t: Type, why: &str| -> Result<(), String> {
            if count[i] > 0 && ty[i] != t {
                return Err(format!(
                    "frame {i}: needed as {t:?} ({why}) and as {:?}",
                    ty[i]
                ));
            }
            ty[i] = t;
            count[i] += 1;
            Ok(())
        };
        for (i, f) in self.frames.iter().enumerate() {
            if f.pinned {
                let Type::Table(l) = f.ty else {
                    return Err(format!("frame {i}: pinned but {:?}", f.ty));
                };
                want(i, Type::Table(l), "pin")?;
            }
        }
        for b in self.bases.iter().flatten().flatten() {
            let i = self.index(*b).ok_or("base outside RAM")?;
            want(i, Type::Table(0), "base")?;
        }
        for (i, f) in self.frames.iter().enumerate() {
            let Type::Table(level) = f.ty else { continue };
            if f.count == 0 {
                continue;
            }
            let t = self.frame_ipa(i);
            for k in 0..ENTRIES {
                let d = env.read(t + 8 * k);
                match desc::decode(d, level) {
                    Err(e) => return Err(format!("table {t:#x}[{k}] = {d:#x} invalid: {e}")),
                    Ok(Desc::Invalid) => {}
                    Ok(Desc::Table(next)) => {
                        let j = self
                            .index(next)
                            .ok_or(format!("table {t:#x}[{k}] points outside RAM"))?;
                        want(j, Type::Table(level + 1), "table entry")?;
                    }
                    Ok(Desc::Leaf { oa, size, writable }) => {
                        if !desc::exec_ok(d, self.device) {
                            return Err(format!(
                                "table {t:#x}[{k}] = {d:#x} maps Device memory executable"
                            ));
                        }
                        if super::granted_page(oa, size) {
                            continue;
                        }
                        let j = self
                            .index(oa)
                            .ok_or(format!("table {t:#x}[{k}] maps a foreign frame"))?;
                        let m = (size / PAGE) as usize;
                        if j + m > n {
                            return Err(format!("table {t:#x}[{k}] maps past RAM"));
                        }
                        if writable {
                            for x in j..j + m {
                                if matches!(self.frames[x].ty, Type::Table(_))
                                    && self.frames[x].count > 0
                                {
                                    return Err(format!(
                                        "table frame {x} mapped writable by {t:#x}[{k}]"
                                    ));
                                }
                                want(x, Type::Writable, "writable leaf")?;
                            }
                        }
                    }
                }
            }
        }
        for (i, f) in self.frames.iter().enumerate() {
            if f.count != count[i] {
                return Err(format!(
                    "frame {i}: count {} but recount {}",
                    f.count, count[i]
                ));
            }
            if f.count > 0 && f.ty != ty[i] {
                return Err(format!(
                    "frame {i}: type {:?} but needed as {:?}",
                    f.ty, ty[i]
                ));
            }
            if f.count == 0 && (f.ty != Type::None || f.pinned) {
                return Err(format!("frame {i}: unreferenced but {f:?}"));
            }
            let is_table = matches!(f.ty, Type::Table(_)) && f.count > 0;
            if is_table != env.protected.borrow().contains(&self.frame_ipa(i)) {
                return Err(format!(
                    "frame {i}: table {is_table} but stage-2 protection differs"
                ));
            }
        }
        if env
            .protected
            .borrow()
            .iter()
            .any(|p| self.index(*p).is_none())
        {
            return Err("a frame outside RAM is protected".into());
        }
        Ok(())
    }
}
