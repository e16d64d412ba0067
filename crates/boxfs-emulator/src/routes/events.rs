//! Events: `GET /2.0/events` (stream positions, `now`, `limit` ≤ 500), `OPTIONS /2.0/events`
//! (the realtime server entry) and the long-poll itself (`/subscribe`), which answers
//! `new_change` as soon as an event after the given position exists, else `reconnect` after
//! the configured timeout.

use super::Params;
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

const MAX_LIMIT: i64 = 500;

fn check_stream_type(q: &Params) -> ApiResult<()> {
    match q.get("stream_type").map(String::as_str) {
        None | Some("all" | "changes" | "sync") => Ok(()),
        Some("admin_logs" | "admin_logs_streaming") => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "access_denied_insufficient_permissions",
            "Access denied - insufficient permission",
        )),
        Some(_) => Err(ApiError::invalid_param("stream_type")),
    }
}

/// A stream position; `now` is the newest.
fn position(state: &AppState, value: Option<&String>) -> ApiResult<i64> {
    match value.map(String::as_str) {
        None | Some("") => Ok(0),
        Some("now") => Ok(state.store.latest_position()),
        Some(v) => v.parse::<i64>().ok().filter(|p| *p >= 0).ok_or_else(|| ApiError::invalid_param("stream_position")),
    }
}

pub async fn list(State(s): State<AppState>, q: Params) -> ApiResult<Json<Value>> {
    check_stream_type(&q)?;
    let from = position(&s, q.get("stream_position"))?;
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => {
            v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::invalid_param("limit"))?.min(MAX_LIMIT)
        }
    };
    let rows = if q.get("stream_position").is_some_and(|p| p == "now") {
        Vec::new()
    } else {
        s.store.events_after(from, limit)?
    };
    let next = rows.last().map(|e| e.position).unwrap_or(from);
    let user = render::user_mini(s.store.user());
    let entries: Vec<Value> = s
        .faults
        .scramble_events(rows)
        .into_iter()
        .map(|e| {
            json!({
                "type": "event", "event_id": e.event_id, "event_type": e.event_type,
                "created_at": e.created_at, "recorded_at": e.created_at, "created_by": user,
                "source": e.source,
            })
        })
        .collect();
    Ok(Json(json!({"chunk_size": entries.len(), "next_stream_position": next, "entries": entries})))
}

pub async fn realtime_servers(State(s): State<AppState>) -> Json<Value> {
    let url = format!("{}/subscribe?channel={}&stream_type=all", s.base_url(), s.channel);
    Json(json!({
        "chunk_size": 1,
        "entries": [{
            "type": "realtime_server", "url": url, "ttl": "10", "max_retries": "10",
            "retry_timeout": s.config.longpoll_timeout.as_secs(),
        }],
    }))
}

pub async fn long_poll(State(s): State<AppState>, q: Params) -> ApiResult<Json<Value>> {
    if q.get("channel") != Some(&s.channel) {
        return Ok(Json(json!({"message": "reconnect"})));
    }
    let from = position(&s, q.get("stream_position"))?;
    let mut rx = s.store.subscribe_positions();
    let changed = matches!(
        tokio::time::timeout(s.config.longpoll_timeout, rx.wait_for(|latest| *latest > from)).await,
        Ok(Ok(_))
    );
    if changed {
        Ok(Json(json!({"message": "new_change"})))
    } else {
        Ok(Json(json!({"version": 1, "message": "reconnect"})))
    }
}
