//! The inode table: one stable inode number per Box item (files, folders and web links are
//! separate id spaces) for the life of the mount, with what the filesystem knows of each item
//! (including the POSIX attributes stored on it and what the user may do with it in Box) and
//! the kernel's lookup count.

use super::stored::Stored;
use boxfs_api::model::{Item, ItemCommon, Permissions};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Instant, SystemTime};

pub type Ino = u64;
pub const ROOT_INO: Ino = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Dir,
    File,
    /// A Box web link, shown as a read-only `NAME.url` file.
    Link,
}

/// What the user may do with an item, from its Box `permissions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rights {
    /// Files: download the content (`can_download`); folders and web links: always.
    pub read: bool,
    /// Files: upload a new version; folders: add items (`can_upload`).
    pub write: bool,
    pub rename: bool,
    pub delete: bool,
}

impl Rights {
    pub const ALL: Rights = Rights { read: true, write: true, rename: true, delete: true };

    fn of(item: &Item, p: &Permissions) -> Rights {
        let (read, write) = match item {
            Item::File(_) => (p.can_download, p.can_upload),
            Item::Folder(_) => (true, p.can_upload),
            Item::WebLink(_) => (true, false),
        };
        Rights { read, write, rename: p.can_rename, delete: p.can_delete }
    }
}

/// What a `stat` shows, from the item's Box metadata.
#[derive(Clone, Debug)]
pub struct Meta {
    pub size: u64,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub crtime: SystemTime,
    pub etag: Option<String>,
    /// Box's per-item modification counter: events not newer than this change nothing.
    pub sequence_id: Option<u64>,
    pub sha1: Option<String>,
    pub version_id: Option<String>,
    /// `None` when the answer it came from did not say (event sources): then it is asked for
    /// before it is relied on.
    pub rights: Option<Rights>,
    pub url: Option<String>,
    /// The item's `global.properties` instance (POSIX attributes stored by boxfs), when the
    /// item's JSON carried it (`None`: not known from this source; what was known stays).
    pub stored: Option<Arc<Stored>>,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub ino: Ino,
    pub kind: NodeKind,
    pub box_id: String,
    pub parent: Ino,
    /// The name shown in the mount (web links get `.url`).
    pub name: String,
    pub meta: Meta,
    /// When `meta` was last confirmed by Box (`None`: to be revalidated at next use).
    pub fetched: Option<Instant>,
    /// An mtime set through the mount on the account's root folder, which takes no metadata in
    /// Box: shown instead of Box's for the life of the mount, kept across refreshes.
    pub mtime_set: Option<SystemTime>,
    /// A folder whose listing Box refused (an uploader's): names in it are not looked up.
    pub unlistable: bool,
}

fn parse_time(s: Option<&str>) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc3339(s?).ok()?;
    let secs = t.timestamp();
    let nanos = t.timestamp_subsec_nanos();
    if secs >= 0 {
        Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos))
    } else {
        None
    }
}

/// The `.url` file content of a web link.
pub fn link_body(url: &str) -> String {
    format!("[InternetShortcut]\nURL={url}\n")
}

impl Meta {
    pub fn from_item(item: &Item) -> Meta {
        let c: &ItemCommon = item.common();
        let mtime = parse_time(c.content_modified_at.as_deref())
            .or_else(|| parse_time(c.modified_at.as_deref()))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let ctime = parse_time(c.modified_at.as_deref()).unwrap_or(mtime);
        let crtime = parse_time(c.content_created_at.as_deref())
            .or_else(|| parse_time(c.created_at.as_deref()))
            .unwrap_or(mtime);
        let (size, sha1, version_id, url) = match item {
            Item::File(f) => (c.size, f.sha1.clone(), f.file_version.as_ref().map(|v| v.id.clone()), None),
            Item::Folder(_) => (0, None, None, None),
            Item::WebLink(w) => {
                let url = w.url.clone().unwrap_or_default();
                (link_body(&url).len() as u64, None, None, Some(url))
            }
        };
        let rights = c.permissions.as_ref().map(|p| Rights::of(item, p));
        let sequence_id = c.sequence_id.as_deref().and_then(|s| s.parse().ok());
        let stored = c.properties().map(|p| match p {
            None => NOTHING_STORED.clone(),
            Some(props) => Arc::new(Stored::from_properties(Some(props))),
        });
        Meta { size, mtime, ctime, crtime, etag: c.etag.clone(), sequence_id, sha1, version_id, rights, url, stored }
    }

    /// Keeps what `older` knew that this source did not say (the stored attributes, what the
    /// user may do).
    fn keeping_known(mut self, older: Option<&Meta>) -> Meta {
        if self.stored.is_none() {
            self.stored = older.and_then(|m| m.stored.clone());
        }
        if self.rights.is_none() {
            self.rights = older.and_then(|m| m.rights);
        }
        self
    }

    /// What Box holds in the item's `global.properties` instance, as far as the mount knows.
    pub fn stored(&self) -> &Stored {
        self.stored.as_deref().unwrap_or(&NOTHING_STORED)
    }
}

/// "No instance", shared by the many items that have none.
static NOTHING_STORED: LazyLock<Arc<Stored>> = LazyLock::new(Arc::default);

impl Meta {
    /// Metadata of a file created here and not yet uploaded.
    pub fn local(now: SystemTime) -> Meta {
        Meta {
            size: 0,
            mtime: now,
            ctime: now,
            crtime: now,
            etag: None,
            sequence_id: None,
            sha1: None,
            version_id: None,
            rights: Some(Rights::ALL),
            url: None,
            stored: Some(NOTHING_STORED.clone()),
        }
    }
}

pub fn kind_of(item: &Item) -> NodeKind {
    match item {
        Item::File(_) => NodeKind::File,
        Item::Folder(_) => NodeKind::Dir,
        Item::WebLink(_) => NodeKind::Link,
    }
}

/// The name an item has in the mount.
pub fn display_name(item: &Item) -> String {
    match item {
        Item::WebLink(w) => format!("{}.url", w.common.name),
        other => other.name().to_string(),
    }
}

struct Table {
    nodes: HashMap<Ino, Node>,
    by_id: HashMap<(NodeKind, String), Ino>,
    lookups: HashMap<Ino, u64>,
    /// Metadata events expected back from our own metadata calls, per inode.
    echoes: HashMap<Ino, u32>,
    next: Ino,
}

pub struct InodeTable {
    inner: Mutex<Table>,
}

impl InodeTable {
    pub fn new(root_id: &str, root_meta: Meta) -> InodeTable {
        let root = Node {
            ino: ROOT_INO,
            kind: NodeKind::Dir,
            box_id: root_id.to_string(),
            parent: ROOT_INO,
            name: String::new(),
            meta: root_meta,
            fetched: Some(Instant::now()),
            mtime_set: None,
            unlistable: false,
        };
        let mut nodes = HashMap::new();
        nodes.insert(ROOT_INO, root);
        let mut by_id = HashMap::new();
        by_id.insert((NodeKind::Dir, root_id.to_string()), ROOT_INO);
        InodeTable {
            inner: Mutex::new(Table {
                nodes,
                by_id,
                lookups: HashMap::new(),
                echoes: HashMap::new(),
                next: ROOT_INO + 1,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, ino: Ino) -> Option<Node> {
        self.lock().nodes.get(&ino).cloned()
    }

    /// Records an item seen under `parent` and returns its (stable) inode.
    pub fn upsert(&self, parent: Ino, item: &Item) -> Node {
        let kind = kind_of(item);
        let key = (kind, item.id().to_string());
        let mut t = self.lock();
        let ino = match t.by_id.get(&key) {
            Some(ino) => *ino,
            None => {
                let ino = t.next;
                t.next += 1;
                t.by_id.insert(key.clone(), ino);
                ino
            }
        };
        let old = t.nodes.get(&ino);
        let node = Node {
            ino,
            kind,
            box_id: key.1,
            parent: if ino == ROOT_INO { ROOT_INO } else { parent },
            name: if ino == ROOT_INO { String::new() } else { display_name(item) },
            meta: Meta::from_item(item).keeping_known(old.map(|n| &n.meta)),
            fetched: Some(Instant::now()),
            mtime_set: old.and_then(|n| n.mtime_set),
            unlistable: old.is_some_and(|n| n.unlistable),
        };
        t.nodes.insert(ino, node.clone());
        node
    }

    /// An inode for a file that exists only locally so far (keyed `local:<key>` until its
    /// upload gives it a Box id).
    pub fn insert_local(&self, parent: Ino, name: &str, key: &str, meta: Meta) -> Node {
        let mut t = self.lock();
        let ino = t.next;
        t.next += 1;
        let box_id = format!("local:{key}");
        t.by_id.insert((NodeKind::File, box_id.clone()), ino);
        let node = Node {
            ino,
            kind: NodeKind::File,
            box_id,
            parent,
            name: name.into(),
            meta,
            fetched: None,
            mtime_set: None,
            unlistable: false,
        };
        t.nodes.insert(ino, node.clone());
        node
    }

    /// The inode of Box file or folder `box_id`, made (shown nowhere yet, to be revalidated)
    /// when the mount has not seen it: a pending change of it waits for its folder's listing.
    pub fn reserve(&self, kind: NodeKind, box_id: &str, name: &str) -> Ino {
        let mut t = self.lock();
        let key = (kind, box_id.to_string());
        if let Some(ino) = t.by_id.get(&key) {
            return *ino;
        }
        let ino = t.next;
        t.next += 1;
        t.by_id.insert(key, ino);
        let meta = Meta { stored: None, ..Meta::local(SystemTime::UNIX_EPOCH) };
        let node = Node {
            ino,
            kind,
            box_id: box_id.into(),
            parent: ROOT_INO,
            name: name.into(),
            meta,
            fetched: None,
            mtime_set: None,
            unlistable: false,
        };
        t.nodes.insert(ino, node);
        ino
    }

    /// Gives a locally created file its Box id (the inode number stays).
    pub fn rebind_file(&self, ino: Ino, box_id: &str) {
        let mut t = self.lock();
        let Some(old) = t.nodes.get(&ino).map(|n| n.box_id.clone()) else { return };
        if old == box_id {
            return;
        }
        t.by_id.remove(&(NodeKind::File, old));
        t.by_id.insert((NodeKind::File, box_id.to_string()), ino);
        if let Some(n) = t.nodes.get_mut(&ino) {
            n.box_id = box_id.to_string();
        }
    }

    pub fn set_location(&self, ino: Ino, parent: Ino, name: &str) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.parent = parent;
            n.name = name.to_string();
        }
    }

    /// Shows `mtime` as the inode's time from now on (see `Node::mtime_set`).
    pub fn set_mtime(&self, ino: Ino, mtime: SystemTime) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.mtime_set = Some(mtime);
        }
    }

    pub fn mark_stale(&self, ino: Ino) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.fetched = None;
        }
    }

    /// Replaces what is known of an inode's metadata (after a fresh GET, or an upload).
    pub fn refresh(&self, ino: Ino, meta: Meta) -> Option<Node> {
        let mut t = self.lock();
        let node = t.nodes.get_mut(&ino)?;
        node.meta = meta.keeping_known(Some(&node.meta));
        node.fetched = Some(Instant::now());
        Some(node.clone())
    }

    /// Records what Box holds in the item's metadata instance now (after our own call).
    pub fn set_stored(&self, ino: Ino, stored: Stored) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.meta.stored = Some(Arc::new(stored));
        }
    }

    /// Marks metadata as just confirmed (a 304).
    pub fn touch(&self, ino: Ino) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.fetched = Some(Instant::now());
        }
    }

    /// The inode of a Box item, if the mount has seen it.
    pub fn find(&self, kind: NodeKind, box_id: &str) -> Option<Node> {
        let t = self.lock();
        t.by_id.get(&(kind, box_id.to_string())).and_then(|ino| t.nodes.get(ino)).cloned()
    }

    /// Records a newer sequence id without other changes (e.g. for a trashed item), so that
    /// older events arriving late cannot bring stale state back.
    pub fn set_sequence(&self, ino: Ino, sequence_id: u64) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.meta.sequence_id = Some(sequence_id);
        }
    }

    /// Remembers that Box refused to list folder `ino`.
    pub fn set_unlistable(&self, ino: Ino) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.unlistable = true;
        }
    }

    /// Forgets what the user may do with every item (a collaboration changed): each is asked
    /// for again, in full, at next use. Returns every inode.
    pub fn forget_rights(&self) -> Vec<Ino> {
        let mut t = self.lock();
        for n in t.nodes.values_mut().filter(|n| !n.box_id.starts_with("local:")) {
            n.fetched = None;
            n.meta.rights = None;
            n.unlistable = false;
        }
        t.nodes.keys().copied().collect()
    }

    /// Forces revalidation of every node's attributes at next use; returns the directories.
    pub fn mark_all_stale(&self) -> Vec<Ino> {
        let mut t = self.lock();
        t.nodes.values_mut().for_each(|n| n.fetched = None);
        t.nodes.values().filter(|n| n.kind == NodeKind::Dir).map(|n| n.ino).collect()
    }

    /// A metadata call of ours on the item is about to go: its event is an echo.
    pub fn expect_echo(&self, ino: Ino) {
        *self.lock().echoes.entry(ino).or_insert(0) += 1;
    }

    /// The call refused for sure: no event will come of it.
    pub fn cancel_echo(&self, ino: Ino) {
        self.take_echo(ino);
    }

    /// Whether a metadata event about the item is the echo of a call of ours (counted once).
    pub fn take_echo(&self, ino: Ino) -> bool {
        let mut t = self.lock();
        let Some(n) = t.echoes.get_mut(&ino) else { return false };
        *n -= 1;
        if *n == 0 {
            t.echoes.remove(&ino);
        }
        true
    }

    pub fn add_lookup(&self, ino: Ino) {
        *self.lock().lookups.entry(ino).or_insert(0) += 1;
    }

    /// The kernel forgot `n` lookups. The id → inode mapping is kept (inodes stay stable
    /// for the mount's life); only the count drops.
    pub fn forget(&self, ino: Ino, n: u64) {
        let mut t = self.lock();
        if let Some(count) = t.lookups.get_mut(&ino) {
            *count = count.saturating_sub(n);
            if *count == 0 {
                t.lookups.remove(&ino);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str, name: &str) -> Item {
        serde_json::from_value(serde_json::json!({"type": "file", "id": id, "name": name, "size": 3})).unwrap()
    }

    #[test]
    fn inodes_are_stable_per_id_and_kind() {
        let root = Meta::from_item(&serde_json::from_value(serde_json::json!({"type": "folder", "id": "0"})).unwrap());
        let t = InodeTable::new("0", root);
        let a = t.upsert(ROOT_INO, &file("7", "a"));
        let again = t.upsert(ROOT_INO, &file("7", "renamed"));
        assert_eq!(a.ino, again.ino);
        assert_eq!(t.get(a.ino).unwrap().name, "renamed");
        let folder: Item =
            serde_json::from_value(serde_json::json!({"type": "folder", "id": "7", "name": "d"})).unwrap();
        assert_ne!(t.upsert(ROOT_INO, &folder).ino, a.ino, "file 7 and folder 7 are different items");
        let link: Item =
            serde_json::from_value(serde_json::json!({"type": "web_link", "id": "9", "name": "L", "url": "https://x"}))
                .unwrap();
        let l = t.upsert(ROOT_INO, &link);
        assert_eq!(l.name, "L.url");
        assert_eq!(l.meta.size, link_body("https://x").len() as u64);
    }
}
