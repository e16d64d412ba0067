//! OAuth 2.0: `GET /oauth2/authorize` (auto-approves, as the admin, and redirects with `code`
//! and `state`), `POST /oauth2/token` (authorization_code, single-use refresh_token,
//! client_credentials and the JWT bearer grant, each for the user Box would give a token of)
//! and `POST /oauth2/revoke`.
//!
//! Client credentials and JWT name their subject as Box does: `box_subject_type=enterprise`
//! with the enterprise's id is its service account, `user` with a user id is that user. A JWT
//! assertion is checked as Box checks it: signed RS256/384/512 with a public key registered
//! for the app (`kid` in its header; `POST /_emulator/public-keys`), `iss` the client id, `aud`
//! Box's token URL, `exp` in the future but at most 60 s away, a `jti` of 16 to 128
//! characters never used before, and `box_sub_type` with `sub` naming the subject.

use super::Params;
use crate::store::{TokenPair, User, ENTERPRISE_ID, SERVICE_ID};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;
use std::collections::HashMap;

fn oauth_error(error: &str, description: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error, "error_description": description}))).into_response()
}

/// A refused token request, counted per error in `/_emulator/stats` (`token_errors`).
fn refuse_grant(s: &AppState, error: &str, description: &str) -> Response {
    s.stats.token_error(error);
    oauth_error(error, description)
}

fn token_response(pair: TokenPair) -> Response {
    let mut body = json!({
        "access_token": pair.access_token, "expires_in": pair.expires_in, "token_type": "bearer",
        "restricted_to": [], "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
    });
    if let Some(refresh) = pair.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    Json(body).into_response()
}

pub async fn authorize(State(s): State<AppState>, q: Params) -> Response {
    if q.get("response_type").map(String::as_str) != Some("code") {
        return (StatusCode::BAD_REQUEST, "unsupported_response_type: response_type must be 'code'").into_response();
    }
    if q.get("client_id") != Some(&s.config.client_id) {
        return (StatusCode::BAD_REQUEST, "invalid_client: unknown client_id").into_response();
    }
    let Some(redirect) = q.get("redirect_uri").and_then(|r| url::Url::parse(r).ok()) else {
        return (StatusCode::BAD_REQUEST, "invalid_request: redirect_uri is missing or not a URL").into_response();
    };
    let code = match s.store.create_auth_code(&s.config.client_id, redirect.as_str()) {
        Ok(code) => code,
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    let mut target = redirect;
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = q.get("state") {
        target.query_pairs_mut().append_pair("state", state);
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

pub async fn token(State(s): State<AppState>, Form(form): Form<HashMap<String, String>>) -> Response {
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    s.stats.grant(grant);
    let client_ok = form.get("client_id") == Some(&s.config.client_id)
        && form.get("client_secret") == Some(&s.config.client_secret);
    if !client_ok {
        return refuse_grant(&s, "invalid_client", "The client credentials are invalid");
    }
    let lifetime = s.config.token_lifetime_secs;
    let issued = match grant {
        "authorization_code" => {
            let code = form.get("code").map(String::as_str).unwrap_or("");
            match s.store.redeem_auth_code(code, &s.config.client_id) {
                Ok(true) => s.store.issue_tokens(&s.config.client_id, ADMIN, lifetime, true).map(Some),
                Ok(false) => {
                    return refuse_grant(&s, "invalid_grant", "The authorization code is invalid or has expired")
                }
                Err(e) => Err(e),
            }
        }
        "refresh_token" => {
            let refresh = form.get("refresh_token").map(String::as_str).unwrap_or("");
            s.store.refresh_tokens(refresh, &s.config.client_id, lifetime)
        }
        "client_credentials" => {
            let (Some(kind), Some(id)) = (form.get("box_subject_type"), form.get("box_subject_id")) else {
                return refuse_grant(
                    &s,
                    "invalid_request",
                    "box_subject_type (enterprise|user) and box_subject_id are required",
                );
            };
            let user = match subject(&s, kind, id) {
                Ok(u) => u,
                Err(why) => return refuse_grant(&s, "invalid_grant", why),
            };
            s.store.issue_tokens(&s.config.client_id, &user.id, lifetime, false).map(Some)
        }
        JWT_BEARER => {
            let assertion = form.get("assertion").map(String::as_str).unwrap_or("");
            let user = match jwt_subject(&s, assertion) {
                Ok(u) => u,
                Err(why) => return refuse_grant(&s, "invalid_grant", &why),
            };
            s.store.issue_tokens(&s.config.client_id, &user.id, lifetime, false).map(Some)
        }
        _ => return refuse_grant(&s, "unsupported_grant_type", "Grant type is not supported"),
    };
    match issued {
        Ok(Some(pair)) => token_response(pair),
        Ok(None) => refuse_grant(&s, "invalid_grant", "Invalid refresh token"),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

const ADMIN: &str = crate::ADMIN_ID;
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The audience Box's token endpoint requires (also of assertions sent to the emulator).
const BOX_TOKEN_URL: &str = "https://api.box.com/oauth2/token";

/// The user a client-credentials or JWT subject names.
fn subject(s: &AppState, kind: &str, id: &str) -> Result<User, &'static str> {
    let user_id = match kind {
        "enterprise" if id == ENTERPRISE_ID => SERVICE_ID,
        "enterprise" => return Err("Grant credentials are invalid: unknown enterprise"),
        "user" => id,
        _ => return Err("box_subject_type must be enterprise or user"),
    };
    match s.store.get_user(user_id) {
        Ok(Some(u)) => Ok(u),
        _ => Err("Grant credentials are invalid: unknown user"),
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    box_sub_type: String,
    aud: String,
    jti: String,
    exp: i64,
}

/// The user an assertion names, once its signature and claims check out.
fn jwt_subject(s: &AppState, assertion: &str) -> Result<User, String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| format!("Invalid JWT: {e}"))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) {
        return Err("Please check the 'alg' header: RS256, RS384 or RS512".into());
    }
    let kid = header.kid.ok_or("Please check the 'kid' header")?;
    let pem = match s.store.public_key(&s.config.client_id, &kid) {
        Ok(Some(pem)) => pem,
        _ => return Err("Please check the 'kid' header: no such public key for this app".into()),
    };
    let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("the registered key: {e}"))?;
    let mut validation = Validation::new(header.alg);
    // The claims are checked below with Box's rules and messages.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Claims>(assertion, &key, &validation)
        .map_err(|e| format!("Signature verification error or invalid claims: {e}"))?
        .claims;
    let now = crate::store::unix_now();
    if claims.iss != s.config.client_id {
        return Err("Please check the 'iss' claim".into());
    }
    if claims.aud != BOX_TOKEN_URL {
        return Err("Please check the 'aud' claim".into());
    }
    if claims.exp <= now || claims.exp > now + 60 {
        return Err("Please check the 'exp' claim: it must be at most 60 seconds in the future".into());
    }
    if !(16..=128).contains(&claims.jti.chars().count()) {
        return Err("Please check the 'jti' claim: 16 to 128 characters".into());
    }
    if !s.store.claim_jti(&claims.jti, claims.exp).unwrap_or(false) {
        return Err("Please check the 'jti' claim: it was used before".into());
    }
    subject(s, &claims.box_sub_type, &claims.sub).map_err(str::to_string)
}

pub async fn revoke(State(s): State<AppState>, Form(form): Form<HashMap<String, String>>) -> Response {
    if form.get("client_id") != Some(&s.config.client_id) || form.get("client_secret") != Some(&s.config.client_secret)
    {
        return oauth_error("invalid_client", "The client credentials are invalid");
    }
    if let Some(token) = form.get("token") {
        if let Err(e) = s.store.revoke_token(token) {
            return crate::error::ApiError::from(e).into_response();
        }
    }
    StatusCode::OK.into_response()
}
