//! Every staged entry of the mount, at most one per inode, and the journal they are recorded
//! in. Reads, `stat` and listings of a file with an entry here are answered from the entry.
//!
//! Invariants:
//! - An inode has at most one entry; a second staging of the same inode at the same time
//!   keeps the first ([`StagedFiles::keep_first`]).
//! - A writer joins an entry only while it is its inode's entry ([`StagedFiles::join`]), and
//!   an entry leaves only under the same lock ([`Entries::remove_if_current`]), so no write
//!   ever lands in an entry that has left.
//! - Changes that look at several entries at once (a rename over another pending file, new
//!   attributes for an item that may or may not have an entry) hold [`StagedFiles::lock`] for
//!   the whole change.

use super::journal::Journal;
use super::staging::Staged;
use crate::vfs::meta::inode::Ino;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub struct StagedFiles {
    journal: Journal,
    map: Mutex<HashMap<Ino, Arc<Staged>>>,
}

/// The entries, locked for a change that must see them all at once.
pub struct Entries<'a>(MutexGuard<'a, HashMap<Ino, Arc<Staged>>>);

impl StagedFiles {
    pub fn new(journal: Journal) -> StagedFiles {
        StagedFiles { journal, map: Mutex::default() }
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn lock(&self) -> Entries<'_> {
        Entries(self.map.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn get(&self, ino: Ino) -> Option<Arc<Staged>> {
        self.lock().get(ino)
    }

    pub fn contains(&self, ino: Ino) -> bool {
        self.lock().0.contains_key(&ino)
    }

    /// The inode's entry if it has local content (reads go there instead of to Box).
    pub fn with_content(&self, ino: Ino) -> Option<Arc<Staged>> {
        self.get(ino).filter(|s| s.has_content())
    }

    pub fn all(&self) -> Vec<Arc<Staged>> {
        self.lock().0.values().cloned().collect()
    }

    /// Every entry that `keep` chooses.
    pub fn filtered(&self, keep: impl Fn(&Staged) -> bool) -> Vec<Arc<Staged>> {
        self.lock().0.values().filter(|s| keep(s)).cloned().collect()
    }

    /// Makes `staged` its inode's entry (replacing none: the caller knows it has none).
    pub fn insert(&self, staged: Arc<Staged>) {
        self.lock().insert(staged);
    }

    /// `staged` as its inode's entry, unless the inode has one already: then that one.
    pub fn keep_first(&self, staged: Arc<Staged>) -> Arc<Staged> {
        self.lock().0.entry(staged.ino).or_insert(staged).clone()
    }

    /// Adds a writer to `staged` if it is still its inode's entry.
    pub fn join(&self, staged: &Arc<Staged>) -> bool {
        let entries = self.lock();
        let current = entries.is_current(staged);
        if current {
            staged.lock().upload.opened();
        }
        current
    }

    pub fn remove(&self, ino: Ino) -> Option<Arc<Staged>> {
        self.lock().remove(ino)
    }
}

impl Entries<'_> {
    pub fn get(&self, ino: Ino) -> Option<Arc<Staged>> {
        self.0.get(&ino).cloned()
    }

    pub fn is_current(&self, staged: &Arc<Staged>) -> bool {
        self.0.get(&staged.ino).is_some_and(|s| Arc::ptr_eq(s, staged))
    }

    pub fn insert(&mut self, staged: Arc<Staged>) {
        self.0.insert(staged.ino, staged);
    }

    pub fn remove(&mut self, ino: Ino) -> Option<Arc<Staged>> {
        self.0.remove(&ino)
    }

    pub fn remove_if_current(&mut self, staged: &Arc<Staged>) {
        if self.is_current(staged) {
            self.0.remove(&staged.ino);
        }
    }
}
