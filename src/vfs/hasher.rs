//! The SHA-1 of a staged file that is written front to back, computed by a background thread
//! that reads the staging file behind the writer (so the FUSE write path does no hashing and
//! the upload need not read the file once more). A write into bytes already hashed (or being
//! read for hashing) makes the digest unknown; truncating to zero starts over.

use sha1::{Digest, Sha1};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The thread starts once this much is written ahead of it (small files upload directly and
/// hash in memory anyway).
const START_AHEAD: u64 = 4 * 1024 * 1024;
const CHUNK: u64 = 1024 * 1024;
/// A caught-up thread waits this long for more writes before it ends.
const IDLE: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct State {
    /// `None`: the digest is unknown (content was rewritten).
    hasher: Option<Sha1>,
    hashed: u64,
    /// End of the range the thread is reading; writes below it spoil the digest.
    claimed: u64,
    size: u64,
    running: bool,
}

#[derive(Debug)]
pub struct ContentHasher {
    state: Mutex<State>,
    progressed: Condvar,
}

impl ContentHasher {
    /// For a file whose content starts empty (`known`) or with content not hashed (not known).
    pub fn new(known: bool) -> Arc<ContentHasher> {
        let hasher = known.then(Sha1::new);
        Arc::new(ContentHasher {
            state: Mutex::new(State { hasher, hashed: 0, claimed: 0, size: 0, running: false }),
            progressed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After bytes were written at `offset` and the file is `size` long.
    pub fn wrote(self: &Arc<Self>, file: &Arc<std::fs::File>, offset: u64, size: u64) {
        let mut st = self.lock();
        if offset < st.claimed {
            st.hasher = None;
        }
        st.size = st.size.max(size);
        if st.hasher.is_some() && !st.running && st.size - st.hashed >= START_AHEAD {
            st.running = true;
            let (me, file) = (self.clone(), file.clone());
            let spawned = std::thread::Builder::new().name("boxfs-sha1".into()).spawn(move || me.follow(&file));
            if spawned.is_err() {
                st.running = false; // hashed later by the upload, from the file
            }
        }
        self.progressed.notify_all();
    }

    /// After a truncate (or allocation) left the file `size` long (growth adds zeros, which the
    /// thread reads like any other bytes).
    pub fn resized(&self, size: u64) {
        let mut st = self.lock();
        if size == 0 {
            *st = State { hasher: Some(Sha1::new()), hashed: 0, claimed: 0, size: 0, running: st.running };
        } else if size < st.claimed {
            st.hasher = None;
        }
        st.size = size;
        self.progressed.notify_all();
    }

    /// The SHA-1 of the first `size` bytes, hashing what the thread has not reached yet; `None`
    /// when the content was rewritten. Blocking: call from a blocking thread.
    pub fn finish(&self, file: &std::fs::File, size: u64) -> Option<[u8; 20]> {
        let mut st = self.lock();
        while st.running && st.hasher.is_some() && st.hashed < size {
            st = self.progressed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        while st.hasher.is_some() && st.hashed < size {
            st = self.hash_next(st, file, size);
        }
        (st.hashed == size).then(|| st.hasher.clone().map(|h| h.finalize().into())).flatten()
    }

    /// The thread: hashes behind the writer until the content is rewritten, or it has caught
    /// up and no write came for a while.
    fn follow(&self, file: &std::fs::File) {
        let mut st = self.lock();
        loop {
            if st.hasher.is_none() {
                break;
            }
            if st.hashed < st.size {
                let size = st.size;
                st = self.hash_next(st, file, size);
                continue;
            }
            let (next, waited) = self.progressed.wait_timeout(st, IDLE).unwrap_or_else(|p| p.into_inner());
            st = next;
            if waited.timed_out() && st.hashed >= st.size {
                break;
            }
        }
        st.running = false;
        self.progressed.notify_all();
    }

    /// Claims, reads and hashes the next chunk below `limit` (the lock is released while
    /// reading). A read error leaves the digest unknown.
    fn hash_next<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        file: &std::fs::File,
        limit: u64,
    ) -> MutexGuard<'a, State> {
        let from = st.hashed;
        let to = limit.min(from + CHUNK);
        st.claimed = to;
        drop(st);
        let mut buf = vec![0u8; (to - from) as usize];
        let read = file.read_exact_at(&mut buf, from);
        let mut st = self.lock();
        let in_step = st.hashed == from;
        match (read, st.hasher.as_mut()) {
            (Ok(()), Some(h)) if in_step => {
                h.update(&buf);
                st.hashed = to;
            }
            _ => st.hasher = None,
        }
        self.progressed.notify_all();
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(data: &[u8]) -> (tempfile::NamedTempFile, Arc<std::fs::File>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(data).unwrap();
        let shared = Arc::new(f.reopen().unwrap());
        (f, shared)
    }

    #[test]
    fn follows_a_front_to_back_write() {
        let data: Vec<u8> = (0..10 * CHUNK as usize).map(|i| (i % 251) as u8).collect();
        let (_keep, file) = file_with(&data);
        let h = ContentHasher::new(true);
        for off in (0..data.len() as u64).step_by(CHUNK as usize) {
            h.wrote(&file, off, off + CHUNK);
        }
        let expected: [u8; 20] = Sha1::digest(&data).into();
        assert_eq!(h.finish(&file, data.len() as u64), Some(expected));
    }

    #[test]
    fn a_rewrite_of_hashed_bytes_makes_it_unknown_and_truncate_starts_over() {
        let (_keep, file) = file_with(&[7u8; 3 * CHUNK as usize]);
        let h = ContentHasher::new(true);
        h.wrote(&file, 0, 3 * CHUNK);
        assert!(h.finish(&file, 2 * CHUNK).is_some(), "hashed up to 2 MiB");
        h.wrote(&file, 10, 3 * CHUNK);
        assert_eq!(h.finish(&file, 3 * CHUNK), None);
        h.resized(0);
        let (_keep2, small) = file_with(b"abc");
        h.wrote(&small, 0, 3);
        assert_eq!(h.finish(&small, 3), Some(Sha1::digest(b"abc").into()));
        assert_eq!(ContentHasher::new(false).finish(&small, 3), None, "unknown from the start");
    }
}
