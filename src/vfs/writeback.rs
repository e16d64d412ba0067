//! The write-back queue: `close` schedules an upload after a short delay that coalesces
//! re-opens; `fsync` (and `boxfs sync`) cut the delay short and wait for the commit; a file's
//! upload loop retries transient failures with backoff, resumes its journaled upload session,
//! follows renames and unlinks made meanwhile, and keeps both versions on a conflict (412).

use super::error::VfsResult;
use super::fs::Fs;
use super::inode::{Ino, Meta, NodeKind};
use super::journal::Record;
use super::listings::DirEntry;
use super::staging::{from_nanos, nanos, rfc3339, Commit, Phase, Staged};
use crate::api::model::{File, Item};
use crate::api::{ApiError, Sha1Source, UploadOptions, UploadTarget};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait between attempts of an upload that keeps failing transiently.
pub(super) const MAX_UPLOAD_BACKOFF: Duration = Duration::from_secs(60);

/// Failures worth another attempt later (the network, Box being busy or down).
pub(super) fn worth_retrying(e: &ApiError) -> bool {
    e.root().is_transient() || matches!(e, ApiError::RetriesExhausted { .. })
}

impl Fs {
    pub(super) fn schedule_if_idle(&self, staged: &Arc<Staged>) {
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
            self.spawn_upload(staged, self.config().writeback_delay);
        }
    }

    fn spawn_upload(&self, staged: &Arc<Staged>, delay: Duration) {
        let Some(fs) = self.self_arc() else { return };
        staged.lock().phase = Phase::Queued;
        let staged = staged.clone();
        self.runtime().spawn(async move { fs.upload_loop(staged, delay).await });
    }

    /// `fsync`: returns once the file's content is in Box (or with the error that stops it).
    pub async fn fsync(&self, ino: Ino) -> VfsResult<()> {
        let Some(staged) = self.staged_map().get(&ino).cloned() else { return Ok(()) };
        let generation = staged.lock().generation;
        self.upload_now(&staged);
        staged.wait_committed(generation).await
    }

    /// `close` of a handle (FUSE flush): with `sync_on_close`, a written file is committed
    /// before it returns; otherwise nothing waits.
    pub async fn flush(&self, fh: u64) -> VfsResult<()> {
        match self.handle(fh) {
            Ok(super::fs::Handle::Write(staged)) if self.config().sync_on_close => {
                let generation = staged.lock().generation;
                self.upload_now(&staged);
                staged.wait_committed(generation).await
            }
            _ => Ok(()),
        }
    }

    /// Starts the file's upload now, or cuts a scheduled one's delay short.
    pub(super) fn upload_now(&self, staged: &Arc<Staged>) {
        let start = {
            let mut st = staged.lock();
            let start = !st.scheduled;
            st.scheduled = true;
            start
        };
        if start {
            self.spawn_upload(staged, Duration::ZERO);
        } else {
            staged.hurry.notify_one();
        }
    }

    /// Uploads until what is in Box is the latest staged content, then unstages.
    async fn upload_loop(self: Arc<Self>, staged: Arc<Staged>, delay: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = staged.hurry.notified() => {}
        }
        let _slot = self.upload_slots().acquire().await;
        let mut backoff = Duration::from_millis(500);
        loop {
            let (generation, record, size) = {
                let mut st = staged.lock();
                if st.removed {
                    staged.commit.send_replace(Commit::Done(st.generation));
                    return;
                }
                st.phase = Phase::Uploading;
                (st.generation, Record { mtime_ns: nanos(st.mtime), ..st.record.clone() }, st.size)
            };
            self.persist_in_background(&staged);
            let sha1 = self.known_sha1(&staged, size);
            let remember = |session: Option<&str>| {
                let mut st = staged.lock();
                st.record.session_id = session.map(str::to_string);
                if let Err(e) = self.journal().save(&st.record) {
                    tracing::warn!(error = %e, "cannot journal the upload session");
                }
            };
            match self.upload_record(&record, sha1, &staged.progress, &remember).await {
                Ok(file) => {
                    let Some(file) = self.follow_local_changes(&staged, &record, file).await else { return };
                    self.keep_listed(&staged).await;
                    if self.committed(&staged, generation, &file) {
                        return;
                    }
                }
                Err(e) if worth_retrying(&e) => {
                    tracing::warn!(name = %record.name, error = %e, ?backoff, "upload failed; retrying");
                    staged.lock().phase = Phase::Retrying(e.to_string());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_UPLOAD_BACKOFF);
                }
                Err(ApiError::PreconditionFailed) => {
                    self.keep_both(&staged, generation, &record).await;
                    return;
                }
                // Written to while being sent (a digest mismatch, say): send the new content.
                Err(e) if staged.lock().generation != generation => {
                    tracing::info!(name = %record.name, error = %e, "changed during its upload; sending it again");
                }
                Err(e) => return self.failed_for_good(&staged, generation, &record.name, &e),
            }
        }
    }

    /// Flushes the file's data and record to disk while its upload runs: from here on it
    /// survives a power loss (see the journal's module doc).
    fn persist_in_background(&self, staged: &Arc<Staged>) {
        let (staged, journal) = (staged.clone(), self.journal().clone());
        tokio::task::spawn_blocking(move || staged.persist(&journal));
    }

    /// The SHA-1 followed while the file was written, for an upload that goes through a
    /// session (a direct upload hashes its bytes in memory anyway). Asked for while the parts
    /// go up, so that the upload does not wait for the hashing thread to catch up.
    fn known_sha1(&self, staged: &Arc<Staged>, size: u64) -> Option<Sha1Source> {
        if size < self.client().config().upload_cutoff {
            return None;
        }
        let staged = staged.clone();
        Some(Sha1Source(Arc::new(move || staged.content_sha1(size))))
    }

    fn failed_for_good(&self, staged: &Staged, generation: u64, name: &str, e: &ApiError) {
        let msg = format!("{name}: {e}");
        tracing::error!(error = %msg, "upload failed for good; the data stays in the journal");
        let mut st = staged.lock();
        st.record.failed = Some(e.to_string());
        st.scheduled = false;
        st.phase = Phase::Failed(e.to_string());
        let _ = self.journal().save(&st.record);
        staged.commit.send_replace(Commit::Failed(generation, msg));
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

    /// Sends a journaled file's content: directly, or through its upload session (resumed
    /// when the journal names one that still matches). `remember` journals session ids.
    pub(super) async fn upload_record(
        &self,
        r: &Record,
        sha1: Option<Sha1Source>,
        progress: &Arc<AtomicU64>,
        remember: &(dyn Fn(Option<&str>) + Send + Sync),
    ) -> Result<File, ApiError> {
        progress.store(0, Ordering::Relaxed);
        let path = self.journal().data_path(&r.key);
        let opts = UploadOptions {
            content_modified_at: Some(rfc3339(from_nanos(r.mtime_ns))),
            content_created_at: None,
            progress: Some(progress.clone()),
            sha1,
        };
        let target = match &r.base_id {
            Some(id) => UploadTarget::NewVersion { file_id: id, name: Some(&r.name), if_match: r.base_etag.as_deref() },
            None => UploadTarget::NewFile { parent_id: &r.parent_id, name: &r.name },
        };
        self.client().background().upload_resumable(target, &path, &opts, r.session_id.as_deref(), remember).await
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
        self.edit_listing(parent, |listing| {
            listing.remove_named(&name, |e| e.ino != ino);
            listing.insert(DirEntry { ino, kind: NodeKind::File, name }); // a no-op if it is there
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
        st.record.session_id = None;
        staged.commit.send_replace(Commit::Done(generation));
        if st.generation != generation || st.writers > 0 {
            let _ = self.journal().save(&st.record);
            st.phase = Phase::Queued;
            if st.writers > 0 {
                st.scheduled = false; // the last close schedules again
                return true;
            }
            return false;
        }
        st.leave_journal(self.journal());
        drop(st);
        self.staged_map().remove(&staged.ino);
        true
    }

    /// 412: Box has a newer version than the one we started from. The local bytes go up as
    /// `NAME (conflicted copy DATE TIME).EXT` beside it; the remote version stays.
    async fn keep_both(&self, staged: &Arc<Staged>, generation: u64, record: &Record) {
        let copy = record.conflicted_copy(chrono::Utc::now());
        let name = copy.name.clone();
        tracing::warn!(file = %record.name, copy = %name, "changed in Box meanwhile; keeping both versions");
        match self.upload_record(&copy, None, &staged.progress, &|_| {}).await {
            Ok(_) => {
                staged.lock().leave_journal(self.journal());
                self.staged_map().remove(&staged.ino);
                self.inodes().mark_stale(staged.ino);
                let parent = staged.lock().parent;
                self.forget_listing(parent).await;
                staged.commit.send_replace(Commit::Done(generation));
            }
            Err(e) => {
                let msg = format!("{}: conflicted copy {name}: {e}", record.name);
                tracing::error!(error = %msg, "could not save the conflicted copy; the data stays in the journal");
                let mut st = staged.lock();
                st.scheduled = false;
                st.phase = Phase::Failed(format!("conflicted copy {name}: {e}"));
                staged.commit.send_replace(Commit::Failed(generation, msg));
            }
        }
    }
}
