//! Folder listing pages (`GET /2.0/folders/{id}/items`) kept as the bytes they were answered
//! with, so that the same request made again while nothing changed is answered from memory
//! instead of rendering up to a thousand items again: the emulator shares its machine with the
//! client it serves, where Box's servers run elsewhere. A page given out from here is the
//! bytes the route would render at that moment. What keeps it so:
//!
//! - **Key** ([`PageKey`]): everything the bytes depend on besides the rows and the clock: the
//!   viewer ([`ViewerKey`]: the user the request acts for, after `As-User`, with their root and
//!   the rights their live collaborations give them, which is all rendering reads of a viewer;
//!   the token's own user adds nothing, and tokens have no scopes), the folder (its item id,
//!   the viewer's `0` resolved) and every query parameter as the route reads them, sorted
//!   (`fields`, `limit`, `offset`, `marker`, `usemarker`, `sort`, `direction`, and any other,
//!   unknown ones too). Rendering reads no header, and the origin in shared-link URLs is the
//!   emulator's for its whole life.
//! - **Rows**: a page is kept under the store's generation ([`Store::generation`]) that the
//!   route read before it read anything else from the store, and is given out only at that
//!   generation; a newer generation drops every page. A change committed while a page renders
//!   raises the generation past the page's, so that page is never given out. (The viewer was
//!   loaded before the generation was read, but all rendering reads of it is in the key: a
//!   page rendered for a viewer as it was is only given to a request whose viewer is the same.)
//! - **Clock**: a rendered page shows a lock or a shared link only while it is live, so it
//!   changes by itself when a lock it shows expires or a link it shows is unshared. A page is
//!   kept with the first such time ([`Extras::changes_at`]) and not given out from then on.
//!   Collaborations expire too, but the viewer is loaded (with its live collaborations) on
//!   every request, and it is in the key. Nothing else rendered reads the clock (the trash is
//!   never purged by age).
//! - **Memory**: the pages kept (bodies, keys and a fixed overhead each) total at most the
//!   budget ([`PageCache::DEFAULT_BUDGET`]); the least recently used go first, and a page
//!   larger than the budget is not kept.
//!
//! The route checks, on every request and before asking for a page here, that the viewer sees
//! the folder and may list it. Everything around the route (authentication, rate limits,
//! injected faults, network conditions, request counters) applies to these answers as to any.
//!
//! [`Store::generation`]: crate::store::Store::generation
//! [`Extras::changes_at`]: crate::store::Extras::changes_at

use crate::store::{Viewer, ViewerKey};
use axum::body::Bytes;
use lru::LruCache;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// What a listing page's bytes depend on besides the rows and the clock (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageKey {
    viewer: ViewerKey,
    folder: i64,
    query: Vec<(String, String)>,
}

impl PageKey {
    /// The page of folder `folder` (an item id) that `viewer` asks for with `query`.
    pub fn new(viewer: &Viewer, folder: i64, query: &HashMap<String, String>) -> PageKey {
        let mut query: Vec<(String, String)> = query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        query.sort_unstable();
        PageKey { viewer: viewer.key(), folder, query }
    }

    /// About how many bytes the key holds on the heap.
    fn heap_size(&self) -> usize {
        let pairs = self.query.iter().map(|(k, v)| k.len() + v.len() + 2 * size_of::<String>());
        self.viewer.heap_size() + pairs.sum::<usize>()
    }
}

/// What each page kept costs besides its body and its key's heap: the key and the page
/// themselves, and the cache's own entry around them (a generous guess).
const ENTRY_OVERHEAD: usize = size_of::<PageKey>() + size_of::<Page>() + 64;

/// A page kept: its body, when the clock alone changes it (unix seconds; `None`: never), and
/// what it costs (see [`ENTRY_OVERHEAD`]).
struct Page {
    body: Bytes,
    changes_at: Option<i64>,
    cost: usize,
}

impl Page {
    fn new(key: &PageKey, body: Bytes, changes_at: Option<i64>) -> Page {
        let cost = body.len() + key.heap_size() + ENTRY_OVERHEAD;
        Page { body, changes_at, cost }
    }

    fn current_at(&self, now: i64) -> bool {
        self.changes_at.is_none_or(|t| now < t)
    }
}

/// The pages of one generation, least recently used first, and what they cost in all.
struct Kept {
    generation: u64,
    pages: LruCache<PageKey, Page>,
    bytes: usize,
}

impl Kept {
    /// Moves on to `generation` when it is newer, dropping every page; false when it is older
    /// than the pages kept (a request that began before the last change).
    fn at(&mut self, generation: u64) -> bool {
        if generation > self.generation {
            self.pages.clear();
            self.bytes = 0;
            self.generation = generation;
        }
        generation == self.generation
    }

    fn remove(&mut self, key: &PageKey) {
        if let Some(page) = self.pages.pop(key) {
            self.bytes -= page.cost;
        }
    }

    fn insert(&mut self, key: PageKey, page: Page) {
        self.bytes += page.cost;
        if let Some((_, old)) = self.pages.push(key, page) {
            self.bytes -= old.cost;
        }
    }

    /// Drops the least recently used pages until the pages kept cost at most `budget` bytes.
    fn shrink_to(&mut self, budget: usize) {
        while self.bytes > budget {
            let Some((_, page)) = self.pages.pop_lru() else { break };
            self.bytes -= page.cost;
        }
    }
}

/// The listing pages kept, for one store, within a budget of bytes.
pub struct PageCache {
    budget: usize,
    kept: Mutex<Kept>,
}

impl PageCache {
    /// What the pages kept cost at most: 128 MiB, about 180 pages of 1,000 items with the
    /// fields boxfs asks a listing for.
    pub const DEFAULT_BUDGET: usize = 128 * 1024 * 1024;

    /// An empty cache whose pages cost at most `budget` bytes.
    pub fn new(budget: usize) -> PageCache {
        let kept = Kept { generation: 0, pages: LruCache::unbounded(), bytes: 0 };
        PageCache { budget, kept: Mutex::new(kept) }
    }

    /// The body kept for `key` when it is of the store's `generation` and the clock (`now`,
    /// unix seconds) has not changed it since.
    pub fn get(&self, key: &PageKey, generation: u64, now: i64) -> Option<Bytes> {
        let mut kept = self.kept();
        if !kept.at(generation) {
            return None;
        }
        match kept.pages.get(key) {
            Some(page) if page.current_at(now) => Some(page.body.clone()),
            Some(_) => {
                kept.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `body`, rendered for `key` from the rows of `generation` (read before the
    /// rendering read them), until the clock changes it at `changes_at` (unix seconds).
    pub fn put(&self, key: PageKey, generation: u64, body: Bytes, changes_at: Option<i64>) {
        let page = Page::new(&key, body, changes_at);
        if page.cost > self.budget {
            return;
        }
        let mut kept = self.kept();
        if kept.at(generation) {
            kept.insert(key, page);
            kept.shrink_to(self.budget);
        }
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{User, UserRole};

    fn viewer(id: &str) -> Viewer {
        Viewer::of_user(User {
            id: id.into(),
            name: id.into(),
            login: format!("{id}@example.com"),
            role: UserRole::User,
            root_id: 0,
            space_amount: 0,
            max_upload_size: 0,
            created_at: String::new(),
        })
    }

    fn key(user: &str, folder: i64, query: &[(&str, &str)]) -> PageKey {
        let query = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        PageKey::new(&viewer(user), folder, &query)
    }

    fn body(len: usize) -> Bytes {
        Bytes::from(vec![b'x'; len])
    }

    #[test]
    fn a_page_is_given_out_at_its_generation_only() {
        let cache = PageCache::new(1024);
        let k = key("1", 5, &[("limit", "10")]);
        cache.put(k.clone(), 3, body(10), None);
        assert_eq!(cache.get(&k, 3, 0), Some(body(10)));
        assert_eq!(cache.get(&k, 2, 0), None, "a request from before the last change");
        assert_eq!(cache.get(&k, 4, 0), None, "a newer generation");
        assert_eq!(cache.get(&k, 3, 0), None, "a newer generation dropped every page");
        cache.put(k.clone(), 3, body(10), None);
        assert_eq!(cache.get(&k, 4, 0), None, "a page rendered before a change is not kept");
    }

    #[test]
    fn the_key_is_the_viewer_the_folder_and_the_whole_query() {
        let cache = PageCache::new(1024);
        let k = key("1", 5, &[("limit", "10"), ("fields", "name")]);
        cache.put(k, 0, body(1), None);
        assert!(cache.get(&key("1", 5, &[("fields", "name"), ("limit", "10")]), 0, 0).is_some(), "any order");
        assert!(cache.get(&key("2", 5, &[("fields", "name"), ("limit", "10")]), 0, 0).is_none());
        assert!(cache.get(&key("1", 6, &[("fields", "name"), ("limit", "10")]), 0, 0).is_none());
        assert!(cache.get(&key("1", 5, &[("fields", "name"), ("limit", "11")]), 0, 0).is_none());
        assert!(cache.get(&key("1", 5, &[("fields", "name,size"), ("limit", "10")]), 0, 0).is_none());
        assert!(cache.get(&key("1", 5, &[("fields", "name"), ("limit", "10"), ("x", "")]), 0, 0).is_none());
        assert!(cache.get(&key("1", 5, &[("limit", "10")]), 0, 0).is_none());
    }

    #[test]
    fn a_page_the_clock_changes_is_not_given_out_from_then_on() {
        let cache = PageCache::new(1024);
        let k = key("1", 5, &[]);
        cache.put(k.clone(), 0, body(1), Some(100));
        assert!(cache.get(&k, 0, 99).is_some());
        assert!(cache.get(&k, 0, 100).is_none());
        assert!(cache.get(&k, 0, 99).is_none(), "dropped");
    }

    fn cost(key: &PageKey, len: usize) -> usize {
        Page::new(key, body(len), None).cost
    }

    #[test]
    fn a_page_costs_its_body_its_key_and_an_overhead() {
        let k = key("1", 1, &[("fields", "name")]);
        assert_eq!(cost(&k, 1000) - cost(&k, 0), 1000);
        assert!(cost(&k, 0) >= ENTRY_OVERHEAD + "1".len() + "fields".len() + "name".len());
    }

    #[test]
    fn the_least_recently_used_pages_go_past_the_budget() {
        let (a, b, c) = (key("1", 1, &[]), key("1", 2, &[]), key("1", 3, &[]));
        let each = cost(&a, 0);
        let cache = PageCache::new(3 * each + 30);
        cache.put(a.clone(), 0, body(10), None);
        cache.put(b.clone(), 0, body(10), None);
        assert!(cache.get(&a, 0, 0).is_some(), "a is now the most recently used");
        cache.put(c.clone(), 0, body(15), None);
        assert!(cache.get(&b, 0, 0).is_none(), "b went first");
        assert!(cache.get(&a, 0, 0).is_some() && cache.get(&c, 0, 0).is_some());
        assert_eq!(cache.kept().bytes, 2 * each + 25);
        cache.put(a.clone(), 0, body(5), None);
        assert_eq!(cache.kept().bytes, 2 * each + 20, "a page put again replaces the old one");
        cache.put(key("1", 4, &[]), 0, body(3 * each + 31), None);
        assert_eq!(cache.kept().bytes, 2 * each + 20, "a page over the budget is not kept");
    }
}
