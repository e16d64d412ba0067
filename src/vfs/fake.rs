//! An in-memory Box for the vfs's unit tests: a [`Remote`] with folders, files (every upload a
//! new version, kept for ranged reads of that version), etags that change with every change,
//! stored `global.properties` instances, Box's answers to name conflicts and stale `if_match`
//! (409, 412), a trash (deleted items and their subtrees, restored or purged as Box does),
//! the older versions of each file, shared links and locks (a file locked by another user
//! refuses new versions), and a count of the calls made. Tests change it behind the mount's back the way
//! another Box client would ([`FakeBox::change_remotely`]).
//!
//! It keeps Box's rules that the vfs relies on and nothing more: the emulator, over HTTP, is
//! the faithful one, and the mount tests use it.

use super::remote::{Remote, RemoteResult};
use async_trait::async_trait;
use boxfs_api::metadata::{ItemKind, PatchOp};
use boxfs_api::model::{File, FileVersion, Folder, FolderMini, GlobalMetadata, Item, ItemCommon, ItemMetadata};
use boxfs_api::model::{Lock, Permissions, SharedLink, Sharing, User, UserMini, Version};
use boxfs_api::sharing::LinkSettings;
use boxfs_api::{ApiError, Fetched, SessionHook, UploadOptions, UploadTarget};
use bytes::Bytes;
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::{AsyncWrite, AsyncWriteExt};

pub const ROOT_ID: &str = "0";
/// The user the vfs acts as.
const ME: &str = "1";

#[derive(Clone, Debug)]
struct Entry {
    folder: bool,
    name: String,
    parent: Option<String>,
    /// Bumped by every change; also the item's etag and sequence id.
    changes: u64,
    /// The current version id (files).
    version: String,
    /// The older version ids, oldest first (files).
    history: Vec<String>,
    properties: Option<Map<String, Value>>,
    modified_at: String,
    shared_link: Option<SharedLink>,
    lock: Option<Lock>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    items: BTreeMap<String, Entry>,
    /// Trashed items, with whether each was trashed itself (else with a trashed folder).
    trash: BTreeMap<String, (Entry, bool)>,
    /// Content of every file version, by version id.
    versions: HashMap<String, Bytes>,
    calls: HashMap<&'static str, u64>,
    /// Since when Box is unreachable (`None`: reachable).
    offline: Option<std::time::SystemTime>,
    /// Tells waiters whether Box is unreachable.
    unreachable: tokio::sync::watch::Sender<bool>,
}

#[derive(Clone, Default)]
pub struct FakeBox {
    state: Arc<Mutex<State>>,
}

fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

fn not_found() -> ApiError {
    ApiError::NotFound { code: Some("not_found".into()) }
}

impl State {
    fn called(&mut self, name: &'static str) {
        *self.calls.entry(name).or_default() += 1;
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}", 1000 + self.next_id)
    }

    fn entry(&self, id: &str, folder: bool) -> RemoteResult<&Entry> {
        self.items.get(id).filter(|e| e.folder == folder).ok_or_else(not_found)
    }

    fn entry_mut(&mut self, id: &str, folder: bool) -> RemoteResult<&mut Entry> {
        self.items.get_mut(id).filter(|e| e.folder == folder).ok_or_else(not_found)
    }

    fn child(&self, parent: &str, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(_, e)| e.parent.as_deref() == Some(parent) && e.name == name)
            .map(|(id, _)| id.as_str())
    }

    fn refuse_taken(&self, parent: &str, name: &str, except: &str) -> RemoteResult<()> {
        match self.child(parent, name) {
            Some(id) if id != except => Err(ApiError::NameConflict { conflicts: vec![self.item(id)] }),
            _ => Ok(()),
        }
    }

    fn common(&self, id: &str) -> ItemCommon {
        let e = &self.items[id];
        let size = if e.folder { 0 } else { self.versions[&e.version].len() as u64 };
        ItemCommon {
            id: id.to_string(),
            name: e.name.clone(),
            etag: Some(e.changes.to_string()),
            sequence_id: Some(e.changes.to_string()),
            size,
            modified_at: Some(e.modified_at.clone()),
            content_modified_at: Some(e.modified_at.clone()),
            parent: e.parent.as_ref().map(|p| FolderMini { id: p.clone(), name: String::new() }),
            permissions: Some(Permissions { can_download: true, can_upload: true, can_rename: true, can_delete: true }),
            metadata: Some(ItemMetadata { global: Some(GlobalMetadata { properties: e.properties.clone() }) }),
            ..ItemCommon::default()
        }
    }

    fn file(&self, id: &str) -> File {
        let e = &self.items[id];
        let sha1 = sha1_hex(&self.versions[&e.version]);
        File {
            common: self.common(id),
            sha1: Some(sha1.clone()),
            file_version: Some(FileVersion { id: e.version.clone(), sha1: Some(sha1) }),
            lock: Some(e.lock.clone()),
        }
    }

    fn folder(&self, id: &str) -> Folder {
        Folder { common: self.common(id) }
    }

    fn item(&self, id: &str) -> Item {
        if self.items[id].folder {
            Item::Folder(self.folder(id))
        } else {
            Item::File(self.file(id))
        }
    }

    fn check_if_match(e: &Entry, if_match: Option<&str>) -> RemoteResult<()> {
        match if_match {
            Some(tag) if tag != e.changes.to_string() => Err(ApiError::PreconditionFailed),
            _ => Ok(()),
        }
    }

    /// Box's 403 for a change of a file another user holds the lock of.
    fn refuse_if_locked(e: &Entry) -> RemoteResult<()> {
        match &e.lock {
            Some(lock) if lock.created_by.as_ref().is_some_and(|u| u.id != ME) => {
                Err(ApiError::Forbidden { code: Some("access_denied_item_locked".into()) })
            }
            _ => Ok(()),
        }
    }

    fn sharing(&self, id: &str) -> Sharing {
        let e = &self.items[id];
        let file_version = (!e.folder).then(|| FileVersion { id: e.version.clone(), sha1: None });
        let etag = Some(e.changes.to_string());
        Sharing { etag, file_version, shared_link: e.shared_link.clone(), lock: e.lock.clone() }
    }

    fn set_lock(&mut self, id: &str, lock: Option<Lock>) -> RemoteResult<File> {
        let e = self.entry_mut(id, false)?;
        State::refuse_if_locked(e)?;
        e.lock = lock;
        e.changes += 1;
        Ok(self.file(id))
    }

    fn insert(&mut self, folder: bool, parent: &str, name: &str, content: Option<Bytes>) -> String {
        let id = self.new_id();
        let version = format!("v{}", self.new_id());
        if let Some(c) = content {
            self.versions.insert(version.clone(), c);
        }
        let entry = Entry {
            folder,
            name: name.to_string(),
            parent: Some(parent.to_string()),
            changes: 1,
            version,
            history: Vec::new(),
            properties: None,
            modified_at: "2026-01-01T00:00:00Z".into(),
            shared_link: None,
            lock: None,
        };
        self.items.insert(id.clone(), entry);
        id
    }

    fn new_version(&mut self, id: &str, content: Bytes, modified_at: Option<&str>) {
        let version = format!("v{}", self.new_id());
        self.versions.insert(version.clone(), content);
        let e = self.items.get_mut(id).expect("a file");
        e.history.push(std::mem::replace(&mut e.version, version));
        e.changes += 1;
        if let Some(t) = modified_at {
            e.modified_at = t.to_string();
        }
    }

    fn upload(&mut self, target: UploadTarget<'_>, data: Bytes, opts: &UploadOptions) -> RemoteResult<File> {
        let id = match target {
            UploadTarget::NewFile { parent_id, name } => {
                self.entry(parent_id, true)?;
                self.refuse_taken(parent_id, name, "")?;
                let id = self.insert(false, parent_id, name, Some(data));
                if let Some(t) = &opts.content_modified_at {
                    self.items.get_mut(&id).expect("inserted").modified_at = t.clone();
                }
                id
            }
            UploadTarget::NewVersion { file_id, name, if_match } => {
                let e = self.entry(file_id, false)?;
                State::check_if_match(e, if_match)?;
                State::refuse_if_locked(e)?;
                if let Some(name) = name {
                    let parent = e.parent.clone().unwrap_or_default();
                    self.refuse_taken(&parent, name, file_id)?;
                    self.entry_mut(file_id, false)?.name = name.to_string();
                }
                self.new_version(file_id, data, opts.content_modified_at.as_deref());
                file_id.to_string()
            }
        };
        if let Some(p) = &opts.progress {
            p.fetch_add(self.versions[&self.items[&id].version].len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(self.file(&id))
    }

    fn rename(
        &mut self,
        id: &str,
        folder: bool,
        name: Option<&str>,
        parent: Option<&str>,
        if_match: Option<&str>,
    ) -> RemoteResult<()> {
        let e = self.entry(id, folder)?;
        State::check_if_match(e, if_match)?;
        let new_parent = parent.map(str::to_string).or_else(|| e.parent.clone()).unwrap_or_default();
        let new_name = name.unwrap_or(&e.name).to_string();
        self.entry(&new_parent, true)?;
        self.refuse_taken(&new_parent, &new_name, id)?;
        let e = self.entry_mut(id, folder)?;
        e.name = new_name;
        e.parent = Some(new_parent);
        e.changes += 1;
        Ok(())
    }

    /// Moves an item and its subtree to the trash (the item as trashed itself).
    fn remove(&mut self, id: &str) {
        let children: Vec<String> =
            self.items.iter().filter(|(_, e)| e.parent.as_deref() == Some(id)).map(|(c, _)| c.clone()).collect();
        for c in children {
            self.remove(&c);
            self.trash.get_mut(&c).expect("just trashed").1 = false;
        }
        if let Some(e) = self.items.remove(id) {
            self.trash.insert(id.to_string(), (e, true));
        }
    }

    /// The trashed item `id` that was trashed itself.
    fn trashed_root(&self, id: &str, folder: bool) -> RemoteResult<&Entry> {
        match self.trash.get(id) {
            Some((e, true)) if e.folder == folder => Ok(e),
            _ => Err(not_found()),
        }
    }

    /// Brings a trashed item back with what was trashed with it (not what was trashed itself).
    fn restore(&mut self, id: &str, folder: bool, name: Option<&str>, parent: Option<&str>) -> RemoteResult<()> {
        let e = self.trashed_root(id, folder)?;
        let parent = parent.map(str::to_string).or_else(|| e.parent.clone()).unwrap_or_default();
        let name = name.unwrap_or(&e.name).to_string();
        self.entry(&parent, true)?;
        self.refuse_taken(&parent, &name, id)?;
        let (mut e, _) = self.trash.remove(id).expect("checked above");
        (e.name, e.parent) = (name, Some(parent));
        e.changes += 1;
        self.items.insert(id.to_string(), e);
        self.bring_back_children(id);
        Ok(())
    }

    fn bring_back_children(&mut self, id: &str) {
        let children: Vec<String> = self
            .trash
            .iter()
            .filter(|(_, (e, root))| !root && e.parent.as_deref() == Some(id))
            .map(|(c, _)| c.clone())
            .collect();
        for c in children {
            let (e, _) = self.trash.remove(&c).expect("listed");
            self.items.insert(c.clone(), e);
            self.bring_back_children(&c);
        }
    }

    /// Deletes a trashed item and every trashed item under it for good.
    fn purge(&mut self, id: &str) {
        let children: Vec<String> =
            self.trash.iter().filter(|(_, (e, _))| e.parent.as_deref() == Some(id)).map(|(c, _)| c.clone()).collect();
        for c in children {
            self.purge(&c);
        }
        self.trash.remove(id);
    }

    /// A trashed item as Box lists it in the trash (its `parent` is where it was).
    fn trashed_item(&self, id: &str) -> Item {
        let (e, _) = &self.trash[id];
        let size = if e.folder { 0 } else { self.versions[&e.version].len() as u64 };
        let common = ItemCommon {
            id: id.to_string(),
            name: e.name.clone(),
            etag: Some(e.changes.to_string()),
            size,
            modified_at: Some(e.modified_at.clone()),
            content_modified_at: Some(e.modified_at.clone()),
            parent: e.parent.as_ref().map(|p| FolderMini { id: p.clone(), name: String::new() }),
            item_status: Some("trashed".into()),
            ..ItemCommon::default()
        };
        match e.folder {
            true => Item::Folder(Folder { common }),
            false => Item::File(File { common, sha1: None, file_version: None, lock: None }),
        }
    }

    fn properties_mut(&mut self, kind: ItemKind, id: &str) -> RemoteResult<&mut Option<Map<String, Value>>> {
        let e = self.entry_mut(id, kind == ItemKind::Folder)?;
        e.changes += 1;
        Ok(&mut e.properties)
    }
}

impl FakeBox {
    /// An account with an empty root folder (id [`ROOT_ID`]).
    pub fn new() -> FakeBox {
        let fake = FakeBox::default();
        let root = Entry {
            folder: true,
            name: "All Files".into(),
            parent: None,
            changes: 1,
            version: String::new(),
            history: Vec::new(),
            properties: None,
            modified_at: "2026-01-01T00:00:00Z".into(),
            shared_link: None,
            lock: None,
        };
        fake.lock().items.insert(ROOT_ID.into(), root);
        fake
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, for the call `name` (counted); `Offline` while [`FakeBox::set_offline`].
    fn call(&self, name: &'static str) -> RemoteResult<MutexGuard<'_, State>> {
        let mut st = self.lock();
        if let Some(since) = st.offline {
            return Err(ApiError::Offline { since });
        }
        st.called(name);
        Ok(st)
    }

    /// Box unreachable (every call fails at once with `Offline`), or back.
    pub fn set_offline(&self, offline: bool) {
        let mut st = self.lock();
        st.offline = offline.then(std::time::SystemTime::now);
        st.unreachable.send_replace(offline);
    }

    /// How many times the vfs made the call `name` (a [`Remote`] method's name).
    pub fn calls(&self, name: &str) -> u64 {
        self.lock().calls.get(name).copied().unwrap_or(0)
    }

    /// Every call made so far, by name.
    pub fn total_calls(&self) -> u64 {
        self.lock().calls.values().sum()
    }

    /// A folder made by someone else; its id.
    pub fn add_folder(&self, parent: &str, name: &str) -> String {
        self.lock().insert(true, parent, name, None)
    }

    /// A file uploaded by someone else; its id.
    pub fn add_file(&self, parent: &str, name: &str, content: &[u8]) -> String {
        self.lock().insert(false, parent, name, Some(Bytes::copy_from_slice(content)))
    }

    /// A new version of a file, uploaded by someone else.
    pub fn change_remotely(&self, id: &str, content: &[u8]) {
        self.lock().new_version(id, Bytes::copy_from_slice(content), Some("2026-02-02T00:00:00Z"));
    }

    /// The id of the item `name` in folder `parent`.
    pub fn find(&self, parent: &str, name: &str) -> Option<String> {
        self.lock().child(parent, name).map(str::to_string)
    }

    /// The names in folder `parent`, sorted.
    pub fn names(&self, parent: &str) -> Vec<String> {
        let st = self.lock();
        let mut names: Vec<String> =
            st.items.values().filter(|e| e.parent.as_deref() == Some(parent)).map(|e| e.name.clone()).collect();
        names.sort();
        names
    }

    /// A file's current content.
    pub fn content(&self, id: &str) -> Option<Bytes> {
        let st = self.lock();
        let e = st.items.get(id).filter(|e| !e.folder)?;
        st.versions.get(&e.version).cloned()
    }

    /// Whether item `id` is in the trash, as trashed itself (`Some(true)`) or with a folder.
    pub fn in_trash(&self, id: &str) -> Option<bool> {
        self.lock().trash.get(id).map(|(_, root)| *root)
    }

    /// An item's `global.properties` instance.
    pub fn properties(&self, id: &str) -> Option<Map<String, Value>> {
        self.lock().items.get(id).and_then(|e| e.properties.clone())
    }

    /// Locks a file as another user, `Someone Else`, without expiry.
    pub fn lock_by_someone_else(&self, id: &str) {
        let someone = UserMini { id: "2".into(), name: "Someone Else".into(), login: "else@example.com".into() };
        let lock = Lock { created_by: Some(someone), expired_at: None, is_download_prevented: false };
        let mut st = self.lock();
        let e = st.items.get_mut(id).expect("a file");
        e.lock = Some(lock);
        e.changes += 1;
    }

    /// An item's shared link and lock.
    pub fn sharing_of(&self, id: &str) -> Sharing {
        self.lock().sharing(id)
    }
}

#[async_trait]
impl Remote for FakeBox {
    fn background(&self) -> Arc<dyn Remote> {
        Arc::new(self.clone())
    }

    fn connection(&self) -> boxfs_api::Connection {
        match self.lock().offline {
            Some(since) => boxfs_api::Connection::Offline { since, reason: "set offline".into() },
            None => boxfs_api::Connection::Online,
        }
    }

    async fn until_online(&self) {
        let mut unreachable = self.lock().unreachable.subscribe();
        let _ = unreachable.wait_for(|down| !*down).await;
    }

    fn idle(&self) -> Arc<dyn Remote> {
        Arc::new(self.clone())
    }

    fn upload_cutoff(&self) -> u64 {
        20 * 1024 * 1024
    }

    async fn me(&self) -> RemoteResult<User> {
        let st = self.call("me")?;
        let used = st.versions.values().map(|v| v.len() as u64).sum();
        Ok(User {
            id: ME.into(),
            name: "Fake".into(),
            login: "fake@example.com".into(),
            space_amount: 1 << 40,
            space_used: used,
            max_upload_size: 1 << 34,
        })
    }

    async fn get_file(&self, id: &str, etag: Option<&str>) -> RemoteResult<Fetched<File>> {
        let st = self.call("get_file")?;
        let e = st.entry(id, false)?;
        if etag == Some(e.changes.to_string().as_str()) {
            return Ok(Fetched::NotModified);
        }
        Ok(Fetched::Modified(st.file(id)))
    }

    async fn get_folder(&self, id: &str, etag: Option<&str>) -> RemoteResult<Fetched<Folder>> {
        let st = self.call("get_folder")?;
        let e = st.entry(id, true)?;
        if etag == Some(e.changes.to_string().as_str()) {
            return Ok(Fetched::NotModified);
        }
        Ok(Fetched::Modified(st.folder(id)))
    }

    async fn list_folder(&self, id: &str) -> RemoteResult<Vec<Item>> {
        let st = self.call("list_folder")?;
        st.entry(id, true)?;
        let ids = st.items.iter().filter(|(_, e)| e.parent.as_deref() == Some(id)).map(|(c, _)| c.clone());
        Ok(ids.map(|c| st.item(&c)).collect())
    }

    async fn create_folder(&self, parent_id: &str, name: &str) -> RemoteResult<Folder> {
        let mut st = self.call("create_folder")?;
        st.entry(parent_id, true)?;
        st.refuse_taken(parent_id, name, "")?;
        let id = st.insert(true, parent_id, name, None);
        Ok(st.folder(&id))
    }

    async fn update_file(
        &self,
        id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
        if_match: Option<&str>,
    ) -> RemoteResult<File> {
        let mut st = self.call("update_file")?;
        st.rename(id, false, name, parent_id, if_match)?;
        Ok(st.file(id))
    }

    async fn update_folder(
        &self,
        id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
        if_match: Option<&str>,
    ) -> RemoteResult<Folder> {
        let mut st = self.call("update_folder")?;
        st.rename(id, true, name, parent_id, if_match)?;
        Ok(st.folder(id))
    }

    async fn delete_file(&self, id: &str, if_match: Option<&str>) -> RemoteResult<()> {
        let mut st = self.call("delete_file")?;
        State::check_if_match(st.entry(id, false)?, if_match)?;
        st.remove(id);
        Ok(())
    }

    async fn delete_folder(&self, id: &str, recursive: bool, if_match: Option<&str>) -> RemoteResult<()> {
        let mut st = self.call("delete_folder")?;
        State::check_if_match(st.entry(id, true)?, if_match)?;
        if !recursive && st.items.values().any(|e| e.parent.as_deref() == Some(id)) {
            return Err(ApiError::FolderNotEmpty);
        }
        st.remove(id);
        Ok(())
    }

    async fn delete_web_link(&self, _id: &str) -> RemoteResult<()> {
        drop(self.call("delete_web_link")?);
        Err(not_found())
    }

    async fn trash_items(&self) -> RemoteResult<Vec<Item>> {
        let st = self.call("trash_items")?;
        Ok(st.trash.iter().filter(|(_, (_, root))| *root).map(|(id, _)| st.trashed_item(id)).collect())
    }

    async fn restore_file(&self, id: &str, name: Option<&str>, parent_id: Option<&str>) -> RemoteResult<File> {
        let mut st = self.call("restore_file")?;
        st.restore(id, false, name, parent_id)?;
        Ok(st.file(id))
    }

    async fn restore_folder(&self, id: &str, name: Option<&str>, parent_id: Option<&str>) -> RemoteResult<Folder> {
        let mut st = self.call("restore_folder")?;
        st.restore(id, true, name, parent_id)?;
        Ok(st.folder(id))
    }

    async fn purge_file(&self, id: &str) -> RemoteResult<()> {
        let mut st = self.call("purge_file")?;
        st.trashed_root(id, false)?;
        st.purge(id);
        Ok(())
    }

    async fn purge_folder(&self, id: &str) -> RemoteResult<()> {
        let mut st = self.call("purge_folder")?;
        st.trashed_root(id, true)?;
        st.purge(id);
        Ok(())
    }

    async fn file_versions(&self, id: &str) -> RemoteResult<Vec<Version>> {
        let st = self.call("file_versions")?;
        let e = st.entry(id, false)?;
        let version = |v: &String| Version {
            id: v.clone(),
            sha1: Some(sha1_hex(&st.versions[v])),
            size: st.versions[v].len() as u64,
            created_at: Some(e.modified_at.clone()),
            modified_at: Some(e.modified_at.clone()),
            trashed_at: None,
        };
        Ok(e.history.iter().rev().map(version).collect())
    }

    async fn read_range_into(
        &self,
        file_id: &str,
        version: Option<&str>,
        offset: u64,
        len: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> RemoteResult<u64> {
        let content = {
            let st = self.call("read_range_into")?;
            let e = st.entry(file_id, false)?;
            st.versions.get(version.unwrap_or(&e.version)).cloned().ok_or_else(not_found)?
        };
        let start = (offset as usize).min(content.len());
        let end = (offset.saturating_add(len) as usize).min(content.len());
        out.write_all(&content[start..end]).await.map_err(ApiError::Io)?;
        Ok((end - start) as u64)
    }

    async fn upload_bytes(&self, target: UploadTarget<'_>, data: Bytes, opts: &UploadOptions) -> RemoteResult<File> {
        self.call("upload_bytes")?.upload(target, data, opts)
    }

    async fn upload_resumable(
        &self,
        target: UploadTarget<'_>,
        path: &Path,
        opts: &UploadOptions,
        _session_id: Option<&str>,
        hook: SessionHook<'_>,
    ) -> RemoteResult<File> {
        let data = Bytes::from(tokio::fs::read(path).await?);
        hook(None);
        self.call("upload_resumable")?.upload(target, data, opts)
    }

    async fn get_properties(&self, kind: ItemKind, id: &str) -> RemoteResult<Option<Map<String, Value>>> {
        let st = self.call("get_properties")?;
        Ok(st.entry(id, kind == ItemKind::Folder)?.properties.clone())
    }

    async fn create_properties(
        &self,
        kind: ItemKind,
        id: &str,
        keys: &Map<String, Value>,
    ) -> RemoteResult<Map<String, Value>> {
        let mut st = self.call("create_properties")?;
        let props = st.properties_mut(kind, id)?;
        if props.is_some() {
            return Err(ApiError::Http {
                status: 409,
                code: Some("tuple_already_exists".into()),
                message: String::new(),
            });
        }
        *props = Some(keys.clone());
        Ok(keys.clone())
    }

    async fn update_properties(&self, kind: ItemKind, id: &str, ops: &[PatchOp]) -> RemoteResult<Map<String, Value>> {
        let mut st = self.call("update_properties")?;
        let props = st.properties_mut(kind, id)?.as_mut().ok_or_else(not_found)?;
        let mut next = props.clone();
        for op in ops {
            let key = op.path.trim_start_matches('/').replace("~1", "/").replace("~0", "~");
            match (op.op, &op.value) {
                ("add" | "replace", Some(v)) => {
                    next.insert(key, v.clone());
                }
                ("remove", None) if next.remove(&key).is_some() => {}
                _ => {
                    return Err(ApiError::Http {
                        status: 400,
                        code: Some("bad_request".into()),
                        message: op.path.clone(),
                    })
                }
            }
        }
        *props = next.clone();
        Ok(next)
    }

    async fn sharing(&self, kind: ItemKind, id: &str) -> RemoteResult<Sharing> {
        let st = self.call("sharing")?;
        st.entry(id, kind == ItemKind::Folder)?;
        Ok(st.sharing(id))
    }

    async fn set_shared_link(&self, kind: ItemKind, id: &str, settings: &LinkSettings) -> RemoteResult<Sharing> {
        let mut st = self.call("set_shared_link")?;
        let e = st.entry_mut(id, kind == ItemKind::Folder)?;
        let url = format!("https://fake.box/s/{id}");
        let kept = e.shared_link.as_ref().and_then(|l| l.access.clone());
        e.shared_link = Some(SharedLink {
            url,
            access: settings.access.map(|a| a.as_str().to_string()).or(kept).or(Some("open".into())),
            unshared_at: settings.unshared_at.clone(),
            is_password_enabled: settings.password.is_some(),
        });
        e.changes += 1;
        Ok(st.sharing(id))
    }

    async fn remove_shared_link(&self, kind: ItemKind, id: &str) -> RemoteResult<Sharing> {
        let mut st = self.call("remove_shared_link")?;
        let e = st.entry_mut(id, kind == ItemKind::Folder)?;
        e.shared_link = None;
        e.changes += 1;
        Ok(st.sharing(id))
    }

    async fn lock_file(&self, id: &str, expires_at: Option<&str>) -> RemoteResult<File> {
        let me = UserMini { id: ME.into(), name: "Fake".into(), login: "fake@example.com".into() };
        let lock =
            Lock { created_by: Some(me), expired_at: expires_at.map(str::to_string), is_download_prevented: false };
        self.call("lock_file")?.set_lock(id, Some(lock))
    }

    async fn unlock_file(&self, id: &str) -> RemoteResult<File> {
        self.call("unlock_file")?.set_lock(id, None)
    }

    async fn delete_properties(&self, kind: ItemKind, id: &str) -> RemoteResult<()> {
        let mut st = self.call("delete_properties")?;
        st.properties_mut(kind, id)?.take().map(|_| ()).ok_or_else(not_found)
    }
}
