//! `GET /2.0/users/me` and the emulator's own test endpoints under `/_emulator/`: counters,
//! runtime changes of faults and network conditions, and forced token expiry.

use super::{repr, Params};
use crate::error::{ApiError, ApiResult};
use crate::render::{self, Repr};
use crate::{AppState, FaultSpec, NetworkSpec};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub async fn users_me(State(s): State<AppState>, q: Params) -> ApiResult<Json<Value>> {
    Ok(Json(render::user(s.store.user(), s.store.space_used()?, &repr(&q, Repr::Full))))
}

pub async fn stats(State(s): State<AppState>) -> Json<Value> {
    Json(s.stats.snapshot())
}

pub async fn reset_stats(State(s): State<AppState>) -> StatusCode {
    s.stats.reset();
    StatusCode::NO_CONTENT
}

/// `PUT /_emulator/faults` with a `--faults` spec as the body (empty turns faults off).
pub async fn set_faults(State(s): State<AppState>, body: String) -> ApiResult<StatusCode> {
    let spec = FaultSpec::parse(body.trim()).map_err(|e| ApiError::bad_request("bad_request", e.to_string()))?;
    s.faults.set(spec);
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /_emulator/network` with `latency=MS[:JITTER],bandwidth=BYTES_PER_SEC` as the body (empty
/// for plain loopback); the conditions apply to responses begun from then on.
pub async fn set_network(State(s): State<AppState>, body: String) -> ApiResult<StatusCode> {
    let spec = NetworkSpec::parse(body.trim()).map_err(|e| ApiError::bad_request("bad_request", e.to_string()))?;
    s.network.set(spec);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn network(State(s): State<AppState>) -> Json<Value> {
    Json(json!(s.network.spec()))
}

pub async fn expire_tokens(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"expired": s.store.expire_access_tokens()?})))
}
