//! The command side of the control channel: ask a mount's daemon for its status or to sync;
//! when no daemon answers, report what its journal holds.

use super::{all_registered, paths_for, registered, Cache, ControlError, MountEntry, Request, Status, SyncDone};
use crate::vfs::journal::Journal;
use crate::vfs::uploads::journal_uploads;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

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

/// The status of the mount at `mountpoint`: from its daemon, else from its journal.
pub fn status(mountpoint: &Path) -> Result<Status, ControlError> {
    status_of(&registered(mountpoint)?)
}

/// The status of every registered mount.
pub fn status_all() -> Result<Vec<Status>, ControlError> {
    all_registered()?.iter().map(status_of).collect()
}

fn status_of(entry: &MountEntry) -> Result<Status, ControlError> {
    let mountpoint = &entry.mountpoint;
    match connect(mountpoint, &Request::Status) {
        Ok(mut reader) => read_line(&mut reader)?.ok_or_else(|| ControlError::NoDaemon(mountpoint.clone())),
        Err(ControlError::NoDaemon(_)) => journal_status(mountpoint, &entry.cache_dir),
        Err(e) => Err(e),
    }
}

fn journal_status(mountpoint: &Path, cache_dir: &Path) -> Result<Status, ControlError> {
    let journal = Journal::open(&cache_dir.join("journal"))?;
    Ok(Status {
        mountpoint: mountpoint.into(),
        source: "journal".into(),
        pid: None,
        account: None,
        events: "unknown".into(),
        cache: Cache { dir: cache_dir.into(), used_bytes: None, capacity_bytes: None },
        api: None,
        uploads: journal_uploads(&journal)?,
        budget: None,
    })
}

/// Asks the daemon to upload everything pending now; `progress` sees a status about four
/// times a second until the queue is empty.
pub fn sync(mountpoint: &Path, mut progress: impl FnMut(&Status)) -> Result<SyncDone, ControlError> {
    let mut reader = connect(mountpoint, &Request::Sync)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(ControlError::NoDaemon(mountpoint.into()));
        }
        if let Ok(done) = serde_json::from_str::<SyncDone>(line.trim()) {
            return Ok(done);
        }
        progress(&serde_json::from_str::<Status>(line.trim())?);
    }
}
