//! The token file of an OAuth login ([`StoredTokens`], its content), shared by every process
//! of the account, and the advisory lock that serializes its refreshes across processes.
//!
//! The lock is an exclusive `flock` on a lock file beside the token file (`NAME.tokens.json` →
//! `NAME.tokens.lock`, mode 0600). The kernel releases it when its holder exits, however it
//! exits, so a stale lock never blocks. It is taken with a non-blocking try and short async
//! sleeps, never by parking a runtime thread. Whoever deletes the lock file does so while holding
//! it, and a taker checks after locking that the path still names the file it locked (else it
//! locks the new one), so a deletion never lets two holders in at once.
//!
//! The token file is replaced atomically (temp file + rename, mode 0600), so a [`Stamp`] of it
//! (inode, size, mtime) changes with every write: a process notices a pair rotated by another
//! process, or a new login, with one `stat`.

use super::error::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a taker sleeps between tries while another process holds the lock.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// A wait for the lock this long is worth a line in the log.
const LONG_WAIT: Duration = Duration::from_secs(5);

/// The token file's content.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredTokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds (fractional; whole in files of older versions); 0 when unknown.
    #[serde(default)]
    pub expires_at: f64,
    /// Seconds the access token was granted for; 0 when unknown (files of older versions).
    #[serde(default)]
    pub lifetime: f64,
}

impl StoredTokens {
    /// A token that is used as it is (developer tokens): no refresh, no known expiry.
    pub fn fixed(access_token: String) -> StoredTokens {
        StoredTokens { access_token, refresh_token: None, expires_at: 0.0, lifetime: 0.0 }
    }

    pub fn load(path: &Path) -> ApiResult<StoredTokens> {
        TokenFile::new(path).load().map(|(tokens, _)| tokens)
    }

    /// Writes the file atomically: a 0600 temp file in the same dir, fsync, rename, fsync dir.
    pub fn save_atomic(&self, path: &Path) -> ApiResult<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).expect("tokens serialize");
        Ok(boxfs_io::atomic_file::write_atomic(path, json.as_bytes())?)
    }
}

/// Which version of the token file a process has read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        Stamp { dev: meta.dev(), ino: meta.ino(), len: meta.len(), mtime_ns }
    }
}

/// The token file of one login and its lock file.
#[derive(Clone, Debug)]
pub struct TokenFile {
    path: PathBuf,
    lock_path: PathBuf,
}

/// Held while a process refreshes (or replaces, or deletes) the tokens; dropping it unlocks.
#[derive(Debug)]
pub struct TokenLock {
    _file: File,
}

impl TokenFile {
    pub fn new(path: impl Into<PathBuf>) -> TokenFile {
        let path = path.into();
        let lock_path = path.with_extension("lock");
        TokenFile { path, lock_path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's stamp now; `None` when it does not exist (logged out).
    pub fn stamp(&self) -> Option<Stamp> {
        std::fs::metadata(&self.path).ok().map(|m| Stamp::of(&m))
    }

    /// Reads the tokens and the stamp of the version read.
    pub fn load(&self) -> ApiResult<(StoredTokens, Stamp)> {
        let text =
            |e: std::io::Error| ApiError::TokenFile(format!("cannot read {}: {e} (log in first)", self.path.display()));
        let mut file = File::open(&self.path).map_err(text)?;
        let stamp = Stamp::of(&file.metadata().map_err(text)?);
        let mut json = String::new();
        std::io::Read::read_to_string(&mut file, &mut json).map_err(text)?;
        let tokens = serde_json::from_str(&json)
            .map_err(|e| ApiError::TokenFile(format!("{} is not a token file: {e}", self.path.display())))?;
        Ok((tokens, stamp))
    }

    /// Replaces the file atomically (mode 0600, fsynced) and returns the new version's stamp.
    /// Call it holding the lock.
    pub fn save(&self, tokens: &StoredTokens) -> ApiResult<Stamp> {
        tokens.save_atomic(&self.path)?;
        self.stamp().ok_or_else(|| ApiError::TokenFile(format!("{} vanished after writing it", self.path.display())))
    }

    /// Waits for the account's lock (another process may hold it while it refreshes).
    pub async fn lock(&self) -> ApiResult<TokenLock> {
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            if let Some(lock) = self.try_lock()? {
                return Ok(lock);
            }
            if !said && started.elapsed() > LONG_WAIT {
                said = true;
                tracing::info!(lock = %self.lock_path.display(), "waiting for another boxfs process to finish renewing the tokens");
            }
            tokio::time::sleep(LOCK_RETRY).await;
        }
    }

    /// The lock if it is free now.
    fn try_lock(&self) -> ApiResult<Option<TokenLock>> {
        let Some(file) = boxfs_io::lock_file::try_lock(&self.lock_path)
            .map_err(|e| ApiError::TokenFile(format!("cannot lock {}: {e}", self.lock_path.display())))?
        else {
            return Ok(None);
        };
        // Locked, but the file may have been deleted (and maybe made anew) since we opened it.
        let locked = file.metadata()?;
        let current = std::fs::metadata(&self.lock_path).ok();
        if current.is_some_and(|c| c.dev() == locked.dev() && c.ino() == locked.ino()) {
            Ok(Some(TokenLock { _file: file }))
        } else {
            Ok(None)
        }
    }

    /// Deletes the token file and the lock file; call it holding the lock. True when there
    /// were tokens to delete.
    pub fn remove(&self, _held: &TokenLock) -> std::io::Result<bool> {
        let removed = match std::fs::remove_file(&self.path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        match std::fs::remove_file(&self.lock_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(removed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(access: &str) -> StoredTokens {
        StoredTokens { access_token: access.into(), refresh_token: Some("r".into()), expires_at: 0.0, lifetime: 0.0 }
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_a_deleted_lock_file_is_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("a.tokens.json"));
        assert_eq!(file.lock_path, dir.path().join("a.tokens.lock"));
        let held = file.lock().await.unwrap();
        assert!(file.try_lock().unwrap().is_none(), "a second open file description is refused");
        let stamp = file.save(&tokens("one")).unwrap();
        assert_eq!(file.load().unwrap(), (tokens("one"), stamp));
        assert_ne!(file.save(&tokens("two")).unwrap(), stamp, "every write is a new version");
        assert!(file.remove(&held).unwrap());
        assert!(file.stamp().is_none());
        // The holder's lock is on the deleted file: a new taker gets the new lock file at once.
        let again = file.try_lock().unwrap();
        assert!(again.is_some());
        drop(held);
    }
}
