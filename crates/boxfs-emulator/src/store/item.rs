//! Item rows (files, folders, web links) and file versions, the reads on them that every route
//! needs (get by id, ancestors, children by name), and the mark every change of an item makes
//! ([`bump`]).

use super::{now_rfc3339, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, Transaction};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Folder,
    File,
    WebLink,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Folder => "folder",
            Kind::File => "file",
            Kind::WebLink => "web_link",
        }
    }

    /// Listing order: folders, then files, then web links.
    pub fn rank(self) -> i64 {
        match self {
            Kind::Folder => 0,
            Kind::File => 1,
            Kind::WebLink => 2,
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "folder" => Some(Kind::Folder),
            "file" => Some(Kind::File),
            "web_link" => Some(Kind::WebLink),
            _ => None,
        }
    }

    pub fn not_found(self) -> StoreError {
        StoreError::NotFound { what: self.as_str() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Trashed,
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Trashed => "trashed",
            Status::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "trashed" => Status::Trashed,
            "deleted" => Status::Deleted,
            _ => Status::Active,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Item {
    pub id: i64,
    pub kind: Kind,
    pub name: String,
    pub parent_id: Option<i64>,
    pub status: Status,
    pub trashed_root: bool,
    pub sequence_id: i64,
    pub size: i64,
    pub sha1: Option<String>,
    pub version_id: Option<i64>,
    pub version_number: i64,
    pub created_at: Option<String>,
    pub modified_at: Option<String>,
    pub content_created_at: Option<String>,
    pub content_modified_at: Option<String>,
    pub trashed_at: Option<String>,
    pub purged_at: Option<String>,
    pub description: String,
    pub url: Option<String>,
    /// The root folder row of the tree the item is in: its owner's.
    pub root_id: i64,
}

impl Item {
    /// A user's root folder (the only items without a parent).
    pub fn is_root(&self) -> bool {
        self.parent_id.is_none() && self.kind == Kind::Folder
    }

    pub fn etag(&self) -> Option<String> {
        (!self.is_root()).then(|| self.sequence_id.to_string())
    }

    /// The lowercase key under which Box enforces name uniqueness.
    pub fn name_key(name: &str) -> String {
        name.to_lowercase()
    }
}

pub const ITEM_COLUMNS: &str = "id, kind, name, parent_id, status, trashed_root, sequence_id, size, sha1, version_id, \
     version_number, created_at, modified_at, content_created_at, content_modified_at, trashed_at, purged_at, \
     description, url, root_id";

pub fn item_from_row(r: &Row<'_>) -> rusqlite::Result<Item> {
    let kind: String = r.get(1)?;
    let status: String = r.get(4)?;
    Ok(Item {
        id: r.get(0)?,
        kind: Kind::parse(&kind).unwrap_or(Kind::File),
        name: r.get(2)?,
        parent_id: r.get(3)?,
        status: Status::parse(&status),
        trashed_root: r.get(5)?,
        sequence_id: r.get(6)?,
        size: r.get(7)?,
        sha1: r.get(8)?,
        version_id: r.get(9)?,
        version_number: r.get(10)?,
        created_at: r.get(11)?,
        modified_at: r.get(12)?,
        content_created_at: r.get(13)?,
        content_modified_at: r.get(14)?,
        trashed_at: r.get(15)?,
        purged_at: r.get(16)?,
        description: r.get(17)?,
        url: r.get(18)?,
        root_id: r.get(19)?,
    })
}

/// A file version row (`file_version` objects).
#[derive(Clone, Debug)]
pub struct Version {
    pub id: i64,
    pub file_id: i64,
    pub sha1: String,
    pub size: i64,
    pub name: String,
    pub version_number: i64,
    pub created_at: String,
    pub modified_at: String,
    pub trashed_at: Option<String>,
}

pub const VERSION_COLUMNS: &str = "id, file_id, sha1, size, name, version_number, created_at, modified_at, trashed_at";

pub fn version_from_row(r: &Row<'_>) -> rusqlite::Result<Version> {
    Ok(Version {
        id: r.get(0)?,
        file_id: r.get(1)?,
        sha1: r.get(2)?,
        size: r.get(3)?,
        name: r.get(4)?,
        version_number: r.get(5)?,
        created_at: r.get(6)?,
        modified_at: r.get(7)?,
        trashed_at: r.get(8)?,
    })
}

/// An entry of `path_collection`.
#[derive(Clone, Debug)]
pub struct Ancestor {
    pub id: i64,
    pub name: String,
    pub sequence_id: i64,
}

pub fn load_item(conn: &Connection, id: i64) -> StoreResult<Option<Item>> {
    let sql = format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1 AND status != 'deleted'");
    Ok(conn.query_row(&sql, [id], item_from_row).optional()?)
}

/// The item of that kind, whatever its status (but not purged).
pub fn load_kind(conn: &Connection, kind: Kind, id: i64) -> StoreResult<Item> {
    match load_item(conn, id)? {
        Some(item) if item.kind == kind => Ok(item),
        _ => Err(kind.not_found()),
    }
}

/// The active item of that kind; a trashed one is `Trashed` (404 `trashed` in Box).
pub fn load_active(conn: &Connection, kind: Kind, id: i64) -> StoreResult<Item> {
    let item = load_kind(conn, kind, id)?;
    match item.status {
        Status::Active => Ok(item),
        _ => Err(StoreError::Trashed),
    }
}

/// Ancestors from the root down to the direct parent.
pub fn ancestors(conn: &Connection, item: &Item) -> StoreResult<Vec<Ancestor>> {
    let mut chain = Vec::new();
    let mut next = item.parent_id;
    let mut stmt = conn.prepare_cached("SELECT id, name, sequence_id, parent_id FROM items WHERE id = ?1")?;
    while let Some(id) = next {
        let (a, parent): (Ancestor, Option<i64>) = stmt.query_row([id], |r| {
            Ok((Ancestor { id: r.get(0)?, name: r.get(1)?, sequence_id: r.get(2)? }, r.get(3)?))
        })?;
        chain.push(a);
        next = parent;
        if chain.len() > 10_000 {
            break;
        }
    }
    chain.reverse();
    Ok(chain)
}

/// The active sibling that holds `name` (case-insensitively) in `parent`, if any.
pub fn find_child(conn: &Connection, parent: i64, name: &str) -> StoreResult<Option<Item>> {
    let sql = format!("SELECT {ITEM_COLUMNS} FROM items WHERE parent_id = ?1 AND name_key = ?2 AND status = 'active'");
    Ok(conn.query_row(&sql, (parent, Item::name_key(name)), item_from_row).optional()?)
}

pub fn load_version(conn: &Connection, id: i64) -> StoreResult<Option<Version>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM versions WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], version_from_row).optional()?)
}

/// Older versions of a file, newest first (the current one is not listed, as in Box).
pub fn previous_versions(conn: &Connection, file: &Item) -> StoreResult<Vec<Version>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM versions WHERE file_id = ?1 AND id != ?2 ORDER BY id DESC");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map((file.id, file.version_id.unwrap_or(-1)), version_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks an item modified: new sequence id (and so etag), new `modified_at`.
pub fn bump(tx: &Transaction<'_>, id: i64) -> StoreResult<()> {
    tx.execute("UPDATE items SET sequence_id = sequence_id + 1, modified_at = ?2 WHERE id = ?1", (id, now_rfc3339()))?;
    Ok(())
}

impl super::Store {
    /// Any non-purged item by id (whatever its kind).
    pub fn get_any(&self, id: i64) -> StoreResult<Option<Item>> {
        self.read(|c| load_item(c, id))
    }

    /// The active item of `kind` with `id`.
    pub fn get_active(&self, kind: Kind, id: i64) -> StoreResult<Item> {
        self.read(|c| load_active(c, kind, id))
    }

    /// The item of `kind` with `id`, also when trashed.
    pub fn get_kind(&self, kind: Kind, id: i64) -> StoreResult<Item> {
        self.read(|c| load_kind(c, kind, id))
    }

    pub fn ancestors(&self, item: &Item) -> StoreResult<Vec<Ancestor>> {
        self.read(|c| ancestors(c, item))
    }

    pub fn version(&self, id: i64) -> StoreResult<Option<Version>> {
        self.read(|c| load_version(c, id))
    }

    pub fn previous_versions(&self, file: &Item) -> StoreResult<Vec<Version>> {
        self.read(|c| previous_versions(c, file))
    }

    /// The active child named `name` (case-insensitive) of `parent`.
    pub fn find_child(&self, parent: i64, name: &str) -> StoreResult<Option<Item>> {
        self.read(|c| find_child(c, parent, name))
    }
}
