//! Metadata instance routes on files and folders: list (`GET …/metadata`), and
//! `GET|POST|PUT|DELETE …/metadata/{scope}/{template}` (create takes the instance's keys, update
//! a JSON Patch). The store holds Box's rules (`store::metadata`).

use super::{json_body, parse_id};
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::store::{Kind, MetadataInstance, PatchOp};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

type InstancePath = Path<(String, String, String)>;

fn rendered(state: &AppState, kind: Kind, id: i64, m: &MetadataInstance) -> ApiResult<Value> {
    let item = state.store.get_kind(kind, id)?;
    Ok(render::metadata_instance(&item, m))
}

fn list(state: &AppState, kind: Kind, id: &str) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let instances = state.store.list_metadata(kind, id)?;
    let item = state.store.get_kind(kind, id)?;
    let entries: Vec<Value> = instances.iter().map(|m| render::metadata_instance(&item, m)).collect();
    Ok(Json(json!({"entries": entries, "limit": 100})))
}

fn get(state: &AppState, kind: Kind, (id, scope, template): (String, String, String)) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let m = state.store.get_metadata(kind, id, &scope, &template)?;
    Ok(Json(rendered(state, kind, id, &m)?))
}

fn create(
    state: &AppState,
    kind: Kind,
    (id, scope, template): (String, String, String),
    body: &Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let Value::Object(data) = json_body(body)? else {
        return Err(ApiError::bad_request("schema_validation_failed", "The body must be a JSON object"));
    };
    let m = state.store.create_metadata(kind, id, &scope, &template, data)?;
    Ok((StatusCode::CREATED, Json(rendered(state, kind, id, &m)?)).into_response())
}

fn update(
    state: &AppState,
    kind: Kind,
    (id, scope, template): (String, String, String),
    body: &Bytes,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let ops: Vec<PatchOp> = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request("bad_request", "The request body is not an array of valid JSON Patch operations")
    })?;
    let m = state.store.update_metadata(kind, id, &scope, &template, &ops)?;
    Ok(Json(rendered(state, kind, id, &m)?))
}

fn delete(state: &AppState, kind: Kind, (id, scope, template): (String, String, String)) -> ApiResult<StatusCode> {
    state.store.delete_metadata(kind, parse_id(&id)?, &scope, &template)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_file(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    list(&s, Kind::File, &id)
}

pub async fn list_folder(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    list(&s, Kind::Folder, &id)
}

pub async fn get_file(State(s): State<AppState>, Path(p): InstancePath) -> ApiResult<Json<Value>> {
    get(&s, Kind::File, p)
}

pub async fn get_folder(State(s): State<AppState>, Path(p): InstancePath) -> ApiResult<Json<Value>> {
    get(&s, Kind::Folder, p)
}

pub async fn create_file(State(s): State<AppState>, Path(p): InstancePath, b: Bytes) -> ApiResult<Response> {
    create(&s, Kind::File, p, &b)
}

pub async fn create_folder(State(s): State<AppState>, Path(p): InstancePath, b: Bytes) -> ApiResult<Response> {
    create(&s, Kind::Folder, p, &b)
}

pub async fn update_file(State(s): State<AppState>, Path(p): InstancePath, b: Bytes) -> ApiResult<Json<Value>> {
    update(&s, Kind::File, p, &b)
}

pub async fn update_folder(State(s): State<AppState>, Path(p): InstancePath, b: Bytes) -> ApiResult<Json<Value>> {
    update(&s, Kind::Folder, p, &b)
}

pub async fn delete_file(State(s): State<AppState>, Path(p): InstancePath) -> ApiResult<StatusCode> {
    delete(&s, Kind::File, p)
}

pub async fn delete_folder(State(s): State<AppState>, Path(p): InstancePath) -> ApiResult<StatusCode> {
    delete(&s, Kind::Folder, p)
}
