//! Collaborations: `POST /collaborations` (a user by id or login, one of Box's roles), `GET`,
//! `PUT` (role, or the invitee's answer) and `DELETE /collaborations/{id}`, the pending
//! invitations of the viewer (`GET /collaborations?status=pending`) and an item's
//! collaborations (`GET /folders|files/{id}/collaborations`).

use super::{ctx, json_body, parse_id, refuse_unmodelled, render_item, repr, str_field, Params};
use crate::error::{ApiError, ApiResult};
use crate::store::render::{self, Repr};
use crate::store::{CollabChange, CollabStatus, Collaboration, Invitee, Kind, NewCollab, Role, Viewer};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// A collaboration as `viewer` sees it, its item as a mini item (none when they cannot see it).
fn rendered(s: &AppState, viewer: &Viewer, c: &Collaboration, q: &Params) -> ApiResult<Value> {
    let item = match s.store.get_any(c.item_id)? {
        Some(item) => render_item(s, viewer, &item, &Repr::Mini).ok(),
        None => None,
    };
    let users = s.store.users()?;
    Ok(render::collaboration(c, item, &ctx(s, viewer, &users), &repr(q, Repr::Full)))
}

fn role(body: &Value) -> ApiResult<Option<Role>> {
    match str_field(body, "role")? {
        None => Ok(None),
        Some("owner") => Err(ApiError::bad_request(
            "bad_request",
            "'role: owner' (transferring ownership) is not supported by the boxfs emulator",
        )),
        Some(r) => Role::parse(r).map(Some).ok_or_else(|| ApiError::invalid_param("role")),
    }
}

fn expires_at(body: &Value) -> ApiResult<Option<Option<String>>> {
    match body.get("expires_at") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(t)) => Ok(Some(Some(t.clone()))),
        Some(_) => Err(ApiError::invalid_param("expires_at")),
    }
}

pub async fn create(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    q: Params,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&body)?;
    refuse_unmodelled(&body, &["is_access_only"])?;
    let item = &body["item"];
    let kind = match str_field(item, "type")? {
        Some("folder") => Kind::Folder,
        Some("file") => Kind::File,
        _ => return Err(ApiError::invalid_param("item")),
    };
    let item_id = super::json_id(&item["id"]).ok_or_else(|| ApiError::invalid_param("item"))?;
    let who = &body["accessible_by"];
    let invitee = match (str_field(who, "type")?, str_field(who, "id")?, str_field(who, "login")?) {
        (Some("group"), _, _) => {
            return Err(ApiError::bad_request("bad_request", "groups are not supported by the boxfs emulator"))
        }
        (Some("user"), Some(id), _) => Invitee::Id(id.to_string()),
        (Some("user"), None, Some(login)) => Invitee::Login(login.to_string()),
        _ => return Err(ApiError::invalid_param("accessible_by")),
    };
    let role = role(&body)?.ok_or_else(|| ApiError::invalid_param("role"))?;
    let expires_at = expires_at(&body)?.flatten();
    let collab = s.store.create_collab(&v, &NewCollab { kind, item_id, invitee, role, expires_at })?;
    Ok((StatusCode::CREATED, Json(rendered(&s, &v, &collab, &q)?)).into_response())
}

pub async fn get(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    let collab = s.store.get_collab(&v, parse_id(&id)?)?;
    Ok(Json(rendered(&s, &v, &collab, &q)?))
}

pub async fn update(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    q: Params,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = json_body(&body)?;
    refuse_unmodelled(&body, &["can_view_path"])?;
    let status = match str_field(&body, "status")? {
        None => None,
        Some(st) => Some(CollabStatus::parse(st).ok_or_else(|| ApiError::invalid_param("status"))?),
    };
    let change = CollabChange { role: role(&body)?, status, expires_at: expires_at(&body)? };
    let collab = s.store.update_collab(&v, parse_id(&id)?, &change)?;
    let v = s.store.reload_viewer(&v)?;
    Ok(Json(rendered(&s, &v, &collab, &q)?))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_collab(&v, parse_id(&id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /collaborations?status=pending` (Box takes only `pending` here).
pub async fn pending(State(s): State<AppState>, Extension(v): Extension<Viewer>, q: Params) -> ApiResult<Json<Value>> {
    if q.get("status").map(String::as_str) != Some("pending") {
        return Err(ApiError::invalid_param("status"));
    }
    let all = s.store.pending_collabs(&v)?;
    let offset = super::items::int_param(&q, "offset", 0)?;
    let limit = super::items::int_param(&q, "limit", 100)?.clamp(1, 1000);
    let entries = all
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|c| rendered(&s, &v, c, &q))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({"total_count": all.len(), "limit": limit, "offset": offset, "entries": entries})))
}

/// An item's collaborations, marker-paged (the marker is the offset of the next page).
fn of_item(s: &AppState, v: &Viewer, kind: Kind, id: &str, q: &Params) -> ApiResult<Json<Value>> {
    let collabs = s.store.item_collabs(v, kind, parse_id(id)?)?;
    let limit = super::items::int_param(q, "limit", 100)?.clamp(1, 1000) as usize;
    let from = match q.get("marker").filter(|m| !m.is_empty()) {
        None => 0,
        Some(m) => m.parse::<usize>().map_err(|_| ApiError::invalid_param("marker"))?,
    };
    let entries = collabs.iter().skip(from).take(limit).map(|c| rendered(s, v, c, q)).collect::<ApiResult<Vec<_>>>()?;
    let next = (from + limit < collabs.len()).then(|| (from + limit).to_string());
    Ok(Json(json!({"entries": entries, "limit": limit, "next_marker": next})))
}

pub async fn of_folder(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    of_item(&s, &v, Kind::Folder, &id, &q)
}

pub async fn of_file(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    of_item(&s, &v, Kind::File, &id, &q)
}
