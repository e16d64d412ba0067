//! Writing through the mount: create, open for write (staging the file), write, truncate,
//! utimens, and closing (which hands the file to the write-back queue, `writeback.rs`).
//! Directory operations (mkdir, rmdir, unlink, rename) are single Box calls applied to the
//! caches; on a file whose upload is pending and that is not in Box yet, they act on the
//! journal only.

use super::error::{VfsError, VfsResult};
use super::fs::{Fs, Handle};
use super::inode::{Ino, Meta, NodeKind};
use super::journal::Record;
use super::listings::DirEntry;
use super::staging::{check_name, nanos, StageState, Staged};
use super::Attr;
use crate::api::model::Item;
use crate::direct_io::DirectFile;
use std::sync::Arc;
use std::time::SystemTime;

fn random_key() -> String {
    let mut b = [0u8; 12];
    rand::fill(&mut b[..]);
    hex::encode(b)
}

impl Fs {
    fn staged(&self, ino: Ino) -> Option<Arc<Staged>> {
        self.staged_map().get(&ino).cloned()
    }

    /// Fails with `EEXIST` when `name` is taken in `parent`, case-insensitively (Box's rule).
    async fn check_free(&self, parent: Ino, name: &str, except: Option<Ino>) -> VfsResult<()> {
        check_name(name)?;
        let listing = self.listing(parent).await?;
        match listing.find_folded(name) {
            Some(e) if Some(e.ino) != except => Err(VfsError::Exists),
            _ => Ok(()),
        }
    }

    fn box_id_of_dir(&self, ino: Ino) -> VfsResult<String> {
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        match node.kind {
            NodeKind::Dir => Ok(node.box_id),
            _ => Err(VfsError::NotDir),
        }
    }

    /// Stages `ino` (once): a journal record and a data file holding its full content.
    async fn stage(&self, ino: Ino, truncate: bool) -> VfsResult<Arc<Staged>> {
        if let Some(s) = self.staged(ino) {
            if truncate {
                s.truncate(0)?;
            }
            return Ok(s);
        }
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        if node.kind != NodeKind::File {
            return Err(if node.kind == NodeKind::Dir { VfsError::IsDir } else { VfsError::ReadOnly });
        }
        let key = random_key();
        let file = self.journal().create_data(&key)?;
        let record = Record {
            base_id: Some(node.box_id.clone()),
            base_etag: node.meta.etag.clone(),
            ..Record::new(key.clone(), self.box_id_of_dir(node.parent)?, node.name.clone(), nanos(node.meta.mtime))
        };
        let size = if truncate { 0 } else { node.meta.size };
        if size > 0 {
            self.copy_remote_content(&node.box_id, &node.content_version(), size, &file).await?;
        }
        self.journal().save(&record)?;
        let state = StageState::new(record, node.parent, size, node.meta.mtime);
        let staged = Arc::new(Staged::new(ino, file, state));
        Ok(self.staged_map().entry(ino).or_insert(staged).clone())
    }

    /// Fills a staging file with a file's current content, through the block cache.
    async fn copy_remote_content(&self, box_id: &str, version: &str, size: u64, out: &DirectFile) -> VfsResult<()> {
        let reader = self.reader_for(box_id, version, size);
        let mut offset = 0u64;
        while offset < size {
            let chunk = reader.read(offset, 1 << 20).await?;
            if chunk.is_empty() {
                break;
            }
            out.write_all_at(&chunk, offset)?;
            offset += chunk.len() as u64;
        }
        Ok(())
    }

    /// `create`: a new, empty local file that shows at once and uploads on close.
    pub async fn create(&self, parent: Ino, name: &str) -> VfsResult<(Attr, u64)> {
        self.check_free(parent, name, None).await?;
        let key = random_key();
        let file = self.journal().create_data(&key)?;
        let now = SystemTime::now();
        let record = Record::new(key.clone(), self.box_id_of_dir(parent)?, name.to_string(), nanos(now));
        self.journal().save(&record)?;
        let node = self.inodes().insert_local(parent, name, &key, Meta::local(now));
        let state = StageState { generation: 1, writers: 1, ..StageState::new(record, parent, 0, now) };
        let staged = Arc::new(Staged::new(node.ino, file, state));
        self.staged_map().insert(node.ino, staged.clone());
        self.edit_listing(parent, |l| {
            l.insert(DirEntry { ino: node.ino, kind: NodeKind::File, name: name.into() });
        })
        .await;
        self.inodes().add_lookup(node.ino);
        let fh = self.add_handle(Handle::Write(staged));
        Ok((self.attr_of(node.ino)?, fh))
    }

    /// Opens for writing: stages the file (fetching its content unless truncated).
    pub async fn open_write(&self, ino: Ino, truncate: bool) -> VfsResult<u64> {
        let staged = self.stage(ino, truncate).await?;
        staged.lock().writers += 1;
        Ok(self.add_handle(Handle::Write(staged)))
    }

    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> VfsResult<u32> {
        match self.handle(fh)? {
            Handle::Write(s) => s.write_at(offset, data),
            _ => Err(VfsError::BadHandle),
        }
    }

    /// `fallocate`: plain allocation (which may grow the file) and `FALLOC_FL_KEEP_SIZE`;
    /// punching holes, zeroing, collapsing and inserting ranges are `EOPNOTSUPP`.
    pub fn fallocate(&self, fh: u64, offset: u64, len: u64, mode: i32) -> VfsResult<()> {
        let Handle::Write(s) = self.handle(fh)? else { return Err(VfsError::BadHandle) };
        match mode {
            0 => s.allocate(offset, len, false),
            libc::FALLOC_FL_KEEP_SIZE => s.allocate(offset, len, true),
            _ => Err(VfsError::NotSupported),
        }
    }

    /// `setattr`: size (truncate) and mtime stage the file; a directory's mtime, which Box
    /// cannot store, is kept by the mount (so that `rsync -a` finds its directories up to
    /// date); mode and owner are accepted and ignored (Box has neither).
    pub async fn setattr(&self, ino: Ino, size: Option<u64>, mtime: Option<SystemTime>) -> VfsResult<Attr> {
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        if let (NodeKind::Dir, Some(t)) = (node.kind, mtime) {
            self.inodes().set_mtime(ino, t);
        }
        if node.kind == NodeKind::File && (size.is_some() || mtime.is_some()) {
            let staged = self.stage(ino, size == Some(0)).await?;
            if let Some(n) = size {
                staged.truncate(n)?;
            }
            if let Some(t) = mtime {
                staged.set_mtime(t);
            }
            self.schedule_if_idle(&staged);
        }
        self.attr_of(ino)
    }

    /// A write handle closed: the upload is queued (after the coalescing delay).
    pub fn release_write(&self, staged: &Arc<Staged>) {
        {
            let mut st = staged.lock();
            st.writers = st.writers.saturating_sub(1);
        }
        self.schedule_if_idle(staged);
    }

    pub async fn mkdir(&self, parent: Ino, name: &str) -> VfsResult<Attr> {
        self.check_free(parent, name, None).await?;
        let folder = self.client().create_folder(&self.box_id_of_dir(parent)?, name).await?;
        let node = self.inodes().upsert(parent, &Item::Folder(folder));
        self.edit_listing(parent, |l| {
            l.insert(DirEntry { ino: node.ino, kind: NodeKind::Dir, name: name.into() });
        })
        .await;
        self.inodes().add_lookup(node.ino);
        self.attr_of(node.ino)
    }

    pub async fn rmdir(&self, parent: Ino, name: &str) -> VfsResult<()> {
        let entry = self.listing(parent).await?.find(name).cloned().ok_or(VfsError::NotFound)?;
        if entry.kind != NodeKind::Dir {
            return Err(VfsError::NotDir);
        }
        if !self.listing(entry.ino).await?.entries.is_empty() {
            return Err(VfsError::NotEmpty);
        }
        let node = self.inodes().get(entry.ino).ok_or(VfsError::NotFound)?;
        self.client().delete_folder(&node.box_id, false, None).await?;
        self.edit_listing(parent, |l| {
            l.remove_named(&entry.name, |x| x.ino == entry.ino);
        })
        .await;
        self.forget_listing(entry.ino).await;
        Ok(())
    }

    pub async fn unlink(&self, parent: Ino, name: &str) -> VfsResult<()> {
        let entry = self.listing(parent).await?.find(name).cloned().ok_or(VfsError::NotFound)?;
        if entry.kind == NodeKind::Dir {
            return Err(VfsError::IsDir);
        }
        let node = self.inodes().get(entry.ino).ok_or(VfsError::NotFound)?;
        let staged = self.staged_map().remove(&entry.ino);
        let only_local = staged.as_ref().is_some_and(|s| s.lock().record.base_id.is_none());
        if let Some(s) = &staged {
            let mut st = s.lock();
            st.removed = true;
            st.leave_journal(self.journal());
        }
        if !only_local {
            match node.kind {
                NodeKind::Link => self.client().delete_web_link(&node.box_id).await?,
                _ => self.client().delete_file(&node.box_id, None).await?,
            }
        }
        self.edit_listing(parent, |l| {
            l.remove_named(&entry.name, |x| x.ino == entry.ino);
        })
        .await;
        Ok(())
    }

    /// Renames within or across folders; an existing file target is replaced (it goes to the
    /// Box trash); `noreplace` makes an existing target `EEXIST`.
    pub async fn rename(
        &self,
        parent: Ino,
        name: &str,
        new_parent: Ino,
        new_name: &str,
        noreplace: bool,
    ) -> VfsResult<()> {
        let entry = self.listing(parent).await?.find(name).cloned().ok_or(VfsError::NotFound)?;
        check_name(new_name)?;
        if let Some(target) = self.listing(new_parent).await?.find(new_name).cloned() {
            if target.ino == entry.ino {
                return Ok(());
            }
            if noreplace {
                return Err(VfsError::Exists);
            }
            match (entry.kind, target.kind) {
                (NodeKind::Dir, NodeKind::Dir) => self.rmdir(new_parent, new_name).await?,
                (NodeKind::Dir, _) => return Err(VfsError::NotDir),
                (_, NodeKind::Dir) => return Err(VfsError::IsDir),
                _ => self.unlink(new_parent, new_name).await?,
            }
        }
        self.check_free(new_parent, new_name, Some(entry.ino)).await?;
        let node = self.inodes().get(entry.ino).ok_or(VfsError::NotFound)?;
        let new_parent_id = self.box_id_of_dir(new_parent)?;
        let staged = self.staged(entry.ino);
        let local_only = staged.as_ref().is_some_and(|s| s.lock().record.base_id.is_none());
        if !local_only {
            let name_arg = (new_name != name).then_some(new_name);
            let parent_arg = (new_parent != parent).then_some(new_parent_id.as_str());
            let item = match node.kind {
                NodeKind::Dir => {
                    Item::Folder(self.client().update_folder(&node.box_id, name_arg, parent_arg, None).await?)
                }
                _ => Item::File(self.client().update_file(&node.box_id, name_arg, parent_arg, None).await?),
            };
            self.inodes().upsert(new_parent, &item);
        }
        if let Some(s) = &staged {
            let mut st = s.lock();
            st.record.name = new_name.to_string();
            st.record.parent_id = new_parent_id;
            st.parent = new_parent;
            self.journal().save(&st.record)?;
        }
        self.inodes().set_location(entry.ino, new_parent, new_name);
        self.edit_listing(parent, |l| {
            l.remove_named(&entry.name, |x| x.ino == entry.ino);
        })
        .await;
        self.edit_listing(new_parent, |l| {
            l.insert(DirEntry { ino: entry.ino, kind: entry.kind, name: new_name.into() });
        })
        .await;
        Ok(())
    }
}
