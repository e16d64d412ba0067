//! Mutations that create or change items: folders, web links, file uploads and new versions,
//! updates (rename, move, description, web link URL, shared link, lock), copies and version
//! promotion. Each checks Box's rules (names, case-insensitive uniqueness, `If-Match`, quota,
//! cycles, other users' locks) and records its events.

use super::blobs::BlobInfo;
use super::events::{record, record_for};
use super::item::{
    ancestors, bump, find_child, item_from_row, load_active, load_version, Item, Kind, Version, ITEM_COLUMNS,
};
use super::locks::{self, refuse_if_locked, LockChange};
use super::names::validate_name;
use super::render;
use super::shares::{self, SharedLinkChange};
use super::users::{owner_of_root, User};
use super::{adjust_space, now_rfc3339, space_used, Store, StoreError, StoreResult};
use rusqlite::Transaction;

pub struct NewFile {
    pub parent_id: i64,
    pub name: String,
    pub blob: BlobInfo,
    pub content_created_at: Option<String>,
    pub content_modified_at: Option<String>,
}

/// What a `PUT /files|folders|web_links/{id}` changes; `None` leaves a part as it is. For the
/// shared link and the lock, `Some(None)` removes them.
#[derive(Default, Debug)]
pub struct Update {
    pub name: Option<String>,
    pub parent_id: Option<i64>,
    pub description: Option<String>,
    /// Web links only.
    pub url: Option<String>,
    pub shared_link: Option<Option<SharedLinkChange>>,
    /// Files only.
    pub lock: Option<Option<LockChange>>,
}

/// Fails with 409 `item_name_in_use` when an active sibling other than `except` holds the name.
pub(super) fn ensure_unique(
    tx: &Transaction<'_>,
    parent: i64,
    name: &str,
    except: Option<i64>,
    as_array: bool,
) -> StoreResult<()> {
    match find_child(tx, parent, name)? {
        Some(other) if Some(other.id) != except => {
            Err(StoreError::NameInUse { conflicts: vec![render::conflict_entry(&other)], as_array })
        }
        _ => Ok(()),
    }
}

/// Adds `delta` bytes to the recursive size of `folder` and each of its ancestors.
pub(super) fn adjust_sizes(tx: &Transaction<'_>, folder: Option<i64>, delta: i64) -> StoreResult<()> {
    if delta == 0 {
        return Ok(());
    }
    let mut next = folder;
    let mut stmt = tx.prepare_cached("UPDATE items SET size = size + ?2 WHERE id = ?1 RETURNING parent_id")?;
    while let Some(id) = next {
        next = stmt.query_row((id, delta), |r| r.get(0))?;
    }
    Ok(())
}

pub(super) fn check_if_match(item: &Item, if_match: Option<&str>) -> StoreResult<()> {
    match if_match {
        Some(tag) if item.etag().as_deref() != Some(tag.trim_matches('"')) => Err(StoreError::PreconditionFailed),
        _ => Ok(()),
    }
}

pub(super) fn active_folder(tx: &Transaction<'_>, id: i64) -> StoreResult<Item> {
    load_active(tx, Kind::Folder, id).map_err(|e| match e {
        StoreError::Trashed => StoreError::NotFound { what: "parent folder" },
        other => other,
    })
}

pub(super) fn reload(tx: &Transaction<'_>, id: i64) -> StoreResult<Item> {
    let sql = format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1");
    Ok(tx.query_row(&sql, [id], item_from_row)?)
}

struct Insert<'a> {
    kind: Kind,
    parent: i64,
    /// The tree of `parent`.
    root_id: i64,
    name: &'a str,
    size: i64,
    sha1: Option<&'a str>,
    content_created_at: Option<String>,
    content_modified_at: Option<String>,
    description: &'a str,
    url: Option<&'a str>,
}

fn insert_item(tx: &Transaction<'_>, ins: Insert<'_>) -> StoreResult<i64> {
    let now = now_rfc3339();
    tx.execute(
        "INSERT INTO items(kind, kind_rank, name, name_key, parent_id, status, sequence_id, size, sha1,
            version_number, created_at, modified_at, content_created_at, content_modified_at, description, url, root_id)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', 0, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14)",
        rusqlite::params![
            ins.kind.as_str(),
            ins.kind.rank(),
            ins.name,
            Item::name_key(ins.name),
            ins.parent,
            0i64,
            ins.sha1,
            i64::from(ins.kind == Kind::File),
            now,
            ins.content_created_at.unwrap_or_else(|| now.clone()),
            ins.content_modified_at.unwrap_or_else(|| now.clone()),
            ins.description,
            ins.url,
            ins.root_id,
        ],
    )?;
    let id = tx.last_insert_rowid();
    if ins.kind == Kind::File {
        add_version(tx, id, ins.name, &BlobInfo { sha1: ins.sha1.unwrap_or_default().into(), size: ins.size }, 1)?;
    }
    adjust_sizes(tx, Some(ins.parent), ins.size)?;
    Ok(id)
}

/// Makes `blob` the current version of `file_id` (size, sha1, space accounting).
fn add_version(tx: &Transaction<'_>, file_id: i64, name: &str, blob: &BlobInfo, number: i64) -> StoreResult<i64> {
    let now = now_rfc3339();
    let (old_size, root_id): (i64, i64) =
        tx.query_row("SELECT size, root_id FROM items WHERE id = ?1", [file_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    adjust_space(tx, root_id, blob.size - old_size)?;
    tx.execute(
        "INSERT INTO versions(file_id, sha1, size, name, version_number, created_at, modified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        (file_id, &blob.sha1, blob.size, name, number, &now),
    )?;
    let vid = tx.last_insert_rowid();
    tx.execute(
        "UPDATE items SET version_id = ?2, version_number = ?3, sha1 = ?4, size = ?5 WHERE id = ?1",
        (file_id, vid, number, &blob.sha1, blob.size),
    )?;
    Ok(vid)
}

/// `added` bytes more in the tree `root_id`, within its owner's quota (Box counts a file
/// against the folder owner's storage, whoever uploads it).
fn check_quota(tx: &Transaction<'_>, root_id: i64, added: i64) -> StoreResult<()> {
    let owner: User = owner_of_root(tx, root_id)?;
    if added > owner.max_upload_size {
        return Err(StoreError::FileSizeLimitExceeded);
    }
    if space_used(tx, root_id)? + added > owner.space_amount {
        return Err(StoreError::StorageLimitExceeded);
    }
    Ok(())
}

/// Moves the subtree of `item` into the tree `root_id` (a move or restore across owners): the
/// rows follow, and so do the bytes of its files, from the old owner's quota to the new one's.
pub(super) fn change_tree(tx: &Transaction<'_>, item: &Item, root_id: i64) -> StoreResult<()> {
    if item.root_id == root_id {
        return Ok(());
    }
    const SUBTREE: &str = "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL
         SELECT i.id FROM items i JOIN sub ON i.parent_id = sub.id WHERE i.status != 'deleted')";
    let bytes: i64 = tx.query_row(
        &format!("{SUBTREE} SELECT COALESCE(SUM(size), 0) FROM items WHERE kind = 'file' AND id IN sub"),
        [item.id],
        |r| r.get(0),
    )?;
    tx.execute(&format!("{SUBTREE} UPDATE items SET root_id = ?2 WHERE id IN sub"), (item.id, root_id))?;
    adjust_space(tx, item.root_id, -bytes)?;
    adjust_space(tx, root_id, bytes)?;
    Ok(())
}

impl Store {
    /// A folder made by `actor` in `parent`.
    pub fn create_folder(&self, actor: &str, parent: i64, name: &str) -> StoreResult<Item> {
        validate_name(name)?;
        self.write(|tx| {
            let dest = active_folder(tx, parent)?;
            ensure_unique(tx, parent, name, None, true)?;
            let id = insert_item(tx, Insert::named(Kind::Folder, &dest, name))?;
            record(tx, self, actor, "ITEM_CREATE", id)?;
            reload(tx, id)
        })
    }

    pub fn create_web_link(
        &self,
        actor: &str,
        parent: i64,
        url: &str,
        name: &str,
        description: &str,
    ) -> StoreResult<Item> {
        validate_name(name)?;
        self.write(|tx| {
            let dest = active_folder(tx, parent)?;
            ensure_unique(tx, parent, name, None, true)?;
            let id =
                insert_item(tx, Insert { description, url: Some(url), ..Insert::named(Kind::WebLink, &dest, name) })?;
            record(tx, self, actor, "ITEM_CREATE", id)?;
            reload(tx, id)
        })
    }

    /// Files `names` (fresh, valid names) in folder `parent`, all with the content `blob`, in
    /// one transaction and without events: a fast seed for large benchmark trees.
    pub fn seed_files(&self, parent: i64, names: &[String], blob: &BlobInfo) -> StoreResult<()> {
        self.write(|tx| {
            let dest = active_folder(tx, parent)?;
            let now = now_rfc3339();
            let mut item = tx.prepare_cached(
                "INSERT INTO items(kind, kind_rank, name, name_key, parent_id, status, sequence_id, size, sha1,
                    version_number, created_at, modified_at, content_created_at, content_modified_at, root_id)
                 VALUES ('file', ?1, ?2, ?3, ?4, 'active', 0, ?5, ?6, 1, ?7, ?7, ?7, ?7, ?8)",
            )?;
            let mut version = tx.prepare_cached(
                "INSERT INTO versions(file_id, sha1, size, name, version_number, created_at, modified_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)",
            )?;
            let mut link = tx.prepare_cached("UPDATE items SET version_id = ?2 WHERE id = ?1")?;
            for name in names {
                item.execute(rusqlite::params![
                    Kind::File.rank(),
                    name,
                    Item::name_key(name),
                    parent,
                    blob.size,
                    blob.sha1,
                    now,
                    dest.root_id
                ])?;
                let id = tx.last_insert_rowid();
                version.execute(rusqlite::params![id, blob.sha1, blob.size, name, now])?;
                link.execute((id, tx.last_insert_rowid()))?;
            }
            let total = blob.size * names.len() as i64;
            adjust_space(tx, dest.root_id, total)?;
            adjust_sizes(tx, Some(parent), total)
        })
    }

    /// Pre-upload checks shared by preflight, direct upload and session creation.
    pub fn check_new_file(&self, parent: i64, name: &str, size: i64) -> StoreResult<()> {
        validate_name(name)?;
        self.write(|tx| {
            let dest = active_folder(tx, parent)?;
            ensure_unique(tx, parent, name, None, false)?;
            check_quota(tx, dest.root_id, size)
        })
    }

    /// A file uploaded by `actor`.
    pub fn create_file(&self, actor: &str, nf: NewFile) -> StoreResult<Item> {
        validate_name(&nf.name)?;
        self.write(|tx| {
            let id = self.insert_file(tx, actor, nf)?;
            reload(tx, id)
        })
    }

    /// Creates many files in one transaction (seeding large trees): all or none. Returns how
    /// many were created.
    pub fn create_files(&self, actor: &str, files: impl IntoIterator<Item = NewFile>) -> StoreResult<usize> {
        self.write(|tx| {
            let mut created = 0;
            for nf in files {
                validate_name(&nf.name)?;
                self.insert_file(tx, actor, nf)?;
                created += 1;
            }
            Ok(created)
        })
    }

    fn insert_file(&self, tx: &Transaction<'_>, actor: &str, nf: NewFile) -> StoreResult<i64> {
        let dest = active_folder(tx, nf.parent_id)?;
        ensure_unique(tx, nf.parent_id, &nf.name, None, false)?;
        check_quota(tx, dest.root_id, nf.blob.size)?;
        let id = insert_item(
            tx,
            Insert {
                size: nf.blob.size,
                sha1: Some(&nf.blob.sha1),
                content_created_at: nf.content_created_at,
                content_modified_at: nf.content_modified_at,
                ..Insert::named(Kind::File, &dest, &nf.name)
            },
        )?;
        record(tx, self, actor, "ITEM_UPLOAD", id)?;
        Ok(id)
    }

    /// Checks that `actor` could upload a new version of `file_id` (name, `If-Match`, another
    /// user's lock, quota).
    pub fn check_new_version(
        &self,
        actor: &str,
        file_id: i64,
        if_match: Option<&str>,
        name: Option<&str>,
        size: i64,
    ) -> StoreResult<Item> {
        self.write(|tx| version_checks(tx, actor, file_id, if_match, name, size))
    }

    pub fn new_version(
        &self,
        actor: &str,
        file_id: i64,
        if_match: Option<&str>,
        name: Option<String>,
        blob: BlobInfo,
        content_modified_at: Option<String>,
    ) -> StoreResult<Item> {
        self.write(|tx| {
            let file = version_checks(tx, actor, file_id, if_match, name.as_deref(), blob.size)?;
            let name = name.unwrap_or_else(|| file.name.clone());
            add_version(tx, file.id, &name, &blob, file.version_number + 1)?;
            let now = now_rfc3339();
            tx.execute(
                "UPDATE items SET name = ?2, name_key = ?3, content_modified_at = ?4 WHERE id = ?1",
                (file.id, &name, Item::name_key(&name), content_modified_at.unwrap_or(now)),
            )?;
            adjust_sizes(tx, file.parent_id, blob.size - file.size)?;
            bump(tx, file.id)?;
            record(tx, self, actor, "ITEM_UPLOAD", file.id)?;
            reload(tx, file.id)
        })
    }

    /// `PUT /files|folders|web_links/{id}` by `actor`: rename, move, description, URL, shared
    /// link and lock, all or nothing, with one new etag and Box's event for each kind of change
    /// (also for those who saw the item where it was before a move).
    pub fn update_item(
        &self,
        actor: &str,
        kind: Kind,
        id: i64,
        if_match: Option<&str>,
        upd: Update,
    ) -> StoreResult<Item> {
        if let Some(name) = &upd.name {
            validate_name(name)?;
        }
        self.write(|tx| {
            let item = load_active(tx, kind, id)?;
            if item.is_root() && (upd.name.is_some() || upd.parent_id.is_some()) {
                return Err(StoreError::bad_request("bad_request", "The root folder cannot be renamed or moved"));
            }
            check_if_match(&item, if_match)?;
            let new_parent = upd.parent_id.filter(|p| Some(*p) != item.parent_id);
            let new_name = upd.name.clone().filter(|n| *n != item.name);
            let new_description = upd.description.clone().filter(|d| *d != item.description);
            let new_url = upd.url.clone().filter(|u| Some(u) != item.url.as_ref());
            let changes_item = new_parent.is_some() || new_name.is_some() || new_description.is_some();
            if changes_item || new_url.is_some() || upd.shared_link.is_some() {
                refuse_if_locked(tx, &item, actor)?;
            }
            let target_parent = new_parent.or(item.parent_id).unwrap_or(0);
            let mut dest_root = item.root_id;
            if let Some(parent) = new_parent {
                let dest = active_folder(tx, parent)?;
                if kind == Kind::Folder && (dest.id == item.id || ancestors(tx, &dest)?.iter().any(|a| a.id == item.id))
                {
                    return Err(StoreError::Cyclical);
                }
                dest_root = dest.root_id;
            }
            let seen_before = if new_parent.is_some() { super::access::audience(tx, &item)? } else { Vec::new() };
            if new_parent.is_some() || new_name.is_some() {
                let name = new_name.as_deref().unwrap_or(&item.name);
                ensure_unique(tx, target_parent, name, Some(item.id), true)?;
            }
            let mut events = Vec::new();
            if let Some(name) = &new_name {
                tx.execute(
                    "UPDATE items SET name = ?2, name_key = ?3 WHERE id = ?1",
                    (id, name, Item::name_key(name)),
                )?;
            }
            if let Some(parent) = new_parent {
                adjust_sizes(tx, item.parent_id, -item.size)?;
                tx.execute("UPDATE items SET parent_id = ?2 WHERE id = ?1", (id, parent))?;
                adjust_sizes(tx, Some(parent), item.size)?;
                change_tree(tx, &item, dest_root)?;
                events.push("ITEM_MOVE");
            }
            if new_name.is_some() {
                events.push("ITEM_RENAME");
            }
            if let Some(d) = &new_description {
                tx.execute("UPDATE items SET description = ?2 WHERE id = ?1", (id, d))?;
            }
            if let Some(u) = &new_url {
                tx.execute("UPDATE items SET url = ?2 WHERE id = ?1", (id, u))?;
            }
            if new_description.is_some() || new_url.is_some() {
                events.push("ITEM_MODIFY");
            }
            if let Some(change) = &upd.shared_link {
                events.extend(shares::apply(tx, &item, change.as_ref())?);
            }
            if let Some(change) = &upd.lock {
                events.extend(locks::apply(tx, &item, actor, change.as_ref())?);
            }
            if !events.is_empty() {
                bump(tx, id)?;
            }
            for event in events {
                record_for(tx, self, actor, event, id, seen_before.clone())?;
            }
            reload(tx, id)
        })
    }

    /// Copies an item (folders recursively) into `parent` for `actor`, optionally renamed.
    pub fn copy_item(
        &self,
        actor: &str,
        kind: Kind,
        id: i64,
        parent: i64,
        name: Option<&str>,
        version: Option<i64>,
    ) -> StoreResult<Item> {
        if let Some(n) = name {
            validate_name(n)?;
        }
        self.write(|tx| {
            let item = load_active(tx, kind, id)?;
            let dest = active_folder(tx, parent)?;
            if kind == Kind::Folder && (dest.id == item.id || ancestors(tx, &dest)?.iter().any(|a| a.id == item.id)) {
                return Err(StoreError::bad_request("bad_request", "Cannot copy a folder into itself"));
            }
            let name = name.map_or_else(|| item.name.clone(), str::to_string);
            ensure_unique(tx, parent, &name, None, true)?;
            check_quota(tx, dest.root_id, if kind == Kind::File { item.size } else { 0 })?;
            let source = match (kind, version) {
                (Kind::File, Some(v)) => {
                    let ver = owned_version(tx, &item, v)?;
                    Item { sha1: Some(ver.sha1), size: ver.size, ..item }
                }
                _ => item,
            };
            let new_id = copy_tree(tx, &source, &dest, &name)?;
            record(tx, self, actor, "ITEM_COPY", new_id)?;
            reload(tx, new_id)
        })
    }

    /// A version of `file_id` (the current one included).
    pub fn file_version(&self, file_id: i64, version_id: i64) -> StoreResult<Version> {
        self.read(|c| {
            let file = load_active(c, Kind::File, file_id)?;
            owned_version(c, &file, version_id)
        })
    }

    /// `DELETE /files/{id}/versions/{version}` (trash an old version) and `PUT` with
    /// `trashed_at: null` (bring it back). The current version cannot be trashed.
    pub fn set_version_trashed(
        &self,
        actor: &str,
        file_id: i64,
        version_id: i64,
        if_match: Option<&str>,
        trashed: bool,
    ) -> StoreResult<Version> {
        self.write(|tx| {
            let file = load_active(tx, Kind::File, file_id)?;
            check_if_match(&file, if_match)?;
            refuse_if_locked(tx, &file, actor)?;
            let ver = owned_version(tx, &file, version_id)?;
            if trashed && file.version_id == Some(ver.id) {
                return Err(StoreError::bad_request("bad_request", "The current version of a file cannot be deleted"));
            }
            let at = trashed.then(now_rfc3339);
            tx.execute("UPDATE versions SET trashed_at = ?2 WHERE id = ?1", (ver.id, at))?;
            Ok(load_version(tx, ver.id)?.unwrap_or(ver))
        })
    }

    /// Makes an older version current again (as a new version, like Box).
    pub fn promote_version(&self, actor: &str, file_id: i64, version_id: i64) -> StoreResult<Item> {
        self.write(|tx| {
            let file = load_active(tx, Kind::File, file_id)?;
            refuse_if_locked(tx, &file, actor)?;
            let ver = owned_version(tx, &file, version_id)?;
            let blob = BlobInfo { sha1: ver.sha1, size: ver.size };
            add_version(tx, file.id, &file.name, &blob, file.version_number + 1)?;
            adjust_sizes(tx, file.parent_id, blob.size - file.size)?;
            bump(tx, file.id)?;
            record(tx, self, actor, "ITEM_MAKE_CURRENT_VERSION", file.id)?;
            reload(tx, file.id)
        })
    }
}

/// Version `version_id` of `file`; another file's version is not found.
fn owned_version(conn: &rusqlite::Connection, file: &Item, version_id: i64) -> StoreResult<Version> {
    load_version(conn, version_id)?
        .filter(|v| v.file_id == file.id)
        .ok_or(StoreError::NotFound { what: "file_version" })
}

fn version_checks(
    tx: &Transaction<'_>,
    actor: &str,
    file_id: i64,
    if_match: Option<&str>,
    name: Option<&str>,
    size: i64,
) -> StoreResult<Item> {
    if let Some(n) = name {
        validate_name(n)?;
    }
    let file = load_active(tx, Kind::File, file_id)?;
    check_if_match(&file, if_match)?;
    refuse_if_locked(tx, &file, actor)?;
    if let (Some(n), Some(parent)) = (name, file.parent_id) {
        ensure_unique(tx, parent, n, Some(file.id), false)?;
    }
    check_quota(tx, file.root_id, size - file.size)?;
    Ok(file)
}

impl<'a> Insert<'a> {
    /// An item named `name` in the folder `parent`.
    fn named(kind: Kind, parent: &Item, name: &'a str) -> Insert<'a> {
        Insert {
            kind,
            parent: parent.id,
            root_id: parent.root_id,
            name,
            size: 0,
            sha1: None,
            content_created_at: None,
            content_modified_at: None,
            description: "",
            url: None,
        }
    }
}

/// Inserts a copy of `source` (and, for folders, its active subtree) under `parent`.
fn copy_tree(tx: &Transaction<'_>, source: &Item, parent: &Item, name: &str) -> StoreResult<i64> {
    let new_id = insert_item(
        tx,
        Insert {
            size: if source.kind == Kind::File { source.size } else { 0 },
            sha1: source.sha1.as_deref(),
            content_created_at: source.content_created_at.clone(),
            content_modified_at: source.content_modified_at.clone(),
            description: &source.description,
            url: source.url.as_deref(),
            ..Insert::named(source.kind, parent, name)
        },
    )?;
    super::metadata::copy_instances(tx, source.id, new_id)?;
    if source.kind == Kind::Folder {
        let sql = format!("SELECT {ITEM_COLUMNS} FROM items WHERE parent_id = ?1 AND status = 'active' ORDER BY id");
        let children: Vec<Item> = {
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map([source.id], item_from_row)?;
            rows.collect::<Result<_, _>>()?
        };
        let copy = reload(tx, new_id)?;
        for child in &children {
            copy_tree(tx, child, &copy, &child.name)?;
        }
    }
    Ok(new_id)
}
