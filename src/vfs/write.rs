//! Writing through the mount: create, open for write, write, truncate, utimens, and the
//! write-back queue (close schedules an upload after a short delay that coalesces re-opens;
//! `fsync` waits for the commit; unmount drains). Directory operations (mkdir, rmdir, unlink,
//! rename) are single Box calls applied to the caches. Conflicts (412) keep both versions.

use super::error::{VfsError, VfsResult};
use super::fs::{DirEntry, Fs, Handle};
use super::inode::{Ino, Meta, NodeKind};
use super::journal::Record;
use super::staging::{check_name, from_nanos, nanos, rfc3339, Commit, StageState, Staged};
use super::Attr;
use crate::api::model::{File, Item};
use crate::api::{ApiError, UploadOptions, UploadTarget};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Longest wait between attempts of an upload that keeps failing transiently.
const MAX_UPLOAD_BACKOFF: Duration = Duration::from_secs(60);

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
        let lower = name.to_lowercase();
        match listing.entries.iter().find(|e| e.name.to_lowercase() == lower && Some(e.ino) != except) {
            Some(_) => Err(VfsError::Exists),
            None => Ok(()),
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
            key: key.clone(),
            parent_id: self.box_id_of_dir(node.parent)?,
            name: node.name.clone(),
            base_id: Some(node.box_id.clone()),
            base_etag: node.meta.etag.clone(),
            mtime_ns: nanos(node.meta.mtime),
            failed: None,
        };
        let size = if truncate { 0 } else { node.meta.size };
        if size > 0 {
            self.copy_remote_content(&node.box_id, &node.content_version(), size, &file).await?;
        }
        self.journal().save(&record)?;
        let state = StageState {
            record,
            parent: node.parent,
            size,
            mtime: node.meta.mtime,
            generation: 0,
            writers: 0,
            scheduled: false,
            removed: false,
        };
        let staged = Arc::new(Staged::new(ino, file, state));
        Ok(self.staged_map().entry(ino).or_insert(staged).clone())
    }

    /// Fills a staging file with a file's current content, through the block cache.
    async fn copy_remote_content(&self, box_id: &str, version: &str, size: u64, out: &std::fs::File) -> VfsResult<()> {
        use std::os::unix::fs::FileExt;
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
        let record = Record {
            key: key.clone(),
            parent_id: self.box_id_of_dir(parent)?,
            name: name.to_string(),
            base_id: None,
            base_etag: None,
            mtime_ns: nanos(now),
            failed: None,
        };
        self.journal().save(&record)?;
        let node = self.inodes().insert_local(parent, name, &key, Meta::local(now));
        let state = StageState {
            record,
            parent,
            size: 0,
            mtime: now,
            generation: 1,
            writers: 1,
            scheduled: false,
            removed: false,
        };
        let staged = Arc::new(Staged::new(node.ino, file, state));
        self.staged_map().insert(node.ino, staged.clone());
        self.edit_listing(parent, |entries| {
            entries.push(DirEntry { ino: node.ino, kind: NodeKind::File, name: name.into() })
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

    /// `setattr`: size (truncate) and mtime stage the file; mode and owner are accepted and
    /// ignored (Box has neither).
    pub async fn setattr(&self, ino: Ino, size: Option<u64>, mtime: Option<SystemTime>) -> VfsResult<Attr> {
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
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

    fn schedule_if_idle(&self, staged: &Arc<Staged>) {
        let start = {
            let mut st = staged.lock();
            if st.writers == 0 {
                // The journal keeps the latest mtime too, for a recovery after a crash.
                st.record.mtime_ns = nanos(st.mtime);
                if let Err(e) = self.journal().save(&st.record) {
                    tracing::warn!(error = %e, "cannot update the journal record");
                }
            }
            let start = st.writers == 0 && !st.scheduled;
            st.scheduled |= start;
            start
        };
        if start {
            let Some(fs) = self.self_arc() else { return };
            let staged = staged.clone();
            let delay = fs.config().writeback_delay;
            self.runtime().spawn(async move { fs.upload_loop(staged, delay).await });
        }
    }

    /// `fsync`: returns once the file's content is in Box (or with the error that stops it).
    pub async fn fsync(&self, ino: Ino) -> VfsResult<()> {
        let Some(staged) = self.staged(ino) else { return Ok(()) };
        let generation = staged.lock().generation;
        self.upload_now(&staged);
        staged.wait_committed(generation).await
    }

    fn upload_now(&self, staged: &Arc<Staged>) {
        let start = {
            let mut st = staged.lock();
            let start = !st.scheduled;
            st.scheduled = true;
            start
        };
        if start {
            if let Some(fs) = self.self_arc() {
                let staged = staged.clone();
                self.runtime().spawn(async move { fs.upload_loop(staged, Duration::ZERO).await });
            }
        }
    }

    /// Uploads until what is in Box is the latest staged content, then unstages.
    async fn upload_loop(self: Arc<Self>, staged: Arc<Staged>, delay: Duration) {
        tokio::time::sleep(delay).await;
        let _slot = self.upload_slots().acquire().await;
        let mut backoff = Duration::from_millis(500);
        loop {
            let (generation, record) = {
                let st = staged.lock();
                if st.removed {
                    staged.commit.send_replace(Commit::Done(st.generation));
                    return;
                }
                (st.generation, Record { mtime_ns: nanos(st.mtime), ..st.record.clone() })
            };
            match self.upload_record(&record).await {
                Ok(file) => {
                    let Some(file) = self.follow_local_changes(&staged, &record, file).await else { return };
                    self.keep_listed(&staged).await;
                    if self.committed(&staged, generation, &file) {
                        return;
                    }
                }
                Err(e) if e.root().is_transient() || matches!(e.root(), ApiError::RetriesExhausted { .. }) => {
                    tracing::warn!(name = %record.name, error = %e, ?backoff, "upload failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_UPLOAD_BACKOFF);
                }
                Err(ApiError::PreconditionFailed) => {
                    self.keep_both(&staged, generation, &record).await;
                    return;
                }
                Err(e) => {
                    let msg = format!("{}: {e}", record.name);
                    tracing::error!(error = %msg, "upload failed for good; the data stays in the journal");
                    let mut st = staged.lock();
                    st.record.failed = Some(e.to_string());
                    st.scheduled = false;
                    let _ = self.journal().save(&st.record);
                    staged.commit.send_replace(Commit::Failed(generation, msg));
                    return;
                }
            }
        }
    }

    /// The file was unlinked or renamed while its upload ran: apply that to what landed.
    /// `None` when nothing more is to be done (it was unlinked).
    async fn follow_local_changes(&self, staged: &Arc<Staged>, sent: &Record, file: File) -> Option<File> {
        let (removed, name, parent_id) = {
            let st = staged.lock();
            (st.removed, st.record.name.clone(), st.record.parent_id.clone())
        };
        if removed {
            if let Err(e) = self.client().delete_file(&file.common.id, None).await {
                tracing::warn!(error = %e, "could not delete a file unlinked during its upload");
            }
            return None;
        }
        if name == sent.name && parent_id == sent.parent_id {
            return Some(file);
        }
        let new_name = (name != sent.name).then_some(name.as_str());
        let new_parent = (parent_id != sent.parent_id).then_some(parent_id.as_str());
        match self.client().update_file(&file.common.id, new_name, new_parent, None).await {
            Ok(moved) => Some(moved),
            Err(e) => {
                tracing::warn!(error = %e, "could not apply a rename made during the upload");
                Some(file)
            }
        }
    }

    async fn upload_record(&self, r: &Record) -> Result<File, ApiError> {
        let path = self.journal().data_path(&r.key);
        let opts =
            UploadOptions { content_modified_at: Some(rfc3339(from_nanos(r.mtime_ns))), content_created_at: None };
        let target = match &r.base_id {
            Some(id) => UploadTarget::NewVersion { file_id: id, name: Some(&r.name), if_match: r.base_etag.as_deref() },
            None => UploadTarget::NewFile { parent_id: &r.parent_id, name: &r.name },
        };
        self.client().upload(target, &path, &opts).await
    }

    /// Makes sure the parent's cached listing shows the file (a listing fetched while the
    /// upload landed may have seen it neither as local nor yet in Box), before the file stops
    /// being local: the event for our own upload is ignored as an echo.
    async fn keep_listed(&self, staged: &Arc<Staged>) {
        let (parent, name) = {
            let st = staged.lock();
            (st.parent, st.record.name.clone())
        };
        let ino = staged.ino;
        self.edit_listing(parent, |entries| {
            entries.retain(|e| e.name != name || e.ino == ino);
            if !entries.iter().any(|e| e.ino == ino) {
                entries.push(DirEntry { ino, kind: NodeKind::File, name });
            }
        })
        .await;
    }

    /// Records a successful upload. True when nothing changed meanwhile (the file is
    /// unstaged); false when newer content must go up as the next version.
    fn committed(&self, staged: &Arc<Staged>, generation: u64, file: &File) -> bool {
        let item = Item::File(file.clone());
        self.inodes().rebind_file(staged.ino, &file.common.id);
        self.inodes().refresh(staged.ino, Meta::from_item(&item));
        let mut st = staged.lock();
        st.record.base_id = Some(file.common.id.clone());
        st.record.base_etag = file.common.etag.clone();
        staged.commit.send_replace(Commit::Done(generation));
        if st.generation != generation || st.writers > 0 {
            let _ = self.journal().save(&st.record);
            if st.writers > 0 {
                st.scheduled = false; // the last close schedules again
                return true;
            }
            return false;
        }
        self.journal().remove(&st.record.key);
        drop(st);
        self.staged_map().remove(&staged.ino);
        true
    }

    /// 412: Box has a newer version than the one we started from. The local bytes go up as
    /// `NAME (conflicted copy DATE TIME).EXT` beside it; the remote version stays.
    async fn keep_both(&self, staged: &Arc<Staged>, generation: u64, record: &Record) {
        let name = conflicted_name(&record.name, chrono::Utc::now());
        tracing::warn!(file = %record.name, copy = %name, "changed in Box meanwhile; keeping both versions");
        let copy = Record { name: name.clone(), base_id: None, base_etag: None, ..record.clone() };
        match self.upload_record(&copy).await {
            Ok(_) => {
                self.journal().remove(&record.key);
                self.staged_map().remove(&staged.ino);
                self.inodes().mark_stale(staged.ino);
                let parent = staged.lock().parent;
                self.forget_listing(parent).await;
                staged.commit.send_replace(Commit::Done(generation));
            }
            Err(e) => {
                let msg = format!("{}: conflicted copy {name}: {e}", record.name);
                tracing::error!(error = %msg, "could not save the conflicted copy; the data stays in the journal");
                staged.lock().scheduled = false;
                staged.commit.send_replace(Commit::Failed(generation, msg));
            }
        }
    }

    /// Uploads everything pending (at once) and waits; used at unmount.
    pub async fn drain(&self) -> usize {
        let all: Vec<Arc<Staged>> = self.staged_map().values().cloned().collect();
        let n = all.len();
        for (i, s) in all.iter().enumerate() {
            let generation = s.lock().generation;
            self.upload_now(s);
            if let Err(e) = s.wait_committed(generation).await {
                tracing::error!(error = %e, "not uploaded; kept in the journal for the next mount");
            }
            tracing::info!("write-back: {}/{n} files committed", i + 1);
        }
        n
    }

    /// Uploads what an earlier run left in the journal (after a crash or `kill -9`).
    pub async fn recover(self: Arc<Self>) {
        let records = match self.journal().records() {
            Ok(r) => r,
            Err(e) => return tracing::error!(error = %e, "cannot read the write-back journal"),
        };
        if !records.is_empty() {
            tracing::info!(count = records.len(), "resuming uploads left by an earlier run");
        }
        for record in records {
            let fs = self.clone();
            tokio::spawn(async move {
                let _slot = fs.upload_slots().acquire().await;
                let mut backoff = Duration::from_millis(500);
                loop {
                    match fs.upload_record(&record).await {
                        Ok(_) => return fs.journal().remove(&record.key),
                        Err(e) if e.root().is_transient() || matches!(e, ApiError::RetriesExhausted { .. }) => {
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_UPLOAD_BACKOFF);
                        }
                        Err(e) => {
                            tracing::error!(file = %record.name, error = %e, "recovered upload failed; kept in the journal");
                            let _ = fs.journal().save(&Record { failed: Some(e.to_string()), ..record });
                            return;
                        }
                    }
                }
            });
        }
    }

    pub async fn mkdir(&self, parent: Ino, name: &str) -> VfsResult<Attr> {
        self.check_free(parent, name, None).await?;
        let folder = self.client().create_folder(&self.box_id_of_dir(parent)?, name).await?;
        let node = self.inodes().upsert(parent, &Item::Folder(folder));
        self.edit_listing(parent, |e| e.push(DirEntry { ino: node.ino, kind: NodeKind::Dir, name: name.into() })).await;
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
        self.edit_listing(parent, |e| e.retain(|x| x.ino != entry.ino)).await;
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
            s.lock().removed = true;
            self.journal().remove(&s.key());
        }
        if !only_local {
            match node.kind {
                NodeKind::Link => self.client().delete_web_link(&node.box_id).await?,
                _ => self.client().delete_file(&node.box_id, None).await?,
            }
        }
        self.edit_listing(parent, |e| e.retain(|x| x.ino != entry.ino)).await;
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
        self.edit_listing(parent, |e| e.retain(|x| x.ino != entry.ino)).await;
        self.edit_listing(new_parent, |e| e.push(DirEntry { ino: entry.ino, kind: entry.kind, name: new_name.into() }))
            .await;
        Ok(())
    }
}

/// `report.pdf` → `report (conflicted copy 2026-11-22 101500).pdf`.
pub fn conflicted_name(name: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let stamp = at.format("%Y-%m-%d %H%M%S");
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{} (conflicted copy {stamp}){}", &name[..i], &name[i..]),
        _ => format!("{name} (conflicted copy {stamp})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicted_copy_names() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:15:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(conflicted_name("report.pdf", at), "report (conflicted copy 2026-11-22 101500).pdf");
        assert_eq!(conflicted_name("Makefile", at), "Makefile (conflicted copy 2026-11-22 101500)");
        assert_eq!(conflicted_name(".bashrc", at), ".bashrc (conflicted copy 2026-11-22 101500)");
    }
}
