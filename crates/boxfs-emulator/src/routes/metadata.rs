//! Metadata instance routes on files and folders: list (`GET …/metadata`), and
//! `GET|POST|PUT|DELETE …/metadata/{scope}/{template}` (create takes the instance's keys, update
//! a JSON Patch). The store holds Box's rules (`store::metadata`). Anyone who sees an item
//! reads its metadata; changing it takes the right to add to it (`upload`), as in Box.

use super::{json_body, require, visible};
use crate::error::{ApiError, ApiResult};
use crate::store::render;
use crate::store::{Item, Kind, MetadataInstance, PatchOp, Viewer};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

type InstancePath = Path<(String, String, String)>;

fn rendered(state: &AppState, item: &Item, m: &MetadataInstance) -> ApiResult<Value> {
    let item = state.store.get_kind(item.kind, item.id)?;
    Ok(render::metadata_instance(&item, m))
}

/// The item as `viewer` sees it; with `change`, they must be allowed to change its metadata.
fn item(state: &AppState, viewer: &Viewer, kind: Kind, id: &str, change: bool) -> ApiResult<Item> {
    let (item, access) = visible(state, viewer, kind, id)?;
    require(!change || access.perms.upload)?;
    Ok(item)
}

fn list(state: &AppState, viewer: &Viewer, kind: Kind, id: &str) -> ApiResult<Json<Value>> {
    let item = item(state, viewer, kind, id, false)?;
    let instances = state.store.list_metadata(kind, item.id)?;
    let entries: Vec<Value> = instances.iter().map(|m| render::metadata_instance(&item, m)).collect();
    Ok(Json(json!({"entries": entries, "limit": 100})))
}

fn get(
    state: &AppState,
    viewer: &Viewer,
    kind: Kind,
    (id, scope, template): (String, String, String),
) -> ApiResult<Json<Value>> {
    let item = item(state, viewer, kind, &id, false)?;
    let m = state.store.get_metadata(kind, item.id, &scope, &template)?;
    Ok(Json(rendered(state, &item, &m)?))
}

fn create(
    state: &AppState,
    viewer: &Viewer,
    kind: Kind,
    (id, scope, template): (String, String, String),
    body: &Bytes,
) -> ApiResult<Response> {
    let item = item(state, viewer, kind, &id, true)?;
    let Value::Object(data) = json_body(body)? else {
        return Err(ApiError::bad_request("schema_validation_failed", "The body must be a JSON object"));
    };
    let m = state.store.create_metadata(&viewer.user.id, kind, item.id, &scope, &template, data)?;
    Ok((StatusCode::CREATED, Json(rendered(state, &item, &m)?)).into_response())
}

fn update(
    state: &AppState,
    viewer: &Viewer,
    kind: Kind,
    (id, scope, template): (String, String, String),
    body: &Bytes,
) -> ApiResult<Json<Value>> {
    let item = item(state, viewer, kind, &id, true)?;
    let ops: Vec<PatchOp> = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request("bad_request", "The request body is not an array of valid JSON Patch operations")
    })?;
    let m = state.store.update_metadata(&viewer.user.id, kind, item.id, &scope, &template, &ops)?;
    Ok(Json(rendered(state, &item, &m)?))
}

fn delete(
    state: &AppState,
    viewer: &Viewer,
    kind: Kind,
    (id, scope, template): (String, String, String),
) -> ApiResult<StatusCode> {
    let item = item(state, viewer, kind, &id, true)?;
    state.store.delete_metadata(&viewer.user.id, kind, item.id, &scope, &template)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_file(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    list(&s, &v, Kind::File, &id)
}

pub async fn list_folder(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    list(&s, &v, Kind::Folder, &id)
}

pub async fn get_file(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(p): InstancePath,
) -> ApiResult<Json<Value>> {
    get(&s, &v, Kind::File, p)
}

pub async fn get_folder(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(p): InstancePath,
) -> ApiResult<Json<Value>> {
    get(&s, &v, Kind::Folder, p)
}

pub async fn create_file(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(p): InstancePath,
    b: Bytes,
) -> ApiResult<Response> {
    create(&s, &v, Kind::File, p, &b)
}

pub async fn create_folder(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(p): InstancePath,
    b: Bytes,
) -> ApiResult<Response> {
    create(&s, &v, Kind::Folder, p, &b)
}

pub async fn update_file(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(p): InstancePath,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    update(&s, &v, Kind::File, p, &b)
}

pub async fn update_folder(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(p): InstancePath,
    b: Bytes,
) -> ApiResult<Json<Value>> {
    update(&s, &v, Kind::Folder, p, &b)
}

pub async fn delete_file(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(p): InstancePath,
) -> ApiResult<StatusCode> {
    delete(&s, &v, Kind::File, p)
}

pub async fn delete_folder(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(p): InstancePath,
) -> ApiResult<StatusCode> {
    delete(&s, &v, Kind::Folder, p)
}
