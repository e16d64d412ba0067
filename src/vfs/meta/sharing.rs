//! What the mount knows of Box's shared links and locks beyond each file's own lock
//! (`inode::Meta::lock`): the Box user it acts as (learnt once, when a lock first has to be
//! told apart from ours), the files it locked for their writers (`lock_on_open`), which are
//! the only locks it releases by itself, and the value of a shared link or lock just read for
//! a size probe (`getxattr` with no buffer, which `getfattr` sends before the read itself),
//! kept for that read only and at most [`PROBE_KEPT`]. Nothing here calls Box.
//!
//! Invariant: [`BoxSharing::release_all`] returns only once no release of a single file
//! ([`BoxSharing::release_for_writers`]) is still unlocking it in Box: whoever releases a file
//! holds an [`Unlocking`] until its unlock call has an answer, so an unmount that follows never
//! leaves a lock behind because the process ended during that call.

use super::inode::Ino;
use boxfs_api::model::Lock;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{RwLock, RwLockReadGuard};

/// How long a value read for a size probe waits for the read that follows it.
pub const PROBE_KEPT: Duration = Duration::from_secs(1);

/// A value read for a size probe: the item, the attribute, the value, when it was read.
type Probed = (Ino, String, Vec<u8>, Instant);

#[derive(Default)]
pub struct BoxSharing {
    me: OnceLock<String>,
    held_for_writers: Mutex<HashSet<Ino>>,
    /// Read by each release of one file until its unlock call is answered; written by
    /// [`BoxSharing::release_all`], which so waits for them.
    unlocks: RwLock<()>,
    probed: Mutex<Option<Probed>>,
}

/// A file released for its writers, being unlocked in Box: keep it until the unlock call has
/// an answer.
pub struct Unlocking<'a> {
    _guard: RwLockReadGuard<'a, ()>,
}

impl BoxSharing {
    /// The id of the Box user the mount acts as, once known.
    pub fn me(&self) -> Option<&str> {
        self.me.get().map(String::as_str)
    }

    /// Records who the mount acts as (the first answer wins: it cannot change).
    pub fn learn_me(&self, id: String) -> &str {
        self.me.get_or_init(|| id)
    }

    fn held(&self) -> MutexGuard<'_, HashSet<Ino>> {
        self.held_for_writers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `ino` as locked for its writers; false when it is already.
    pub fn take_for_writers(&self, ino: Ino) -> bool {
        self.held().insert(ino)
    }

    /// Forgets every file locked for its writers, once the releases of single files under way
    /// are done; returns them.
    pub async fn release_all(&self) -> Vec<Ino> {
        let _no_unlocks = self.unlocks.write().await;
        self.held().drain().collect()
    }

    /// Forgets that `ino` was locked for its writers (`None` when it was not); hold the answer
    /// until the file is unlocked in Box.
    pub async fn release_for_writers(&self, ino: Ino) -> Option<Unlocking<'_>> {
        let unlocking = Unlocking { _guard: self.unlocks.read().await };
        self.held().remove(&ino).then_some(unlocking)
    }

    fn probed(&self) -> MutexGuard<'_, Option<Probed>> {
        self.probed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `value` of attribute `name` of `ino`, just read for a size probe.
    pub fn keep_probed(&self, ino: Ino, name: &str, value: Vec<u8>) {
        *self.probed() = Some((ino, name.to_string(), value, Instant::now()));
    }

    /// The value kept for a read of `name` of `ino` after its size probe (once).
    pub fn take_probed(&self, ino: Ino, name: &str) -> Option<Vec<u8>> {
        let mut probed = self.probed();
        match probed.take() {
            Some((i, n, value, at)) if i == ino && n == name && at.elapsed() < PROBE_KEPT => Some(value),
            other => {
                *probed = other;
                None
            }
        }
    }

    /// Forgets a kept value of `ino` (its link or lock changed).
    pub fn forget_probed(&self, ino: Ino) {
        let mut probed = self.probed();
        if probed.as_ref().is_some_and(|(i, ..)| *i == ino) {
            *probed = None;
        }
    }
}

/// A lock that still holds (Box may still show one whose `expired_at` has passed).
pub fn is_live(lock: &Lock) -> bool {
    lock.expired_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_none_or(|t| t > chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn releasing_all_waits_for_a_single_release_still_unlocking() {
        let s = Arc::new(BoxSharing::default());
        assert!(s.take_for_writers(1) && s.take_for_writers(2));
        let unlocking = s.release_for_writers(1).await.expect("1 was held");
        assert!(s.release_for_writers(1).await.is_none(), "released once");
        let all = tokio::spawn({
            let s = s.clone();
            async move { s.release_all().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!all.is_finished(), "the unlock of 1 is still under way");
        drop(unlocking);
        assert_eq!(all.await.unwrap(), vec![2]);
    }
}
