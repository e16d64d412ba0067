//! What the mount knows of Box's shared links and locks beyond each file's own lock
//! (`inode::Meta::lock`): the Box user it acts as (learnt once, when a lock first has to be
//! told apart from ours), the files it locked for their writers (`lock_on_open`), which are
//! the only locks it releases by itself, and the value of a shared link or lock just read for
//! a size probe (`getxattr` with no buffer, which `getfattr` sends before the read itself),
//! kept for that read only and at most [`PROBE_KEPT`]. Nothing here calls Box.

use super::inode::Ino;
use boxfs_api::model::Lock;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long a value read for a size probe waits for the read that follows it.
pub const PROBE_KEPT: Duration = Duration::from_secs(1);

/// A value read for a size probe: the item, the attribute, the value, when it was read.
type Probed = (Ino, String, Vec<u8>, Instant);

#[derive(Default)]
pub struct BoxSharing {
    me: OnceLock<String>,
    held_for_writers: Mutex<HashSet<Ino>>,
    probed: Mutex<Option<Probed>>,
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

    /// Forgets every file locked for its writers; returns them.
    pub fn release_all(&self) -> Vec<Ino> {
        self.held().drain().collect()
    }

    /// Forgets that `ino` was locked for its writers; false when it was not.
    pub fn release_for_writers(&self, ino: Ino) -> bool {
        self.held().remove(&ino)
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
