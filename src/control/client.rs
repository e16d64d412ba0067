//! The command side of the control channel: find the mount a path lies in, ask its daemon for
//! a status, a sync, a recovery decision, a pin or an unpin; when no daemon answers, report
//! what its journal holds.

use super::{
    all_registered, paths_for, registered, Cache, ControlError, MountEntry, PinDone, PinsNow, RecoverDone, Request,
    Status, SyncDone,
};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

fn connect(mountpoint: &Path, request: &Request) -> Result<BufReader<UnixStream>, ControlError> {
    let (_, socket) = paths_for(mountpoint)?;
    let mut stream = UnixStream::connect(&socket).map_err(|_| ControlError::NoDaemon(mountpoint.into()))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    Ok(BufReader::new(stream))
}

fn read_line<T: serde::de::DeserializeOwned>(reader: &mut BufReader<UnixStream>) -> Result<Option<T>, ControlError> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(line.trim())?))
}

/// The registered mount `path` lies in (the one with the longest mountpoint that is a prefix
/// of it), and `path` relative to the mount's root (empty for the mountpoint itself).
pub fn locate(path: &Path) -> Result<(MountEntry, PathBuf), ControlError> {
    let mounts = all_registered()?;
    let find = |p: &Path| {
        mounts
            .iter()
            .filter_map(|m| p.strip_prefix(&m.mountpoint).ok().map(|rest| (m.clone(), rest.to_path_buf())))
            .max_by_key(|(m, _)| m.mountpoint.as_os_str().len())
    };
    let absolute = std::path::absolute(path)?;
    // A path given through a symlink is found by where it leads (the mountpoint itself is
    // not resolved: its daemon may not answer).
    find(&absolute)
        .or_else(|| {
            absolute.parent().and_then(|d| d.canonicalize().ok()).and_then(|d| find(&d.join(absolute.file_name()?)))
        })
        .ok_or_else(|| ControlError::NotMounted(path.into()))
}

/// The status of the mount at or around `path`: of the whole mount for its mountpoint, else of
/// the file or folder at `path` (the daemon's view), from its daemon, else from its journal.
pub fn status(path: &Path) -> Result<Status, ControlError> {
    let (entry, inside) = match registered(path) {
        Ok(entry) => (entry, PathBuf::new()),
        Err(ControlError::NotMounted(_)) => locate(path)?,
        Err(e) => return Err(e),
    };
    let path = (!inside.as_os_str().is_empty()).then_some(inside);
    status_of(&entry, path)
}

/// The status of every registered mount.
pub fn status_all() -> Result<Vec<Status>, ControlError> {
    all_registered()?.iter().map(|entry| status_of(entry, None)).collect()
}

fn status_of(entry: &MountEntry, path: Option<PathBuf>) -> Result<Status, ControlError> {
    let mountpoint = &entry.mountpoint;
    match connect(mountpoint, &Request::Status { path }) {
        Ok(mut reader) => read_line(&mut reader)?.ok_or_else(|| ControlError::NoDaemon(mountpoint.clone())),
        Err(ControlError::NoDaemon(_)) => journal_status(mountpoint, &entry.cache_dir),
        Err(e) => Err(e),
    }
}

fn journal_status(mountpoint: &Path, cache_dir: &Path) -> Result<Status, ControlError> {
    Ok(Status {
        mountpoint: mountpoint.into(),
        source: "journal".into(),
        pid: None,
        account: None,
        connection: super::Reachability::default(),
        events: "unknown".into(),
        cache: Cache { dir: cache_dir.into(), used_bytes: None, capacity_bytes: None, pinned_bytes: None },
        api: None,
        uploads: crate::vfs::uploads::in_journal(cache_dir)?.into_iter().map(super::Upload::from).collect(),
        path: None,
        budget: None,
        pins: Vec::new(),
    })
}

/// Asks the daemon of the mount at `mountpoint` to pin `paths` (relative to its root); with
/// `wait`, `progress` sees the pins about four times a second until they are downloaded.
pub fn pin(
    mountpoint: &Path,
    paths: Vec<PathBuf>,
    wait: bool,
    progress: impl FnMut(&PinsNow),
) -> Result<PinDone, ControlError> {
    let reader = connect(mountpoint, &Request::Pin { paths, wait })?;
    follow(mountpoint, reader, progress)
}

/// Asks the daemon of the mount at `mountpoint` to unpin `paths` (relative to its root).
pub fn unpin(mountpoint: &Path, paths: Vec<PathBuf>) -> Result<PinDone, ControlError> {
    let mut reader = connect(mountpoint, &Request::Unpin { paths })?;
    read_line(&mut reader)?.ok_or_else(|| ControlError::NoDaemon(mountpoint.into()))
}

/// Asks the daemon of the mount at `mountpoint` to upload what is pending under `paths`
/// (relative to its root; none: everything) now; `progress` sees a status about four times a
/// second until that is in Box.
pub fn sync(mountpoint: &Path, paths: Vec<PathBuf>, progress: impl FnMut(&Status)) -> Result<SyncDone, ControlError> {
    let reader = connect(mountpoint, &Request::Sync { paths })?;
    follow(mountpoint, reader, progress)
}

/// Reads a streamed answer: `Progress` lines, each shown to `progress`, until the `Done` line.
fn follow<Done: serde::de::DeserializeOwned, Progress: serde::de::DeserializeOwned>(
    mountpoint: &Path,
    mut reader: impl BufRead,
    mut progress: impl FnMut(&Progress),
) -> Result<Done, ControlError> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(ControlError::NoDaemon(mountpoint.into()));
        }
        if let Ok(done) = serde_json::from_str::<Done>(line.trim()) {
            return Ok(done);
        }
        progress(&serde_json::from_str::<Progress>(line.trim())?);
    }
}

/// Asks the daemon of the mount `path` lies in to upload (or discard) the entry held for it.
pub fn recover(path: &Path, upload: bool) -> Result<RecoverDone, ControlError> {
    let (entry, inside) = locate(path)?;
    let mut reader = connect(&entry.mountpoint, &Request::Recover { path: inside, upload })?;
    read_line(&mut reader)?.ok_or(ControlError::NoDaemon(entry.mountpoint))
}
