//! Item routes: folders (get, list, create, update, delete, copy), files (get with
//! `if-none-match`, update with `if-match` (including shared links and locks), delete, copy,
//! versions), web links, and trash (list, get, restore, purge). Every response that renders an
//! item honours `fields`. Each route first checks that the viewer sees the item (else 404)
//! and that their rights allow the operation (else 403).

use super::page_cache::PageKey;
use super::{
    bool_param, header, json_body, json_id, parent_id, parse_id, refuse_unmodelled, render_item, render_items,
    render_seen, repr, require, str_field, visible, with_entries, writable_folder, write_items, JsonBytes, Params,
};
use crate::error::{ApiError, ApiResult};
use crate::store::render::{self, Repr};
use crate::store::{
    unix_now, Access, Item, Kind, ListOrder, LockChange, Page, PageRequest, Scope, SharedLinkChange, Update, Viewer,
};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

const MAX_LIMIT: i64 = 1000;
const MAX_OFFSET: i64 = 10_000;

pub(super) fn int_param(q: &Params, name: &str, default: i64) -> ApiResult<i64> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| ApiError::invalid_param(name)),
    }
}

fn page_request(q: &Params) -> ApiResult<PageRequest> {
    let limit = int_param(q, "limit", 100)?.clamp(1, MAX_LIMIT);
    let marker_mode = bool_param(q, "usemarker")? == Some(true) || q.contains_key("marker");
    if marker_mode {
        let marker = q.get("marker").filter(|m| !m.is_empty()).cloned();
        return Ok(PageRequest::Marker { marker, limit });
    }
    let offset = int_param(q, "offset", 0)?;
    if offset >= MAX_OFFSET {
        return Err(ApiError::invalid_param("offset"));
    }
    let order = match q.get("sort") {
        None => ListOrder::Name,
        Some(s) => ListOrder::parse(s).ok_or_else(|| ApiError::invalid_param("sort"))?,
    };
    let descending = match q.get("direction").map(|d| d.to_ascii_uppercase()) {
        None => false,
        Some(d) if d == "ASC" => false,
        Some(d) if d == "DESC" => true,
        Some(_) => return Err(ApiError::invalid_param("direction")),
    };
    Ok(PageRequest::Offset { offset, limit, order, descending })
}

/// One page of `scope` (a folder's children, seen as `folder`, or the viewer's trash),
/// rendered as Box's `Items` (offset or marker flavour), written straight into the body; with
/// the first time (unix seconds) at which the clock alone changes it, if ever.
fn items_page(
    state: &AppState,
    viewer: &Viewer,
    scope: Scope,
    folder: Option<(&Item, &Access)>,
    q: &Params,
) -> ApiResult<(JsonBytes, Option<i64>)> {
    let (head, page) = listed(state, scope, q)?;
    let repr = repr(q, Repr::Mini);
    JsonBytes::with_entries(&head, |out| write_items(out, state, viewer, &page.entries, folder, &repr))
}

/// [`items_page`] as a `Value`, to go inside another answer (a folder's `item_collection`).
fn items_value(
    state: &AppState,
    viewer: &Viewer,
    scope: Scope,
    folder: Option<(&Item, &Access)>,
    q: &Params,
) -> ApiResult<Value> {
    let (head, page) = listed(state, scope, q)?;
    Ok(with_entries(head, render_items(state, viewer, &page.entries, folder, &repr(q, Repr::Mini))?))
}

/// The page of `scope` that `q` asks for, and the paging fields of its answer.
fn listed(state: &AppState, scope: Scope, q: &Params) -> ApiResult<(Value, Page)> {
    let req = page_request(q)?;
    let page = state.store.list(scope, &req)?;
    let head = match req {
        PageRequest::Marker { limit, .. } => json!({"limit": limit, "next_marker": page.next_marker}),
        PageRequest::Offset { offset, limit, order, descending } => json!({
            "total_count": page.total_count,
            "offset": offset,
            "limit": limit,
            "order": [{"by": "type", "direction": "ASC"},
                      {"by": order.as_str(), "direction": if descending { "DESC" } else { "ASC" }}],
        }),
    };
    Ok((head, page))
}

/// `304 Not Modified` when `if-none-match` names the current etag.
pub(super) fn not_modified(headers: &HeaderMap, item: &Item) -> bool {
    match (header(headers, "if-none-match"), item.etag()) {
        (Some(tag), Some(etag)) => tag.trim_matches('"') == etag,
        _ => false,
    }
}

type Viewed = Extension<Viewer>;

fn get_item(
    state: &AppState,
    viewer: &Viewer,
    kind: Kind,
    id: &str,
    q: &Params,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let (item, access) = visible(state, viewer, kind, id)?;
    if not_modified(headers, &item) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let repr = repr(q, Repr::Standard);
    let mut body = render_seen(state, viewer, &item, &access, &repr)?;
    if kind == Kind::Folder && (matches!(repr, Repr::Standard) || repr.wants("item_collection")) {
        body["item_collection"] = if access.perms.list {
            let scope = state.store.children_scope(viewer, &item)?;
            items_value(state, viewer, scope, Some((&item, &access)), q)?
        } else {
            json!({"total_count": 0, "entries": [], "offset": 0, "limit": 100})
        };
    }
    Ok(Json(body).into_response())
}

pub async fn get_folder(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<Response> {
    get_item(&s, &v, Kind::Folder, &id, &q, &h)
}

pub async fn get_file(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<Response> {
    get_item(&s, &v, Kind::File, &id, &q, &h)
}

pub async fn get_web_link(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<Response> {
    get_item(&s, &v, Kind::WebLink, &id, &q, &h)
}

/// A page of a folder's items. The viewer must see the folder and may list it; then the page
/// is the one kept for the same request while nothing changed, else rendered (and kept). The
/// store's generation is read before anything else the route reads from the store (see
/// [`super::PageCache`]).
pub async fn folder_items(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<JsonBytes> {
    let generation = s.store.generation();
    let (folder, access) = visible(&s, &v, Kind::Folder, &id)?;
    require(access.perms.list)?;
    let key = PageKey::new(&v, folder.id, &q);
    if let Some(body) = s.pages.get(&key, generation, unix_now()) {
        s.stats.listing_page(true);
        return Ok(body.into());
    }
    let scope = s.store.children_scope(&v, &folder)?;
    let (page, changes_at) = items_page(&s, &v, scope, Some((&folder, &access)), &q)?;
    s.pages.put(key, generation, page.bytes(), changes_at);
    s.stats.listing_page(false);
    Ok(page)
}

pub async fn trash_items(State(s): State<AppState>, Extension(v): Viewed, q: Params) -> ApiResult<JsonBytes> {
    Ok(items_page(&s, &v, Scope::Trash(v.user.root_id), None, &q)?.0)
}

pub async fn create_folder(
    State(s): State<AppState>,
    Extension(v): Viewed,
    q: Params,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&body)?;
    refuse_unmodelled(&body, &["folder_upload_email", "sync_state"])?;
    let name = str_field(&body, "name")?.ok_or_else(|| ApiError::invalid_param("name"))?;
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let parent = writable_folder(&s, &v, parent)?;
    let folder = s.store.create_folder(&v.user.id, parent.id, name)?;
    let body = render_item(&s, &v, &folder, &repr(&q, Repr::Full))?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn web_link_url(body: &Value) -> ApiResult<Option<&str>> {
    let url = str_field(body, "url")?;
    match url {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => Err(ApiError::invalid_param("url")),
        _ => Ok(url),
    }
}

pub async fn create_web_link(
    State(s): State<AppState>,
    Extension(v): Viewed,
    q: Params,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let url = web_link_url(&body)?.ok_or_else(|| ApiError::invalid_param("url"))?;
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let name = str_field(&body, "name")?.unwrap_or(url);
    let description = str_field(&body, "description")?.unwrap_or("");
    let parent = writable_folder(&s, &v, parent)?;
    let link = s.store.create_web_link(&v.user.id, parent.id, url, name, description)?;
    Ok((StatusCode::CREATED, Json(render_item(&s, &v, &link, &repr(&q, Repr::Standard))?)).into_response())
}

/// A JSON value that may be `null` (clear) or absent (keep).
fn nullable_str(obj: &Value, name: &str) -> ApiResult<Option<Option<String>>> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(ApiError::invalid_param(name)),
    }
}

fn bool_field(obj: &Value, name: &str) -> ApiResult<Option<bool>> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid_param(name)),
    }
}

/// `shared_link` of a `PUT` body: absent (keep), `null` (remove) or the link's settings.
fn shared_link_change(body: &Value) -> ApiResult<Option<Option<SharedLinkChange>>> {
    let link = match body.get("shared_link") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(None)),
        Some(link @ Value::Object(_)) => link,
        Some(_) => return Err(ApiError::invalid_param("shared_link")),
    };
    let permissions = match link.get("permissions") {
        None | Some(Value::Null) => Value::Null,
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => return Err(ApiError::invalid_param("permissions")),
    };
    Ok(Some(Some(SharedLinkChange {
        access: str_field(link, "access")?.map(str::to_string),
        password: nullable_str(link, "password")?,
        vanity_name: nullable_str(link, "vanity_name")?,
        unshared_at: nullable_str(link, "unshared_at")?,
        can_download: bool_field(&permissions, "can_download")?,
        can_preview: bool_field(&permissions, "can_preview")?,
        can_edit: bool_field(&permissions, "can_edit")?,
    })))
}

/// `lock` of a `PUT /files/{id}` body: absent (keep), `null` (unlock) or the lock's settings.
fn lock_change(body: &Value) -> ApiResult<Option<Option<LockChange>>> {
    let lock = match body.get("lock") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(None)),
        Some(lock @ Value::Object(_)) => lock,
        Some(_) => return Err(ApiError::invalid_param("lock")),
    };
    if str_field(lock, "access")?.is_some_and(|a| a != "lock") {
        return Err(ApiError::invalid_param("access"));
    }
    Ok(Some(Some(LockChange {
        expires_at: str_field(lock, "expires_at")?.map(str::to_string),
        is_download_prevented: bool_field(lock, "is_download_prevented")?.unwrap_or(false),
    })))
}

/// Box documents these `PUT` body fields; the emulator does not model them.
fn unmodelled_update_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::File => &["tags", "collections", "permissions", "disposition_at"],
        Kind::Folder => &[
            "tags",
            "collections",
            "sync_state",
            "can_non_owners_invite",
            "can_non_owners_view_collaborators",
            "folder_upload_email",
            "is_collaboration_restricted_to_enterprise",
        ],
        Kind::WebLink => &[],
    }
}

/// Checks that `access` allows the changes `upd` asks for: renaming (and descriptions, URLs)
/// needs `rename`; a move `delete` here and `upload` in the destination; shared links
/// `share`; a lock `edit`.
fn check_update(state: &AppState, viewer: &Viewer, item: &Item, access: &Access, upd: &mut Update) -> ApiResult<()> {
    let p = access.perms;
    let renames = upd.name.as_ref().is_some_and(|n| *n != item.name)
        || upd.description.as_ref().is_some_and(|d| *d != item.description)
        || upd.url.is_some();
    require(!renames || p.rename)?;
    if let Some(parent) = upd.parent_id {
        let dest = writable_folder(state, viewer, parent)?;
        upd.parent_id = Some(dest.id);
        require(Some(dest.id) == item.parent_id || p.delete)?;
    }
    require(upd.shared_link.is_none() || p.share)?;
    require(upd.lock.is_none() || p.edit)
}

fn update(
    state: &AppState,
    viewer: &Viewer,
    kind: Kind,
    id: &str,
    q: &Params,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Json<Value>> {
    let body = json_body(body)?;
    refuse_unmodelled(&body, unmodelled_update_fields(kind))?;
    let (item, access) = visible(state, viewer, kind, id)?;
    let mut upd = Update {
        name: str_field(&body, "name")?.map(str::to_string),
        parent_id: parent_id(&body)?,
        description: str_field(&body, "description")?.map(str::to_string),
        url: if kind == Kind::WebLink { web_link_url(&body)?.map(str::to_string) } else { None },
        shared_link: shared_link_change(&body)?,
        lock: if kind == Kind::File { lock_change(&body)? } else { None },
    };
    check_update(state, viewer, &item, &access, &mut upd)?;
    let item = state.store.update_item(&viewer.user.id, kind, item.id, header(headers, "if-match").as_deref(), upd)?;
    Ok(Json(render_item(state, viewer, &item, &repr(q, Repr::Full))?))
}

pub async fn update_folder(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    update(&s, &v, Kind::Folder, &id, &q, &h, &b)
}

pub async fn update_file(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    update(&s, &v, Kind::File, &id, &q, &h, &b)
}

pub async fn update_web_link(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    update(&s, &v, Kind::WebLink, &id, &q, &h, &b)
}

fn delete(
    state: &AppState,
    viewer: &Viewer,
    kind: Kind,
    id: &str,
    q: &Params,
    headers: &HeaderMap,
) -> ApiResult<StatusCode> {
    let recursive = bool_param(q, "recursive")?.unwrap_or(false);
    let (item, access) = match visible(state, viewer, kind, id) {
        Err(e) if e.code == "trashed" => return Err(ApiError::not_found()),
        other => other?,
    };
    require(access.perms.delete)?;
    state.store.trash_item(&viewer.user.id, kind, item.id, header(headers, "if-match").as_deref(), recursive)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_folder(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<StatusCode> {
    delete(&s, &v, Kind::Folder, &id, &q, &h)
}

pub async fn delete_file(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<StatusCode> {
    delete(&s, &v, Kind::File, &id, &q, &h)
}

pub async fn delete_web_link(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<StatusCode> {
    delete(&s, &v, Kind::WebLink, &id, &q, &h)
}

/// An item in the viewer's own trash (others' trashed items do not exist for them).
fn own_trashed(state: &AppState, viewer: &Viewer, kind: Kind, id: &str) -> ApiResult<Item> {
    let item = state.store.get_trashed(kind, parse_id(id)?)?;
    if item.root_id != viewer.user.root_id {
        return Err(ApiError::not_found());
    }
    Ok(item)
}

fn restore(state: &AppState, viewer: &Viewer, kind: Kind, id: &str, q: &Params, body: &Bytes) -> ApiResult<Response> {
    let body = json_body(body)?;
    let trashed = state.store.get_kind(kind, parse_id(id)?)?;
    if trashed.root_id != viewer.user.root_id {
        return Err(ApiError::not_found());
    }
    let parent = match parent_id(&body)? {
        Some(p) => Some(writable_folder(state, viewer, p)?.id),
        None => None,
    };
    let item = state.store.restore_item(&viewer.user.id, kind, trashed.id, str_field(&body, "name")?, parent)?;
    Ok((StatusCode::CREATED, Json(render_item(state, viewer, &item, &repr(q, Repr::Full))?)).into_response())
}

pub async fn restore_folder(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    restore(&s, &v, Kind::Folder, &id, &q, &b)
}

pub async fn restore_file(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    restore(&s, &v, Kind::File, &id, &q, &b)
}

pub async fn restore_web_link(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    restore(&s, &v, Kind::WebLink, &id, &q, &b)
}

fn get_trashed(state: &AppState, viewer: &Viewer, kind: Kind, id: &str, q: &Params) -> ApiResult<Json<Value>> {
    let item = own_trashed(state, viewer, kind, id)?;
    Ok(Json(render_item(state, viewer, &item, &repr(q, Repr::Standard))?))
}

pub async fn get_trashed_folder(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    get_trashed(&s, &v, Kind::Folder, &id, &q)
}

pub async fn get_trashed_file(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    get_trashed(&s, &v, Kind::File, &id, &q)
}

pub async fn get_trashed_web_link(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    get_trashed(&s, &v, Kind::WebLink, &id, &q)
}

pub async fn purge_folder(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let item = own_trashed(&s, &v, Kind::Folder, &id)?;
    s.store.purge_item(Kind::Folder, item.id)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn purge_file(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let item = own_trashed(&s, &v, Kind::File, &id)?;
    s.store.purge_item(Kind::File, item.id)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn purge_web_link(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let item = own_trashed(&s, &v, Kind::WebLink, &id)?;
    s.store.purge_item(Kind::WebLink, item.id)?;
    Ok(StatusCode::NO_CONTENT)
}

fn copy(state: &AppState, viewer: &Viewer, kind: Kind, id: &str, q: &Params, body: &Bytes) -> ApiResult<Response> {
    let body = json_body(body)?;
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let version = match body.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(json_id(v).ok_or_else(|| ApiError::invalid_param("version"))?),
    };
    let (source, access) = visible(state, viewer, kind, id)?;
    require(access.perms.download || (kind == Kind::Folder && access.perms.list))?;
    let dest = writable_folder(state, viewer, parent)?;
    let name = str_field(&body, "name")?;
    let item = state.store.copy_item(&viewer.user.id, kind, source.id, dest.id, name, version)?;
    Ok((StatusCode::CREATED, Json(render_item(state, viewer, &item, &repr(q, Repr::Full))?)).into_response())
}

pub async fn copy_folder(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    copy(&s, &v, Kind::Folder, &id, &q, &b)
}

pub async fn copy_file(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    copy(&s, &v, Kind::File, &id, &q, &b)
}

/// A file `viewer` may read the versions of (and its owner, whose versions they are).
fn readable_file(state: &AppState, viewer: &Viewer, id: &str) -> ApiResult<(Item, Access, crate::store::User)> {
    let (file, access) = visible(state, viewer, Kind::File, id)?;
    require(access.perms.download)?;
    let owner = state.store.users()?.into_iter().find(|u| u.root_id == file.root_id).ok_or_else(ApiError::not_found)?;
    Ok((file, access, owner))
}

pub async fn file_versions(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    let (file, _, owner) = readable_file(&s, &v, &id)?;
    let versions = s.store.previous_versions(&file)?;
    let offset = int_param(&q, "offset", 0)?;
    let limit = int_param(&q, "limit", 1000)?.clamp(1, MAX_LIMIT);
    let repr = repr(&q, Repr::Full);
    let entries: Vec<Value> =
        versions.iter().skip(offset as usize).take(limit as usize).map(|v| render::version(v, &owner, &repr)).collect();
    Ok(Json(json!({
        "total_count": versions.len(), "entries": entries, "offset": offset, "limit": limit,
        "order": [{"by": "created_at", "direction": "DESC"}],
    })))
}

type VersionPath = Path<(String, String)>;

pub async fn get_version(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path((id, vid)): VersionPath,
    q: Params,
) -> ApiResult<Json<Value>> {
    let (file, _, owner) = readable_file(&s, &v, &id)?;
    let ver = s.store.file_version(file.id, parse_id(&vid)?)?;
    Ok(Json(render::version(&ver, &owner, &repr(&q, Repr::Full))))
}

/// A file whose versions `viewer` may change (and its owner).
fn editable_file(state: &AppState, viewer: &Viewer, id: &str) -> ApiResult<(Item, crate::store::User)> {
    let (file, access, owner) = readable_file(state, viewer, id)?;
    require(access.perms.edit)?;
    Ok((file, owner))
}

pub async fn delete_version(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path((id, vid)): VersionPath,
    h: HeaderMap,
) -> ApiResult<StatusCode> {
    let (file, _) = editable_file(&s, &v, &id)?;
    s.store.set_version_trashed(&v.user.id, file.id, parse_id(&vid)?, header(&h, "if-match").as_deref(), true)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /files/{id}/versions/{version}` with `{"trashed_at": null}` restores a trashed version.
pub async fn restore_version(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path((id, vid)): VersionPath,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    let body = json_body(&b)?;
    if body.get("trashed_at") != Some(&Value::Null) {
        return Err(ApiError::invalid_param("trashed_at"));
    }
    let (file, owner) = editable_file(&s, &v, &id)?;
    let ver = s.store.set_version_trashed(&v.user.id, file.id, parse_id(&vid)?, None, false)?;
    Ok(Json(render::version(&ver, &owner, &Repr::Full)))
}

pub async fn promote_version(
    State(s): State<AppState>,
    Extension(v): Viewed,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&b)?;
    let version = json_id(&body["id"]).ok_or_else(|| ApiError::invalid_param("id"))?;
    let (file, owner) = editable_file(&s, &v, &id)?;
    let file = s.store.promote_version(&v.user.id, file.id, version)?;
    let current = s.store.version(file.version_id.unwrap_or_default())?.ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, Json(render::version(&current, &owner, &repr(&q, Repr::Full)))).into_response())
}
