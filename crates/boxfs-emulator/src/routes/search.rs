//! `GET /2.0/search`: Box's parameters parsed and checked (400 `missing_parameter` without a
//! query or metadata filter, `invalid_parameter` for a malformed one, offset ≤ 10,000, limit ≤
//! 200), the search itself in `store::search`, and Box's `search_results_items` (or, with
//! `include_recent_shared_links`, `search_results_with_shared_links`) shape.

use super::items::int_param;
use super::{bool_param, render_items, repr, with_entries, Params};
use crate::error::{ApiError, ApiResult};
use crate::store::render::Repr;
use crate::store::Viewer;
use crate::store::{
    normalize_time, Kind, MetadataFilter, Query, Range, SearchOrder, SearchRequest, Searched, TrashFilter,
};
use crate::AppState;
use axum::extract::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

const DEFAULT_LIMIT: i64 = 30;
const MAX_LIMIT: i64 = 200;
const MAX_OFFSET: i64 = 10_000;

fn invalid(name: &str) -> ApiError {
    let mut e = ApiError::invalid_param(name);
    e.code = "invalid_parameter".into();
    e
}

/// A comma-separated list parameter.
fn list<'a>(q: &'a Params, name: &str) -> Vec<&'a str> {
    q.get(name).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

/// `FROM,TO` with either end empty.
fn range<T: Copy>(q: &Params, name: &str, parse: impl Fn(&str) -> Option<T>) -> ApiResult<Range<T>> {
    let Some(v) = q.get(name) else { return Ok(Range { from: None, to: None }) };
    let (from, to) = v.split_once(',').ok_or_else(|| invalid(name))?;
    let end = |s: &str| match s.trim() {
        "" => Ok(None),
        s => parse(s).map(Some).ok_or_else(|| invalid(name)),
    };
    Ok(Range { from: end(from)?, to: end(to)? })
}

fn timestamp(s: &str) -> Option<i64> {
    normalize_time(s).and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.timestamp())
}

fn request(q: &Params) -> ApiResult<SearchRequest> {
    if q.get("scope").is_some_and(|s| s == "enterprise_content") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "access_denied_insufficient_permissions",
            "The enterprise_content scope has not been enabled for this user",
        ));
    }
    if q.get("scope").is_some_and(|s| s != "user_content") {
        return Err(invalid("scope"));
    }
    let query = q.get("query").and_then(|s| Query::parse(s));
    let metadata = match q.get("mdfilters") {
        None => None,
        Some(raw) => {
            let filters: Vec<Value> = serde_json::from_str(raw).map_err(|_| invalid("mdfilters"))?;
            let [f] = filters.as_slice() else { return Err(invalid("mdfilters")) };
            let text =
                |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| invalid("mdfilters"));
            let filters = f.get("filters").and_then(Value::as_object).cloned().ok_or_else(|| invalid("mdfilters"))?;
            Some(MetadataFilter { scope: text("scope")?, template: text("templateKey")?, filters })
        }
    };
    if query.is_none() && metadata.is_none() {
        return Err(ApiError::bad_request("missing_parameter", "Provide at least the query or mdfilters parameter"));
    }
    let content_types = list(q, "content_types");
    for t in &content_types {
        // The official SDK sends `tag` where the spec says `tags`; both are taken.
        if !["name", "description", "file_content", "comments", "tags", "tag"].contains(t) {
            return Err(invalid("content_types"));
        }
    }
    let searched = |t: &str| content_types.is_empty() || content_types.contains(&t);
    let kind = match q.get("type").map(String::as_str) {
        None => None,
        Some(t) => Some(Kind::parse(t).ok_or_else(|| invalid("type"))?),
    };
    let trash = match q.get("trash_content").map(String::as_str) {
        None | Some("non_trashed_only") => TrashFilter::NonTrashedOnly,
        Some("trashed_only") => TrashFilter::TrashedOnly,
        Some("all_items") => TrashFilter::AllItems,
        Some(_) => return Err(invalid("trash_content")),
    };
    let order = match q.get("sort").map(String::as_str) {
        None | Some("relevance") => SearchOrder::Relevance,
        Some("modified_at") => SearchOrder::ModifiedAt,
        Some(_) => return Err(invalid("sort")),
    };
    let ascending = match q.get("direction").map(|d| d.to_ascii_uppercase()) {
        None => false,
        Some(d) if d == "DESC" => false,
        Some(d) if d == "ASC" => true,
        Some(_) => return Err(invalid("direction")),
    };
    let ids = |name: &str| q.contains_key(name).then(|| list(q, name).into_iter().map(str::to_string).collect());
    let ancestors = list(q, "ancestor_folder_ids")
        .into_iter()
        .map(|id| id.parse::<i64>().map_err(|_| invalid("ancestor_folder_ids")))
        .collect::<ApiResult<_>>()?;
    let offset = int_param(q, "offset", 0)?;
    if offset > MAX_OFFSET {
        return Err(invalid("offset"));
    }
    Ok(SearchRequest {
        query,
        searched: Searched { name: searched("name"), description: searched("description") },
        kind,
        extensions: list(q, "file_extensions").into_iter().map(|e| e.trim_start_matches('.').to_lowercase()).collect(),
        ancestors,
        created: range(q, "created_at_range", timestamp)?,
        updated: range(q, "updated_at_range", timestamp)?,
        deleted: range(q, "deleted_at_range", timestamp)?,
        size: range(q, "size_range", |s| s.parse::<i64>().ok())?,
        owners: ids("owner_user_ids"),
        updaters: ids("recent_updater_user_ids"),
        deleters: ids("deleted_user_ids"),
        trash,
        metadata,
        order,
        ascending,
        offset: offset as usize,
        limit: int_param(q, "limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT) as usize,
    })
}

pub async fn search(State(s): State<AppState>, Extension(v): Extension<Viewer>, q: Params) -> ApiResult<Json<Value>> {
    let req = request(&q)?;
    let page = s.store.search(&v, &req)?;
    let entries = render_items(&s, &v, &page.entries, None, &repr(&q, Repr::Standard))?;
    let (kind, entries) = if bool_param(&q, "include_recent_shared_links")? == Some(true) {
        let wrapped = entries.into_iter().map(|item| json!({"type": "search_result", "item": item})).collect();
        ("search_results_with_shared_links", wrapped)
    } else {
        ("search_results_items", entries)
    };
    let body = json!({"type": kind, "total_count": page.total_count, "limit": req.limit, "offset": req.offset});
    Ok(Json(with_entries(body, entries)))
}
