//! Pinned content ("keep on this device"), where the rooms meet: pins are made and removed
//! here (`boxfs pin`/`unpin` through the control socket, the `user.boxfs.pinned` xattr), and
//! the pin worker keeps their content in the block cache.
//!
//! - Pinning an item first checks that its content fits: the bytes it needs (a folder's
//!   recursive size from Box; if that is more than the cache disk has free, what its files
//!   lack in the cache exactly, found by listing the tree) against the free space of the cache
//!   dir's filesystem. Evictable blocks are not counted as free. A refusal downloads nothing.
//! - The worker (one task per mount) runs at mount start, when a pin is made or removed, when
//!   a change at or under a pinned item arrives from the event stream or is made through the
//!   mount (an upload landed, a rename, a delete; bursts coalesce into one run), a minute
//!   after a run that left something missing, or as soon as Box is back if it could not be
//!   reached (no run starts while it cannot). A run walks each
//!   pinned tree through the listing cache (listings fetched at idle priority), pins each
//!   file's current content in the block cache and downloads its missing blocks, a few at a
//!   time, at idle priority, through the shared downloads registry (so a reader of the same
//!   block shares the download). Content no pin covers any more (unpinned, deleted, moved out,
//!   an older version) is unpinned at the end of a run that walked every pin while no pin was
//!   made or removed; it stays cached as ordinary, evictable blocks.
//! - A pinned item that Box no longer has (deleted, trashed) loses its pin. One moved
//!   elsewhere is followed while the mount runs (its inode), and found again at the next mount
//!   where it was last seen.
//!
//! Invariants: nothing is downloaded for a pin before its room was checked; a file's content
//! is pinned in the cache before its first block is downloaded, so no block of it is evicted
//! on arrival; no file is held in memory (blocks stream into cache files).

use super::dotbox::is_virtual;
use super::error::{VfsError, VfsResult};
use super::fs::{content_version, Fs, PINNED};
use super::meta::inode::{Ino, Node, NodeKind, ROOT_INO};
use super::read::blocks::{BlockKey, ContentKey};
use super::read::downloads::{wait, Slot, Urgency};
use super::read::pins::{Pin, PinError, PinInfo, PinKind, PinProgress, PinState};
use super::remote::Remote;
use boxfs_api::model::Item;
use boxfs_api::{ApiError, Fetched};
use futures_util::{FutureExt, StreamExt};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// How long the worker waits after a wake-up for more, so that a burst makes one run.
const COALESCE: Duration = Duration::from_millis(300);
/// How long after a run that left something missing (a failed download) the next one starts.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Blocks the worker downloads at once (of one file or several).
const BLOCKS_AT_ONCE: usize = 4;
/// Parent links followed at most looking for a pinned folder (a guard, deeper than any tree).
const MAX_DEPTH: usize = 4096;

/// What pinning says of an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinMark {
    /// The item is pinned itself.
    Own,
    /// A folder above it is pinned.
    Inherited(Pin),
}

fn pin_kind(kind: NodeKind) -> Option<PinKind> {
    match kind {
        NodeKind::File => Some(PinKind::File),
        NodeKind::Dir => Some(PinKind::Folder),
        NodeKind::Link => None,
    }
}

fn node_kind(kind: PinKind) -> NodeKind {
    match kind {
        PinKind::File => NodeKind::File,
        PinKind::Folder => NodeKind::Dir,
    }
}

/// Resolves when Box, unreachable now, can be reached again (never while it can be).
async fn back_online(remote: &dyn Remote) {
    if remote.connection().is_online() {
        std::future::pending::<()>().await;
    }
    remote.until_online().await;
}

/// A path in the mount (relative to its root) for messages: the root is `/`.
fn shown(path: String) -> String {
    match path.is_empty() {
        true => "/".into(),
        false => path,
    }
}

/// Bytes free for an unprivileged user on the filesystem holding `dir`.
fn free_space(dir: &std::path::Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

impl Fs {
    /// Starts the pin worker (see the module doc); it runs at once if anything is pinned and
    /// ends once the filesystem is gone.
    pub fn start_pinning(self: &Arc<Self>) {
        let (pins, me, remote) = (self.pins().clone(), Arc::downgrade(self), self.remote().idle());
        if !pins.is_empty() {
            pins.wake();
        }
        self.runtime().spawn(async move {
            let mut missing = false;
            loop {
                let woken = tokio::select! {
                    woken = tokio::time::timeout(RETRY_AFTER, pins.woken()) => woken.is_ok(),
                    () = back_online(&*remote), if missing => true,
                };
                if me.strong_count() == 0 {
                    return;
                }
                if !woken && !missing {
                    continue;
                }
                remote.until_online().await; // nothing can be fetched meanwhile
                tokio::time::sleep(COALESCE).await;
                let _ = pins.woken().now_or_never(); // wake-ups during the pause: this run
                let Some(fs) = me.upgrade() else { return };
                missing = fs.run_pins().await;
            }
        });
    }

    /// What pinning says of `ino`: pinned itself, under a pinned folder, or neither.
    pub fn pin_mark(&self, ino: Ino) -> Option<PinMark> {
        if is_virtual(ino) || self.pins().is_empty() {
            return None;
        }
        let mut at = ino;
        for _ in 0..MAX_DEPTH {
            let node = self.inodes().get(at)?;
            if let Some(pin) = pin_kind(node.kind).and_then(|k| self.pins().get(k, &node.box_id)) {
                return Some(if at == ino { PinMark::Own } else { PinMark::Inherited(pin) });
            }
            if at == ROOT_INO {
                return None;
            }
            at = node.parent;
        }
        None
    }

    /// `user.boxfs.pinned`: `1` for a pinned item, `inherited` for one under a pinned folder.
    pub fn pinned_xattr(&self, ino: Ino) -> VfsResult<Vec<u8>> {
        match self.pin_mark(ino) {
            Some(PinMark::Own) => Ok(b"1".to_vec()),
            Some(PinMark::Inherited(_)) => Ok(b"inherited".to_vec()),
            None => Err(VfsError::NoAttr),
        }
    }

    /// The pinning attribute's name if `node` has it (for listxattr).
    pub(super) fn pin_xattr_name(&self, node: &Node) -> Option<&'static str> {
        self.pin_mark(node.ino).map(|_| PINNED)
    }

    /// Sets `user.boxfs.pinned`: pins the item (see [`Fs::pin`]); a refusal for room is
    /// `ENOSPC`, with one log line saying why.
    pub async fn set_pinned_xattr(&self, ino: Ino, value: &[u8]) -> VfsResult<()> {
        let value = std::str::from_utf8(value).map_err(|_| VfsError::Invalid)?;
        if value.trim_end_matches(['\n', '\0']) != "1" {
            return Err(VfsError::Invalid);
        }
        match self.pin(ino).await {
            Err(VfsError::Pin(e @ PinError::NoRoom { .. })) => {
                tracing::warn!("{e}");
                Err(VfsError::Pin(e))
            }
            other => other.map(drop),
        }
    }

    /// The path of `ino` in the mount, relative to its root (as far as the inode table knows),
    /// for messages: the root is `/`.
    fn shown_path(&self, ino: Ino) -> String {
        shown(self.path_in_mount(ino))
    }

    /// The path of `ino` in the mount, relative to its root (as far as the inode table knows;
    /// empty for the root).
    pub fn path_in_mount(&self, ino: Ino) -> String {
        let mut parts = Vec::new();
        let mut at = ino;
        for _ in 0..MAX_DEPTH {
            if at == ROOT_INO {
                break;
            }
            let Some(node) = self.inodes().get(at) else { break };
            parts.push(node.name.to_string());
            at = node.parent;
        }
        parts.reverse();
        parts.join("/")
    }

    /// Pins a file or folder (everything below it, now and later): checks that its content
    /// fits on the cache disk, records the pin and wakes the worker. False if it was pinned
    /// already.
    pub async fn pin(&self, ino: Ino) -> VfsResult<bool> {
        if is_virtual(ino) {
            return Err(VfsError::NotSupported);
        }
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        let (path, shown) = (self.path_in_mount(ino), self.shown_path(ino));
        let kind = pin_kind(node.kind).ok_or_else(|| PinError::NotPinnable(shown.clone()))?;
        if node.box_id.starts_with("local:") {
            return Err(VfsError::NotInBoxYet);
        }
        if self.pins().get(kind, &node.box_id).is_some() {
            return Ok(false);
        }
        self.check_room(ino, &shown).await?;
        let added = self.pins().add(Pin { id: node.box_id.clone(), kind, path }).map_err(PinError::Io)?;
        tracing::info!(path = %shown, "pinned");
        self.pins().wake();
        Ok(added)
    }

    /// Unpins an item pinned itself: its content becomes ordinary cache at the worker's next
    /// run. An item only under a pinned folder cannot be unpinned on its own.
    pub async fn unpin(&self, ino: Ino) -> VfsResult<()> {
        let path = self.shown_path(ino);
        match self.pin_mark(ino) {
            Some(PinMark::Own) => {}
            Some(PinMark::Inherited(folder)) => {
                return Err(PinError::Inherited { path, folder: shown(folder.path) }.into());
            }
            None => return Err(PinError::NotPinned(path).into()),
        }
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        let kind = pin_kind(node.kind).ok_or_else(|| PinError::NotPinned(path.clone()))?;
        self.pins().remove(kind, &node.box_id).map_err(PinError::Io)?;
        tracing::info!(path = %path, "unpinned");
        self.pins().wake();
        Ok(())
    }

    /// Every pin with its progress.
    pub fn pins_report(&self) -> Vec<PinInfo> {
        self.pins().report()
    }

    /// The progress of the pin of `ino` (pinned itself).
    #[cfg(test)]
    pub fn pin_progress(&self, ino: Ino) -> Option<PinProgress> {
        self.pin_info(ino).map(|i| i.progress)
    }

    /// The pin of `ino` (pinned itself), with its progress.
    pub fn pin_info(&self, ino: Ino) -> Option<PinInfo> {
        let node = self.inodes().get(ino)?;
        self.pins().info(pin_kind(node.kind)?, &node.box_id)
    }

    /// Something changed at or under one of `inos` (an event; an upload that landed, a rename
    /// or a delete made here): the worker runs if that is pinned or under a pinned folder.
    pub(super) fn pins_touched(&self, inos: &[Ino]) {
        if inos.iter().any(|&ino| self.pin_mark(ino).is_some()) {
            self.pins().wake();
        }
    }

    /// `Err(NoRoom)` unless what pinning `ino` still needs fits in the cache disk's free space.
    async fn check_room(&self, ino: Ino, path: &str) -> VfsResult<()> {
        let dir = self.blocks().dir().to_path_buf();
        let free = free_space(&dir)?;
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        // Box's size of a folder is everything in it (asked afresh: changes below a folder
        // do not change what the mount knows of it): if that fits, what is missing does.
        let size = match node.kind {
            NodeKind::Dir => match self.remote().get_folder(&node.box_id, None).await? {
                Fetched::Modified(folder) => folder.common.size,
                Fetched::NotModified => node.meta.size,
            },
            _ => node.meta.size,
        };
        if size <= free {
            return Ok(());
        }
        // Someone waits for the answer: listed at the priority of a `ls`.
        let files = self.pinned_files(ino, self.remote()).await?;
        let need: u64 = files.iter().map(|f| f.meta.size.saturating_sub(self.cached_bytes(f))).sum();
        if need > free {
            return Err(PinError::NoRoom { path: path.to_string(), need, free, dir }.into());
        }
        Ok(())
    }

    /// Bytes of the file's current content in the block cache.
    fn cached_bytes(&self, file: &Node) -> u64 {
        let key = ContentKey { file_id: file.box_id.clone(), version: content_version(file) };
        let blocks = file.meta.size.div_ceil(self.blocks().block_size());
        (0..blocks).filter_map(|i| self.blocks().cached_len(&key.block(i))).sum()
    }

    /// The files in Box at or under `ino` (a file: itself), listed through `remote` where the
    /// listing cache has no fresh listing. Web links and files not in Box yet are left out.
    async fn pinned_files(&self, ino: Ino, remote: &dyn Remote) -> VfsResult<Vec<Node>> {
        let top = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        match top.kind {
            NodeKind::File => return Ok(vec![top]),
            NodeKind::Link => return Ok(Vec::new()),
            NodeKind::Dir => {}
        }
        let mut files = Vec::new();
        let mut folders = VecDeque::from([ino]);
        while let Some(dir) = folders.pop_front() {
            let listing = self.listing_via(dir, remote).await?;
            for e in &listing.entries {
                match e.kind {
                    NodeKind::Dir => folders.push_back(e.ino),
                    NodeKind::File => {
                        files.extend(self.inodes().get(e.ino).filter(|n| !n.box_id.starts_with("local:")));
                    }
                    NodeKind::Link => {}
                }
            }
        }
        Ok(files)
    }

    /// One run of the worker over every pin; true if something is left missing (a download
    /// or a walk failed).
    async fn run_pins(&self) -> bool {
        let idle = self.remote().idle();
        let mut wanted = HashSet::new();
        let (mut every_walk, mut missing) = (true, false);
        let (pins, generation) = self.pins().all();
        for pin in pins {
            match self.run_pin(&pin, &*idle, &mut wanted).await {
                Ok(complete) => missing |= !complete,
                Err(reason) => {
                    let before = self.pin_progress_of(&pin);
                    // Once per reason, not once a minute while it lasts.
                    if before.state != PinState::Failed(reason.clone()) {
                        tracing::warn!(path = %pin.path, %reason, "cannot keep a pinned item on this device");
                    }
                    let failed = PinProgress { state: PinState::Failed(reason), ..before };
                    self.pins().set_progress(pin.kind, &pin.id, failed);
                    (every_walk, missing) = (false, true);
                }
            }
        }
        // A pin made or removed meanwhile is not in `wanted`: the next run (woken by that
        // change) decides on what to unpin.
        if every_walk && self.pins().generation() == generation {
            if let Err(e) = self.blocks().unpin_unless(|c| wanted.contains(c)) {
                tracing::warn!(error = %e, "could not save the pinned contents");
            }
        }
        missing
    }

    fn pin_progress_of(&self, pin: &Pin) -> PinProgress {
        self.pins().progress(pin.kind, &pin.id).unwrap_or_else(PinProgress::starting)
    }

    /// Keeps one pin's content: finds the item, lists its files (their contents go in
    /// `wanted`), pins their contents and downloads the missing blocks. `Ok(false)` when some
    /// download failed (the pin's state says which); `Err` when the item or its tree could not
    /// be walked.
    async fn run_pin(&self, pin: &Pin, idle: &dyn Remote, wanted: &mut HashSet<ContentKey>) -> Result<bool, String> {
        let Some(ino) = self.find_pinned(pin, idle).await? else { return Ok(true) };
        self.pins().set_path(pin.kind, &pin.id, &self.path_in_mount(ino));
        let files = self.pinned_files(ino, idle).await.map_err(|e| e.to_string())?;
        let keys: Vec<ContentKey> =
            files.iter().map(|f| ContentKey { file_id: f.box_id.clone(), version: content_version(f) }).collect();
        wanted.extend(keys.iter().cloned());
        self.blocks().pin_all(&keys).map_err(|e| format!("the block cache: {e}"))?;
        let mut progress = PinProgress {
            files_present: 0,
            files_total: files.len() as u64,
            bytes_present: 0,
            bytes_total: files.iter().map(|f| f.meta.size).sum(),
            state: PinState::Downloading,
        };
        // Every missing block of every file, as (file, block, length).
        let block_size = self.blocks().block_size();
        let mut missing = vec![0u64; files.len()];
        let mut jobs = Vec::new();
        for (at, (file, key)) in files.iter().zip(&keys).enumerate() {
            let size = file.meta.size;
            for index in 0..size.div_ceil(block_size) {
                let (block, len) = (key.block(index), block_size.min(size - index * block_size));
                if self.blocks().contains(&block) {
                    progress.bytes_present += len;
                } else {
                    missing[at] += 1;
                    jobs.push((at, block, len));
                }
            }
            progress.files_present += u64::from(missing[at] == 0);
        }
        self.pins().set_progress(pin.kind, &pin.id, progress.clone());
        let fetches = jobs.into_iter().map(|(at, block, len)| self.keep_block(block, len).map(move |r| (at, len, r)));
        let mut done = futures_util::stream::iter(fetches).buffer_unordered(BLOCKS_AT_ONCE);
        let mut failure: Option<String> = None;
        let mut failed = vec![false; files.len()];
        while let Some((at, len, result)) = done.next().await {
            match result {
                Ok(()) => {
                    progress.bytes_present += len;
                    missing[at] -= 1;
                    progress.files_present += u64::from(missing[at] == 0 && !failed[at]);
                }
                Err(e) => {
                    tracing::debug!(file = %files[at].name, error = %e, "a pinned file's download failed");
                    failed[at] = true;
                    failure.get_or_insert(format!("{}: {e}", files[at].name));
                }
            }
            self.pins().set_progress(pin.kind, &pin.id, progress.clone());
        }
        progress.state = match &failure {
            None => PinState::Complete,
            Some(why) => PinState::Failed(why.clone()),
        };
        self.pins().set_progress(pin.kind, &pin.id, progress);
        Ok(failure.is_none())
    }

    /// The inode of a pinned item: where the mount has it, else where it was last seen. A pin
    /// of an item Box no longer has is removed (`Ok(None)`).
    async fn find_pinned(&self, pin: &Pin, idle: &dyn Remote) -> Result<Option<Ino>, String> {
        let fetched = match pin.kind {
            PinKind::File => idle.get_file(&pin.id, None).await.map(|f| f.map(Item::File)),
            PinKind::Folder => idle.get_folder(&pin.id, None).await.map(|f| f.map(Item::Folder)),
        };
        let gone = match &fetched {
            Ok(Fetched::Modified(item)) => matches!(item.common().item_status.as_deref(), Some("trashed" | "deleted")),
            Ok(Fetched::NotModified) => false,
            Err(e) => matches!(e.root(), ApiError::NotFound { .. }),
        };
        if gone {
            tracing::info!(path = %pin.path, "a pinned item is gone from Box: unpinned");
            let _ = self.pins().remove(pin.kind, &pin.id);
            return Ok(None);
        }
        if let Err(e) = fetched {
            return Err(e.to_string());
        }
        if let Some(node) = self.inodes().find(node_kind(pin.kind), &pin.id) {
            return Ok(Some(node.ino));
        }
        match self.resolve(std::path::Path::new(&pin.path)).await {
            Ok(ino) if self.inodes().get(ino).is_some_and(|n| n.box_id == pin.id) => Ok(Some(ino)),
            _ => Err(format!("not found at {} any more (moved?): pin it again where it is now", pin.path)),
        }
    }

    /// Downloads one block into the cache at idle priority (or joins its download under way).
    async fn keep_block(&self, key: BlockKey, len: u64) -> Result<(), String> {
        let rx = match self.downloads().join_or_start(&key, len, Urgency::Pin) {
            Slot::Cached => return Ok(()),
            Slot::Pending { rx, .. } => rx,
        };
        match wait(rx).await {
            Some(Ok(_)) if self.blocks().contains(&key) => Ok(()),
            Some(Ok(_)) => Err("the file is shorter than Box said; it is read again at the next run".into()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("the download ended without an answer".into()),
        }
    }
}
