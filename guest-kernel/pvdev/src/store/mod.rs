//! The device store: a xenstore-like tree of nodes (a path, a value, and
//! permissions), watches, transactions, and (in [`wire`]) the protocol
//! that domains speak over their store ring.
//!
//! # Permissions
//!
//! Each node has a list of [`Perm`]s as Xen's: the first names the
//! *owner* (who may do anything) and the access everyone else gets by
//! default; later entries give specific domains specific access. A
//! *privileged* domain ([`Store::set_privileged`]: the toolstack, the
//! driver domain) may do anything anywhere. A new node inherits its
//! parent's permissions, with the creating domain as owner when it is not
//! privileged. Reading needs read access to the node; writing, creating
//! (on the nearest existing ancestor), removing and setting permissions
//! need write access. So a domain may use its home
//! `/local/domain/<id>` (which [`Store::introduce`] gives it) and what
//! the toolstack granted, and nothing else.
//!
//! # Watches
//!
//! [`Store::watch`] registers `(path, token)`; it fires at once, and then
//! whenever a node at or below `path` is written, created or removed
//! (removal fires for every removed node's watchers too), provided the
//! watcher may read the node. Events queue per domain
//! ([`Store::take_events`]). The paths `@introduceDomain` and
//! `@releaseDomain` fire on [`Store::introduce`] and [`Store::release`].
//!
//! # Transactions
//!
//! [`Store::transaction_start`] snapshots the tree; operations with that
//! transaction id see and change only the snapshot. At
//! [`Store::transaction_end`] with commit, if any node the transaction
//! read or changed was changed by someone else meanwhile (generation
//! counters), nothing is applied and the answer is `EAGAIN`; otherwise the
//! changes are applied at once and watches fire.
//!
//! # Limits
//!
//! Path lengths (Xen's 3072 absolute, 2048 relative), value size, nodes
//! owned per unprivileged domain, watches and transactions per domain
//! ([`Limits`]). Every refusal is an [`XsError`] and leaves the store
//! unchanged.
//!
//! ```
//! use pvdev::store::{Store, Limits};
//! let mut s = Store::new(Limits::default());
//! s.set_privileged(0, true);
//! s.introduce(1).unwrap();
//! s.write(1, 0, "device/vbd/0/state", b"1").unwrap();          // relative to /local/domain/1
//! assert_eq!(s.read(0, 0, "/local/domain/1/device/vbd/0/state").unwrap(), b"1");
//! assert_eq!(s.read(2, 0, "/local/domain/1/device").unwrap_err().name(), "EACCES");
//! ```

pub mod path;
#[cfg(test)]
mod tests;
pub mod wire;

use crate::DomId;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
pub use hypercall_abi::io::xs_wire::XsError;
use hypercall_abi::io::xs_wire::{
    XENSTORE_ABS_PATH_MAX, XENSTORE_PAYLOAD_MAX, XENSTORE_REL_PATH_MAX,
};

/// Read access.
pub const PERM_READ: u8 = 1;
/// Write access.
pub const PERM_WRITE: u8 = 2;

/// One permission entry: `dom` gets `access` (`PERM_*` bits). On the wire
/// a letter and the domain id: `n5` none, `r5` read, `w5` write, `b5` both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// The domain.
    pub dom: DomId,
    /// `PERM_READ | PERM_WRITE` bits.
    pub access: u8,
}

impl Perm {
    /// Parses `n5`/`r5`/`w5`/`b5`.
    pub fn parse(s: &str) -> Option<Perm> {
        let access = match s.as_bytes().first()? {
            b'n' => 0,
            b'r' => PERM_READ,
            b'w' => PERM_WRITE,
            b'b' => PERM_READ | PERM_WRITE,
            _ => return None,
        };
        let dom = s[1..].parse().ok()?;
        Some(Perm { dom, access })
    }
    /// The wire form.
    pub fn to_text(self) -> String {
        let c = ["n", "r", "w", "b"][(self.access & 3) as usize];
        alloc::format!("{c}{}", self.dom)
    }
}

/// Limits the store enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest absolute path.
    pub abs_path_max: usize,
    /// Longest relative path.
    pub rel_path_max: usize,
    /// Largest value.
    pub value_max: usize,
    /// Nodes an unprivileged domain may own.
    pub nodes_per_domain: usize,
    /// Watches per domain.
    pub watches_per_domain: usize,
    /// Open transactions per domain.
    pub transactions_per_domain: usize,
    /// Watch events queued per domain before the oldest are dropped.
    pub events_per_domain: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            abs_path_max: XENSTORE_ABS_PATH_MAX,
            rel_path_max: XENSTORE_REL_PATH_MAX,
            value_max: XENSTORE_PAYLOAD_MAX - 64,
            nodes_per_domain: 1000,
            watches_per_domain: 128,
            transactions_per_domain: 10,
            events_per_domain: 256,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    value: Vec<u8>,
    perms: Vec<Perm>,
    generation: u64,
}

type Tree = BTreeMap<String, Node>;

#[derive(Clone, Debug)]
struct Watch {
    dom: DomId,
    path: String,
    token: String,
    relative: bool,
}

/// A watch event for a domain: the changed path (as the watcher named it)
/// and its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The path that changed (or the watched special path).
    pub path: String,
    /// The watch's token.
    pub token: String,
}

struct Transaction {
    dom: DomId,
    tree: Tree,
    /// Generation of each accessed path at the start (0: absent).
    seen: BTreeMap<String, u64>,
    changed: BTreeSet<String>,
}

/// The store.
pub struct Store {
    tree: Tree,
    generation: u64,
    limits: Limits,
    privileged: BTreeSet<DomId>,
    introduced: BTreeSet<DomId>,
    watches: Vec<Watch>,
    transactions: BTreeMap<u32, Transaction>,
    next_tx: u32,
    events: BTreeMap<DomId, VecDeque<WatchEvent>>,
}

fn children(tree: &Tree, p: &str) -> Vec<String> {
    let prefix = if p == "/" {
        String::from("/")
    } else {
        alloc::format!("{p}/")
    };
    tree.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(prefix.as_str()))
        .filter_map(|(k, _)| {
            let rest = &k[prefix.len()..];
            (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
        })
        .collect()
}

fn subtree(tree: &Tree, p: &str) -> Vec<String> {
    tree.keys()
        .filter(|k| path::is_under(k, p))
        .cloned()
        .collect()
}

impl Store {
    /// A store with `/`, `/local` and `/local/domain`, owned by domain 0
    /// and readable by nobody else.
    pub fn new(limits: Limits) -> Store {
        let mut tree = Tree::new();
        for p in ["/", "/local", "/local/domain"] {
            tree.insert(
                p.to_string(),
                Node {
                    value: Vec::new(),
                    perms: vec![Perm { dom: 0, access: 0 }],
                    generation: 1,
                },
            );
        }
        Store {
            tree,
            generation: 1,
            limits,
            privileged: BTreeSet::new(),
            introduced: BTreeSet::new(),
            watches: Vec::new(),
            transactions: BTreeMap::new(),
            next_tx: 1,
            events: BTreeMap::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Makes `dom` privileged (may do anything) or not.
    pub fn set_privileged(&mut self, dom: DomId, yes: bool) {
        if yes {
            self.privileged.insert(dom);
        } else {
            self.privileged.remove(&dom);
        }
    }

    fn is_privileged(&self, dom: DomId) -> bool {
        self.privileged.contains(&dom)
    }

    fn allowed(&self, dom: DomId, perms: &[Perm], want: u8) -> bool {
        if self.is_privileged(dom) {
            return true;
        }
        let Some(first) = perms.first() else {
            return false;
        };
        if first.dom == dom {
            return true;
        }
        let access = perms[1..]
            .iter()
            .find(|p| p.dom == dom)
            .map_or(first.access, |p| p.access);
        access & want == want
    }

    /// Toolstack: announces domain `dom`: creates its home
    /// `/local/domain/<dom>` owned by it, and fires `@introduceDomain`.
    pub fn introduce(&mut self, dom: DomId) -> Result<(), XsError> {
        let home = path::domain_path(dom);
        let node = Node {
            value: Vec::new(),
            perms: vec![Perm { dom, access: 0 }],
            generation: 0,
        };
        self.generation += 1;
        let g = self.generation;
        self.tree.insert(
            home.clone(),
            Node {
                generation: g,
                ..node
            },
        );
        self.introduced.insert(dom);
        self.fire(&home, None);
        self.fire_special("@introduceDomain");
        Ok(())
    }

    /// Whether [`introduce`](Self::introduce) was called for `dom` (and
    /// not [`release`](Self::release)).
    pub fn is_introduced(&self, dom: DomId) -> bool {
        self.introduced.contains(&dom)
    }

    /// A counter that changes whenever a node is created, written or
    /// removed, or its permissions set, outside a transaction or by a
    /// commit (it may also move when nothing changed, e.g. on a refused
    /// write): a caller that polls nodes (a back end watching its front
    /// end's `state`) may skip the reads while it is unchanged.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Toolstack: domain `dom` is gone: drops its watches, transactions and
    /// queued events, and fires `@releaseDomain`. Its nodes stay until the
    /// toolstack removes them.
    pub fn release(&mut self, dom: DomId) {
        self.watches.retain(|w| w.dom != dom);
        self.transactions.retain(|_, t| t.dom != dom);
        self.events.remove(&dom);
        self.introduced.remove(&dom);
        self.fire_special("@releaseDomain");
    }

    fn canonical(&self, dom: DomId, p: &str) -> Result<String, XsError> {
        path::canonical(dom, p, &self.limits)
    }

    fn tree_for(&mut self, dom: DomId, tx: u32) -> Result<Option<&mut Transaction>, XsError> {
        if tx == 0 {
            return Ok(None);
        }
        match self.transactions.get_mut(&tx) {
            Some(t) if t.dom == dom => Ok(Some(t)),
            _ => Err(XsError::ENOENT),
        }
    }

    fn note_access(t: &mut Transaction, p: &str, tree_gen: Option<u64>) {
        t.seen.entry(p.to_string()).or_insert(tree_gen.unwrap_or(0));
    }

    /// Runs `f` on the tree of `tx` (0: the store itself), recording
    /// accessed paths for conflict detection.
    fn view<R>(
        &mut self,
        dom: DomId,
        tx: u32,
        touched: &[String],
        f: impl FnOnce(&Store, &mut Tree) -> R,
    ) -> Result<R, XsError> {
        if tx == 0 {
            let mut tree = core::mem::take(&mut self.tree);
            let r = f(self, &mut tree);
            self.tree = tree;
            return Ok(r);
        }
        let mut t = self
            .tree_for(dom, tx)?
            .map(|t| core::mem::take(&mut t.tree))
            .unwrap_or_default();
        for p in touched {
            let g = t.get(p).map(|n| n.generation);
            if let Some(tr) = self.transactions.get_mut(&tx) {
                Self::note_access(tr, p, g);
            }
        }
        let r = f(self, &mut t);
        if let Some(tr) = self.transactions.get_mut(&tx) {
            tr.tree = t;
        }
        Ok(r)
    }

    /// `XS_READ`: the value of `p`.
    pub fn read(&mut self, dom: DomId, tx: u32, p: &str) -> Result<Vec<u8>, XsError> {
        let p = self.canonical(dom, p)?;
        self.view(dom, tx, core::slice::from_ref(&p), |s, t| {
            let n = t.get(&p).ok_or(XsError::ENOENT)?;
            if !s.allowed(dom, &n.perms, PERM_READ) {
                return Err(XsError::EACCES);
            }
            Ok(n.value.clone())
        })?
    }

    /// `XS_DIRECTORY`: the names of the children of `p`, sorted.
    pub fn directory(&mut self, dom: DomId, tx: u32, p: &str) -> Result<Vec<String>, XsError> {
        let p = self.canonical(dom, p)?;
        self.view(dom, tx, core::slice::from_ref(&p), |s, t| {
            let n = t.get(&p).ok_or(XsError::ENOENT)?;
            if !s.allowed(dom, &n.perms, PERM_READ) {
                return Err(XsError::EACCES);
            }
            Ok(children(t, &p))
        })?
    }

    /// `XS_GET_PERMS`.
    pub fn get_perms(&mut self, dom: DomId, tx: u32, p: &str) -> Result<Vec<Perm>, XsError> {
        let p = self.canonical(dom, p)?;
        self.view(dom, tx, core::slice::from_ref(&p), |s, t| {
            let n = t.get(&p).ok_or(XsError::ENOENT)?;
            if !s.allowed(dom, &n.perms, PERM_READ) {
                return Err(XsError::EACCES);
            }
            Ok(n.perms.clone())
        })?
    }

    fn owned(&self, tree: &Tree, dom: DomId) -> usize {
        tree.values()
            .filter(|n| n.perms.first().map(|p| p.dom) == Some(dom))
            .count()
    }

    /// Creates `p` and missing ancestors in `t` (checking write access on
    /// the nearest existing ancestor and the creator's quota); returns the
    /// created paths, top first. Nothing changes on error.
    fn create(
        &self,
        dom: DomId,
        t: &mut Tree,
        p: &str,
        generation: u64,
    ) -> Result<Vec<String>, XsError> {
        let mut missing = Vec::new();
        let mut cur = p;
        let anc = loop {
            if let Some(n) = t.get(cur) {
                break n;
            }
            missing.push(cur.to_string());
            cur = path::parent(cur).ok_or(XsError::ENOENT)?;
        };
        if !self.allowed(dom, &anc.perms, PERM_WRITE) {
            return Err(XsError::EACCES);
        }
        let mut perms = anc.perms.clone();
        if !self.is_privileged(dom) {
            if let Some(first) = perms.first_mut() {
                first.dom = dom;
            }
            if self.owned(t, dom) + missing.len() > self.limits.nodes_per_domain {
                return Err(XsError::ENOSPC);
            }
        }
        missing.reverse();
        for m in &missing {
            t.insert(
                m.clone(),
                Node {
                    value: Vec::new(),
                    perms: perms.clone(),
                    generation,
                },
            );
        }
        Ok(missing)
    }

    fn bump(&mut self, tx: u32) -> u64 {
        if tx == 0 {
            self.generation += 1;
            self.generation
        } else {
            0 // transactional changes get a generation at commit
        }
    }

    /// Records changes: fires watches now (no transaction) or remembers
    /// the paths and their generation in the snapshot (0: absent) for the
    /// commit's conflict check.
    fn changed(&mut self, tx: u32, paths: &[(String, u64)]) {
        if tx == 0 {
            for (p, _) in paths {
                self.fire(p, None);
            }
        } else if let Some(t) = self.transactions.get_mut(&tx) {
            for (p, g) in paths {
                t.seen.entry(p.clone()).or_insert(*g);
                t.changed.insert(p.clone());
            }
        }
    }

    /// `XS_WRITE`: sets the value of `p`, creating it (and its ancestors).
    pub fn write(&mut self, dom: DomId, tx: u32, p: &str, value: &[u8]) -> Result<(), XsError> {
        let p = self.canonical(dom, p)?;
        if value.len() > self.limits.value_max {
            return Err(XsError::E2BIG);
        }
        let g = self.bump(tx);
        let changed = self.view(
            dom,
            tx,
            core::slice::from_ref(&p),
            |s, t| -> Result<Vec<String>, XsError> {
                let mut changed = match t.get(&p) {
                    Some(n) if !s.allowed(dom, &n.perms, PERM_WRITE) => {
                        return Err(XsError::EACCES)
                    }
                    Some(_) => Vec::new(),
                    None => s.create(dom, t, &p, g)?,
                };
                if let Some(n) = t.get_mut(&p) {
                    n.value = value.to_vec();
                    n.generation = g;
                }
                if changed.last() != Some(&p) {
                    changed.push(p.clone());
                }
                Ok(changed)
            },
        )??;
        let changed: Vec<(String, u64)> = changed.into_iter().map(|p| (p, 0)).collect();
        self.changed(tx, &changed);
        Ok(())
    }

    /// `XS_MKDIR`: creates `p` with an empty value if it does not exist.
    pub fn mkdir(&mut self, dom: DomId, tx: u32, p: &str) -> Result<(), XsError> {
        let p = self.canonical(dom, p)?;
        let g = self.bump(tx);
        let changed = self.view(dom, tx, core::slice::from_ref(&p), |s, t| {
            if t.contains_key(&p) {
                return Ok(Vec::new());
            }
            s.create(dom, t, &p, g)
        })??;
        let changed: Vec<(String, u64)> = changed.into_iter().map(|p| (p, 0)).collect();
        self.changed(tx, &changed);
        Ok(())
    }

    /// `XS_RM`: removes `p` and everything below it.
    pub fn rm(&mut self, dom: DomId, tx: u32, p: &str) -> Result<(), XsError> {
        let p = self.canonical(dom, p)?;
        if p == "/" {
            return Err(XsError::EINVAL);
        }
        let removed = self.view(dom, tx, core::slice::from_ref(&p), |s, t| {
            let n = t.get(&p).ok_or(XsError::ENOENT)?;
            if !s.allowed(dom, &n.perms, PERM_WRITE) {
                return Err(XsError::EACCES);
            }
            let sub = subtree(t, &p);
            let nodes: Vec<(String, Node)> = sub
                .iter()
                .filter_map(|k| t.remove(k).map(|n| (k.clone(), n)))
                .collect();
            Ok(nodes)
        })??;
        if tx == 0 {
            self.generation += 1;
            // Watchers are told about removed nodes they could read.
            for (k, n) in &removed {
                self.fire(k, Some(&n.perms));
            }
        } else {
            let paths: Vec<(String, u64)> = removed
                .into_iter()
                .map(|(k, n)| (k, n.generation))
                .collect();
            self.changed(tx, &paths);
        }
        Ok(())
    }

    /// `XS_SET_PERMS`: replaces the permissions of `p` (at least one
    /// entry; an unprivileged domain cannot give the node away).
    pub fn set_perms(
        &mut self,
        dom: DomId,
        tx: u32,
        p: &str,
        perms: &[Perm],
    ) -> Result<(), XsError> {
        let p = self.canonical(dom, p)?;
        if perms.is_empty() || perms.len() > 64 {
            return Err(XsError::EINVAL);
        }
        let g = self.bump(tx);
        self.view(dom, tx, core::slice::from_ref(&p), |s, t| {
            let n = t.get(&p).ok_or(XsError::ENOENT)?;
            if !s.allowed(dom, &n.perms, PERM_WRITE) {
                return Err(XsError::EACCES);
            }
            if !s.is_privileged(dom) && perms[0].dom != dom {
                return Err(XsError::EPERM);
            }
            if let Some(n) = t.get_mut(&p) {
                n.perms = perms.to_vec();
                n.generation = g;
            }
            Ok(())
        })??;
        self.changed(tx, &[(p, 0)]);
        Ok(())
    }

    /// `XS_WATCH`: fires now and on each change at or below `p`.
    pub fn watch(&mut self, dom: DomId, p: &str, token: &str) -> Result<(), XsError> {
        let canon = path::watch_path(dom, p, &self.limits)?;
        if token.len() > self.limits.abs_path_max {
            return Err(XsError::EINVAL);
        }
        if self
            .watches
            .iter()
            .any(|w| w.dom == dom && w.path == canon && w.token == token)
        {
            return Err(XsError::EEXIST);
        }
        if !self.is_privileged(dom)
            && self.watches.iter().filter(|w| w.dom == dom).count()
                >= self.limits.watches_per_domain
        {
            return Err(XsError::E2BIG);
        }
        let relative = !p.starts_with('/') && !p.starts_with('@');
        self.watches.push(Watch {
            dom,
            path: canon,
            token: token.to_string(),
            relative,
        });
        self.push_event(
            dom,
            WatchEvent {
                path: p.to_string(),
                token: token.to_string(),
            },
        );
        Ok(())
    }

    /// `XS_UNWATCH`.
    pub fn unwatch(&mut self, dom: DomId, p: &str, token: &str) -> Result<(), XsError> {
        let canon = path::watch_path(dom, p, &self.limits)?;
        let before = self.watches.len();
        self.watches
            .retain(|w| !(w.dom == dom && w.path == canon && w.token == token));
        if self.watches.len() == before {
            return Err(XsError::ENOENT);
        }
        Ok(())
    }

    /// `XS_RESET_WATCHES`: drops all of `dom`'s watches.
    pub fn reset_watches(&mut self, dom: DomId) {
        self.watches.retain(|w| w.dom != dom);
    }

    /// Watches `dom` has.
    pub fn watch_count(&self, dom: DomId) -> usize {
        self.watches.iter().filter(|w| w.dom == dom).count()
    }

    fn push_event(&mut self, dom: DomId, e: WatchEvent) {
        let q = self.events.entry(dom).or_default();
        if q.len() >= self.limits.events_per_domain {
            q.pop_front();
        }
        q.push_back(e);
    }

    /// Fires the watches covering `p` whose domain may read the node (as
    /// it is now, or `perms` for a removed one).
    fn fire(&mut self, p: &str, perms: Option<&[Perm]>) {
        let perms: Vec<Perm> = match perms {
            Some(pp) => pp.to_vec(),
            None => self
                .tree
                .get(p)
                .map(|n| n.perms.clone())
                .unwrap_or_default(),
        };
        let hits: Vec<(DomId, WatchEvent)> = self
            .watches
            .iter()
            .filter(|w| !w.path.starts_with('@') && path::is_under(p, &w.path))
            .filter(|w| self.allowed(w.dom, &perms, PERM_READ))
            .map(|w| {
                (
                    w.dom,
                    WatchEvent {
                        path: path::for_watcher(p, w.dom, w.relative),
                        token: w.token.clone(),
                    },
                )
            })
            .collect();
        for (d, e) in hits {
            self.push_event(d, e);
        }
    }

    fn fire_special(&mut self, name: &str) {
        let hits: Vec<(DomId, WatchEvent)> = self
            .watches
            .iter()
            .filter(|w| w.path == name)
            .map(|w| {
                (
                    w.dom,
                    WatchEvent {
                        path: name.to_string(),
                        token: w.token.clone(),
                    },
                )
            })
            .collect();
        for (d, e) in hits {
            self.push_event(d, e);
        }
    }

    /// Takes the watch events queued for `dom`.
    pub fn take_events(&mut self, dom: DomId) -> Vec<WatchEvent> {
        self.events.remove(&dom).map(Vec::from).unwrap_or_default()
    }

    /// `XS_TRANSACTION_START`: a new transaction id (never 0).
    pub fn transaction_start(&mut self, dom: DomId) -> Result<u32, XsError> {
        if self.transactions.values().filter(|t| t.dom == dom).count()
            >= self.limits.transactions_per_domain
        {
            return Err(XsError::ENOSPC);
        }
        let mut id = self.next_tx;
        while id == 0 || self.transactions.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_tx = id.wrapping_add(1);
        self.transactions.insert(
            id,
            Transaction {
                dom,
                tree: self.tree.clone(),
                seen: BTreeMap::new(),
                changed: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    /// `XS_TRANSACTION_END`: commit (`EAGAIN` on a conflict, nothing
    /// applied) or abort.
    pub fn transaction_end(&mut self, dom: DomId, tx: u32, commit: bool) -> Result<(), XsError> {
        match self.transactions.get(&tx) {
            Some(t) if t.dom == dom => {}
            _ => return Err(XsError::ENOENT),
        }
        let Some(t) = self.transactions.remove(&tx) else {
            return Err(XsError::ENOENT);
        };
        if !commit {
            return Ok(());
        }
        let conflict = t
            .seen
            .iter()
            .any(|(p, g)| self.tree.get(p).map_or(0, |n| n.generation) != *g);
        if conflict {
            return Err(XsError::EAGAIN);
        }
        if !self.is_privileged(dom) {
            let mut after = self.tree.clone();
            for p in &t.changed {
                match t.tree.get(p) {
                    Some(n) => after.insert(p.clone(), n.clone()),
                    None => after.remove(p),
                };
            }
            if self.owned(&after, dom) > self.limits.nodes_per_domain {
                return Err(XsError::ENOSPC);
            }
        }
        self.generation += 1;
        let g = self.generation;
        let mut fired = Vec::new();
        for p in &t.changed {
            match t.tree.get(p) {
                Some(n) => {
                    self.tree.insert(
                        p.clone(),
                        Node {
                            generation: g,
                            ..n.clone()
                        },
                    );
                    fired.push((p.clone(), None));
                }
                None => {
                    if let Some(old) = self.tree.remove(p) {
                        fired.push((p.clone(), Some(old.perms)));
                    }
                }
            }
        }
        for (p, perms) in fired {
            self.fire(&p, perms.as_deref());
        }
        Ok(())
    }

    /// Every path in the store, sorted (for tests and dumps).
    pub fn paths(&self) -> Vec<String> {
        self.tree.keys().cloned().collect()
    }
}
