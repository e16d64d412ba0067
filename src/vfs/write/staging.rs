//! Staged entries: local changes of a file or folder not yet in Box. The first write (or a
//! truncate, or a create) stages the whole file in the journal (existing content fetched through
//! the block cache unless truncated); reads, `stat` and listings see the staged bytes, size
//! and mtime until the upload commits. An entry made by a change of attributes alone (`chmod`)
//! has no content: it gets one only if the file is then opened for writing.

use super::hasher::ContentHasher;
use super::journal::{Journal, Record};
use super::upload_state::Upload;
use crate::vfs::error::{VfsError, VfsResult};
use crate::vfs::meta::inode::Ino;
use crate::vfs::time::nanos;
use boxfs_io::direct_io::DirectFile;
use bytes::Bytes;
use std::os::unix::fs::FileExt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};
use tokio::sync::{watch, Notify};

#[derive(Debug)]
pub struct StageState {
    /// What the journal says of the entry; changed only through [`StageState::edit_record`].
    record: Record,
    /// Bumped by every edit of `record`.
    record_rev: u64,
    /// The newest `record_rev` written durably (after its data was flushed).
    durable_rev: u64,
    /// The newest content generation flushed to disk with a durable record.
    flushed_gen: u64,
    /// The directory the file shows in; `None` while it shows nowhere in this mount (an
    /// entry an earlier run left whose folder was not listed yet, or one held back).
    pub parent: Option<Ino>,
    pub size: u64,
    pub mtime: SystemTime,
    /// Where its upload stands.
    pub upload: Upload,
    /// A task drives its upload (see `writeback.rs`).
    pub driving: bool,
    /// Its journal entry exists (false once it left: committed, removed or discarded).
    pub in_journal: bool,
    /// The entry this one replaced by a rename while that one's upload ran: this one's
    /// upload waits until that one's has ended (and takes what it landed as its base).
    pub after: Option<Arc<Staged>>,
    /// Replaced by a rename while its upload ran: what lands becomes the replacement's base
    /// instead of being deleted.
    pub replaced_by: Option<std::sync::Weak<Staged>>,
    /// Left by an earlier run, whose upload may have committed before it died: Box's copy is
    /// checked before anything is sent.
    pub check_box_first: bool,
}

impl StageState {
    pub fn new(record: Record, parent: Option<Ino>, size: u64, mtime: SystemTime, upload: Upload) -> StageState {
        StageState {
            record,
            record_rev: 0,
            durable_rev: 0,
            flushed_gen: 0,
            parent,
            size,
            mtime,
            upload,
            driving: false,
            in_journal: true,
            after: None,
            replaced_by: None,
            check_box_first: false,
        }
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The record, to change (then save it with [`Staged::save_record`]).
    pub fn edit_record(&mut self) -> &mut Record {
        self.record_rev += 1;
        &mut self.record
    }

    /// Content changed now.
    fn changed(&mut self) {
        self.mtime = SystemTime::now();
        self.upload.changed(Instant::now());
    }

    /// A file that exists only here so far (its first upload has not landed).
    pub fn only_local(&self) -> bool {
        self.record.base_id.is_none()
    }

    /// Its latest content and record are on the local disk (an fsync since the last change).
    pub fn durable(&self) -> bool {
        self.flushed_gen == self.upload.generation() && self.durable_rev == self.record_rev && self.record.synced
    }
}

/// A staged file's local content: its data file, and its SHA-1 followed while it is written.
#[derive(Debug)]
struct Content {
    file: Arc<DirectFile>,
    hasher: Arc<ContentHasher>,
}

impl Content {
    /// Content of `size` bytes; one that starts empty has its SHA-1 followed as it is written.
    fn new(file: DirectFile, size: u64) -> Content {
        Content { hasher: ContentHasher::new(size == 0), file: Arc::new(file) }
    }
}

fn no_content() -> std::io::Error {
    std::io::Error::other("the entry has no staged content")
}

#[derive(Debug)]
pub struct Staged {
    pub ino: Ino,
    /// Set once: at staging, or when an entry of attributes alone is first written to.
    content: tokio::sync::OnceCell<Content>,
    pub state: Mutex<StageState>,
    /// Ticks on every upload state change, for those waiting for one (`fsync` under
    /// `--fsync box`, `boxfs sync`).
    pub settled: watch::Sender<()>,
    /// Wakes the driver to look at the state again (a sync, a close, a change).
    pub wake: Notify,
    /// Bytes of the current upload attempt the server has confirmed.
    pub progress: Arc<AtomicU64>,
    /// Held across a change of the content and its report to `hasher` (changes land on disk in
    /// the order the hasher learns of them), and while a direct upload reads its snapshot.
    changing: Mutex<()>,
    /// Held across taking a record and writing it, so the journal never goes back to an older one.
    record_io: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Staged {
    /// A staged entry: with its content in `file`, or (`None`) of attributes alone.
    pub fn new(ino: Ino, file: Option<DirectFile>, state: StageState) -> Staged {
        let content = tokio::sync::OnceCell::new_with(file.map(|f| Content::new(f, state.size)));
        Staged {
            content,
            changing: Mutex::new(()),
            record_io: Mutex::new(()),
            ino,
            state: Mutex::new(state),
            settled: watch::channel(()).0,
            wake: Notify::new(),
            progress: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, StageState> {
        lock(&self.state)
    }

    pub fn key(&self) -> String {
        self.lock().record.key.clone()
    }

    /// The entry has local content (else it changes attributes alone).
    pub fn has_content(&self) -> bool {
        self.content.initialized()
    }

    fn content(&self) -> std::io::Result<&Content> {
        self.content.get().ok_or_else(no_content)
    }

    /// Gives an entry of attributes alone its content, once (concurrent callers wait for the
    /// first): `fill` makes the data file and says its size.
    pub async fn attach_content<F>(&self, fill: impl FnOnce() -> F) -> VfsResult<()>
    where
        F: std::future::Future<Output = VfsResult<(DirectFile, u64)>>,
    {
        self.content
            .get_or_try_init(|| async {
                let (file, size) = fill().await?;
                self.lock().size = size;
                Ok::<_, VfsError>(Content::new(file, size))
            })
            .await?;
        Ok(())
    }

    /// The SHA-1 of the whole content (`size` bytes), when it was written front to back.
    /// Blocking: may wait for the hashing thread or hash the rest itself.
    pub fn content_sha1(&self, size: u64) -> Option<[u8; 20]> {
        let c = self.content.get()?;
        c.hasher.finish(&c.file, size)
    }

    /// Writes at `offset`, growing the file as needed.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> VfsResult<u32> {
        let c = self.content()?;
        let _changing = lock(&self.changing);
        let copies = c.file.write_all_at(data, offset)?;
        let mut st = self.lock();
        st.size = st.size.max(offset + data.len() as u64);
        c.hasher.wrote(&c.file, offset, data.len() as u64, st.size, copies);
        st.changed();
        Ok(data.len() as u32)
    }

    /// Up to `size` bytes from `offset`: fewer at the end of the file, also when a truncate
    /// shortens it meanwhile (what exists at that moment).
    pub fn read_at(&self, offset: u64, size: u32) -> VfsResult<Vec<u8>> {
        let file = &self.content()?.file;
        let len = self.lock().size.saturating_sub(offset).min(u64::from(size)) as usize;
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            match file.cached().read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// The whole content as it is now, read while no change can land, so that an upload of
    /// it sends exactly one version.
    pub fn snapshot(&self) -> std::io::Result<Bytes> {
        let file = &self.content()?.file;
        let _changing = lock(&self.changing);
        let mut buf = vec![0u8; self.lock().size as usize];
        file.read_exact_at(&mut buf, 0)?;
        Ok(Bytes::from(buf))
    }

    /// The SHA-1 (hex) of the whole content as it is now: as followed while it was written,
    /// else read back. Blocking.
    pub fn sha1_hex(&self) -> std::io::Result<String> {
        use sha1::{Digest, Sha1};
        let c = self.content()?;
        let _changing = lock(&self.changing);
        let size = self.lock().size;
        if let Some(raw) = c.hasher.finish(&c.file, size) {
            return Ok(hex::encode(raw));
        }
        let mut hasher = Sha1::new();
        c.file.for_each_chunk(0, size, |chunk| hasher.update(chunk))?;
        Ok(hex::encode(hasher.finalize()))
    }

    pub fn truncate(&self, size: u64) -> VfsResult<()> {
        let c = self.content()?;
        let _changing = lock(&self.changing);
        c.file.cached().set_len(size)?;
        let mut st = self.lock();
        c.hasher.resized(size);
        st.size = size;
        st.changed();
        Ok(())
    }

    /// Reserves space for `offset..offset + len` in the staging file; grows the file unless
    /// `keep_size`.
    pub fn allocate(&self, offset: u64, len: u64, keep_size: bool) -> VfsResult<()> {
        use std::os::fd::AsRawFd;
        let mode = if keep_size { libc::FALLOC_FL_KEEP_SIZE } else { 0 };
        let c = self.content()?;
        let _changing = lock(&self.changing);
        let (off, n) =
            (offset.try_into().map_err(|_| VfsError::Invalid)?, len.try_into().map_err(|_| VfsError::Invalid)?);
        // SAFETY: fallocate(2) on a descriptor this struct owns.
        if unsafe { libc::fallocate(c.file.cached().as_raw_fd(), mode, off, n) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let mut st = self.lock();
        if !keep_size && offset + len > st.size {
            c.hasher.resized(offset + len);
            st.size = offset + len;
            st.changed();
        }
        Ok(())
    }

    pub fn set_mtime(&self, mtime: SystemTime) {
        let mut st = self.lock();
        st.upload.changed(Instant::now());
        st.mtime = mtime;
    }

    /// Writes the current record (with the current mtime) to the journal; `durable` once
    /// the data was flushed. Nothing once the entry left the journal.
    pub fn save_record(&self, journal: &Journal, durable: bool) -> std::io::Result<()> {
        let _io = lock(&self.record_io);
        let (record, rev) = {
            let mut st = self.lock();
            let mtime = nanos(st.mtime);
            if st.record.mtime_ns != mtime {
                st.edit_record().mtime_ns = mtime;
            }
            if !st.in_journal || (durable && st.durable_rev == st.record_rev && st.record.synced) {
                return Ok(());
            }
            if durable && !st.record.synced {
                st.edit_record().synced = true;
            }
            (st.record.clone(), st.record_rev)
        };
        match durable {
            true => journal.save_durable(&record)?,
            false => journal.save(&record)?,
        }
        if durable {
            let mut st = self.lock();
            st.durable_rev = st.durable_rev.max(rev);
        }
        Ok(())
    }

    /// What `fsync` promises: every write made before it, the entry's journal record and its
    /// directory entry reach the local disk, so that a crash or power loss from here on loses
    /// none of it (the next mount uploads it).
    pub fn persist(&self, journal: &Journal) -> std::io::Result<()> {
        let generation = {
            let st = self.lock();
            if !st.in_journal {
                return Ok(());
            }
            st.upload.generation()
        };
        if let Some(c) = self.content.get() {
            c.file.cached().sync_data()?;
        }
        self.save_record(journal, true)?;
        let mut st = self.lock();
        st.flushed_gen = st.flushed_gen.max(generation);
        Ok(())
    }

    /// Takes the entry out of the journal (committed, removed or discarded); no later save
    /// brings it back.
    pub fn leave_journal(&self, journal: &Journal) {
        let _io = lock(&self.record_io);
        let key = {
            let mut st = self.lock();
            if !st.in_journal {
                return;
            }
            st.in_journal = false;
            st.record.key.clone()
        };
        journal.remove(&key);
    }

    /// Tells those waiting for its upload that the state changed.
    pub fn tell_waiters(&self) {
        self.settled.send_replace(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};

    fn staged_empty_file() -> (tempfile::TempDir, Staged) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        let file = DirectFile::new(file, &path, true);
        let record = Record::new("k".into(), "0".into(), "n".into(), 0);
        let upload = Upload::staged(super::super::upload_state::Timing::default(), 1, true, Instant::now());
        let state = StageState::new(record, Some(1), 0, SystemTime::now(), upload);
        (dir, Staged::new(2, Some(file), state))
    }

    #[test]
    fn reads_racing_truncates_are_short_never_errors() {
        let (_dir, s) = staged_empty_file();
        s.write_at(0, &vec![7u8; 1 << 20]).unwrap();
        let s = Arc::new(s);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let truncator = {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 1u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    s.truncate((n >> 44) % (1 << 20)).unwrap();
                    s.write_at((n >> 40) % (1 << 20), &[7u8; 4096]).unwrap();
                }
            })
        };
        for i in 0..20_000u64 {
            let data = s.read_at((i * 7919) % (1 << 20), 65536).expect("a read racing a truncate never fails");
            assert!(data.iter().all(|&b| b == 7 || b == 0));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        truncator.join().unwrap();
    }

    #[test]
    fn persist_flushes_the_record_once_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let file = journal.create_data("k").unwrap();
        let record = Record::new("k".into(), "0".into(), "n".into(), 0);
        let upload = Upload::staged(super::super::upload_state::Timing::default(), 1, true, Instant::now());
        let s = Staged::new(2, Some(file), StageState::new(record, Some(1), 0, SystemTime::now(), upload));
        s.write_at(0, b"abc").unwrap();
        s.persist(&journal).unwrap();
        let on_disk = journal.records().unwrap().remove(0);
        assert!(on_disk.synced, "the record says its data reached the disk");
        assert_eq!(on_disk.mtime_ns, nanos(s.lock().mtime), "with the latest mtime");
        assert!(s.lock().durable());
        let rev = s.lock().record_rev;
        s.persist(&journal).unwrap();
        assert_eq!(s.lock().record_rev, rev, "an fsync with nothing new writes no record");
        s.lock().edit_record().name = "m".into();
        s.save_record(&journal, false).unwrap();
        s.persist(&journal).unwrap();
        assert_eq!(journal.records().unwrap()[0].name, "m");
        assert!(s.lock().durable());
        s.leave_journal(&journal);
        s.save_record(&journal, false).unwrap();
        assert!(journal.records().unwrap().is_empty(), "no save brings a removed entry back");
    }

    #[test]
    fn an_entry_of_attributes_alone_gets_its_content_once() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let record = Record::new("k".into(), "0".into(), "n".into(), 0);
        let upload = Upload::staged(super::super::upload_state::Timing::default(), 0, false, Instant::now());
        let s = Staged::new(2, None, StageState::new(record, Some(1), 7, SystemTime::now(), upload));
        assert!(!s.has_content());
        assert!(s.read_at(0, 10).is_err() && s.snapshot().is_err(), "nothing staged to read");
        s.persist(&journal).unwrap();
        assert!(!journal.data_path("k").exists(), "a record, no data file");
        let fill = |bytes: &'static [u8]| {
            let file = journal.create_data("k").unwrap();
            file.write_all_at(bytes, 0).unwrap();
            async move { Ok((file, bytes.len() as u64)) }
        };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(s.attach_content(|| fill(b"box bytes"))).unwrap();
        rt.block_on(s.attach_content(|| fill(b"again"))).unwrap();
        assert!(s.has_content());
        assert_eq!((s.read_at(0, 100).unwrap(), s.lock().size), (b"box bytes".to_vec(), 9), "the first fill stays");
    }

    #[test]
    fn a_snapshot_is_one_version() {
        let (_dir, s) = staged_empty_file();
        s.write_at(0, b"hello").unwrap();
        assert_eq!(&s.snapshot().unwrap()[..], b"hello");
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
}
