//! The on-disk block cache: fixed-size blocks of remote file contents, keyed by file id, file
//! version and block index, stored one file per block in a private directory (0700, blocks
//! 0600), written atomically (temp file + rename) and evicted least-recently-used down to a byte
//! capacity. Only a small index (key → size) lives in memory; the bytes stay on disk and the OS
//! page cache keeps hot ones. The index is rebuilt from the directory at open, so a remount reuses
//! what an earlier mount downloaded.
//!
//! A download streams into a [`BlockWriter`] (a temp file, written through a small staging
//! buffer) and is committed into place; what it yields is a [`BlockFile`], an open handle that
//! reads the block even if it is evicted meanwhile. The daemon never holds a whole block in
//! its own memory: the bytes on their way live in the page cache, which the kernel can reclaim,
//! so the memory a reader costs does not grow with the number of downloads in flight. The cache
//! keeps the handles of the most recently downloaded blocks (the recent tier), so that a
//! sequential reader consuming what the prefetcher fetched ahead reads it straight from the
//! page cache, on any thread ([`BlockFile::read_now`] never waits for the disk). A sequential
//! reader takes the blocks it is done with out of the recent tier.
//!
//! On disk a block is `b-<block size>-<hex(file id)>-<hex(version)>-<index>`: hex keeps any id
//! or version safe as a file name, and the block size in the name keeps blocks cut at another size
//! (an earlier mount with a different setting) from being misread; they are deleted at open.
//! Temp files are `tmp-<pid>-<random>`; a crash can leave one behind, and `open` deletes it.
//!
//! Pinned content: the cache keeps a set of pinned contents (file id + version, see
//! [`ContentKey`]), persisted in `pinned.json` in the cache dir (replaced atomically, read at
//! open). Blocks of pinned content are never evicted and are accounted apart (`pinned_bytes`):
//! the capacity budgets the other blocks only, so a remount with a smaller capacity evicts
//! nothing pinned. Unpinned, they become ordinary blocks (the most recently used ones).

use super::version::ContentVersion;
use bytes::Bytes;
use lru::LruCache;
use std::collections::{HashMap, HashSet};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncWrite;

/// The default block size: 4 MiB.
pub const DEFAULT_BLOCK_SIZE: u64 = 4 * 1024 * 1024;

/// Longest file name we create (most Linux filesystems allow 255 bytes).
const MAX_NAME_LEN: usize = 255;
/// A cache hit updates the block file's mtime (its recency across remounts) at most this often.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);
const BLOCK_PREFIX: &str = "b-";
/// A [`BlockWriter`] hands bytes to the file in writes of this size: few system calls, and
/// little memory per download in flight.
const STAGING: usize = 256 * 1024;
/// Pieces at least this big skip the staging buffer when it is empty.
const DIRECT_WRITE: usize = 64 * 1024;
const TMP_PREFIX: &str = "tmp-";
/// The pinned contents, in the cache dir.
const PINNED_FILE: &str = "pinned.json";

/// One block of one version of one file. Blocks of different versions never mix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlockKey {
    pub file_id: String,
    pub version: ContentVersion,
    /// Block number: the block covers `index * block_size ..` up to `block_size` bytes.
    pub index: u64,
}

struct Entry {
    size: u64,
    /// When this process last set the block file's mtime (None: not since open).
    touched: Option<Instant>,
}

/// One version of one file's content (all its blocks): what a pin keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContentKey {
    pub file_id: String,
    pub version: ContentVersion,
}

impl ContentKey {
    /// Block `index` of this content.
    pub fn block(&self, index: u64) -> BlockKey {
        BlockKey { file_id: self.file_id.clone(), version: self.version.clone(), index }
    }
}

/// `pinned.json`: each pinned content as `[file id, version's cache name]`.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct PinnedFile {
    pinned: Vec<(String, String)>,
}

/// Blocks in the cache: the evictable ones in LRU order (their bytes are `used`), the pinned
/// ones apart (`pinned_used`). A block is in one of the two maps, never both, and in
/// `pinned` exactly when its content is in `pinned_contents`.
struct Index {
    lru: LruCache<BlockKey, Entry>,
    used: u64,
    pinned: HashMap<BlockKey, Entry>,
    pinned_used: u64,
    /// Pinned versions by file id.
    pinned_contents: HashMap<String, HashSet<ContentVersion>>,
}

impl Index {
    fn is_pinned(&self, key: &BlockKey) -> bool {
        self.pinned_contents.get(&key.file_id).is_some_and(|v| v.contains(&key.version))
    }

    fn peek(&self, key: &BlockKey) -> Option<&Entry> {
        self.pinned.get(key).or_else(|| self.lru.peek(key))
    }

    /// The entry (refreshing its LRU recency when it is evictable).
    fn get_mut(&mut self, key: &BlockKey) -> Option<&mut Entry> {
        match self.pinned.get_mut(key) {
            Some(e) => Some(e),
            None => self.lru.get_mut(key),
        }
    }

    fn contains(&self, key: &BlockKey) -> bool {
        self.pinned.contains_key(key) || self.lru.contains(key)
    }

    /// Adds (or replaces) a block, pinned if its content is.
    fn insert(&mut self, key: BlockKey, entry: Entry) {
        self.take(&key);
        if self.is_pinned(&key) {
            self.pinned_used += entry.size;
            self.pinned.insert(key, entry);
        } else {
            self.used += entry.size;
            self.lru.put(key, entry);
        }
    }

    /// Removes a block from the index.
    fn take(&mut self, key: &BlockKey) -> Option<Entry> {
        if let Some(e) = self.pinned.remove(key) {
            self.pinned_used -= e.size;
            return Some(e);
        }
        let e = self.lru.pop(key)?;
        self.used -= e.size;
        Some(e)
    }

    fn keys(&self) -> impl Iterator<Item = &BlockKey> {
        self.pinned.keys().chain(self.lru.iter().map(|(k, _)| k))
    }

    /// Marks `contents` pinned and moves their blocks apart (one pass over the evictable
    /// blocks); false if every one was pinned already.
    fn pin(&mut self, contents: &[ContentKey]) -> bool {
        let mut added = false;
        for c in contents {
            added |= self.pinned_contents.entry(c.file_id.clone()).or_default().insert(c.version.clone());
        }
        if added {
            let moving: Vec<BlockKey> =
                self.lru.iter().map(|(k, _)| k).filter(|k| self.is_pinned(k)).cloned().collect();
            self.reindex(moving);
        }
        added
    }

    /// Marks the pinned contents `keep` says no to unpinned; their blocks become the most
    /// recently used evictable ones (one pass over the pinned blocks). False if none was.
    fn unpin_unless(&mut self, keep: impl Fn(&ContentKey) -> bool) -> bool {
        let doomed: Vec<ContentKey> = self.contents().into_iter().filter(|c| !keep(c)).collect();
        for c in &doomed {
            if let Some(versions) = self.pinned_contents.get_mut(&c.file_id) {
                versions.remove(&c.version);
                if versions.is_empty() {
                    self.pinned_contents.remove(&c.file_id);
                }
            }
        }
        if !doomed.is_empty() {
            let moving: Vec<BlockKey> = self.pinned.keys().filter(|k| !self.is_pinned(k)).cloned().collect();
            self.reindex(moving);
        }
        !doomed.is_empty()
    }

    /// Puts blocks where their content's pin (or its absence) says they belong.
    fn reindex(&mut self, keys: Vec<BlockKey>) {
        for key in keys {
            if let Some(e) = self.take(&key) {
                self.insert(key, e);
            }
        }
    }

    fn contents(&self) -> Vec<ContentKey> {
        let mut out: Vec<ContentKey> = self
            .pinned_contents
            .iter()
            .flat_map(|(id, vs)| vs.iter().map(|v| ContentKey { file_id: id.clone(), version: v.clone() }))
            .collect();
        out.sort_by(|a, b| (&a.file_id, a.version.cache_name()).cmp(&(&b.file_id, b.version.cache_name())));
        out
    }
}

/// The block cache. `Send + Sync`; share it with `Arc`.
pub struct BlockCache {
    dir: PathBuf,
    capacity: u64,
    block_size: u64,
    index: Mutex<Index>,
    /// The recent tier: handles of the most recently downloaded blocks (`None`: disabled).
    recent: Option<Mutex<LruCache<BlockKey, BlockFile>>>,
}

impl BlockCache {
    /// Opens (creating) the cache dir: dir mode 0700, block files 0600. Rebuilds its index from
    /// what is on disk (so a remount reuses blocks), deleting leftover temp files and anything
    /// unparseable, then evicts down to `capacity_bytes`. The directory must be dedicated to the
    /// cache: files in it that are not blocks are deleted.
    pub fn open(dir: &Path, capacity_bytes: u64, block_size: u64) -> io::Result<BlockCache> {
        if block_size == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "block size must be positive"));
        }
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;

        let mut found: Vec<(SystemTime, BlockKey, u64)> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let path = entry.path();
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if meta.is_dir() {
                tracing::warn!(path = %path.display(), "unexpected directory in the block cache; leaving it");
                continue;
            }
            if name == PINNED_FILE {
                continue;
            }
            let parsed = name.to_str().and_then(|n| parse_name(n, block_size));
            match parsed {
                Some(key) if meta.is_file() && meta.len() <= block_size => {
                    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    found.push((mtime, key, meta.len()));
                }
                _ => {
                    tracing::debug!(path = %path.display(), "removing stale file from the block cache");
                    remove_quietly(&path);
                }
            }
        }
        // Oldest first, so the most recently written/used block ends up most recently used.
        found.sort_by_key(|f| f.0);
        let mut index = Index {
            lru: LruCache::unbounded(),
            used: 0,
            pinned: HashMap::new(),
            pinned_used: 0,
            pinned_contents: HashMap::new(),
        };
        index.pin(&read_pinned(&dir.join(PINNED_FILE))?);
        for (_, key, size) in found {
            index.insert(key, Entry { size, touched: None });
        }
        let cache = BlockCache {
            dir: dir.to_path_buf(),
            capacity: capacity_bytes,
            block_size,
            index: Mutex::new(index),
            recent: None,
        };
        {
            let mut index = cache.lock();
            cache.evict(&mut index);
        }
        Ok(cache)
    }

    /// Sets how many blocks the recent tier holds (none until this is called; 0 disables it).
    pub fn with_recent_blocks(mut self, blocks: usize) -> BlockCache {
        self.recent = NonZeroUsize::new(blocks).map(|n| Mutex::new(LruCache::new(n)));
        self
    }

    fn recent(&self) -> Option<MutexGuard<'_, LruCache<BlockKey, BlockFile>>> {
        self.recent.as_ref().map(|r| r.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Keeps a just-downloaded block's handle in the recent tier (evicting the least recent).
    pub fn keep_recent(&self, key: &BlockKey, file: BlockFile) {
        if let Some(mut recent) = self.recent() {
            recent.put(key.clone(), file);
        }
    }

    /// Takes a block out of the recent tier (its reader is done with it; it stays on disk).
    pub fn forget_recent(&self, key: &BlockKey) {
        if let Some(mut recent) = self.recent() {
            recent.pop(key);
        }
    }

    /// Bytes `start..end` of a block in the recent tier (clipped to the block) if the page
    /// cache holds them all: never waits for the disk, so any thread may ask.
    pub fn recent_range_now(&self, key: &BlockKey, start: u64, end: u64) -> Option<Bytes> {
        let file = self.recent()?.get(key)?.clone();
        file.read_now(start, end)
    }

    /// Blocks in the recent tier.
    #[cfg(test)]
    pub fn recent_blocks(&self) -> usize {
        self.recent().map_or(0, |r| r.len())
    }

    fn forget_recent_unless(&self, keep: impl Fn(&BlockKey) -> bool) {
        if let Some(mut recent) = self.recent() {
            let doomed: Vec<BlockKey> = recent.iter().filter(|(k, _)| !keep(k)).map(|(k, _)| k.clone()).collect();
            for key in doomed {
                recent.pop(&key);
            }
        }
    }

    /// The size every block has (the last block of a file is shorter).
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// The configured capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The block's bytes if cached (a hit refreshes LRU recency).
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        self.get_range(key, 0, u64::MAX)
    }

    /// Up to `len` bytes of a cached block starting `start` bytes into it (fewer at the block's
    /// end, empty if `start` is past it); `None` if the block is not cached. A hit refreshes LRU
    /// recency. Reads only the bytes asked for, so a small read of a big block stays cheap.
    pub fn get_range(&self, key: &BlockKey, start: u64, len: u64) -> Option<Bytes> {
        let path = self.path_of(key)?;
        let (size, touch) = {
            let mut index = self.lock();
            let entry = index.get_mut(key)?;
            let now = Instant::now();
            let touch = entry.touched.is_none_or(|t| now.duration_since(t) >= TOUCH_INTERVAL);
            if touch {
                entry.touched = Some(now);
            }
            (entry.size, touch)
        };
        match read_block(&path, size, start, len, touch) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                // Deleted behind our back, or shorter than recorded: forget it (a miss refetches).
                tracing::debug!(path = %path.display(), error = %e, "unreadable cached block; dropping it");
                let mut index = self.lock();
                if index.peek(key).is_some_and(|e| e.size == size) {
                    index.take(key);
                    remove_quietly(&path);
                }
                None
            }
        }
    }

    /// Whether the block is cached (does not touch recency).
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.lock().contains(key)
    }

    /// The cached block's size, if cached (does not touch recency).
    pub fn cached_len(&self, key: &BlockKey) -> Option<u64> {
        self.lock().peek(key).map(|e| e.size)
    }

    /// A writer for `key`'s block, streaming into a new temp file in the cache dir; nothing is
    /// cached until it is [committed](Self::commit).
    pub fn writer(&self, key: &BlockKey) -> io::Result<BlockWriter> {
        let path = self
            .path_of(key)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "block key too long for a file name"))?;
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}-{:016x}", std::process::id(), rand::random::<u64>()));
        let file = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&tmp)?;
        Ok(BlockWriter {
            file,
            tmp: TempName(Some(tmp)),
            path,
            key: key.clone(),
            limit: self.block_size,
            flushed: 0,
            staging: Vec::new(),
        })
    }

    /// Puts a written block in place atomically (the temp file renamed over its name, so a
    /// crash never leaves a torn block), then evicts least-recently-used blocks until total
    /// bytes <= capacity (which may evict this block itself if it alone exceeds the capacity;
    /// the handle returned still reads it). Without an fsync: after a power loss a block may
    /// come back short, which readers detect by its length.
    pub fn commit(&self, mut writer: BlockWriter) -> io::Result<BlockFile> {
        writer.flush_staging()?;
        let tmp = writer.tmp.0.take().expect("an uncommitted writer has its temp file");
        // Rename and index update under the lock, so a concurrent eviction of the same key cannot
        // unlink the file we just renamed into place while the index says it is there.
        let mut index = self.lock();
        if let Err(e) = fs::rename(&tmp, &writer.path) {
            drop(index);
            remove_quietly(&tmp);
            return Err(e);
        }
        let size = writer.flushed;
        index.insert(writer.key.clone(), Entry { size, touched: Some(Instant::now()) });
        self.evict(&mut index);
        Ok(BlockFile { file: Arc::new(writer.file), len: size })
    }

    /// Stores a whole block at once (see [`Self::commit`]).
    pub fn put(&self, key: &BlockKey, data: &[u8]) -> io::Result<()> {
        if data.len() as u64 > self.block_size {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "block larger than the block size"));
        }
        let mut writer = self.writer(key)?;
        writer.push(data)?;
        self.commit(writer).map(drop)
    }

    /// Drops one cached block (e.g. one found to be short).
    pub fn remove(&self, key: &BlockKey) {
        self.forget_recent(key);
        let mut index = self.lock();
        if index.take(key).is_some() {
            if let Some(path) = self.path_of(key) {
                remove_quietly(&path);
            }
        }
    }

    /// Drops every cached block of a file whose version is not `keep_version` (when a file
    /// changes remotely, old versions are no longer served). `None` drops all its blocks.
    pub fn invalidate_file(&self, file_id: &str, keep_version: Option<&ContentVersion>) {
        self.forget_recent_unless(|k| k.file_id != file_id || Some(&k.version) == keep_version);
        let mut index = self.lock();
        let doomed: Vec<BlockKey> =
            index.keys().filter(|k| k.file_id == file_id && Some(&k.version) != keep_version).cloned().collect();
        for key in doomed {
            if index.take(&key).is_some() {
                if let Some(path) = self.path_of(&key) {
                    remove_quietly(&path);
                }
            }
        }
    }

    /// Bytes of the cached blocks the capacity budgets (every block but pinned ones).
    pub fn used_bytes(&self) -> u64 {
        self.lock().used
    }

    /// Bytes of the cached blocks of pinned content (never evicted, not budgeted).
    pub fn pinned_bytes(&self) -> u64 {
        self.lock().pinned_used
    }

    /// Number of cached blocks.
    pub fn block_count(&self) -> usize {
        let index = self.lock();
        index.lru.len() + index.pinned.len()
    }

    /// Pins `content`: its blocks, cached now or later, are never evicted. Persisted.
    #[cfg(test)]
    pub fn pin(&self, content: &ContentKey) -> io::Result<()> {
        self.pin_all(std::slice::from_ref(content))
    }

    /// Pins every content of `contents`: their blocks, cached now or later, are never evicted.
    /// Persisted, saved once.
    pub fn pin_all(&self, contents: &[ContentKey]) -> io::Result<()> {
        let mut index = self.lock();
        if index.pin(contents) {
            self.save_pinned(&index)?;
        }
        Ok(())
    }

    /// Unpins `content`: its blocks become ordinary cache (evicted as the capacity needs).
    #[cfg(test)]
    pub fn unpin(&self, content: &ContentKey) -> io::Result<()> {
        self.unpin_unless(|c| c != content)
    }

    /// Unpins every pinned content `keep` says no to: their blocks become ordinary cache
    /// (evicted as the capacity needs). Persisted.
    pub fn unpin_unless(&self, keep: impl Fn(&ContentKey) -> bool) -> io::Result<()> {
        let mut index = self.lock();
        if !index.unpin_unless(keep) {
            return Ok(());
        }
        self.evict(&mut index);
        self.save_pinned(&index)
    }

    /// The pinned contents.
    #[cfg(test)]
    pub fn pinned(&self) -> Vec<ContentKey> {
        self.lock().contents()
    }

    /// Whether `content` is pinned.
    #[cfg(test)]
    pub fn is_pinned(&self, content: &ContentKey) -> bool {
        self.lock().is_pinned(&content.block(0))
    }

    /// The cache dir (its filesystem holds the blocks).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn save_pinned(&self, index: &Index) -> io::Result<()> {
        let file =
            PinnedFile { pinned: index.contents().into_iter().map(|c| (c.file_id, c.version.cache_name())).collect() };
        let bytes = serde_json::to_vec(&file).map_err(io::Error::other)?;
        // Durable: after a power loss, an open must not take pinned blocks for evictable ones.
        boxfs_io::atomic_file::write_atomic(&self.dir.join(PINNED_FILE), &bytes)
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // The index is consistent after every statement that can panic; recover from poison.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn evict(&self, index: &mut Index) {
        while index.used > self.capacity {
            let Some((key, entry)) = index.lru.pop_lru() else { break };
            index.used -= entry.size;
            if let Some(path) = self.path_of(&key) {
                remove_quietly(&path);
            }
        }
    }

    fn path_of(&self, key: &BlockKey) -> Option<PathBuf> {
        let name = block_name(key, self.block_size);
        (name.len() <= MAX_NAME_LEN).then(|| self.dir.join(name))
    }
}

/// The pinned contents `pinned.json` lists (none if there is no such file).
fn read_pinned(path: &Path) -> io::Result<Vec<ContentKey>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let file: PinnedFile = serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(file
        .pinned
        .into_iter()
        .map(|(file_id, version)| ContentKey { file_id, version: ContentVersion::from_cache_name(&version) })
        .collect())
}

fn block_name(key: &BlockKey, block_size: u64) -> String {
    format!(
        "{BLOCK_PREFIX}{block_size}-{}-{}-{}",
        hex::encode(&key.file_id),
        hex::encode(key.version.cache_name()),
        key.index
    )
}

/// The key a block file name stands for, if it is one of ours for this block size (in canonical
/// form: re-encoding gives back the same name).
fn parse_name(name: &str, block_size: u64) -> Option<BlockKey> {
    let rest = name.strip_prefix(BLOCK_PREFIX)?;
    let mut parts = rest.split('-');
    let (bs, id, version, index) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || bs.parse::<u64>().ok()? != block_size {
        return None;
    }
    let key = BlockKey {
        file_id: String::from_utf8(hex::decode(id).ok()?).ok()?,
        version: ContentVersion::from_cache_name(&String::from_utf8(hex::decode(version).ok()?).ok()?),
        index: index.parse().ok()?,
    };
    (block_name(&key, block_size) == name).then_some(key)
}

fn read_block(path: &Path, size: u64, start: u64, len: u64, touch: bool) -> io::Result<Bytes> {
    let file = File::open(path)?;
    let on_disk = file.metadata()?.len();
    if on_disk != size {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("block is {on_disk} bytes, expected {size}")));
    }
    let start = start.min(size);
    let n = len.min(size - start) as usize;
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, start)?;
    if touch {
        // Recency survives a remount through mtime; best effort.
        let _ = file.set_modified(SystemTime::now());
    }
    Ok(Bytes::from(buf))
}

/// A temp file's name, removed when dropped unless taken.
struct TempName(Option<PathBuf>);

impl Drop for TempName {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            remove_quietly(&path);
        }
    }
}

/// One block's bytes in a file: a cached block, or one a download wrote. Reads stay valid when
/// the block is evicted (the open handle keeps the unlinked file).
#[derive(Clone, Debug)]
pub struct BlockFile {
    file: Arc<File>,
    len: u64,
}

impl BlockFile {
    /// The block's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes `start..end` (clipped to the block); may wait for the disk.
    pub fn read(&self, start: u64, end: u64) -> io::Result<Bytes> {
        let (start, end) = (start.min(self.len), end.min(self.len));
        let mut buf = vec![0u8; (end.saturating_sub(start)) as usize];
        self.file.read_exact_at(&mut buf, start)?;
        Ok(Bytes::from(buf))
    }

    /// Bytes `start..end` (clipped to the block) if the page cache holds them all, else `None`:
    /// never waits for the disk (`RWF_NOWAIT`).
    pub fn read_now(&self, start: u64, end: u64) -> Option<Bytes> {
        let (start, end) = (start.min(self.len), end.min(self.len));
        let want = end.saturating_sub(start) as usize;
        // Not zeroed first: every byte handed out is one `preadv2` wrote.
        let mut buf = Vec::<u8>::with_capacity(want);
        while buf.len() < want {
            let (done, rest) = (buf.len(), buf.spare_capacity_mut());
            let iov = libc::iovec { iov_base: rest.as_mut_ptr().cast(), iov_len: want - done };
            let at = (start + done as u64) as libc::off_t;
            // SAFETY: `iov` lies in the vector's spare capacity (`want - done` bytes of it,
            // exclusively borrowed), and the descriptor stays open as long as `self.file`.
            let n = unsafe { libc::preadv2(self.file.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) };
            if n <= 0 {
                return None;
            }
            // SAFETY: the kernel wrote `n` bytes (at most `iov_len`) right after the initialised ones.
            unsafe { buf.set_len(done + n as usize) };
        }
        Some(Bytes::from(buf))
    }
}

/// A block on its way into the cache: bytes are appended (through [`AsyncWrite`] or
/// [`BlockWriter::push`]) to a temp file up to the block size: small pieces gather into writes
/// of [`STAGING`] bytes, pieces of [`DIRECT_WRITE`] bytes or more are written as they come; [`BlockCache::commit`] puts it in place. Dropped uncommitted, it leaves nothing
/// behind. Writes go to the page cache and so return at once; under the kernel's dirty-page
/// throttling one may wait briefly, the only wait in this writer.
pub struct BlockWriter {
    file: File,
    /// Removed unless the block is committed.
    tmp: TempName,
    path: PathBuf,
    key: BlockKey,
    limit: u64,
    /// Bytes in the file; more wait in `staging`.
    flushed: u64,
    staging: Vec<u8>,
}

impl BlockWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.flushed + self.staging.len() as u64
    }

    /// Appends as much of `data` as fits in the block; returns how much that was.
    pub fn push(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min((self.limit - self.written()) as usize);
        let mut rest = &data[..n];
        if self.staging.is_empty() && rest.len() >= DIRECT_WRITE {
            // Big enough to write as it is: no copy through the staging buffer.
            self.file.write_all_at(rest, self.flushed)?;
            self.flushed += rest.len() as u64;
            return Ok(n);
        }
        while !rest.is_empty() {
            if self.staging.capacity() == 0 {
                self.staging.reserve_exact(STAGING);
            }
            let take = rest.len().min(STAGING - self.staging.len());
            self.staging.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.staging.len() == STAGING {
                self.flush_staging()?;
            }
        }
        Ok(n)
    }

    fn flush_staging(&mut self) -> io::Result<()> {
        self.file.write_all_at(&self.staging, self.flushed)?;
        self.flushed += self.staging.len() as u64;
        self.staging.clear();
        Ok(())
    }

    /// The bytes written, not cached (a block shorter than it should be): the temp file is
    /// removed and the handle keeps its bytes readable.
    pub fn into_uncached(mut self) -> io::Result<BlockFile> {
        self.flush_staging()?;
        drop(self.tmp);
        Ok(BlockFile { file: Arc::new(self.file), len: self.flushed })
    }
}

impl AsyncWrite for BlockWriter {
    /// Refuses bytes beyond the block (`WriteZero` through `write_all`): a guard, as the
    /// download already stops at the bytes it asked for.
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.push(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a block cache file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, version: &str, index: u64) -> BlockKey {
        BlockKey { file_id: id.to_string(), version: ContentVersion::Id(version.to_string()), index }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn put_get_roundtrip_and_ranges() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(&tmp.path().join("blocks"), 1 << 20, 1024).unwrap();
        assert_eq!(cache.block_size(), 1024);
        let k = key("123", "abc", 7);
        assert_eq!(cache.get(&k), None);
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        cache.put(&k, &data).unwrap();
        assert_eq!(cache.get(&k).unwrap(), Bytes::from(data.clone()));
        assert_eq!(cache.get_range(&k, 10, 5).unwrap(), Bytes::from(data[10..15].to_vec()));
        assert_eq!(cache.get_range(&k, 990, 100).unwrap(), Bytes::from(data[990..].to_vec()));
        assert!(cache.get_range(&k, 5000, 10).unwrap().is_empty());
        assert_eq!(cache.used_bytes(), 1000);
        assert_eq!(cache.cached_len(&k), Some(1000));
        // Same index, other version: a different block.
        assert_eq!(cache.get(&key("123", "abd", 7)), None);
        // Overwrite replaces and re-accounts.
        cache.put(&k, &data[..10]).unwrap();
        assert_eq!(cache.get(&k).unwrap(), Bytes::from(data[..10].to_vec()));
        assert_eq!(cache.used_bytes(), 10);
        // Too large for a block.
        assert!(cache.put(&key("1", "v", 0), &[0u8; 1025]).is_err());
    }

    #[test]
    fn lru_eviction_keeps_under_capacity() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(tmp.path(), 3 * 100, 100).unwrap();
        for i in 0..3 {
            cache.put(&key("1", "v", i), &[i as u8; 100]).unwrap();
        }
        assert_eq!(cache.used_bytes(), 300);
        // Touch block 0 so block 1 is now least recently used.
        assert!(cache.get(&key("1", "v", 0)).is_some());
        cache.put(&key("1", "v", 3), &[3; 100]).unwrap();
        assert_eq!(cache.used_bytes(), 300);
        assert!(cache.contains(&key("1", "v", 0)));
        assert!(!cache.contains(&key("1", "v", 1)));
        assert!(cache.get(&key("1", "v", 1)).is_none());
        assert!(cache.contains(&key("1", "v", 2)));
        assert!(cache.contains(&key("1", "v", 3)));
        // The evicted block's file is gone from disk.
        let files = fs::read_dir(tmp.path()).unwrap().count();
        assert_eq!(files, 3);
    }

    #[test]
    fn persists_across_reopen_and_evicts_to_new_capacity() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        {
            let cache = BlockCache::open(&dir, 10_000, 100).unwrap();
            cache.put(&key("42", "sha", 0), &[1; 100]).unwrap();
            cache.put(&key("42", "sha", 1), &[2; 50]).unwrap();
        }
        let cache = BlockCache::open(&dir, 10_000, 100).unwrap();
        assert_eq!(cache.used_bytes(), 150);
        assert_eq!(cache.get(&key("42", "sha", 0)).unwrap(), Bytes::from(vec![1; 100]));
        assert_eq!(cache.get(&key("42", "sha", 1)).unwrap(), Bytes::from(vec![2; 50]));
        drop(cache);
        // Reopening with a smaller capacity evicts down to it.
        let cache = BlockCache::open(&dir, 100, 100).unwrap();
        assert!(cache.used_bytes() <= 100);
        drop(cache);
        // Blocks cut at another size are not reused.
        let cache = BlockCache::open(&dir, 10_000, 200).unwrap();
        assert_eq!(cache.used_bytes(), 0);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn modes_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("blocks");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let cache = BlockCache::open(&dir, 1 << 20, 64).unwrap();
        assert_eq!(mode_of(&dir), 0o700);
        cache.put(&key("9", "v", 0), b"secret").unwrap();
        let file = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        assert_eq!(mode_of(&file), 0o600);
    }

    #[test]
    fn open_cleans_temp_and_unparseable_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        {
            let cache = BlockCache::open(dir, 1 << 20, 64).unwrap();
            cache.put(&key("5", "v1", 0), &[5; 64]).unwrap();
        }
        // A crash mid-put leaves a temp file; junk and oversize blocks are not ours to serve.
        fs::write(dir.join("tmp-123-00000000deadbeef"), [0u8; 10]).unwrap();
        fs::write(dir.join("garbage"), b"x").unwrap();
        fs::write(dir.join("b-64-zz-00-1"), b"x").unwrap();
        fs::write(dir.join(block_name(&key("5", "v1", 1), 64)), [0u8; 65]).unwrap();
        fs::create_dir(dir.join("subdir")).unwrap();
        let cache = BlockCache::open(dir, 1 << 20, 64).unwrap();
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, vec![block_name(&key("5", "v1", 0), 64), "subdir".to_string()]);
        assert_eq!(cache.used_bytes(), 64);
        assert_eq!(cache.get(&key("5", "v1", 0)).unwrap(), Bytes::from(vec![5; 64]));
        // A put leaves no temp file behind.
        cache.put(&key("5", "v1", 2), &[1; 3]).unwrap();
        assert!(fs::read_dir(dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(TMP_PREFIX)));
    }

    #[test]
    fn invalidate_file_keeps_only_given_version() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(tmp.path(), 1 << 20, 16).unwrap();
        for v in ["old", "new"] {
            for i in 0..2 {
                cache.put(&key("1", v, i), &[1; 16]).unwrap();
            }
        }
        cache.put(&key("2", "old", 0), &[2; 16]).unwrap();
        cache.invalidate_file("1", Some(&ContentVersion::Id("new".into())));
        assert!(!cache.contains(&key("1", "old", 0)));
        assert!(!cache.contains(&key("1", "old", 1)));
        assert!(cache.get(&key("1", "new", 0)).is_some());
        assert!(cache.get(&key("1", "new", 1)).is_some());
        assert!(cache.get(&key("2", "old", 0)).is_some());
        assert_eq!(cache.used_bytes(), 48);
        cache.invalidate_file("1", None);
        assert_eq!(cache.used_bytes(), 16);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn hostile_ids_are_safe_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let cache = BlockCache::open(&dir, 1 << 20, 16).unwrap();
        let k = key("../../etc/passwd", "a-b/c\0d", 3);
        cache.put(&k, b"data").unwrap();
        assert_eq!(cache.get(&k).unwrap(), Bytes::from_static(b"data"));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // A key too long for a file name is refused, never truncated.
        let long = key("1", &"f".repeat(200), 0);
        assert!(cache.put(&long, b"x").is_err());
        assert!(cache.get(&long).is_none());
        drop(cache);
        let cache = BlockCache::open(&dir, 1 << 20, 16).unwrap();
        assert_eq!(cache.get(&k).unwrap(), Bytes::from_static(b"data"));
    }

    /// A committed block of `len` bytes of `byte` at `k`, and its handle.
    fn written(cache: &BlockCache, k: &BlockKey, byte: u8, len: usize) -> BlockFile {
        let mut w = cache.writer(k).unwrap();
        assert_eq!(w.push(&vec![byte; len]).unwrap(), len);
        cache.commit(w).unwrap()
    }

    fn temp_files(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(TMP_PREFIX))
            .count()
    }

    #[test]
    fn a_writer_streams_a_block_in_pieces_and_stops_at_the_block_size() {
        let tmp = tempfile::tempdir().unwrap();
        let bs = 3 * STAGING as u64 + 100;
        let cache = BlockCache::open(tmp.path(), 1 << 30, bs).unwrap();
        let data: Vec<u8> = (0..bs as usize + 50).map(|i| (i % 251) as u8).collect();
        let mut w = cache.writer(&key("7", "v", 0)).unwrap();
        // Small pieces go through the staging buffer, big ones (when it is empty) straight in.
        let mut rest = &data[..];
        for size in [10_000, DIRECT_WRITE, 3_000, 2 * DIRECT_WRITE].into_iter().cycle() {
            let (piece, after) = rest.split_at(size.min(rest.len()));
            w.push(piece).unwrap();
            rest = after;
            if rest.is_empty() {
                break;
            }
        }
        assert_eq!(w.written(), bs, "nothing past the block");
        assert!(!cache.contains(&key("7", "v", 0)), "not cached before the commit");
        let file = cache.commit(w).unwrap();
        assert_eq!((file.len(), cache.used_bytes()), (bs, bs));
        assert_eq!(cache.get(&key("7", "v", 0)).unwrap(), Bytes::copy_from_slice(&data[..bs as usize]));
        assert_eq!(file.read(5, 300_000).unwrap(), Bytes::copy_from_slice(&data[5..300_000]));
        assert_eq!(temp_files(tmp.path()), 0);
    }

    #[test]
    fn a_dropped_or_short_writer_caches_nothing_and_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(tmp.path(), 1 << 20, 16).unwrap();
        let mut w = cache.writer(&key("1", "v", 0)).unwrap();
        w.push(b"half").unwrap();
        drop(w);
        let mut w = cache.writer(&key("1", "v", 1)).unwrap();
        w.push(b"short").unwrap();
        let short = w.into_uncached().unwrap();
        assert_eq!(short.read(0, 16).unwrap(), Bytes::from_static(b"short"), "still readable");
        assert_eq!((cache.block_count(), temp_files(tmp.path())), (0, 0));
    }

    #[test]
    fn a_block_evicted_at_once_still_reads_through_its_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(tmp.path(), 10, 16).unwrap();
        let file = written(&cache, &key("1", "v", 0), 4, 16);
        assert!(!cache.contains(&key("1", "v", 0)), "over the capacity on its own");
        assert_eq!(file.read(0, 16).unwrap(), Bytes::from(vec![4; 16]));
        assert_eq!(file.read_now(8, 16).unwrap(), Bytes::from(vec![4; 8]), "in the page cache");
    }

    #[test]
    fn recent_tier_serves_recent_blocks_and_forgets_invalidated_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(tmp.path(), 1 << 20, 16).unwrap().with_recent_blocks(2);
        for i in 0..3 {
            let file = written(&cache, &key("1", "v", i), i as u8, 16);
            cache.keep_recent(&key("1", "v", i), file);
        }
        assert_eq!(cache.recent_blocks(), 2);
        assert!(cache.recent_range_now(&key("1", "v", 0), 0, 16).is_none(), "least recent one evicted");
        assert_eq!(cache.recent_range_now(&key("1", "v", 2), 4, 100).unwrap(), Bytes::from(vec![2; 12]));
        assert!(cache.recent_range_now(&key("1", "w", 2), 0, 16).is_none(), "other version");
        cache.forget_recent(&key("1", "v", 2));
        assert!(cache.recent_range_now(&key("1", "v", 2), 0, 16).is_none());
        assert!(cache.contains(&key("1", "v", 2)), "forgotten by the tier, still cached");
        cache.invalidate_file("1", Some(&ContentVersion::Id("w".into())));
        assert_eq!(cache.recent_blocks(), 0);
        let off = BlockCache::open(tmp.path(), 1 << 20, 16).unwrap().with_recent_blocks(0);
        let file = written(&off, &key("1", "v", 0), 1, 16);
        off.keep_recent(&key("1", "v", 0), file);
        assert!(off.recent_range_now(&key("1", "v", 0), 0, 1).is_none());
    }

    fn content(id: &str, version: &str) -> ContentKey {
        ContentKey { file_id: id.to_string(), version: ContentVersion::Id(version.to_string()) }
    }

    #[test]
    fn pinned_blocks_survive_eviction_and_are_accounted_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(tmp.path(), 2 * 100, 100).unwrap();
        // One block cached before the pin, three after: all four stay over a 2-block capacity.
        cache.put(&key("1", "v", 0), &[0; 100]).unwrap();
        cache.pin(&content("1", "v")).unwrap();
        for i in 1..4 {
            cache.put(&key("1", "v", i), &[i as u8; 100]).unwrap();
        }
        assert_eq!((cache.pinned_bytes(), cache.used_bytes()), (400, 0));
        // Unpinned blocks still fill the capacity, evicted among themselves.
        for i in 0..3 {
            cache.put(&key("2", "v", i), &[9; 100]).unwrap();
        }
        assert_eq!((cache.pinned_bytes(), cache.used_bytes()), (400, 200));
        assert!(!cache.contains(&key("2", "v", 0)));
        for i in 0..4 {
            assert_eq!(cache.get(&key("1", "v", i)).unwrap(), Bytes::from(vec![i as u8; 100]), "block {i}");
        }
        // Another version of a pinned file is not pinned.
        cache.put(&key("1", "w", 0), &[7; 100]).unwrap();
        assert_eq!(cache.pinned_bytes(), 400);
        assert!(cache.is_pinned(&content("1", "v")) && !cache.is_pinned(&content("1", "w")));
    }

    #[test]
    fn pins_survive_reopen_with_a_smaller_capacity_and_unpinning_makes_blocks_evictable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        {
            let cache = BlockCache::open(&dir, 10_000, 100).unwrap();
            cache.pin(&content("1", "v")).unwrap();
            for i in 0..3 {
                cache.put(&key("1", "v", i), &[1; 100]).unwrap();
                cache.put(&key("2", "v", i), &[2; 100]).unwrap();
            }
        }
        let cache = BlockCache::open(&dir, 100, 100).unwrap();
        assert_eq!(cache.pinned(), vec![content("1", "v")]);
        assert_eq!((cache.pinned_bytes(), cache.used_bytes()), (300, 100), "nothing pinned evicted at open");
        assert!((0..3).all(|i| cache.contains(&key("1", "v", i))));
        cache.unpin(&content("1", "v")).unwrap();
        assert_eq!((cache.pinned_bytes(), cache.used_bytes()), (0, 100), "unpinned: evicted down to the capacity");
        assert!(cache.pinned().is_empty());
        drop(cache);
        let cache = BlockCache::open(&dir, 10_000, 100).unwrap();
        assert!(cache.pinned().is_empty(), "the unpin was persisted");
    }

    #[test]
    fn unpin_unless_keeps_what_it_is_told_and_invalidation_drops_pinned_blocks_of_old_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(tmp.path(), 1 << 20, 16).unwrap();
        for c in [content("1", "old"), content("1", "new"), content("2", "v")] {
            cache.pin(&c).unwrap();
            cache.put(&c.block(0), &[1; 16]).unwrap();
        }
        cache.invalidate_file("1", Some(&ContentVersion::Id("new".into())));
        assert!(!cache.contains(&key("1", "old", 0)));
        assert_eq!(cache.pinned_bytes(), 32);
        cache.unpin_unless(|c| c.file_id == "1" && c.version == ContentVersion::Id("new".into())).unwrap();
        assert_eq!(cache.pinned(), vec![content("1", "new")]);
        assert_eq!((cache.pinned_bytes(), cache.used_bytes()), (16, 16));
    }

    #[test]
    fn a_block_deleted_behind_our_back_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(tmp.path(), 1 << 20, 16).unwrap();
        let k = key("1", "v", 0);
        cache.put(&k, &[1; 16]).unwrap();
        fs::remove_file(tmp.path().join(block_name(&k, 16))).unwrap();
        assert!(cache.get(&k).is_none());
        assert!(!cache.contains(&k));
        assert_eq!(cache.used_bytes(), 0);
    }
}
