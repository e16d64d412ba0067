//! Chunked uploads: create a session (new file or new version), upload parts (exact
//! `part_size` rule, `digest` checked, immutable parts), list parts, status, abort, and commit
//! (parts list and whole-file digest checked; 202 + `Retry-After` when the fault knob says so).

use super::{files_body, header, json_body, json_id, parse_id, str_field, writable_file, writable_folder};
use crate::error::{ApiError, ApiResult};
use crate::store::{normalize_time, HashingWriter, NewFile, Part, SessionRow, SessionTarget, StoreError, Viewer};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::{header as h, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use futures_util::StreamExt;
use serde_json::{json, Value};

fn session_json(state: &AppState, row: &SessionRow) -> Value {
    let base = format!("{}/files/upload_sessions/{}", state.upload_url(), row.id);
    let expires = chrono::DateTime::from_timestamp(row.expires_at, 0).unwrap_or_default();
    json!({
        "id": row.id,
        "type": "upload_session",
        "session_expires_at": crate::store::format_time(expires),
        "part_size": row.part_size,
        "total_parts": row.total_parts,
        "num_parts_processed": row.parts_uploaded,
        "session_endpoints": {
            "upload_part": base, "commit": format!("{base}/commit"), "abort": base,
            "list_parts": format!("{base}/parts"), "status": base, "log_event": format!("{base}/log"),
        },
    })
}

fn file_size(body: &Value, min: i64) -> ApiResult<i64> {
    let size = match body.get("file_size") {
        None | Some(Value::Null) => return Err(ApiError::bad_request("missing_file_size", "file_size is required")),
        Some(v) => json_id(v)
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::bad_request("invalid_file_size", "Invalid file_size"))?,
    };
    if size < min {
        return Err(ApiError::bad_request(
            "file_size_too_small",
            format!("File size {size} less than minimum allowed for this API: {min}"),
        ));
    }
    Ok(size)
}

fn create(state: &AppState, target: SessionTarget, name: &str, size: i64) -> ApiResult<Response> {
    let row = state.store.create_session(target, name, size, state.part_size(), state.config.session_lifetime_secs)?;
    Ok((StatusCode::CREATED, Json(session_json(state, &row))).into_response())
}

pub async fn create_for_new(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let folder = match body.get("folder_id") {
        None | Some(Value::Null) => return Err(ApiError::bad_request("missing_destination", "folder_id is required")),
        Some(v) => json_id(v).ok_or_else(|| ApiError::bad_request("invalid_folder_id", "Invalid folder_id"))?,
    };
    let name = str_field(&body, "file_name")?
        .ok_or_else(|| ApiError::bad_request("missing_file_name", "file_name is required"))?;
    let size = file_size(&body, s.min_session_size())?;
    let folder = writable_folder(&s, &v, folder)?.id;
    s.store.check_new_file(folder, name, size)?;
    create(&s, SessionTarget::NewFile { folder_id: folder }, name, size)
}

pub async fn create_for_version(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let id = writable_file(&s, &v, parse_id(&id)?)?.id;
    let size = file_size(&body, s.min_session_size())?;
    let name = str_field(&body, "file_name")?;
    let file = s.store.check_new_version(&v.user.id, id, header(&headers, "if-match").as_deref(), name, size)?;
    create(&s, SessionTarget::NewVersion { file_id: id }, name.unwrap_or(&file.name), size)
}

/// `Content-Range: bytes a-b/total` → `(a, b, total)`.
fn content_range(headers: &HeaderMap) -> Option<(i64, i64, i64)> {
    let v = header(headers, "content-range")?;
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total.trim().parse().ok()?))
}

/// `Digest: sha=<base64 SHA-1>` → the 20 raw bytes.
fn sha_digest(headers: &HeaderMap) -> Option<Vec<u8>> {
    let v = header(headers, "digest")?;
    let b64 = v.split(',').find_map(|p| p.trim().strip_prefix("sha=").or_else(|| p.trim().strip_prefix("SHA=")))?;
    base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()
}

fn range_error(message: String) -> ApiError {
    ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "requested_range_not_satisfiable", message)
}

/// Checks a part's range against the session: offsets on `part_size` boundaries, every part
/// but the last exactly `part_size`, the last one ending at the file size.
fn check_part_range(row: &SessionRow, a: i64, b: i64, total: i64) -> ApiResult<()> {
    if total != row.file_size {
        return Err(range_error(format!(
            "Total size {total} does not match the session's file size {}",
            row.file_size
        )));
    }
    if a < 0 || b < a || b >= total || a % row.part_size != 0 {
        return Err(range_error(format!("Range {a}-{b} is not on a part boundary of size {}", row.part_size)));
    }
    let expected = row.part_size.min(total - a);
    if b - a + 1 != expected {
        return Err(range_error(format!("Part size {} must be {expected}", b - a + 1)));
    }
    Ok(())
}

pub async fn upload_part(
    State(s): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let mut stream = body.into_data_stream();
    let result = store_part(&s, &sid, &headers, &mut stream).await;
    if result.is_err() {
        super::drain(&mut stream).await;
    }
    result
}

async fn store_part(
    s: &AppState,
    sid: &str,
    headers: &HeaderMap,
    stream: &mut axum::body::BodyDataStream,
) -> ApiResult<Response> {
    let row = s.store.session(sid)?;
    if row.state != "open" {
        return Err(ApiError::bad_request("bad_request", "The upload session was already committed"));
    }
    let (a, b, total) = content_range(headers).ok_or_else(|| ApiError::invalid_param("content-range"))?;
    check_part_range(&row, a, b, total)?;
    let digest = sha_digest(headers).ok_or_else(|| ApiError::invalid_param("digest"))?;
    let tmp = s.store.session_dir(sid).join(format!("{}.tmp", crate::store::random_hex(8)));
    let mut writer = HashingWriter::create(tmp).await?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("bad_request", format!("Body read failed: {e}")))?;
        s.stats.received(chunk.len() as u64);
        writer.write(&chunk).await?;
        if writer.size() > b - a + 1 {
            break;
        }
    }
    let (tmp, blob, raw) = writer.finish().await?;
    let fail = |e: ApiError| async {
        let _ = tokio::fs::remove_file(&tmp).await;
        Err(e)
    };
    if blob.size != b - a + 1 {
        return fail(range_error(format!("Body has {} bytes but Content-Range says {}", blob.size, b - a + 1))).await;
    }
    if digest != raw {
        return fail(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "sha1_mismatch",
            "The digest header does not match the part's SHA-1",
        ))
        .await;
    }
    let part = Part { part_id: crate::store::random_hex(4), offset: a, size: blob.size, sha1: blob.sha1 };
    let stored = match s.store.add_part(sid, part) {
        Ok(p) => p,
        Err(e) => return fail(e.into()).await,
    };
    tokio::fs::rename(&tmp, s.store.part_path(sid, a)).await?;
    Ok(Json(json!({"part": stored})).into_response())
}

pub async fn status(State(s): State<AppState>, Path(sid): Path<String>) -> ApiResult<Json<Value>> {
    let row = s.store.session(&sid)?;
    Ok(Json(session_json(&s, &row)))
}

pub async fn list_parts(
    State(s): State<AppState>,
    Path(sid): Path<String>,
    q: super::Params,
) -> ApiResult<Json<Value>> {
    s.store.session(&sid)?;
    let parts = s.store.list_parts(&sid)?;
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(1000).clamp(1, 1000);
    let entries: Vec<&Part> = parts.iter().skip(offset).take(limit).collect();
    Ok(Json(json!({"entries": entries, "total_count": parts.len(), "offset": offset, "limit": limit,
        "order": [{"by": "offset", "direction": "ASC"}]})))
}

pub async fn abort(State(s): State<AppState>, Path(sid): Path<String>) -> ApiResult<StatusCode> {
    s.store.session(&sid)?;
    s.store.abort_session(&sid)?;
    Ok(StatusCode::NO_CONTENT)
}

fn parts_mismatch(message: &str) -> ApiError {
    ApiError::bad_request("parts_mismatch", message.to_string())
}

/// The commit's `parts` must be exactly the uploaded parts, covering the whole file.
fn check_commit_parts(row: &SessionRow, uploaded: &[Part], body: &Value) -> ApiResult<()> {
    let listed: Vec<Part> = serde_json::from_value(body.get("parts").cloned().unwrap_or(Value::Null))
        .map_err(|_| ApiError::invalid_param("parts"))?;
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_by_key(|p| p.offset);
    if listed_sorted != uploaded {
        return Err(parts_mismatch("The parts list does not match the uploaded parts"));
    }
    let covered: i64 = uploaded.iter().map(|p| p.size).sum();
    if covered != row.file_size || uploaded.len() as i64 != row.total_parts {
        return Err(parts_mismatch("Not all parts of the file have been uploaded"));
    }
    Ok(())
}

pub async fn commit(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(sid): Path<String>,
    q: super::Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let row = s.store.session(&sid)?;
    if let Some(file_id) = row.result_file_id {
        let file = s.store.get_any(file_id)?.ok_or_else(ApiError::not_found)?;
        return Ok((StatusCode::CREATED, Json(files_body(&s, &v, &file, &q)?)).into_response());
    }
    let body = json_body(&body)?;
    // The rights of the moment of the commit count (a role may have changed since the session began).
    match row.target {
        SessionTarget::NewFile { folder_id } => writable_folder(&s, &v, folder_id).map(drop)?,
        SessionTarget::NewVersion { file_id } => writable_file(&s, &v, file_id).map(drop)?,
    }
    let digest = sha_digest(&headers).ok_or_else(|| ApiError::invalid_param("digest"))?;
    let uploaded = s.store.list_parts(&sid)?;
    check_commit_parts(&row, &uploaded, &body)?;
    if let Some(retry) = s.faults.accepted_202(false) {
        s.stats.fault("commit202");
        return Ok((StatusCode::ACCEPTED, [(h::RETRY_AFTER, retry.to_string())]).into_response());
    }
    let paths: Vec<_> = uploaded.iter().map(|p| s.store.part_path(&sid, p.offset)).collect();
    let blobs = s.store.blobs().clone();
    let (tmp, blob, raw) = tokio::task::spawn_blocking(move || blobs.concat(&paths))
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
    if digest != raw {
        let _ = tokio::fs::remove_file(&tmp).await;
        let actual = base64::engine::general_purpose::STANDARD.encode(raw);
        let expected = base64::engine::general_purpose::STANDARD.encode(&digest);
        return Err(ApiError::bad_request(
            "digest_mismatch",
            format!("File digest was incorrect. Actual: {actual} Expected: {expected}"),
        ));
    }
    s.store.blobs().adopt(&tmp, &blob)?;
    let attrs = body.get("attributes").cloned().unwrap_or(Value::Null);
    let time = |name: &str| str_field(&attrs, name).ok().flatten().and_then(normalize_time);
    let file = match row.target {
        SessionTarget::NewFile { folder_id } => s.store.create_file(
            &v.user.id,
            NewFile {
                parent_id: folder_id,
                name: row.file_name.clone(),
                blob,
                content_created_at: time("content_created_at"),
                content_modified_at: time("content_modified_at"),
            },
        )?,
        SessionTarget::NewVersion { file_id } => s.store.new_version(
            &v.user.id,
            file_id,
            header(&headers, "if-match").as_deref(),
            Some(row.file_name.clone()),
            blob,
            time("content_modified_at"),
        )?,
    };
    s.store.finish_session(&sid, file.id)?;
    Ok((StatusCode::CREATED, Json(files_body(&s, &v, &file, &q)?)).into_response())
}
