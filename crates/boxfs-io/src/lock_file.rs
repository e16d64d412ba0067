//! Exclusive advisory locks on lock files (`flock`), taken without blocking: the kernel
//! releases a lock when its holder exits, however it exits, so a stale lock never blocks
//! anyone. Used for an account's token refreshes and for a mount's cache dir.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The lock file at `path` (created 0600), locked exclusively for as long as the returned file
/// is open; `None` while another open file description holds it.
pub fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = super::try_lock(&path).unwrap().expect("free");
        assert!(super::try_lock(&path).unwrap().is_none(), "held by another open file description");
        drop(held);
        assert!(super::try_lock(&path).unwrap().is_some(), "free again once closed");
    }
}
