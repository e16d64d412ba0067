//! Live consistency: turns Box change events into precise invalidations: the item's
//! attributes, its new parent's listing and, for moves, renames and trash, the old parent's
//! (known from the inode table); blocks of older versions are dropped. Events not newer than
//! what is cached (`sequence_id`) change nothing, which also makes echoes of our own changes,
//! duplicates and late out-of-order events harmless. A change of an item's metadata instance
//! made elsewhere (its stored POSIX attributes) is read back with one GET; the echoes of our
//! own metadata calls are recognised and cost nothing. A collaboration added, changed or
//! removed (the user's role somewhere) makes everything be asked for again: listings,
//! attributes and what the user may do with each item. A lock created or removed in Box reads
//! the file again (`box_attrs.rs`). A change at or under a pinned item wakes the pin worker
//! (`pinning.rs`), which fetches what is new. The kernel is told through a callback.

use super::fs::{content_version, Fs};
use super::meta::inode::{display_name, kind_of, Ino, Meta, NodeKind};
use super::meta::listings::DirEntry;
use super::read::version::ContentVersion;
use boxfs_api::model::{Event, Item};
use boxfs_api::{EventStream, Fetched, StreamState};
use std::sync::Arc;

/// What the kernel must forget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inval {
    /// The name `name` in directory `parent` (a dentry, positive or negative).
    Entry { parent: Ino, name: String },
    /// An inode's attributes and cached data.
    Inode(Ino),
}

impl Fs {
    /// Applies one event to the caches; returns what the kernel must forget.
    pub async fn apply_event(&self, ev: &Event) -> Vec<Inval> {
        if ev.event_type.changes_rights() {
            tracing::info!(event = %ev.event_type, "a collaboration changed: revalidating permissions");
            return self.rights_changed().await.into_iter().map(Inval::Inode).collect();
        }
        if ev.event_type.changes_metadata() {
            return self.metadata_changed(ev).await;
        }
        if let Some(invals) = self.lock_event(ev).await {
            return invals;
        }
        if !ev.event_type.changes_item() {
            return Vec::new();
        }
        let Some(item) = ev.item() else { return Vec::new() };
        let kind = kind_of(&item);
        let seq = item.common().sequence_id.as_deref().and_then(|s| s.parse::<u64>().ok());
        let existing = self.inodes().find(kind, item.id());
        if let (Some(node), Some(seq)) = (&existing, seq) {
            if node.meta.sequence_id.is_some_and(|known| known >= seq) {
                return Vec::new(); // not newer than what we have: a duplicate, a late event or our own echo
            }
        }
        let mut out = Vec::new();
        let gone =
            ev.event_type.removes_item() || matches!(item.common().item_status.as_deref(), Some("trashed" | "deleted"));
        let new_parent = item.common().parent.as_ref().and_then(|p| self.inodes().find(NodeKind::Dir, &p.id));
        let mut touched: Vec<Ino> = existing.iter().flat_map(|n| [n.ino, n.parent]).collect();
        touched.extend(new_parent.as_ref().map(|p| p.ino));
        // Listings hold names only: a content or metadata change in place leaves them valid.
        let in_place = ev.event_type.changes_in_place();
        let relocated = existing.as_ref().is_some_and(|node| {
            !in_place
                || gone
                || new_parent.as_ref().map(|p| p.ino) != Some(node.parent)
                || display_name(&item) != node.name
        });
        if let Some(node) = &existing {
            if relocated {
                self.forget_listing(node.parent).await;
            }
            out.push(Inval::Entry { parent: node.parent, name: node.name.clone() });
            out.push(Inval::Inode(node.ino));
        }
        match (gone, new_parent) {
            (false, Some(parent)) => {
                out.push(Inval::Entry { parent: parent.ino, name: display_name(&item) });
                if existing.is_some() {
                    if relocated {
                        self.forget_listing(parent.ino).await;
                    }
                    let node = self.inodes().upsert(parent.ino, &item);
                    self.drop_old_blocks(&item, &content_version(&node));
                } else {
                    self.listing_gained(parent.ino, &item).await;
                }
            }
            (_, _) => {
                if let (Some(node), Some(seq)) = (&existing, seq) {
                    self.inodes().set_sequence(node.ino, seq);
                }
            }
        }
        self.pins_touched(&touched);
        out
    }

    /// An item's metadata instance changed (its event source does not carry it). Unless it is
    /// the echo of our own call, or a change of ours is pending (which will overwrite it), the
    /// item is read again, with its metadata.
    async fn metadata_changed(&self, ev: &Event) -> Vec<Inval> {
        let Some(item) = ev.item() else { return Vec::new() };
        let Some(node) = self.inodes().find(kind_of(&item), item.id()) else { return Vec::new() };
        if self.inodes().take_echo(node.ino) || self.staged().contains(node.ino) {
            return Vec::new();
        }
        let fetched = match node.kind {
            NodeKind::File => self.remote().get_file(&node.box_id, None).await.map(|f| f.map(Item::File)),
            NodeKind::Dir => self.remote().get_folder(&node.box_id, None).await.map(|f| f.map(Item::Folder)),
            NodeKind::Link => return Vec::new(),
        };
        match fetched {
            Ok(Fetched::Modified(item)) => {
                self.inodes().refresh(node.ino, Meta::from_item(&item));
            }
            Ok(Fetched::NotModified) => {}
            Err(e) => {
                tracing::debug!(error = %e, "cannot read an item whose metadata changed; revalidating later");
                self.inodes().mark_stale(node.ino);
            }
        }
        // A file may have become a symlink (or stopped being one): the dentry goes too, and
        // the kernel's copy of the folder's entries (which holds their types).
        self.edit_listing(node.parent, |_| {}).await;
        vec![Inval::Entry { parent: node.parent, name: node.name.clone() }, Inval::Inode(node.ino)]
    }

    /// An item new to this mount appeared in `parent`: it joins the cached listing in place.
    /// A local file under that name still waiting for its first upload, or bound to the item
    /// meanwhile, is the item itself landing; any other holder of the name means the listing
    /// is out of date, and it is fetched again at next use.
    async fn listing_gained(&self, parent: Ino, item: &Item) {
        let name = display_name(item);
        let mut refetch = false;
        self.edit_listing(parent, |listing| match listing.find(&name) {
            None => {
                let (ino, kind, name) = self.inodes().upsert_entry(parent, item);
                listing.insert(DirEntry { ino, kind, name });
            }
            Some(e)
                if self.awaits_first_upload(e.ino)
                    || self.inodes().get(e.ino).is_some_and(|n| n.box_id == item.id()) => {}
            Some(_) => refetch = true,
        })
        .await;
        if refetch {
            self.forget_listing(parent).await;
        }
    }

    fn awaits_first_upload(&self, ino: Ino) -> bool {
        self.staged().get(ino).is_some_and(|s| s.lock().only_local())
    }

    fn drop_old_blocks(&self, item: &Item, keep_version: &ContentVersion) {
        if let Item::File(f) = item {
            self.blocks().invalidate_file(&f.common.id, Some(keep_version));
        }
    }

    /// After the event stream was down: forget every cached listing and revalidate every
    /// attribute at next use instead of trusting what may have changed meanwhile.
    pub async fn revalidate_all(&self) -> Vec<Inval> {
        self.forget_all_listings().await;
        self.inodes().mark_all_stale().into_iter().map(Inval::Inode).collect()
    }
}

/// Consumes the event stream for the life of the mount, applying each batch and telling the
/// kernel (through `notify`) what to forget.
pub async fn follow(fs: Arc<Fs>, mut stream: EventStream, notify: impl Fn(Inval) + Send + Sync + 'static) {
    let mut state = stream.state.clone();
    let mut was_degraded = false;
    loop {
        tokio::select! {
            batch = stream.batches.recv() => {
                let Some(batch) = batch else { return };
                for ev in &batch.events {
                    for inval in fs.apply_event(ev).await {
                        notify(inval);
                    }
                    super::telemetry::event_applied(ev);
                }
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = state.borrow_and_update().clone();
                match now {
                    StreamState::Degraded(_) => was_degraded = true,
                    StreamState::Live if was_degraded => {
                        was_degraded = false;
                        tracing::info!("event stream back: revalidating cached metadata");
                        for inval in fs.revalidate_all().await {
                            notify(inval);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
