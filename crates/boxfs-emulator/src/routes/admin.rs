//! The emulator's own endpoints under `/_emulator/`: counters, runtime changes of faults and
//! network conditions, forced token expiry, and the public keys of the app's JWT logins (what
//! Box's developer console registers).

use crate::error::{ApiError, ApiResult};
use crate::{AppState, FaultSpec, NetworkSpec};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

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

/// `POST /_emulator/public-keys` with an RSA public key (PEM) as the body: registers it for the
/// emulator's app, as adding a public key in Box's developer console does, and answers its
/// key id (the `kid` JWT assertions name, `publicKeyID` in the app's config file).
pub async fn add_public_key(State(s): State<AppState>, body: String) -> ApiResult<Response> {
    if jsonwebtoken::DecodingKey::from_rsa_pem(body.trim().as_bytes()).is_err() {
        return Err(ApiError::bad_request("bad_request", "the body is not an RSA public key in PEM form"));
    }
    let kid = s.store.add_public_key(&s.config.client_id, body.trim())?;
    Ok((StatusCode::CREATED, Json(json!({"id": kid, "client_id": s.config.client_id}))).into_response())
}
