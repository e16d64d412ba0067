//! Shared links: created, changed and removed through `PUT /files|folders|web_links/{id}`
//! (`shared_link` object or `null`), resolved from their URL (`GET /shared_items`, the
//! download URL, the link page). Box's rules: access `open|company|collaborators`; a password
//! (at least 8 characters with a digit, an upper-case letter or a symbol) only on `open` links;
//! `can_download` not on `collaborators` links; `can_edit` only on files that can be
//! downloaded; `unshared_at` in the future; a vanity name of at least 12 letters, digits or
//! dashes, unique. Passwords are kept as SHA-1 digests, never in clear.

use super::extras::{link_from_row, SharedLink, LINK_COLUMNS};
use super::item::{load_item, Item, Kind, Status};
use super::{normalize_time, unix_now, Store, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Transaction};
use sha1::Digest;

/// The `shared_link` object of a `PUT`: each field absent keeps the link's current value
/// (`Some(None)` clears a nullable one).
#[derive(Clone, Debug, Default)]
pub struct SharedLinkChange {
    pub access: Option<String>,
    pub password: Option<Option<String>>,
    pub vanity_name: Option<Option<String>>,
    pub unshared_at: Option<Option<String>>,
    pub can_download: Option<bool>,
    pub can_preview: Option<bool>,
    pub can_edit: Option<bool>,
}

const ACCESS_LEVELS: [&str; 3] = ["open", "company", "collaborators"];
const MIN_VANITY_NAME: usize = 12;

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::bad_request("bad_request", message)
}

fn password_digest(password: &str) -> String {
    hex::encode(sha1::Sha1::digest(password.as_bytes()))
}

fn strong_enough(password: &str) -> bool {
    password.chars().count() >= 8
        && password.chars().any(|c| c.is_ascii_digit() || c.is_uppercase() || !c.is_alphanumeric())
}

pub(super) fn load_link(conn: &Connection, item_id: i64) -> StoreResult<Option<SharedLink>> {
    let sql = format!("SELECT {LINK_COLUMNS} FROM shared_links WHERE item_id = ?1");
    Ok(conn.query_row(&sql, [item_id], |r| link_from_row(r, 0)).optional()?.filter(SharedLink::is_live))
}

/// Applies a `shared_link` change (`None` removes the link) to `item`; returns the event Box
/// records, or `None` when nothing changed.
pub(super) fn apply(
    tx: &Transaction<'_>,
    item: &Item,
    change: Option<&SharedLinkChange>,
) -> StoreResult<Option<&'static str>> {
    let existing = load_link(tx, item.id)?;
    let Some(change) = change else {
        tx.execute("DELETE FROM shared_links WHERE item_id = ?1", [item.id])?;
        return Ok(existing.map(|_| "ITEM_SHARED_UNSHARE"));
    };
    let link = merged(tx, item, existing.as_ref(), change)?;
    if existing.as_ref() == Some(&link) {
        return Ok(None);
    }
    tx.execute("DELETE FROM shared_links WHERE item_id = ?1", [item.id])?;
    tx.execute(
        &format!("INSERT INTO shared_links(item_id, {LINK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
        rusqlite::params![
            item.id,
            link.token,
            link.access,
            link.password,
            link.vanity_name,
            link.can_download,
            link.can_edit,
            link.unshared_at,
            link.download_count,
            link.preview_count,
        ],
    )?;
    Ok(Some(if existing.is_some() { "ITEM_SHARED_UPDATE" } else { "ITEM_SHARED_CREATE" }))
}

/// The link after `change`, checked against Box's rules.
fn merged(
    tx: &Transaction<'_>,
    item: &Item,
    existing: Option<&SharedLink>,
    change: &SharedLinkChange,
) -> StoreResult<SharedLink> {
    let access = match (&change.access, existing) {
        (Some(a), _) if ACCESS_LEVELS.contains(&a.as_str()) => a.clone(),
        (Some(a), _) => return Err(invalid(format!("Invalid shared link access '{a}'"))),
        (None, Some(link)) => link.access.clone(),
        (None, None) => "open".to_string(),
    };
    let password = match &change.password {
        Some(Some(p)) if strong_enough(p) => Some(password_digest(p)),
        Some(Some(_)) => {
            return Err(invalid(
                "The password must be at least 8 characters and include a number, an upper case letter or a symbol",
            ))
        }
        Some(None) => None,
        None => existing.and_then(|l| l.password.clone()),
    };
    if password.is_some() && access != "open" {
        return Err(invalid("A password can only be set on a shared link with open access"));
    }
    let vanity_name = match &change.vanity_name {
        Some(Some(v)) => {
            let ok = v.chars().count() >= MIN_VANITY_NAME && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(invalid(format!("A vanity name has at least {MIN_VANITY_NAME} letters, digits or dashes")));
            }
            let taken: Option<i64> = tx
                .query_row(
                    "SELECT item_id FROM shared_links WHERE vanity_name = ?1 AND item_id != ?2",
                    (v, item.id),
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict { code: "conflict", message: format!("Vanity name '{v}' is taken") });
            }
            Some(v.clone())
        }
        Some(None) => None,
        None => existing.and_then(|l| l.vanity_name.clone()),
    };
    let unshared_at = match &change.unshared_at {
        Some(Some(t)) => {
            let t = normalize_time(t).ok_or_else(|| invalid("unshared_at is not an RFC 3339 date-time"))?;
            let at = chrono::DateTime::parse_from_rfc3339(&t).map(|d| d.timestamp()).unwrap_or(0);
            if at <= unix_now() {
                return Err(invalid("unshared_at must be in the future"));
            }
            Some(t)
        }
        Some(None) => None,
        None => existing.and_then(|l| l.unshared_at.clone()),
    };
    if change.can_preview == Some(false) {
        return Err(invalid("A shared link always allows previews (can_preview is true)"));
    }
    let collaborators = access == "collaborators";
    let can_download = match change.can_download {
        Some(true) if collaborators => {
            return Err(invalid("can_download can only be set on open or company shared links"));
        }
        Some(d) => d,
        None if collaborators => false,
        None => existing.filter(|l| l.access != "collaborators").is_none_or(|l| l.can_download),
    };
    let can_edit = change.can_edit.unwrap_or_else(|| existing.is_some_and(|l| l.can_edit));
    if can_edit && (item.kind != Kind::File || !can_download) {
        return Err(invalid("can_edit is only for files whose shared link allows downloads"));
    }
    Ok(SharedLink {
        token: existing.map_or_else(new_token, |l| l.token.clone()),
        access,
        password,
        vanity_name,
        can_download,
        can_edit,
        unshared_at,
        download_count: existing.map_or(0, |l| l.download_count),
        preview_count: existing.map_or(0, |l| l.preview_count),
    })
}

/// A Box-like shared link token: 32 lowercase letters and digits.
fn new_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// The token or vanity name a shared link URL names: `…/s/TOKEN`, `…/v/VANITY` or
/// `…/shared/static/TOKEN.ext`.
fn link_key(url: &str) -> Option<(&'static str, String)> {
    let path = url.split(['?', '#']).next()?.trim_end_matches('/');
    let (column, rest) = if let Some(i) = path.rfind("/s/") {
        ("token", &path[i + 3..])
    } else if let Some(i) = path.rfind("/v/") {
        ("vanity_name", &path[i + 3..])
    } else if let Some(i) = path.rfind("/shared/static/") {
        ("token", path[i + "/shared/static/".len()..].split('.').next()?)
    } else {
        return None;
    };
    (!rest.is_empty() && !rest.contains('/')).then(|| (column, rest.to_string()))
}

/// How a shared link was used, for its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkUse {
    /// The link's page was shown.
    Preview,
    /// The file was downloaded through the link.
    Download,
}

impl Store {
    /// The active item a shared link URL points at, with its link, once `password` is
    /// checked. Unknown, expired or trashed: not found.
    pub fn resolve_shared_link(&self, url: &str, password: Option<&str>) -> StoreResult<(Item, SharedLink)> {
        let not_found = || StoreError::NotFound { what: "shared item" };
        let (column, key) = link_key(url).ok_or_else(not_found)?;
        self.read(|conn| {
            let sql = format!("SELECT item_id, {LINK_COLUMNS} FROM shared_links WHERE {column} = ?1");
            let (item_id, link) = conn
                .query_row(&sql, [&key], |r| Ok((r.get::<_, i64>(0)?, link_from_row(r, 1)?)))
                .optional()?
                .filter(|(_, l)| l.is_live())
                .ok_or_else(not_found)?;
            let item = load_item(conn, item_id)?.filter(|i| i.status == Status::Active).ok_or_else(not_found)?;
            if let Some(digest) = &link.password {
                if password.map(password_digest).as_ref() != Some(digest) {
                    return Err(StoreError::SharedLinkPassword);
                }
            }
            Ok((item, link))
        })
    }

    /// Counts a use of `item`'s shared link (`preview_count`, `download_count`).
    pub fn count_shared_link_use(&self, item_id: i64, usage: LinkUse) -> StoreResult<()> {
        let counter = match usage {
            LinkUse::Preview => "preview_count",
            LinkUse::Download => "download_count",
        };
        self.write(|tx| {
            tx.execute(&format!("UPDATE shared_links SET {counter} = {counter} + 1 WHERE item_id = ?1"), [item_id])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_urls_name_their_key() {
        let t = |u: &str| link_key(u).map(|(c, k)| format!("{c}:{k}"));
        assert_eq!(t("http://127.0.0.1:5/s/abc123").as_deref(), Some("token:abc123"));
        assert_eq!(t("https://app.box.com/s/abc123/?x=1").as_deref(), Some("token:abc123"));
        assert_eq!(t("http://h/v/my-vanity-name").as_deref(), Some("vanity_name:my-vanity-name"));
        assert_eq!(t("http://h/shared/static/abc123.pdf").as_deref(), Some("token:abc123"));
        assert_eq!(t("http://h/folders/5"), None);
        assert_eq!(t("http://h/s/"), None);
    }

    #[test]
    fn password_rules() {
        assert!(strong_enough("Password"));
        assert!(strong_enough("password1"));
        assert!(strong_enough("pass-word"));
        assert!(!strong_enough("password"));
        assert!(!strong_enough("Pass1"));
    }
}
