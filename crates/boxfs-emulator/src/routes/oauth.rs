//! OAuth 2.0: `GET /oauth2/authorize` (auto-approves and redirects with `code` and `state`),
//! `POST /oauth2/token` (authorization_code, single-use refresh_token, client_credentials) and
//! `POST /oauth2/revoke`.

use super::Params;
use crate::store::TokenPair;
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
                Ok(true) => s.store.issue_tokens(&s.config.client_id, lifetime, true).map(Some),
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
            let subject_ok = matches!(form.get("box_subject_type").map(String::as_str), Some("enterprise" | "user"))
                && form.get("box_subject_id").is_some_and(|id| !id.is_empty());
            if !subject_ok {
                return refuse_grant(
                    &s,
                    "invalid_request",
                    "box_subject_type (enterprise|user) and box_subject_id are required",
                );
            }
            s.store.issue_tokens(&s.config.client_id, lifetime, false).map(Some)
        }
        _ => return refuse_grant(&s, "unsupported_grant_type", "Grant type is not supported"),
    };
    match issued {
        Ok(Some(pair)) => token_response(pair),
        Ok(None) => refuse_grant(&s, "invalid_grant", "Invalid refresh token"),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
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
