//! Shared links and locks: reading an item's `shared_link` and `lock` (one GET asking for just
//! those fields), creating, changing and removing a shared link on a file or folder, locking
//! and unlocking a file. All are `PUT /files|folders/{id}` with a `shared_link` or `lock`
//! object (or `null`) in the body, as Box documents them.
//!
//! A password given for a link travels only in the request body; it is never logged (the
//! client logs no bodies) and never kept.

use super::client::Client;
use super::error::ApiResult;
use super::items::{stat_json, STAT_FIELDS};
use super::metadata::ItemKind;
use super::model::{File, Sharing};
use reqwest::Method;
use serde_json::{json, Value};

/// Who may open a shared link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkAccess {
    /// Anyone with the link.
    Open,
    /// People in the owner's enterprise.
    Company,
    /// Collaborators on the item only.
    Collaborators,
}

impl LinkAccess {
    /// Box's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAccess::Open => "open",
            LinkAccess::Company => "company",
            LinkAccess::Collaborators => "collaborators",
        }
    }

    /// The access Box calls `name`, if any.
    pub fn parse(name: &str) -> Option<LinkAccess> {
        [LinkAccess::Open, LinkAccess::Company, LinkAccess::Collaborators].into_iter().find(|a| a.as_str() == name)
    }
}

/// What a shared link is to be: who may open it, when it stops working, its password (only
/// on `open` links, Box's rule). What is `None` stays as the link has it (a new link gets
/// Box's defaults: the enterprise's default access, no expiry, no password).
#[derive(Clone, PartialEq, Eq)]
pub struct LinkSettings {
    pub access: Option<LinkAccess>,
    /// RFC 3339.
    pub unshared_at: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for LinkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSettings")
            .field("access", &self.access)
            .field("unshared_at", &self.unshared_at)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl LinkSettings {
    fn body(&self) -> Value {
        let mut link = json!({});
        if let Some(a) = self.access {
            link["access"] = json!(a.as_str());
        }
        if let Some(t) = &self.unshared_at {
            link["unshared_at"] = json!(t);
        }
        if let Some(p) = &self.password {
            link["password"] = json!(p);
        }
        json!({ "shared_link": link })
    }
}

/// The fields that [`Sharing`] reads, per kind (folders have no lock).
fn sharing_fields(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::File => "shared_link,lock,file_version",
        ItemKind::Folder => "shared_link",
    }
}

fn item_path(kind: ItemKind, id: &str) -> String {
    match kind {
        ItemKind::File => format!("/files/{id}"),
        ItemKind::Folder => format!("/folders/{id}"),
    }
}

impl Client {
    /// The item's shared link and lock, in one request.
    pub async fn sharing(&self, kind: ItemKind, id: &str) -> ApiResult<Sharing> {
        let path = item_path(kind, id);
        self.get_json(self.api(&format!("{path}?fields={}", sharing_fields(kind)))).await
    }

    /// Creates the item's shared link, or changes it to `settings`.
    pub async fn set_shared_link(&self, kind: ItemKind, id: &str, settings: &LinkSettings) -> ApiResult<Sharing> {
        self.put_sharing(kind, id, settings.body()).await
    }

    /// Removes the item's shared link (nothing happens when it has none).
    pub async fn remove_shared_link(&self, kind: ItemKind, id: &str) -> ApiResult<Sharing> {
        self.put_sharing(kind, id, json!({"shared_link": null})).await
    }

    async fn put_sharing(&self, kind: ItemKind, id: &str, body: Value) -> ApiResult<Sharing> {
        let url = self.api(&format!("{}?fields={}", item_path(kind, id), sharing_fields(kind)));
        self.send_json(Method::PUT, url, body, None).await?.json()
    }

    /// Locks a file as the user requests act for, until `expires_at` (RFC 3339) or until
    /// unlocked; returns the file with the `stat` fields (its `lock` among them).
    pub async fn lock_file(&self, id: &str, expires_at: Option<&str>) -> ApiResult<File> {
        let mut lock = json!({"access": "lock", "is_download_prevented": false});
        if let Some(t) = expires_at {
            lock["expires_at"] = json!(t);
        }
        self.put_lock(id, json!({ "lock": lock })).await
    }

    /// Removes a file's lock (the holder's, or any with the rights to).
    pub async fn unlock_file(&self, id: &str) -> ApiResult<File> {
        self.put_lock(id, json!({"lock": null})).await
    }

    async fn put_lock(&self, id: &str, body: Value) -> ApiResult<File> {
        let url = self.api(&format!("/files/{id}?fields={STAT_FIELDS}"));
        stat_json(&self.send_json(Method::PUT, url, body, None).await?)
    }
}
