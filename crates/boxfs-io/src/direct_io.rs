//! Big transfers that bypass the page cache. A [`DirectFile`] is one file opened twice: as
//! usual, and with `O_DIRECT`, through which the page-aligned stretch of a big read or write
//! goes straight between our buffers and the disk. Staged uploads use it (their bytes are
//! written once, read back once to hash and once to send), and so do block cache files (whose
//! bytes the RAM tier and the kernel's cache of the mounted file already hold): neither is
//! wanted in the page cache, where each GiB costs a copy into freshly allocated pages and later
//! their writeback (measured with `dd` on the 2-core CI VM: 1.5–1.8 s of kernel time per GiB
//! buffered, plus 0.4 s to flush it; 0.2 s direct, already on disk).
//!
//! Small or unaligned transfers, and the unaligned tail of a big one, use the page cache. The
//! kernel keeps the two views coherent: a direct write drops the cached pages of its range and a
//! direct read first writes back dirty ones. Where the filesystem refuses `O_DIRECT` (tmpfs at
//! open, some others at the first transfer) everything goes through the page cache.

use crate::blockbuf::{BufPool, ALIGN};
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

/// Transfers shorter than this go through the page cache: a small write is cheaper there than
/// a synchronous trip to the disk, and the flush before its upload is one trip for all of them.
pub const MIN_DIRECT: usize = 64 * 1024;

/// Bounce buffers for writes whose bytes are not page-aligned in memory (a FUSE request's).
/// Up to `vfs::hasher`'s eight copies held for hashing, and two in use, stay mapped.
const BOUNCE: usize = 1024 * 1024;
static BOUNCE_BUFS: LazyLock<Arc<BufPool>> = LazyLock::new(|| BufPool::new(BOUNCE as u64, 10));

#[derive(Debug)]
pub struct DirectFile {
    cached: File,
    path: PathBuf,
    writable: bool,
    /// Opened at the first big transfer (a file that never has one costs one descriptor);
    /// `None` when the filesystem refuses `O_DIRECT`.
    direct: OnceLock<Option<File>>,
    /// Set when a direct transfer was refused: the rest go through the page cache.
    refused: AtomicBool,
}

impl DirectFile {
    /// `cached`, an open descriptor of `path`, with a direct twin opened when first needed
    /// (read-write when `cached` may write).
    pub fn new(cached: File, path: &Path, writable: bool) -> DirectFile {
        let (path, direct, refused) = (path.to_path_buf(), OnceLock::new(), AtomicBool::new(false));
        DirectFile { cached, path, writable, direct, refused }
    }

    /// Opens `path` for reading.
    pub fn open(path: &Path) -> io::Result<DirectFile> {
        Ok(DirectFile::new(File::open(path)?, path, false))
    }

    /// The ordinary descriptor: for metadata, size changes and flushes.
    pub fn cached(&self) -> &File {
        &self.cached
    }

    /// The direct descriptor, when a transfer of `len` bytes at `offset` may use it.
    fn may_go_direct(&self, len: usize, offset: u64) -> Option<&File> {
        if len < MIN_DIRECT || offset % ALIGN as u64 != 0 || self.refused.load(Ordering::Relaxed) {
            return None;
        }
        self.direct.get_or_init(|| self.open_twin()).as_ref()
    }

    fn open_twin(&self) -> Option<File> {
        let mut options = OpenOptions::new();
        options.read(true).write(self.writable).custom_flags(libc::O_DIRECT);
        options.open(&self.path).ok()
    }

    /// For a transfer from or to `ptr`: the descriptor and the length of its head that may go
    /// direct (whole pages from an aligned address).
    fn direct_head(&self, ptr: *const u8, len: usize, offset: u64) -> Option<(&File, usize)> {
        let direct = self.may_go_direct(len, offset).filter(|_| ptr as usize % ALIGN == 0)?;
        Some((direct, len / ALIGN * ALIGN))
    }

    /// A direct transfer failed with `e`: `EINVAL` means this file cannot do them, so the
    /// caller retries through the page cache; anything else is the caller's error.
    fn refuse(&self, e: io::Error) -> io::Result<()> {
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
        if !self.refused.swap(true, Ordering::Relaxed) {
            tracing::debug!(path = %self.path.display(), "O_DIRECT refused; using the page cache");
        }
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes at `offset` (`UnexpectedEof` past the end).
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        if let Some((direct, head)) = self.direct_head(buf.as_ptr(), buf.len(), offset) {
            match direct.read_exact_at(&mut buf[..head], offset) {
                Ok(()) => done = head,
                Err(e) => self.refuse(e)?,
            }
        }
        self.cached.read_exact_at(&mut buf[done..], offset + done as u64)
    }

    /// Feeds `len` bytes from `offset` to `f`, in chunks read through one aligned buffer.
    pub fn for_each_chunk(&self, offset: u64, len: u64, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(BOUNCE as u64);
            let mut buf = BOUNCE_BUFS.take_pooled(n);
            buf.fill_with(|space| self.read_exact_at(space, offset + done))?;
            f(buf.as_ref());
            done += n;
        }
        Ok(())
    }

    /// Writes all of `data` at `offset`. Bytes not aligned in memory are copied to aligned
    /// buffers first when the write is big enough to go direct; those copies are returned (in
    /// order, covering all of `data`) for a caller that wants the bytes again.
    pub fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<Vec<Bytes>> {
        let aligned = data.as_ptr() as usize % ALIGN == 0;
        if aligned || self.may_go_direct(data.len(), offset).is_none() {
            return self.write_chunk(data, offset).map(|()| Vec::new());
        }
        let mut copies = Vec::with_capacity(data.len().div_ceil(BOUNCE));
        for (i, chunk) in data.chunks(BOUNCE).enumerate() {
            let mut buf = BOUNCE_BUFS.take_pooled(chunk.len() as u64);
            buf.push(chunk);
            self.write_chunk(buf.as_ref(), offset + (i * BOUNCE) as u64)?;
            copies.push(buf.freeze());
        }
        Ok(copies)
    }

    fn write_chunk(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        if let Some((direct, head)) = self.direct_head(data.as_ptr(), data.len(), offset) {
            match direct.write_all_at(&data[..head], offset) {
                Ok(()) => done = head,
                Err(e) => self.refuse(e)?,
            }
        }
        self.cached.write_all_at(&data[done..], offset + done as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    fn open_rw(path: &Path) -> DirectFile {
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).unwrap();
        DirectFile::new(f, path, true)
    }

    #[test]
    fn mixed_direct_and_cached_transfers_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = open_rw(&path);
        let mut model = vec![0u8; 0];
        let mut put = |data: &[u8], at: usize| {
            file.write_all_at(data, at as u64).unwrap();
            if model.len() < at + data.len() {
                model.resize(at + data.len(), 0);
            }
            model[at..at + data.len()].copy_from_slice(data);
        };
        put(&pattern(3 * BOUNCE + 1000, 1), 0); // bounced in chunks, unaligned tail
        put(&pattern(100, 2), 5); // small, cached
        put(&pattern(MIN_DIRECT, 3)[1..], ALIGN); // unaligned in memory (a slice), aligned offset
        put(&pattern(2 * MIN_DIRECT, 4), 2 * BOUNCE + 17); // unaligned offset
        let mut back = vec![0u8; model.len()];
        file.read_exact_at(&mut back, 0).unwrap();
        assert!(back == model, "plain read");
        let mut buf = BOUNCE_BUFS.take(BOUNCE as u64);
        buf.fill_with(|space| file.read_exact_at(space, BOUNCE as u64)).unwrap();
        assert!(buf.as_ref() == &model[BOUNCE..2 * BOUNCE], "aligned read");
        assert_eq!(std::fs::read(&path).unwrap(), model, "through another descriptor");
        let mut past = vec![0u8; 10];
        let err = file.read_exact_at(&mut past, model.len() as u64 - 5).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_file_without_a_direct_twin_uses_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = open_rw(&path);
        file.direct.set(None).unwrap();
        let data = pattern(2 * BOUNCE, 9);
        file.write_all_at(&data, 0).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
