//! The folder-listing cache. Each folder has a slot with its own async lock, held while the
//! folder is fetched from Box and while a local change (create, rename, delete, a landed
//! upload) is applied to the cached listing. So concurrent callers share one fetch, and an
//! edit can never be lost to a fetch that started before it and finished after it.

use super::fs::Listing;
use super::inode::Ino;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Slot {
    cached: Option<(Arc<Listing>, Instant)>,
}

pub struct ListingCache {
    ttl: Duration,
    slots: Mutex<HashMap<Ino, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl ListingCache {
    pub fn new(ttl: Duration) -> ListingCache {
        ListingCache { ttl, slots: Mutex::new(HashMap::new()) }
    }

    fn slot(&self, ino: Ino) -> Arc<tokio::sync::Mutex<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).entry(ino).or_default().clone()
    }

    /// The cached listing if fresh, else the result of `fetch` (cached on success).
    pub async fn get_or_fetch<E>(
        &self,
        ino: Ino,
        fetch: impl Future<Output = Result<Arc<Listing>, E>>,
    ) -> Result<Arc<Listing>, E> {
        let slot = self.slot(ino);
        let mut guard = slot.lock().await;
        if let Some((listing, at)) = &guard.cached {
            if at.elapsed() < self.ttl {
                return Ok(listing.clone());
            }
        }
        let listing = fetch.await?;
        guard.cached = Some((listing.clone(), Instant::now()));
        Ok(listing)
    }

    /// Applies `edit` to the cached listing, if there is one (else the next fetch sees Box).
    pub async fn edit(&self, ino: Ino, edit: impl FnOnce(&Listing) -> Listing) {
        let slot = self.slot(ino);
        let mut guard = slot.lock().await;
        if let Some((listing, at)) = &guard.cached {
            let edited = Arc::new(edit(listing));
            guard.cached = Some((edited, *at));
        }
    }

    /// Forgets a folder's listing: the next access lists it again.
    pub async fn forget(&self, ino: Ino) {
        let slot = self.slot(ino);
        slot.lock().await.cached = None;
    }

    pub async fn forget_all(&self) {
        let slots: Vec<_> = self.slots.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for slot in slots {
            slot.lock().await.cached = None;
        }
    }
}
