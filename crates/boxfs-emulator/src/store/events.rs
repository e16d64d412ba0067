//! The event log: every mutation appends an event (in the mutation's transaction) for each
//! user who sees the item (its owner and its collaborators, plus whoever the change concerns,
//! such as the item's former viewers after a move or a removed collaborator). Each gets their
//! own row, whose `source` is a snapshot of the item as it was right after the change, as
//! that user sees it: under their own path, or without a parent when they no longer see it.

use super::access::{load_viewer, Viewer};
use super::extras::load_extras;
use super::item::{ancestors, load_item};
use super::render::{self, Ctx, Repr};
use super::users::{all_users, load_user};
use super::{Store, StoreResult};
use rusqlite::{Connection, Transaction};
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct EventRow {
    pub position: i64,
    pub event_id: String,
    pub event_type: String,
    pub created_at: String,
    /// The user who made the change (`None`: the admin, in events from before there were others).
    pub created_by: Option<String>,
    pub source: Value,
}

/// Appends an event about item `id` by `actor` for everyone who sees the item now.
pub(super) fn record(tx: &Transaction<'_>, store: &Store, actor: &str, event_type: &str, id: i64) -> StoreResult<()> {
    record_for(tx, store, actor, event_type, id, Vec::new())
}

/// Like [`record`], also for the users in `also` (who may no longer see the item).
pub(super) fn record_for(
    tx: &Transaction<'_>,
    store: &Store,
    actor: &str,
    event_type: &str,
    id: i64,
    also: Vec<String>,
) -> StoreResult<()> {
    let Some(item) = load_item(tx, id)? else {
        return Ok(());
    };
    let mut audience = super::access::audience(tx, &item)?;
    for user in also {
        if !audience.contains(&user) {
            audience.push(user);
        }
    }
    let chain = ancestors(tx, &item)?;
    let repr = Repr::Standard;
    let extras = load_extras(tx, &[&item], repr.wanted())?.remove(&item.id).unwrap_or_default();
    let users = all_users(tx)?;
    let event_id = new_event_id();
    let now = super::now_rfc3339();
    let layout = render::Layout::of(&repr);
    for user_id in audience {
        let Some(user) = load_user(tx, &user_id)? else { continue };
        let viewer: Viewer = load_viewer(tx, user)?;
        let seen = viewer.access_in(&item, &chain);
        let path = seen.map(|a| a.path).unwrap_or_default();
        let ctx = Ctx { base_url: store.base_url(), viewer_root: viewer.user.root_id, users: &users };
        let perms = super::access::Perms::default();
        let source = render::Source { item: &item, path: &path, perms, ctx: &ctx, extras: &extras }.value(&layout);
        tx.execute(
            "INSERT INTO events(event_id, event_type, created_at, source, user_id, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (&event_id, event_type, &now, source.to_string(), &viewer.user.id, actor),
        )?;
    }
    Ok(())
}

/// A Box-style event id (a UUID-shaped random string).
fn new_event_id() -> String {
    let h = super::random_hex(16).to_lowercase();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn load_events(conn: &Connection, user: &str, after: i64, limit: i64) -> StoreResult<Vec<EventRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT position, event_id, event_type, created_at, created_by, source FROM events
         WHERE user_id = ?1 AND position > ?2 ORDER BY position LIMIT ?3",
    )?;
    let rows = stmt.query_map((user, after, limit), |r| {
        let source: String = r.get(5)?;
        Ok(EventRow {
            position: r.get(0)?,
            event_id: r.get(1)?,
            event_type: r.get(2)?,
            created_at: r.get(3)?,
            created_by: r.get(4)?,
            source: serde_json::from_str(&source).unwrap_or(Value::Null),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl super::Store {
    /// `user`'s events after `position`, oldest first, at most `limit`; and the position the
    /// next call starts from (past other users' events, so that they are not read again).
    pub fn events_after(&self, user: &str, position: i64, limit: i64) -> StoreResult<(Vec<EventRow>, i64)> {
        self.read(|c| {
            let rows = load_events(c, user, position, limit)?;
            let next = match rows.last() {
                Some(last) if rows.len() as i64 == limit => last.position,
                _ => c.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| r.get(0))?,
            };
            Ok((rows, next.max(position)))
        })
    }

    /// True when `user` has an event after `position`.
    pub fn has_events_after(&self, user: &str, position: i64) -> StoreResult<bool> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT EXISTS(SELECT 1 FROM events WHERE user_id = ?1 AND position > ?2)",
                (user, position),
                |r| r.get(0),
            )?)
        })
    }

    /// The newest stream position.
    pub fn latest_position(&self) -> i64 {
        *self.position_tx.borrow()
    }
}
