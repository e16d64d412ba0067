//! `.box/` as the filesystem answers it (its state is the `dotbox` room): lookups, attributes
//! and listings of its virtual folders, reads of versions through the block cache (keyed by
//! the version, like any read), and the two changes it takes: a `rename` out of `.box/trash`
//! into the tree restores the item in Box (with the name and folder it is renamed to), and
//! `unlink`/`rmdir` in `.box/trash` purge it for good.
//!
//! Rules kept here:
//! - `.box` is in no listing of the root, and nothing under it costs an API call until someone
//!   looks inside (`.box/versions` walks the tree's cached listings; a versions folder or the
//!   trash is fetched when listed, or looked into after [`VIEW_TTL`]).
//! - Everything else under `.box` is read-only (`EROFS`); `.box` itself cannot be removed or
//!   renamed (`EPERM`), and no item called `.box` can be made at the root (`EEXIST`).
//! - A restore never replaces: a taken name is `EEXIST`. A folder comes back with everything
//!   shown inside it in `.box/trash` (what was deleted out of it, as `rm -r` does); an item of
//!   it whose name is taken meanwhile stays in the trash (logged).
//!
//! [`VIEW_TTL`]: super::dotbox::VIEW_TTL

use super::dotbox::table::{VNode, Virtual, DOT_BOX_INO, TRASH_INO, VERSIONS_INO};
use super::dotbox::trash::{TrashEntry, TrashView};
use super::dotbox::versions::{VersionEntry, VersionsView};
use super::dotbox::{is_virtual, DOT_BOX};
use super::error::{VfsError, VfsResult};
use super::fs::{Fs, Handle};
use super::meta::attr::{Attr, BLKSIZE};
use super::meta::inode::{Ino, NodeKind, ROOT_INO};
use super::meta::listings::{DirEntry, Listing};
use super::meta::names::check_name;
use super::meta::rights::Op;
use super::read::version::ContentVersion;
use boxfs_api::model::Item;
use boxfs_api::Fetched;
use std::sync::Arc;
use std::time::Instant;

/// `.box`, `.box/versions` and `.box/trash`, which need no lookup in Box.
fn fixed_child(parent: Ino, name: &str) -> Option<Ino> {
    match (parent, name) {
        (ROOT_INO, DOT_BOX) => Some(DOT_BOX_INO),
        (DOT_BOX_INO, "versions") => Some(VERSIONS_INO),
        (DOT_BOX_INO, "trash") => Some(TRASH_INO),
        _ => None,
    }
}

fn dir_entry(ino: Ino, kind: NodeKind, name: &str) -> DirEntry {
    DirEntry { ino, kind, name: name.into() }
}

impl Fs {
    /// Whether `name` in `parent` is `.box` or lies in it.
    pub(super) fn is_dot_box_entry(&self, parent: Ino, name: &str) -> bool {
        is_virtual(parent) || (parent == ROOT_INO && name == DOT_BOX)
    }

    /// `EROFS` for a new name in `.box`, `EEXIST` for `.box` at the root.
    pub(super) fn refuse_dot_box_name(&self, parent: Ino, name: &str) -> VfsResult<()> {
        match self.is_dot_box_entry(parent, name) {
            true if is_virtual(parent) => Err(VfsError::ReadOnly),
            true => Err(VfsError::Exists),
            false => Ok(()),
        }
    }

    fn vnode(&self, ino: Ino) -> VfsResult<VNode> {
        self.dot_box().table.get(ino).ok_or(VfsError::NotFound)
    }

    /// The attributes of a virtual inode: read-only, but for `.box/trash` (whose entries may be
    /// renamed out and removed) on a writable mount; a trashed file is not readable (Box does
    /// not serve its content).
    pub(super) fn virtual_attr(&self, ino: Ino) -> VfsResult<Attr> {
        let node = self.vnode(ino)?;
        let policy = &self.config().attrs;
        let changeable = if policy.read_only { 0 } else { 0o200 };
        let (kind, size, perm) = match node.what {
            Virtual::Version { size, .. } => (NodeKind::File, size, 0o444),
            Virtual::Trashed { folder: false, size, .. } => (NodeKind::File, size, changeable),
            Virtual::TrashRoot | Virtual::Trashed { folder: true, .. } => (NodeKind::Dir, 0, 0o555 | changeable),
            _ => (NodeKind::Dir, 0, 0o555),
        };
        Ok(Attr {
            ino,
            kind,
            size,
            blocks: size.div_ceil(512),
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: node.mtime,
            perm: perm & !policy.umask,
            nlink: if kind == NodeKind::Dir { 2 } else { 1 },
            uid: policy.uid,
            gid: policy.gid,
            blksize: BLKSIZE,
            special: None,
            rdev: 0,
        })
    }

    /// [`Fs::virtual_attr`] of an inode the kernel now holds one more reference to.
    pub(super) fn virtual_looked_up(&self, ino: Ino) -> VfsResult<Attr> {
        let attr = self.virtual_attr(ino)?;
        self.dot_box().table.add_lookup(ino);
        Ok(attr)
    }

    /// The folder a virtual folder's `..` is.
    pub(super) fn virtual_parent(&self, ino: Ino) -> Ino {
        self.vnode(ino).map_or(ROOT_INO, |n| n.parent)
    }

    /// A lookup in `.box` answered without waiting (`None`: call [`Fs::dot_box_lookup`]).
    pub(super) fn dot_box_lookup_cached(&self, parent: Ino, name: &str) -> Option<VfsResult<Attr>> {
        fixed_child(parent, name).map(|ino| self.virtual_looked_up(ino))
    }

    pub(super) async fn dot_box_lookup(&self, parent: Ino, name: &str) -> VfsResult<Attr> {
        let ino = match fixed_child(parent, name) {
            Some(ino) => ino,
            None => self.virtual_child(parent, name).await?,
        };
        self.virtual_looked_up(ino)
    }

    /// The inode of `name` in virtual folder `parent`.
    async fn virtual_child(&self, parent: Ino, name: &str) -> VfsResult<Ino> {
        match self.vnode(parent)?.what {
            Virtual::DotBox => Err(VfsError::NotFound),
            Virtual::VersionsRoot => self.mirror_child(parent, ROOT_INO, name).await,
            Virtual::Mirror { real, box_id } => self.mirror_child(parent, self.real_folder(real, &box_id)?, name).await,
            Virtual::Versions { box_id, .. } => {
                let entry = self.find_version(&box_id, name).await?;
                Ok(self.version_ino(parent, &box_id, &entry))
            }
            Virtual::TrashRoot => Ok(self.trashed_ino(parent, &self.find_trashed(None, name).await?)),
            Virtual::Trashed { id, folder: true, .. } => {
                Ok(self.trashed_ino(parent, &self.find_trashed(Some(&id), name).await?))
            }
            Virtual::Version { .. } | Virtual::Trashed { .. } => Err(VfsError::NotDir),
        }
    }

    /// Folder `real` of the tree (the same Box folder, `box_id`, if its inode changed).
    fn real_folder(&self, real: Ino, box_id: &str) -> VfsResult<Ino> {
        let same = self.inodes().get(real).filter(|n| n.box_id == box_id);
        let node = same.or_else(|| self.inodes().find(NodeKind::Dir, box_id)).ok_or(VfsError::NotFound)?;
        Ok(node.ino)
    }

    /// The entry of `.box/versions` for `name` in folder `real` of the tree: a folder for a
    /// folder, the folder of its versions for a file in Box (not for web links or files that
    /// are not in Box yet).
    async fn mirror_child(&self, parent: Ino, real: Ino, name: &str) -> VfsResult<Ino> {
        let listing = match self.listing(real).await {
            Err(VfsError::Denied) => return Err(VfsError::NotFound),
            other => other?,
        };
        let entry = listing.find(name).ok_or(VfsError::NotFound)?;
        self.mirror_ino(parent, entry.ino).ok_or(VfsError::NotFound)
    }

    fn mirror_ino(&self, parent: Ino, real: Ino) -> Option<Ino> {
        let node = self.inodes().get(real).filter(|n| !n.box_id.starts_with("local:"))?;
        let what = match node.kind {
            NodeKind::Dir => Virtual::Mirror { real, box_id: node.box_id },
            NodeKind::File => Virtual::Versions { real, box_id: node.box_id, name: node.name },
            NodeKind::Link => return None,
        };
        Some(self.dot_box().table.insert(parent, what, node.meta.mtime))
    }

    fn version_ino(&self, parent: Ino, file_id: &str, v: &VersionEntry) -> Ino {
        let what = Virtual::Version { file_id: file_id.into(), version_id: v.id.clone(), size: v.size };
        self.dot_box().table.insert(parent, what, v.mtime)
    }

    fn trashed_ino(&self, parent: Ino, e: &TrashEntry) -> Ino {
        let what = Virtual::Trashed { id: e.id.clone(), folder: e.folder, size: e.size };
        self.dot_box().table.insert(parent, what, e.mtime)
    }

    /// The versions of file `file_id`, fetched now unless `cached` and fresh (two calls: the
    /// file, and its older versions).
    async fn versions_view(&self, file_id: &str, cached: bool) -> VfsResult<Arc<VersionsView>> {
        if let Some(view) = self.dot_box().fresh_versions(file_id).filter(|_| cached) {
            return Ok(view);
        }
        let file = match self.remote().get_file(file_id, None).await? {
            Fetched::Modified(file) => file,
            Fetched::NotModified => return Err(VfsError::NotFound),
        };
        let older = self.remote().file_versions(file_id).await?;
        let view = Arc::new(VersionsView::new(&file, &older, Instant::now()));
        self.dot_box().set_versions(file_id, view.clone());
        Ok(view)
    }

    /// The version shown as `name` (a fresh view may predate a new version: asked again once).
    async fn find_version(&self, file_id: &str, name: &str) -> VfsResult<VersionEntry> {
        if let Some(e) = self.versions_view(file_id, true).await?.find(name) {
            return Ok(e.clone());
        }
        self.versions_view(file_id, false).await?.find(name).cloned().ok_or(VfsError::NotFound)
    }

    /// The trash, fetched now unless `cached` and fresh (one listing call per 1000 items).
    async fn trash_view(&self, cached: bool) -> VfsResult<Arc<TrashView>> {
        if let Some(view) = self.dot_box().fresh_trash().filter(|_| cached) {
            return Ok(view);
        }
        let items = self.remote().trash_items().await?;
        let view = Arc::new(TrashView::new(&items, Instant::now()));
        self.dot_box().set_trash(view.clone());
        Ok(view)
    }

    /// The trashed item shown as `name` in trashed folder `folder` (`None`: the top).
    async fn find_trashed(&self, folder: Option<&str>, name: &str) -> VfsResult<TrashEntry> {
        if let Some(e) = self.trash_view(true).await?.find(folder, name) {
            return Ok(e.clone());
        }
        self.trash_view(false).await?.find(folder, name).cloned().ok_or(VfsError::NotFound)
    }

    /// Opens a virtual folder on a snapshot of its entries: a versions folder and the top of
    /// the trash are fetched now.
    pub(super) async fn dot_box_opendir(&self, ino: Ino) -> VfsResult<u64> {
        let entries = match self.vnode(ino)?.what {
            Virtual::DotBox => {
                vec![dir_entry(VERSIONS_INO, NodeKind::Dir, "versions"), dir_entry(TRASH_INO, NodeKind::Dir, "trash")]
            }
            Virtual::VersionsRoot => self.mirror_entries(ino, ROOT_INO).await?,
            Virtual::Mirror { real, box_id } => self.mirror_entries(ino, self.real_folder(real, &box_id)?).await?,
            Virtual::Versions { box_id, .. } => {
                let view = self.versions_view(&box_id, false).await?;
                let entry = |v: &VersionEntry| dir_entry(self.version_ino(ino, &box_id, v), NodeKind::File, &v.name);
                view.entries.iter().map(entry).collect()
            }
            Virtual::TrashRoot => self.trash_entries(ino, &*self.trash_view(false).await?, None),
            Virtual::Trashed { id, folder: true, .. } => {
                self.trash_entries(ino, &*self.trash_view(true).await?, Some(&id))
            }
            Virtual::Version { .. } | Virtual::Trashed { .. } => return Err(VfsError::NotDir),
        };
        Ok(self.add_handle(Handle::Dir {
            ino,
            listing: Arc::new(Listing::from_entries(entries)),
            with_attributes: true,
        }))
    }

    async fn mirror_entries(&self, parent: Ino, real: Ino) -> VfsResult<Vec<DirEntry>> {
        let listing = self.listing(real).await?;
        let mirrored = listing
            .entries
            .iter()
            .filter_map(|e| Some(dir_entry(self.mirror_ino(parent, e.ino)?, NodeKind::Dir, &e.name)));
        Ok(mirrored.collect())
    }

    fn trash_entries(&self, parent: Ino, view: &TrashView, folder: Option<&str>) -> Vec<DirEntry> {
        let kind = |e: &TrashEntry| if e.folder { NodeKind::Dir } else { NodeKind::File };
        view.children(folder).iter().map(|e| dir_entry(self.trashed_ino(parent, e), kind(e), &e.name)).collect()
    }

    /// Opens a version for reading (through the block cache, as that version); nothing else
    /// in `.box` opens: a trashed file's content is not served (`EACCES`).
    pub(super) fn dot_box_open(&self, ino: Ino, write: bool) -> VfsResult<u64> {
        match self.vnode(ino)?.what {
            Virtual::Version { .. } if write => Err(VfsError::ReadOnly),
            Virtual::Version { file_id, version_id, size } => {
                let reader = Arc::new(self.reader_for(&file_id, &ContentVersion::Id(version_id), size));
                Ok(self.add_handle(Handle::File { ino, reader }))
            }
            Virtual::Trashed { folder: false, .. } => Err(VfsError::Denied),
            _ => Err(VfsError::IsDir),
        }
    }

    /// The trashed folder `parent` shows (`None`: the top of the trash); anything else in `.box`
    /// takes no change.
    fn trash_folder_of(&self, parent: Ino, name: &str) -> VfsResult<Option<String>> {
        if parent == ROOT_INO && name == DOT_BOX {
            return Err(VfsError::NotPermitted);
        }
        if self.config().attrs.read_only {
            return Err(VfsError::ReadOnly);
        }
        match self.vnode(parent)?.what {
            Virtual::TrashRoot => Ok(None),
            Virtual::Trashed { id, folder: true, .. } => Ok(Some(id)),
            _ => Err(VfsError::ReadOnly),
        }
    }

    /// `unlink` (`dir`: `rmdir`) of `name` in `.box`: in the trash, purges the item for good
    /// (a folder only once nothing is shown inside it, as `rmdir` wants: `rm -r` purges what
    /// is inside first).
    pub(super) async fn dot_box_remove(&self, parent: Ino, name: &str, dir: bool) -> VfsResult<()> {
        let folder = self.trash_folder_of(parent, name)?;
        let entry = self.find_trashed(folder.as_deref(), name).await?;
        match (dir, entry.folder) {
            (true, false) => return Err(VfsError::NotDir),
            (false, true) => return Err(VfsError::IsDir),
            _ => {}
        }
        let view = self.trash_view(true).await?;
        if !view.children(Some(&entry.id)).is_empty() {
            return Err(VfsError::NotEmpty);
        }
        match entry.folder {
            true => self.remote().purge_folder(&entry.id).await?,
            false => self.remote().purge_file(&entry.id).await?,
        }
        self.dot_box().set_trash(Arc::new(view.without(&entry.id)));
        Ok(())
    }

    /// `rename` of `name` in `.box`: out of the trash into a folder of the tree restores the
    /// item there as `new_name`, which must be free (`EEXIST`); anything else is refused.
    pub(super) async fn dot_box_rename(
        &self,
        parent: Ino,
        name: &str,
        new_parent: Ino,
        new_name: &str,
    ) -> VfsResult<()> {
        let folder = self.trash_folder_of(parent, name)?;
        self.refuse_dot_box_name(new_parent, new_name)?;
        check_name(new_name)?;
        let dest = self.inodes().get(new_parent).ok_or(VfsError::NotFound)?;
        if dest.kind != NodeKind::Dir {
            return Err(VfsError::NotDir);
        }
        self.check_allowed(new_parent, Op::Create).await?;
        if self.listing(new_parent).await?.find_folded(new_name).is_some() {
            return Err(VfsError::Exists);
        }
        let entry = self.find_trashed(folder.as_deref(), name).await?;
        // What shows inside a folder is known only while the folder is in the trash.
        let view = self.trash_view(true).await?;
        let (id, dest_id) = (entry.id.as_str(), Some(dest.box_id.as_str()));
        let item = match entry.folder {
            true => Item::Folder(self.remote().restore_folder(id, Some(new_name), dest_id).await?),
            false => Item::File(self.remote().restore_file(id, Some(new_name), dest_id).await?),
        };
        if entry.folder {
            self.restore_inside(&view, id).await;
        }
        self.dot_box().set_trash(Arc::new(view.without(id)));
        let node = self.inodes().upsert(new_parent, &item);
        self.forget_listing(node.ino).await;
        self.edit_listing(new_parent, |l| {
            l.insert(DirEntry { ino: node.ino, kind: node.kind, name: node.name.as_str().into() });
        })
        .await;
        Ok(())
    }

    /// Restores what the trash shows inside folder `id` (just restored), where it was: in it.
    /// An item that cannot come back (its name is taken meanwhile) stays in the trash.
    async fn restore_inside(&self, view: &TrashView, id: &str) {
        let mut folders = vec![id.to_string()];
        while let Some(folder) = folders.pop() {
            for e in view.children(Some(&folder)) {
                let restored = match e.folder {
                    true => self.remote().restore_folder(&e.id, None, None).await.map(|_| ()),
                    false => self.remote().restore_file(&e.id, None, None).await.map(|_| ()),
                };
                match restored {
                    Ok(()) if e.folder => folders.push(e.id.clone()),
                    Ok(()) => {}
                    Err(err) => tracing::warn!(item = %e.id, name = %e.name, error = %err, "left in the trash"),
                }
            }
            if let Some(node) = self.inodes().find(NodeKind::Dir, &folder) {
                self.forget_listing(node.ino).await;
            }
        }
    }
}
