//! The event log: every mutation appends an event (in the mutation's transaction) whose
//! `source` is a snapshot of the item as it was right after the change.

use super::extras::load_extras;
use super::item::{ancestors, load_item};
use super::{Store, StoreResult};
use crate::render::{self, Repr};
use rusqlite::{Connection, Transaction};
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct EventRow {
    pub position: i64,
    pub event_id: String,
    pub event_type: String,
    pub created_at: String,
    pub source: Value,
}

/// Appends an event about item `id` (rendered as it is now inside `tx`, in its standard
/// representation).
pub(super) fn record(tx: &Transaction<'_>, store: &Store, event_type: &str, id: i64) -> StoreResult<()> {
    let Some(item) = load_item(tx, id)? else {
        return Ok(());
    };
    let path = ancestors(tx, &item)?;
    let repr = Repr::Standard;
    let extras = load_extras(tx, &[&item], repr.wanted())?.remove(&item.id).unwrap_or_default();
    let source = render::item(&item, &path, &store.render_ctx(), &repr, &extras);
    tx.execute(
        "INSERT INTO events(event_id, event_type, created_at, source) VALUES (?1, ?2, ?3, ?4)",
        (new_event_id(), event_type, super::now_rfc3339(), source.to_string()),
    )?;
    Ok(())
}

/// A Box-style event id (a UUID-shaped random string).
fn new_event_id() -> String {
    let h = super::random_hex(16).to_lowercase();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn load_events(conn: &Connection, after: i64, limit: i64) -> StoreResult<Vec<EventRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT position, event_id, event_type, created_at, source FROM events WHERE position > ?1 ORDER BY position LIMIT ?2",
    )?;
    let rows = stmt.query_map((after, limit), |r| {
        let source: String = r.get(4)?;
        Ok(EventRow {
            position: r.get(0)?,
            event_id: r.get(1)?,
            event_type: r.get(2)?,
            created_at: r.get(3)?,
            source: serde_json::from_str(&source).unwrap_or(Value::Null),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl super::Store {
    /// Events after `position`, oldest first, at most `limit`.
    pub fn events_after(&self, position: i64, limit: i64) -> StoreResult<Vec<EventRow>> {
        self.read(|c| load_events(c, position, limit))
    }

    /// The newest stream position.
    pub fn latest_position(&self) -> i64 {
        *self.position_tx.borrow()
    }
}
