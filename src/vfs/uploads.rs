//! Pending uploads as a whole: what an earlier run left in the journal (content, attributes,
//! or both) enters the upload state machine like any staged entry (shown in its folder once
//! that is listed, unless held after a system crash); waiting until everything, or one file
//! or subtree, is in Box (`boxfs sync`, unmount); the user's decision on a held entry (`boxfs recover`); and the per-file
//! report `boxfs status` shows (from the running filesystem, or from the journal alone when
//! no daemon runs).

use super::error::{VfsError, VfsResult};
use super::fs::Fs;
use super::meta::inode::{Ino, Meta, NodeKind, ROOT_INO};
use super::time::from_nanos;
use super::write::journal::{Entry, Journal, Record};
use super::write::staging::{StageState, Staged};
use super::write::upload_state::{Mark, State, Upload};
use super::writeback::wait_in_box;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One pending upload, as `boxfs status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadInfo {
    pub name: String,
    /// Box id of the folder it goes to.
    pub folder_id: String,
    pub state: UploadState,
    /// Its latest bytes and journal record are on the local disk (fsynced): a crash or power
    /// loss cannot lose them.
    #[serde(default)]
    pub durable: bool,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The last error (retrying or failed), or why it is held.
    pub error: Option<String>,
}

/// Where a pending upload stands, as `boxfs status` shows it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Still open for writing.
    Writing,
    /// Waiting out the write-back delay (or an upload slot).
    Waiting,
    Uploading,
    /// Every byte is up; Box is committing them.
    Committing,
    /// Its POSIX attributes (mode, owner, symlink target, ...) are being stored in Box metadata.
    Attributes,
    Retrying,
    Failed,
    /// Kept out of Box after a system crash until `boxfs recover` decides.
    Held,
    /// Read from the journal: no daemon runs to say more.
    Pending,
}

impl std::fmt::Display for UploadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self {
            UploadState::Writing => "writing",
            UploadState::Waiting => "waiting",
            UploadState::Uploading => "uploading",
            UploadState::Committing => "committing",
            UploadState::Attributes => "attributes",
            UploadState::Retrying => "retrying",
            UploadState::Failed => "failed",
            UploadState::Held => "held",
            UploadState::Pending => "pending",
        };
        f.pad(word)
    }
}

/// The report of one staged entry; `None` once it is finished.
fn staged_info(s: &Staged) -> Option<UploadInfo> {
    let st = s.lock();
    let (state, error) = match st.upload.state() {
        State::Open => (UploadState::Writing, None),
        State::Waiting { .. } => (UploadState::Waiting, None),
        State::Uploading { .. } => (UploadState::Uploading, None),
        State::Committing { .. } => (UploadState::Committing, None),
        State::StoringAttrs { .. } => (UploadState::Attributes, None),
        State::Retrying { error, .. } => (UploadState::Retrying, Some(error.clone())),
        State::Failed(why) => (UploadState::Failed, Some(why.clone())),
        State::Held(why) => (UploadState::Held, Some(why.clone())),
        State::InBox | State::Removed => return None,
    };
    Some(UploadInfo {
        name: st.record().name.clone(),
        folder_id: st.record().parent_id.clone(),
        state,
        durable: st.durable(),
        bytes_done: s.progress.load(Ordering::Relaxed).min(st.size),
        bytes_total: st.size,
        error,
    })
}

/// What the journal of the cache dir `cache_dir` says is pending (no daemon runs to ask).
pub fn in_journal(cache_dir: &std::path::Path) -> std::io::Result<Vec<UploadInfo>> {
    let journal = Journal::open(&Journal::dir_in(cache_dir))?;
    Ok(journal
        .records()?
        .into_iter()
        .map(|r| UploadInfo {
            bytes_total: std::fs::metadata(journal.data_path(&r.key)).map(|m| m.len()).unwrap_or(0),
            durable: r.synced,
            name: r.name,
            folder_id: r.parent_id,
            state: match (r.held, r.failed.is_some()) {
                (true, _) => UploadState::Held,
                (false, true) => UploadState::Failed,
                (false, false) => UploadState::Pending,
            },
            bytes_done: 0,
            error: r.failed,
        })
        .collect())
}

/// Why an entry an earlier run left waits for the user (`boxfs recover`): it was held, or its
/// data may be torn (`torn`: never flushed, from an earlier boot). `None`: it goes up at once,
/// whatever state its upload was in when that run ended (a session it names is resumed; Box's
/// copy is checked first, so a commit that landed is not sent again; a failure is tried anew).
fn held_back(record: &Record, torn: bool) -> Option<String> {
    (record.held || torn).then(|| record.failed.clone().unwrap_or_else(|| "held back after a system crash".into()))
}

/// Which pending uploads a sync waits for.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Everything this mount has pending.
    All,
    /// The files at or under these inodes (a file, or a directory's subtree).
    Under(Vec<Ino>),
}

impl Fs {
    /// Every upload in `scope` not yet in Box, by name.
    pub fn uploads(&self, scope: &Scope) -> Vec<UploadInfo> {
        let mut out: Vec<UploadInfo> =
            self.staged_entries().iter().filter(|s| self.in_scope(s, scope)).filter_map(|s| staged_info(s)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Files with local changes not yet in Box (held and failed ones included).
    pub fn pending_uploads(&self) -> usize {
        self.pending().count()
    }

    /// The sizes of the files [`Fs::pending_uploads`] counts.
    pub fn pending_upload_bytes(&self) -> u64 {
        self.pending().map(|s| s.lock().size).sum()
    }

    fn pending(&self) -> impl Iterator<Item = Arc<Staged>> {
        let finished = |s: &Arc<Staged>| matches!(s.lock().upload.state(), State::InBox | State::Removed);
        self.staged_entries().into_iter().filter(move |s| !finished(s))
    }

    fn staged_entries(&self) -> Vec<Arc<Staged>> {
        self.staged().all()
    }

    /// Whether `ino` is `top` or lies under it.
    fn is_under(&self, ino: Ino, top: Ino) -> bool {
        let mut at = ino;
        loop {
            if at == top {
                return true;
            }
            match self.inodes().get(at) {
                Some(node) if node.ino != ROOT_INO && node.parent != at => at = node.parent,
                _ => return false,
            }
        }
    }

    fn in_scope(&self, staged: &Staged, scope: &Scope) -> bool {
        match scope {
            Scope::All => true,
            Scope::Under(tops) => {
                let at = staged.lock().parent;
                tops.iter().any(|&top| staged.ino == top || at.is_some_and(|p| self.is_under(p, top)))
            }
        }
    }

    /// Uploads what is pending in `scope` now and waits until it is in Box. Returns the
    /// failures (file: error), whose data stays in the journal; held entries count as
    /// failures until `boxfs recover` decides on them.
    pub async fn sync(&self, scope: &Scope) -> Vec<String> {
        let chosen: Vec<(Arc<Staged>, Mark)> = self
            .staged_entries()
            .into_iter()
            .filter(|s| self.in_scope(s, scope))
            .map(|s| {
                let mark = self.hurry(&s);
                (s, mark)
            })
            .collect();
        let mut failures = Vec::new();
        for (s, mark) in chosen {
            if let Err(e) = wait_in_box(&s, mark).await {
                failures.push(e.to_string());
            }
        }
        failures
    }

    /// Uploads everything pending and waits, logging the outcome; used at unmount. What is
    /// staged is first flushed to disk, so that whatever does not make it survives a reboot.
    /// When no upload makes progress for `patience` (Box unreachable, say), it stops waiting:
    /// what is left stays in the journal for the next mount.
    pub async fn drain(&self, patience: Duration) {
        let staged = self.staged_entries();
        let journal = self.journal().clone();
        let _ = tokio::task::spawn_blocking(move || {
            for s in &staged {
                if let Err(e) = s.persist(&journal) {
                    tracing::warn!(error = %e, "cannot flush a staged file to disk");
                }
            }
        })
        .await;
        let n = self.pending_uploads();
        let sync = self.sync(&Scope::All);
        tokio::pin!(sync);
        let (mut mark, mut since) = (self.progress_mark(), Instant::now());
        loop {
            tokio::select! {
                failures = &mut sync => {
                    for f in &failures {
                        tracing::error!(error = %f, "not uploaded; kept in the journal for the next mount");
                    }
                    return tracing::info!("write-back: {}/{n} files committed", n - failures.len().min(n));
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let now = self.progress_mark();
            if now != mark {
                (mark, since) = (now, Instant::now());
            } else if since.elapsed() >= patience {
                let left = self.pending_uploads();
                return tracing::warn!(
                    left,
                    "no upload made progress for {patience:?} (is Box reachable?); what is left stays in the journal for the next mount"
                );
            }
        }
    }

    /// Changes whenever an upload makes progress: entries pending, bytes confirmed.
    fn progress_mark(&self) -> (usize, u64) {
        let entries = self.staged_entries();
        (self.pending_uploads(), entries.iter().map(|s| s.progress.load(Ordering::Relaxed)).sum())
    }

    /// Puts what an earlier run left in the journal (after a crash or `kill -9`) back into the
    /// upload state machine: due at once (journaled upload sessions continue where they still
    /// live), shown in its folder once that is listed. An entry that may hold torn data is
    /// held instead, shown nowhere, until `boxfs recover` decides.
    pub fn recover(&self) {
        let records = match self.journal().records() {
            Ok(r) => r,
            Err(e) => return tracing::error!(error = %e, "cannot read the write-back journal"),
        };
        if !records.is_empty() {
            tracing::info!(count = records.len(), "resuming uploads left by an earlier run");
        }
        for record in records {
            if let Err(e) = self.readmit(record) {
                tracing::error!(error = %e, "cannot resume a journaled upload; it stays in the journal");
            }
        }
    }

    fn readmit(&self, record: Record) -> std::io::Result<()> {
        let has_data = record.entry.has_data();
        // Attributes alone cannot be torn: their record is written whole (temp + rename).
        let torn = has_data && self.journal().maybe_torn(&record);
        let record = if torn && !record.held { self.hold(record) } else { record };
        let held = held_back(&record, torn);
        let file = has_data.then(|| self.journal().open_data(&record.key)).transpose()?;
        let size = match &file {
            Some(f) => f.cached().metadata()?.len(),
            None => 0,
        };
        let mtime = from_nanos(record.mtime_ns);
        let kind = if record.entry == Entry::FolderAttrs { NodeKind::Dir } else { NodeKind::File };
        let ino = match (&record.base_id, held.is_some()) {
            (Some(id), false) => self.inodes().reserve(kind, id, &record.name),
            _ => self.inodes().insert_local(ROOT_INO, &record.name, &record.key, Meta::local(mtime)).ino,
        };
        let upload = Upload::recovered(self.timing(), held, has_data, record.attrs.is_some(), Instant::now());
        let mut state = StageState::new(record, None, size, mtime, upload);
        state.check_box_first = has_data;
        let staged = Arc::new(Staged::new(ino, file, state));
        self.staged().insert(staged.clone());
        self.kick(&staged);
        Ok(())
    }

    /// Keeps a journal entry that may hold torn data out of Box, saying why and how to decide.
    fn hold(&self, record: Record) -> Record {
        let data = self.journal().data_path(&record.key);
        let why = format!(
            "staged before a system crash and never flushed to disk, so it may be incomplete; not uploaded. \
             Its content is in {}: check it, then run boxfs recover --upload or --discard on its path",
            data.display()
        );
        tracing::error!(file = %record.name, "{why}");
        let record = Record { held: true, failed: Some(why), ..record };
        if let Err(e) = self.journal().save(&record) {
            tracing::warn!(error = %e, "cannot update the journal record");
        }
        record
    }

    /// The user's decision on the held entry for `name` in folder `dir` (`boxfs recover`):
    /// upload it after all, or discard it. Returns the number of entries decided on.
    pub fn decide_held(&self, dir: Ino, name: &str, upload: bool) -> VfsResult<usize> {
        let folder_id = self.inodes().get(dir).ok_or(VfsError::NotFound)?.box_id;
        let held: Vec<Arc<Staged>> = self
            .staged_entries()
            .into_iter()
            .filter(|s| {
                let st = s.lock();
                st.upload.is_held() && st.record().parent_id == folder_id && st.record().name == name
            })
            .collect();
        for s in &held {
            {
                let mut st = s.lock();
                if upload {
                    let r = st.edit_record();
                    (r.held, r.failed) = (false, None);
                    st.upload.release(Instant::now());
                } else {
                    st.upload.remove();
                }
            }
            if upload {
                s.save_record(self.journal(), false)?;
            }
            tracing::info!(file = %name, upload, "held entry decided on");
            self.kick(s);
        }
        Ok(held.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_resumes_at_once_from_any_state_unless_held_or_maybe_torn() {
        let base = Record::new("k".into(), "0".into(), "a.txt".into(), 0);
        let flushed = Record { synced: true, ..base.clone() };
        let journaled = [
            ("waiting", base.clone(), false, false),
            ("uploading directly", flushed.clone(), false, false),
            ("uploading through a session", Record { session_id: Some("S".into()), ..flushed.clone() }, false, false),
            ("committing a new version", Record { base_id: Some("7".into()), ..flushed.clone() }, false, false),
            ("failed", Record { failed: Some("quota".into()), ..flushed }, false, false),
            ("held", Record { held: true, failed: Some("why".into()), ..base.clone() }, false, true),
            ("never flushed, earlier boot", base.clone(), true, true),
        ];
        for (state, record, torn, held) in journaled {
            assert_eq!(held_back(&record, torn).is_some(), held, "crash while {state}");
        }
        let held = Record { held: true, failed: Some("why".into()), ..base };
        assert_eq!(held_back(&held, false).as_deref(), Some("why"));
    }
}
