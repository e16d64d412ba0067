//! The filesystem operations, async and FUSE-free: lookup and getattr from the metadata cache
//! (one listing call per folder per TTL, negative lookups answered from the cached listing),
//! directory handles with a consistent snapshot, file handles reading through the block
//! cache and prefetcher, web links as `.url` files, symlinks answered from the attributes
//! stored on the item, xattrs and statfs. Inodes of the hidden `.box/` go to `dotbox_ops.rs`.

use super::dotbox::{is_virtual, DotBox};
use super::error::{VfsError, VfsResult};
use super::meta::attr::{Attr, AttrPolicy, SpecialType};
use super::meta::inode::{link_body, Ino, InodeTable, Meta, Node, NodeKind, ROOT_INO};
use super::meta::listings::{DirEntry, Listing, ListingCache};
use super::meta::names::not_found;
use super::meta::posix::Posix;
use super::meta::rights::Op;
use super::meta::sharing::BoxSharing;
use super::read::blocks::BlockCache;
use super::read::downloads::{BlockRequest, Downloads, FetchFn, Urgency};
use super::read::pins::PinList;
use super::read::prefetch::{Reader, ReaderConfig};
use super::read::version::ContentVersion;
use super::remote::Remote;
use super::write::journal::Journal;
use super::write::staged_files::StagedFiles;
use super::write::staging::Staged;
use boxfs_api::model::{Item, User};
use boxfs_api::{ApiError, Fetched};
use boxfs_io::heap::HeapTrimmer;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct FsConfig {
    /// How long metadata (listings, attributes) is trusted without asking Box again.
    pub metadata_ttl: Duration,
    /// Bytes of cached listings (with their items' attributes) kept; beyond, the least
    /// recently used listings of folders nobody has open are dropped.
    pub metadata_budget: usize,
    pub attrs: AttrPolicy,
    pub reader: ReaderConfig,
    /// How long after the last close an upload waits (coalesces rapid re-opens).
    pub writeback_delay: Duration,
    /// Uploads running at once.
    pub upload_parallelism: usize,
    /// `close` (FUSE flush) of a written file does what `fsync` does.
    pub sync_on_close: bool,
    /// What `fsync` waits for.
    pub fsync: FsyncMode,
    /// A file in Box opened for writing is locked in Box until its upload lands.
    pub lock_on_open: bool,
}

/// What `fsync` (and `fdatasync`, `msync(MS_SYNC)`, close with `sync_on_close`) promise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncMode {
    /// The file's bytes and journal record are on the local disk; the upload follows.
    #[default]
    Local,
    /// The file's content is committed in Box.
    Box,
}

#[derive(Clone)]
pub(super) enum Handle {
    /// A file read from Box (unless it is staged meanwhile: then its staged copy is read).
    File {
        ino: Ino,
        reader: Arc<Reader>,
    },
    Link(Bytes),
    Dir {
        ino: Ino,
        listing: Arc<Listing>,
        /// The entries go to the kernel with their attributes (see [`KernelListing`]).
        with_attributes: bool,
    },
    /// A file with local changes: reads and writes go to its staged copy.
    Write(Arc<Staged>),
    Staged(Arc<Staged>),
}

/// Downloads a block from `remote` (its background twin for prefetches, its idle one for
/// pinned content) into the cache file it is given.
fn block_fetcher(remote: Arc<dyn Remote>) -> FetchFn {
    let (background, idle) = (remote.background(), remote.idle());
    Arc::new(move |req: BlockRequest, mut out| {
        let c = match req.urgency {
            Urgency::Read => remote.clone(),
            Urgency::Prefetch => background.clone(),
            Urgency::Pin => idle.clone(),
        };
        Box::pin(async move {
            c.read_range_into(&req.file_id, req.version.download_param(), req.offset, req.len, &mut out)
                .await
                .map_err(Arc::new)?;
            Ok(out)
        })
    })
}

const QUOTA_TTL: Duration = Duration::from_secs(60);

/// Subfolder listings fetched ahead of a walker at once (`Fs::walk_ahead`).
const WALK_AHEAD: usize = 8;

/// Inodes and listing entries dropped between two releases of their memory (about 30 MiB of
/// metadata).
const TRIM_EVERY: usize = 100_000;

/// Kinds of extended attribute the mount does not have: security labels and POSIX ACLs.
const UNSUPPORTED_XATTRS: &[&str] =
    &["security.selinux", "security.SMACK64", "system.posix_acl_access", "system.posix_acl_default"];

/// Read-only xattrs exposed on every item.
/// The extended attribute that pins (`1`) and tells what is pinned (`1`, or `inherited`): see
/// `pinning.rs`.
pub const PINNED: &str = "user.boxfs.pinned";

pub const XATTRS: &[&str] = &["user.box.id", "user.box.etag", "user.box.sha1", "user.box.version", "user.box.web_url"];

/// An open directory handle, and what the kernel may do with the entries it cached when the
/// folder was last listed through it (the kernel keeps a folder's entries between opens, so
/// a walk over a folder listed before asks nothing of the daemon).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirOpened {
    pub fh: u64,
    pub kernel_copy: KernelCopy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelCopy {
    /// The folder is listed the same as when the kernel last read it, and its copy has what
    /// the opener wants (attributes, when it asked for them): it may keep it.
    Current,
    /// The listing changed since, the kernel never read it, or its copy lacks the attributes
    /// the opener wants: its copy is to be dropped.
    Outdated,
    /// The folder is never cached by the kernel (`.box/`: its views change behind its back).
    None,
}

/// What the kernel keeps of a folder it read through an open: the listing version, and
/// whether the entries went with their attributes (the opener asked for them) or as names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KernelListing {
    version: u64,
    with_attributes: bool,
}

impl KernelListing {
    /// True when this copy can stand for `wanted`: the same listing, with attributes if
    /// `wanted` has them.
    fn serves(&self, wanted: &KernelListing) -> bool {
        self.version == wanted.version && (self.with_attributes || !wanted.with_attributes)
    }
}

pub struct Fs {
    remote: Arc<dyn Remote>,
    /// `remote` at the priority of work nobody waits on (uploads, metadata writes).
    background: Arc<dyn Remote>,
    cfg: FsConfig,
    // The metadata room's parts.
    inodes: InodeTable,
    listings: ListingCache,
    quota: Mutex<Option<(Instant, User)>>,
    // The read room's.
    downloads: Arc<Downloads>,
    pins: Arc<PinList>,
    // The write room's; uploads running at once are limited by `upload_slots`.
    staged: StagedFiles,
    upload_slots: tokio::sync::Semaphore,
    // The facade's own: open file and directory handles.
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    /// Folders whose listing is being fetched ahead of a walker, and the fetches allowed at once.
    walk_ahead: Mutex<HashSet<Ino>>,
    walk_slots: Arc<tokio::sync::Semaphore>,
    /// What the kernel keeps of each folder it read (see [`DirOpened`]).
    kernel_listings: Mutex<HashMap<Ino, KernelListing>>,
    /// Counts the inodes and listing entries dropped ([`Fs::dropped`]).
    heap: HeapTrimmer,
    /// The hidden `.box/` directory's inodes and views (`dotbox_ops.rs`).
    dot_box: DotBox,
    /// Who the mount is in Box, the locks it took for writers, the last link or lock read for a
    /// size probe (`box_attrs.rs`).
    box_sharing: BoxSharing,
    me: Weak<Fs>,
    /// Background work (uploads) is spawned here, also from FUSE threads.
    rt: tokio::runtime::Handle,
}

impl Fs {
    /// A filesystem rooted at Box folder `root_id`.
    pub async fn new(
        remote: Arc<dyn Remote>,
        root_id: &str,
        blocks: Arc<BlockCache>,
        journal: Journal,
        pins: PinList,
        cfg: FsConfig,
    ) -> VfsResult<Arc<Fs>> {
        let root = match remote.get_folder(root_id, None).await? {
            Fetched::Modified(f) => Item::Folder(f),
            Fetched::NotModified => return Err(VfsError::Api(ApiError::Decode("304 without an etag".into()))),
        };
        let background = remote.background();
        let fetch = block_fetcher(remote.clone());
        let downloads = Downloads::new(blocks, fetch);
        Ok(Arc::new_cyclic(|me| Fs {
            inodes: InodeTable::new(root_id, Meta::from_item(&root)),
            listings: ListingCache::new(cfg.metadata_ttl, cfg.metadata_budget),
            upload_slots: tokio::sync::Semaphore::new(cfg.upload_parallelism.max(1)),
            remote,
            background,
            cfg,
            downloads,
            pins: Arc::new(pins),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            walk_ahead: Mutex::new(HashSet::new()),
            walk_slots: Arc::new(tokio::sync::Semaphore::new(WALK_AHEAD)),
            kernel_listings: Mutex::new(HashMap::new()),
            heap: HeapTrimmer::new(TRIM_EVERY),
            box_sharing: BoxSharing::default(),
            quota: Mutex::new(None),
            dot_box: DotBox::default(),
            staged: StagedFiles::new(journal),
            me: me.clone(),
            rt: tokio::runtime::Handle::current(),
        }))
    }

    pub fn config(&self) -> &FsConfig {
        &self.cfg
    }

    pub(super) fn remote(&self) -> &dyn Remote {
        &*self.remote
    }

    pub(super) fn background(&self) -> &dyn Remote {
        &*self.background
    }

    /// `Err(EACCES)` unless the user's rights on `ino` allow `op` (`rights.rs`); what is known
    /// of them is revalidated first when it is stale.
    pub(super) async fn check_allowed(&self, ino: Ino, op: Op) -> VfsResult<()> {
        if let Some(answer) = self.allowed_now(ino, op) {
            return answer;
        }
        self.getattr(ino).await?;
        self.allowed_now(ino, op).unwrap_or(Ok(()))
    }

    /// [`Fs::check_allowed`] when what is known of the rights on `ino` suffices (`None`: they
    /// are to be revalidated first).
    fn allowed_now(&self, ino: Ino, op: Op) -> Option<VfsResult<()>> {
        let node = match self.node(ino) {
            Ok(node) => node,
            Err(e) => return Some(Err(e)),
        };
        let local = node.box_id.starts_with("local:");
        let rights = match node.meta.rights {
            _ if local || node.kind == NodeKind::Link => node.meta.rights,
            Some(rights) if node.fetched.is_some() => Some(rights),
            _ => return None,
        };
        Some(match rights {
            Some(rights) if !op.allowed(&node, rights) => {
                tracing::debug!(ino, ?op, name = %node.name, "refused: the item's permissions in Box do not allow it");
                Err(VfsError::Denied)
            }
            _ => Ok(()),
        })
    }

    /// A collaboration changed (the user's role somewhere): forget every listing and what the
    /// user may do with each item; everything is asked for again at next use. Returns the
    /// inodes whose kernel attributes are to be dropped.
    pub(super) async fn rights_changed(&self) -> Vec<Ino> {
        self.forget_all_listings().await;
        self.inodes().forget_rights()
    }

    fn node(&self, ino: Ino) -> VfsResult<Node> {
        self.inodes.get(ino).ok_or(VfsError::NotFound)
    }

    /// Attributes of a node: the defaults, with the POSIX attributes stored on it (or about to
    /// be) over them; a staged file shows its local size and mtime.
    fn attr(&self, node: &Node) -> Attr {
        let mut attr = self.cfg.attrs.attr(node);
        if let Some(s) = self.staged.with_content(node.ino) {
            let st = s.lock();
            attr.size = st.size;
            attr.blocks = st.size.div_ceil(512);
            attr.mtime = st.mtime;
        }
        self.posix_of(node).apply(&mut attr);
        if attr.special != Some(SpecialType::Symlink) {
            attr.perm &= self.cfg.attrs.allowed_bits(node);
        }
        attr
    }

    /// The POSIX attributes a node has (stored in Box, or pending with its staged entry).
    pub(super) fn posix_of(&self, node: &Node) -> Posix {
        let staged = self.staged.get(node.ino);
        let st = staged.as_ref().map(|s| s.lock());
        let pending = st.as_ref().and_then(|st| st.record().attrs.as_ref());
        Posix::from_keys(pending.map_or(&node.meta.stored().keys, |a| &a.want))
    }

    /// The entry called `name` in `parent` (`ENAMETOOLONG` for a name no item can have).
    pub(super) async fn find_entry(&self, parent: Ino, name: &str) -> VfsResult<DirEntry> {
        if name.chars().count() > 255 {
            return Err(VfsError::NameTooLong);
        }
        find_in(&*self.listing(parent).await?, name)
    }

    pub fn attr_of(&self, ino: Ino) -> VfsResult<Attr> {
        if is_virtual(ino) {
            return self.virtual_attr(ino);
        }
        Ok(self.attr(&self.node(ino)?))
    }

    /// The folder's listing: cached for the metadata TTL, fetched once however many callers
    /// ask at the same time. A folder Box refuses to list (an uploader's) is `Denied`, and
    /// remembered as such.
    pub async fn listing(&self, ino: Ino) -> VfsResult<Arc<Listing>> {
        self.listing_via(ino, &*self.remote).await
    }

    /// [`Fs::listing`], fetched (if it must be) through `remote`.
    pub(super) async fn listing_via(&self, ino: Ino, remote: &dyn Remote) -> VfsResult<Arc<Listing>> {
        let node = self.node(ino)?;
        if node.kind != NodeKind::Dir {
            return Err(VfsError::NotDir);
        }
        if node.unlistable {
            return Err(VfsError::Denied);
        }
        match self.listings.get_or_fetch(ino, self.fetch_listing(node, remote), VfsError::is_offline).await {
            Err(e) if matches!(e.root_api(), Some(ApiError::Forbidden { .. })) => {
                self.inodes.set_unlistable(ino);
                Err(VfsError::Denied)
            }
            Ok(listing) => {
                self.keep_metadata_budget();
                Ok(listing)
            }
            Err(e) => Err(e),
        }
    }

    /// Drops the least recently used listings past the budget, except those of folders with
    /// pending changes or open handles, and then the items of them nothing holds any more.
    fn keep_metadata_budget(&self) {
        let (used, budget) = self.listings.usage_bytes();
        if used <= budget {
            return;
        }
        let held = self.held_inodes();
        for listing in self.listings.evict(|dir| held.contains(&dir)) {
            for e in &listing.entries {
                self.drop_if_unused(e.ino, &held);
            }
            self.dropped(listing.entries.len());
        }
    }

    /// Inodes that must stay: those with a staged entry or an open handle, and the folders
    /// staged entries are in.
    fn held_inodes(&self) -> HashSet<Ino> {
        let mut held: HashSet<Ino> = HashSet::new();
        for s in self.staged.all() {
            held.insert(s.ino);
            held.extend(s.lock().parent);
        }
        for h in self.handles.lock().unwrap_or_else(|p| p.into_inner()).values() {
            match h {
                Handle::File { ino, .. } | Handle::Dir { ino, .. } => held.insert(*ino),
                Handle::Write(s) | Handle::Staged(s) => held.insert(s.ino),
                Handle::Link(_) => false,
            };
        }
        held
    }

    /// Drops `ino` from the inode table unless the kernel knows it, it is `held`, it is in a
    /// cached listing, or it is a folder whose listing is cached or open.
    fn drop_if_unused(&self, ino: Ino, held: &HashSet<Ino>) {
        let dropped = self.inodes.drop_unused(ino, |node| {
            held.contains(&node.ino)
                || held.contains(&node.parent)
                || self.listings.is_cached(node.ino)
                || self.listings.is_cached(node.parent)
        });
        self.dropped(usize::from(dropped));
    }

    /// `n` inodes or listing entries were dropped: every [`TRIM_EVERY`] of them, the inode
    /// table's free slots and then the allocator's free pages go back to the system.
    fn dropped(&self, n: usize) {
        self.heap.freed(n, || self.inodes.release_free_slots());
    }

    /// Changes a cached listing in place (after our own create, rename or delete), so that
    /// the change shows at once without listing the folder again.
    pub(super) async fn edit_listing(&self, ino: Ino, edit: impl FnOnce(&mut Listing)) {
        self.listings.edit(ino, edit).await;
    }

    /// A folder just created here: its listing is known (empty) without asking Box.
    pub(super) async fn known_empty(&self, ino: Ino) {
        self.listings.seed(ino, Listing::default()).await;
    }

    /// The folder's listing if it is cached and fresh (`None`: call [`Fs::listing`]).
    fn cached_listing(&self, ino: Ino) -> Option<Arc<Listing>> {
        self.node(ino).ok().filter(|n| n.kind == NodeKind::Dir && !n.unlistable)?;
        self.listings.fresh(ino)
    }

    /// Fetches ahead, at the lowest priority, the listings not cached yet of the subfolders of
    /// a folder being listed, a few at a time, each folder once however many ask: a walk of a
    /// tree then waits for Box about once per level instead of once per folder. Nothing goes
    /// further than one level below what is listed. Listings fetched ahead never make room for
    /// themselves: nothing is fetched ahead unless the budget holds every fetch allowed at once
    /// at a full page each (a walk over a smaller budget waits for Box once per folder rather
    /// than evict what it is about to read).
    fn walk_ahead(&self, listing: &Listing) {
        if !self.listings.has_room_for_pages(WALK_AHEAD) {
            return;
        }
        let Some(fs) = self.self_arc() else { return };
        let subfolders = listing.entries.iter().filter(|e| e.kind == NodeKind::Dir);
        let mut pending = self.walk_ahead.lock().unwrap_or_else(|p| p.into_inner());
        for dir in subfolders.filter(|e| self.cached_listing(e.ino).is_none()) {
            if !pending.insert(dir.ino) {
                continue;
            }
            let (fs, slots, ino) = (fs.clone(), self.walk_slots.clone(), dir.ino);
            self.rt.spawn(async move {
                if let Ok(_slot) = slots.acquire().await {
                    if !fs.listings.has_room_for_pages(WALK_AHEAD) {
                        tracing::debug!(ino, "no room in the metadata budget to list ahead of the walk");
                    } else if let Err(e) = fs.listing_via(ino, &*fs.background).await {
                        tracing::debug!(ino, error = %e, "listing ahead of the walk failed");
                    }
                }
                fs.walk_ahead.lock().unwrap_or_else(|p| p.into_inner()).remove(&ino);
            });
        }
    }

    async fn fetch_listing(&self, dir: Node, remote: &dyn Remote) -> VfsResult<Arc<Listing>> {
        let asked = self.inodes.stamp();
        let items = remote.list_folder(&dir.box_id).await?;
        let mut listing = Listing::default();
        for item in &items {
            let (ino, kind, name) = self.inodes.upsert_entry_as_of(dir.ino, item, asked);
            if !listing.insert(DirEntry { ino, kind, name: name.clone() }) {
                tracing::warn!(folder = %dir.box_id, %name, "two items show under one name; showing the first");
            }
        }
        for s in self.staged.all() {
            let mut st = s.lock();
            if st.parent.is_none() && st.record().parent_id == dir.box_id && !st.upload.is_held() {
                st.parent = Some(dir.ino); // left by an earlier run: its folder is known now
            }
            // A file made here shows under its name even when Box has an item of that name:
            // its own upload landing while this listing was fetched, or another one, which it
            // becomes a conflicted copy beside.
            if st.parent == Some(dir.ino) && st.only_local() {
                let name = st.record().name.clone();
                self.inodes.set_location(s.ino, dir.ino, &name);
                listing.remove_named(&name, |e| e.ino != s.ino);
                listing.insert(DirEntry { ino: s.ino, kind: NodeKind::File, name: name.into() });
            }
        }
        Ok(Arc::new(listing))
    }

    /// Looks `name` up in `parent`. A name missing from a cached listing costs no API call; in
    /// a folder the user may not list, no name is found (they may still create one).
    pub async fn lookup(&self, parent: Ino, name: &str) -> VfsResult<Attr> {
        if self.is_dot_box_entry(parent, name) {
            return self.dot_box_lookup(parent, name).await;
        }
        // A folder Box refuses to list (an uploader's) has no name to find.
        let entry = match self.find_entry(parent, name).await {
            Err(VfsError::Denied) => return Err(VfsError::NotFound),
            other => other?,
        };
        self.looked_up(entry.ino)
    }

    /// [`Fs::lookup`] when the parent's listing is cached and fresh: answered without waiting
    /// (`None`: call `lookup`).
    pub fn lookup_cached(&self, parent: Ino, name: &str) -> Option<VfsResult<Attr>> {
        if self.is_dot_box_entry(parent, name) {
            return self.dot_box_lookup_cached(parent, name);
        }
        if name.chars().count() > 255 {
            return Some(Err(VfsError::NameTooLong));
        }
        let listing = self.cached_listing(parent)?;
        Some(find_in(&listing, name).and_then(|entry| self.looked_up(entry.ino)))
    }

    /// The attributes of `ino`, which the kernel now holds one more reference to (a lookup, or
    /// an entry of a `readdirplus` answer).
    pub fn looked_up(&self, ino: Ino) -> VfsResult<Attr> {
        if is_virtual(ino) {
            return self.virtual_looked_up(ino);
        }
        let node = self.node(ino)?;
        self.inodes.add_lookup(node.ino);
        Ok(self.attr(&node))
    }

    /// The inode at `path`, relative to the mount's root (`boxfs status`, `sync`, `recover`).
    /// Unlike `lookup`, it adds no kernel reference.
    pub async fn resolve(&self, path: &std::path::Path) -> VfsResult<Ino> {
        let mut ino = ROOT_INO;
        for part in path.components() {
            match part {
                std::path::Component::Normal(name) => {
                    let name = name.to_str().ok_or(VfsError::Invalid)?;
                    ino = self.listing(ino).await?.find(name).ok_or(VfsError::NotFound)?.ino;
                }
                std::path::Component::CurDir => {}
                _ => return Err(VfsError::Invalid),
            }
        }
        Ok(ino)
    }

    /// The kernel forgot `n` lookups of `ino`: once it knows the inode no more, the inode is
    /// dropped unless something else holds it (see [`Fs::drop_if_unused`]).
    pub fn forget(&self, ino: Ino, n: u64) {
        if is_virtual(ino) {
            return self.dot_box.table.forget(ino, n);
        }
        if !self.inodes.forget(ino, n) {
            return;
        }
        let Some(node) = self.inodes.get(ino) else { return };
        if !self.listings.is_cached(node.parent) && !self.listings.is_cached(ino) {
            self.drop_if_unused(ino, &self.held_inodes());
        }
    }

    /// Attributes, revalidated with a conditional GET (`if-none-match`) once the TTL passed.
    pub async fn getattr(&self, ino: Ino) -> VfsResult<Attr> {
        if is_virtual(ino) {
            return self.virtual_attr(ino);
        }
        if let Some(answer) = self.getattr_cached(ino) {
            return answer;
        }
        let node = self.node(ino)?;
        // Unknown rights are asked for in full: Box's etag does not change with a role.
        let etag = node.meta.rights.and(node.meta.etag.as_deref());
        let asked = self.inodes.stamp();
        let fresh = match node.kind {
            NodeKind::File => self.remote.get_file(&node.box_id, etag).await.map(|f| f.map(Item::File)),
            _ => self.remote.get_folder(&node.box_id, etag).await.map(|f| f.map(Item::Folder)),
        };
        let fresh = match fresh {
            Err(ApiError::Offline { .. }) => return Ok(self.attr(&node)), // what is known will do
            other => other?,
        };
        let node = match fresh {
            Fetched::NotModified => {
                self.inodes.touch(ino);
                node
            }
            Fetched::Modified(item) => {
                self.inodes.refresh_as_of(ino, Meta::from_item(&item), asked).ok_or(VfsError::NotFound)?
            }
        };
        Ok(self.attr(&node))
    }

    /// [`Fs::getattr`] when no revalidation is due: answered without waiting (`None`: call
    /// `getattr`).
    pub fn getattr_cached(&self, ino: Ino) -> Option<VfsResult<Attr>> {
        if is_virtual(ino) {
            return Some(self.virtual_attr(ino));
        }
        let node = match self.node(ino) {
            Ok(node) => node,
            Err(e) => return Some(Err(e)),
        };
        let fresh = node.fetched.is_some_and(|t| t.elapsed() < self.cfg.metadata_ttl);
        // A staged file's local state is what counts until its upload commits.
        let staged = self.staged.contains(ino);
        (fresh || staged || node.kind == NodeKind::Link).then(|| Ok(self.attr(&node)))
    }

    pub(super) fn handle(&self, fh: u64) -> VfsResult<Handle> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).get(&fh).cloned().ok_or(VfsError::BadHandle)
    }

    pub(super) fn add_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, h);
        fh
    }

    fn drop_handle(&self, fh: u64) {
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh);
    }

    /// Opens a directory on a snapshot of its listing (stable across `readdir` calls), whose
    /// entries go to the kernel `with_attributes` or as names (folders always with theirs;
    /// `.box/` views are never kept by the kernel and always go with them). Its subfolders'
    /// listings are fetched ahead ([`Fs::walk_ahead`]).
    pub async fn opendir(&self, ino: Ino, with_attributes: bool) -> VfsResult<DirOpened> {
        if is_virtual(ino) {
            let fh = self.dot_box_opendir(ino).await?;
            return Ok(DirOpened { fh, kernel_copy: KernelCopy::None });
        }
        self.check_allowed(ino, Op::List).await?;
        let listing = self.listing(ino).await?;
        Ok(self.open_listed_dir(ino, listing, with_attributes))
    }

    /// [`Fs::opendir`] when the rights and the listing are known and fresh: answered without
    /// waiting (`None`: call `opendir`).
    pub fn opendir_cached(&self, ino: Ino, with_attributes: bool) -> Option<VfsResult<DirOpened>> {
        if is_virtual(ino) {
            return None;
        }
        if let Err(e) = self.allowed_now(ino, Op::List)? {
            return Some(Err(e));
        }
        let listing = self.cached_listing(ino)?;
        Some(Ok(self.open_listed_dir(ino, listing, with_attributes)))
    }

    /// The kernel keeps its copy of the folder when it serves this open; else it reads the
    /// folder again through it, and what it will keep is recorded.
    fn open_listed_dir(&self, ino: Ino, listing: Arc<Listing>, with_attributes: bool) -> DirOpened {
        self.walk_ahead(&listing);
        let wanted = KernelListing { version: listing.version(), with_attributes };
        let mut kept = self.kernel_listings.lock().unwrap_or_else(|p| p.into_inner());
        let kernel_copy = match kept.get(&ino) {
            Some(copy) if copy.serves(&wanted) => KernelCopy::Current,
            _ => {
                kept.insert(ino, wanted);
                KernelCopy::Outdated
            }
        };
        drop(kept);
        DirOpened { fh: self.add_handle(Handle::Dir { ino, listing, with_attributes }), kernel_copy }
    }

    /// The snapshot a directory handle lists, with `.` and `..` first.
    pub fn readdir(&self, fh: u64) -> VfsResult<DirSnapshot> {
        let Handle::Dir { ino, listing, with_attributes } = self.handle(fh)? else {
            return Err(VfsError::BadHandle);
        };
        let parent = match is_virtual(ino) {
            true => self.virtual_parent(ino),
            false => self.inodes.get(ino).map(|n| n.parent).unwrap_or(ROOT_INO),
        };
        let dots = [
            DirEntry { ino, kind: NodeKind::Dir, name: ".".into() },
            DirEntry { ino: parent, kind: NodeKind::Dir, name: "..".into() },
        ];
        Ok(DirSnapshot { dots, listing, with_attributes })
    }

    /// The file type a directory entry stands for besides a regular file or directory (from
    /// the attributes stored on it).
    pub fn special_type(&self, entry: &DirEntry) -> Option<SpecialType> {
        match entry.kind {
            NodeKind::File => self.inodes.get(entry.ino).and_then(|n| self.posix_of(&n).special).map(|s| s.kind()),
            _ => None,
        }
    }

    /// A symlink's target (`EINVAL` for anything else), without a download.
    pub fn readlink(&self, ino: Ino) -> VfsResult<String> {
        let node = self.node(ino)?;
        self.posix_of(&node).target().map(str::to_string).ok_or(VfsError::Invalid)
    }

    pub fn releasedir(&self, fh: u64) {
        self.drop_handle(fh);
    }

    /// Opens a file; for writing (or truncating) it is staged first.
    pub async fn open(&self, ino: Ino, write: bool, truncate: bool) -> VfsResult<u64> {
        if is_virtual(ino) {
            return self.dot_box_open(ino, write || truncate);
        }
        let node = self.node(ino)?;
        if write || truncate {
            if self.cfg.attrs.read_only {
                return Err(VfsError::ReadOnly);
            }
            return self.open_write(ino, truncate).await;
        }
        if let Some(staged) = self.staged.with_content(ino) {
            return Ok(self.add_handle(Handle::Staged(staged)));
        }
        if node.kind == NodeKind::File {
            self.check_allowed(ino, Op::Read).await?;
        }
        let handle = match node.kind {
            NodeKind::Dir => return Err(VfsError::IsDir),
            NodeKind::Link => Handle::Link(Bytes::from(link_body(node.meta.url.as_deref().unwrap_or_default()))),
            NodeKind::File => {
                let reader = Arc::new(self.reader_for(&node.box_id, &content_version(&node), node.meta.size));
                Handle::File { ino, reader }
            }
        };
        Ok(self.add_handle(handle))
    }

    /// A block-cache reader of one version of a file.
    pub(super) fn reader_for(&self, box_id: &str, version: &ContentVersion, size: u64) -> Reader {
        Reader::new(self.downloads.clone(), box_id.to_string(), version.clone(), size, self.cfg.reader.clone())
    }

    /// The read if it can be answered at once from memory (a web link's body, or file bytes of
    /// the cache's recent tier that the page cache holds), else `None`: then call [`Fs::read`].
    /// Never blocks.
    pub fn read_ready(&self, fh: u64, offset: u64, size: u32) -> Option<Bytes> {
        match self.handles.lock().unwrap_or_else(|p| p.into_inner()).get(&fh)? {
            Handle::File { ino, .. } if self.staged.with_content(*ino).is_some() => None,
            Handle::File { reader, .. } => reader.read_ready(offset, size),
            Handle::Link(body) => {
                let start = (offset as usize).min(body.len());
                let end = (start + size as usize).min(body.len());
                Some(body.slice(start..end))
            }
            _ => None,
        }
    }

    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> VfsResult<Bytes> {
        let reader = {
            let handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
            match handles.get(&fh) {
                Some(Handle::File { ino, reader }) => match self.staged.with_content(*ino) {
                    Some(staged) => return Ok(Bytes::from(staged.read_at(offset, size)?)),
                    None => reader.clone(),
                },
                Some(Handle::Link(body)) => {
                    let start = (offset as usize).min(body.len());
                    let end = (start + size as usize).min(body.len());
                    return Ok(body.slice(start..end));
                }
                Some(Handle::Write(s) | Handle::Staged(s)) => return Ok(Bytes::from(s.read_at(offset, size)?)),
                _ => return Err(VfsError::BadHandle),
            }
        };
        Ok(reader.read(offset, size).await?)
    }

    pub fn release(&self, fh: u64) {
        let handle = self.handles.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh);
        if let Some(Handle::Write(staged)) = handle {
            self.release_write(&staged);
        }
    }

    /// The account as Box just answered it: its quota is cached as if `statfs` had read it.
    pub fn remember_quota(&self, user: User) {
        *self.quota.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), user));
    }

    /// The account's quota (cached for a minute; while Box cannot be reached, the last one
    /// known).
    pub async fn quota(&self) -> VfsResult<User> {
        if let Some(user) = self.known_quota(QUOTA_TTL) {
            return Ok(user);
        }
        match self.remote.me().await {
            Ok(user) => {
                self.remember_quota(user.clone());
                Ok(user)
            }
            Err(e @ ApiError::Offline { .. }) => self.known_quota(Duration::MAX).ok_or(e.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// The quota Box gave at most `age` ago.
    fn known_quota(&self, age: Duration) -> Option<User> {
        let known = self.quota.lock().unwrap_or_else(|p| p.into_inner());
        known.as_ref().filter(|(at, _)| at.elapsed() < age).map(|(_, user)| user.clone())
    }

    /// A read-only `user.box.*` attribute or the pin; no other name exists, and none is looked
    /// for (Box's shared link and lock are asked of Box: `box_attrs.rs`). Security labels and
    /// ACLs are refused as unsupported (`ENOTSUP`): `ls -l` asks for both of every file unless
    /// a file of the mount answered so once.
    pub fn getxattr(&self, ino: Ino, name: &str) -> VfsResult<Vec<u8>> {
        if UNSUPPORTED_XATTRS.contains(&name) {
            return Err(VfsError::NotSupported);
        }
        if name == PINNED {
            return self.pinned_xattr(ino);
        }
        if !name.starts_with("user.box.") || is_virtual(ino) {
            return Err(VfsError::NoAttr);
        }
        let node = self.node(ino)?;
        xattr(&node, name).ok_or(VfsError::NoAttr)
    }

    /// Sets an extended attribute: the pin (`pinning.rs`), or Box's shared link or lock (a Box
    /// call, `box_attrs.rs`); any other name is `ENOTSUP` (see [`super::settable_xattr`]).
    pub async fn setxattr(&self, ino: Ino, name: &str, value: &[u8], flags: i32) -> VfsResult<()> {
        match name {
            PINNED => self.set_pinned_xattr(ino, value).await,
            _ => self.set_box_xattr(ino, name, value, flags).await,
        }
    }

    /// Removes an extended attribute: unpins, or removes Box's shared link or lock.
    pub async fn removexattr(&self, ino: Ino, name: &str) -> VfsResult<()> {
        match name {
            PINNED => self.unpin(ino).await,
            _ => self.remove_box_xattr(ino, name).await,
        }
    }

    /// The attribute names this item has (of those answered by asking Box, the ones the
    /// mount knows it has).
    pub fn listxattr(&self, ino: Ino) -> VfsResult<Vec<&'static str>> {
        if is_virtual(ino) {
            return Ok(Vec::new());
        }
        let node = self.node(ino)?;
        let known = XATTRS.iter().copied().filter(|n| xattr(&node, n).is_some());
        Ok(known.chain(self.box_xattr_names(&node)).chain(self.pin_xattr_name(&node)).collect())
    }

    /// Whether Box can be reached right now.
    pub fn connection(&self) -> boxfs_api::Connection {
        self.remote.connection()
    }

    /// Block cache bytes in use (budgeted), its budget, and the bytes of pinned content (kept
    /// apart from the budget).
    pub fn cache_usage(&self) -> CacheUsage {
        let blocks = self.blocks();
        CacheUsage { used: blocks.used_bytes(), capacity: blocks.capacity(), pinned: blocks.pinned_bytes() }
    }

    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    /// Bytes the cached listings take (an estimate, their items included) and their budget.
    pub fn listings_usage(&self) -> (usize, usize) {
        self.listings.usage_bytes()
    }

    pub(super) fn staged(&self) -> &StagedFiles {
        &self.staged
    }

    pub(super) fn journal(&self) -> &Journal {
        self.staged.journal()
    }

    pub(super) fn upload_slots(&self) -> &tokio::sync::Semaphore {
        &self.upload_slots
    }

    pub(super) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    /// This filesystem as an `Arc` (for background uploads), while it is alive.
    pub(super) fn self_arc(&self) -> Option<Arc<Fs>> {
        self.me.upgrade()
    }

    pub(super) fn dot_box(&self) -> &DotBox {
        &self.dot_box
    }

    pub(super) fn box_sharing(&self) -> &BoxSharing {
        &self.box_sharing
    }

    pub(super) fn inodes(&self) -> &InodeTable {
        &self.inodes
    }

    pub(super) fn blocks(&self) -> &BlockCache {
        self.downloads.cache()
    }

    pub(super) fn downloads(&self) -> &Arc<Downloads> {
        &self.downloads
    }

    pub(super) fn pins(&self) -> &Arc<PinList> {
        &self.pins
    }

    /// Drops a folder's cached listing (the next lookup or readdir lists it again).
    pub(super) async fn forget_listing(&self, ino: Ino) {
        self.listings.forget(ino).await;
    }

    pub(super) async fn forget_all_listings(&self) {
        self.listings.forget_all().await;
    }
}

/// The block cache's use: bytes of evictable blocks, the capacity that budgets them, and
/// bytes of pinned content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheUsage {
    pub used: u64,
    pub capacity: u64,
    pub pinned: u64,
}

/// What an open directory lists: `.`, `..`, then the folder's entries as they were when it
/// was opened.
pub struct DirSnapshot {
    dots: [DirEntry; 2],
    listing: Arc<Listing>,
    with_attributes: bool,
}

impl DirSnapshot {
    /// Its entries go to the kernel with their attributes (else folders only: the others as
    /// names).
    pub fn with_attributes(&self) -> bool {
        self.with_attributes
    }

    /// The entries from `offset` on, each with the offset of the entry after it.
    pub fn from(&self, offset: u64) -> impl Iterator<Item = (u64, &DirEntry)> {
        self.dots.iter().chain(&self.listing.entries).enumerate().skip(offset as usize).map(|(i, e)| (i as u64 + 1, e))
    }
}

/// The entry called `name` in `listing`.
fn find_in(listing: &Listing, name: &str) -> VfsResult<DirEntry> {
    listing.find(name).cloned().ok_or_else(|| not_found(name))
}

/// The content of a file as far as the mount knows (`read/version.rs`).
pub(super) fn content_version(node: &Node) -> ContentVersion {
    ContentVersion::of(node.meta.version_id.as_deref(), node.meta.sha1.as_deref())
}

/// The value of the `user.box.*` attribute `name` of `node`, if it has one.
fn xattr(node: &Node, name: &str) -> Option<Vec<u8>> {
    let value = match name {
        "user.box.id" => Some(node.box_id.clone()),
        "user.box.etag" => node.meta.etag.clone(),
        "user.box.sha1" => node.meta.sha1.clone(),
        "user.box.version" => node.meta.version_id.clone(),
        "user.box.web_url" => Some(web_url(node)),
        _ => None,
    };
    value.map(String::into_bytes)
}

fn web_url(node: &Node) -> String {
    match node.kind {
        NodeKind::Dir => format!("https://app.box.com/folder/{}", node.box_id),
        NodeKind::File => format!("https://app.box.com/file/{}", node.box_id),
        NodeKind::Link => format!("https://app.box.com/web_link/{}", node.box_id),
    }
}
