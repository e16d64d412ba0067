//! Downloads into the block cache ([`Downloads`]: the cache, the fetch function that reaches
//! Box, and the registry of blocks being downloaded right now), shared by every reader of one
//! cache: two reads, or a read and a prefetch, of the same block in any handle share one
//! download. Each download runs in its own task, which
//! hands the bytes to its waiters and to the cache's RAM tier the moment they arrive, then writes
//! the block to disk, then leaves the registry; so anyone looking finds a block in the registry
//! or in the cache, never in neither.

use super::blocks::{BlockCache, BlockKey};
use super::version::ContentVersion;
use boxfs_api::ApiError;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// A download failure. Cloneable (shared by everyone waiting for the same block); the
/// underlying [`ApiError`] is reachable through the `Arc` to map it to an errno.
pub type FetchError = Arc<ApiError>;

/// Downloads `len` bytes at `offset` of one version of a file (fewer at EOF, never more).
pub type FetchFn = Arc<dyn Fn(BlockRequest) -> BoxFuture<'static, Result<Bytes, FetchError>> + Send + Sync>;

/// One ranged download: a whole block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRequest {
    pub file_id: String,
    pub version: ContentVersion,
    pub offset: u64,
    pub len: u64,
    /// Fetched ahead of a reader: nobody waits for it yet.
    pub prefetch: bool,
}

/// What waiters of one download see: `None` until it is done.
pub(crate) type Outcome = Option<Result<Bytes, FetchError>>;

struct Download {
    rx: watch::Receiver<Outcome>,
    /// Started by a prefetch: a read that joined it and saw it fail tries once more itself.
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
    pub(crate) fn join_or_start(self: &Arc<Self>, key: &BlockKey, len: u64, prefetch: bool) -> Slot {
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
            prefetch,
        };
        let guard = Unregister { downloads: self.clone(), key: key.clone(), rx: rx.clone() };
        let download = (self.fetch)(req);
        tokio::spawn(async move {
            let guard = guard;
            let result = download.await;
            let full = match &result {
                Ok(data) if data.len() as u64 == len => true,
                Ok(data) => {
                    tracing::warn!(
                        file_id = %guard.key.file_id, block = guard.key.index, got = data.len(), expected = len,
                        "short block download; not caching it"
                    );
                    false
                }
                Err(e) => {
                    tracing::debug!(file_id = %guard.key.file_id, block = guard.key.index, error = %e, "block download failed");
                    false
                }
            };
            // Waiters and the RAM tier get the bytes now; the disk write happens while the entry
            // still serves them.
            if let (true, Ok(data)) = (full, &result) {
                guard.downloads.cache.keep_in_ram(&guard.key, data.clone());
            }
            tx.send_replace(Some(result.clone()));
            if let (true, Ok(data)) = (full, result) {
                let (cache, key) = (guard.downloads.cache.clone(), guard.key.clone());
                match tokio::task::spawn_blocking(move || cache.put(&key, &data)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not write a block to the cache"),
                    Err(e) => tracing::warn!(error = %e, "block cache write task failed"),
                }
            }
            drop(guard);
        });
        Slot::Pending { rx, prefetch }
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
