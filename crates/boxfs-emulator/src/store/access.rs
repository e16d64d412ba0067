//! Who may do what with an item. A user owns everything under their root; anyone else gets
//! what the accepted collaborations on the item and its ancestors grant them (the union of the
//! roles' rights: Box's permissions flow down and a subfolder can only add to them), and sees
//! the highest collaborated item in their own root, where the path they are shown starts.
//! Without any of that, the item does not exist for them (404).
//!
//! A [`Collaboration`] (who, on which item, with which [`Role`], in which [`CollabStatus`]) is
//! defined here, beside the rights it grants; `collabs` creates and changes them.
//!
//! The rights of each role follow Box's table of collaborator permission levels; the
//! uploader, as the issue that introduced them says and older Box tables did, cannot list
//! the folder it uploads into.

use super::item::{ancestors, Ancestor, Item, Kind};
use super::users::User;
use super::{StoreError, StoreResult};
use rusqlite::Connection;
use std::collections::HashMap;

/// A collaboration role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    CoOwner,
    Editor,
    ViewerUploader,
    PreviewerUploader,
    Viewer,
    Previewer,
    Uploader,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::CoOwner,
        Role::Editor,
        Role::ViewerUploader,
        Role::PreviewerUploader,
        Role::Viewer,
        Role::Previewer,
        Role::Uploader,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::CoOwner => "co-owner",
            Role::Editor => "editor",
            Role::ViewerUploader => "viewer uploader",
            Role::PreviewerUploader => "previewer uploader",
            Role::Viewer => "viewer",
            Role::Previewer => "previewer",
            Role::Uploader => "uploader",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What the role may do.
    pub fn perms(self) -> Perms {
        let none = Perms::default();
        match self {
            Role::CoOwner => Perms { manage: true, ..Perms::EDITOR },
            Role::Editor => Perms::EDITOR,
            Role::ViewerUploader => {
                Perms { list: true, preview: true, download: true, upload: true, edit: true, share: true, ..none }
            }
            Role::PreviewerUploader => Perms { list: true, preview: true, upload: true, ..none },
            Role::Viewer => Perms { list: true, preview: true, download: true, share: true, ..none },
            Role::Previewer => Perms { list: true, preview: true, ..none },
            Role::Uploader => Perms { upload: true, ..none },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollabStatus {
    Pending,
    Accepted,
    Rejected,
}

impl CollabStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CollabStatus::Pending => "pending",
            CollabStatus::Accepted => "accepted",
            CollabStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<CollabStatus> {
        match s {
            "pending" => Some(CollabStatus::Pending),
            "accepted" => Some(CollabStatus::Accepted),
            "rejected" => Some(CollabStatus::Rejected),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Collaboration {
    pub id: i64,
    pub item_id: i64,
    /// The invitee, once known (a pending invitation of an unknown login has none).
    pub user_id: Option<String>,
    pub invite_email: Option<String>,
    pub role: Role,
    pub status: CollabStatus,
    pub created_by: String,
    pub created_at: String,
    pub modified_at: String,
    pub acknowledged_at: Option<String>,
    pub expires_at: Option<String>,
}

/// Rights on one item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    /// See the items in a folder.
    pub list: bool,
    pub preview: bool,
    pub download: bool,
    /// Add items to a folder (files, subfolders); change metadata.
    pub upload: bool,
    /// Upload new versions of a file; lock it.
    pub edit: bool,
    pub rename: bool,
    /// Trash the item; move it elsewhere.
    pub delete: bool,
    /// Create shared links.
    pub share: bool,
    /// Change a shared link's access level.
    pub set_share_access: bool,
    /// Invite collaborators and change their roles.
    pub invite: bool,
    /// Co-owner and owner: everything about collaborations, including co-owners.
    pub manage: bool,
}

impl Perms {
    const EDITOR: Perms = Perms {
        list: true,
        preview: true,
        download: true,
        upload: true,
        edit: true,
        rename: true,
        delete: true,
        share: true,
        set_share_access: true,
        invite: true,
        manage: false,
    };

    pub const OWNER: Perms = Perms { manage: true, ..Perms::EDITOR };

    fn union(self, o: Perms) -> Perms {
        Perms {
            list: self.list || o.list,
            preview: self.preview || o.preview,
            download: self.download || o.download,
            upload: self.upload || o.upload,
            edit: self.edit || o.edit,
            rename: self.rename || o.rename,
            delete: self.delete || o.delete,
            share: self.share || o.share,
            set_share_access: self.set_share_access || o.set_share_access,
            invite: self.invite || o.invite,
            manage: self.manage || o.manage,
        }
    }

    /// `Err(403 access_denied_insufficient_permissions)` unless `allowed`.
    pub fn require(allowed: bool) -> StoreResult<()> {
        if allowed {
            Ok(())
        } else {
            Err(StoreError::Forbidden)
        }
    }
}

/// The user a request acts for (the token's user, or the `As-User` one), with the roles their
/// accepted collaborations give them, by item.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: User,
    collabs: HashMap<i64, Perms>,
}

/// Everything a [`Viewer`] is, as a value that compares and hashes: the user, their root and
/// the rights their collaborations give them, by item. A viewer is loaded from the rows and the
/// clock (a collaboration that has expired gives nothing), so two viewers with equal keys see
/// the same rows alike, whenever each was loaded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ViewerKey {
    user_id: String,
    root_id: i64,
    collabs: Vec<(i64, Perms)>,
}

impl ViewerKey {
    /// About how many bytes the key holds on the heap.
    pub fn heap_size(&self) -> usize {
        self.user_id.len() + self.collabs.len() * std::mem::size_of::<(i64, Perms)>()
    }
}

/// How one item looks to a viewer: what they may do and the path they see it under (their
/// root, shown as folder `0`, first).
#[derive(Clone, Debug)]
pub struct Access {
    pub perms: Perms,
    pub path: Vec<Ancestor>,
}

impl Viewer {
    /// The viewer as a [`ViewerKey`].
    pub fn key(&self) -> ViewerKey {
        let mut collabs: Vec<(i64, Perms)> = self.collabs.iter().map(|(id, perms)| (*id, *perms)).collect();
        collabs.sort_unstable_by_key(|(id, _)| *id);
        ViewerKey { user_id: self.user.id.clone(), root_id: self.user.root_id, collabs }
    }

    /// `user` with no collaborations (for tests elsewhere in the crate).
    #[cfg(test)]
    pub(crate) fn of_user(user: User) -> Viewer {
        Viewer { user, collabs: HashMap::new() }
    }

    /// The item id a request names: `0` is the viewer's own root.
    pub fn resolve(&self, id: i64) -> i64 {
        if id == 0 {
            self.user.root_id
        } else {
            id
        }
    }

    fn root_entry() -> Ancestor {
        Ancestor { id: 0, name: "All Files".into(), sequence_id: 0 }
    }

    /// How `item` looks to this viewer, `None` when they cannot see it; `chain` is the item's
    /// true ancestry (its owner's root first).
    pub fn access_in(&self, item: &Item, chain: &[Ancestor]) -> Option<Access> {
        if item.root_id == self.user.root_id {
            let mut path = chain.to_vec();
            if let Some(top) = path.first_mut() {
                *top = Viewer::root_entry();
            }
            return Some(Access { perms: Perms::OWNER, path });
        }
        let mut perms: Option<Perms> = None;
        let mut from = None;
        for (i, a) in chain.iter().enumerate() {
            if let Some(p) = self.collabs.get(&a.id) {
                perms = Some(perms.map_or(*p, |q| q.union(*p)));
                from.get_or_insert(i);
            }
        }
        if let Some(p) = self.collabs.get(&item.id) {
            perms = Some(perms.map_or(*p, |q| q.union(*p)));
        }
        let perms = perms?;
        let mut path = vec![Viewer::root_entry()];
        if let Some(i) = from {
            path.extend_from_slice(&chain[i..]);
        }
        Some(Access { perms, path })
    }

    /// The rights on a child of a folder seen as `parent`: the folder's plus what the child's
    /// own collaborations add. (Its path is the folder's path plus the folder.)
    pub fn child_perms(&self, parent: &Access, child: &Item) -> Perms {
        match self.collabs.get(&child.id) {
            Some(p) => parent.perms.union(*p),
            None => parent.perms,
        }
    }

    /// The items shared with the viewer that show in their root: those collaborated with
    /// them that are not inside another one.
    fn shared_roots(&self, conn: &Connection) -> StoreResult<Vec<i64>> {
        let mut out = Vec::new();
        for &id in self.collabs.keys() {
            let Some(item) = super::item::load_item(conn, id)? else { continue };
            if item.status != super::item::Status::Active || item.root_id == self.user.root_id {
                continue;
            }
            if !ancestors(conn, &item)?.iter().any(|a| self.collabs.contains_key(&a.id)) {
                out.push(id);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// True when the viewer has any collaboration at all (else only their own tree is theirs).
    pub fn collaborates(&self) -> bool {
        !self.collabs.is_empty()
    }
}

/// A collaboration that has not expired (`?2`: now; times are all UTC RFC 3339, which order as text).
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";

/// The viewer `user` is, with their accepted collaborations.
pub(super) fn load_viewer(conn: &Connection, user: User) -> StoreResult<Viewer> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT item_id, role FROM collaborations WHERE user_id = ?1 AND status = 'accepted' AND {LIVE}"
    ))?;
    let rows =
        stmt.query_map((&user.id, super::now_rfc3339()), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut collabs: HashMap<i64, Perms> = HashMap::new();
    for row in rows {
        let (item, role) = row?;
        if let Some(role) = Role::parse(&role) {
            let p = role.perms();
            collabs.entry(item).and_modify(|q| *q = q.union(p)).or_insert(p);
        }
    }
    Ok(Viewer { user, collabs })
}

/// How `item` looks to `viewer` (its ancestry read from `conn`); not found when they cannot see it.
pub(super) fn access(conn: &Connection, viewer: &Viewer, item: &Item) -> StoreResult<Access> {
    let chain = ancestors(conn, item)?;
    viewer.access_in(item, &chain).ok_or_else(|| item.kind.not_found())
}

/// Everyone who sees `item`: its owner and every accepted collaborator on it or an ancestor.
pub(super) fn audience(conn: &Connection, item: &Item) -> StoreResult<Vec<String>> {
    let mut ids: Vec<i64> = ancestors(conn, item)?.iter().map(|a| a.id).collect();
    ids.push(item.id);
    let mut out = vec![super::users::owner_of_root(conn, item.root_id)?.id];
    let list = vec!["?"; ids.len()].join(",");
    let mut stmt = conn.prepare(&format!(
        "SELECT DISTINCT user_id FROM collaborations WHERE status = 'accepted' AND {}
           AND item_id IN ({list})",
        LIVE.replace("?2", "?1")
    ))?;
    let mut params: Vec<rusqlite::types::Value> = vec![super::now_rfc3339().into()];
    params.extend(ids.iter().map(|i| rusqlite::types::Value::Integer(*i)));
    for id in stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| r.get::<_, String>(0))? {
        let id = id?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

impl super::Store {
    /// The viewer a user id is (`None`: no such user).
    pub fn viewer(&self, user_id: &str) -> StoreResult<Option<Viewer>> {
        self.read(|c| match super::users::load_user(c, user_id)? {
            Some(user) => Ok(Some(load_viewer(c, user)?)),
            None => Ok(None),
        })
    }

    /// What a listing of `folder` shows `viewer`: its children, and in their root also what
    /// others share with them.
    pub fn children_scope(&self, viewer: &Viewer, folder: &Item) -> StoreResult<super::Scope> {
        if folder.id != viewer.user.root_id || !viewer.collaborates() {
            return Ok(super::Scope::Children(folder.id));
        }
        let shared = self.read(|c| viewer.shared_roots(c))?;
        Ok(super::Scope::Root { root: folder.id, shared })
    }

    /// How `item` looks to `viewer`; not found when they cannot see it.
    pub fn access(&self, viewer: &Viewer, item: &Item) -> StoreResult<Access> {
        self.read(|c| access(c, viewer, item))
    }

    /// The active item of `kind` that `viewer` can see, with how it looks to them.
    pub fn visible(&self, viewer: &Viewer, kind: Kind, id: i64) -> StoreResult<(Item, Access)> {
        self.read(|c| {
            let item = super::item::load_active(c, kind, viewer.resolve(id))?;
            let access = access(c, viewer, &item)?;
            Ok((item, access))
        })
    }
}
