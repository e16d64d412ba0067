//! The enterprise's users: its admin (the user whose token `boxfs emulator` prints; the user of
//! data dirs from before there were others, whose root is the item row `0`), its service account
//! (what `box_subject_type=enterprise` tokens act as) and managed users made with `POST /users`
//! or `--users N`. Each has a root folder of their own (an item row without a parent), tokens,
//! and a storage quota that the files under their root count against.

use super::{now_rfc3339, unix_now, Store, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, Transaction};

/// The emulator's one enterprise.
pub const ENTERPRISE_ID: &str = "20180000";
/// The admin: every data dir has them, with the root folder `0`.
pub const ADMIN_ID: &str = "20180001";
/// The enterprise's service account (client credentials and JWT with the enterprise subject).
pub const SERVICE_ID: &str = "20180002";
/// Managed users get ids from here on.
const FIRST_MANAGED_ID: i64 = 20_180_010;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserRole {
    Admin,
    /// A managed user.
    User,
    /// The service account of the enterprise's app.
    Service,
}

impl UserRole {
    fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::User => "user",
            UserRole::Service => "service",
        }
    }

    fn parse(s: &str) -> UserRole {
        match s {
            "admin" => UserRole::Admin,
            "service" => UserRole::Service,
            _ => UserRole::User,
        }
    }

    /// May act for other users (`As-User`) and manage them.
    pub fn is_privileged(self) -> bool {
        matches!(self, UserRole::Admin | UserRole::Service)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub login: String,
    pub role: UserRole,
    /// The item row of the user's root folder (shown to them as folder `0`).
    pub root_id: i64,
    pub space_amount: i64,
    pub max_upload_size: i64,
    pub created_at: String,
}

/// What a new user is made of (`POST /users`).
#[derive(Clone, Debug)]
pub struct NewUser {
    pub name: String,
    pub login: String,
    pub space_amount: Option<i64>,
}

/// Who the admin is and what quotas the emulator hands out (from its configuration).
#[derive(Clone, Debug)]
pub struct UserDefaults {
    pub admin_name: String,
    pub admin_login: String,
    pub space_amount: i64,
    pub max_upload_size: i64,
}

impl Default for UserDefaults {
    fn default() -> Self {
        UserDefaults {
            admin_name: "Emulator User".into(),
            admin_login: "user@boxfs.invalid".into(),
            space_amount: 10 * 1024 * 1024 * 1024,
            max_upload_size: 5 * 1024 * 1024 * 1024,
        }
    }
}

const USER_COLUMNS: &str = "id, name, login, role, root_id, space_amount, max_upload_size, created_at";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(3)?;
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        login: r.get(2)?,
        role: UserRole::parse(&role),
        root_id: r.get(4)?,
        space_amount: r.get(5)?,
        max_upload_size: r.get(6)?,
        created_at: r.get(7)?,
    })
}

pub(super) fn load_user(conn: &Connection, id: &str) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], user_from_row).optional()?)
}

/// The user whose root is the item row `root_id`.
pub(super) fn owner_of_root(conn: &Connection, root_id: i64) -> StoreResult<User> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE root_id = ?1");
    conn.query_row(&sql, [root_id], user_from_row).optional()?.ok_or(StoreError::NotFound { what: "user" })
}

pub(super) fn all_users(conn: &Connection) -> StoreResult<Vec<User>> {
    let mut stmt = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY CAST(id AS INTEGER)"))?;
    let rows = stmt.query_map([], user_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A root folder row (no parent) for a new user.
fn insert_root(tx: &Transaction<'_>) -> StoreResult<i64> {
    tx.execute(
        "INSERT INTO items(kind, kind_rank, name, name_key, parent_id, status, sequence_id, created_at, modified_at)
         VALUES ('folder', 0, 'All Files', 'all files', NULL, 'active', 0, NULL, NULL)",
        [],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute("UPDATE items SET root_id = ?1 WHERE id = ?1", [id])?;
    Ok(id)
}

fn insert_user(tx: &Transaction<'_>, user: &User) -> StoreResult<()> {
    tx.execute(
        &format!("INSERT INTO users({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        rusqlite::params![
            user.id,
            user.name,
            user.login,
            user.role.as_str(),
            user.root_id,
            user.space_amount,
            user.max_upload_size,
            user.created_at
        ],
    )?;
    Ok(())
}

/// Makes sure the admin (root `0`) and the service account exist; the admin's quota follows the
/// configuration at every start, as it did when the emulator had only them.
pub(super) fn init_users(tx: &Transaction<'_>, defaults: &UserDefaults) -> StoreResult<()> {
    if load_user(tx, ADMIN_ID)?.is_none() {
        let admin = User {
            id: ADMIN_ID.into(),
            name: defaults.admin_name.clone(),
            login: defaults.admin_login.clone(),
            role: UserRole::Admin,
            root_id: 0,
            space_amount: defaults.space_amount,
            max_upload_size: defaults.max_upload_size,
            created_at: "2024-01-01T00:00:00+00:00".into(),
        };
        insert_user(tx, &admin)?;
    }
    tx.execute("UPDATE users SET space_amount = ?2 WHERE id = ?1", (ADMIN_ID, defaults.space_amount))?;
    if load_user(tx, SERVICE_ID)?.is_none() {
        let root_id = insert_root(tx)?;
        let service = User {
            id: SERVICE_ID.into(),
            name: "boxfs emulator app".into(),
            login: format!("AutomationUser_{SERVICE_ID}_emulator@boxdevedition.com"),
            role: UserRole::Service,
            root_id,
            space_amount: defaults.space_amount,
            max_upload_size: defaults.max_upload_size,
            created_at: now_rfc3339(),
        };
        insert_user(tx, &service)?;
    }
    Ok(())
}

impl Store {
    pub fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        self.read(|c| load_user(c, id))
    }

    /// Every user of the enterprise, by id.
    pub fn users(&self) -> StoreResult<Vec<User>> {
        self.read(all_users)
    }

    /// `POST /users`: a managed user with a root folder of their own. A login already used is
    /// 409 `user_login_already_used`, as in Box.
    pub fn create_user(&self, new: &NewUser) -> StoreResult<User> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 50 {
            return Err(StoreError::bad_request("bad_request", "name must have 1 to 50 characters"));
        }
        if !new.login.contains('@') {
            return Err(StoreError::bad_request("bad_request", "login must be an email address"));
        }
        self.write(|tx| {
            let taken: Option<String> = tx
                .query_row("SELECT id FROM users WHERE login = ?1 COLLATE NOCASE", [&new.login], |r| r.get(0))
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict {
                    code: "user_login_already_used",
                    message: "User with the specified login already exists".into(),
                });
            }
            let last: i64 =
                tx.query_row("SELECT COALESCE(MAX(CAST(id AS INTEGER)), 0) FROM users", [], |r| r.get(0))?;
            let root_id = insert_root(tx)?;
            let user = User {
                id: last.max(FIRST_MANAGED_ID - 1).saturating_add(1).to_string(),
                name: name.to_string(),
                login: new.login.clone(),
                role: UserRole::User,
                root_id,
                space_amount: new.space_amount.unwrap_or(self.user_defaults.space_amount),
                max_upload_size: self.user_defaults.max_upload_size,
                created_at: now_rfc3339(),
            };
            insert_user(tx, &user)?;
            Ok(user)
        })
    }

    /// `--users N`: managed users `user1@boxfs.invalid` … until there are `n` of them.
    pub fn ensure_managed_users(&self, n: usize) -> StoreResult<Vec<User>> {
        let mut out = Vec::new();
        for i in 1..=n {
            let login = format!("user{i}@boxfs.invalid");
            let existing = self.read(|c| {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = ?1");
                Ok(c.query_row(&sql, [&login], user_from_row).optional()?)
            })?;
            out.push(match existing {
                Some(u) => u,
                None => self.create_user(&NewUser { name: format!("User {i}"), login, space_amount: None })?,
            });
        }
        Ok(out)
    }

    /// Bytes used by the files under `user`'s root (trashed ones count, as in Box).
    pub fn space_used_by(&self, user: &User) -> StoreResult<i64> {
        self.read(|c| super::space_used(c, user.root_id))
    }

    /// Remembers a JWT id until `expires_at`: true when it was new (Box refuses an assertion
    /// whose `jti` was used before).
    pub fn claim_jti(&self, jti: &str, expires_at: i64) -> StoreResult<bool> {
        self.write(|tx| {
            tx.execute("DELETE FROM used_jtis WHERE expires_at < ?1", [unix_now()])?;
            Ok(tx.execute("INSERT OR IGNORE INTO used_jtis(jti, expires_at) VALUES (?1, ?2)", (jti, expires_at))? == 1)
        })
    }

    /// Registers an app's public key (PEM) for the JWT grant; returns its key id (`kid`).
    pub fn add_public_key(&self, client_id: &str, pem: &str) -> StoreResult<String> {
        let kid = super::random_hex(4).to_lowercase();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO public_keys(kid, client_id, pem, created_at) VALUES (?1, ?2, ?3, ?4)",
                (&kid, client_id, pem, now_rfc3339()),
            )?;
            Ok(())
        })?;
        Ok(kid)
    }

    /// The PEM public key `kid` of the app `client_id`.
    pub fn public_key(&self, client_id: &str, kid: &str) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(c.query_row("SELECT pem FROM public_keys WHERE kid = ?1 AND client_id = ?2", (kid, client_id), |r| {
                r.get(0)
            })
            .optional()?)
        })
    }
}
