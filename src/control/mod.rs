//! The control channel of a running mount: a unix socket (in a 0700 directory under
//! `$XDG_RUNTIME_DIR/boxfs/mounts`) plus a registry file naming the mountpoint and cache dir
//! (under `$XDG_CACHE_HOME/boxfs/mounts`, so it outlives a reboot), both keyed by the
//! mountpoint. `boxfs status` asks the socket for a report (of the whole mount, or of a file or
//! folder in it); `boxfs sync` asks it to upload what is pending (everywhere, or under some
//! paths) now and streams progress until that is in Box; `boxfs recover` decides on an entry
//! held after a system crash. When no daemon answers, the registry still says where the
//! journal is. `boxfs pin`/`unpin` ask it to keep items on this device (or stop), and `pin
//! --wait` streams their download's progress. Paths inside a mount are found through the
//! registry (the mount whose mountpoint is the longest prefix) and sent relative to the
//! mount's root.
//!
//! Protocol: one JSON request line (`{"op":"status","path":…}`, `{"op":"sync","paths":[…]}`,
//! `{"op":"recover","path":…,"upload":true}`, `{"op":"pin","paths":[…],"wait":true}` or
//! `{"op":"unpin","paths":[…]}`), answered by JSON lines: a `Status` for `status`; for `sync`,
//! `Status` lines every 250 ms, then a `SyncDone`; for `recover`, a `RecoverDone`; for `pin`
//! (with `wait`, `PinsNow` lines every 250 ms until the pins are downloaded first) and
//! `unpin`, a `PinDone`.

mod client;
mod server;

pub use client::{locate, pin, recover, status, status_all, sync, unpin};
pub use server::ControlServer;

use crate::vfs::read::pins::{PinInfo, PinKind, PinState};
use crate::vfs::uploads::{UploadInfo, UploadState};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no boxfs mount is registered at {0}")]
    NotMounted(PathBuf),
    #[error("the boxfs daemon for {0} does not answer (it may have exited)")]
    NoDaemon(PathBuf),
    #[error("control channel: {0}")]
    Io(#[from] std::io::Error),
    #[error("control channel: bad message: {0}")]
    Protocol(#[from] serde_json::Error),
}

/// What the registry says of a mount.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountEntry {
    pub mountpoint: PathBuf,
    pub cache_dir: PathBuf,
    /// The saved account it was mounted with (`None`: credentials given outright).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The daemon's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// `boxfs status` of one mount.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub mountpoint: PathBuf,
    /// `daemon` (a running mount answered) or `journal` (read from the cache dir).
    pub source: String,
    pub pid: Option<u32>,
    pub account: Option<Account>,
    /// Whether Box can be reached (unknown without a daemon).
    #[serde(default)]
    pub connection: Reachability,
    /// `live`, `connecting`, `degraded: <why>`, `off`, or `unknown` (no daemon).
    pub events: String,
    pub cache: Cache,
    pub api: Option<ApiUse>,
    /// Pending uploads (under `path` when one was asked about).
    pub uploads: Vec<Upload>,
    /// The file or folder asked about, relative to the mount's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The request budget this mount shares with the other processes of its login.
    #[serde(default)]
    pub budget: Option<SharedBudget>,
    /// The items kept on this device, and how far their download is.
    #[serde(default)]
    pub pins: Vec<PinReport>,
}

/// One pinned item, as the control channel reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinReport {
    /// Where it is in the mount (relative to its root).
    pub path: PathBuf,
    /// `file` or `folder`.
    pub kind: String,
    pub files_present: u64,
    pub files_total: u64,
    pub bytes_present: u64,
    pub bytes_total: u64,
    /// `downloading`, `complete` or `failed`.
    pub state: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<PinInfo> for PinReport {
    fn from(p: PinInfo) -> PinReport {
        let (state, error) = match p.progress.state {
            PinState::Downloading => ("downloading", None),
            PinState::Complete => ("complete", None),
            PinState::Failed(why) => ("failed", Some(why)),
        };
        PinReport {
            path: p.pin.path.into(),
            kind: match p.pin.kind {
                PinKind::File => "file".into(),
                PinKind::Folder => "folder".into(),
            },
            files_present: p.progress.files_present,
            files_total: p.progress.files_total,
            bytes_present: p.progress.bytes_present,
            bytes_total: p.progress.bytes_total,
            state: state.into(),
            error,
        }
    }
}

/// The pins asked about in a `pin --wait`, while they download.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinsNow {
    pub pins: Vec<PinReport>,
}

/// The last line of a `pin` or `unpin`: what could not be done, one message per path.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinDone {
    pub done: bool,
    pub errors: Vec<String>,
}

/// Whether the daemon can reach Box: `online`, `offline` (since when, and the error that
/// showed it), or `unknown` when no daemon answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reachability {
    pub state: ReachState,
    /// RFC 3339, local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReachState {
    Online,
    Offline,
    #[default]
    Unknown,
}

impl Reachability {
    pub fn of(connection: &boxfs_api::Connection) -> Reachability {
        match connection {
            boxfs_api::Connection::Online => Reachability { state: ReachState::Online, since: None, reason: None },
            boxfs_api::Connection::Offline { since, reason } => Reachability {
                state: ReachState::Offline,
                since: Some(
                    chrono::DateTime::<chrono::Local>::from(*since).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                ),
                reason: Some(reason.clone()),
            },
        }
    }

    /// One line for people: `online`, `offline since 2026-12-06 05:40:12 (why)`.
    pub fn describe(&self) -> String {
        match (self.state, &self.since) {
            (ReachState::Online, _) => "online".into(),
            (ReachState::Unknown, _) => "unknown".into(),
            (ReachState::Offline, since) => {
                let since = since.as_deref().unwrap_or_default();
                let since = chrono::DateTime::parse_from_rfc3339(since)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|_| since.to_string());
                let why = self.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                format!("offline since {since}{why}")
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub user_id: String,
    pub login: String,
    pub api_url: String,
    pub space_used: u64,
    pub space_amount: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cache {
    pub dir: PathBuf,
    /// Bytes of cached blocks the capacity budgets (every block but pinned ones).
    pub used_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    /// Bytes of pinned content, kept apart from the capacity.
    #[serde(default)]
    pub pinned_bytes: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiUse {
    pub requests_last_minute: u64,
    pub throttled_last_minute: u64,
    pub requests_total: u64,
    pub throttled_total: u64,
    pub retries_total: u64,
}

/// Use of a request budget by every process sharing it, over the last minute.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SharedBudget {
    pub requests_last_minute: u64,
    pub uploads_last_minute: u64,
    pub requests_per_minute: u32,
    pub uploads_per_minute: u32,
    /// The processes sharing it.
    pub pids: Vec<u32>,
}

/// The last line of a `sync`: what could not be uploaded (its data stays in the journal).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncDone {
    pub done: bool,
    pub failures: Vec<String>,
}

/// One pending upload, as the control channel reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Upload {
    pub name: String,
    /// Box id of the folder it goes to.
    pub folder_id: String,
    pub state: UploadStage,
    /// Its latest bytes and journal record are on the local disk (fsynced): a crash or power
    /// loss cannot lose them.
    #[serde(default)]
    pub durable: bool,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The last error (retrying or failed), or why it is held.
    pub error: Option<String>,
}

/// Where a pending upload stands, as the control channel reports it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UploadStage {
    /// Still open for writing.
    Writing,
    /// Waiting out the write-back delay (or an upload slot).
    Waiting,
    Uploading,
    /// Every byte is up; Box is committing them.
    Committing,
    /// The content is in Box; its POSIX attributes (metadata) are being stored.
    Attributes,
    Retrying,
    Failed,
    /// Kept out of Box after a system crash until `boxfs recover` decides.
    Held,
    /// Read from the journal: no daemon runs to say more.
    Pending,
}

impl std::fmt::Display for UploadStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self {
            UploadStage::Writing => "writing",
            UploadStage::Waiting => "waiting",
            UploadStage::Uploading => "uploading",
            UploadStage::Committing => "committing",
            UploadStage::Attributes => "attributes",
            UploadStage::Retrying => "retrying",
            UploadStage::Failed => "failed",
            UploadStage::Held => "held",
            UploadStage::Pending => "pending",
        };
        f.pad(word)
    }
}

impl From<UploadInfo> for Upload {
    fn from(u: UploadInfo) -> Upload {
        let state = match u.state {
            UploadState::Writing => UploadStage::Writing,
            UploadState::Waiting => UploadStage::Waiting,
            UploadState::Uploading => UploadStage::Uploading,
            UploadState::Committing => UploadStage::Committing,
            UploadState::Attributes => UploadStage::Attributes,
            UploadState::Retrying => UploadStage::Retrying,
            UploadState::Failed => UploadStage::Failed,
            UploadState::Held => UploadStage::Held,
            UploadState::Pending => UploadStage::Pending,
        };
        Upload {
            name: u.name,
            folder_id: u.folder_id,
            state,
            durable: u.durable,
            bytes_done: u.bytes_done,
            bytes_total: u.bytes_total,
            error: u.error,
        }
    }
}

/// The answer to `recover`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecoverDone {
    /// Held entries decided on (0: none at that path).
    pub decided: usize,
    pub error: Option<String>,
}

/// Paths are relative to the mount's root.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    Status {
        #[serde(default)]
        path: Option<PathBuf>,
    },
    Sync {
        /// Nothing: everything pending.
        #[serde(default)]
        paths: Vec<PathBuf>,
    },
    /// Upload (or discard) the entry held after a system crash for the file at `path`.
    Recover { path: PathBuf, upload: bool },
    /// Keep these files and folders on this device; with `wait`, report until they are.
    Pin {
        paths: Vec<PathBuf>,
        #[serde(default)]
        wait: bool,
    },
    /// Stop keeping these (pinned themselves) on this device.
    Unpin { paths: Vec<PathBuf> },
}

/// Sockets: `$XDG_RUNTIME_DIR/boxfs/mounts`, else `/tmp/boxfs-UID/mounts`.
fn socket_dir() -> PathBuf {
    boxfs_io::runtime_dir::runtime_dir().join("mounts")
}

/// Registry files: `$XDG_CACHE_HOME/boxfs/mounts`.
fn registry_dir() -> PathBuf {
    crate::config::cache_root().join("mounts")
}

/// The registry file and socket of a mountpoint (keyed by its absolute path). Their
/// directories are made (0700) only by the mount that writes them: see `private_parent`.
pub fn paths_for(mountpoint: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let abs = std::path::absolute(mountpoint)?;
    let key = hex::encode(&Sha1::digest(abs.as_os_str().as_encoded_bytes())[..8]);
    Ok((registry_dir().join(format!("{key}.json")), socket_dir().join(format!("{key}.sock"))))
}

/// Creates the directory of `file` (and its parent) with mode 0700.
pub fn private_parent(file: &Path) -> std::io::Result<()> {
    boxfs_io::runtime_dir::private_dir(file.parent().expect("control files live in a dir").to_path_buf()).map(|_| ())
}

/// Writes a registry entry atomically (0600).
pub fn register(entry: &MountEntry) -> std::io::Result<()> {
    let (json, _) = paths_for(&entry.mountpoint)?;
    private_parent(&json)?;
    boxfs_io::atomic_file::write_atomic(&json, &serde_json::to_vec_pretty(entry).expect("entry serializes"))
}

/// The registry entry of a mountpoint, if one was written.
pub fn registered(mountpoint: &Path) -> Result<MountEntry, ControlError> {
    let (json, _) = paths_for(mountpoint)?;
    match std::fs::read(&json) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ControlError::NotMounted(mountpoint.into())),
        Err(e) => Err(e.into()),
    }
}

/// Every registered mount whose mountpoint is mounted or still exists (entries of vanished
/// mountpoints are dropped).
pub fn all_registered() -> std::io::Result<Vec<MountEntry>> {
    let mut out = Vec::new();
    let dir = match std::fs::read_dir(registry_dir()) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mounted = mountpoints();
    for entry in dir {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(m) = std::fs::read(&path)
            .map_err(ControlError::from)
            .and_then(|b| Ok(serde_json::from_slice::<MountEntry>(&b)?))
        else {
            continue;
        };
        if mounted.contains(&m.mountpoint) || m.mountpoint.is_dir() {
            out.push(m);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    out.sort_by(|a: &MountEntry, b| a.mountpoint.cmp(&b.mountpoint));
    Ok(out)
}

/// The mountpoints the kernel has now (`/proc/self/mountinfo`). A mountpoint found there is
/// not `stat`ed: that would ask its daemon, which may be busy or hung.
fn mountpoints() -> std::collections::HashSet<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().filter_map(|line| line.split(' ').nth(4)).map(|p| PathBuf::from(unescape_mountinfo(p))).collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as `\040`-style octal.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mountpoints of the running mounts of saved account `account`.
pub fn running_mounts_of(account: &str) -> Vec<PathBuf> {
    all_registered()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.account.as_deref() == Some(account) && m.pid.is_some_and(boxfs_io::runtime_dir::process_alive))
        .map(|m| m.mountpoint)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(super::unescape_mountinfo(r"/tmp/a\040b\011c\134d"), "/tmp/a b\tc\\d");
        assert_eq!(super::unescape_mountinfo("/plain"), "/plain");
        assert!(super::mountpoints().contains(std::path::Path::new("/")));
    }
}
