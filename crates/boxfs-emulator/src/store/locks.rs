//! File locks (`PUT /files/{id}` with `lock`, or `null` to unlock). A live lock belongs to the
//! user who set it: anyone else is refused new versions, renames, moves, description, shared
//! link and metadata changes, unlocking and deletion with Box's 403 `access_denied_item_locked`,
//! and downloads too when the lock prevents them. A lock whose `expires_at` has passed no
//! longer holds.

use super::extras::Lock;
use super::item::{Item, Kind};
use super::{normalize_time, now_rfc3339, unix_now, Store, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Transaction};

/// The `lock` object of a `PUT /files/{id}`.
#[derive(Clone, Debug, Default)]
pub struct LockChange {
    pub expires_at: Option<String>,
    pub is_download_prevented: bool,
}

pub(super) fn live_lock(conn: &Connection, item_id: i64) -> StoreResult<Option<Lock>> {
    let lock = conn
        .query_row(
            "SELECT id, holder_id, created_at, expires_at, is_download_prevented FROM locks WHERE item_id = ?1",
            [item_id],
            |r| {
                Ok(Lock {
                    id: r.get(0)?,
                    holder_id: r.get(1)?,
                    created_at: r.get(2)?,
                    expires_at: r.get(3)?,
                    is_download_prevented: r.get(4)?,
                })
            },
        )
        .optional()?;
    Ok(lock.filter(Lock::is_live))
}

/// Refuses a change to `item` by `actor` while someone else holds a live lock on it.
pub(super) fn refuse_if_locked(conn: &Connection, item: &Item, actor: &str) -> StoreResult<()> {
    match live_lock(conn, item.id)? {
        Some(lock) if lock.holder_id != actor => Err(StoreError::ItemLocked),
        _ => Ok(()),
    }
}

/// Sets (`Some`) or removes (`None`) the lock of `file` on behalf of `actor`; returns the event
/// Box records, or `None` when nothing changed.
pub(super) fn apply(
    tx: &Transaction<'_>,
    file: &Item,
    actor: &str,
    change: Option<&LockChange>,
) -> StoreResult<Option<&'static str>> {
    if file.kind != Kind::File {
        return Err(StoreError::bad_request("bad_request", "Only files can be locked"));
    }
    refuse_if_locked(tx, file, actor)?;
    let existing = live_lock(tx, file.id)?;
    let Some(change) = change else {
        tx.execute("DELETE FROM locks WHERE item_id = ?1", [file.id])?;
        return Ok(existing.map(|_| "LOCK_DESTROY"));
    };
    let expires_at = match &change.expires_at {
        None => None,
        Some(t) => {
            let t = normalize_time(t)
                .ok_or_else(|| StoreError::bad_request("bad_request", "expires_at is not an RFC 3339 date-time"))?;
            let at = chrono::DateTime::parse_from_rfc3339(&t).map(|d| d.timestamp()).unwrap_or(0);
            if at <= unix_now() {
                return Err(StoreError::bad_request("bad_request", "expires_at must be in the future"));
            }
            Some(t)
        }
    };
    tx.execute("DELETE FROM locks WHERE item_id = ?1", [file.id])?;
    tx.execute(
        "INSERT INTO locks(item_id, holder_id, created_at, expires_at, is_download_prevented)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (file.id, actor, now_rfc3339(), expires_at, change.is_download_prevented),
    )?;
    Ok(Some("LOCK_CREATE"))
}

impl Store {
    /// Locks `file_id` on behalf of `holder` (a user id). Refused while another user's lock holds.
    pub fn lock_file(&self, file_id: i64, holder: &str, change: &LockChange) -> StoreResult<Lock> {
        self.write(|tx| {
            let file = super::item::load_active(tx, Kind::File, file_id)?;
            if let Some(event) = apply(tx, &file, holder, Some(change))? {
                super::item::bump(tx, file.id)?;
                super::events::record(tx, self, holder, event, file.id)?;
            }
            live_lock(tx, file.id)?.ok_or(StoreError::NotFound { what: "lock" })
        })
    }

    /// Refuses a download of `file` by `actor` when another user's lock prevents downloads.
    pub fn check_download_allowed(&self, actor: &str, file: &Item) -> StoreResult<()> {
        self.read(|c| match live_lock(c, file.id)? {
            Some(lock) if lock.is_download_prevented && lock.holder_id != actor => Err(StoreError::ItemLocked),
            _ => Ok(()),
        })
    }
}
