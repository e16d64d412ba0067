//! The emulator's durable state: an SQLite database (WAL) for users, items, their
//! collaborations, shared links, locks and metadata instances, tokens, events and upload
//! sessions, and a content-addressed blob directory for file bytes. Tables and columns only
//! ever get added (`CREATE TABLE IF NOT EXISTS`, and `ALTER TABLE … ADD COLUMN` with a default
//! that describes the rows already there: everything in a data dir from before there were
//! several users belongs to the admin), so a data dir from an older emulator opens as it was.
//!
//! Every mutation runs in one SQLite transaction that also records its event, so a crash
//! leaves either the whole change or none of it. Blobs are written (temp file + rename) before
//! the row that references them commits.
//!
//! The store has a generation ([`Store::generation`]) that every change raises, so that what
//! is derived from the rows (the listing pages the routes keep) can tell whether it is still
//! current: SQLite's count of the rows its one connection has inserted, updated or deleted
//! (`total_changes`), which sees every write however it is made (a transaction rolled back
//! raises it too, which only drops what was still current). It is read under the connection's
//! lock, which every transaction holds from begin to commit, so a generation names one
//! committed state: whatever is read after reading generation `g` is that state or a later one.
//! Blob files are not rows, and nothing rendered reads them (a file's `sha1` and `size` are its
//! row's). The data dir belongs to one emulator: a change made to its database from outside
//! raises nothing.
//!
//! [`render`] shows the rows as Box JSON, for the routes and for what the store keeps rendered
//! (an event's `source`, a 409's conflicts).

mod access;
mod blobs;
mod collabs;
mod error;
mod events;
mod extras;
mod item;
mod listing;
mod locks;
mod metadata;
mod mutate;
pub mod names;
pub mod render;
mod search;
mod sessions;
mod shares;
mod tokens;
mod trash;
mod users;

pub use access::{Access, CollabStatus, Collaboration, Perms, Role, Viewer, ViewerKey};
pub use blobs::{BlobInfo, Blobs, HashingWriter};
pub use collabs::{CollabChange, Invitee, NewCollab};
pub use error::StoreError;
pub use events::EventRow;
pub use extras::{Extras, Lock, MetadataInstance, SharedLink, Wanted};
pub use item::{Ancestor, Item, Kind, Status, Version};
pub use listing::{ListOrder, Page, PageRequest, Scope};
pub use locks::LockChange;
pub use metadata::PatchOp;
pub use mutate::{NewFile, Update};
pub use search::{MetadataFilter, Query, Range, SearchOrder, SearchPage, SearchRequest, Searched, TrashFilter};
pub use sessions::{Part, SessionRow, SessionTarget};
pub use shares::{LinkUse, SharedLinkChange};
pub use tokens::{TokenGrant, TokenPair};
pub use users::{NewUser, User, UserDefaults, UserRole, ADMIN_ID, ENTERPRISE_ID, SERVICE_ID};

use rusqlite::{Connection, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;

pub type StoreResult<T> = Result<T, StoreError>;

pub struct Store {
    conn: Mutex<Connection>,
    blobs: Blobs,
    dir: PathBuf,
    user_defaults: UserDefaults,
    /// The origin the emulator serves on, for the URLs in rendered items (shared links).
    base_url: String,
    position_tx: watch::Sender<i64>,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    kind_rank INTEGER NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    parent_id INTEGER,
    status TEXT NOT NULL,
    trashed_root INTEGER NOT NULL DEFAULT 0,
    sequence_id INTEGER NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    sha1 TEXT,
    version_id INTEGER,
    version_number INTEGER NOT NULL DEFAULT 0,
    created_at TEXT,
    modified_at TEXT,
    content_created_at TEXT,
    content_modified_at TEXT,
    trashed_at TEXT,
    purged_at TEXT,
    description TEXT NOT NULL DEFAULT '',
    url TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS items_unique_name ON items(parent_id, name_key) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS items_children ON items(parent_id, status, kind_rank, name_key, id);
CREATE INDEX IF NOT EXISTS items_trash ON items(trashed_root, status);
CREATE TABLE IF NOT EXISTS versions(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL,
    sha1 TEXT NOT NULL,
    size INTEGER NOT NULL,
    name TEXT NOT NULL,
    version_number INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    trashed_at TEXT
);
CREATE INDEX IF NOT EXISTS versions_file ON versions(file_id, id);
CREATE TABLE IF NOT EXISTS events(
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS upload_sessions(
    id TEXT PRIMARY KEY,
    folder_id INTEGER,
    file_id INTEGER,
    file_name TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    part_size INTEGER NOT NULL,
    total_parts INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    result_file_id INTEGER
);
CREATE TABLE IF NOT EXISTS upload_parts(
    session_id TEXT NOT NULL,
    offset INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha1 TEXT NOT NULL,
    part_id TEXT NOT NULL,
    PRIMARY KEY(session_id, offset)
);
CREATE TABLE IF NOT EXISTS tokens(
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL, -- unix seconds; fractional for access tokens
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS shared_links(
    item_id INTEGER PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    access TEXT NOT NULL,
    password TEXT,
    vanity_name TEXT UNIQUE,
    can_download INTEGER NOT NULL,
    can_edit INTEGER NOT NULL,
    unshared_at TEXT,
    download_count INTEGER NOT NULL DEFAULT 0,
    preview_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS locks(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL UNIQUE,
    holder_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    is_download_prevented INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS metadata_instances(
    item_id INTEGER NOT NULL,
    scope TEXT NOT NULL,
    template TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY(item_id, scope, template)
);
CREATE TABLE IF NOT EXISTS auth_codes(
    code TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    login TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL,
    root_id INTEGER NOT NULL UNIQUE,
    space_amount INTEGER NOT NULL,
    max_upload_size INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS collaborations(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL,
    user_id TEXT,
    invite_email TEXT,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    acknowledged_at TEXT,
    expires_at TEXT
);
CREATE INDEX IF NOT EXISTS collaborations_item ON collaborations(item_id);
CREATE INDEX IF NOT EXISTS collaborations_user ON collaborations(user_id, status);
CREATE TABLE IF NOT EXISTS public_keys(
    kid TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    pem TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS used_jtis(
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
"#;

/// Columns added since the first data dirs, with the value rows from before them get.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    // The tree an item is in; before there were several users, every tree was the admin's (root 0).
    ("items", "root_id", "INTEGER NOT NULL DEFAULT 0"),
    // The user a token acts for; NULL: the admin (tokens from before there were several users).
    ("tokens", "user_id", "TEXT"),
    // The user who sees an event (each viewer has their own rendering); NULL until set to the
    // admin at open (events from before there were several users).
    ("events", "user_id", "TEXT"),
    ("events", "created_by", "TEXT"),
];

fn add_missing_columns(conn: &Connection) -> StoreResult<()> {
    for (table, column, decl) in ADDED_COLUMNS {
        let exists: bool = conn.query_row(
            &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !exists {
            conn.execute(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"), [])?;
        }
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS events_user ON events(user_id, position);
         CREATE INDEX IF NOT EXISTS items_root_trash ON items(root_id, trashed_root, status);",
    )?;
    Ok(())
}

/// Ids handed out to new items start here, so that they look like Box ids and never collide
/// with the root (`0`) or the trash pseudo-folder (`1`).
const FIRST_ITEM_ID: i64 = 100_000;
const FIRST_VERSION_ID: i64 = 500_000;
const FIRST_STREAM_POSITION: i64 = 1_000_000;
const FIRST_COLLABORATION_ID: i64 = 30_000_000;

impl Store {
    /// Opens (creating when new) the store in `dir`, for an emulator serving on `base_url`.
    pub fn open(dir: &Path, user_defaults: UserDefaults, base_url: &str) -> StoreResult<Store> {
        std::fs::create_dir_all(dir)?;
        let conn = Connection::open(dir.join("emulator.sqlite3"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        add_missing_columns(&conn)?;
        init_root(&conn)?;
        conn.execute(
            "INSERT INTO sqlite_sequence(name, seq) SELECT 'collaborations', ?1
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'collaborations')",
            [FIRST_COLLABORATION_ID],
        )?;
        conn.execute("UPDATE events SET user_id = ?1 WHERE user_id IS NULL", [ADMIN_ID])?;
        {
            let tx = conn.unchecked_transaction()?;
            users::init_users(&tx, &user_defaults)?;
            tx.commit()?;
        }
        let position: i64 = conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| r.get(0))?;
        let (position_tx, _) = watch::channel(position);
        Ok(Store {
            conn: Mutex::new(conn),
            blobs: Blobs::new(dir.join("blobs"))?,
            dir: dir.to_path_buf(),
            user_defaults,
            base_url: base_url.to_string(),
            position_tx,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// True when the store holds nothing but the root folder (a fresh data dir).
    pub fn is_empty(&self) -> StoreResult<bool> {
        let conn = self.lock();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM items WHERE parent_id IS NOT NULL", [], |r| r.get(0))?;
        Ok(n == 0)
    }

    /// A receiver that sees the newest event stream position.
    pub fn subscribe_positions(&self) -> watch::Receiver<i64> {
        self.position_tx.subscribe()
    }

    /// Reads or creates a persistent string value (e.g. a secret generated at first start).
    pub fn meta_get_or_init(&self, key: &str, init: impl FnOnce() -> String) -> StoreResult<String> {
        let conn = self.lock();
        let existing: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?;
        if let Some(v) = existing {
            return Ok(v);
        }
        let value = init();
        conn.execute("INSERT INTO meta(key, value) VALUES (?1, ?2)", (key, &value))?;
        Ok(value)
    }

    /// The generation of the rows, raised by every change (see the module doc).
    pub fn generation(&self) -> u64 {
        self.lock().total_changes()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one transaction; publishes the new stream position after commit.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        let position: i64 = tx.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| r.get(0))?;
        tx.commit()?;
        drop(conn);
        self.position_tx.send_if_modified(|p| {
            let changed = *p != position;
            *p = position;
            changed
        });
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.lock();
        f(&conn)
    }
}

/// The `meta` key of the bytes used under root `root_id` (the admin's, root 0, has the key
/// the emulator used when it had one user).
fn space_key(root_id: i64) -> String {
    if root_id == 0 {
        "space_used".into()
    } else {
        format!("space_used:{root_id}")
    }
}

/// Bytes of current file versions not purged under a root; kept as a counter so that quota
/// checks stay O(1) however many items the store holds.
fn space_used(conn: &Connection, root_id: i64) -> StoreResult<i64> {
    let v: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [space_key(root_id)], |r| r.get(0)).optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn adjust_space(conn: &Connection, root_id: i64, delta: i64) -> StoreResult<()> {
    if delta != 0 {
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + ?2",
            (space_key(root_id), delta),
        )?;
    }
    Ok(())
}

fn init_root(conn: &Connection) -> StoreResult<()> {
    let exists: Option<i64> = conn.query_row("SELECT id FROM items WHERE id = 0", [], |r| r.get(0)).optional()?;
    if exists.is_some() {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO items(id, kind, kind_rank, name, name_key, parent_id, status, sequence_id)
         VALUES (0, 'folder', 0, 'All Files', 'all files', NULL, 'active', 0)",
        [],
    )?;
    conn.execute("DELETE FROM sqlite_sequence WHERE name IN ('items', 'versions', 'events')", [])?;
    conn.execute(
        "INSERT INTO sqlite_sequence(name, seq) VALUES ('items', ?1), ('versions', ?2), ('events', ?3)",
        (FIRST_ITEM_ID, FIRST_VERSION_ID, FIRST_STREAM_POSITION),
    )?;
    Ok(())
}

/// Current time as Box formats it: RFC 3339 with seconds precision.
pub fn now_rfc3339() -> String {
    format_time(chrono::Utc::now())
}

pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Normalizes a client-supplied timestamp to Box's format; `None` when it does not parse.
pub fn normalize_time(s: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| format_time(t.with_timezone(&chrono::Utc)))
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A random uppercase hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode_upper(buf)
}
