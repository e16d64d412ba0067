//! Downloads into the block cache ([`Downloads`]: the cache, the fetch function that reaches
//! Box, and the registry of blocks being downloaded right now), shared by every reader of one
//! cache: two reads, or a read and a prefetch, of the same block in any handle share one
//! download. Each download runs in its own task, which streams the bytes into the cache's
//! [`BlockWriter`] as they arrive, commits the block, hands its [`BlockFile`] to its waiters and
//! to the cache's recent tier, then leaves the registry; so anyone looking finds a block in the
//! registry or in the cache, never in neither.

use super::blocks::{BlockCache, BlockFile, BlockKey, BlockWriter};
use super::version::ContentVersion;
use boxfs_api::ApiError;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// A download failure. Cloneable (shared by everyone waiting for the same block); the
/// underlying [`ApiError`] is reachable through the `Arc` to map it to an errno.
pub type FetchError = Arc<ApiError>;

/// Downloads `len` bytes at `offset` of one version of a file (fewer at EOF, never more) into
/// the writer it is given, and gives the writer back.
pub type FetchFn =
    Arc<dyn Fn(BlockRequest, BlockWriter) -> BoxFuture<'static, Result<BlockWriter, FetchError>> + Send + Sync>;

/// One ranged download: a whole block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRequest {
    pub file_id: String,
    pub version: ContentVersion,
    pub offset: u64,
    pub len: u64,
    pub urgency: Urgency,
}

/// Who a download is for, which says at what priority it asks Box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// A reader waits for it.
    Read,
    /// Fetched ahead of a reader: nobody waits for it yet.
    Prefetch,
    /// Pinned content kept on this device: nobody will wait for it soon.
    Pin,
}

/// What waiters of one download see: `None` until it is done.
pub(crate) type Outcome = Option<Result<BlockFile, FetchError>>;

struct Download {
    rx: watch::Receiver<Outcome>,
    /// Started by a prefetch (or for a pin): a read that joined it and saw it fail tries once
    /// more itself.
    prefetch: bool,
}

/// Downloads of blocks with `fetch` into `cache`. Blocks being downloaded right now are kept
/// by [`BlockKey`], so that concurrent opens of a file never download a block twice. An entry
/// stays until its block is in the cache (or the download failed), so anyone looking finds the
/// block either here or in the cache.
pub struct Downloads {
    cache: Arc<BlockCache>,
    fetch: FetchFn,
    map: Mutex<HashMap<BlockKey, Download>>,
}

pub(crate) enum Slot {
    Cached,
    Pending { rx: watch::Receiver<Outcome>, prefetch: bool },
}

impl Downloads {
    pub fn new(cache: Arc<BlockCache>, fetch: FetchFn) -> Arc<Downloads> {
        Arc::new(Downloads { cache, fetch, map: Mutex::default() })
    }

    pub fn cache(&self) -> &Arc<BlockCache> {
        &self.cache
    }

    /// Number of downloads in flight.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<BlockKey, Download>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the download of `key`, or finds it cached, or starts it (in its own task, so it
    /// completes into the cache even if every waiter goes away).
    pub(crate) fn join_or_start(self: &Arc<Self>, key: &BlockKey, len: u64, urgency: Urgency) -> Slot {
        let prefetch = urgency != Urgency::Read;
        let cache = &self.cache;
        let mut map = self.lock();
        if let Some(d) = map.get(key) {
            // A download that failed (its entry lingers until its task ends) or whose task died
            // without an answer (panic, runtime shutdown) is replaced by a new one.
            let dead = match &*d.rx.borrow() {
                Some(Ok(_)) => false,
                Some(Err(_)) => true,
                None => d.rx.has_changed().is_err(),
            };
            if !dead {
                return Slot::Pending { rx: d.rx.clone(), prefetch: d.prefetch };
            }
        }
        // Checked under the map lock: a download puts its block in the cache before it leaves the
        // map, so a block is never missed between the two (and never downloaded twice).
        if cache.contains(key) {
            return Slot::Cached;
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), Download { rx: rx.clone(), prefetch });
        drop(map);
        let req = BlockRequest {
            file_id: key.file_id.clone(),
            version: key.version.clone(),
            offset: key.index * cache.block_size(),
            len,
            urgency,
        };
        let guard = Unregister { downloads: self.clone(), key: key.clone(), rx: rx.clone() };
        tokio::spawn(async move {
            let result = guard.downloads.download(&guard.key, req).await;
            tx.send_replace(Some(result));
            drop(guard);
        });
        Slot::Pending { rx, prefetch }
    }

    /// Fetches the block of `key` into a new cache file and commits it (and keeps it in the
    /// recent tier); a short block (the file is shorter than we were told) is handed over but
    /// not cached.
    async fn download(&self, key: &BlockKey, req: BlockRequest) -> Result<BlockFile, FetchError> {
        let io_error = |e: std::io::Error| Arc::new(ApiError::Io(e));
        let len = req.len;
        let writer = self.cache.writer(key).map_err(|e| {
            tracing::warn!(error = %e, "could not create a block cache file; the read fails");
            io_error(e)
        })?;
        let writer = (self.fetch)(req, writer).await.inspect_err(|e| match &**e {
            // Local: the cache file refused the bytes (a full disk, say).
            ApiError::Io(io) => {
                tracing::warn!(file_id = %key.file_id, block = key.index, error = %io, "block download failed")
            }
            e => tracing::debug!(file_id = %key.file_id, block = key.index, error = %e, "block download failed"),
        })?;
        if writer.written() != len {
            tracing::warn!(
                file_id = %key.file_id, block = key.index, got = writer.written(), expected = len,
                "short block download; not caching it"
            );
            return writer.into_uncached().map_err(io_error);
        }
        let cache = self.cache.clone();
        let file = match tokio::task::spawn_blocking(move || cache.commit(writer)).await {
            Ok(committed) => committed.map_err(io_error)?,
            Err(e) => return Err(io_error(std::io::Error::other(format!("block cache commit task failed: {e}")))),
        };
        self.cache.keep_recent(key, file.clone());
        Ok(file)
    }
}

/// Removes a download's entry when its task ends, however it ends (done, panicked, aborted).
struct Unregister {
    downloads: Arc<Downloads>,
    key: BlockKey,
    rx: watch::Receiver<Outcome>,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        let mut map = self.downloads.lock();
        if map.get(&self.key).is_some_and(|d| d.rx.same_channel(&self.rx)) {
            map.remove(&self.key);
        }
    }
}

/// The download's result, or `None` if it ended without one.
pub(crate) async fn wait(mut rx: watch::Receiver<Outcome>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone(),
        Err(_) => None,
    }
}

/// Returns once the download behind `rx` is over: its block written to the cache (or dropped),
/// its task ended. A prefetcher waits for this, so disk writes hold back further prefetching.
pub(crate) async fn settled(mut rx: watch::Receiver<Outcome>) {
    while rx.changed().await.is_ok() {}
}
