//! Downloads: `GET /2.0/files/{id}/content` answers 302 to a short-lived URL on the download
//! host (`/d/1/{ticket}/download`, no auth there, like `dl.boxcloud.com`), which serves the
//! blob with single `Range` support (206 + `Content-Range`, 416 out of range).

use super::{require, visible, Params};
use crate::error::{ApiError, ApiResult};
use crate::store::{Kind, Viewer};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::io::SeekFrom;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How long a download URL stays valid (Box: about 15 minutes).
const TICKET_LIFETIME: Duration = Duration::from_secs(15 * 60);

struct Ticket {
    sha1: String,
    size: i64,
    name: String,
    expires: Instant,
}

#[derive(Default)]
pub struct DownloadTickets(Mutex<HashMap<String, Ticket>>);

impl DownloadTickets {
    fn issue(&self, ticket: Ticket) -> String {
        let key = crate::store::random_hex(20).to_lowercase();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, t| t.expires > now);
        map.insert(key.clone(), ticket);
        key
    }

    fn get(&self, key: &str) -> Option<(String, i64, String)> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).filter(|t| t.expires > Instant::now()).map(|t| (t.sha1.clone(), t.size, t.name.clone()))
    }
}

pub async fn download(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    let (file, access) = visible(&s, &v, Kind::File, &id)?;
    require(access.perms.download)?;
    s.store.check_download_allowed(&v.user.id, &file)?;
    if let Some(retry) = s.faults.accepted_202(true) {
        s.stats.fault("download202");
        return Ok((StatusCode::ACCEPTED, [(header::RETRY_AFTER, retry.to_string())]).into_response());
    }
    let (sha1, size) = match q.get("version") {
        Some(v) => {
            let vid = v.parse::<i64>().map_err(|_| ApiError::invalid_param("version"))?;
            let ver = s.store.version(vid)?.filter(|ver| ver.file_id == file.id).ok_or_else(ApiError::not_found)?;
            (ver.sha1, ver.size)
        }
        None => (file.sha1.clone().unwrap_or_default(), file.size),
    };
    Ok(redirect_to_bytes(&s, sha1, size, &file.name))
}

/// A 302 to a short-lived URL on the download host that serves these bytes.
pub(super) fn redirect_to_bytes(state: &AppState, sha1: String, size: i64, name: &str) -> Response {
    let ticket =
        state.downloads.issue(Ticket { sha1, size, name: name.to_string(), expires: Instant::now() + TICKET_LIFETIME });
    let location = format!("{}/d/1/{ticket}/download", state.base_url());
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// A parsed single `Range: bytes=…` header: `(first, last)` inclusive, or unsatisfiable.
enum ByteRange {
    Full,
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(value: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full; // multiple ranges: serve the whole body, as RFC 7233 allows
    }
    let Some((a, b)) = spec.split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(first), Some(last)) if first <= last => Some((first, last.min(size.saturating_sub(1)))),
        (Some(first), None) if b.is_empty() => Some((first, size.saturating_sub(1))),
        (None, Some(suffix)) if a.is_empty() && suffix > 0 => {
            Some((size.saturating_sub(suffix), size.saturating_sub(1)))
        }
        _ => return ByteRange::Full,
    };
    match range {
        Some((first, last)) if first < size && first <= last => ByteRange::Part(first, last),
        _ => ByteRange::Unsatisfiable,
    }
}

pub async fn serve_download(
    State(s): State<AppState>,
    Path(ticket): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (sha1, size, name) = s.downloads.get(&ticket).ok_or_else(ApiError::not_found)?;
    let size = size as u64;
    let range = parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), size);
    let (status, first, len) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Part(first, last) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        ByteRange::Unsatisfiable => {
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{size}"))])
                .into_response());
        }
    };
    let mut file = tokio::fs::File::open(s.store.blobs().path(&sha1)).await?;
    file.seek(SeekFrom::Start(first)).await?;
    let state = s.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            state.stats.served(bytes.len() as u64);
        }
    });
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", name.replace('"', "")))
        .header(header::ETAG, format!("\"{sha1}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(header::CONTENT_RANGE, format!("bytes {first}-{}/{size}", first + len - 1));
    }
    resp.body(Body::from_stream(stream)).map_err(|e| ApiError::bad_request("bad_request", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(v: &str, size: u64) -> Option<(u64, u64)> {
        match parse_range(Some(v), size) {
            ByteRange::Part(a, b) => Some((a, b)),
            _ => None,
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(part("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(part("bytes=90-200", 100), Some((90, 99)));
        assert_eq!(part("bytes=95-", 100), Some((95, 99)));
        assert_eq!(part("bytes=-10", 100), Some((90, 99)));
        assert!(matches!(parse_range(Some("bytes=100-"), 100), ByteRange::Unsatisfiable));
        assert!(matches!(parse_range(Some("bytes=0-0"), 0), ByteRange::Unsatisfiable));
        assert!(matches!(parse_range(Some("items=0-1"), 10), ByteRange::Full));
        assert!(matches!(parse_range(None, 10), ByteRange::Full));
    }
}
