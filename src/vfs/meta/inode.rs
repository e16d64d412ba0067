//! The inode table: one stable inode number per Box item (files, folders and web links are
//! separate id spaces) while the item is in the table, with what the filesystem knows of each item
//! (including the POSIX attributes stored on it and what the user may do with it in Box) and
//! the kernel's lookup count.
//!
//! Items are kept compact (`compact.rs`) and handed out as [`Node`]s. An item the kernel no
//! longer knows and nothing else holds is dropped ([`InodeTable::drop_unused`]); the numbers
//! of dropped items are never given to another (see [`InodeTable`]).

use super::compact::{Digest, Secs, Token, TokenKey};
use super::slots::{slot_of, Slots};
use super::stored::Stored;
use boxfs_api::model::Lock;
use boxfs_api::model::{Item, ItemCommon, Permissions};
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

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
    /// The file's lock in Box, when the item's JSON carried it (`None`: not known from this
    /// source; what was known stays; `Some(None)`: unlocked).
    pub lock: Option<Option<Arc<Lock>>>,
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
        let lock = match item {
            Item::File(f) => f.lock.as_ref().map(|l| l.clone().map(Arc::new)),
            _ => Some(None),
        };
        let rights = c.permissions.as_ref().map(|p| Rights::of(item, p));
        let sequence_id = c.sequence_id.as_deref().and_then(|s| s.parse().ok());
        let stored = c.properties().map(|p| match p {
            None => NOTHING_STORED.clone(),
            Some(props) => Arc::new(Stored::from_properties(Some(props))),
        });
        let etag = c.etag.clone();
        Meta { size, mtime, ctime, crtime, etag, sequence_id, sha1, version_id, rights, url, stored, lock }
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
        if self.lock.is_none() {
            self.lock = older.and_then(|m| m.lock.clone());
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
            lock: Some(None),
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

/// One item as the table keeps it: [`Node`] in compact form (see `compact.rs`).
struct Slim {
    kind: NodeKind,
    unlistable: bool,
    /// `Option<Rights>`, packed ([`pack_rights`]).
    rights: u8,
    /// The kernel's lookup count.
    lookups: u32,
    /// Metadata events expected back from our own metadata calls.
    echoes: u32,
    box_id: Token,
    parent: Ino,
    name: Arc<str>,
    size: u64,
    /// mtime, ctime, crtime in whole seconds (all zero when `rare` holds them exactly).
    times: [Secs; 3],
    etag: Option<Token>,
    /// Box's sequence id; [`NO_SEQUENCE`] when not known.
    sequence_id: u64,
    sha1: Option<Digest>,
    version_id: Option<Token>,
    /// Nanoseconds from the table's epoch to when `meta` was last confirmed; 0: never.
    fetched: u64,
    stored: Option<Arc<Stored>>,
    /// What few items have: a web link's URL, an mtime set on the root.
    rare: Option<Box<Rare>>,
}

const NO_SEQUENCE: u64 = u64::MAX;

#[derive(Default)]
struct Rare {
    url: Option<String>,
    mtime_set: Option<SystemTime>,
    /// mtime, ctime, crtime, when one of them is not whole seconds.
    exact_times: Option<[SystemTime; 3]>,
    /// A file's lock in Box.
    lock: Option<Arc<Lock>>,
    /// When the mount last stored the item's attributes itself ([`InodeTable::set_stored`]):
    /// metadata Box sent for a request made before then does not replace them.
    stored_at: Option<Stamp>,
}

/// `Option<Rights>` in one byte: bit 4 says known, bits 0-3 are read, write, rename, delete.
fn pack_rights(r: Option<Rights>) -> u8 {
    r.map_or(0, |r| 16 | u8::from(r.read) | u8::from(r.write) << 1 | u8::from(r.rename) << 2 | u8::from(r.delete) << 3)
}

fn unpack_rights(b: u8) -> Option<Rights> {
    (b & 16 != 0).then_some(Rights { read: b & 1 != 0, write: b & 2 != 0, rename: b & 4 != 0, delete: b & 8 != 0 })
}

/// Bytes one item costs in the table (an estimate for budgets): its slot, its id index entry
/// and its name (an `Arc<str>`: two counters and the bytes, as the allocator rounds them).
pub fn item_bytes(name: &str) -> usize {
    Slots::<Slim>::slot_bytes() + 2 * std::mem::size_of::<u32>() + (16 + name.len()).next_multiple_of(16)
}

/// A point in the table's time: taken before a request to Box, it orders what the request
/// answers against what the mount did meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

impl Slim {
    fn new(kind: NodeKind, box_id: &str, parent: Ino, name: Arc<str>, meta: Meta) -> Slim {
        let mut s = Slim {
            kind,
            unlistable: false,
            rights: 0,
            lookups: 0,
            echoes: 0,
            box_id: Token::new(box_id),
            parent,
            name,
            size: 0,
            times: [Secs::exact(SystemTime::UNIX_EPOCH).expect("the epoch is whole seconds"); 3],
            etag: None,
            sequence_id: NO_SEQUENCE,
            sha1: None,
            version_id: None,
            fetched: 0,
            stored: None,
            rare: None,
        };
        s.set_meta(meta);
        s
    }

    fn set_meta(&mut self, m: Meta) {
        self.size = m.size;
        let exact = [m.mtime, m.ctime, m.crtime];
        let secs = exact.map(Secs::exact);
        let whole = secs.iter().all(Option::is_some);
        self.times = if whole {
            secs.map(|s| s.expect("checked"))
        } else {
            [Secs::exact(SystemTime::UNIX_EPOCH).expect("the epoch"); 3]
        };
        self.etag = m.etag.as_deref().map(Token::new);
        self.sequence_id = m.sequence_id.unwrap_or(NO_SEQUENCE);
        self.sha1 = m.sha1.as_deref().map(Digest::new);
        self.version_id = m.version_id.as_deref().map(Token::new);
        self.rights = pack_rights(m.rights);
        self.stored = m.stored;
        self.rare_mut(|r| {
            r.url = m.url;
            r.exact_times = (!whole).then_some(exact);
            r.lock = m.lock.flatten();
        });
    }

    /// Changes the rare fields, keeping `rare` empty while they are.
    fn rare_mut(&mut self, f: impl FnOnce(&mut Rare)) {
        let mut rare = self.rare.take().unwrap_or_default();
        f(&mut rare);
        if rare.url.is_some()
            || rare.mtime_set.is_some()
            || rare.exact_times.is_some()
            || rare.lock.is_some()
            || rare.stored_at.is_some()
        {
            self.rare = Some(rare);
        }
    }

    fn meta(&self) -> Meta {
        let [mtime, ctime, crtime] =
            self.rare.as_ref().and_then(|r| r.exact_times).unwrap_or(self.times.map(Secs::time));
        Meta {
            size: self.size,
            mtime,
            ctime,
            crtime,
            etag: self.etag.as_ref().map(Token::to_string),
            sequence_id: (self.sequence_id != NO_SEQUENCE).then_some(self.sequence_id),
            sha1: self.sha1.as_ref().map(Digest::to_string),
            version_id: self.version_id.as_ref().map(Token::to_string),
            rights: unpack_rights(self.rights),
            url: self.rare.as_ref().and_then(|r| r.url.clone()),
            stored: self.stored.clone(),
            lock: Some(self.rare.as_ref().and_then(|r| r.lock.clone())),
        }
    }

    fn node(&self, ino: Ino, epoch: Instant) -> Node {
        Node {
            ino,
            kind: self.kind,
            box_id: self.box_id.to_string(),
            parent: self.parent,
            name: self.name.to_string(),
            meta: self.meta(),
            fetched: (self.fetched != 0).then(|| epoch + Duration::from_nanos(self.fetched)),
            mtime_set: self.rare.as_ref().and_then(|r| r.mtime_set),
            unlistable: self.unlistable,
        }
    }
}

struct Table {
    slots: Slots<Slim>,
    /// Slots by `(kind, box id)`.
    by_id: HashTable<u32>,
    hasher: DefaultHashBuilder,
    epoch: Instant,
}

impl Table {
    fn slim(&self, ino: Ino) -> Option<&Slim> {
        self.slots.get(ino)
    }

    fn slim_mut(&mut self, ino: Ino) -> Option<&mut Slim> {
        self.slots.get_mut(ino)
    }

    fn indexed(&self, slot: u32) -> &Slim {
        self.slots.at(slot).expect("indexed slots are live").1
    }

    fn node(&self, ino: Ino) -> Option<Node> {
        self.slim(ino).map(|s| s.node(ino, self.epoch))
    }

    fn now(&self) -> u64 {
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }

    /// Whether metadata from a request made at `as_of` may replace the item's stored
    /// attributes: not when the mount stored them itself after that request left.
    fn stored_is_older_than(&self, ino: Ino, as_of: Stamp) -> bool {
        let stored_at = self.slim(ino).and_then(|s| s.rare.as_ref()?.stored_at);
        stored_at.is_none_or(|at| at <= as_of)
    }

    fn id_hash(&self, kind: NodeKind, key: TokenKey<'_>) -> u64 {
        self.hasher.hash_one((kind, key))
    }

    fn find_id(&self, kind: NodeKind, box_id: &str) -> Option<Ino> {
        let hash = self.id_hash(kind, Token::key_of(box_id));
        let slots = &self.slots;
        let slot =
            *self.by_id.find(hash, |&i| slots.at(i).is_some_and(|(_, s)| s.kind == kind && s.box_id.is(box_id)))?;
        slots.at(slot).map(|(ino, _)| ino)
    }

    fn index(&mut self, slot: u32) {
        let s = self.indexed(slot);
        let hash = self.id_hash(s.kind, s.box_id.key());
        self.by_id.insert_unique(hash, slot, rehash(&self.slots, &self.hasher));
    }

    fn unindex(&mut self, slot: u32) {
        let s = self.indexed(slot);
        let hash = self.id_hash(s.kind, s.box_id.key());
        if let Ok(found) = self.by_id.find_entry(hash, |&i| i == slot) {
            found.remove();
        }
    }

    /// Stores `slim` in a free slot (a new generation of it) or a new one; returns its inode.
    fn add(&mut self, slim: Slim) -> Ino {
        let ino = self.slots.insert(slim);
        self.index(slot_of(ino));
        ino
    }

    fn remove(&mut self, ino: Ino) -> bool {
        if self.slim(ino).is_none() || ino == ROOT_INO {
            return false;
        }
        self.unindex(slot_of(ino));
        self.slots.remove(ino);
        true
    }

    fn live(&self) -> impl Iterator<Item = (Ino, &Slim)> {
        self.slots.iter()
    }

    fn live_mut(&mut self) -> impl Iterator<Item = (Ino, &mut Slim)> {
        self.slots.iter_mut()
    }
}

/// The hash of the indexed slot's `(kind, box id)`, as the id index needs it when it grows or
/// shrinks.
fn rehash<'a>(slots: &'a Slots<Slim>, hasher: &'a DefaultHashBuilder) -> impl Fn(&u32) -> u64 + 'a {
    move |&i| {
        let s = slots.at(i).expect("indexed slots are live").1;
        hasher.hash_one((s.kind, s.box_id.key()))
    }
}

/// The inode table. An inode number is `generation << 32 | slot`: a dropped item's slot is
/// reused with the next generation, so its number is never another item's.
pub struct InodeTable {
    inner: Mutex<Table>,
}

impl InodeTable {
    pub fn new(root_id: &str, root_meta: Meta) -> InodeTable {
        let mut t = Table {
            slots: Slots::default(),
            by_id: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            epoch: Instant::now(),
        };
        let mut root = Slim::new(NodeKind::Dir, root_id, ROOT_INO, Arc::from(""), root_meta);
        root.fetched = t.now();
        let ino = t.add(root);
        debug_assert_eq!(ino, ROOT_INO);
        InodeTable { inner: Mutex::new(t) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, ino: Ino) -> Option<Node> {
        self.lock().node(ino)
    }

    /// Now, for [`InodeTable::upsert_entry_as_of`] and [`InodeTable::refresh_as_of`].
    pub fn stamp(&self) -> Stamp {
        Stamp(self.lock().now())
    }

    /// Records an item seen under `parent` and returns its (stable) inode and its shared name.
    pub fn upsert_entry(&self, parent: Ino, item: &Item) -> (Ino, NodeKind, Arc<str>) {
        self.upsert_entry_as_of(parent, item, Stamp(u64::MAX))
    }

    /// [`InodeTable::upsert_entry`] of an item Box described in answer to a request made at
    /// `as_of`: attributes the mount stored itself since are kept.
    pub fn upsert_entry_as_of(&self, parent: Ino, item: &Item, as_of: Stamp) -> (Ino, NodeKind, Arc<str>) {
        let kind = kind_of(item);
        let mut meta = Meta::from_item(item);
        let mut t = self.lock();
        let now = t.now();
        let ino = match t.find_id(kind, item.id()) {
            Some(ino) => {
                if !t.stored_is_older_than(ino, as_of) {
                    meta.stored = None;
                }
                let s = t.slim_mut(ino).expect("indexed items are live");
                let meta = meta.keeping_known(Some(&s.meta()));
                s.set_meta(meta);
                if ino != ROOT_INO {
                    s.parent = parent;
                    let name = display_name(item);
                    if *s.name != *name {
                        s.name = Arc::from(name);
                    }
                }
                s.fetched = now;
                ino
            }
            None => {
                let mut slim = Slim::new(kind, item.id(), parent, Arc::from(display_name(item)), meta);
                slim.fetched = now;
                t.add(slim)
            }
        };
        let name = t.slim(ino).expect("just stored").name.clone();
        (ino, kind, name)
    }

    /// Records an item seen under `parent` and returns its (stable) inode.
    pub fn upsert(&self, parent: Ino, item: &Item) -> Node {
        let (ino, ..) = self.upsert_entry(parent, item);
        self.get(ino).expect("just stored")
    }

    /// An inode for a file that exists only locally so far (keyed `local:<key>` until its
    /// upload gives it a Box id).
    pub fn insert_local(&self, parent: Ino, name: &str, key: &str, meta: Meta) -> Node {
        let mut t = self.lock();
        let ino = t.add(Slim::new(NodeKind::File, &format!("local:{key}"), parent, Arc::from(name), meta));
        t.node(ino).expect("just stored")
    }

    /// The inode of Box file or folder `box_id`, made (shown nowhere yet, to be revalidated)
    /// when the mount has not seen it: a pending change of it waits for its folder's listing.
    pub fn reserve(&self, kind: NodeKind, box_id: &str, name: &str) -> Ino {
        let mut t = self.lock();
        if let Some(ino) = t.find_id(kind, box_id) {
            return ino;
        }
        let meta = Meta { stored: None, ..Meta::local(SystemTime::UNIX_EPOCH) };
        t.add(Slim::new(kind, box_id, ROOT_INO, Arc::from(name), meta))
    }

    /// Gives a locally created file its Box id (the inode number stays).
    pub fn rebind_file(&self, ino: Ino, box_id: &str) {
        let mut t = self.lock();
        let Some(s) = t.slim(ino) else { return };
        if s.box_id.is(box_id) {
            return;
        }
        let slot = slot_of(ino);
        t.unindex(slot);
        t.slim_mut(ino).expect("checked above").box_id = Token::new(box_id);
        t.index(slot);
    }

    pub fn set_location(&self, ino: Ino, parent: Ino, name: &str) {
        if let Some(s) = self.lock().slim_mut(ino) {
            s.parent = parent;
            if *s.name != *name {
                s.name = Arc::from(name);
            }
        }
    }

    /// Shows `mtime` as the inode's time from now on (see `Node::mtime_set`).
    pub fn set_mtime(&self, ino: Ino, mtime: SystemTime) {
        if let Some(s) = self.lock().slim_mut(ino) {
            s.rare_mut(|r| r.mtime_set = Some(mtime));
        }
    }

    pub fn mark_stale(&self, ino: Ino) {
        if let Some(s) = self.lock().slim_mut(ino) {
            s.fetched = 0;
        }
    }

    /// Replaces what is known of an inode's metadata (after a fresh GET, or an upload).
    pub fn refresh(&self, ino: Ino, meta: Meta) -> Option<Node> {
        self.refresh_as_of(ino, meta, Stamp(u64::MAX))
    }

    /// [`InodeTable::refresh`] with what Box answered to a request made at `as_of`: attributes
    /// the mount stored itself since are kept.
    pub fn refresh_as_of(&self, ino: Ino, mut meta: Meta, as_of: Stamp) -> Option<Node> {
        let mut t = self.lock();
        let now = t.now();
        if !t.stored_is_older_than(ino, as_of) {
            meta.stored = None;
        }
        let s = t.slim_mut(ino)?;
        let meta = meta.keeping_known(Some(&s.meta()));
        s.set_meta(meta);
        s.fetched = now;
        t.node(ino)
    }

    /// Records the item's etag after a change of ours that left the rest as it was (its shared
    /// link).
    pub fn set_etag(&self, ino: Ino, etag: Option<&str>) {
        if let Some(s) = self.lock().slim_mut(ino) {
            s.etag = etag.map(Token::new);
        }
    }

    /// Records the file's lock in Box as just read.
    pub fn set_lock(&self, ino: Ino, lock: Option<Arc<Lock>>) {
        if let Some(s) = self.lock().slim_mut(ino) {
            s.rare_mut(|r| r.lock = lock);
        }
    }

    /// Records what Box holds in the item's metadata instance now (after our own call).
    pub fn set_stored(&self, ino: Ino, stored: Stored) {
        let mut t = self.lock();
        let now = Stamp(t.now());
        if let Some(s) = t.slim_mut(ino) {
            s.stored = Some(Arc::new(stored));
            s.rare_mut(|r| r.stored_at = Some(now));
        }
    }

    /// Marks metadata as just confirmed (a 304).
    pub fn touch(&self, ino: Ino) {
        let mut t = self.lock();
        let now = t.now();
        if let Some(s) = t.slim_mut(ino) {
            s.fetched = now;
        }
    }

    /// The inode of a Box item, if the mount has seen it.
    pub fn find(&self, kind: NodeKind, box_id: &str) -> Option<Node> {
        let t = self.lock();
        t.find_id(kind, box_id).and_then(|ino| t.node(ino))
    }

    /// Records a newer sequence id without other changes (e.g. for a trashed item), so that
    /// older events arriving late cannot bring stale state back.
    pub fn set_sequence(&self, ino: Ino, sequence_id: u64) {
        if let Some(s) = self.lock().slim_mut(ino) {
            s.sequence_id = sequence_id;
        }
    }

    /// Remembers that Box refused to list folder `ino`.
    pub fn set_unlistable(&self, ino: Ino) {
        if let Some(s) = self.lock().slim_mut(ino) {
            s.unlistable = true;
        }
    }

    /// Forgets what the user may do with every item (a collaboration changed): each is asked
    /// for again, in full, at next use. Returns every inode.
    pub fn forget_rights(&self) -> Vec<Ino> {
        let mut t = self.lock();
        let mut all = Vec::with_capacity(t.slots.len());
        for (ino, s) in t.live_mut() {
            all.push(ino);
            if !matches!(&s.box_id, Token::Text(id) if id.starts_with("local:")) {
                s.fetched = 0;
                s.rights = pack_rights(None);
                s.unlistable = false;
            }
        }
        all
    }

    /// Forces revalidation of every node's attributes at next use; returns the directories.
    pub fn mark_all_stale(&self) -> Vec<Ino> {
        let mut t = self.lock();
        t.live_mut().for_each(|(_, s)| s.fetched = 0);
        t.live().filter(|(_, s)| s.kind == NodeKind::Dir).map(|(ino, _)| ino).collect()
    }

    /// A metadata call of ours on the item is about to go: its event is an echo.
    pub fn expect_echo(&self, ino: Ino) {
        if let Some(s) = self.lock().slim_mut(ino) {
            s.echoes += 1;
        }
    }

    /// The call refused for sure: no event will come of it.
    pub fn cancel_echo(&self, ino: Ino) {
        self.take_echo(ino);
    }

    /// Whether a metadata event about the item is the echo of a call of ours (counted once).
    pub fn take_echo(&self, ino: Ino) -> bool {
        match self.lock().slim_mut(ino) {
            Some(s) if s.echoes > 0 => {
                s.echoes -= 1;
                true
            }
            _ => false,
        }
    }

    pub fn add_lookup(&self, ino: Ino) {
        if let Some(s) = self.lock().slim_mut(ino) {
            s.lookups = s.lookups.saturating_add(1);
        }
    }

    /// The kernel forgot `n` lookups. Returns whether it now knows the inode no more.
    pub fn forget(&self, ino: Ino, n: u64) -> bool {
        let mut t = self.lock();
        let Some(s) = t.slim_mut(ino) else { return false };
        s.lookups = s.lookups.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
        s.lookups == 0
    }

    /// Drops `ino` if the kernel does not know it, nothing waits on an echo of it, and `keep`
    /// (asked under the table's lock) does not hold it; returns whether it was dropped. Its
    /// number is never used again.
    pub fn drop_unused(&self, ino: Ino, keep: impl Fn(&Node) -> bool) -> bool {
        let mut t = self.lock();
        let Some(s) = t.slim(ino) else { return false };
        if s.lookups > 0 || s.echoes > 0 {
            return false;
        }
        let node = s.node(ino, t.epoch);
        !keep(&node) && t.remove(ino)
    }

    /// Gives back the memory of dropped items' slots (the chunks with none in use) and of the
    /// id index's unused room. It walks the chunks and may rehash the index: call it after
    /// many drops, not after each.
    pub fn release_free_slots(&self) {
        let mut t = self.lock();
        t.slots.release_empty_chunks();
        let Table { slots, by_id, hasher, .. } = &mut *t;
        by_id.shrink_to_fit(rehash(slots, hasher));
    }

    pub fn len(&self) -> usize {
        self.lock().slots.len()
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

    /// A file with a `global.properties` instance holding `keys` (`None`: no instance).
    fn file_with(id: &str, keys: Option<serde_json::Value>) -> Item {
        let mut json = serde_json::json!({"type": "file", "id": id, "name": "link", "size": 4, "metadata": {}});
        if let Some(keys) = keys {
            json["metadata"] = serde_json::json!({"global": {"properties": keys}});
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn metadata_asked_for_before_the_mount_stored_its_own_does_not_replace_it() {
        let root = Meta::from_item(&serde_json::from_value(serde_json::json!({"type": "folder", "id": "0"})).unwrap());
        let t = InodeTable::new("0", root);
        let ino = t.upsert(ROOT_INO, &file_with("7", None)).ino;
        let asked = t.stamp();
        let symlink = Stored::from_properties(serde_json::json!({"boxfs_type": "symlink"}).as_object());
        t.set_stored(ino, symlink.clone());
        // A listing sent before the store, answered after it: Box built it without the keys.
        t.upsert_entry_as_of(ROOT_INO, &file_with("7", None), asked);
        assert_eq!(t.get(ino).unwrap().meta.stored(), &symlink);
        t.refresh_as_of(ino, Meta::from_item(&file_with("7", None)), asked);
        assert_eq!(t.get(ino).unwrap().meta.stored(), &symlink, "nor does a GET sent before it");
        // Asked after the store: Box's answer is newer (another client changed the keys).
        let later = t.stamp();
        t.upsert_entry_as_of(ROOT_INO, &file_with("7", Some(serde_json::json!({"boxfs_mode": "0600"}))), later);
        assert_eq!(t.get(ino).unwrap().meta.stored().keys.get("boxfs_mode").map(String::as_str), Some("0600"));
        t.upsert_entry(ROOT_INO, &file_with("7", None));
        assert!(!t.get(ino).unwrap().meta.stored().instance, "the item says it has no instance");
    }

    /// What a million items cost in the table depends on this (see `compact.rs`).
    #[test]
    fn an_item_takes_less_than_170_bytes_in_its_slot() {
        assert!(Slots::<Slim>::slot_bytes() <= 168, "{}", Slots::<Slim>::slot_bytes());
    }

    #[test]
    fn rights_and_times_come_back_as_they_went_in() {
        for r in [None, Some(Rights::ALL), Some(Rights { read: true, write: false, rename: true, delete: false })] {
            assert_eq!(unpack_rights(pack_rights(r)), r);
        }
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        let meta = Meta { mtime: t, ..Meta::local(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(9)) };
        let slim = Slim::new(NodeKind::File, "1", ROOT_INO, Arc::from("x"), meta);
        let back = slim.meta();
        assert_eq!((back.mtime, back.ctime), (t, SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(9)));
    }
}
