//! Events: `GET /2.0/events` (the viewer's own events: stream positions, `now`, `limit` ≤
//! 500), `OPTIONS /2.0/events` (the realtime server entry, a channel of the viewer's) and the
//! long-poll itself (`/subscribe`), which answers `new_change` as soon as an event of the
//! channel's user after the given position exists, else `reconnect` after the configured
//! timeout.

use super::{with_entries, Params};
use crate::error::{ApiError, ApiResult};
use crate::store::render;
use crate::store::Viewer;
use crate::AppState;
use axum::extract::{Extension, State};
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

pub async fn list(State(s): State<AppState>, Extension(v): Extension<Viewer>, q: Params) -> ApiResult<Json<Value>> {
    check_stream_type(&q)?;
    let from = position(&s, q.get("stream_position"))?;
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => {
            v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::invalid_param("limit"))?.min(MAX_LIMIT)
        }
    };
    let (rows, next) = if q.get("stream_position").is_some_and(|p| p == "now") {
        (Vec::new(), from)
    } else {
        s.store.events_after(&v.user.id, from, limit)?
    };
    let users = s.store.users()?;
    let by = |id: &Option<String>| {
        let id = id.as_deref().unwrap_or(crate::ADMIN_ID);
        users.iter().find(|u| u.id == id).map(render::user_mini).unwrap_or(Value::Null)
    };
    let entries: Vec<Value> = s
        .faults
        .scramble_events(rows)
        .into_iter()
        .map(|e| {
            json!({
                "type": "event", "event_id": e.event_id, "event_type": e.event_type,
                "created_at": e.created_at, "recorded_at": e.created_at, "created_by": by(&e.created_by),
                "source": e.source,
            })
        })
        .collect();
    let body = json!({"chunk_size": entries.len(), "next_stream_position": next});
    Ok(Json(with_entries(body, entries)))
}

pub async fn realtime_servers(State(s): State<AppState>, Extension(v): Extension<Viewer>) -> Json<Value> {
    let url = format!("{}/subscribe?channel={}-{}&stream_type=all", s.base_url(), s.channel, v.user.id);
    Json(json!({
        "chunk_size": 1,
        "entries": [{
            "type": "realtime_server", "url": url, "ttl": "10", "max_retries": "10",
            "retry_timeout": s.config.longpoll_timeout.as_secs(),
        }],
    }))
}

pub async fn long_poll(State(s): State<AppState>, q: Params) -> ApiResult<Json<Value>> {
    let user = q.get("channel").and_then(|c| c.strip_prefix(&format!("{}-", s.channel)));
    let Some(user) = user.map(str::to_string) else {
        return Ok(Json(json!({"message": "reconnect"})));
    };
    let from = position(&s, q.get("stream_position"))?;
    let mut rx = s.store.subscribe_positions();
    let wait = async {
        loop {
            if s.store.has_events_after(&user, from).unwrap_or(false) {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let changed = tokio::time::timeout(s.config.longpoll_timeout, wait).await.is_ok();
    if changed {
        Ok(Json(json!({"message": "new_change"})))
    } else {
        Ok(Json(json!({"version": 1, "message": "reconnect"})))
    }
}
