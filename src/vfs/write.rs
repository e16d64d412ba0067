//! Writing through the mount: create, open for write (staging the file), write, truncate,
//! utimens, and closing (which hands the file to the write-back driver, `writeback.rs`).
//! Directory operations (mkdir, rmdir, unlink, rename) are single Box calls applied to the
//! caches; on a file that is not in Box yet they act on the journal only, and a file not in
//! Box yet renamed over another file becomes that file's next version (write-temp-then-rename
//! costs one upload, and the Box file keeps its id and history).
//!
//! Every operation first checks that the user's rights in Box allow it (`rights.rs`), before
//! anything is staged, queued or sent.
//!
//! A staged entry takes a new writer only while it is the file's entry in the staged map
//! (checked under the map's lock, which the driver holds to unstage a finished entry), so
//! no write ever lands in an entry that already left.

use super::error::{VfsError, VfsResult};
use super::fs::{Fs, Handle};
use super::inode::{Ino, Meta, NodeKind};
use super::journal::Record;
use super::listings::DirEntry;
use super::rights::Op;
use super::staging::{check_name, nanos, StageState, Staged};
use super::upload_state::Upload;
use super::Attr;
use crate::api::model::Item;
use crate::direct_io::DirectFile;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

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
    /// In a folder the user may not list, Box decides at upload time.
    async fn check_free(&self, parent: Ino, name: &str, except: Option<Ino>) -> VfsResult<()> {
        check_name(name)?;
        let listing = match self.listing(parent).await {
            Err(VfsError::Denied) => return Ok(()),
            other => other?,
        };
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

    /// Stages `ino` (once): a journal record and a data file holding its full content (none
    /// of it when it is to be truncated).
    async fn stage(&self, ino: Ino, truncate: bool) -> VfsResult<Arc<Staged>> {
        if let Some(s) = self.staged(ino) {
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
        // Truncated, it differs from Box's content already.
        let upload = Upload::staged(self.timing(), 0, truncate && node.meta.size > 0, Instant::now());
        let state = StageState::new(record, Some(node.parent), size, node.meta.mtime, upload);
        let staged = Arc::new(Staged::new(ino, file, state));
        let kept = self.staged_map().entry(ino).or_insert(staged.clone()).clone();
        if !Arc::ptr_eq(&kept, &staged) {
            staged.leave_journal(self.journal()); // staged twice at once: the other one stays
        }
        Ok(kept)
    }

    /// The file's staged entry (staged now if need be) with one more writer.
    async fn claim(&self, ino: Ino, truncate: bool) -> VfsResult<Arc<Staged>> {
        loop {
            let staged = self.stage(ino, truncate).await?;
            let map = self.staged_map();
            if map.get(&ino).is_some_and(|s| Arc::ptr_eq(s, &staged)) {
                staged.lock().upload.opened();
                return Ok(staged);
            }
        }
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
        self.check_allowed(parent, Op::Create).await?;
        self.check_free(parent, name, None).await?;
        let key = random_key();
        let file = self.journal().create_data(&key)?;
        let now = SystemTime::now();
        let record = Record::new(key.clone(), self.box_id_of_dir(parent)?, name.to_string(), nanos(now));
        self.journal().save(&record)?;
        let node = self.inodes().insert_local(parent, name, &key, Meta::local(now));
        let upload = Upload::staged(self.timing(), 1, true, Instant::now());
        let staged = Arc::new(Staged::new(node.ino, file, StageState::new(record, Some(parent), 0, now, upload)));
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
        self.check_allowed(ino, Op::Write).await?;
        let staged = self.claim(ino, truncate).await?;
        if truncate && staged.lock().size > 0 {
            staged.truncate(0)?;
        }
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
            self.check_allowed(ino, Op::Write).await?;
            let staged = self.claim(ino, size == Some(0)).await?;
            let changed = size.map_or(Ok(()), |n| staged.truncate(n));
            if let Some(t) = mtime {
                staged.set_mtime(t);
            }
            self.release_write(&staged);
            changed?;
        }
        self.attr_of(ino)
    }

    /// A writer let go: when it was the last, the upload is due after the write-back delay.
    /// (The journal record learns the latest mtime at the next `fsync` or when the upload
    /// starts, not at every close.)
    pub fn release_write(&self, staged: &Arc<Staged>) {
        staged.lock().upload.closed(Instant::now());
        self.kick(staged);
    }

    pub async fn mkdir(&self, parent: Ino, name: &str) -> VfsResult<Attr> {
        self.check_allowed(parent, Op::Create).await?;
        self.check_free(parent, name, None).await?;
        let folder = self.client().create_folder(&self.box_id_of_dir(parent)?, name).await?;
        let node = self.inodes().upsert(parent, &Item::Folder(folder));
        self.known_empty(node.ino).await; // its first create needs no listing call
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
        self.check_allowed(entry.ino, Op::Delete).await?;
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
        self.check_allowed(entry.ino, Op::Delete).await?;
        let node = self.inodes().get(entry.ino).ok_or(VfsError::NotFound)?;
        let staged = self.staged_map().remove(&entry.ino);
        let only_local = staged.as_ref().is_some_and(|s| s.lock().only_local());
        if let Some(s) = &staged {
            s.lock().upload.remove();
            self.kick(s);
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
    /// Box trash), unless the renamed file is not in Box yet: then it becomes the target's
    /// next version (see [`Fs::take_over`]). `noreplace` makes an existing target `EEXIST`.
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
        if new_name != name {
            self.check_allowed(entry.ino, Op::Rename).await?;
        }
        if new_parent != parent {
            self.check_allowed(entry.ino, Op::Delete).await?;
            self.check_allowed(new_parent, Op::Create).await?;
        }
        let mut took_over = false;
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
                (NodeKind::File, NodeKind::File)
                    if self.check_allowed(target.ino, Op::Write).await.is_ok()
                        && self.take_over(entry.ino, target.ino) =>
                {
                    took_over = true;
                    self.edit_listing(new_parent, |l| {
                        l.remove_named(&target.name, |x| x.ino == target.ino);
                    })
                    .await;
                }
                _ => self.unlink(new_parent, new_name).await?,
            }
        }
        self.check_free(new_parent, new_name, Some(entry.ino)).await?;
        let node = self.inodes().get(entry.ino).ok_or(VfsError::NotFound)?;
        let new_parent_id = self.box_id_of_dir(new_parent)?;
        let staged = self.staged(entry.ino);
        let in_box = !took_over && !staged.as_ref().is_some_and(|s| s.lock().only_local());
        if in_box {
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
            {
                let mut st = s.lock();
                let r = st.edit_record();
                (r.name, r.parent_id) = (new_name.to_string(), new_parent_id);
                st.parent = Some(new_parent);
            }
            s.save_record(self.journal(), false)?;
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

    /// A file not in Box yet, whose upload has not started, renamed over file `target`
    /// (write-temp-then-rename: editors, rsync, git, `sed -i`) becomes `target`'s next version
    /// instead of a new file: no delete, no upload of its own beyond that version, and the Box
    /// file keeps its id, shared links and history. `target`'s own pending change is dropped
    /// (or, when its upload runs, this one goes up after it, on what it landed). False when
    /// the rename must go the plain way (the file is in Box, or its upload runs).
    fn take_over(&self, ino: Ino, target: Ino) -> bool {
        let Some(target_node) = self.inodes().get(target) else { return false };
        let mut map = self.staged_map();
        let Some(staged) = map.get(&ino).cloned() else { return false };
        let mut st = staged.lock();
        if !st.only_local() || st.upload.in_flight() {
            return false;
        }
        let replaced = map.remove(&target);
        let (base_id, base_etag) = match &replaced {
            Some(old) => {
                let mut old_st = old.lock();
                old_st.upload.remove();
                if old_st.upload.in_flight() {
                    old_st.replaced_by = Some(Arc::downgrade(&staged));
                    st.after = Some(old.clone());
                }
                (old_st.record().base_id.clone(), old_st.record().base_etag.clone())
            }
            None => (Some(target_node.box_id.clone()), target_node.meta.etag.clone()),
        };
        if let Some(id) = &base_id {
            self.inodes().rebind_file(ino, id);
        }
        let r = st.edit_record();
        (r.base_id, r.base_etag) = (base_id, base_etag);
        drop((st, map));
        if let Some(old) = replaced {
            self.kick(&old);
        }
        true
    }
}
