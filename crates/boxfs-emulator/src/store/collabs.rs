//! Collaborations: a user invited to a file or folder with one of Box's roles. An invitation
//! of a user of the enterprise is accepted at once (Box's default inside an enterprise); one
//! of a login nobody has is pending until a user with that login accepts it (`PUT` with
//! `status`), or rejects it. Only accepted collaborations give rights (see `access`).
//!
//! Who may do what: people with `invite` on the item (owner, co-owner, editor) invite and
//! change roles, co-owners only by those who `manage` (owner, co-owners); the invitee answers
//! a pending invitation; either removes it. Each change records Box's `COLLAB_*` event for
//! everyone who sees the item and for the invitee.

use super::access::{access, load_viewer, CollabStatus, Collaboration, Perms, Role, Viewer};
use super::events::record_for;
use super::item::{load_active, load_item, Kind, Status};
use super::users::{load_user, owner_of_root};
use super::{now_rfc3339, Store, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, Transaction};

/// Whom an invitation is for: a user id or a login (email).
#[derive(Clone, Debug)]
pub enum Invitee {
    Id(String),
    Login(String),
}

#[derive(Clone, Debug)]
pub struct NewCollab {
    pub kind: Kind,
    pub item_id: i64,
    pub invitee: Invitee,
    pub role: Role,
    pub expires_at: Option<String>,
}

/// A `PUT /collaborations/{id}`: a new role (by those who invite) or an answer (by the invitee).
#[derive(Clone, Debug, Default)]
pub struct CollabChange {
    pub role: Option<Role>,
    pub status: Option<CollabStatus>,
    pub expires_at: Option<Option<String>>,
}

const COLUMNS: &str = "id, item_id, user_id, invite_email, role, status, created_by, created_at, modified_at, \
     acknowledged_at, expires_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Collaboration> {
    let role: String = r.get(4)?;
    let status: String = r.get(5)?;
    Ok(Collaboration {
        id: r.get(0)?,
        item_id: r.get(1)?,
        user_id: r.get(2)?,
        invite_email: r.get(3)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        status: CollabStatus::parse(&status).unwrap_or(CollabStatus::Pending),
        created_by: r.get(6)?,
        created_at: r.get(7)?,
        modified_at: r.get(8)?,
        acknowledged_at: r.get(9)?,
        expires_at: r.get(10)?,
    })
}

fn load(conn: &Connection, id: i64) -> StoreResult<Collaboration> {
    let sql = format!("SELECT {COLUMNS} FROM collaborations WHERE id = ?1");
    conn.query_row(&sql, [id], from_row).optional()?.ok_or(StoreError::NotFound { what: "collaboration" })
}

fn on_item(conn: &Connection, item_id: i64) -> StoreResult<Vec<Collaboration>> {
    let sql = format!("SELECT {COLUMNS} FROM collaborations WHERE item_id = ?1 ORDER BY id");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([item_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn is_invitee(viewer: &Viewer, c: &Collaboration) -> bool {
    c.user_id.as_deref() == Some(viewer.user.id.as_str())
        || (c.user_id.is_none()
            && c.invite_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&viewer.user.login)))
}

/// Who may change collaborations on an item as `perms` allow: inviting needs `invite`, and
/// anything about a co-owner needs `manage`.
fn may_manage(perms: &Perms, role: Role) -> bool {
    perms.invite && (role != Role::CoOwner || perms.manage)
}

fn invitee_user(tx: &Transaction<'_>, invitee: &Invitee) -> StoreResult<(Option<String>, Option<String>)> {
    match invitee {
        Invitee::Id(id) => match load_user(tx, id)? {
            Some(u) => Ok((Some(u.id), None)),
            None => Err(StoreError::NotFound { what: "user" }),
        },
        Invitee::Login(login) => {
            let id: Option<String> = tx
                .query_row("SELECT id FROM users WHERE login = ?1 COLLATE NOCASE", [login], |r| r.get(0))
                .optional()?;
            Ok((id, Some(login.clone())))
        }
    }
}

/// Records `event_type` about `item_id` for everyone who sees it and for `also` (the invitee,
/// who may have just lost access).
fn record_collab(
    tx: &Transaction<'_>,
    store: &Store,
    actor: &str,
    event_type: &str,
    item_id: i64,
    also: Option<&str>,
) -> StoreResult<()> {
    record_for(tx, store, actor, event_type, item_id, also.into_iter().map(str::to_string).collect())
}

impl Store {
    /// `POST /collaborations`.
    pub fn create_collab(&self, viewer: &Viewer, new: &NewCollab) -> StoreResult<Collaboration> {
        self.write(|tx| {
            let item = load_active(tx, new.kind, viewer.resolve(new.item_id))?;
            if item.is_root() {
                return Err(StoreError::bad_request("bad_request", "The root folder cannot be collaborated"));
            }
            let seen = access(tx, viewer, &item)?;
            Perms::require(may_manage(&seen.perms, new.role))?;
            let (user_id, email) = invitee_user(tx, &new.invitee)?;
            let owner = owner_of_root(tx, item.root_id)?;
            if user_id.as_deref() == Some(owner.id.as_str()) {
                return Err(StoreError::bad_request("bad_request", "The owner of an item cannot be its collaborator"));
            }
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM collaborations WHERE item_id = ?1 AND status != 'rejected'
                       AND (user_id = ?2 OR (user_id IS NULL AND invite_email = ?3 COLLATE NOCASE))",
                    rusqlite::params![item.id, user_id, email],
                    |r| r.get(0),
                )
                .optional()?;
            if existing.is_some() {
                return Err(StoreError::bad_request(
                    "user_already_collaborator",
                    "User is already a collaborator on this item",
                ));
            }
            let now = now_rfc3339();
            let status = if user_id.is_some() { CollabStatus::Accepted } else { CollabStatus::Pending };
            let expires = match &new.expires_at {
                Some(t) => Some(future_time(t)?),
                None => None,
            };
            let invite_email = if user_id.is_some() { None } else { email };
            tx.execute(
                &format!("INSERT INTO collaborations({COLUMNS}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)"),
                rusqlite::params![
                    item.id,
                    user_id,
                    invite_email,
                    new.role.as_str(),
                    status.as_str(),
                    viewer.user.id,
                    now,
                    (status == CollabStatus::Accepted).then(|| now.clone()),
                    expires,
                ],
            )?;
            let id = tx.last_insert_rowid();
            let event =
                if status == CollabStatus::Accepted { "COLLAB_ADD_COLLABORATOR" } else { "COLLAB_INVITE_COLLABORATOR" };
            record_collab(tx, self, &viewer.user.id, event, item.id, user_id.as_deref())?;
            load(tx, id)
        })
    }

    /// `GET /collaborations/{id}`: for the invitee and for those who may invite on the item.
    pub fn get_collab(&self, viewer: &Viewer, id: i64) -> StoreResult<Collaboration> {
        self.read(|c| {
            let collab = load(c, id)?;
            if is_invitee(viewer, &collab) {
                return Ok(collab);
            }
            let item = load_item(c, collab.item_id)?.ok_or(StoreError::NotFound { what: "collaboration" })?;
            match access(c, viewer, &item) {
                Ok(seen) if seen.perms.invite => Ok(collab),
                _ => Err(StoreError::NotFound { what: "collaboration" }),
            }
        })
    }

    /// `PUT /collaborations/{id}`.
    pub fn update_collab(&self, viewer: &Viewer, id: i64, change: &CollabChange) -> StoreResult<Collaboration> {
        self.write(|tx| {
            let collab = load(tx, id)?;
            let item = load_item(tx, collab.item_id)?.ok_or(StoreError::NotFound { what: "collaboration" })?;
            let now = now_rfc3339();
            let mut event = None;
            if let Some(status) = change.status.filter(|s| *s != collab.status) {
                if !is_invitee(viewer, &collab) || collab.status != CollabStatus::Pending {
                    return Err(StoreError::Forbidden);
                }
                if status == CollabStatus::Pending {
                    return Err(StoreError::bad_request(
                        "bad_request",
                        "An answered invitation cannot be pending again",
                    ));
                }
                tx.execute(
                    "UPDATE collaborations SET status = ?2, user_id = ?3, acknowledged_at = ?4, modified_at = ?4
                     WHERE id = ?1",
                    (id, status.as_str(), &viewer.user.id, &now),
                )?;
                if status == CollabStatus::Accepted {
                    event = Some("COLLAB_ADD_COLLABORATOR");
                }
            }
            if change.role.is_some_and(|r| r != collab.role) || change.expires_at.is_some() {
                let seen = access(tx, viewer, &item).map_err(|_| StoreError::Forbidden)?;
                let role = change.role.unwrap_or(collab.role);
                Perms::require(may_manage(&seen.perms, collab.role) && may_manage(&seen.perms, role))?;
                let expires = match &change.expires_at {
                    Some(Some(t)) => Some(future_time(t)?),
                    Some(None) => None,
                    None => collab.expires_at.clone(),
                };
                tx.execute(
                    "UPDATE collaborations SET role = ?2, expires_at = ?3, modified_at = ?4 WHERE id = ?1",
                    (id, role.as_str(), expires, &now),
                )?;
                if role != collab.role && event.is_none() && collab.status == CollabStatus::Accepted {
                    event = Some("COLLAB_ROLE_CHANGE");
                }
            }
            if let Some(event) = event {
                let collab = load(tx, id)?;
                record_collab(tx, self, &viewer.user.id, event, item.id, collab.user_id.as_deref())?;
            }
            load(tx, id)
        })
    }

    /// `DELETE /collaborations/{id}`: by those who may change it, or by the invitee (leaving).
    pub fn delete_collab(&self, viewer: &Viewer, id: i64) -> StoreResult<()> {
        self.write(|tx| {
            let collab = load(tx, id)?;
            let item = load_item(tx, collab.item_id)?;
            if !is_invitee(viewer, &collab) {
                let item = item.as_ref().ok_or(StoreError::NotFound { what: "collaboration" })?;
                let seen = access(tx, viewer, item).map_err(|_| StoreError::NotFound { what: "collaboration" })?;
                Perms::require(may_manage(&seen.perms, collab.role))?;
            }
            // Recorded first, while everyone who is to hear of it still sees the item.
            if let Some(item) = item.filter(|i| i.status == Status::Active) {
                record_collab(
                    tx,
                    self,
                    &viewer.user.id,
                    "COLLAB_REMOVE_COLLABORATOR",
                    item.id,
                    collab.user_id.as_deref(),
                )?;
            }
            tx.execute("DELETE FROM collaborations WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// `GET /folders|files/{id}/collaborations`: the item's own collaborations (not those of
    /// its ancestors), pending ones included, for anyone who sees the item.
    pub fn item_collabs(&self, viewer: &Viewer, kind: Kind, id: i64) -> StoreResult<Vec<Collaboration>> {
        self.read(|c| {
            let item = load_active(c, kind, viewer.resolve(id))?;
            access(c, viewer, &item)?;
            on_item(c, item.id)
        })
    }

    /// `GET /collaborations?status=pending`: invitations waiting for the viewer's answer.
    pub fn pending_collabs(&self, viewer: &Viewer) -> StoreResult<Vec<Collaboration>> {
        self.read(|c| {
            let sql = format!(
                "SELECT {COLUMNS} FROM collaborations WHERE status = 'pending'
                   AND (user_id = ?1 OR (user_id IS NULL AND invite_email = ?2 COLLATE NOCASE)) ORDER BY id"
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map((&viewer.user.id, &viewer.user.login), from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The viewer `viewer.user` is now (after collaborations changed).
    pub fn reload_viewer(&self, viewer: &Viewer) -> StoreResult<Viewer> {
        self.read(|c| load_viewer(c, viewer.user.clone()))
    }
}

/// A client's `expires_at`, normalized; it must be in the future.
fn future_time(t: &str) -> StoreResult<String> {
    let t = super::normalize_time(t)
        .ok_or_else(|| StoreError::bad_request("bad_request", "expires_at is not an RFC 3339 date-time"))?;
    let at = chrono::DateTime::parse_from_rfc3339(&t).map(|d| d.timestamp()).unwrap_or(0);
    if at <= super::unix_now() {
        return Err(StoreError::bad_request("bad_request", "expires_at must be in the future"));
    }
    Ok(t)
}
