//! Item routes: folders (get, list, create, update, delete, copy), files (get with
//! `if-none-match`, update with `if-match`, delete, copy, versions), web links, and trash
//! (list, get, restore, purge).

use super::{header, json_body, json_id, parent_id, parse_id, render_item, str_field, Params};
use crate::emulator::error::{ApiError, ApiResult};
use crate::emulator::render::{self, Repr};
use crate::emulator::store::{Ancestor, Item, Kind, ListOrder, PageRequest, Scope, Update};
use crate::emulator::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

const MAX_LIMIT: i64 = 1000;
const MAX_OFFSET: i64 = 10_000;

fn int_param(q: &Params, name: &str, default: i64) -> ApiResult<i64> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| ApiError::invalid_param(name)),
    }
}

fn page_request(q: &Params) -> ApiResult<PageRequest> {
    let limit = int_param(q, "limit", 100)?.clamp(1, MAX_LIMIT);
    let marker_mode = q.get("usemarker").is_some_and(|v| v == "true") || q.contains_key("marker");
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
fn items_page(state: &AppState, scope: Scope, path: &[Ancestor], q: &Params) -> ApiResult<Value> {
    let req = page_request(q)?;
    let page = state.store.list(scope, &req)?;
    let repr = Repr::from_query(q.get("fields").map(String::as_str), Repr::Mini);
    let user = state.store.user();
    let entries: Vec<Value> = page.entries.iter().map(|it| render::item(it, path, user, &repr)).collect();
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

fn repr(q: &Params) -> Repr {
    Repr::from_query(q.get("fields").map(String::as_str), Repr::Standard)
}

/// `304 Not Modified` when `if-none-match` names the current etag.
fn not_modified(headers: &HeaderMap, item: &Item) -> bool {
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
    let repr = repr(q);
    let mut body = render_item(state, &item, &repr)?;
    if kind == Kind::Folder && (matches!(repr, Repr::Standard) || repr.wants("item_collection")) {
        let path = children_path(state, &item)?;
        body["item_collection"] = items_page(state, Scope::Children(item.id), &path, q)?;
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
    Ok(Json(items_page(&s, Scope::Children(folder.id), &path, &q)?))
}

pub async fn trash_items(State(s): State<AppState>, q: Params) -> ApiResult<Json<Value>> {
    Ok(Json(items_page(&s, Scope::Trash, &[], &q)?))
}

pub async fn create_folder(State(s): State<AppState>, q: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let name = str_field(&body, "name")?.ok_or_else(|| ApiError::invalid_param("name"))?;
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let folder = s.store.create_folder(parent, name)?;
    let body = render_item(&s, &folder, &Repr::from_query(q.get("fields").map(String::as_str), Repr::Full))?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn create_web_link(State(s): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let url = str_field(&body, "url")?.ok_or_else(|| ApiError::invalid_param("url"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::invalid_param("url"));
    }
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let name = str_field(&body, "name")?.unwrap_or(url);
    let description = str_field(&body, "description")?.unwrap_or("");
    let link = s.store.create_web_link(parent, url, name, description)?;
    Ok((StatusCode::CREATED, Json(render_item(&s, &link, &Repr::Standard)?)).into_response())
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
    let upd = Update {
        name: str_field(&body, "name")?.map(str::to_string),
        parent_id: parent_id(&body)?,
        description: str_field(&body, "description")?.map(str::to_string),
    };
    let item = state.store.update_item(kind, parse_id(id)?, header(headers, "if-match").as_deref(), upd)?;
    Ok(Json(render_item(state, &item, &Repr::from_query(q.get("fields").map(String::as_str), Repr::Full))?))
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
    let recursive = q.get("recursive").is_some_and(|v| v == "true");
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

fn restore(state: &AppState, kind: Kind, id: &str, body: &Bytes) -> ApiResult<Response> {
    let body = json_body(body)?;
    let item = state.store.restore_item(kind, parse_id(id)?, str_field(&body, "name")?, parent_id(&body)?)?;
    Ok((StatusCode::CREATED, Json(render_item(state, &item, &Repr::Full)?)).into_response())
}

pub async fn restore_folder(State(s): State<AppState>, Path(id): Path<String>, b: Bytes) -> ApiResult<Response> {
    restore(&s, Kind::Folder, &id, &b)
}

pub async fn restore_file(State(s): State<AppState>, Path(id): Path<String>, b: Bytes) -> ApiResult<Response> {
    restore(&s, Kind::File, &id, &b)
}

pub async fn restore_web_link(State(s): State<AppState>, Path(id): Path<String>, b: Bytes) -> ApiResult<Response> {
    restore(&s, Kind::WebLink, &id, &b)
}

fn get_trashed(state: &AppState, kind: Kind, id: &str, q: &Params) -> ApiResult<Json<Value>> {
    let item = state.store.get_trashed(kind, parse_id(id)?)?;
    Ok(Json(render_item(state, &item, &repr(q))?))
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

pub async fn purge_folder(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.purge_item(Kind::Folder, parse_id(&id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn purge_file(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.store.purge_item(Kind::File, parse_id(&id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

fn copy(state: &AppState, kind: Kind, id: &str, body: &Bytes) -> ApiResult<Response> {
    let body = json_body(body)?;
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let version = match body.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(json_id(v).ok_or_else(|| ApiError::invalid_param("version"))?),
    };
    let item = state.store.copy_item(kind, parse_id(id)?, parent, str_field(&body, "name")?, version)?;
    Ok((StatusCode::CREATED, Json(render_item(state, &item, &Repr::Full)?)).into_response())
}

pub async fn copy_folder(State(s): State<AppState>, Path(id): Path<String>, b: Bytes) -> ApiResult<Response> {
    copy(&s, Kind::Folder, &id, &b)
}

pub async fn copy_file(State(s): State<AppState>, Path(id): Path<String>, b: Bytes) -> ApiResult<Response> {
    copy(&s, Kind::File, &id, &b)
}

pub async fn file_versions(State(s): State<AppState>, Path(id): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    let file = s.store.get_active(Kind::File, parse_id(&id)?)?;
    let versions = s.store.previous_versions(&file)?;
    let offset = int_param(&q, "offset", 0)?;
    let limit = int_param(&q, "limit", 1000)?.clamp(1, MAX_LIMIT);
    let user = s.store.user();
    let entries: Vec<Value> =
        versions.iter().skip(offset as usize).take(limit as usize).map(|v| render::version_full(v, user)).collect();
    Ok(Json(json!({
        "total_count": versions.len(), "entries": entries, "offset": offset, "limit": limit,
        "order": [{"by": "created_at", "direction": "DESC"}],
    })))
}

pub async fn promote_version(State(s): State<AppState>, Path(id): Path<String>, b: Bytes) -> ApiResult<Response> {
    let body = json_body(&b)?;
    let version = json_id(&body["id"]).ok_or_else(|| ApiError::invalid_param("id"))?;
    let file = s.store.promote_version(parse_id(&id)?, version)?;
    let current = s.store.version(file.version_id.unwrap_or_default())?.ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, Json(render::version_full(&current, s.store.user()))).into_response())
}
