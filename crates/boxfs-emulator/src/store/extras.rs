//! What an item carries besides its own row: its shared link, its lock, its metadata
//! instances and whether it has collaborations, each in a table of its own keyed by the item id. They are loaded only when a
//! representation asks for them, a page of items at a time, so that listings that do not ask
//! cost nothing more.

use super::item::Item;
use super::{unix_now, StoreResult};
use rusqlite::Connection;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A shared link (`shared_links` row).
#[derive(Clone, Debug, PartialEq)]
pub struct SharedLink {
    pub token: String,
    /// `open`, `company` or `collaborators`.
    pub access: String,
    pub password: Option<String>,
    pub vanity_name: Option<String>,
    pub can_download: bool,
    pub can_edit: bool,
    pub unshared_at: Option<String>,
    pub download_count: i64,
    pub preview_count: i64,
}

impl SharedLink {
    /// A link whose `unshared_at` has passed no longer exists, as in Box.
    pub fn is_live(&self) -> bool {
        self.unshared_at.as_deref().is_none_or(|t| !time_passed(t))
    }
}

/// A lock on a file (`locks` row).
#[derive(Clone, Debug, PartialEq)]
pub struct Lock {
    pub id: i64,
    /// The user who holds the lock; only they may change the file while it holds.
    pub holder_id: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub is_download_prevented: bool,
}

impl Lock {
    /// An expired lock no longer holds (Box may still show it with a past `expired_at`; the
    /// emulator shows none).
    pub fn is_live(&self) -> bool {
        self.expires_at.as_deref().is_none_or(|t| !time_passed(t))
    }
}

/// A metadata instance on an item (`metadata_instances` row).
#[derive(Clone, Debug, PartialEq)]
pub struct MetadataInstance {
    pub scope: String,
    pub template: String,
    pub instance_id: String,
    pub version: i64,
    /// The user's keys and values (no `$` keys).
    pub data: Map<String, Value>,
}

/// Everything extra that is known about one item.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    pub shared_link: Option<SharedLink>,
    pub lock: Option<Lock>,
    pub metadata: Vec<MetadataInstance>,
    pub has_collaborations: bool,
}

/// Which extras a caller wants loaded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted {
    pub shared_link: bool,
    pub lock: bool,
    pub metadata: bool,
    pub collaborations: bool,
}

impl Extras {
    /// The first time (unix seconds) at which the clock alone makes these extras other than
    /// loaded: their live lock expires or their live shared link is unshared. `None`: never.
    /// (Expired ones are not loaded, and the clock is taken to move forward.)
    pub fn changes_at(&self) -> Option<i64> {
        let lock = self.lock.as_ref().and_then(|l| l.expires_at.as_deref());
        let link = self.shared_link.as_ref().and_then(|l| l.unshared_at.as_deref());
        lock.into_iter().chain(link).filter_map(unix_time).min()
    }
}

impl Wanted {
    pub const ALL: Wanted = Wanted { shared_link: true, lock: true, metadata: true, collaborations: true };

    fn any(self) -> bool {
        self.shared_link || self.lock || self.metadata || self.collaborations
    }
}

/// True once `rfc3339` is not in the future; never for a time that does not parse.
fn time_passed(rfc3339: &str) -> bool {
    unix_time(rfc3339).is_some_and(|t| t <= unix_now())
}

fn unix_time(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp())
}

pub(super) const LINK_COLUMNS: &str =
    "token, access, password, vanity_name, can_download, can_edit, unshared_at, download_count, preview_count";

pub(super) fn link_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<SharedLink> {
    Ok(SharedLink {
        token: r.get(at)?,
        access: r.get(at + 1)?,
        password: r.get(at + 2)?,
        vanity_name: r.get(at + 3)?,
        can_download: r.get(at + 4)?,
        can_edit: r.get(at + 5)?,
        unshared_at: r.get(at + 6)?,
        download_count: r.get(at + 7)?,
        preview_count: r.get(at + 8)?,
    })
}

/// Loads the extras of `items` that `wanted` asks for, live ones only.
pub(super) fn load_extras(conn: &Connection, items: &[&Item], wanted: Wanted) -> StoreResult<HashMap<i64, Extras>> {
    let mut out: HashMap<i64, Extras> = HashMap::new();
    if items.is_empty() || !wanted.any() {
        return Ok(out);
    }
    let ids: Vec<rusqlite::types::Value> = items.iter().map(|i| rusqlite::types::Value::Integer(i.id)).collect();
    let list = vec!["?"; ids.len()].join(",");
    let params = rusqlite::params_from_iter(ids.iter());
    if wanted.shared_link {
        let mut stmt =
            conn.prepare(&format!("SELECT item_id, {LINK_COLUMNS} FROM shared_links WHERE item_id IN ({list})"))?;
        let rows = stmt.query_map(params.clone(), |r| Ok((r.get::<_, i64>(0)?, link_from_row(r, 1)?)))?;
        for row in rows {
            let (id, link) = row?;
            if link.is_live() {
                out.entry(id).or_default().shared_link = Some(link);
            }
        }
    }
    if wanted.lock {
        let mut stmt = conn.prepare(&format!(
            "SELECT item_id, id, holder_id, created_at, expires_at, is_download_prevented FROM locks
             WHERE item_id IN ({list})"
        ))?;
        let rows = stmt.query_map(params.clone(), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Lock {
                    id: r.get(1)?,
                    holder_id: r.get(2)?,
                    created_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    is_download_prevented: r.get(5)?,
                },
            ))
        })?;
        for row in rows {
            let (id, lock) = row?;
            if lock.is_live() {
                out.entry(id).or_default().lock = Some(lock);
            }
        }
    }
    if wanted.collaborations {
        let mut stmt = conn.prepare(&format!(
            "SELECT DISTINCT item_id FROM collaborations WHERE status != 'rejected' AND item_id IN ({list})"
        ))?;
        for id in stmt.query_map(params.clone(), |r| r.get::<_, i64>(0))? {
            out.entry(id?).or_default().has_collaborations = true;
        }
    }
    if wanted.metadata {
        let mut stmt = conn.prepare(&format!(
            "SELECT item_id, scope, template, instance_id, version, data FROM metadata_instances
             WHERE item_id IN ({list}) ORDER BY item_id, scope, template"
        ))?;
        let rows = stmt.query_map(params, |r| Ok((r.get::<_, i64>(0)?, metadata_from_row(r, 1)?)))?;
        for row in rows {
            let (id, instance) = row?;
            out.entry(id).or_default().metadata.push(instance);
        }
    }
    Ok(out)
}

pub(super) fn metadata_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<MetadataInstance> {
    let data: String = r.get(at + 4)?;
    Ok(MetadataInstance {
        scope: r.get(at)?,
        template: r.get(at + 1)?,
        instance_id: r.get(at + 2)?,
        version: r.get(at + 3)?,
        data: serde_json::from_str(&data).unwrap_or_default(),
    })
}

impl super::Store {
    /// The extras `wanted` of each of `items` (absent from the map: none).
    pub fn extras(&self, items: &[&Item], wanted: Wanted) -> StoreResult<HashMap<i64, Extras>> {
        self.read(|c| load_extras(c, items, wanted))
    }

    /// The extras `wanted` of one item.
    pub fn extras_of(&self, item: &Item, wanted: Wanted) -> StoreResult<Extras> {
        Ok(self.extras(&[item], wanted)?.remove(&item.id).unwrap_or_default())
    }
}
