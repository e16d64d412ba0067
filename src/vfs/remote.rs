//! What the vfs needs of Box, as a trait: the calls it makes and nothing else. The Box client
//! (`boxfs_api::Client`) implements it for the mount; an in-memory fake implements it for the
//! vfs's unit tests, so that the filesystem logic runs without FUSE, HTTP or an emulator.
//!
//! The answers are the client's model types and errors: the vfs maps an [`ApiError`] to an
//! errno in one place (`error.rs`), whoever produced it.
//!
//! A remote has a background twin ([`Remote::background`]) for work nobody waits on
//! (prefetching, uploads, metadata writes), which the request budget serves after the calls
//! that someone waits on, and an idle twin ([`Remote::idle`]) for downloads of pinned content,
//! served after both.
//!
//! A remote knows whether Box can be reached ([`Remote::connection`]): while it cannot, its
//! calls fail at once with [`ApiError::Offline`], and work that can wait waits for
//! [`Remote::until_online`].

use async_trait::async_trait;
use boxfs_api::metadata::{ItemKind, PatchOp};
use boxfs_api::model::{File, Folder, Item, Sharing, User, Version};
use boxfs_api::sharing::LinkSettings;
use boxfs_api::{ApiError, Client, Connection, Fetched, SessionHook, UploadOptions, UploadTarget};
use bytes::Bytes;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWrite;

pub type RemoteResult<T> = Result<T, ApiError>;

/// Box as the vfs sees it. Ids are Box ids; `etag`/`if_match` make a call conditional.
#[async_trait]
pub trait Remote: Send + Sync + 'static {
    /// The same remote, at the priority of work nobody waits on.
    fn background(&self) -> Arc<dyn Remote>;
    /// The same remote, below background work (downloads of pinned content).
    fn idle(&self) -> Arc<dyn Remote>;
    /// Whether Box can be reached right now.
    fn connection(&self) -> Connection;
    /// Resolves once Box can be reached (at once when it can).
    async fn until_online(&self);
    /// Content below this size is uploaded in one request; above it through a session.
    fn upload_cutoff(&self) -> u64;

    async fn me(&self) -> RemoteResult<User>;
    async fn get_file(&self, id: &str, etag: Option<&str>) -> RemoteResult<Fetched<File>>;
    async fn get_folder(&self, id: &str, etag: Option<&str>) -> RemoteResult<Fetched<Folder>>;
    /// Every item of a folder, with the fields a `stat` needs and the stored POSIX attributes.
    async fn list_folder(&self, id: &str) -> RemoteResult<Vec<Item>>;
    async fn create_folder(&self, parent_id: &str, name: &str) -> RemoteResult<Folder>;
    async fn update_file(
        &self,
        id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
        if_match: Option<&str>,
    ) -> RemoteResult<File>;
    async fn update_folder(
        &self,
        id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
        if_match: Option<&str>,
    ) -> RemoteResult<Folder>;
    async fn delete_file(&self, id: &str, if_match: Option<&str>) -> RemoteResult<()>;
    async fn delete_folder(&self, id: &str, recursive: bool, if_match: Option<&str>) -> RemoteResult<()>;
    async fn delete_web_link(&self, id: &str) -> RemoteResult<()>;

    /// The user's trash: items trashed themselves (not only through a trashed folder).
    async fn trash_items(&self) -> RemoteResult<Vec<Item>>;
    /// Brings a trashed file back, into `parent_id` (else where it was), renamed to `name`.
    async fn restore_file(&self, id: &str, name: Option<&str>, parent_id: Option<&str>) -> RemoteResult<File>;
    async fn restore_folder(&self, id: &str, name: Option<&str>, parent_id: Option<&str>) -> RemoteResult<Folder>;
    /// Deletes a trashed item for good.
    async fn purge_file(&self, id: &str) -> RemoteResult<()>;
    async fn purge_folder(&self, id: &str) -> RemoteResult<()>;
    /// A file's older versions, newest first (not the current one).
    async fn file_versions(&self, id: &str) -> RemoteResult<Vec<Version>>;

    /// Writes up to `len` bytes of the file (at `version`, or the current one) from `offset`
    /// to `out`; returns how many (fewer only at the end of the file).
    async fn read_range_into(
        &self,
        file_id: &str,
        version: Option<&str>,
        offset: u64,
        len: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> RemoteResult<u64>;
    /// Content below the cut-off, in one request.
    async fn upload_bytes(&self, target: UploadTarget<'_>, data: Bytes, opts: &UploadOptions) -> RemoteResult<File>;
    /// A file's content, resuming the session `session_id` when it still matches; `hook`
    /// learns every session id in use.
    async fn upload_resumable(
        &self,
        target: UploadTarget<'_>,
        path: &Path,
        opts: &UploadOptions,
        session_id: Option<&str>,
        hook: SessionHook<'_>,
    ) -> RemoteResult<File>;

    /// The item's `global.properties` metadata instance (`None`: it has none).
    async fn get_properties(&self, kind: ItemKind, id: &str) -> RemoteResult<Option<Map<String, Value>>>;
    async fn create_properties(
        &self,
        kind: ItemKind,
        id: &str,
        keys: &Map<String, Value>,
    ) -> RemoteResult<Map<String, Value>>;
    async fn update_properties(&self, kind: ItemKind, id: &str, ops: &[PatchOp]) -> RemoteResult<Map<String, Value>>;
    async fn delete_properties(&self, kind: ItemKind, id: &str) -> RemoteResult<()>;

    /// The item's shared link and (files) lock.
    async fn sharing(&self, kind: ItemKind, id: &str) -> RemoteResult<Sharing>;
    /// Creates or changes the item's shared link.
    async fn set_shared_link(&self, kind: ItemKind, id: &str, settings: &LinkSettings) -> RemoteResult<Sharing>;
    async fn remove_shared_link(&self, kind: ItemKind, id: &str) -> RemoteResult<Sharing>;
    /// Locks a file as the user the remote acts for; the file with its new lock.
    async fn lock_file(&self, id: &str, expires_at: Option<&str>) -> RemoteResult<File>;
    async fn unlock_file(&self, id: &str) -> RemoteResult<File>;
}

#[async_trait]
impl Remote for Client {
    fn background(&self) -> Arc<dyn Remote> {
        Arc::new(Client::background(self))
    }

    fn connection(&self) -> Connection {
        Client::connection(self)
    }

    async fn until_online(&self) {
        Client::until_online(self).await
    }

    fn idle(&self) -> Arc<dyn Remote> {
        Arc::new(Client::idle(self))
    }

    fn upload_cutoff(&self) -> u64 {
        self.config().upload_cutoff
    }

    async fn me(&self) -> RemoteResult<User> {
        Client::me(self).await
    }

    async fn get_file(&self, id: &str, etag: Option<&str>) -> RemoteResult<Fetched<File>> {
        Client::get_file(self, id, etag).await
    }

    async fn get_folder(&self, id: &str, etag: Option<&str>) -> RemoteResult<Fetched<Folder>> {
        Client::get_folder(self, id, etag).await
    }

    async fn list_folder(&self, id: &str) -> RemoteResult<Vec<Item>> {
        Client::list_folder(self, id).await
    }

    async fn create_folder(&self, parent_id: &str, name: &str) -> RemoteResult<Folder> {
        Client::create_folder(self, parent_id, name).await
    }

    async fn update_file(
        &self,
        id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
        if_match: Option<&str>,
    ) -> RemoteResult<File> {
        Client::update_file(self, id, name, parent_id, if_match).await
    }

    async fn update_folder(
        &self,
        id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
        if_match: Option<&str>,
    ) -> RemoteResult<Folder> {
        Client::update_folder(self, id, name, parent_id, if_match).await
    }

    async fn delete_file(&self, id: &str, if_match: Option<&str>) -> RemoteResult<()> {
        Client::delete_file(self, id, if_match).await
    }

    async fn delete_folder(&self, id: &str, recursive: bool, if_match: Option<&str>) -> RemoteResult<()> {
        Client::delete_folder(self, id, recursive, if_match).await
    }

    async fn delete_web_link(&self, id: &str) -> RemoteResult<()> {
        Client::delete_web_link(self, id).await
    }

    async fn trash_items(&self) -> RemoteResult<Vec<Item>> {
        Client::trash_items(self).await
    }

    async fn restore_file(&self, id: &str, name: Option<&str>, parent_id: Option<&str>) -> RemoteResult<File> {
        Client::restore_file(self, id, name, parent_id).await
    }

    async fn restore_folder(&self, id: &str, name: Option<&str>, parent_id: Option<&str>) -> RemoteResult<Folder> {
        Client::restore_folder(self, id, name, parent_id).await
    }

    async fn purge_file(&self, id: &str) -> RemoteResult<()> {
        Client::purge_file(self, id).await
    }

    async fn purge_folder(&self, id: &str) -> RemoteResult<()> {
        Client::purge_folder(self, id).await
    }

    async fn file_versions(&self, id: &str) -> RemoteResult<Vec<Version>> {
        Client::file_versions(self, id).await
    }

    async fn read_range_into(
        &self,
        file_id: &str,
        version: Option<&str>,
        offset: u64,
        len: u64,
        mut out: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> RemoteResult<u64> {
        Client::read_range_into(self, file_id, version, offset, len, &mut out).await
    }

    async fn upload_bytes(&self, target: UploadTarget<'_>, data: Bytes, opts: &UploadOptions) -> RemoteResult<File> {
        Client::upload_bytes(self, target, data, opts).await
    }

    async fn upload_resumable(
        &self,
        target: UploadTarget<'_>,
        path: &Path,
        opts: &UploadOptions,
        session_id: Option<&str>,
        hook: SessionHook<'_>,
    ) -> RemoteResult<File> {
        Client::upload_resumable(self, target, path, opts, session_id, hook).await
    }

    async fn get_properties(&self, kind: ItemKind, id: &str) -> RemoteResult<Option<Map<String, Value>>> {
        Client::get_properties(self, kind, id).await
    }

    async fn create_properties(
        &self,
        kind: ItemKind,
        id: &str,
        keys: &Map<String, Value>,
    ) -> RemoteResult<Map<String, Value>> {
        Client::create_properties(self, kind, id, keys).await
    }

    async fn update_properties(&self, kind: ItemKind, id: &str, ops: &[PatchOp]) -> RemoteResult<Map<String, Value>> {
        Client::update_properties(self, kind, id, ops).await
    }

    async fn delete_properties(&self, kind: ItemKind, id: &str) -> RemoteResult<()> {
        Client::delete_properties(self, kind, id).await
    }

    async fn sharing(&self, kind: ItemKind, id: &str) -> RemoteResult<Sharing> {
        Client::sharing(self, kind, id).await
    }

    async fn set_shared_link(&self, kind: ItemKind, id: &str, settings: &LinkSettings) -> RemoteResult<Sharing> {
        Client::set_shared_link(self, kind, id, settings).await
    }

    async fn remove_shared_link(&self, kind: ItemKind, id: &str) -> RemoteResult<Sharing> {
        Client::remove_shared_link(self, kind, id).await
    }

    async fn lock_file(&self, id: &str, expires_at: Option<&str>) -> RemoteResult<File> {
        Client::lock_file(self, id, expires_at).await
    }

    async fn unlock_file(&self, id: &str) -> RemoteResult<File> {
        Client::unlock_file(self, id).await
    }
}
