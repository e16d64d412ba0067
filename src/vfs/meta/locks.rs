//! What the mount knows of Box's locks beyond each file's own (`inode::Meta::lock`): the Box
//! user it acts as (learnt once, when a lock first has to be told apart from ours) and the
//! files it locked for their writers (`lock_on_open`), which are the only locks it releases
//! by itself. Nothing here calls Box.

use super::inode::Ino;
use boxfs_api::model::Lock;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, OnceLock};

#[derive(Default)]
pub struct BoxLocks {
    me: OnceLock<String>,
    held_for_writers: Mutex<HashSet<Ino>>,
}

impl BoxLocks {
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
}

/// A lock that still holds (Box may still show one whose `expired_at` has passed).
pub fn is_live(lock: &Lock) -> bool {
    lock.expired_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_none_or(|t| t > chrono::Utc::now())
}
