//! The folder-listing cache. Each folder has a slot with its own async lock, held while the
//! folder is fetched from Box and while a local change (create, rename, delete, a landed
//! upload) is applied to the cached listing. So concurrent callers share one fetch, and an
//! edit can never be lost to a fetch that started before it and finished after it.
//!
//! The cache keeps to a byte budget (an estimate per entry, including its item's place in the
//! inode table): past it, the least recently used listings nobody holds are dropped, and
//! listed again from Box when next needed. A listing out of date (its TTL passed, or an event
//! or a change made here forgot it) is listed again before it is used; until it is dropped for
//! the budget it answers in its place while Box cannot be reached.

use super::inode::{item_bytes, Ino, NodeKind};
use hashbrown::{DefaultHashBuilder, HashTable};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// A directory entry of a listing snapshot. The name is the inode's own (shared, not copied).
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: NodeKind,
    pub name: Arc<str>,
}

/// A folder's entries, indexed by name and by Box's case-insensitive form of the name (the
/// indexes hold entry positions, not names). Edited in place (`insert`, `remove_named`, both
/// O(1)); open directory handles keep their own snapshot.
#[derive(Clone, Default)]
pub struct Listing {
    pub entries: Vec<DirEntry>,
    by_name: HashTable<u32>,
    /// Position of the first entry with each case-insensitive name.
    by_folded: HashTable<u32>,
    /// Entries whose case-insensitive name an earlier entry already had (Box refuses such
    /// pairs, but a listing may catch a rename half done).
    folded_clashes: usize,
    /// An estimate of the bytes the entries and their items' table entries take.
    entry_bytes: usize,
    /// Which state of the folder this is: every listing the cache stores, and every edit of
    /// one, gets a new version (0: never cached).
    version: u64,
}

/// The next [`Listing::version`].
static VERSIONS: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    VERSIONS.fetch_add(1, Ordering::Relaxed)
}

/// Bytes one entry costs: the entry, its two index slots, and its item in the inode table.
/// Entries in a full page of a Box listing, and a name of a typical length, for estimates of
/// what a listing not fetched yet will take.
const PAGE_ENTRIES: usize = 1000;
const TYPICAL_NAME: &str = "a-name-of-a-typical-length-32-ch";

fn entry_cost(name: &str) -> usize {
    std::mem::size_of::<DirEntry>() + 2 * (std::mem::size_of::<u32>() + 1) + item_bytes(name)
}

impl std::fmt::Debug for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.entries).finish()
    }
}

static HASHER: LazyLock<DefaultHashBuilder> = LazyLock::new(DefaultHashBuilder::default);

fn name_hash(name: &str) -> u64 {
    HASHER.hash_one(name)
}

/// The hash of `name` case-insensitively, without building the folded string.
fn folded_hash(name: &str) -> u64 {
    let mut h = HASHER.build_hasher();
    name.chars().flat_map(char::to_lowercase).for_each(|c| h.write_u32(c as u32));
    h.finish()
}

fn same_folded(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

impl Listing {
    fn position(&self, name: &str) -> Option<usize> {
        let entries = &self.entries;
        self.by_name.find(name_hash(name), |&i| &*entries[i as usize].name == name).map(|&i| i as usize)
    }

    fn folded_position(&self, name: &str) -> Option<usize> {
        let entries = &self.entries;
        self.by_folded.find(folded_hash(name), |&i| same_folded(&entries[i as usize].name, name)).map(|&i| i as usize)
    }

    pub fn find(&self, name: &str) -> Option<&DirEntry> {
        self.position(name).map(|i| &self.entries[i])
    }

    /// The entry whose name equals `name` case-insensitively (Box's uniqueness rule).
    pub fn find_folded(&self, name: &str) -> Option<&DirEntry> {
        self.folded_position(name).map(|i| &self.entries[i])
    }

    /// Adds `entry` unless its name is taken (the first of two equal names wins).
    pub fn insert(&mut self, entry: DirEntry) -> bool {
        if self.position(&entry.name).is_some() {
            return false;
        }
        let index = self.entries.len() as u32;
        let (name, folded) = (name_hash(&entry.name), folded_hash(&entry.name));
        let clash = self.folded_position(&entry.name).is_some();
        self.entry_bytes += entry_cost(&entry.name);
        self.entries.push(entry);
        let entries = &self.entries;
        self.by_name.insert_unique(name, index, |&i| name_hash(&entries[i as usize].name));
        if clash {
            self.folded_clashes += 1;
        } else {
            self.by_folded.insert_unique(folded, index, |&i| folded_hash(&entries[i as usize].name));
        }
        true
    }

    /// Points the index entry `hash` of position `from` at position `to`.
    fn repoint(table: &mut HashTable<u32>, hash: u64, from: usize, to: usize) {
        if let Some(at) = table.find_mut(hash, |&i| i as usize == from) {
            *at = to as u32;
        }
    }

    /// Removes the entry called `name` if `check` accepts it (the last entry takes its place).
    pub fn remove_named(&mut self, name: &str, check: impl Fn(&DirEntry) -> bool) -> Option<DirEntry> {
        let i = self.position(name)?;
        if !check(&self.entries[i]) {
            return None;
        }
        let folded = folded_hash(name);
        if let Ok(found) = self.by_name.find_entry(name_hash(name), |&at| at as usize == i) {
            found.remove();
        }
        let held_folded = match self.by_folded.find_entry(folded, |&at| at as usize == i) {
            Ok(found) => {
                found.remove();
                true
            }
            Err(_) => {
                self.folded_clashes -= 1;
                false
            }
        };
        let removed = self.entries.swap_remove(i);
        self.entry_bytes -= entry_cost(&removed.name);
        if let Some(moved) = self.entries.get(i) {
            let last = self.entries.len();
            let (h, f) = (name_hash(&moved.name), folded_hash(&moved.name));
            Self::repoint(&mut self.by_name, h, last, i);
            Self::repoint(&mut self.by_folded, f, last, i);
        }
        if held_folded && self.folded_clashes > 0 {
            if let Some(j) = self.entries.iter().position(|e| same_folded(&e.name, name)) {
                let entries = &self.entries;
                self.by_folded.insert_unique(folded, j as u32, |&k| folded_hash(&entries[k as usize].name));
                self.folded_clashes -= 1;
            }
        }
        Some(removed)
    }

    /// Which state of the folder this is: equal versions are equal listings.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn from_entries(entries: Vec<DirEntry>) -> Listing {
        let mut listing = Listing::default();
        for e in entries {
            listing.insert(e);
        }
        listing
    }

    /// An estimate of the bytes the listing and its items' table entries take.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Listing>() + self.entry_bytes
    }
}

#[derive(Default)]
struct Slot {
    cached: Option<(Arc<Listing>, Instant)>,
    /// The cached listing is out of date (forgotten): it is listed again before it is used,
    /// and serves only while Box cannot be reached.
    expired: bool,
}

impl Slot {
    fn fresh(&self, ttl: Duration) -> Option<&Arc<Listing>> {
        let (listing, at) = self.cached.as_ref()?;
        (!self.expired && at.elapsed() < ttl).then_some(listing)
    }
}

/// Which cached listings were used least recently, and the bytes they take.
#[derive(Default)]
struct Usage {
    /// Per cached folder: its last use and its listing's bytes.
    folders: HashMap<Ino, (u64, usize)>,
    by_use: BTreeMap<u64, Ino>,
    clock: u64,
    bytes: usize,
}

impl Usage {
    fn used(&mut self, ino: Ino, bytes: Option<usize>) {
        self.clock += 1;
        let (tick, old) = match self.folders.get(&ino) {
            Some(&(tick, old)) => (Some(tick), old),
            None => (None, 0),
        };
        if let Some(tick) = tick {
            self.by_use.remove(&tick);
        } else if bytes.is_none() {
            return; // not cached: nothing to record
        }
        let bytes = bytes.unwrap_or(old);
        self.bytes = self.bytes + bytes - old;
        self.folders.insert(ino, (self.clock, bytes));
        self.by_use.insert(self.clock, ino);
    }

    fn dropped(&mut self, ino: Ino) {
        if let Some((tick, bytes)) = self.folders.remove(&ino) {
            self.by_use.remove(&tick);
            self.bytes -= bytes;
        }
    }
}

/// The listings, within a byte budget: past it, [`ListingCache::evict`] drops the least
/// recently used ones that nobody holds.
pub struct ListingCache {
    ttl: Duration,
    budget: usize,
    slots: Mutex<HashMap<Ino, Arc<tokio::sync::Mutex<Slot>>>>,
    usage: Mutex<Usage>,
}

impl ListingCache {
    pub fn new(ttl: Duration, budget: usize) -> ListingCache {
        ListingCache { ttl, budget, slots: Mutex::new(HashMap::new()), usage: Mutex::default() }
    }

    fn slot(&self, ino: Ino) -> Arc<tokio::sync::Mutex<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).entry(ino).or_default().clone()
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Caches `listing` as the folder's, as a new version (the slot's lock is held).
    fn store(&self, slot: &mut Slot, ino: Ino, mut listing: Arc<Listing>) -> Arc<Listing> {
        Arc::make_mut(&mut listing).version = next_version();
        self.usage().used(ino, Some(listing.bytes()));
        slot.cached = Some((listing.clone(), Instant::now()));
        slot.expired = false;
        listing
    }

    /// The cached listing if fresh, else the result of `fetch` (cached on success); when the
    /// fetch fails with an error `stale_will_do` accepts, the stale listing if there is one.
    pub async fn get_or_fetch<E>(
        &self,
        ino: Ino,
        fetch: impl Future<Output = Result<Arc<Listing>, E>>,
        stale_will_do: impl FnOnce(&E) -> bool,
    ) -> Result<Arc<Listing>, E> {
        let slot = self.slot(ino);
        let mut guard = slot.lock().await;
        if let Some(listing) = guard.fresh(self.ttl) {
            self.usage().used(ino, None);
            return Ok(listing.clone());
        }
        match fetch.await {
            Ok(listing) => Ok(self.store(&mut guard, ino, listing)),
            Err(e) => match &guard.cached {
                Some((stale, _)) if stale_will_do(&e) => Ok(stale.clone()),
                _ => Err(e),
            },
        }
    }

    /// The cached listing if it is fresh and no fetch or edit holds it right now; never waits.
    pub fn fresh(&self, ino: Ino) -> Option<Arc<Listing>> {
        let slot = self.slots.lock().unwrap_or_else(|p| p.into_inner()).get(&ino)?.clone();
        let guard = slot.try_lock().ok()?;
        guard.fresh(self.ttl).cloned()
    }

    /// Applies `edit` to the cached listing, if there is one (else the next fetch sees Box).
    /// The listing is copied only while a directory handle still holds the old snapshot.
    pub async fn edit(&self, ino: Ino, edit: impl FnOnce(&mut Listing)) {
        let slot = self.slot(ino);
        let mut guard = slot.lock().await;
        if let Some((listing, _)) = &mut guard.cached {
            let listing = Arc::make_mut(listing);
            edit(listing);
            listing.version = next_version();
            self.usage().used(ino, Some(listing.bytes()));
        }
    }

    /// Caches `listing` as the folder's, unless one is cached already and not forgotten.
    pub async fn seed(&self, ino: Ino, listing: Listing) {
        let slot = self.slot(ino);
        let mut guard = slot.lock().await;
        if guard.cached.is_none() || guard.expired {
            self.store(&mut guard, ino, Arc::new(listing));
        }
    }

    /// Whether folder `ino` has a cached listing (fresh or not).
    pub fn is_cached(&self, ino: Ino) -> bool {
        self.usage().folders.contains_key(&ino)
    }

    /// Bytes the cached listings take (an estimate) and the budget.
    pub fn usage_bytes(&self) -> (usize, usize) {
        (self.usage().bytes, self.budget)
    }

    /// Whether `pages` full pages of listings fit in the budget beside what is cached.
    pub fn has_room_for_pages(&self, pages: usize) -> bool {
        self.usage().bytes + pages * PAGE_ENTRIES * entry_cost(TYPICAL_NAME) <= self.budget
    }

    /// Forgets a folder's listing: the next access lists it again. The old listing stays
    /// (within the budget) for when Box cannot be reached.
    pub async fn forget(&self, ino: Ino) {
        self.slot(ino).lock().await.expired = true;
    }

    pub async fn forget_all(&self) {
        let slots: Vec<_> = self.slots.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for slot in slots {
            slot.lock().await.expired = true;
        }
    }

    /// While the listings take more than the budget, drops the least recently used ones,
    /// except those of folders `keep` names, those in use (being fetched or edited) and those
    /// a directory handle holds. Returns the dropped listings.
    pub fn evict(&self, keep: impl Fn(Ino) -> bool) -> Vec<Arc<Listing>> {
        let mut dropped = Vec::new();
        let candidates: Vec<Ino> = {
            let usage = self.usage();
            if usage.bytes <= self.budget {
                return dropped;
            }
            usage.by_use.values().copied().collect()
        };
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        for ino in candidates {
            if self.usage().bytes <= self.budget {
                break;
            }
            if keep(ino) {
                continue;
            }
            let Some(slot) = slots.get(&ino).cloned() else { continue };
            let Ok(mut guard) = slot.try_lock() else { continue };
            if guard.cached.as_ref().is_some_and(|(l, _)| Arc::strong_count(l) > 1) {
                continue; // a directory handle reads it
            }
            if let Some((listing, _)) = guard.cached.take() {
                dropped.push(listing);
            }
            self.usage().dropped(ino);
            drop(guard);
            if Arc::strong_count(&slot) == 2 {
                slots.remove(&ino); // nobody waits on it (the map and `slot` hold it)
            }
        }
        dropped
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
