//! Staged files: local content of a file with changes not yet in Box. The first write (or a
//! truncate, or a create) stages the whole file in the journal (existing content fetched through
//! the block cache unless truncated); reads, `stat` and listings see the staged bytes, size
//! and mtime until the upload commits.

use super::error::{VfsError, VfsResult};
use super::hasher::ContentHasher;
use super::inode::Ino;
use super::journal::{Journal, Record};
use crate::direct_io::DirectFile;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::watch;

/// The outcome of the latest upload attempt, as `fsync` waiters see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Nothing committed yet.
    Nothing,
    /// Content up to this generation is in Box.
    Done(u64),
    /// The upload failed for good; the data stays in the journal.
    Failed(u64, String),
}

#[derive(Debug)]
pub struct StageState {
    pub record: Record,
    /// The directory inode the file shows in.
    pub parent: Ino,
    pub size: u64,
    pub mtime: SystemTime,
    /// Bumped on every change, so an upload knows whether what it sent is still current.
    pub generation: u64,
    /// Open handles that may still write.
    pub writers: u32,
    /// An upload task exists for this file.
    pub scheduled: bool,
    /// Unlinked (or replaced by a rename) before its upload: nothing is to be sent.
    pub removed: bool,
    /// Where its upload stands, for `boxfs status`.
    pub phase: Phase,
    /// Its journal entry exists (false once committed or given up): nothing may save it again.
    pub in_journal: bool,
}

impl StageState {
    /// A file just staged: queued for no upload yet, with no writer and its journal entry made.
    pub fn new(record: Record, parent: Ino, size: u64, mtime: SystemTime) -> StageState {
        StageState {
            record,
            parent,
            size,
            mtime,
            generation: 0,
            writers: 0,
            scheduled: false,
            removed: false,
            phase: Phase::Queued,
            in_journal: true,
        }
    }

    /// Content changed: a new generation, not yet on disk.
    fn changed(&mut self) {
        self.mtime = SystemTime::now();
        self.generation += 1;
        self.record.synced = false;
    }

    /// Removes the journal entry (committed, unlinked or saved as a conflicted copy); no
    /// later save may bring it back.
    pub fn leave_journal(&mut self, journal: &Journal) {
        self.in_journal = false;
        journal.remove(&self.record.key);
    }
}

/// Where a pending upload stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the last close, the write-back delay or an upload slot.
    Queued,
    Uploading,
    /// The last attempt failed transiently; another follows.
    Retrying(String),
    /// Failed for good; the data stays in the journal.
    Failed(String),
}

#[derive(Debug)]
pub struct Staged {
    pub ino: Ino,
    file: Arc<DirectFile>,
    pub state: Mutex<StageState>,
    pub commit: watch::Sender<Commit>,
    /// Bytes of the current upload attempt the server has confirmed.
    pub progress: Arc<AtomicU64>,
    /// Wakes a scheduled upload out of its write-back delay (`fsync`, `boxfs sync`).
    pub hurry: tokio::sync::Notify,
    /// Follows the content's SHA-1 while it is written front to back.
    hasher: Arc<ContentHasher>,
    /// Held across a change of the content and its report to `hasher`: changes land on disk in
    /// the order the hasher learns of them (two FUSE threads may write one file at once).
    changing: Mutex<()>,
}

impl Staged {
    /// A staged file. One that starts empty has its SHA-1 followed as it is written.
    pub fn new(ino: Ino, file: DirectFile, state: StageState) -> Staged {
        let hasher = ContentHasher::new(state.size == 0);
        Staged {
            hasher,
            changing: Mutex::new(()),
            ino,
            file: Arc::new(file),
            state: Mutex::new(state),
            commit: watch::channel(Commit::Nothing).0,
            progress: Arc::new(AtomicU64::new(0)),
            hurry: tokio::sync::Notify::new(),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, StageState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn key(&self) -> String {
        self.lock().record.key.clone()
    }

    /// The SHA-1 of the whole content (`size` bytes), when it was written front to back.
    /// Blocking: may wait for the hashing thread or hash the rest itself.
    pub fn content_sha1(&self, size: u64) -> Option<[u8; 20]> {
        self.hasher.finish(&self.file, size)
    }

    /// Writes at `offset`, growing the file as needed.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> VfsResult<u32> {
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let copies = self.file.write_all_at(data, offset)?;
        let mut st = self.lock();
        st.size = st.size.max(offset + data.len() as u64);
        self.hasher.wrote(&self.file, offset, data.len() as u64, st.size, copies);
        st.changed();
        Ok(data.len() as u32)
    }

    pub fn read_at(&self, offset: u64, size: u32) -> VfsResult<Vec<u8>> {
        let len = self.lock().size.saturating_sub(offset).min(u64::from(size)) as usize;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    pub fn truncate(&self, size: u64) -> VfsResult<()> {
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        self.file.cached().set_len(size)?;
        let mut st = self.lock();
        self.hasher.resized(size);
        st.size = size;
        st.changed();
        Ok(())
    }

    /// Reserves space for `offset..offset + len` in the staging file; grows the file unless
    /// `keep_size`.
    pub fn allocate(&self, offset: u64, len: u64, keep_size: bool) -> VfsResult<()> {
        use std::os::fd::AsRawFd;
        let mode = if keep_size { libc::FALLOC_FL_KEEP_SIZE } else { 0 };
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let (off, n) =
            (offset.try_into().map_err(|_| VfsError::Invalid)?, len.try_into().map_err(|_| VfsError::Invalid)?);
        // SAFETY: fallocate(2) on a descriptor this struct owns.
        if unsafe { libc::fallocate(self.file.cached().as_raw_fd(), mode, off, n) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let mut st = self.lock();
        if !keep_size && offset + len > st.size {
            self.hasher.resized(offset + len);
            st.size = offset + len;
            st.changed();
        }
        Ok(())
    }

    pub fn set_mtime(&self, mtime: SystemTime) {
        let mut st = self.lock();
        st.mtime = mtime;
        st.generation += 1;
    }

    /// Flushes the content to disk and marks the journal record so (see the journal's module
    /// doc), unless it is on disk already, changed meanwhile (a later flush covers that) or
    /// left the journal.
    pub fn persist(&self, journal: &Journal) {
        let generation = {
            let st = self.lock();
            if st.record.synced || !st.in_journal {
                return;
            }
            st.generation
        };
        if let Err(e) = self.file.cached().sync_data() {
            return tracing::warn!(error = %e, "cannot flush a staged file to disk");
        }
        let mut st = self.lock();
        if st.generation != generation || st.record.synced || !st.in_journal {
            return;
        }
        st.record.synced = true;
        if let Err(e) = journal.save_durable(&st.record) {
            st.record.synced = false;
            tracing::warn!(error = %e, "cannot flush a journal record to disk");
        }
    }

    /// Waits until content up to `generation` is committed (or its upload failed for good).
    pub async fn wait_committed(&self, generation: u64) -> VfsResult<()> {
        let mut rx = self.commit.subscribe();
        loop {
            match rx.borrow_and_update().clone() {
                Commit::Done(g) if g >= generation => return Ok(()),
                Commit::Failed(g, msg) if g >= generation => {
                    tracing::error!(error = %msg, "upload failed; the data is kept in the journal");
                    return Err(VfsError::Io(std::io::Error::other(msg)));
                }
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Ok(());
            }
        }
    }
}

/// `content_modified_at` for an mtime.
pub fn rfc3339(t: SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Utc> = t.into();
    dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn nanos(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

pub fn from_nanos(n: i128) -> SystemTime {
    if n >= 0 {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(n as u64)
    } else {
        SystemTime::UNIX_EPOCH - std::time::Duration::from_nanos((-n) as u64)
    }
}

/// Box's naming rules as errnos: `EINVAL` for names Box refuses, `ENAMETOOLONG` past 255
/// characters or (Linux's limit) 255 bytes.
pub fn check_name(name: &str) -> VfsResult<()> {
    use crate::api::model::{name_problem, NameProblem};
    match name_problem(name) {
        _ if name.len() > 255 => Err(VfsError::NameTooLong),
        Some(NameProblem::TooLong) => Err(VfsError::NameTooLong),
        Some(NameProblem::Invalid) => Err(VfsError::Invalid),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};

    #[test]
    fn names_follow_box_rules() {
        assert!(check_name("ok name.txt").is_ok());
        for bad in ["", ".", "..", "a\\b", "trailing ", "ctl\u{1}"] {
            assert!(matches!(check_name(bad), Err(VfsError::Invalid)), "{bad:?}");
        }
        assert!(matches!(check_name(&"x".repeat(256)), Err(VfsError::NameTooLong)));
    }

    fn staged_empty_file() -> (tempfile::TempDir, Staged) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        let file = DirectFile::new(file, &path, true);
        let record = Record::new("k".into(), "0".into(), "n".into(), 0);
        let state = StageState { writers: 1, ..StageState::new(record, 1, 0, SystemTime::now()) };
        (dir, Staged::new(2, file, state))
    }

    #[test]
    fn the_sha1_is_followed_while_written_front_to_back() {
        let (_dir, s) = staged_empty_file();
        s.write_at(0, b"hello ").unwrap();
        s.write_at(6, b"world").unwrap();
        let expected: [u8; 20] = Sha1::digest(b"hello world").into();
        assert_eq!(s.content_sha1(11), Some(expected));
        assert_eq!(s.content_sha1(12), None, "only for the whole content");
        // A rewrite in the middle makes it unknown; truncating to zero starts over.
        s.write_at(2, b"L").unwrap();
        assert_eq!(s.content_sha1(11), None);
        s.truncate(0).unwrap();
        s.write_at(0, b"abc").unwrap();
        assert_eq!(s.content_sha1(3), Some(Sha1::digest(b"abc").into()));
        // A gap reads as zeros, and is hashed as such.
        s.write_at(10, b"x").unwrap();
        assert_eq!(s.content_sha1(11), Some(Sha1::digest(b"abc\0\0\0\0\0\0\0x").into()));
    }

    #[test]
    fn mtime_round_trips_through_nanos() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(from_nanos(nanos(t)), t);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
    }
}
