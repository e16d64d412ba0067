//! The write-back driver: while a staged entry has a send due, one task runs its upload
//! state machine (`upload_state.rs`): it sleeps out the write-back delay, takes an upload slot,
//! sends the content or stores the attributes (one metadata call, planned by `posix.rs` from
//! what Box holds) and feeds the outcome back, until the machine says the entry is in Box
//! (or removed), when it unstages it. What it sends is one version: below the cut-off a
//! snapshot read while no change can land; above it the staging file through a resumable
//! upload session, whose commit digest Box checks, so that bytes changed meanwhile are refused
//! rather than mixed. Around it: `fsync` (durable on the local disk, or in Box under `--fsync
//! box`), close with `--sync-on-close`, renames and unlinks made while an upload runs, a 412
//! turning the file into a conflicted copy, and a sync hurrying it. While Box cannot be
//! reached nothing is attempted: the driver waits for it to be back, then sends at once.

use super::error::{VfsError, VfsResult};
use super::fs::{Fs, FsyncMode, Handle};
use super::meta::inode::{Ino, Meta, NodeKind};
use super::meta::listings::DirEntry;
use super::meta::posix::{plan, Call, PendingAttrs};
use super::meta::stored::Stored;
use super::time::{from_nanos, nanos, rfc3339};
use super::write::journal::{Entry, Record};
use super::write::staging::Staged;
use super::write::upload_state::{Mark, Next, Outcome, State, Timing};
use boxfs_api::metadata::ItemKind;
use boxfs_api::model::{File, Item};
use boxfs_api::{ApiError, CommitHook, Fetched, Sha1Source, UploadOptions, UploadTarget};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Failures worth another attempt later (the network, Box being busy or down).
fn worth_retrying(e: &ApiError) -> bool {
    e.root().is_transient() || matches!(e, ApiError::RetriesExhausted { .. })
}

/// A metadata call refused because the instance is not what the call was planned on: one
/// exists already (409), it has no such key (400), or there is none (404).
fn holds_something_else(e: &ApiError) -> bool {
    match e {
        ApiError::Http { status: 409 | 400, .. } => true,
        ApiError::NotFound { code } => code.as_deref() == Some("instance_not_found"),
        _ => false,
    }
}

impl Fs {
    /// The timing every upload follows.
    pub(super) fn timing(&self) -> Timing {
        Timing { delay: self.config().writeback_delay, ..Timing::default() }
    }

    /// After a change of `staged`'s upload state: makes sure a driver looks at it (starting
    /// one when none runs) and tells those waiting for it.
    pub(super) fn kick(&self, staged: &Arc<Staged>) {
        let start = !std::mem::replace(&mut staged.lock().driving, true);
        if start {
            if let Some(fs) = self.self_arc() {
                let staged = staged.clone();
                self.runtime().spawn(async move { fs.drive(staged).await });
            } else {
                staged.lock().driving = false;
            }
        } else {
            staged.wake.notify_one();
        }
        staged.tell_waiters();
    }

    /// Runs the file's machine until nothing is due (a writer open, failed, held) or it is
    /// finished.
    async fn drive(self: Arc<Self>, staged: Arc<Staged>) {
        loop {
            let next = staged.lock().upload.next(Instant::now());
            match next {
                Next::Sleep(until) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until.into()) => {}
                        _ = staged.wake.notified() => {}
                    }
                }
                Next::Upload | Next::StoreAttrs if !self.background().connection().is_online() => {
                    self.background().until_online().await
                }
                Next::Upload => self.attempt(&staged).await,
                Next::StoreAttrs => self.store_attrs(&staged).await,
                Next::Finished if self.finish(&staged).await => return,
                Next::Finished => {}
                Next::Idle | Next::Busy => {
                    let mut st = staged.lock();
                    if matches!(st.upload.next(Instant::now()), Next::Idle | Next::Busy) {
                        st.driving = false;
                        return;
                    }
                }
            }
        }
    }

    /// One upload attempt of the current content, its outcome fed to the machine.
    async fn attempt(&self, staged: &Arc<Staged>) {
        let _slot = self.upload_slots().acquire().await;
        self.wait_for_replaced(staged).await;
        let (record, size) = {
            let mut st = staged.lock();
            if st.upload.next(Instant::now()) != Next::Upload {
                return; // changed while it waited for a slot
            }
            let generation = st.upload.start();
            let record = Record { mtime_ns: nanos(st.mtime), ..st.record().clone() };
            tracing::debug!(name = %record.name, generation, size = st.size, "upload starts");
            (record, st.size)
        };
        staged.tell_waiters();
        self.persist_in_background(staged);
        let landed = match self.committed_before_a_crash(staged, &record).await {
            Some(file) => Ok(file),
            None => self.send(staged, &record, size).await,
        };
        let outcome = match landed {
            Ok(file) => {
                self.landed(staged, &record, file).await;
                Outcome::Committed
            }
            Err(e) => self.failed(staged, &record, e).await,
        };
        self.conclude(staged, &record.name, outcome);
    }

    /// Feeds the outcome of a send to the machine, journals where it stands and tells those
    /// waiting for it.
    fn conclude(&self, staged: &Arc<Staged>, name: &str, outcome: Outcome) {
        let failed = {
            let mut st = staged.lock();
            tracing::debug!(name, ?outcome, "send ended");
            st.upload.finished(outcome, Instant::now());
            match st.upload.state().clone() {
                State::Failed(why) => {
                    st.edit_record().failed = Some(why.clone());
                    Some(why)
                }
                State::Retrying { error, .. } => {
                    tracing::warn!(name, %error, "upload failed; retrying");
                    None
                }
                _ if st.record().failed.is_some() => {
                    st.edit_record().failed = None;
                    None
                }
                _ => None,
            }
        };
        if let Some(why) = failed {
            tracing::error!(name, error = %why, "upload failed for good; the data stays in the journal");
        }
        // A finished entry leaves the journal next: its record is not worth writing.
        let finished = staged.lock().upload.next(Instant::now()) == Next::Finished;
        if !finished {
            if let Err(e) = staged.save_record(self.journal(), false) {
                tracing::warn!(error = %e, "cannot update the journal record");
            }
        }
        staged.tell_waiters();
    }

    /// Stores the entry's attributes on its Box item: at most one metadata call (none when Box
    /// holds them already), its outcome fed to the machine.
    async fn store_attrs(&self, staged: &Arc<Staged>) {
        let _slot = self.upload_slots().acquire().await;
        self.wait_for_replaced(staged).await;
        let (name, target, pending, conflicted) = {
            let mut st = staged.lock();
            if st.upload.next(Instant::now()) != Next::StoreAttrs {
                return; // changed while it waited for a slot
            }
            let generation = st.upload.start_attrs();
            let r = st.record();
            let kind = if r.entry == Entry::FolderAttrs { ItemKind::Folder } else { ItemKind::File };
            tracing::debug!(name = %r.name, generation, "storing attributes");
            let target = r.base_id.clone().map(|id| (kind, id));
            (r.name.clone(), target, r.attrs.clone().unwrap_or_default(), st.upload.is_conflicted_copy())
        };
        staged.tell_waiters();
        let Some((kind, id)) = target else {
            // Content goes first: an entry without a Box item has nothing to store on.
            return self.conclude(staged, &name, Outcome::Refused("not in Box yet".into()));
        };
        let outcome = match self.store_on(staged.ino, kind, &id, &pending).await {
            Ok(stored) => {
                if !conflicted {
                    self.inodes().set_stored(staged.ino, stored.clone());
                }
                if let Some(attrs) = &mut staged.lock().edit_record().attrs {
                    attrs.base = stored;
                }
                Outcome::Committed
            }
            Err(e) if worth_retrying(&e) => Outcome::Transient(e.to_string()),
            Err(ApiError::NotFound { code }) if code.as_deref() != Some("instance_not_found") => {
                tracing::debug!(name, "deleted in Box meanwhile; its attributes go with it");
                staged.lock().upload.remove();
                Outcome::Refused("deleted in Box".into())
            }
            Err(e) => Outcome::Refused(e.to_string()),
        };
        self.conclude(staged, &name, outcome);
    }

    /// Makes the metadata instance of item `id` hold `pending.want`, from what Box held
    /// (`pending.base`); returns what it holds now. When Box turns out to hold something else
    /// (changed elsewhere, or an earlier attempt landed unseen), its instance is read and the
    /// call planned again, once.
    async fn store_on(&self, ino: Ino, kind: ItemKind, id: &str, pending: &PendingAttrs) -> Result<Stored, ApiError> {
        let remote = self.background();
        let mut have = pending.base.clone();
        let mut replanned = false;
        loop {
            let Some(call) = plan(&have, &pending.want) else { return Ok(have) };
            self.inodes().expect_echo(ino);
            let result = match call {
                Call::Create(keys) => remote.create_properties(kind, id, &keys).await.map(Some),
                Call::Update(ops) => remote.update_properties(kind, id, &ops).await.map(Some),
                Call::Delete => remote.delete_properties(kind, id).await.map(|()| None),
            };
            match result {
                Ok(instance) => return Ok(Stored::from_properties(instance.as_ref())),
                Err(e) if !replanned && holds_something_else(&e) => {
                    self.inodes().cancel_echo(ino);
                    replanned = true;
                    have = Stored::from_properties(remote.get_properties(kind, id).await?.as_ref());
                }
                Err(e) => {
                    if !worth_retrying(&e) {
                        self.inodes().cancel_echo(ino);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// This file replaced another by a rename while that one's upload ran: it goes up only
    /// after that one's has ended (and took what it landed as its base).
    async fn wait_for_replaced(&self, staged: &Arc<Staged>) {
        loop {
            let Some(before) = staged.lock().after.clone() else { return };
            let mut settled = before.settled.subscribe();
            if !before.lock().upload.in_flight() {
                staged.lock().after = None;
                return;
            }
            let _ = settled.changed().await;
        }
    }

    /// Flushes the file's data and record to disk while its upload runs: from here on it
    /// survives a power loss (see the journal's module doc).
    fn persist_in_background(&self, staged: &Arc<Staged>) {
        let (staged, journal) = (staged.clone(), self.journal().clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = staged.persist(&journal) {
                tracing::warn!(error = %e, "cannot flush a staged file to disk");
            }
        });
    }

    /// Sends `record`'s content: a snapshot in one request below the cut-off, else the staging
    /// file through its upload session (resumed when the journal names one that still fits).
    async fn send(&self, staged: &Arc<Staged>, record: &Record, size: u64) -> Result<File, ApiError> {
        staged.progress.store(0, Ordering::Relaxed);
        let committing = {
            let staged = staged.clone();
            CommitHook(Arc::new(move || {
                staged.lock().upload.committing();
                staged.tell_waiters();
            }))
        };
        let opts = UploadOptions {
            content_modified_at: Some(rfc3339(from_nanos(record.mtime_ns))),
            content_created_at: None,
            progress: Some(staged.progress.clone()),
            sha1: None,
            on_commit: Some(committing),
        };
        let target = match &record.base_id {
            Some(id) => UploadTarget::NewVersion {
                file_id: id,
                name: Some(&record.name),
                if_match: record.base_etag.as_deref(),
            },
            None => UploadTarget::NewFile { parent_id: &record.parent_id, name: &record.name },
        };
        if size < self.remote().upload_cutoff() {
            let snapshot = staged.clone();
            let data = tokio::task::spawn_blocking(move || snapshot.snapshot())
                .await
                .map_err(|e| ApiError::Io(std::io::Error::other(e)))??;
            return self.background().upload_bytes(target, data, &opts).await;
        }
        let sha1 = {
            let staged = staged.clone();
            Sha1Source(Arc::new(move || staged.content_sha1(size)))
        };
        let opts = UploadOptions { sha1: Some(sha1), ..opts };
        let remember = |session: Option<&str>| {
            staged.lock().edit_record().session_id = session.map(str::to_string);
            if let Err(e) = staged.save_record(self.journal(), false) {
                tracing::warn!(error = %e, "cannot journal the upload session");
            }
        };
        let path = self.journal().data_path(&record.key);
        self.background().upload_resumable(target, &path, &opts, record.session_id.as_deref(), &remember).await
    }

    /// What a failed attempt means for the machine. A 412 whose newer version in Box holds
    /// exactly our bytes is our own earlier upload (a retry after a crash); any other 412, or a
    /// name taken meanwhile, turns the entry into a conflicted copy; a version of a file
    /// deleted in Box meanwhile goes up as a new file.
    async fn failed(&self, staged: &Arc<Staged>, record: &Record, e: ApiError) -> Outcome {
        match e {
            e if worth_retrying(&e) => Outcome::Transient(e.to_string()),
            ApiError::PreconditionFailed => match self.own_version_in_box(staged, record).await {
                Ok(Some(file)) => {
                    self.landed(staged, record, file).await;
                    Outcome::Committed
                }
                Ok(None) => self.keep_both(staged, record),
                Err(e) if worth_retrying(&e) => Outcome::Transient(e.to_string()),
                Err(e) => Outcome::Refused(e.to_string()),
            },
            ApiError::NameConflict { .. } if record.base_id.is_none() => self.keep_both(staged, record),
            ApiError::NotFound { .. } if record.base_id.is_some() && !staged.lock().upload.is_removed() => {
                tracing::warn!(name = %record.name, "deleted in Box meanwhile; uploading the local copy as a new file");
                staged.lock().edit_record().as_new_file();
                Outcome::Retarget
            }
            e => Outcome::Refused(e.to_string()),
        }
    }

    /// For an entry an earlier run left: the Box file, when that run's upload of exactly these
    /// bytes committed before it died (so they are not sent twice).
    async fn committed_before_a_crash(&self, staged: &Arc<Staged>, record: &Record) -> Option<File> {
        if !std::mem::take(&mut staged.lock().check_box_first) {
            return None;
        }
        match self.own_version_in_box(staged, record).await {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(name = %record.name, error = %e, "cannot compare with Box's copy; uploading");
                None
            }
        }
    }

    /// The Box file `record` is a version of, when its current content is exactly ours.
    async fn own_version_in_box(&self, staged: &Arc<Staged>, record: &Record) -> Result<Option<File>, ApiError> {
        let Some(id) = &record.base_id else { return Ok(None) };
        let Fetched::Modified(file) = self.remote().get_file(id, None).await? else { return Ok(None) };
        let size = staged.lock().size;
        if file.common.size != size {
            return Ok(None);
        }
        let hashed = staged.clone();
        let ours = tokio::task::spawn_blocking(move || hashed.sha1_hex())
            .await
            .map_err(|e| ApiError::Io(std::io::Error::other(e)))??;
        Ok((file.sha1.as_deref() == Some(ours.as_str())).then_some(file))
    }

    /// 412 or 409: Box has a newer version (or another file under the name). The local bytes
    /// go up as `NAME (conflicted copy DATE TIME).EXT` beside it; the remote version stays.
    fn keep_both(&self, staged: &Arc<Staged>, record: &Record) -> Outcome {
        let copy = record.conflicted_copy(chrono::Utc::now());
        tracing::warn!(file = %record.name, copy = %copy.name, "changed in Box meanwhile; keeping both versions");
        let mut st = staged.lock();
        let r = st.edit_record();
        r.name = copy.name;
        r.as_new_file();
        Outcome::Conflict
    }

    /// An upload landed as `file`: applies what happened locally meanwhile (an unlink, a
    /// replacement by a rename, a rename) and records the file's new identity.
    async fn landed(&self, staged: &Arc<Staged>, sent: &Record, file: File) {
        let (removed, replaced_by, name, parent_id) = {
            let st = staged.lock();
            let r = st.record();
            (st.upload.is_removed(), st.replaced_by.clone(), r.name.clone(), r.parent_id.clone())
        };
        if removed {
            match replaced_by.and_then(|w| w.upgrade()) {
                Some(next) => self.hand_over(&next, &file),
                None => {
                    if let Err(e) = self.remote().delete_file(&file.common.id, None).await {
                        tracing::warn!(error = %e, "could not delete a file unlinked during its upload");
                    }
                }
            }
            return;
        }
        let file = if name == sent.name && parent_id == sent.parent_id {
            file
        } else {
            let new_name = (name != sent.name).then_some(name.as_str());
            let new_parent = (parent_id != sent.parent_id).then_some(parent_id.as_str());
            match self.remote().update_file(&file.common.id, new_name, new_parent, None).await {
                Ok(moved) => moved,
                Err(e) => {
                    tracing::warn!(error = %e, "could not apply a rename made during the upload");
                    file
                }
            }
        };
        self.keep_listed(staged).await;
        let conflicted = staged.lock().upload.is_conflicted_copy();
        if !conflicted {
            self.inodes().rebind_file(staged.ino, &file.common.id);
            self.inodes().refresh(staged.ino, Meta::from_item(&Item::File(file.clone())));
        }
        // Under a pinned folder, the new content is to be kept on this device too.
        self.pins_touched(&[staged.ino]);
        let mut st = staged.lock();
        let r = st.edit_record();
        (r.base_id, r.base_etag, r.session_id) = (Some(file.common.id.clone()), file.common.etag.clone(), None);
    }

    /// A file replaced by a rename landed: the file that replaced it is its next version.
    fn hand_over(&self, next: &Arc<Staged>, landed: &File) {
        {
            let mut st = next.lock();
            let r = st.edit_record();
            (r.base_id, r.base_etag) = (Some(landed.common.id.clone()), landed.common.etag.clone());
        }
        self.inodes().rebind_file(next.ino, &landed.common.id);
        if let Err(e) = next.save_record(self.journal(), false) {
            tracing::warn!(error = %e, "cannot update the journal record");
        }
    }

    /// Makes sure the parent's cached listing shows the file (a listing fetched while the
    /// upload landed may have seen it neither as local nor yet in Box), before the file stops
    /// being local: the event for our own upload is ignored as an echo.
    async fn keep_listed(&self, staged: &Arc<Staged>) {
        let (parent, name, conflicted) = {
            let st = staged.lock();
            (st.parent, st.record().name.clone(), st.upload.is_conflicted_copy())
        };
        let (Some(parent), false) = (parent, conflicted) else { return };
        let ino = staged.ino;
        self.edit_listing(parent, |listing| {
            listing.remove_named(&name, |e| e.ino != ino);
            // A no-op if it is there.
            listing.insert(DirEntry { ino, kind: NodeKind::File, name: name.into() });
        })
        .await;
    }

    /// Unstages a finished entry (in Box, or removed): it leaves the journal and the file
    /// shows what Box has. False when it is not finished after all (opened again meanwhile).
    async fn finish(&self, staged: &Arc<Staged>) -> bool {
        let (conflicted, parent) = {
            let mut entries = self.staged().lock();
            let mut st = staged.lock();
            if st.upload.next(Instant::now()) != Next::Finished {
                return false;
            }
            st.driving = false;
            entries.remove_if_current(staged);
            (st.upload.is_conflicted_copy() && st.upload.state() == &State::InBox, st.parent)
        };
        staged.leave_journal(self.journal());
        self.unlock_after_upload(staged.ino).await;
        if conflicted {
            // The file shows Box's version again; the copy shows once its folder is listed.
            self.inodes().mark_stale(staged.ino);
            if let Some(parent) = parent {
                self.forget_listing(parent).await;
            }
        }
        staged.tell_waiters();
        true
    }

    /// `fsync`, `fdatasync` and `msync(MS_SYNC)`: by default the file's bytes and journal
    /// record reach the local disk (blocking: call from a blocking thread); under `--fsync
    /// box`, see [`Fs::fsync_in_box`].
    pub fn fsync_local(&self, ino: Ino) -> VfsResult<()> {
        let Some(staged) = self.staged().get(ino) else { return Ok(()) };
        Ok(staged.persist(self.journal())?)
    }

    /// `fsync` under `--fsync box`: returns once the file's content is in Box (or with the
    /// error that stops it).
    pub async fn fsync_in_box(&self, ino: Ino) -> VfsResult<()> {
        let Some(staged) = self.staged().get(ino) else { return Ok(()) };
        self.commit_now(&staged).await
    }

    /// Flushes every local-only file of directory `ino` to disk (`fsyncdir`: the entries
    /// created in it survive a crash). Blocking.
    pub fn fsyncdir_local(&self, ino: Ino) -> VfsResult<()> {
        let files = self.staged().filtered(|s| {
            let st = s.lock();
            st.parent == Some(ino) && st.only_local()
        });
        for s in files {
            s.persist(self.journal())?;
        }
        Ok(())
    }

    /// `close` of a handle (FUSE flush): with `sync_on_close`, what `fsync` does.
    pub async fn flush(&self, fh: u64) -> VfsResult<()> {
        let Ok(Handle::Write(staged)) = self.handle(fh) else { return Ok(()) };
        if !self.config().sync_on_close {
            return Ok(());
        }
        match self.config().fsync {
            FsyncMode::Local => {
                let journal = self.journal().clone();
                tokio::task::spawn_blocking(move || staged.persist(&journal))
                    .await
                    .map_err(|e| VfsError::Io(std::io::Error::other(e)))??;
                Ok(())
            }
            FsyncMode::Box => self.commit_now(&staged).await,
        }
    }

    /// Starts the file's upload now (skipping the write-back delay) and waits until its
    /// current content and attributes are in Box.
    pub(super) async fn commit_now(&self, staged: &Arc<Staged>) -> VfsResult<()> {
        let mark = self.hurry(staged);
        wait_in_box(staged, mark).await
    }

    /// Cuts the entry's write-back delay short (a sync); returns the changes to wait for.
    pub(super) fn hurry(&self, staged: &Arc<Staged>) -> Mark {
        let mark = {
            let mut st = staged.lock();
            st.upload.hurry(Instant::now());
            st.upload.mark()
        };
        self.kick(staged);
        mark
    }
}

/// Waits until the changes up to `mark` are in Box (or the entry was removed); the error of
/// a send that failed for good or is held.
pub(super) async fn wait_in_box(staged: &Staged, mark: Mark) -> VfsResult<()> {
    let mut settled = staged.settled.subscribe();
    loop {
        {
            let st = staged.lock();
            let refused = match st.upload.state() {
                _ if st.upload.reached(mark) => return Ok(()),
                State::InBox | State::Removed => return Ok(()),
                State::Failed(why) | State::Held(why) => why.clone(),
                _ => String::new(),
            };
            if !refused.is_empty() {
                let msg = format!("{}: {refused}", st.record().name);
                return Err(VfsError::Io(std::io::Error::other(msg)));
            }
        }
        if settled.changed().await.is_err() {
            return Ok(());
        }
    }
}
