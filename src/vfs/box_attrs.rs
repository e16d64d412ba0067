//! Box's shared links and locks as extended attributes, and locks where files are written.
//!
//! - `user.box.shared_link`: read with one GET of the item (the link's URL; `ENODATA` when it
//!   has none); set to `[ACCESS][ expires=DATE][ password=PASSWORD]` (ACCESS `open`,
//!   `company` or `collaborators`; the password last, the rest of the value; what is left out
//!   stays as it is) to create or change the link; removed to remove it. Files and folders.
//! - `user.box.lock`: read with one GET of the file (`locked by NAME <LOGIN> until DATE`, or
//!   `..., no expiry`; `ENODATA` when unlocked); set to `on[ expires=DATE]` to lock as the
//!   mount's user, `off` (or removed) to unlock. Files only.
//! - A file another user holds the lock of is not opened for writing nor truncated
//!   (`EACCES`, with a warning naming the holder): Box would refuse its upload. What the mount
//!   knows of locks comes with the listings (`lock` is one of the stat fields) and with
//!   Box's `LOCK_CREATE`/`LOCK_DESTROY` events, which read the file again (one GET).
//! - With `lock_on_open`, a file in Box opened for writing is locked first (unless it is
//!   locked already), and unlocked once its entry leaves the write-back queue (its upload
//!   landed, or there was nothing to upload), at the latest when the mount stops. Only locks
//!   the mount took are released.
//!
//! Invariants: a password is never logged nor kept; other `user.box.*` names cannot be set
//! (`ENOTSUP`), nor can any other name.

use super::dotbox::is_virtual;
use super::error::{VfsError, VfsResult};
use super::events::Inval;
use super::fs::Fs;
use super::meta::inode::{Ino, Meta, Node, NodeKind};
use super::meta::sharing::is_live;
use boxfs_api::metadata::ItemKind;
use boxfs_api::model::Lock;
use boxfs_api::model::{Event, File, Item, Sharing};
use boxfs_api::sharing::{LinkAccess, LinkSettings};
use boxfs_api::ApiError;
use std::sync::Arc;

pub const SHARED_LINK: &str = "user.box.shared_link";
pub const LOCK: &str = "user.box.lock";

/// `XATTR_CREATE` and `XATTR_REPLACE` of setxattr(2).
const XATTR_CREATE: i32 = 1;
const XATTR_REPLACE: i32 = 2;

/// The attributes whose values are asked of Box when read.
pub fn asks_box(name: &str) -> bool {
    name == SHARED_LINK || name == LOCK
}

/// A value of `user.box.shared_link` or `user.box.lock` as set.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Link(LinkSettings),
    Lock { expires_at: Option<String> },
    Unlock,
}

/// `DATE` as RFC 3339 (a bare `YYYY-MM-DD` is midnight UTC).
fn parse_date(date: &str) -> VfsResult<String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(date) {
        return Ok(t.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| VfsError::Invalid)?;
    Ok(format!("{}T00:00:00Z", day.format("%Y-%m-%d")))
}

/// `[ACCESS][ expires=DATE][ password=PASSWORD]`, not empty; the password is the rest of the
/// value.
fn parse_link(value: &str) -> VfsResult<LinkSettings> {
    let (head, password) = match format!(" {value}").split_once(" password=") {
        Some((head, pw)) if !pw.is_empty() => (head.to_string(), Some(pw.to_string())),
        Some(_) => return Err(VfsError::Invalid),
        None => (value.to_string(), None),
    };
    let mut words = head.split_whitespace().peekable();
    let access = words.next_if(|w| !w.contains('=')).map(|w| LinkAccess::parse(w).ok_or(VfsError::Invalid));
    let access = access.transpose()?;
    let mut unshared_at = None;
    for word in words {
        match word.strip_prefix("expires=") {
            Some(date) if unshared_at.is_none() => unshared_at = Some(parse_date(date)?),
            _ => return Err(VfsError::Invalid),
        }
    }
    if access.is_none() && unshared_at.is_none() && password.is_none() {
        return Err(VfsError::Invalid);
    }
    Ok(LinkSettings { access, unshared_at, password })
}

/// `on[ expires=DATE]` or `off`.
fn parse_lock(value: &str) -> VfsResult<Wanted> {
    let mut words = value.split_whitespace();
    let wanted = match (words.next(), words.next()) {
        (Some("off"), None) => Wanted::Unlock,
        (Some("on"), None) => Wanted::Lock { expires_at: None },
        (Some("on"), Some(option)) => {
            let date = option.strip_prefix("expires=").ok_or(VfsError::Invalid)?;
            Wanted::Lock { expires_at: Some(parse_date(date)?) }
        }
        _ => return Err(VfsError::Invalid),
    };
    match words.next() {
        Some(_) => Err(VfsError::Invalid),
        None => Ok(wanted),
    }
}

fn parse_value(name: &str, value: &[u8]) -> VfsResult<Wanted> {
    let value = std::str::from_utf8(value).map_err(|_| VfsError::Invalid)?;
    let value = value.trim_end_matches(['\n', '\0']);
    match name {
        SHARED_LINK => parse_link(value).map(Wanted::Link),
        _ => parse_lock(value),
    }
}

/// How `user.box.lock` reads.
fn describe(lock: &Lock) -> String {
    let holder = holder_name(lock);
    match &lock.expired_at {
        Some(t) => format!("locked by {holder} until {}", in_utc(t)),
        None => format!("locked by {holder}, no expiry"),
    }
}

/// An RFC 3339 time of Box's (in any offset) in UTC, `Z`-suffixed; as given if unreadable.
fn in_utc(time: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(time) {
        Ok(t) => t.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        Err(_) => time.to_string(),
    }
}

fn holder_name(lock: &Lock) -> String {
    match &lock.created_by {
        Some(u) => format!("{} <{}>", u.name, u.login),
        None => "an unknown user".to_string(),
    }
}

/// The Box kind of a node that can have a shared link (web links are not served here).
fn item_kind(node: &Node) -> VfsResult<ItemKind> {
    match node.kind {
        NodeKind::File => Ok(ItemKind::File),
        NodeKind::Dir => Ok(ItemKind::Folder),
        NodeKind::Link => Err(VfsError::NotSupported),
    }
}

/// Box refused the value (a weak password, a date in the past, a password on a link that is
/// not `open`): `EINVAL`, with Box's reason in the log. Other errors stay as they are.
fn refused_value(e: ApiError) -> VfsError {
    match e.root() {
        ApiError::Http { status: 400, message, .. } => {
            tracing::warn!(reason = %message, "Box refused the shared link or lock settings");
            VfsError::Invalid
        }
        _ => VfsError::Api(e),
    }
}

fn is_lock_event(ev: &Event) -> bool {
    matches!(ev.event_type.as_str(), "LOCK_CREATE" | "LOCK_DESTROY")
}

impl Fs {
    /// The value of `user.box.shared_link` or `user.box.lock`, asked of Box (one GET). A
    /// `size_probe` (getxattr with no buffer) keeps the value for the read that follows it,
    /// which then costs no second GET.
    pub async fn box_xattr(&self, ino: Ino, name: &str, size_probe: bool) -> VfsResult<Vec<u8>> {
        if !size_probe {
            if let Some(value) = self.box_sharing().take_probed(ino, name) {
                return Ok(value);
            }
        }
        let value = self.read_box_xattr(ino, name).await?;
        if size_probe {
            self.box_sharing().keep_probed(ino, name, value.clone());
        }
        Ok(value)
    }

    async fn read_box_xattr(&self, ino: Ino, name: &str) -> VfsResult<Vec<u8>> {
        if is_virtual(ino) {
            return Err(VfsError::NoAttr); // `.box/` holds Box's records, not items to share
        }
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        if node.box_id.starts_with("local:") || node.kind == NodeKind::Link {
            return Err(VfsError::NoAttr);
        }
        if name == LOCK && node.kind != NodeKind::File {
            return Err(VfsError::NoAttr);
        }
        let sharing = self.remote().sharing(item_kind(&node)?, &node.box_id).await?;
        if node.kind == NodeKind::File {
            self.inodes().set_lock(ino, sharing.lock.clone().filter(is_live).map(Arc::new));
        }
        let value = match name {
            SHARED_LINK => sharing.shared_link.map(|l| l.url),
            _ => sharing.lock.filter(is_live).map(|l| describe(&l)),
        };
        value.map(String::into_bytes).ok_or(VfsError::NoAttr)
    }

    /// Names of attributes answered by [`Fs::box_xattr`] that `node` is known to have
    /// (a shared link is not known without asking Box: it is not listed).
    pub(super) fn box_xattr_names(&self, node: &Node) -> Option<&'static str> {
        self.live_lock(node).map(|_| LOCK)
    }

    /// Sets `user.box.shared_link` or `user.box.lock` (`flags`: `XATTR_CREATE` fails when
    /// it is set already, `XATTR_REPLACE` when it is not).
    pub(super) async fn set_box_xattr(&self, ino: Ino, name: &str, value: &[u8], flags: i32) -> VfsResult<()> {
        let node = self.box_attr_target(ino, name)?;
        let wanted = parse_value(name, value)?;
        if flags & (XATTR_CREATE | XATTR_REPLACE) != 0 {
            let exists = self.read_box_xattr(ino, name).await.map(|_| true).or_else(|e| match e {
                VfsError::NoAttr => Ok(false),
                e => Err(e),
            })?;
            if exists && flags & XATTR_CREATE != 0 {
                return Err(VfsError::Exists);
            }
            if !exists && flags & XATTR_REPLACE != 0 {
                return Err(VfsError::NoAttr);
            }
        }
        match wanted {
            Wanted::Link(settings) => {
                let kind = item_kind(&node)?;
                let sharing =
                    self.remote().set_shared_link(kind, &node.box_id, &settings).await.map_err(refused_value)?;
                self.link_changed_by_us(&node, &sharing);
            }
            Wanted::Lock { expires_at } => self.lock_in_box(&node, expires_at.as_deref()).await?,
            Wanted::Unlock => self.unlock_in_box(&node).await?,
        }
        Ok(())
    }

    /// Removes the shared link or the lock.
    pub(super) async fn remove_box_xattr(&self, ino: Ino, name: &str) -> VfsResult<()> {
        let node = self.box_attr_target(ino, name)?;
        match name {
            SHARED_LINK => {
                let sharing = self.remote().remove_shared_link(item_kind(&node)?, &node.box_id).await?;
                self.link_changed_by_us(&node, &sharing);
            }
            _ => self.unlock_in_box(&node).await?,
        }
        Ok(())
    }

    /// The node whose `name` attribute is to change: `ENOTSUP` for names that cannot be set
    /// and for locks on anything but a file, `EROFS` on a read-only mount, `EAGAIN` for a file
    /// not in Box yet. A value kept from a size probe is forgotten.
    fn box_attr_target(&self, ino: Ino, name: &str) -> VfsResult<Node> {
        if !asks_box(name) {
            return Err(VfsError::NotSupported);
        }
        if is_virtual(ino) {
            return Err(VfsError::NotSupported);
        }
        self.box_sharing().forget_probed(ino);
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        item_kind(&node)?;
        if name == LOCK && node.kind != NodeKind::File {
            return Err(VfsError::NotSupported);
        }
        if self.config().attrs.read_only {
            return Err(VfsError::ReadOnly);
        }
        if node.box_id.starts_with("local:") {
            return Err(VfsError::NotInBoxYet);
        }
        Ok(node)
    }

    async fn lock_in_box(&self, node: &Node, expires_at: Option<&str>) -> VfsResult<()> {
        let file = self.remote().lock_file(&node.box_id, expires_at).await.map_err(refused_value)?;
        self.lock_changed_by_us(node, file);
        Ok(())
    }

    async fn unlock_in_box(&self, node: &Node) -> VfsResult<()> {
        let file = self.remote().unlock_file(&node.box_id).await?;
        self.lock_changed_by_us(node, file);
        Ok(())
    }

    /// We changed `node`'s shared link; `sharing` is Box's answer. A file whose content is
    /// still the version the mount knows takes the new etag (see [`Fs::rebase_on`]); anything
    /// else is revalidated at next use.
    fn link_changed_by_us(&self, node: &Node, sharing: &Sharing) {
        let version = sharing.file_version.as_ref().map(|v| v.id.as_str());
        match sharing.etag.as_deref() {
            Some(etag) if node.kind == NodeKind::File && self.rebase_on(node, etag, version) => {
                self.inodes().set_etag(node.ino, Some(etag));
            }
            _ => self.inodes().mark_stale(node.ino),
        }
    }

    /// We locked or unlocked the file `node`; `file` is Box's answer, which becomes what the
    /// mount knows of it (a pending upload rebased first, see [`Fs::rebase_on`]).
    fn lock_changed_by_us(&self, node: &Node, file: File) {
        if let Some(etag) = file.common.etag.as_deref() {
            self.rebase_on(node, etag, file.file_version.as_ref().map(|v| v.id.as_str()));
        }
        self.inodes().refresh(node.ino, Meta::from_item(&Item::File(file)));
    }

    /// Our change of the file `node`'s link or lock gave it the etag `etag` in Box. When its
    /// content there is still the version the mount knew (`version`), a pending upload based
    /// on the etag the mount knew is based on the new one, else Box would take it for a
    /// conflict (`If-Match` fails); a version changed elsewhere is left to be one. True when
    /// the content is the known version.
    fn rebase_on(&self, node: &Node, etag: &str, version: Option<&str>) -> bool {
        if version.is_none() || version != node.meta.version_id.as_deref() {
            return false;
        }
        if let Some(staged) = self.staged().get(node.ino) {
            let mut st = staged.lock();
            let known = st.record().base_etag.is_some() && st.record().base_etag == node.meta.etag;
            if known && !st.upload.in_flight() {
                st.edit_record().base_etag = Some(etag.to_string());
            }
        }
        true
    }

    /// The lock on `node` the mount knows of, if it still holds.
    fn live_lock(&self, node: &Node) -> Option<Arc<Lock>> {
        node.meta.lock.clone().flatten().filter(|l| is_live(l))
    }

    /// The id of the Box user the mount acts as (asked once).
    async fn my_user_id(&self) -> VfsResult<String> {
        if let Some(id) = self.box_sharing().me() {
            return Ok(id.to_string());
        }
        let id = self.quota().await?.id;
        Ok(self.box_sharing().learn_me(id).to_string())
    }

    /// `EACCES` (and a warning naming the holder) when another user holds the lock of the
    /// file `ino`, as far as the mount knows: Box would refuse its upload.
    pub(super) async fn refuse_if_locked_by_other(&self, ino: Ino) -> VfsResult<()> {
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        let Some(lock) = self.live_lock(&node) else { return Ok(()) };
        let holder_id = lock.created_by.as_ref().map(|u| u.id.as_str());
        if holder_id == Some(self.my_user_id().await?.as_str()) {
            return Ok(());
        }
        tracing::warn!(name = %node.name, holder = %holder_name(&lock), "not opened for writing: the file is locked in Box");
        Err(VfsError::Denied)
    }

    /// Before a file is opened for writing: refused when another user holds its lock; with
    /// `lock_on_open`, locked in Box for the writer unless it is locked already. Call before
    /// the file is staged (a lock changes the file's etag, which its upload is based on).
    pub(super) async fn lock_for_writer(&self, ino: Ino) -> VfsResult<()> {
        self.refuse_if_locked_by_other(ino).await?;
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        let in_box = node.kind == NodeKind::File && !node.box_id.starts_with("local:");
        if !self.config().lock_on_open || !in_box || self.live_lock(&node).is_some() {
            return Ok(());
        }
        if !self.box_sharing().take_for_writers(ino) {
            return Ok(()); // another writer locked it already
        }
        match self.lock_in_box(&node, None).await {
            Ok(()) => {
                tracing::debug!(name = %node.name, "locked in Box while open for writing");
                Ok(())
            }
            Err(e) => {
                drop(self.box_sharing().release_for_writers(ino).await);
                Err(e)
            }
        }
    }

    /// The entry of `ino` left the write-back queue: a lock taken for its writers is released.
    pub(super) async fn unlock_after_upload(&self, ino: Ino) {
        let Some(_unlocking) = self.box_sharing().release_for_writers(ino).await else { return };
        let Some(node) = self.inodes().get(ino) else { return };
        match self.unlock_in_box(&node).await {
            Ok(()) => tracing::debug!(name = %node.name, "unlocked in Box after the upload"),
            Err(e) => tracing::warn!(name = %node.name, error = %e, "could not unlock the file in Box"),
        }
    }

    /// At unmount: the locks taken for writers whose uploads have not released them yet
    /// (their entries are still finishing, or stay in the journal) are released, so that no
    /// lock outlives the mount that took it.
    pub async fn release_writer_locks(&self) {
        for ino in self.box_sharing().release_all().await {
            let Some(node) = self.inodes().get(ino) else { continue };
            match self.unlock_in_box(&node).await {
                Ok(()) => tracing::debug!(name = %node.name, "unlocked in Box at unmount"),
                Err(e) => tracing::warn!(name = %node.name, error = %e, "could not unlock the file in Box"),
            }
        }
    }

    /// A `LOCK_CREATE` or `LOCK_DESTROY` event: the file is read again (its source does not
    /// carry the lock), unless the event is not newer than what is known (our own locks).
    /// `None` for other events.
    pub(super) async fn lock_event(&self, ev: &Event) -> Option<Vec<Inval>> {
        if !is_lock_event(ev) {
            return None;
        }
        let item = ev.item()?;
        let node = self.inodes().find(NodeKind::File, item.id())?;
        let seq = item.common().sequence_id.as_deref().and_then(|s| s.parse::<u64>().ok());
        if node.meta.sequence_id.zip(seq).is_some_and(|(known, seq)| known >= seq) {
            return Some(Vec::new());
        }
        match self.remote().get_file(&node.box_id, None).await {
            Ok(boxfs_api::Fetched::Modified(file)) => {
                self.inodes().refresh(node.ino, Meta::from_item(&Item::File(file)));
            }
            Ok(boxfs_api::Fetched::NotModified) => {}
            Err(e) => {
                tracing::debug!(error = %e, "cannot read a file whose lock changed; revalidating later");
                self.inodes().mark_stale(node.ino);
            }
        }
        Some(vec![Inval::Inode(node.ino)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_values_parse_with_options_and_a_password_last() {
        let s = parse_link("company").unwrap();
        assert_eq!((s.access, s.unshared_at, s.password), (Some(LinkAccess::Company), None, None));
        let s = parse_link("open expires=2027-01-02 password=Secret 1!").unwrap();
        assert_eq!(s.access, Some(LinkAccess::Open));
        assert_eq!(s.unshared_at.as_deref(), Some("2027-01-02T00:00:00Z"));
        assert_eq!(s.password.as_deref(), Some("Secret 1!"));
        let s = parse_link("collaborators expires=2027-01-02T10:00:00+02:00").unwrap();
        assert_eq!(s.unshared_at.as_deref(), Some("2027-01-02T08:00:00Z"));
        let s = parse_link("password=Pass word1").unwrap();
        assert_eq!((s.access, s.password.as_deref()), (None, Some("Pass word1")), "the access stays as it is");
        assert_eq!(parse_link("expires=2027-01-02").unwrap().access, None);
        for bad in
            ["", " ", "public", "open expires=soon", "open password=", "open extra", "open expires=2027-01-02 x=1"]
        {
            assert!(matches!(parse_link(bad), Err(VfsError::Invalid)), "{bad}");
        }
    }

    #[test]
    fn lock_values_are_on_with_an_expiry_or_off() {
        assert_eq!(parse_lock("on").unwrap(), Wanted::Lock { expires_at: None });
        assert_eq!(parse_lock("off").unwrap(), Wanted::Unlock);
        assert_eq!(
            parse_lock("on expires=2027-03-04T05:06:07Z").unwrap(),
            Wanted::Lock { expires_at: Some("2027-03-04T05:06:07Z".into()) }
        );
        for bad in ["", "yes", "on later", "off expires=2027-01-01", "on expires=2027-01-01 more"] {
            assert!(matches!(parse_lock(bad), Err(VfsError::Invalid)), "{bad}");
        }
        assert_eq!(parse_value(LOCK, b"on\n").unwrap(), Wanted::Lock { expires_at: None });
    }

    #[test]
    fn a_lock_reads_as_its_holder_and_expiry() {
        let holder = boxfs_api::model::UserMini { id: "7".into(), name: "Ann".into(), login: "ann@x.org".into() };
        let mut lock = Lock { created_by: Some(holder), expired_at: None, is_download_prevented: false };
        assert_eq!(describe(&lock), "locked by Ann <ann@x.org>, no expiry");
        lock.expired_at = Some("2099-12-05T02:00:00-08:00".into());
        assert_eq!(describe(&lock), "locked by Ann <ann@x.org> until 2099-12-05T10:00:00Z");
        assert!(is_live(&lock));
        lock.expired_at = Some("2001-01-01T00:00:00Z".into());
        assert!(!is_live(&lock));
    }
}
