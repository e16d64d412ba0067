//! Direct uploads on the upload host (`POST /api/2.0/files/content`, `…/files/{id}/content`):
//! multipart with the `attributes` part first, the file streamed to disk while hashed,
//! `content-md5` (a SHA-1) checked; and the preflight checks (`OPTIONS /2.0/files/content`).

use super::{
    files_body, header, json_body, json_id, parent_id, parse_id, str_field, writable_file, writable_folder, Params,
};
use crate::error::{ApiError, ApiResult};
use crate::store::{normalize_time, BlobInfo, HashingWriter, NewFile, Viewer};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Extension, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The parsed `attributes` part and the received file.
struct Received {
    attributes: Value,
    blob: BlobInfo,
}

fn time_attr(attrs: &Value, name: &str) -> ApiResult<Option<String>> {
    match str_field(attrs, name)? {
        None => Ok(None),
        Some(s) => normalize_time(s).map(Some).ok_or_else(|| ApiError::invalid_param(name)),
    }
}

/// Reads the multipart body: `attributes` must come before the file part. `precheck` runs on
/// the attributes before any file byte is stored, so that a doomed upload fails fast. A refused
/// body is still read to its end (bounded), so the client gets the error, not a reset.
async fn receive(
    state: &AppState,
    mut multipart: Multipart,
    headers: &HeaderMap,
    precheck: impl Fn(&Value) -> ApiResult<()>,
) -> ApiResult<Received> {
    let result = receive_parts(state, &mut multipart, headers, precheck).await;
    if result.is_err() {
        drain(&mut multipart).await;
    }
    result
}

async fn drain(multipart: &mut Multipart) {
    let mut read = 0;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            read += chunk.len();
            if read > super::DRAIN_LIMIT {
                return;
            }
        }
    }
}

async fn receive_parts(
    state: &AppState,
    multipart: &mut Multipart,
    headers: &HeaderMap,
    precheck: impl Fn(&Value) -> ApiResult<()>,
) -> ApiResult<Received> {
    let bad = |e: axum::extract::multipart::MultipartError| ApiError::bad_request("bad_request", e.body_text());
    let mut attributes: Option<Value> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        if field.name() == Some("attributes") {
            let text = field.text().await.map_err(bad)?;
            let attrs: Value = serde_json::from_str(&text).map_err(|_| ApiError::invalid_param("attributes"))?;
            precheck(&attrs)?;
            attributes = Some(attrs);
            continue;
        }
        let Some(attrs) = attributes.take() else {
            return Err(ApiError::bad_request(
                "metadata_after_file_contents",
                "Metadata must be sent before file contents in the multipart body",
            ));
        };
        let mut writer = HashingWriter::create(state.store.blobs().temp_path()).await?;
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            state.stats.received(chunk.len() as u64);
            writer.write(&chunk).await?;
        }
        let (tmp, blob, _) = writer.finish().await?;
        if let Some(expected) = header(headers, "content-md5") {
            if !expected.eq_ignore_ascii_case(&blob.sha1) {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(ApiError::bad_request(
                    "bad_digest",
                    "The specified content-md5 did not match what was received",
                ));
            }
        }
        state.store.blobs().adopt(&tmp, &blob)?;
        return Ok(Received { attributes: attrs, blob });
    }
    Err(ApiError::bad_request("bad_request", "The multipart body has no file part"))
}

pub async fn upload_new(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    q: Params,
    headers: HeaderMap,
    multipart: Multipart,
) -> ApiResult<Response> {
    let precheck = |attrs: &Value| -> ApiResult<()> {
        let name = str_field(attrs, "name")?.ok_or_else(|| ApiError::invalid_param("name"))?;
        let parent = parent_id(attrs)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
        let parent = writable_folder(&s, &v, parent)?;
        Ok(s.store.check_new_file(parent.id, name, 0)?)
    };
    let got = receive(&s, multipart, &headers, precheck).await?;
    let a = &got.attributes;
    let parent = writable_folder(&s, &v, parent_id(a)?.unwrap_or_default())?;
    let file = s.store.create_file(
        &v.user.id,
        NewFile {
            parent_id: parent.id,
            name: str_field(a, "name")?.unwrap_or_default().to_string(),
            blob: got.blob,
            content_created_at: time_attr(a, "content_created_at")?,
            content_modified_at: time_attr(a, "content_modified_at")?,
        },
    )?;
    Ok((StatusCode::CREATED, Json(files_body(&s, &v, &file, &q)?)).into_response())
}

pub async fn upload_version(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    q: Params,
    headers: HeaderMap,
    multipart: Multipart,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let if_match = header(&headers, "if-match");
    let precheck = |attrs: &Value| -> ApiResult<()> {
        let file = writable_file(&s, &v, id)?;
        s.store.check_new_version(&v.user.id, file.id, if_match.as_deref(), str_field(attrs, "name")?, 0)?;
        Ok(())
    };
    let got = receive(&s, multipart, &headers, precheck).await?;
    let a = &got.attributes;
    let id = writable_file(&s, &v, id)?.id;
    let file = s.store.new_version(
        &v.user.id,
        id,
        if_match.as_deref(),
        str_field(a, "name")?.map(str::to_string),
        got.blob,
        time_attr(a, "content_modified_at")?,
    )?;
    Ok((StatusCode::OK, Json(files_body(&s, &v, &file, &q)?)).into_response())
}

fn size_field(body: &Value) -> ApiResult<i64> {
    match body.get("size") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => json_id(v).filter(|n| *n >= 0).ok_or_else(|| ApiError::invalid_param("size")),
    }
}

fn upload_url(state: &AppState) -> Value {
    json!({"upload_url": format!("{}/files/content", state.upload_url()), "upload_token": null})
}

/// `OPTIONS /2.0/files/content`: would this new file be accepted?
pub async fn preflight(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = json_body(&body)?;
    let name = str_field(&body, "name")?.ok_or_else(|| ApiError::invalid_param("name"))?;
    let parent = parent_id(&body)?.ok_or_else(|| ApiError::invalid_param("parent"))?;
    let parent = writable_folder(&s, &v, parent)?;
    s.store.check_new_file(parent.id, name, size_field(&body)?)?;
    Ok(Json(upload_url(&s)))
}

/// `OPTIONS /2.0/files/{id}/content`: would this new version be accepted?
pub async fn preflight_version(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = json_body(&body)?;
    let file = writable_file(&s, &v, parse_id(&id)?)?;
    s.store.check_new_version(&v.user.id, file.id, None, str_field(&body, "name")?, size_field(&body)?)?;
    Ok(Json(upload_url(&s)))
}
