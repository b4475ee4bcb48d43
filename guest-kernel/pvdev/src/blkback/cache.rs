//! The persistent-grant cache of a block back end: the mappings it keeps
//! while the front end offers `feature-persistent`, found in constant time
//! by grant reference (a lookup per segment is on the data path).
//!
//! References below [`GrantCache::INDEXED`] are kept in a table indexed by
//! reference (front ends allocate small references); at most `capacity`
//! mappings are kept in all. A reference the cache refuses (full, or too
//! large) is simply mapped for one request and unmapped after it.

use alloc::vec::Vec;
use hypercall_abi::grant_table::GrantRef;

/// Mappings by grant reference, at most `capacity` of them.
#[derive(Clone, Debug)]
pub struct GrantCache<M> {
    slots: Vec<Option<M>>,
    len: usize,
    capacity: usize,
}

impl<M: Copy> GrantCache<M> {
    /// References `0..INDEXED` can be cached.
    pub const INDEXED: usize = 2048;

    /// An empty cache keeping at most `capacity` mappings.
    pub fn new(capacity: usize) -> Self {
        GrantCache {
            slots: Vec::new(),
            len: 0,
            capacity,
        }
    }

    /// The mapping of `gref`, if cached.
    #[inline]
    pub fn get(&self, gref: GrantRef) -> Option<M> {
        self.slots.get(gref as usize).copied().flatten()
    }

    /// Mappings kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps `m` for `gref`; gives it back when the cache is full, the
    /// reference is not cacheable, or `gref` is already cached (the caller
    /// then uses it for one request only).
    pub fn insert(&mut self, gref: GrantRef, m: M) -> Result<(), M> {
        let i = gref as usize;
        if i >= Self::INDEXED || self.len >= self.capacity || self.get(gref).is_some() {
            return Err(m);
        }
        if self.slots.len() <= i {
            self.slots.resize(i + 1, None);
        }
        self.slots[i] = Some(m);
        self.len += 1;
        Ok(())
    }

    /// Forgets `gref`, returning its mapping.
    pub fn remove(&mut self, gref: GrantRef) -> Option<M> {
        let m = self.slots.get_mut(gref as usize)?.take()?;
        self.len -= 1;
        Some(m)
    }

    /// Forgets everything, returning the mappings (to unmap).
    pub fn drain(&mut self) -> Vec<(GrantRef, M)> {
        let out = core::mem::take(&mut self.slots)
            .into_iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i as GrantRef, m?)))
            .collect();
        self.len = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    #[test]
    fn refuses_when_full_or_out_of_range() {
        let mut c = GrantCache::new(2);
        assert_eq!(c.insert(5, 'a'), Ok(()));
        assert_eq!(c.insert(5, 'b'), Err('b'), "already cached");
        assert_eq!(c.insert(GrantCache::<char>::INDEXED as u32, 'c'), Err('c'));
        assert_eq!(c.insert(u32::MAX, 'd'), Err('d'));
        assert_eq!(c.insert(0, 'e'), Ok(()));
        assert_eq!(c.insert(7, 'f'), Err('f'), "full");
        assert_eq!(
            (c.get(5), c.get(0), c.get(7), c.get(u32::MAX)),
            (Some('a'), Some('e'), None, None)
        );
        assert_eq!(c.remove(5), Some('a'));
        assert_eq!(c.remove(5), None);
        assert_eq!(c.insert(7, 'f'), Ok(()));
        assert_eq!(c.drain(), [(0, 'e'), (7, 'f')]);
        assert!(c.is_empty() && c.get(7).is_none());
    }

    proptest! {
        /// The cache behaves as a map of bounded size over the cacheable
        /// references.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u8..3, prop_oneof![0u32..40, any::<u32>()], any::<u16>()), 0..200), cap in 0usize..20) {
            let mut c = GrantCache::new(cap);
            let mut model = BTreeMap::new();
            for (op, gref, v) in ops {
                match op {
                    0 => {
                        let fits = (gref as usize) < GrantCache::<u16>::INDEXED && model.len() < cap && !model.contains_key(&gref);
                        prop_assert_eq!(c.insert(gref, v).is_ok(), fits);
                        if fits {
                            model.insert(gref, v);
                        }
                    }
                    1 => prop_assert_eq!(c.remove(gref), model.remove(&gref)),
                    _ => prop_assert_eq!(c.get(gref), model.get(&gref).copied()),
                }
                prop_assert_eq!(c.len(), model.len());
                prop_assert!(c.len() <= cap);
            }
            let drained = c.drain();
            prop_assert_eq!(drained, model.into_iter().collect::<Vec<_>>());
        }
    }
}
