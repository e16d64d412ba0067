//! Item routes: folders (get, list, create, update, delete, copy), files (get with
//! `if-none-match`, update with `if-match` (including shared links and locks), delete, copy,
//! versions), web links, and trash (list, get, restore, purge). Every response that renders an
//! item honours `fields`.

use super::{
    bool_param, header, json_body, json_id, parent_id, parse_id, refuse_unmodelled, render_item, render_items, repr,
    str_field, Params,
};
use crate::error::{ApiError, ApiResult};
use crate::render::{self, Repr};
use crate::store::{Ancestor, Item, Kind, ListOrder, LockChange, PageRequest, Scope, SharedLinkChange, Update};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
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

/// One page of `scope`, rendered as Box's `Items` (offset or marker flavour).
fn items_page(state: &AppState, scope: Scope, path: Option<&[Ancestor]>, q: &Params) -> ApiResult<Value> {
    let req = page_request(q)?;
    let page = state.store.list(scope, &req)?;
    let entries = render_items(state, &page.entries, path, &repr(q, Repr::Mini))?;
    Ok(match req {
        PageRequest::Marker { limit, .. } => {
            json!({"entries": entries, "limit": limit, "next_marker": page.next_marker})
        }
        PageRequest::Offset { offset, limit, order, descending } => json!({
            "total_count": page.total_count,
            "entries": entries,
            "offset": offset,
            "limit": limit,
            "order": [{"by": "type", "direction": "ASC"},
                      {"by": order.as_str(), "direction": if descending { "DESC" } else { "ASC" }}],
        }),
    })
}

/// The ancestors of a folder's children: the folder's own path plus the folder.
fn children_path(state: &AppState, folder: &Item) -> ApiResult<Vec<Ancestor>> {
    let mut path = state.store.ancestors(folder)?;
    path.push(Ancestor { id: folder.id, name: folder.name.clone(), sequence_id: folder.sequence_id });
    Ok(path)
}

/// `304 Not Modified` when `if-none-match` names the current etag.
pub(super) fn not_modified(headers: &HeaderMap, item: &Item) -> bool {
    match (header(headers, "if-none-match"), item.etag()) {
        (Some(tag), Some(etag)) => tag.trim_matches('"') == etag,
        _ => false,
    }
}

fn get_item(state: &AppState, kind: Kind, id: &str, q: &Params, headers: &HeaderMap) -> ApiResult<Response> {
    let item = state.store.get_active(kind, parse_id(id)?)?;
    if not_modified(headers, &item) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let repr = repr(q, Repr::Standard);
    let mut body = render_item(state, &item, &repr)?;
    if kind == Kind::Folder && (matches!(repr, Repr::Standard) || repr.wants("item_collection")) {
        let path = children_path(state, &item)?;
        body["item_collection"] = items_page(state, Scope::Children(item.id), Some(&path), q)?;
    }
    Ok(Json(body).into_response())
}

pub async fn get_folder(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<Response> {
    get_item(&s, Kind::Folder, &id, &q, &h)
}

pub async fn get_file(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<Response> {
    get_item(&s, Kind::File, &id, &q, &h)
}

pub async fn get_web_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<Response> {
    get_item(&s, Kind::WebLink, &id, &q, &h)
}

pub async fn folder_items(State(s): State<AppState>, Path(id): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    let folder = s.store.get_active(Kind::Folder, parse_id(&id)?)?;
    let path = children_path(&s, &folder)?;
    Ok(Json(items_page(&s, Scope::Children(folder.id), Some(&path), &q)?))
}

pub async fn trash_items(State(s): State<AppState>, q: Params) -> ApiResult<Json<Value>> {
    Ok(Json(items_page(&s, Scope::Trash, Some(&[]), &q)?))
}

pub async fn create_folder(State(s): State<AppState>, q: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    refuse_unmodelled(&body, &["folder_upload_email", "sync_state"])?;
    let name = str_field(&body, "name")?.ok_or_else(|| ApiError::invalid_param("name"))?;
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let folder = s.store.create_folder(parent, name)?;
    let body = render_item(&s, &folder, &repr(&q, Repr::Full))?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn web_link_url(body: &Value) -> ApiResult<Option<&str>> {
    let url = str_field(body, "url")?;
    match url {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => Err(ApiError::invalid_param("url")),
        _ => Ok(url),
    }
}

pub async fn create_web_link(State(s): State<AppState>, q: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let url = web_link_url(&body)?.ok_or_else(|| ApiError::invalid_param("url"))?;
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let name = str_field(&body, "name")?.unwrap_or(url);
    let description = str_field(&body, "description")?.unwrap_or("");
    let link = s.store.create_web_link(parent, url, name, description)?;
    Ok((StatusCode::CREATED, Json(render_item(&s, &link, &repr(&q, Repr::Standard))?)).into_response())
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

fn update(
    state: &AppState,
    kind: Kind,
    id: &str,
    q: &Params,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Json<Value>> {
    let body = json_body(body)?;
    refuse_unmodelled(&body, unmodelled_update_fields(kind))?;
    let upd = Update {
        name: str_field(&body, "name")?.map(str::to_string),
        parent_id: parent_id(&body)?,
        description: str_field(&body, "description")?.map(str::to_string),
        url: if kind == Kind::WebLink { web_link_url(&body)?.map(str::to_string) } else { None },
        shared_link: shared_link_change(&body)?,
        lock: if kind == Kind::File { lock_change(&body)? } else { None },
    };
    let item = state.store.update_item(kind, parse_id(id)?, header(headers, "if-match").as_deref(), upd)?;
    Ok(Json(render_item(state, &item, &repr(q, Repr::Full))?))
}

pub async fn update_folder(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    update(&s, Kind::Folder, &id, &q, &h, &b)
}

pub async fn update_file(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    update(&s, Kind::File, &id, &q, &h, &b)
}

pub async fn update_web_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    update(&s, Kind::WebLink, &id, &q, &h, &b)
}

fn delete(state: &AppState, kind: Kind, id: &str, q: &Params, headers: &HeaderMap) -> ApiResult<StatusCode> {
    let recursive = bool_param(q, "recursive")?.unwrap_or(false);
    state.store.trash_item(kind, parse_id(id)?, header(headers, "if-match").as_deref(), recursive)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_folder(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<StatusCode> {
    delete(&s, Kind::Folder, &id, &q, &h)
}

pub async fn delete_file(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<StatusCode> {
    delete(&s, Kind::File, &id, &q, &h)
}

pub async fn delete_web_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    h: HeaderMap,
) -> ApiResult<StatusCode> {
    delete(&s, Kind::WebLink, &id, &q, &h)
}

fn restore(state: &AppState, kind: Kind, id: &str, q: &Params, body: &Bytes) -> ApiResult<Response> {
    let body = json_body(body)?;
    let item = state.store.restore_item(kind, parse_id(id)?, str_field(&body, "name")?, parent_id(&body)?)?;
    Ok((StatusCode::CREATED, Json(render_item(state, &item, &repr(q, Repr::Full))?)).into_response())
}

pub async fn restore_folder(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    restore(&s, Kind::Folder, &id, &q, &b)
}

pub async fn restore_file(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    restore(&s, Kind::File, &id, &q, &b)
}

pub async fn restore_web_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    restore(&s, Kind::WebLink, &id, &q, &b)
}

fn get_trashed(state: &AppState, kind: Kind, id: &str, q: &Params) -> ApiResult<Json<Value>> {
    let item = state.store.get_trashed(kind, parse_id(id)?)?;
    Ok(Json(render_item(state, &item, &repr(q, Repr::Standard))?))
}

pub async fn get_trashed_folder(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    get_trashed(&s, Kind::Folder, &id, &q)
}

pub async fn get_trashed_file(State(s): State<AppState>, Path(id): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    get_trashed(&s, Kind::File, &id, &q)
}

pub async fn get_trashed_web_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    get_trashed(&s, Kind::WebLink, &id, &q)
}

pub async fn purge_folder(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.purge_item(Kind::Folder, parse_id(&id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn purge_file(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.purge_item(Kind::File, parse_id(&id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn purge_web_link(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.purge_item(Kind::WebLink, parse_id(&id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

fn copy(state: &AppState, kind: Kind, id: &str, q: &Params, body: &Bytes) -> ApiResult<Response> {
    let body = json_body(body)?;
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let version = match body.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(json_id(v).ok_or_else(|| ApiError::invalid_param("version"))?),
    };
    let item = state.store.copy_item(kind, parse_id(id)?, parent, str_field(&body, "name")?, version)?;
    Ok((StatusCode::CREATED, Json(render_item(state, &item, &repr(q, Repr::Full))?)).into_response())
}

pub async fn copy_folder(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    copy(&s, Kind::Folder, &id, &q, &b)
}

pub async fn copy_file(State(s): State<AppState>, Path(id): Path<String>, q: Params, b: Bytes) -> ApiResult<Response> {
    copy(&s, Kind::File, &id, &q, &b)
}

pub async fn file_versions(State(s): State<AppState>, Path(id): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    let file = s.store.get_active(Kind::File, parse_id(&id)?)?;
    let versions = s.store.previous_versions(&file)?;
    let offset = int_param(&q, "offset", 0)?;
    let limit = int_param(&q, "limit", 1000)?.clamp(1, MAX_LIMIT);
    let user = s.store.user();
    let repr = repr(&q, Repr::Full);
    let entries: Vec<Value> =
        versions.iter().skip(offset as usize).take(limit as usize).map(|v| render::version(v, user, &repr)).collect();
    Ok(Json(json!({
        "total_count": versions.len(), "entries": entries, "offset": offset, "limit": limit,
        "order": [{"by": "created_at", "direction": "DESC"}],
    })))
}

type VersionPath = Path<(String, String)>;

pub async fn get_version(State(s): State<AppState>, Path((id, vid)): VersionPath, q: Params) -> ApiResult<Json<Value>> {
    let ver = s.store.file_version(parse_id(&id)?, parse_id(&vid)?)?;
    Ok(Json(render::version(&ver, s.store.user(), &repr(&q, Repr::Full))))
}

pub async fn delete_version(
    State(s): State<AppState>,
    Path((id, vid)): VersionPath,
    h: HeaderMap,
) -> ApiResult<StatusCode> {
    s.store.set_version_trashed(parse_id(&id)?, parse_id(&vid)?, header(&h, "if-match").as_deref(), true)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /files/{id}/versions/{version}` with `{"trashed_at": null}` restores a trashed version.
pub async fn restore_version(
    State(s): State<AppState>,
    Path((id, vid)): VersionPath,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    let body = json_body(&b)?;
    if body.get("trashed_at") != Some(&Value::Null) {
        return Err(ApiError::invalid_param("trashed_at"));
    }
    let ver = s.store.set_version_trashed(parse_id(&id)?, parse_id(&vid)?, None, false)?;
    Ok(Json(render::version(&ver, s.store.user(), &Repr::Full)))
}

pub async fn promote_version(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    b: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&b)?;
    let version = json_id(&body["id"]).ok_or_else(|| ApiError::invalid_param("id"))?;
    let file = s.store.promote_version(parse_id(&id)?, version)?;
    let current = s.store.version(file.version_id.unwrap_or_default())?.ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, Json(render::version(&current, s.store.user(), &repr(&q, Repr::Full)))).into_response())
}
