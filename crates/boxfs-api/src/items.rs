//! Metadata calls: the user, files and folders (with `if-none-match`), listings (marker
//! paging, 1000 per page, explicit stat fields), folder creation (duplicate-safe), rename and
//! move (with `if-match`), delete, copy, trash (list, restore, purge) and a file's versions.

use super::client::{Call, Client};
use super::error::{ApiError, ApiResult};
use super::model::{File, Folder, HasCommon, Item, ItemsPage, User, Version, VersionsPage};
use futures_util::Stream;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The fields of a folder's entries, asked for explicitly so that one listing call is enough:
/// what a `stat` needs, with the `global.properties` metadata instance, where boxfs keeps POSIX
/// attributes. A cold walk parses a million of them.
macro_rules! list_fields {
    () => {
        "type,id,sequence_id,etag,name,size,sha1,file_version,created_at,modified_at,\
content_created_at,content_modified_at,permissions,url,lock,metadata.global.properties"
    };
}
pub const LIST_FIELDS: &str = list_fields!();

/// The fields of an item read on its own: [`LIST_FIELDS`] and where it is (in a listing, the
/// parent is the folder listed, and only active items show).
pub const STAT_FIELDS: &str = concat!(list_fields!(), ",parent,item_status");

const PAGE_LIMIT: u32 = 1000;

/// The fields of a file version that `boxfs` shows.
const VERSION_FIELDS: &str = "sha1,size,created_at,modified_at,trashed_at";

/// An item as a request with `fields=STAT_FIELDS` returns it: the metadata instances asked for
/// are known, also when the item has none and Box leaves its `metadata` field out.
fn stat_item<T: HasCommon>(mut item: T) -> T {
    item.common_mut().metadata.get_or_insert_with(Default::default);
    item
}

pub(crate) fn stat_json<T: serde::de::DeserializeOwned + HasCommon>(reply: &super::client::Reply) -> ApiResult<T> {
    reply.json().map(stat_item)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The result of a conditional GET.
#[derive(Debug)]
pub enum Fetched<T> {
    Modified(T),
    NotModified,
}

impl<T> Fetched<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Fetched<U> {
        match self {
            Fetched::Modified(t) => Fetched::Modified(f(t)),
            Fetched::NotModified => Fetched::NotModified,
        }
    }
}

impl Client {
    pub async fn me(&self) -> ApiResult<User> {
        self.get_json(self.api("/users/me")).await
    }

    async fn get_conditional<T: serde::de::DeserializeOwned + HasCommon>(
        &self,
        path: String,
        etag: Option<&str>,
    ) -> ApiResult<Fetched<T>> {
        let etag = etag.map(str::to_string);
        let build = move |r: reqwest::RequestBuilder| match &etag {
            Some(e) => r.header("if-none-match", e),
            None => r,
        };
        let url = self.api(&format!("{path}?fields={STAT_FIELDS},path_collection"));
        let reply = self
            .execute(&Call { method: Method::GET, url, upload: false, retry_accepted: false, build: &build })
            .await?;
        if reply.status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        stat_json(&reply).map(Fetched::Modified)
    }

    /// A file's metadata; `NotModified` when `etag` is still current.
    pub async fn get_file(&self, id: &str, etag: Option<&str>) -> ApiResult<Fetched<File>> {
        self.get_conditional(format!("/files/{id}"), etag).await
    }

    pub async fn get_folder(&self, id: &str, etag: Option<&str>) -> ApiResult<Fetched<Folder>> {
        self.get_conditional(format!("/folders/{id}"), etag).await
    }

    /// One listing page (marker paging), with [`LIST_FIELDS`].
    pub async fn list_page(&self, folder_id: &str, marker: Option<&str>) -> ApiResult<ItemsPage> {
        self.items_page(&format!("/folders/{folder_id}/items"), LIST_FIELDS, marker).await
    }

    /// All entries of a folder, as a stream of pages' entries.
    pub fn list_stream(&self, folder_id: &str) -> impl Stream<Item = ApiResult<Item>> + '_ {
        let folder_id = folder_id.to_string();
        async_stream_pages(self, folder_id)
    }

    /// All entries of a folder, with [`LIST_FIELDS`] (no `parent`, no `item_status`).
    pub async fn list_folder(&self, folder_id: &str) -> ApiResult<Vec<Item>> {
        self.all_pages(&format!("/folders/{folder_id}/items"), LIST_FIELDS).await
    }

    /// Every entry of a marker-paged item listing at `path` (1000 per call), with `fields`.
    async fn all_pages(&self, path: &str, fields: &str) -> ApiResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self.items_page(path, fields, marker.as_deref()).await?;
            out.extend(page.entries);
            match page.next_marker.filter(|m| !m.is_empty()) {
                Some(m) => marker = Some(m),
                None => return Ok(out),
            }
        }
    }

    async fn items_page(&self, path: &str, fields: &str, marker: Option<&str>) -> ApiResult<ItemsPage> {
        let mut url = self.api(&format!("{path}?usemarker=true&limit={PAGE_LIMIT}&fields={fields}"));
        if let Some(m) = marker {
            url.push_str(&format!("&marker={}", enc(m)));
        }
        let page: ItemsPage = self.get_json(url).await?;
        Ok(ItemsPage { entries: page.entries.into_iter().map(stat_item).collect(), ..page })
    }

    pub(crate) async fn send_json(
        &self,
        method: Method,
        url: String,
        body: Value,
        if_match: Option<&str>,
    ) -> ApiResult<super::client::Reply> {
        let if_match = if_match.map(str::to_string);
        let build = move |r: reqwest::RequestBuilder| {
            let r = r.json(&body);
            match &if_match {
                Some(e) => r.header("if-match", e),
                None => r,
            }
        };
        self.execute(&Call { method, url, upload: false, retry_accepted: false, build: &build }).await
    }

    /// Creates a folder. If an earlier attempt may have succeeded unseen (a reset, a 5xx) and
    /// the name is now taken by a folder, that folder is ours: no duplicate, no false error.
    pub async fn create_folder(&self, parent_id: &str, name: &str) -> ApiResult<Folder> {
        let url = self.api(&format!("/folders?fields={STAT_FIELDS}"));
        let body = json!({"name": name, "parent": {"id": parent_id}});
        let build = move |r: reqwest::RequestBuilder| r.json(&body);
        let call = Call { method: Method::POST, url, upload: false, retry_accepted: false, build: &build };
        match self.execute_tracking(&call).await {
            (Ok(reply), _) => stat_json(&reply),
            (Err(ApiError::NameConflict { conflicts }), true) => {
                match conflicts.into_iter().find(|c| matches!(c, Item::Folder(_)) && c.name() == name) {
                    Some(Item::Folder(f)) => Ok(f),
                    _ => Err(ApiError::NameConflict { conflicts: Vec::new() }),
                }
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Renames and/or moves a file (`if_match`: fail with `PreconditionFailed` if it changed).
    pub async fn update_file(
        &self,
        id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
        if_match: Option<&str>,
    ) -> ApiResult<File> {
        let url = self.api(&format!("/files/{id}?fields={STAT_FIELDS}"));
        stat_json(&self.send_json(Method::PUT, url, update_body(name, parent_id), if_match).await?)
    }

    pub async fn update_folder(
        &self,
        id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
        if_match: Option<&str>,
    ) -> ApiResult<Folder> {
        let url = self.api(&format!("/folders/{id}?fields={STAT_FIELDS}"));
        stat_json(&self.send_json(Method::PUT, url, update_body(name, parent_id), if_match).await?)
    }

    /// Moves a file to the trash. A retry after an unseen success finds it gone: that is done.
    pub async fn delete_file(&self, id: &str, if_match: Option<&str>) -> ApiResult<()> {
        self.delete_item(self.api(&format!("/files/{id}")), if_match).await
    }

    pub async fn delete_folder(&self, id: &str, recursive: bool, if_match: Option<&str>) -> ApiResult<()> {
        self.delete_item(self.api(&format!("/folders/{id}?recursive={recursive}")), if_match).await
    }

    pub async fn delete_web_link(&self, id: &str) -> ApiResult<()> {
        self.delete_item(self.api(&format!("/web_links/{id}")), None).await
    }

    async fn delete_item(&self, url: String, if_match: Option<&str>) -> ApiResult<()> {
        let if_match = if_match.map(str::to_string);
        let build = move |r: reqwest::RequestBuilder| match &if_match {
            Some(e) => r.header("if-match", e),
            None => r,
        };
        match self
            .execute_tracking(&Call {
                method: Method::DELETE,
                url,
                upload: false,
                retry_accepted: false,
                build: &build,
            })
            .await
        {
            (Ok(_), _) => Ok(()),
            (Err(ApiError::NotFound { .. }), true) => Ok(()),
            (Err(e), _) => Err(e),
        }
    }

    pub async fn copy_file(&self, id: &str, parent_id: &str, name: Option<&str>) -> ApiResult<File> {
        let url = self.api(&format!("/files/{id}/copy?fields={STAT_FIELDS}"));
        stat_json(&self.send_json(Method::POST, url, copy_body(parent_id, name), None).await?)
    }

    pub async fn copy_folder(&self, id: &str, parent_id: &str, name: Option<&str>) -> ApiResult<Folder> {
        let url = self.api(&format!("/folders/{id}/copy?fields={STAT_FIELDS}"));
        stat_json(&self.send_json(Method::POST, url, copy_body(parent_id, name), None).await?)
    }

    /// Items in the trash (those trashed themselves, not through a parent).
    pub async fn trash_items(&self) -> ApiResult<Vec<Item>> {
        self.all_pages("/folders/trash/items", STAT_FIELDS).await
    }

    /// Restores a trashed file, optionally renamed or into another folder.
    pub async fn restore_file(&self, id: &str, name: Option<&str>, parent_id: Option<&str>) -> ApiResult<File> {
        let url = self.api(&format!("/files/{id}?fields={STAT_FIELDS}"));
        stat_json(&self.send_json(Method::POST, url, update_body(name, parent_id), None).await?)
    }

    pub async fn restore_folder(&self, id: &str, name: Option<&str>, parent_id: Option<&str>) -> ApiResult<Folder> {
        let url = self.api(&format!("/folders/{id}?fields={STAT_FIELDS}"));
        stat_json(&self.send_json(Method::POST, url, update_body(name, parent_id), None).await?)
    }

    /// Deletes a trashed file for good. A retry after an unseen success finds it gone: done.
    pub async fn purge_file(&self, id: &str) -> ApiResult<()> {
        self.delete_item(self.api(&format!("/files/{id}/trash")), None).await
    }

    /// Deletes a trashed folder (and everything trashed with it) for good.
    pub async fn purge_folder(&self, id: &str) -> ApiResult<()> {
        self.delete_item(self.api(&format!("/folders/{id}/trash")), None).await
    }

    /// The older versions of a file, newest first, as Box lists them (the current version is
    /// not among them: the file's own `file_version` is).
    pub async fn file_versions(&self, id: &str) -> ApiResult<Vec<Version>> {
        let mut out = Vec::new();
        loop {
            let url = self
                .api(&format!("/files/{id}/versions?fields={VERSION_FIELDS}&limit={PAGE_LIMIT}&offset={}", out.len()));
            let page: VersionsPage = self.get_json(url).await?;
            let total = page.total_count.unwrap_or(0) as usize;
            let got = page.entries.len();
            out.extend(page.entries);
            if got == 0 || out.len() >= total {
                return Ok(out);
            }
        }
    }

    /// Like `execute`, also telling whether an earlier attempt may have reached the server.
    pub(crate) async fn execute_tracking(&self, call: &Call<'_>) -> (ApiResult<super::client::Reply>, bool) {
        let flag = std::sync::atomic::AtomicBool::new(false);
        let result = self.execute_with_flag(call, &flag).await;
        (result, flag.load(std::sync::atomic::Ordering::Relaxed))
    }
}

fn update_body(name: Option<&str>, parent_id: Option<&str>) -> Value {
    let mut body = json!({});
    if let Some(n) = name {
        body["name"] = json!(n);
    }
    if let Some(p) = parent_id {
        body["parent"] = json!({"id": p});
    }
    body
}

fn copy_body(parent_id: &str, name: Option<&str>) -> Value {
    let mut body = json!({"parent": {"id": parent_id}});
    if let Some(n) = name {
        body["name"] = json!(n);
    }
    body
}

fn async_stream_pages(client: &Client, folder_id: String) -> impl Stream<Item = ApiResult<Item>> + '_ {
    use futures_util::stream::{self, StreamExt};
    // State: (next marker, finished?)
    stream::unfold((None::<String>, false), move |(marker, done)| {
        let folder_id = folder_id.clone();
        async move {
            if done {
                return None;
            }
            match client.list_page(&folder_id, marker.as_deref()).await {
                Ok(page) => {
                    let next = page.next_marker.filter(|m| !m.is_empty());
                    let finished = next.is_none();
                    let items: Vec<ApiResult<Item>> = page.entries.into_iter().map(Ok).collect();
                    Some((stream::iter(items), (next, finished)))
                }
                Err(e) => Some((stream::iter(vec![Err(e)]), (None, true))),
            }
        }
    })
    .flatten()
}
