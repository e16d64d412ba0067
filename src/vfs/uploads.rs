//! Pending uploads as a whole: resuming what an earlier run left in the journal, waiting for
//! everything to reach Box (`boxfs sync`, unmount), and the per-file report `boxfs status`
//! shows (from the running filesystem, or from the journal alone when no daemon runs).

use super::fs::Fs;
use super::journal::{Journal, Record};
use super::staging::{Phase, Staged};
use super::writeback::{worth_retrying, MAX_UPLOAD_BACKOFF};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A journal entry left by an earlier run, being uploaded by this one.
#[derive(Debug)]
pub struct Recovering {
    record: Mutex<Record>,
    size: u64,
    progress: Arc<AtomicU64>,
    phase: Mutex<Phase>,
}

/// One pending upload, as `boxfs status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadInfo {
    pub name: String,
    /// Box id of the folder it goes to.
    pub folder_id: String,
    pub state: UploadState,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The last error (retrying or failed).
    pub error: Option<String>,
}

/// Where a pending upload stands, as `boxfs status` shows it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Still open for writing.
    Writing,
    Queued,
    Uploading,
    Retrying,
    Failed,
    /// Read from the journal: no daemon runs to say more.
    Pending,
}

impl std::fmt::Display for UploadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self {
            UploadState::Writing => "writing",
            UploadState::Queued => "queued",
            UploadState::Uploading => "uploading",
            UploadState::Retrying => "retrying",
            UploadState::Failed => "failed",
            UploadState::Pending => "pending",
        };
        f.pad(word)
    }
}

fn phase_state(phase: &Phase) -> (UploadState, Option<String>) {
    match phase {
        Phase::Queued => (UploadState::Queued, None),
        Phase::Uploading => (UploadState::Uploading, None),
        Phase::Retrying(e) => (UploadState::Retrying, Some(e.clone())),
        Phase::Failed(e) => (UploadState::Failed, Some(e.clone())),
    }
}

fn staged_info(s: &Staged) -> UploadInfo {
    let st = s.lock();
    let (mut state, error) = phase_state(&st.phase);
    if st.writers > 0 && !matches!(st.phase, Phase::Uploading) {
        state = UploadState::Writing;
    }
    UploadInfo {
        name: st.record.name.clone(),
        folder_id: st.record.parent_id.clone(),
        state,
        bytes_done: s.progress.load(Ordering::Relaxed).min(st.size),
        bytes_total: st.size,
        error,
    }
}

fn recovering_info(r: &Recovering) -> UploadInfo {
    let record = r.record.lock().unwrap_or_else(|p| p.into_inner());
    let (state, error) = phase_state(&r.phase.lock().unwrap_or_else(|p| p.into_inner()));
    UploadInfo {
        name: record.name.clone(),
        folder_id: record.parent_id.clone(),
        state,
        bytes_done: r.progress.load(Ordering::Relaxed).min(r.size),
        bytes_total: r.size,
        error,
    }
}

/// What the journal alone says is pending (no daemon runs to ask).
pub fn journal_uploads(journal: &Journal) -> std::io::Result<Vec<UploadInfo>> {
    Ok(journal
        .records()?
        .into_iter()
        .map(|r| UploadInfo {
            bytes_total: std::fs::metadata(journal.data_path(&r.key)).map(|m| m.len()).unwrap_or(0),
            name: r.name,
            folder_id: r.parent_id,
            state: if r.failed.is_some() { UploadState::Failed } else { UploadState::Pending },
            bytes_done: 0,
            error: r.failed,
        })
        .collect())
}

impl Fs {
    /// Every upload not yet committed: files with local changes, then recovered entries.
    pub fn uploads(&self) -> Vec<UploadInfo> {
        let staged: Vec<Arc<Staged>> = self.staged_map().values().cloned().collect();
        let mut out: Vec<UploadInfo> = staged.iter().map(|s| staged_info(s)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(self.recovering_map().values().map(|r| recovering_info(r)));
        out
    }

    /// Files with local changes not yet committed (recovered entries included).
    pub fn pending_uploads(&self) -> usize {
        self.staged_map().len() + self.recovering_map().len()
    }

    /// Uploads everything pending now and waits until it is in Box. Returns the failures
    /// (file: error), whose data stays in the journal.
    pub async fn sync_all(&self) -> Vec<String> {
        let staged: Vec<Arc<Staged>> = self.staged_map().values().cloned().collect();
        let mut failures = Vec::new();
        for s in &staged {
            let generation = s.lock().generation;
            self.upload_now(s);
            if let Err(e) = s.wait_committed(generation).await {
                failures.push(e.to_string());
            }
        }
        loop {
            let (busy, failed): (Vec<_>, Vec<_>) = self
                .recovering_map()
                .values()
                .map(|r| recovering_info(r))
                .partition(|i| i.state != UploadState::Failed);
            if busy.is_empty() {
                failures.extend(failed.into_iter().map(|i| format!("{}: {}", i.name, i.error.unwrap_or_default())));
                return failures;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Uploads everything pending and waits, logging the outcome; used at unmount. What is
    /// staged is first flushed to disk, so that whatever does not make it survives a reboot.
    pub async fn drain(&self) {
        let staged: Vec<Arc<Staged>> = self.staged_map().values().cloned().collect();
        let journal = self.journal().clone();
        let _ = tokio::task::spawn_blocking(move || staged.iter().for_each(|s| s.persist(&journal))).await;
        let n = self.pending_uploads();
        let failures = self.sync_all().await;
        for f in &failures {
            tracing::error!(error = %f, "not uploaded; kept in the journal for the next mount");
        }
        tracing::info!("write-back: {}/{n} files committed", n - failures.len().min(n));
    }

    /// Uploads what an earlier run left in the journal (after a crash or `kill -9`),
    /// continuing journaled upload sessions where they still live.
    pub async fn recover(self: Arc<Self>) {
        let records = match self.journal().records() {
            Ok(r) => r,
            Err(e) => return tracing::error!(error = %e, "cannot read the write-back journal"),
        };
        if !records.is_empty() {
            tracing::info!(count = records.len(), "resuming uploads left by an earlier run");
        }
        for record in records {
            let size = std::fs::metadata(self.journal().data_path(&record.key)).map(|m| m.len()).unwrap_or(0);
            let key = record.key.clone();
            let record = if self.journal().maybe_torn(&record) { self.hold(record) } else { record };
            let held = record.held;
            let phase = match held {
                true => Phase::Failed(record.failed.clone().unwrap_or_else(|| "held back after a system crash".into())),
                false => Phase::Queued,
            };
            let entry = Arc::new(Recovering {
                record: Mutex::new(record),
                size,
                progress: Arc::new(AtomicU64::new(0)),
                phase: Mutex::new(phase),
            });
            self.recovering_map().insert(key, entry.clone());
            if !held {
                let fs = self.clone();
                tokio::spawn(async move { fs.upload_recovered(entry).await });
            }
        }
    }

    /// Keeps a journal entry that may hold torn data out of Box for good, saying why and
    /// where its content is.
    fn hold(&self, record: Record) -> Record {
        let data = self.journal().data_path(&record.key);
        let why = format!(
            "staged before a system crash and never flushed to disk, so it may be incomplete; not uploaded. \
             Its content is in {}: copy what is good into the mount, then delete that file and its .json record",
            data.display()
        );
        tracing::error!(file = %record.name, "{why}");
        let record = Record { held: true, failed: Some(why), ..record };
        if let Err(e) = self.journal().save(&record) {
            tracing::warn!(error = %e, "cannot update the journal record");
        }
        record
    }

    /// Flushes a recovered entry's data and record to disk before it is sent (this boot's
    /// page cache may still hold them), as for any upload.
    async fn persist_recovered(&self, entry: &Recovering) {
        let mut record = entry.record.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if record.synced {
            return;
        }
        record.synced = true;
        let journal = self.journal().clone();
        let saved = tokio::task::spawn_blocking(move || {
            std::fs::File::open(journal.data_path(&record.key))?.sync_data()?;
            journal.save_durable(&record)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match saved {
            Ok(()) => entry.record.lock().unwrap_or_else(|p| p.into_inner()).synced = true,
            Err(e) => tracing::warn!(error = %e, "cannot flush a recovered upload to disk"),
        }
    }

    async fn upload_recovered(&self, entry: Arc<Recovering>) {
        self.persist_recovered(&entry).await;
        let _slot = self.upload_slots().acquire().await;
        let set_phase = |p: Phase| *entry.phase.lock().unwrap_or_else(|p| p.into_inner()) = p;
        let remember = |session: Option<&str>| {
            let mut r = entry.record.lock().unwrap_or_else(|p| p.into_inner());
            r.session_id = session.map(str::to_string);
            let _ = self.journal().save(&r);
        };
        let mut backoff = Duration::from_millis(500);
        loop {
            set_phase(Phase::Uploading);
            let record = entry.record.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match self.upload_record(&record, None, &entry.progress, &remember).await {
                Ok(_) => {
                    self.journal().remove(&record.key);
                    self.recovering_map().remove(&record.key);
                    return;
                }
                Err(crate::api::ApiError::PreconditionFailed) => {
                    let copy = record.conflicted_copy(chrono::Utc::now());
                    tracing::warn!(file = %record.name, copy = %copy.name, "changed in Box meanwhile; keeping both versions");
                    let mut r = entry.record.lock().unwrap_or_else(|p| p.into_inner());
                    *r = copy;
                    let _ = self.journal().save(&r);
                }
                Err(e) if worth_retrying(&e) => {
                    set_phase(Phase::Retrying(e.to_string()));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_UPLOAD_BACKOFF);
                }
                Err(e) => {
                    tracing::error!(file = %record.name, error = %e, "recovered upload failed; kept in the journal");
                    let _ = self.journal().save(&Record { failed: Some(e.to_string()), ..record });
                    set_phase(Phase::Failed(e.to_string()));
                    return;
                }
            }
        }
    }
}
