//! Folder and trash listings: offset paging (with `sort`/`direction`) and marker (keyset)
//! paging, always folders first, then files, then web links. Both use the
//! `(parent_id, status, kind_rank, name_key, id)` index, so a page costs the same in a folder
//! of 100 items as in one of 100,000.

use super::item::{item_from_row, Item, ITEM_COLUMNS};
use super::{StoreError, StoreResult};
use base64::Engine;
use rusqlite::types::Value as SqlValue;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListOrder {
    Id,
    Name,
    Date,
    Size,
}

impl ListOrder {
    pub fn parse(s: &str) -> Option<ListOrder> {
        match s {
            "id" => Some(ListOrder::Id),
            "name" => Some(ListOrder::Name),
            "date" => Some(ListOrder::Date),
            "size" => Some(ListOrder::Size),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ListOrder::Id => "id",
            ListOrder::Name => "name",
            ListOrder::Date => "date",
            ListOrder::Size => "size",
        }
    }

    fn column(self) -> &'static str {
        match self {
            ListOrder::Id => "id",
            ListOrder::Name => "name_key",
            ListOrder::Date => "modified_at",
            ListOrder::Size => "size",
        }
    }
}

#[derive(Clone, Debug)]
pub enum PageRequest {
    Offset { offset: i64, limit: i64, order: ListOrder, descending: bool },
    Marker { marker: Option<String>, limit: i64 },
}

#[derive(Clone, Debug)]
pub struct Page {
    pub entries: Vec<Item>,
    /// Offset mode only.
    pub total_count: Option<i64>,
    /// Marker mode only: `None` at the end.
    pub next_marker: Option<String>,
}

/// Which items a listing covers.
#[derive(Clone, Debug)]
pub enum Scope {
    Children(i64),
    /// A user's root (this row): its children and the items others share with them.
    Root {
        root: i64,
        shared: Vec<i64>,
    },
    /// The trash of the user whose root is this row.
    Trash(i64),
}

impl Scope {
    fn filter(&self) -> (String, Vec<SqlValue>) {
        match self {
            Scope::Children(parent) => {
                ("parent_id = ? AND status = 'active'".to_string(), vec![SqlValue::Integer(*parent)])
            }
            Scope::Root { root, shared } => {
                let list = vec!["?"; shared.len()].join(",");
                let mut params = vec![SqlValue::Integer(*root)];
                params.extend(shared.iter().map(|id| SqlValue::Integer(*id)));
                (format!("(parent_id = ? OR id IN ({list})) AND status = 'active'"), params)
            }
            Scope::Trash(root) => {
                ("root_id = ? AND trashed_root = 1 AND status = 'trashed'".to_string(), vec![SqlValue::Integer(*root)])
            }
        }
    }
}

type MarkerKey = (i64, String, i64);

fn encode_marker(key: &MarkerKey) -> String {
    let json = serde_json::to_vec(key).expect("marker key serializes");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_marker(marker: &str) -> StoreResult<MarkerKey> {
    let invalid = || StoreError::bad_request("invalid_parameter", "Invalid value for 'marker'");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(marker).map_err(|_| invalid())?;
    serde_json::from_slice(&raw).map_err(|_| invalid())
}

impl super::Store {
    pub fn list(&self, scope: Scope, req: &PageRequest) -> StoreResult<Page> {
        self.read(|conn| {
            let (filter, mut params) = scope.filter();
            match req {
                PageRequest::Offset { offset, limit, order, descending } => {
                    let total: i64 = conn.query_row(
                        &format!("SELECT COUNT(*) FROM items WHERE {filter}"),
                        rusqlite::params_from_iter(params.iter()),
                        |r| r.get(0),
                    )?;
                    let dir = if *descending { "DESC" } else { "ASC" };
                    let sql = format!(
                        "SELECT {ITEM_COLUMNS} FROM items WHERE {filter} ORDER BY kind_rank ASC, {col} {dir}, id {dir} LIMIT ? OFFSET ?",
                        col = order.column()
                    );
                    params.push(SqlValue::Integer(*limit));
                    params.push(SqlValue::Integer(*offset));
                    let mut stmt = conn.prepare(&sql)?;
                    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), item_from_row)?;
                    let entries = rows.collect::<Result<Vec<_>, _>>()?;
                    Ok(Page { entries, total_count: Some(total), next_marker: None })
                }
                PageRequest::Marker { marker, limit } => {
                    let mut sql = format!("SELECT {ITEM_COLUMNS}, kind_rank, name_key FROM items WHERE {filter}");
                    if let Some(m) = marker {
                        let (rank, key, id) = decode_marker(m)?;
                        sql.push_str(" AND (kind_rank, name_key, id) > (?, ?, ?)");
                        params.extend([SqlValue::Integer(rank), SqlValue::Text(key), SqlValue::Integer(id)]);
                    }
                    sql.push_str(" ORDER BY kind_rank, name_key, id LIMIT ?");
                    params.push(SqlValue::Integer(*limit + 1));
                    let mut stmt = conn.prepare(&sql)?;
                    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                        let item = item_from_row(r)?;
                        let key: MarkerKey = (r.get(20)?, r.get(21)?, item.id);
                        Ok((item, key))
                    })?;
                    let mut rows = rows.collect::<Result<Vec<_>, _>>()?;
                    let more = rows.len() as i64 > *limit;
                    rows.truncate(*limit as usize);
                    let next_marker = if more { rows.last().map(|(_, key)| encode_marker(key)) } else { None };
                    Ok(Page { entries: rows.into_iter().map(|(item, _)| item).collect(), total_count: None, next_marker })
                }
            }
        })
    }

    /// SQLite's query plans for the listing queries of `folder` (first marker page, a later
    /// marker page, a name-sorted offset page and the count), so that tests can check that
    /// listings are index-only, whatever the folder size.
    pub fn explain_listing_plans(&self, folder: i64) -> StoreResult<Vec<String>> {
        let (filter, _) = Scope::Children(folder).filter();
        let queries = [
            format!("SELECT {ITEM_COLUMNS} FROM items WHERE {filter} ORDER BY kind_rank, name_key, id LIMIT 1001"),
            format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE {filter} AND (kind_rank, name_key, id) > (1, 'x', 5) \
                 ORDER BY kind_rank, name_key, id LIMIT 1001"
            ),
            format!("SELECT {ITEM_COLUMNS} FROM items WHERE {filter} ORDER BY kind_rank ASC, name_key ASC, id ASC LIMIT 1000 OFFSET 5"),
            format!("SELECT COUNT(*) FROM items WHERE {filter}"),
        ];
        self.read(|conn| {
            let mut plans = Vec::new();
            for q in queries {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {q}"))?;
                let rows = stmt.query_map([folder], |r| r.get::<_, String>(3))?;
                plans.push(rows.collect::<Result<Vec<_>, _>>()?.join("; "));
            }
            Ok(plans)
        })
    }

    /// Number of active children of a folder.
    pub fn child_count(&self, folder: i64) -> StoreResult<i64> {
        self.read(|c| {
            Ok(c.query_row("SELECT COUNT(*) FROM items WHERE parent_id = ?1 AND status = 'active'", [folder], |r| {
                r.get(0)
            })?)
        })
    }
}
