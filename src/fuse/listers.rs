//! Which callers get attributes with their listings. A READDIRPLUS entry with attributes makes
//! the kernel build a dentry and an inode for it (about 2.5 ms of the lister's time per 1,000
//! entries, more than the rest of a walk through the mount): worth it for a walker that stats
//! every entry (`ls -l`, `du`, `rsync`, `tar`: no LOOKUP each), wasted on one that only reads
//! names (`find -name`, `ls`, a shell completing a name). Nothing in a request says which kind a
//! caller is, so the mount learns it per calling thread: a thread opens folders for names only
//! until it looks up a file (or other non-folder); from then on for attributes. The vfs keeps
//! what the kernel holds of each folder and has it read a folder again for an opener that
//! wants attributes its copy lacks (`KernelCopy`).
//!
//! Invariant: the memory is bounded (the least recently seen statting thread is forgotten
//! first); forgetting only costs speed (a forgotten thread gets names until its next file
//! lookup), never correctness: every entry is listed, and the kernel looks up what it was not
//! given the attributes of.

use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Mutex;

/// Statting threads remembered.
const THREADS: usize = 4096;

pub struct Listers {
    statting: Mutex<LruCache<u32, ()>>,
}

impl Default for Listers {
    fn default() -> Self {
        Listers::with_capacity(THREADS)
    }
}

impl Listers {
    fn with_capacity(threads: usize) -> Listers {
        let threads = NonZeroUsize::new(threads.max(1)).expect("at least one");
        Listers { statting: Mutex::new(LruCache::new(threads)) }
    }

    /// True when thread `tid`'s listings are to carry every entry's attributes.
    pub fn with_attributes(&self, tid: u32) -> bool {
        self.statting.lock().unwrap_or_else(|p| p.into_inner()).get(&tid).is_some()
    }

    /// Thread `tid` looked up a name that is not a folder: it stats what it lists.
    pub fn looked_up_file(&self, tid: u32) {
        self.statting.lock().unwrap_or_else(|p| p.into_inner()).put(tid, ());
    }
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
    fn the_least_recently_seen_thread_is_forgotten_first() {
        let l = Listers::with_capacity(2);
        l.looked_up_file(1);
        l.looked_up_file(2);
        assert!(l.with_attributes(1)); // 1 is now the most recent
        l.looked_up_file(3);
        assert!(l.with_attributes(1) && l.with_attributes(3));
        assert!(!l.with_attributes(2));
    }
}
