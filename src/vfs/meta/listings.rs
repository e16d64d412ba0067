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
/// Edited in place (`insert`, `remove_named`, both O(1)); open directory handles keep their
/// own snapshot.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub entries: Vec<DirEntry>,
    by_name: HashMap<String, usize>,
    /// Index of the first entry with each case-insensitive name.
    by_folded: HashMap<String, usize>,
    /// Entries whose case-insensitive name an earlier entry already had (Box refuses such
    /// pairs, but a listing may catch a rename half done).
    folded_clashes: usize,
}

impl Listing {
    pub fn find(&self, name: &str) -> Option<&DirEntry> {
        self.by_name.get(name).map(|i| &self.entries[*i])
    }

    /// The entry whose name equals `name` case-insensitively (Box's uniqueness rule).
    pub fn find_folded(&self, name: &str) -> Option<&DirEntry> {
        self.by_folded.get(&name.to_lowercase()).map(|i| &self.entries[*i])
    }

    /// Adds `entry` unless its name is taken (the first of two equal names wins).
    pub fn insert(&mut self, entry: DirEntry) -> bool {
        if self.by_name.contains_key(&entry.name) {
            return false;
        }
        let index = self.entries.len();
        match self.by_folded.entry(entry.name.to_lowercase()) {
            std::collections::hash_map::Entry::Occupied(_) => self.folded_clashes += 1,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(index);
            }
        }
        self.by_name.insert(entry.name.clone(), index);
        self.entries.push(entry);
        true
    }

    /// Removes the entry called `name` if `check` accepts it (the last entry takes its place).
    pub fn remove_named(&mut self, name: &str, check: impl Fn(&DirEntry) -> bool) -> Option<DirEntry> {
        let i = *self.by_name.get(name)?;
        if !check(&self.entries[i]) {
            return None;
        }
        self.by_name.remove(name);
        let folded = name.to_lowercase();
        let held_folded = self.by_folded.get(&folded) == Some(&i);
        if held_folded {
            self.by_folded.remove(&folded);
        } else {
            self.folded_clashes -= 1;
        }
        let removed = self.entries.swap_remove(i);
        if let Some(moved) = self.entries.get(i) {
            let last = self.entries.len();
            self.by_name.insert(moved.name.clone(), i);
            if let Some(at) = self.by_folded.get_mut(&moved.name.to_lowercase()).filter(|at| **at == last) {
                *at = i;
            }
        }
        if held_folded && self.folded_clashes > 0 {
            if let Some(j) = self.entries.iter().position(|e| e.name.to_lowercase() == folded) {
                self.by_folded.insert(folded, j);
                self.folded_clashes -= 1;
            }
        }
        Some(removed)
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

    /// The cached listing if it is fresh and no fetch or edit holds it right now; never waits.
    pub fn fresh(&self, ino: Ino) -> Option<Arc<Listing>> {
        let slot = self.slots.lock().unwrap_or_else(|p| p.into_inner()).get(&ino)?.clone();
        let guard = slot.try_lock().ok()?;
        let (listing, at) = guard.cached.as_ref()?;
        (at.elapsed() < self.ttl).then(|| listing.clone())
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

    /// Caches `listing` as the folder's, unless one is cached already.
    pub async fn seed(&self, ino: Ino, listing: Listing) {
        let slot = self.slot(ino);
        let mut guard = slot.lock().await;
        if guard.cached.is_none() {
            guard.cached = Some((Arc::new(listing), Instant::now()));
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
        assert!(l.remove_named("a.txt", |e| e.ino == 9).is_none(), "the check refuses");
        assert_eq!(l.remove_named("a.txt", |e| e.ino == 2).map(|e| e.ino), Some(2));
        assert!(l.find("a.txt").is_none() && l.find_folded("A.TXT").is_none());
        assert_eq!(l.find("B.txt").map(|e| e.ino), Some(3), "indexes follow the removal");
        assert!(l.insert(entry(5, "c")) && l.find("c").is_some_and(|e| e.ino == 5) && l.entries.len() == 2);
    }

    /// Random inserts and removals (names from a small set that clash case-insensitively)
    /// leave the indexes as a listing rebuilt from the same entries would have them.
    #[test]
    fn in_place_edits_match_a_rebuilt_listing() {
        let names = ["a", "A", "b", "B", "c", "d", "D", "e"];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut l = Listing::default();
        for step in 0..5000 {
            let name = names[next(names.len())];
            if next(2) == 0 {
                l.insert(entry(step + 2, name));
            } else {
                l.remove_named(name, |_| true);
            }
            let rebuilt = Listing::from_entries(l.entries.clone());
            for n in names {
                assert_eq!(l.find(n).map(|e| e.ino), rebuilt.find(n).map(|e| e.ino), "step {step} {n}");
                let folded = l.find_folded(n).map(|e| e.name.to_lowercase());
                assert_eq!(folded, rebuilt.find_folded(n).map(|e| e.name.to_lowercase()), "step {step} {n}");
            }
            assert_eq!(l.folded_clashes, rebuilt.folded_clashes, "step {step}");
        }
    }
}
