//! The folder-listing cache. Each folder has a slot with its own async lock, held while the
//! folder is fetched from Box and while a local change (create, rename, delete, a landed
//! upload) is applied to the cached listing. So concurrent callers share one fetch, and an
//! edit can never be lost to a fetch that started before it and finished after it.

use super::inode::{Ino, NodeKind};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A directory entry of a listing snapshot.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: NodeKind,
    pub name: String,
}

/// A folder's entries, indexed by name and by Box's case-insensitive form of the name.
/// Edited in place (`insert`, `remove`); open directory handles keep their own snapshot.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub entries: Vec<DirEntry>,
    by_name: HashMap<String, usize>,
    by_folded: HashMap<String, usize>,
}

impl Listing {
    pub fn find(&self, name: &str) -> Option<&DirEntry> {
        self.by_name.get(name).map(|i| &self.entries[*i])
    }

    /// The entry whose name equals `name` case-insensitively (Box's uniqueness rule).
    pub fn find_folded(&self, name: &str) -> Option<&DirEntry> {
        self.by_folded.get(&name.to_lowercase()).map(|i| &self.entries[*i])
    }

    pub fn contains_ino(&self, ino: Ino) -> bool {
        self.entries.iter().any(|e| e.ino == ino)
    }

    /// Adds `entry` unless its name is taken (the first of two equal names wins).
    pub fn insert(&mut self, entry: DirEntry) -> bool {
        if self.by_name.contains_key(&entry.name) {
            return false;
        }
        let index = self.entries.len();
        self.by_folded.entry(entry.name.to_lowercase()).or_insert(index);
        self.by_name.insert(entry.name.clone(), index);
        self.entries.push(entry);
        true
    }

    /// Removes every entry `drop` selects.
    pub fn remove(&mut self, drop: impl Fn(&DirEntry) -> bool) {
        if self.entries.iter().any(&drop) {
            let kept: Vec<DirEntry> = std::mem::take(&mut self.entries).into_iter().filter(|e| !drop(e)).collect();
            *self = Listing::from_entries(kept);
        }
    }

    pub fn from_entries(entries: Vec<DirEntry>) -> Listing {
        let mut listing = Listing::default();
        for e in entries {
            listing.insert(e);
        }
        listing
    }
}

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
    /// The listing is copied only while a directory handle still holds the old snapshot.
    pub async fn edit(&self, ino: Ino, edit: impl FnOnce(&mut Listing)) {
        let slot = self.slot(ino);
        let mut guard = slot.lock().await;
        if let Some((listing, _)) = &mut guard.cached {
            edit(Arc::make_mut(listing));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ino: Ino, name: &str) -> DirEntry {
        DirEntry { ino, kind: NodeKind::File, name: name.into() }
    }

    #[test]
    fn listings_index_names_exactly_and_case_insensitively() {
        let mut l = Listing::from_entries(vec![entry(2, "a.txt"), entry(3, "B.txt")]);
        assert!(!l.insert(entry(4, "a.txt")), "the first of two equal names wins");
        assert_eq!(l.find("a.txt").map(|e| e.ino), Some(2));
        assert_eq!(l.find_folded("b.TXT").map(|e| e.ino), Some(3));
        assert!(l.find("b.txt").is_none());
        l.remove(|e| e.ino == 2);
        assert!(l.find("a.txt").is_none() && l.find_folded("A.TXT").is_none());
        assert_eq!(l.find("B.txt").map(|e| e.ino), Some(3), "indexes follow the removal");
        assert!(l.insert(entry(5, "c")) && l.contains_ino(5) && l.entries.len() == 2);
    }
}
