//! Reading remote files through the block cache: one [`Reader`] per open file handle serves
//! reads from cached blocks, downloads the missing ones (whole blocks, several at once) and, when
//! it sees a sequential pattern, prefetches a growing window of blocks ahead in the background.
//! Downloads go through the shared registry ([`Downloads`]), so no block is downloaded twice.
//!
//! Policy. A read is sequential when it starts where the previous read of the handle ended, or
//! in the previous, same or next block as the furthest block read so far (tolerating the kernel's
//! slightly reordered concurrent reads). Sequential reads open a window of 1 block ahead that
//! doubles each time the reader enters a new block, up to twice the prefetches in flight and never
//! past `max_window_blocks`; any other read resets it to 0 and fetches only the
//! blocks it covers. Window blocks are fetched by one background task per reader, as many at a
//! time as the reader's [`Ramp`] allows: it starts at `initial_parallel` and doubles while the
//! measured throughput improves (Box's latency is per request and its bandwidth per connection,
//! so a link at 100 ms needs many requests in flight), up to `max_window_blocks`. A read's own
//! missing blocks are fetched `read_parallel` at a time; a file of one block is one request.
//! Downloads stream into cache files (the bytes wait in the page cache, not in the daemon: its
//! memory does not grow with the downloads in flight); a read looks in the cache's recent tier,
//! then joins a download under way, then reads the disk, then downloads. A prefetch slot is
//! freed only once its block is committed. A failed prefetch is logged and
//! dropped (a later read fetches that block again); a failed needed fetch is returned to the
//! caller. Dropping a reader stops its prefetcher; downloads already under way finish (at most
//! the ramp's limit) into the cache.

use super::blocks::{BlockFile, BlockKey};
use super::downloads::{settled, wait, Downloads, FetchError, Slot, Urgency};
use super::ramp::Ramp;
use super::version::ContentVersion;
use boxfs_api::ApiError;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, FuturesUnordered, StreamExt, TryStreamExt};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Prefetch tuning for a [`Reader`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Most blocks kept ahead of a sequential reader, downloaded or under way (0 disables
    /// prefetching), and so the most prefetches in flight.
    pub max_window_blocks: u64,
    /// Prefetch downloads in flight before anything is measured; the [`Ramp`] grows it.
    pub initial_parallel: usize,
    /// Most downloads one read runs at once for its own missing blocks.
    pub read_parallel: usize,
}

impl Default for ReaderConfig {
    /// 64 blocks (256 MiB of 4 MiB blocks, in the page cache) ahead: at 100 ms per request
    /// and 100 MB/s per connection a 4 MiB block takes about 140 ms on its own, and measured
    /// here 32 in flight read at about 4x one connection, 64 a little more (the two cores'
    /// own limits); each download in flight costs the daemon only its staging buffer. The
    /// ramp starts at 8: fewer never fill a link with Box's latency.
    fn default() -> Self {
        ReaderConfig { max_window_blocks: 64, initial_parallel: 8, read_parallel: 4 }
    }
}

impl ReaderConfig {
    /// Blocks the cache's recent tier must hold so that a sequential reader finds there what
    /// its prefetch downloaded: the window plus the blocks of one read.
    pub fn recent_blocks(&self) -> usize {
        self.max_window_blocks as usize + self.read_parallel
    }
}

/// How many times a read tries to obtain one block when downloads it joined vanish without an
/// answer (cancelled) or a cached copy turns out unreadable.
const MAX_ATTEMPTS: usize = 4;

/// What a reader shares with its prefetch task.
struct Inner {
    downloads: Arc<Downloads>,
    file_id: String,
    version: ContentVersion,
    size: u64,
    block_size: u64,
    cfg: ReaderConfig,
    /// Prefetches to keep in flight, learned from their arrivals.
    ramp: Mutex<Ramp>,
}

impl Inner {
    /// A read of `len` bytes at `offset` clipped to the file: its end and its first and last
    /// blocks; `None` when nothing is to be read (empty, or at or past EOF).
    fn clip(&self, offset: u64, len: u32) -> Option<(u64, u64, u64)> {
        if len == 0 || offset >= self.size {
            return None;
        }
        let end = offset.saturating_add(u64::from(len)).min(self.size);
        Some((end, offset / self.block_size, (end - 1) / self.block_size))
    }

    fn blocks(&self) -> u64 {
        self.size.div_ceil(self.block_size)
    }

    fn key(&self, index: u64) -> BlockKey {
        BlockKey { file_id: self.file_id.clone(), version: self.version.clone(), index }
    }

    fn block_len(&self, index: u64) -> u64 {
        self.block_size.min(self.size.saturating_sub(index * self.block_size))
    }

    fn read_parallel(&self) -> usize {
        self.cfg.read_parallel.max(1)
    }

    fn ramp(&self) -> std::sync::MutexGuard<'_, Ramp> {
        self.ramp.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes `start..end` of block `index` (clipped to the block), from the cache or downloaded.
    async fn read_block(self: &Arc<Self>, index: u64, start: u64, end: u64) -> Result<Bytes, FetchError> {
        let key = self.key(index);
        let mut retried_prefetch = false;
        let mut last_err = None;
        for _ in 0..MAX_ATTEMPTS {
            if let Some(bytes) = self.downloads.cache().recent_range_now(&key, start, end) {
                crate::vfs::telemetry::block_hit();
                return Ok(bytes);
            }
            match self.downloads.join_or_start(&key, self.block_len(index), Urgency::Read) {
                Slot::Cached => {
                    if let Some(bytes) = self.cached(&key, start, end).await {
                        crate::vfs::telemetry::block_hit();
                        return Ok(bytes);
                    }
                }
                Slot::Pending { rx, prefetch } => match wait(rx).await {
                    Some(Ok(block)) => {
                        crate::vfs::telemetry::block_miss();
                        return read_file(block, start, end).await;
                    }
                    Some(Err(e)) if prefetch && !retried_prefetch => {
                        tracing::debug!(file_id = %self.file_id, block = index, error = %e, "prefetch failed; fetching again");
                        retried_prefetch = true;
                        last_err = Some(e);
                    }
                    Some(Err(e)) => return Err(e),
                    None => {}
                },
            }
        }
        Err(last_err
            .unwrap_or_else(|| Arc::new(ApiError::Io(std::io::Error::other("block download ended without a result")))))
    }

    /// Bytes `start..end` of a cached block; `None` on a miss or a cached block shorter than it
    /// must be (e.g. cut short by a power loss), which is dropped.
    async fn cached(&self, key: &BlockKey, start: u64, end: u64) -> Option<Bytes> {
        let cache = self.downloads.cache().clone();
        let k = key.clone();
        let got = tokio::task::spawn_blocking(move || {
            let bytes = cache.get_range(&k, start, end - start)?;
            if (bytes.len() as u64) < end - start {
                cache.remove(&k);
                return None;
            }
            Some(bytes)
        })
        .await;
        got.ok().flatten()
    }

    /// The prefetch task: keeps the blocks of the wanted window downloaded, as many at a time as
    /// the ramp says (a slot is busy until its block is on disk), until the reader goes away.
    /// Feeds the ramp the arrivals, while every slot is busy.
    async fn prefetch(self: Arc<Self>, mut want: watch::Receiver<Range<u64>>) {
        let mut running = FuturesUnordered::new();
        let mut next = 0u64;
        loop {
            let window = want.borrow_and_update().clone();
            if next < window.start || next > window.end {
                next = window.start;
            }
            let limit = self.ramp().limit();
            while running.len() < limit && next < window.end {
                let index = next;
                next += 1;
                let key = self.key(index);
                if let Slot::Pending { rx, .. } =
                    self.downloads.join_or_start(&key, self.block_len(index), Urgency::Prefetch)
                {
                    running.push(async move {
                        let outcome = wait(rx.clone()).await;
                        let arrived = tokio::time::Instant::now().into_std();
                        settled(rx).await;
                        (index, outcome, arrived)
                    });
                }
            }
            match running.len() {
                0 => self.ramp().interrupted(),
                n if n >= limit => self.ramp().busy(tokio::time::Instant::now().into_std()),
                _ => {}
            }
            tokio::select! {
                Some((index, outcome, arrived)) = running.next(), if !running.is_empty() => match outcome {
                    Some(Ok(block)) => {
                        let mut ramp = self.ramp();
                        let before = (ramp.limit(), ramp.settled());
                        ramp.arrived(block.len(), arrived);
                        if (ramp.limit(), ramp.settled()) != before {
                            tracing::debug!(file_id = %self.file_id, from = before.0, to = ramp.limit(), settled = ramp.settled(), "prefetches in flight");
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(file_id = %self.file_id, block = index, error = %e, "prefetch failed; dropped");
                        self.ramp().interrupted();
                    }
                    None => self.ramp().interrupted(),
                },
                changed = want.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Bytes `start..end` of a downloaded block: from the page cache at once when it holds them
/// (it does, just after the download), else off the async threads.
async fn read_file(block: BlockFile, start: u64, end: u64) -> Result<Bytes, FetchError> {
    if let Some(bytes) = block.read_now(start, end) {
        return Ok(bytes);
    }
    match tokio::task::spawn_blocking(move || block.read(start, end)).await {
        Ok(read) => read.map_err(|e| Arc::new(ApiError::Io(e))),
        Err(e) => Err(Arc::new(ApiError::Io(std::io::Error::other(format!("block read task failed: {e}"))))),
    }
}

/// Sequential-access tracking of one handle.
#[derive(Default)]
struct Pattern {
    /// Where the previous read ended (None before the first read).
    prev_end: Option<u64>,
    /// Furthest block read so far in the current sequential run.
    frontier: u64,
    /// Blocks to keep fetched ahead of `frontier`.
    window: u64,
}

/// Reads one version of one file, for one open handle.
pub struct Reader {
    inner: Arc<Inner>,
    pattern: Mutex<Pattern>,
    want: watch::Sender<Range<u64>>,
    prefetcher: Mutex<Option<JoinHandle<()>>>,
    /// Where the prefetcher is spawned ([`Reader::read_ready`] may run outside the runtime).
    rt: tokio::runtime::Handle,
}

impl Reader {
    /// A reader of `size` bytes of version `version` of file `file_id`. Spawns nothing until the
    /// first sequential read. Must be created inside the tokio runtime it will use.
    pub fn new(
        downloads: Arc<Downloads>,
        file_id: String,
        version: ContentVersion,
        size: u64,
        cfg: ReaderConfig,
    ) -> Reader {
        let block_size = downloads.cache().block_size();
        let (want, _) = watch::channel(0..0);
        Reader {
            inner: Arc::new(Inner {
                downloads,
                file_id,
                version,
                size,
                block_size,
                ramp: Mutex::new(Ramp::new(cfg.initial_parallel, cfg.max_window_blocks as usize)),
                cfg,
            }),
            pattern: Mutex::new(Pattern::default()),
            want,
            prefetcher: Mutex::new(None),
            rt: tokio::runtime::Handle::current(),
        }
    }

    /// The file's size as this reader sees it.
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// The read of `len` bytes at `offset` if it can be answered at once, without waiting: it lies
    /// in one block of the recent tier and the page cache holds it (the common case of a
    /// sequential reader consuming what was prefetched). Counts as a read for the access pattern.
    /// Callable from any thread: it never waits for the disk.
    pub fn read_ready(&self, offset: u64, len: u32) -> Option<Bytes> {
        let inner = &self.inner;
        let Some((end, first, last)) = inner.clip(offset, len) else { return Some(Bytes::new()) };
        if first != last {
            return None;
        }
        let base = first * inner.block_size;
        let bytes = inner.downloads.cache().recent_range_now(&inner.key(first), offset - base, end - base)?;
        if (bytes.len() as u64) < end - offset {
            return None;
        }
        self.observe(offset, end, first, last);
        crate::vfs::telemetry::block_hit();
        Some(bytes)
    }

    /// Reads `len` bytes at `offset` (fewer at EOF, empty past EOF). Serves from the block cache;
    /// fetches missing blocks (whole blocks, aligned to the block size, last block short) in
    /// parallel, stores them in the cache, and returns the bytes.
    pub async fn read(&self, offset: u64, len: u32) -> Result<Bytes, FetchError> {
        let inner = &self.inner;
        let Some((end, first, last)) = inner.clip(offset, len) else { return Ok(Bytes::new()) };
        let bs = inner.block_size;
        self.observe(offset, end, first, last);

        let span = |i: u64| (offset.max(i * bs) - i * bs, end.min((i + 1) * bs) - i * bs);
        if first == last {
            let (s, e) = span(first);
            return inner.read_block(first, s, e).await;
        }
        let parts: Vec<Bytes> = stream::iter(first..=last)
            .map(|i| {
                let (s, e) = span(i);
                inner.read_block(i, s, e)
            })
            .buffered(inner.read_parallel())
            .try_collect()
            .await?;
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        for (i, part) in (first..=last).zip(&parts) {
            out.extend_from_slice(part);
            let (s, e) = span(i);
            if (part.len() as u64) < e - s {
                // The server sent a short block (the file is shorter than we were told): stop at
                // the bytes known to be contiguous rather than shift later blocks' bytes.
                break;
            }
        }
        Ok(out.freeze())
    }

    /// Updates the access pattern with a read of `offset..end` (blocks `first..=last`) and moves
    /// the prefetch window accordingly.
    fn observe(&self, offset: u64, end: u64, first: u64, last: u64) {
        let max = self.inner.cfg.max_window_blocks.min(2 * self.inner.ramp().limit() as u64);
        let mut p = self.pattern.lock().unwrap_or_else(|e| e.into_inner());
        let sequential = p
            .prev_end
            .is_some_and(|prev| offset == prev || (first + 1 >= p.frontier && first <= p.frontier.saturating_add(1)));
        if sequential && max > 0 {
            if p.window == 0 {
                p.window = 1;
            } else if last > p.frontier {
                p.window = p.window.saturating_mul(2).min(max);
                // The reader is done with the blocks two behind this one (one behind may still
                // be read, reordered): they leave the recent tier, so that it holds what is ahead.
                for done in p.frontier.saturating_sub(1)..first.saturating_sub(1) {
                    self.inner.downloads.cache().forget_recent(&self.inner.key(done));
                }
            }
            p.frontier = p.frontier.max(last);
        } else {
            p.window = 0;
            p.frontier = last;
        }
        p.prev_end = Some(end);
        let window = if p.window == 0 {
            0..0
        } else {
            let start = p.frontier + 1;
            start..start.saturating_add(p.window).min(self.inner.blocks()).max(start)
        };
        let active = !window.is_empty();
        drop(p);
        self.want.send_if_modified(|w| {
            let changed = *w != window;
            *w = window;
            changed
        });
        if active {
            let mut prefetcher = self.prefetcher.lock().unwrap_or_else(|e| e.into_inner());
            if prefetcher.is_none() {
                let task = self.inner.clone().prefetch(self.want.subscribe());
                *prefetcher = Some(self.rt.spawn(task));
            }
        }
    }

    #[cfg(test)]
    fn window(&self) -> u64 {
        self.pattern.lock().unwrap().window
    }

    /// The ramp's limit and whether it is final.
    #[cfg(test)]
    fn ramp(&self) -> (usize, bool) {
        let ramp = self.inner.ramp();
        (ramp.limit(), ramp.settled())
    }

    #[cfg(test)]
    fn prefetching(&self) -> bool {
        self.prefetcher.lock().unwrap().is_some()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(task) = self.prefetcher.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::read::blocks::{BlockCache, BlockWriter};
    use crate::vfs::read::downloads::{BlockRequest, FetchFn};
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;

    const BS: u64 = 1024;

    /// An in-memory remote file that counts downloads per block, can hold them at a gate and can
    /// fail chosen blocks a given number of times.
    struct Fake {
        data: Vec<u8>,
        block_size: u64,
        /// While the gate is closed, downloads of blocks from this index on wait at it.
        hold_from: AtomicU64,
        calls: Mutex<Vec<u64>>,
        fail: Mutex<HashMap<u64, usize>>,
        gate: watch::Sender<bool>,
        active: AtomicUsize,
        max_active: AtomicUsize,
        /// When set, every download takes as long as it would on this link.
        link: Mutex<Option<Link>>,
    }

    /// A network like Box's: each response comes `latency` late, each connection carries
    /// `per_connection` bytes per second, and all downloads together at most `total`.
    #[derive(Clone, Copy)]
    struct Link {
        latency: Duration,
        per_connection: f64,
        total: f64,
    }

    impl Link {
        /// How long a download of `len` bytes takes with `active` downloads under way (each
        /// as long as its own connection allows, or its share of the whole link when that is
        /// full).
        fn duration(&self, len: u64, active: usize) -> Duration {
            let alone = self.latency + Duration::from_secs_f64(len as f64 / self.per_connection);
            alone.max(Duration::from_secs_f64(active as f64 * len as f64 / self.total))
        }
    }

    impl Fake {
        fn new(size: usize, block_size: u64) -> Arc<Fake> {
            let data = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
            Arc::new(Fake {
                data,
                block_size,
                hold_from: AtomicU64::new(0),
                calls: Mutex::new(Vec::new()),
                fail: Mutex::new(HashMap::new()),
                gate: watch::channel(true).0,
                active: AtomicUsize::new(0),
                max_active: AtomicUsize::new(0),
                link: Mutex::new(None),
            })
        }

        fn fetch_fn(self: &Arc<Self>) -> FetchFn {
            let me = self.clone();
            Arc::new(move |req: BlockRequest, mut out: BlockWriter| {
                let me = me.clone();
                Box::pin(async move {
                    assert_eq!(req.file_id, "f1");
                    assert_eq!(req.offset % me.block_size, 0, "downloads are block-aligned");
                    assert!(req.len <= me.block_size);
                    let block = req.offset / me.block_size;
                    me.calls.lock().unwrap().push(block);
                    let now = me.active.fetch_add(1, Ordering::SeqCst) + 1;
                    me.max_active.fetch_max(now, Ordering::SeqCst);
                    let link = *me.link.lock().unwrap();
                    if let Some(link) = link {
                        tokio::time::sleep(link.duration(req.len, now)).await;
                    }
                    if block >= me.hold_from.load(Ordering::SeqCst) {
                        let mut gate = me.gate.subscribe();
                        let _ = gate.wait_for(|open| *open).await;
                    }
                    me.active.fetch_sub(1, Ordering::SeqCst);
                    let fail = {
                        let mut fail = me.fail.lock().unwrap();
                        match fail.get_mut(&block) {
                            Some(n) if *n > 0 => {
                                *n -= 1;
                                true
                            }
                            _ => false,
                        }
                    };
                    if fail {
                        return Err(Arc::new(ApiError::Network("connection reset".into())));
                    }
                    let start = (req.offset as usize).min(me.data.len());
                    let end = (start + req.len as usize).min(me.data.len());
                    out.push(&me.data[start..end]).map_err(|e| Arc::new(ApiError::Io(e)))?;
                    Ok(out)
                })
            })
        }

        fn calls(&self) -> Vec<u64> {
            self.calls.lock().unwrap().clone()
        }

        fn count(&self, block: u64) -> usize {
            self.calls().iter().filter(|b| **b == block).count()
        }
    }

    fn setup(size: usize, block_size: u64) -> (tempfile::TempDir, Arc<BlockCache>, Arc<Downloads>, Arc<Fake>) {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Arc::new(BlockCache::open(tmp.path(), 1 << 30, block_size).unwrap());
        let fake = Fake::new(size, block_size);
        let downloads = Downloads::new(cache.clone(), fake.fetch_fn());
        (tmp, cache, downloads, fake)
    }

    fn v(name: &str) -> ContentVersion {
        ContentVersion::Id(name.into())
    }

    /// A window of `window` blocks and `parallel` downloads at a time, which the ramp cannot
    /// change when they are equal.
    fn fixed(window: u64, parallel: usize) -> ReaderConfig {
        ReaderConfig { max_window_blocks: window, initial_parallel: parallel, read_parallel: parallel }
    }

    fn reader(dl: &Arc<Downloads>, fake: &Arc<Fake>, cfg: ReaderConfig) -> Reader {
        Reader::new(dl.clone(), "f1".into(), v("v1"), fake.data.len() as u64, cfg)
    }

    /// Waits (bounded) until `f` holds; the outcome, not the time taken, is what tests check.
    async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..5000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sequential_read_of_whole_file_fetches_each_block_once() {
        let (_tmp, _cache, dl, fake) = setup(40 * BS as usize, BS);
        let r = reader(&dl, &fake, fixed(4, 4));
        let mut out = Vec::new();
        let mut max_window = 0;
        loop {
            let chunk = r.read(out.len() as u64, 256).await.unwrap();
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
            max_window = max_window.max(r.window());
        }
        assert_eq!(out, fake.data);
        assert_eq!(max_window, 4);
        eventually("downloads settle", || dl.in_flight() == 0).await;
        let calls = fake.calls();
        assert_eq!(calls.len(), 40, "{calls:?}");
        assert_eq!(calls.iter().copied().collect::<HashSet<_>>(), (0..40).collect::<HashSet<_>>());
        // Prefetch downloads run max_parallel at a time, plus the read's own block.
        assert!(fake.max_active.load(Ordering::SeqCst) <= 4 + 1);
        // A second handle reads everything from the cache.
        let r2 = reader(&dl, &fake, fixed(4, 4));
        assert_eq!(r2.read(0, (40 * BS) as u32).await.unwrap(), Bytes::from(fake.data.clone()));
        assert_eq!(fake.calls().len(), 40);
    }

    /// Reads all of `r` sequentially, `BS / 2` at a time; returns the bytes and the ramp's
    /// limits in the order they were seen.
    async fn read_sequentially(r: &Reader) -> (Vec<u8>, Vec<usize>) {
        let (mut out, mut limits) = (Vec::new(), vec![r.ramp().0]);
        loop {
            let chunk = r.read(out.len() as u64, BS as u32 / 2).await.unwrap();
            if chunk.is_empty() {
                return (out, limits);
            }
            out.extend_from_slice(&chunk);
            if limits.last() != Some(&r.ramp().0) {
                limits.push(r.ramp().0);
            }
        }
    }

    /// `seen` went through `levels` in order, from the first to the last. The reader samples the
    /// limit between its reads, so on a loaded machine a level held briefly can go unseen.
    fn assert_levels(seen: &[usize], levels: &[usize]) {
        let mut rest = levels.iter();
        let in_order = seen.iter().all(|s| rest.any(|l| l == s));
        assert!(
            in_order && seen.first() == levels.first() && seen.last() == levels.last(),
            "levels {seen:?}, expected {levels:?}"
        );
    }

    // Paused time: the link's delays are virtual, so the throughput the ramp measures is exact.
    #[tokio::test(start_paused = true)]
    async fn at_latency_prefetches_in_flight_grow_until_throughput_stops_improving() {
        let blocks = 300;
        let (_tmp, _cache, dl, fake) = setup(blocks * BS as usize, BS);
        // A block takes 100 ms to start and 100 ms to transfer: 5 blocks a second per download
        // in flight; the whole link carries 30 blocks a second.
        let per_connection = BS as f64 / 0.1;
        let link = Link { latency: Duration::from_millis(100), per_connection, total: 30.0 * BS as f64 };
        *fake.link.lock().unwrap() = Some(link);
        let r = reader(&dl, &fake, ReaderConfig { max_window_blocks: 64, initial_parallel: 2, read_parallel: 2 });
        let (out, limits) = read_sequentially(&r).await;
        assert_eq!(out, fake.data);
        // Blocks a second per level: 2 -> 10, 4 -> 20, 8 -> 30 (the link is full), 16 -> 30 (no
        // gain): the ramp settles back on 8, far below the cap of 64.
        assert_levels(&limits, &[2, 4, 8, 16, 8]);
        assert_eq!(r.ramp(), (8, true));
        eventually("downloads settle", || dl.in_flight() == 0).await;
        let calls = fake.calls();
        assert_eq!(calls.len(), blocks, "each block is fetched once");
        assert_eq!(calls.into_iter().collect::<HashSet<_>>(), (0..blocks as u64).collect::<HashSet<_>>());
        assert!(fake.max_active.load(Ordering::SeqCst) <= 16 + 2);
    }

    #[tokio::test(start_paused = true)]
    async fn at_latency_prefetches_in_flight_never_pass_the_cap() {
        let blocks = 200;
        let (_tmp, _cache, dl, fake) = setup(blocks * BS as usize, BS);
        // A link far wider than any one reader: every doubling doubles the throughput.
        let per_connection = BS as f64 / 0.05;
        let link = Link { latency: Duration::from_millis(100), per_connection, total: 1000.0 * per_connection };
        *fake.link.lock().unwrap() = Some(link);
        let r = reader(&dl, &fake, ReaderConfig { max_window_blocks: 8, initial_parallel: 2, read_parallel: 2 });
        let (out, limits) = read_sequentially(&r).await;
        assert_eq!(out, fake.data);
        assert_levels(&limits, &[2, 4, 8]);
        assert_eq!(r.ramp(), (8, true));
        eventually("downloads settle", || dl.in_flight() == 0).await;
        assert_eq!(fake.calls().len(), blocks, "each block is fetched once");
        // The window (8 blocks, the memory bound) holds every prefetch in flight and the
        // read's own download.
        assert!(fake.max_active.load(Ordering::SeqCst) <= 8 + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_sequential_reader_leaves_only_the_blocks_around_it_in_the_recent_tier() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Arc::new(BlockCache::open(tmp.path(), 1 << 30, BS).unwrap().with_recent_blocks(100));
        let fake = Fake::new(40 * BS as usize, BS);
        let dl = Downloads::new(cache.clone(), fake.fetch_fn());
        let r = reader(&dl, &fake, fixed(4, 4));
        let (out, _) = read_sequentially(&r).await;
        assert_eq!(out, fake.data);
        eventually("downloads settle", || dl.in_flight() == 0).await;
        // The last block and the one before it (a reordered read may still want it).
        assert_eq!(cache.recent_blocks(), 2);
        assert_eq!(cache.block_count(), 40, "every block stays on disk");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn window_grows_ahead_of_the_reader() {
        let (_tmp, cache, dl, fake) = setup(40 * BS as usize, BS);
        let r = reader(&dl, &fake, ReaderConfig { max_window_blocks: 4, initial_parallel: 2, read_parallel: 2 });
        // First read: nothing known yet, no prefetch.
        r.read(0, BS as u32).await.unwrap();
        assert_eq!(r.window(), 0);
        assert!(!r.prefetching());
        let mut expected_windows = vec![];
        for i in 1..4u64 {
            r.read(i * BS, BS as u32).await.unwrap();
            expected_windows.push(r.window());
        }
        assert_eq!(expected_windows, vec![1, 2, 4]);
        // After reading block 3 with a window of 4, blocks 4..8 are fetched ahead, and no further.
        eventually("blocks 4..8 prefetched", || {
            (4..8).all(|b| cache.contains(&BlockKey { file_id: "f1".into(), version: v("v1"), index: b }))
        })
        .await;
        eventually("downloads settle", || dl.in_flight() == 0).await;
        let fetched: HashSet<u64> = fake.calls().into_iter().collect();
        assert_eq!(fetched, (0..8).collect::<HashSet<_>>());
        // Reading them now costs no download.
        for i in 4..8u64 {
            r.read(i * BS, BS as u32).await.unwrap();
        }
        assert!(fake.calls()[..8].iter().all(|b| *b < 8));
        assert_eq!(r.window(), 4);
        // Prefetches (the ramp may have reached the window of 4) plus the read's own block.
        assert!(fake.max_active.load(Ordering::SeqCst) <= 4 + 1);
        // Growth is per block entered, not per read: small reads inside one block keep the window.
        let r2 = reader(&dl, &fake, ReaderConfig::default());
        for k in 0..8u64 {
            r2.read(k * 64, 64).await.unwrap();
        }
        assert_eq!(r2.window(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn random_reads_fetch_only_what_they_need() {
        let bs = 1 << 20;
        let (_tmp, _cache, dl, fake) = setup(40 << 20, bs);
        let r = reader(&dl, &fake, ReaderConfig::default());
        let blocks = [37u64, 3, 20, 11, 29, 0, 33, 15, 7, 25];
        for b in blocks {
            let off = b * bs + 12_345;
            let got = r.read(off, 4096).await.unwrap();
            assert_eq!(&got[..], &fake.data[off as usize..off as usize + 4096]);
            assert_eq!(r.window(), 0);
        }
        assert!(!r.prefetching(), "random reads never start the prefetcher");
        // Downloads leave the registry once their block is written to the cache.
        eventually("downloads settle", || dl.in_flight() == 0).await;
        let mut calls = fake.calls();
        calls.sort();
        let mut want = blocks.to_vec();
        want.sort();
        assert_eq!(calls, want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reads_of_one_block_share_one_fetch() {
        let (_tmp, _cache, dl, fake) = setup(4 * BS as usize, BS);
        fake.gate.send_replace(false);
        // No prefetch here: every download counted is one a read needed.
        let no_prefetch = fixed(0, 4);
        let r1 = Arc::new(reader(&dl, &fake, no_prefetch.clone()));
        let r2 = Arc::new(reader(&dl, &fake, no_prefetch));
        let a = tokio::spawn({
            let r1 = r1.clone();
            async move { r1.read(100, 200).await }
        });
        let b = tokio::spawn({
            let r1 = r1.clone();
            async move { r1.read(500, 100).await }
        });
        let c = tokio::spawn({
            let r2 = r2.clone();
            async move { r2.read(0, 1000).await }
        });
        eventually("the download started", || !fake.calls().is_empty()).await;
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        fake.gate.send_replace(true);
        let (a, b, c) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap(), c.await.unwrap().unwrap());
        assert_eq!(&a[..], &fake.data[100..300]);
        assert_eq!(&b[..], &fake.data[500..600]);
        assert_eq!(&c[..], &fake.data[0..1000]);
        assert_eq!(fake.calls(), vec![0]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn failed_fetch_surfaces_and_a_later_read_retries() {
        let (_tmp, cache, dl, fake) = setup(4 * BS as usize, BS);
        fake.fail.lock().unwrap().insert(2, 1);
        let r = reader(&dl, &fake, fixed(0, 4));
        let err = r.read(2 * BS + 10, 10).await.unwrap_err();
        assert!(matches!(*err, ApiError::Network(_)), "{err:?}");
        assert!(err.is_transient());
        assert!(cache.used_bytes() == 0);
        let ok = r.read(2 * BS + 10, 10).await.unwrap();
        assert_eq!(&ok[..], &fake.data[2 * BS as usize + 10..2 * BS as usize + 20]);
        assert_eq!(fake.calls(), vec![2, 2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn failed_prefetch_is_dropped_and_refetched_by_the_read() {
        let (_tmp, _cache, dl, fake) = setup(20 * BS as usize, BS);
        for b in [3, 6] {
            fake.fail.lock().unwrap().insert(b, 1);
        }
        let r = reader(&dl, &fake, ReaderConfig::default());
        let mut out = Vec::new();
        // Blocks 0..3 sequentially: the window reaches 4 blocks, 3..7, fetched in the background.
        while out.len() < 3 * BS as usize {
            out.extend_from_slice(&r.read(out.len() as u64, 512).await.unwrap());
        }
        eventually("prefetch of 3..7 done", || dl.in_flight() == 0 && (3..7).all(|b| fake.count(b) == 1)).await;
        // The failed prefetches (3 and 6) were dropped; reading on fetches them again.
        loop {
            let chunk = r.read(out.len() as u64, 512).await.unwrap();
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        assert_eq!(out, fake.data);
        eventually("downloads settle", || dl.in_flight() == 0).await;
        for b in 0..20 {
            let want = if [3, 6].contains(&b) { 2 } else { 1 };
            assert_eq!(fake.count(b), want, "block {b}: {:?}", fake.calls());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn read_joining_a_failing_prefetch_fetches_again() {
        let (_tmp, _cache, dl, fake) = setup(20 * BS as usize, BS);
        fake.fail.lock().unwrap().insert(3, 1);
        fake.hold_from.store(3, Ordering::SeqCst);
        fake.gate.send_replace(false);
        let r = Arc::new(reader(&dl, &fake, ReaderConfig::default()));
        let mut off = 0;
        while off < 3 * BS {
            off += r.read(off, 512).await.unwrap().len() as u64;
        }
        // The prefetch of block 3 is under way (held); a read of block 3 joins it.
        eventually("prefetch of 3 started", || fake.count(3) == 1).await;
        let read = tokio::spawn({
            let r = r.clone();
            async move { r.read(3 * BS, 512).await }
        });
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        fake.gate.send_replace(true);
        let got = read.await.unwrap().unwrap();
        assert_eq!(&got[..], &fake.data[3 * BS as usize..3 * BS as usize + 512]);
        assert_eq!(fake.count(3), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn reads_at_and_past_eof() {
        let size = 3 * BS as usize + 100;
        let (_tmp, cache, dl, fake) = setup(size, BS);
        let r = reader(&dl, &fake, fixed(0, 4));
        // Spanning all blocks, ending past EOF: the bytes there are, block downloads whole.
        let all = r.read(10, u32::MAX).await.unwrap();
        assert_eq!(&all[..], &fake.data[10..]);
        let tail = r.read(3 * BS + 50, 4096).await.unwrap();
        assert_eq!(&tail[..], &fake.data[3 * BS as usize + 50..]);
        assert!(r.read(size as u64, 10).await.unwrap().is_empty());
        assert!(r.read(size as u64 + 5000, 10).await.unwrap().is_empty());
        assert!(r.read(0, 0).await.unwrap().is_empty());
        let mut calls = fake.calls();
        calls.sort();
        assert_eq!(calls, vec![0, 1, 2, 3]);
        eventually("downloads settle", || dl.in_flight() == 0).await;
        assert_eq!(cache.cached_len(&BlockKey { file_id: "f1".into(), version: v("v1"), index: 3 }), Some(100));
        assert!(!r.prefetching());
        // An empty file never downloads.
        let empty = Reader::new(dl.clone(), "f1".into(), v("v0"), 0, ReaderConfig::default());
        assert!(empty.read(0, 100).await.unwrap().is_empty());
        assert_eq!(fake.calls().len(), 4);
    }

    #[tokio::test]
    async fn reader_and_its_read_future_are_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let (_tmp, cache, dl, fake) = setup(10, BS);
        let r = reader(&dl, &fake, ReaderConfig::default());
        send_sync(&r);
        send_sync(&*cache);
        send(&r.read(0, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn versions_never_mix() {
        let (_tmp, _cache, dl, fake) = setup(2 * BS as usize, BS);
        let r1 = reader(&dl, &fake, ReaderConfig::default());
        r1.read(0, 10).await.unwrap();
        let r2 = Reader::new(dl.clone(), "f1".into(), v("v2"), 2 * BS, ReaderConfig::default());
        r2.read(0, 10).await.unwrap();
        assert_eq!(fake.calls(), vec![0, 0]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn dropping_the_reader_stops_prefetching() {
        let (_tmp, cache, dl, fake) = setup(100 * BS as usize, BS);
        // Blocks 5 and up are held: the prefetcher's downloads stay under way.
        fake.hold_from.store(5, Ordering::SeqCst);
        fake.gate.send_replace(false);
        let r = reader(&dl, &fake, fixed(2, 2));
        for i in 0..5u64 {
            r.read(i * BS, BS as u32).await.unwrap();
        }
        assert!(r.prefetching());
        assert_eq!(r.window(), 2);
        eventually("prefetch under way", || fake.active.load(Ordering::SeqCst) == 2).await;
        drop(r);
        fake.gate.send_replace(true);
        eventually("downloads settle", || dl.in_flight() == 0).await;
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        // The two downloads under way finished into the cache; nothing else started.
        let mut ahead: Vec<u64> = fake.calls().into_iter().filter(|b| *b >= 5).collect();
        ahead.sort();
        assert_eq!(ahead, vec![5, 6]);
        // Two prefetches at a time, plus the read's own block.
        assert!(fake.max_active.load(Ordering::SeqCst) <= 3);
        assert_eq!(cache.block_count(), 7);
    }
}
