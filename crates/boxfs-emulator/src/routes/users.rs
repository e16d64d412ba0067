//! Users: `GET /users/me` (the user acted for), and for the admin and the service account the
//! enterprise's users (`GET /users`, `GET /users/{id}`) and new managed users (`POST /users`).

use super::items::int_param;
use super::{json_body, refuse_unmodelled, repr, require, str_field, Params};
use crate::error::{ApiError, ApiResult};
use crate::store::render::{self, Repr};
use crate::store::{NewUser, User, Viewer};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

fn rendered(s: &AppState, user: &User, q: &Params) -> ApiResult<Value> {
    Ok(render::user(user, s.store.space_used_by(user)?, &repr(q, Repr::Full)))
}

pub async fn me(State(s): State<AppState>, Extension(v): Extension<Viewer>, q: Params) -> ApiResult<Json<Value>> {
    Ok(Json(rendered(&s, &v.user, &q)?))
}

pub async fn get(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    if id != v.user.id && !v.user.role.is_privileged() {
        return Err(ApiError::not_found());
    }
    let user = s.store.get_user(&id)?.ok_or_else(ApiError::not_found)?;
    Ok(Json(rendered(&s, &user, &q)?))
}

/// `GET /users` (offset paging; `filter_term` matches the start of names and logins).
pub async fn list(State(s): State<AppState>, Extension(v): Extension<Viewer>, q: Params) -> ApiResult<Json<Value>> {
    require(v.user.role.is_privileged())?;
    let term = q.get("filter_term").map(|t| t.to_lowercase());
    let users: Vec<User> = s
        .store
        .users()?
        .into_iter()
        .filter(|u| {
            term.as_ref().is_none_or(|t| u.name.to_lowercase().starts_with(t) || u.login.to_lowercase().starts_with(t))
        })
        .collect();
    let offset = int_param(&q, "offset", 0)?;
    let limit = int_param(&q, "limit", 100)?.clamp(1, 1000);
    let entries = users
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|u| rendered(&s, u, &q))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({"total_count": users.len(), "limit": limit, "offset": offset, "entries": entries})))
}

pub async fn create(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    q: Params,
    body: Bytes,
) -> ApiResult<Response> {
    require(v.user.role.is_privileged())?;
    let body = json_body(&body)?;
    refuse_unmodelled(&body, &["role", "is_platform_access_only", "tracking_codes", "external_app_user_id"])?;
    let name = str_field(&body, "name")?.ok_or_else(|| ApiError::invalid_param("name"))?;
    let login = str_field(&body, "login")?.ok_or_else(|| ApiError::invalid_param("login"))?;
    let space_amount = match body.get("space_amount") {
        None | Some(Value::Null) => None,
        Some(a) => Some(a.as_i64().filter(|n| *n >= -1).ok_or_else(|| ApiError::invalid_param("space_amount"))?),
    };
    let user = s.store.create_user(&NewUser { name: name.into(), login: login.into(), space_amount })?;
    Ok((StatusCode::CREATED, Json(rendered(&s, &user, &q)?)).into_response())
}
