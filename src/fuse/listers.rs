//! Which listings carry their entries' attributes. A READDIRPLUS entry with attributes makes the
//! kernel build a dentry and an inode for it (about 2.5 ms of the lister's time per 1,000
//! entries, more than the rest of a walk through the mount): worth it for a walker that stats
//! every entry (`ls -l`, `du`, `rsync`, `tar`: no LOOKUP each), wasted on one that only reads
//! names (`find -name`, `ls`, a shell completing a name). Nothing in a request says which kind a
//! caller is, so the mount learns it per calling thread: a thread's listings name files (and
//! other non-folders) without attributes until it looks one of them up; from then on they carry
//! every entry's attributes. Folders always carry theirs: every walker goes into them.
//!
//! The kernel keeps a folder's entries between opens (its readdir cache, `KernelCopy::Current`);
//! a copy filled without attributes is dropped when a thread that stats opens the folder, so
//! that it is listed again, with them, instead of looked up entry by entry.
//!
//! Invariants: both memories are bounded (least recently used forgotten first); forgetting only
//! costs speed (a forgotten statting thread gets bare listings until its next file lookup, a
//! forgotten bare copy is looked up entry by entry), never correctness: every entry is listed,
//! with or without attributes, and the kernel looks up what it was not given.

use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

/// Statting threads remembered.
const THREADS: usize = 4096;
/// Folders remembered as kept by the kernel without attributes.
const BARE_COPIES: usize = 65_536;

pub struct Listers {
    statting: Mutex<LruCache<u32, ()>>,
    bare_copies: Mutex<LruCache<u64, ()>>,
}

impl Default for Listers {
    fn default() -> Self {
        Listers::with_capacity(THREADS, BARE_COPIES)
    }
}

impl Listers {
    fn with_capacity(threads: usize, folders: usize) -> Listers {
        let cap = |n: usize| NonZeroUsize::new(n.max(1)).expect("at least one");
        Listers {
            statting: Mutex::new(LruCache::new(cap(threads))),
            bare_copies: Mutex::new(LruCache::new(cap(folders))),
        }
    }

    /// True when thread `tid`'s listings carry every entry's attributes.
    pub fn with_attributes(&self, tid: u32) -> bool {
        lock(&self.statting).get(&tid).is_some()
    }

    /// Thread `tid` looked up a name that is not a folder: it stats what it lists.
    pub fn looked_up_file(&self, tid: u32) {
        lock(&self.statting).put(tid, ());
    }

    /// The kernel got folder `dir`'s entries from the start, with attributes or without.
    pub fn listed(&self, dir: u64, with_attributes: bool) {
        let mut bare = lock(&self.bare_copies);
        match with_attributes {
            true => bare.pop(&dir),
            false => bare.put(dir, ()),
        };
    }

    /// True when the kernel's copy of folder `dir` lacks the attributes thread `tid` wants:
    /// it is to be dropped (and `dir` listed again) as `tid` opens the folder.
    pub fn outdated_for(&self, dir: u64, tid: u32) -> bool {
        self.with_attributes(tid) && lock(&self.bare_copies).pop(&dir).is_some()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_lists_names_only_until_it_looks_up_a_file() {
        let l = Listers::default();
        assert!(!l.with_attributes(7));
        l.looked_up_file(7);
        assert!(l.with_attributes(7));
        assert!(!l.with_attributes(8), "another thread is not taken for a statting one");
    }

    #[test]
    fn a_bare_copy_is_dropped_once_for_a_statting_thread_and_a_full_one_kept() {
        let l = Listers::default();
        l.listed(1, false);
        l.listed(2, true);
        assert!(!l.outdated_for(1, 7), "a names-only thread can use the bare copy");
        l.looked_up_file(7);
        assert!(!l.outdated_for(2, 7), "a copy with attributes is kept");
        assert!(l.outdated_for(1, 7), "a bare copy is dropped for a thread that stats");
        assert!(!l.outdated_for(1, 7), "and only once: it is listed again, with attributes");
        l.listed(1, false);
        l.listed(1, true);
        assert!(!l.outdated_for(1, 7), "listed with attributes since");
    }

    #[test]
    fn memories_are_bounded_and_forget_the_least_recent() {
        let l = Listers::with_capacity(2, 2);
        l.looked_up_file(1);
        l.looked_up_file(2);
        assert!(l.with_attributes(1)); // 1 is now the most recent
        l.looked_up_file(3);
        assert!(l.with_attributes(1) && l.with_attributes(3));
        assert!(!l.with_attributes(2), "the least recent thread is forgotten");
        for dir in [10, 11, 12] {
            l.listed(dir, false);
        }
        assert!(!l.outdated_for(10, 1), "the oldest bare copy is forgotten");
        assert!(l.outdated_for(11, 1) && l.outdated_for(12, 1));
    }
}
