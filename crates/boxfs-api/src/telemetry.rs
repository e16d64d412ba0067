//! What the client records about its traffic, through the `metrics` facade (no exporter here:
//! the process that installs one decides where the numbers go; without one every call is a
//! no-op). Series, all counters:
//! - `boxfs_api_requests_total{route, status}`: every attempt's answer, `route` the method and
//!   a path template with ids replaced ([`route`]), `status` the HTTP code or `network_error`;
//! - `boxfs_api_throttled_total`: answers 429;
//! - `boxfs_api_retries_total`: attempts after the first of a call (401 renewals excluded) or
//!   of a download from the download host;
//! - `boxfs_api_uploaded_bytes_total`: request bodies sent to the upload host and answered
//!   (file contents with their multipart framing; a retried attempt counts again);
//! - `boxfs_api_downloaded_bytes_total`: file content received from the download host.
//!
//! Invariant: labels come from a bounded set whatever the URLs: a path segment that is not one
//! of Box's words ([`WORDS`]) becomes `:id`, and the download host's and the long-poll's
//! opaque URLs are one route each. Placeholders carry no braces (`:id`, not `{id}`): simple
//! Prometheus text parsers end a label value at the first `}`.

use reqwest::{RequestBuilder, Response};

/// Path segments of Box's API kept as they are; any other segment is an id.
const WORDS: &[&str] = &[
    "folders",
    "files",
    "items",
    "content",
    "copy",
    "trash",
    "versions",
    "current",
    "promote",
    "metadata",
    "global",
    "properties",
    "users",
    "me",
    "events",
    "upload_sessions",
    "commit",
    "parts",
    "web_links",
    "shared_items",
    "search",
    "collaborations",
    "oauth2",
    "token",
    "revoke",
    "thumbnail.png",
    "thumbnail.jpg",
];

/// Most segments a template keeps (Box's deepest path has six); deeper ones end in `...`.
const MAX_SEGMENTS: usize = 8;

/// The route of a request to the API or upload host: `METHOD /path/template`, the API version
/// prefix (`/2.0`, `/api/2.0`) and the query dropped, every id replaced by `:id`.
pub fn route(method: &str, url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut segments = path.split('/').filter(|s| !s.is_empty()).peekable();
    if segments.peek() == Some(&"api") {
        segments.next();
    }
    if segments.peek() == Some(&"2.0") {
        segments.next();
    }
    let mut template = String::from(method);
    template.push(' ');
    for (i, segment) in segments.enumerate() {
        if i == MAX_SEGMENTS {
            template.push_str("/...");
            break;
        }
        template.push('/');
        template.push_str(WORDS.iter().find(|w| **w == segment).copied().unwrap_or(":id"));
    }
    if template.ends_with(' ') {
        template.push('/');
    }
    template
}

/// Gives the series their help texts and makes the counters that may stay at 0 visible.
pub fn describe() {
    use metrics::{describe_counter, Unit};
    describe_counter!("boxfs_api_requests_total", "Box API requests (each attempt) by route and HTTP status");
    describe_counter!("boxfs_api_throttled_total", "Box API answers 429 (rate limited)");
    describe_counter!("boxfs_api_retries_total", "Box API attempts after the first of a call or download");
    describe_counter!("boxfs_api_uploaded_bytes_total", Unit::Bytes, "request bodies sent to the upload host");
    describe_counter!("boxfs_api_downloaded_bytes_total", Unit::Bytes, "file content received from the download host");
    for zero in ["boxfs_api_throttled_total", "boxfs_api_retries_total"] {
        metrics::counter!(zero).increment(0);
    }
}

/// Sends one attempt of a call to `method url`, recording its answer (or the network error)
/// and the bytes of a body sent to the upload host.
pub(crate) async fn send(req: RequestBuilder, method: &str, url: &str) -> reqwest::Result<Response> {
    let (client, built) = req.build_split();
    let request = built?;
    let upload_bytes = is_upload_host(url).then(|| body_len(&request)).flatten();
    let result = client.execute(request).await;
    record_answer(route(method, url), &result);
    if let (Ok(_), Some(n)) = (&result, upload_bytes) {
        metrics::counter!("boxfs_api_uploaded_bytes_total").increment(n);
    }
    result
}

/// Records the download host's answer to one ranged GET (its URL is opaque: one route).
pub(crate) fn download_answered(result: &reqwest::Result<Response>) {
    record_answer("GET :download_url".to_string(), result);
}

/// Records the long-poll server's answer to one wait (its URL is opaque: one route).
pub(crate) fn longpoll_answered(result: &reqwest::Result<Response>) {
    record_answer("GET :realtime_url".to_string(), result);
}

/// Counts one attempt after the first of a call or of a download (see `Counters::retried`).
pub(crate) fn retried() {
    metrics::counter!("boxfs_api_retries_total").increment(1);
}

/// Counts one answer 429 (see `Counters::throttled`).
pub(crate) fn throttled() {
    metrics::counter!("boxfs_api_throttled_total").increment(1);
}

/// Counts `n` bytes of file content received.
pub(crate) fn downloaded(n: usize) {
    metrics::counter!("boxfs_api_downloaded_bytes_total").increment(n as u64);
}

fn record_answer(route: String, result: &reqwest::Result<Response>) {
    let status = match result {
        Ok(resp) => resp.status().as_u16().to_string(),
        Err(_) => "network_error".to_string(),
    };
    metrics::counter!("boxfs_api_requests_total", "route" => route, "status" => status).increment(1);
}

/// Box's upload host serves `/api/2.0/...` (the API host `/2.0/...`), so does the emulator.
fn is_upload_host(url: &str) -> bool {
    url.split_once("://").is_some_and(|(_, rest)| rest.find('/').is_some_and(|i| rest[i..].starts_with("/api/2.0/")))
}

/// The body's length: its bytes, or the Content-Length set for a multipart form.
fn body_len(request: &reqwest::Request) -> Option<u64> {
    let declared = request.headers().get(reqwest::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    declared.or_else(|| request.body().and_then(|b| b.as_bytes()).map(|b| b.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn routes_replace_ids_and_drop_prefixes_and_queries() {
        let api = "https://api.box.com/2.0";
        let up = "https://upload.box.com/api/2.0";
        let cases = [
            ("GET", format!("{api}/folders/12345/items?usemarker=true&limit=1000"), "GET /folders/:id/items"),
            ("GET", format!("{api}/files/987?fields=name,size"), "GET /files/:id"),
            ("GET", format!("{api}/files/987/content?version=55"), "GET /files/:id/content"),
            ("POST", format!("{up}/files/content"), "POST /files/content"),
            ("POST", format!("{up}/files/4/content"), "POST /files/:id/content"),
            (
                "PUT",
                format!("{up}/files/upload_sessions/F971964745A5CD0C001BBE4E58196BFD"),
                "PUT /files/upload_sessions/:id",
            ),
            ("POST", format!("{up}/files/upload_sessions/ABC/commit"), "POST /files/upload_sessions/:id/commit"),
            ("PUT", format!("{api}/files/1/metadata/global/properties"), "PUT /files/:id/metadata/global/properties"),
            ("GET", format!("{api}/users/me"), "GET /users/me"),
            ("OPTIONS", format!("{api}/events"), "OPTIONS /events"),
            ("GET", "http://127.0.0.1:4242/2.0/folders/0/items".to_string(), "GET /folders/:id/items"),
            ("GET", "http://127.0.0.1:4242/2.0".to_string(), "GET /"),
            // Unknown words are ids too: the label set stays bounded.
            ("GET", format!("{api}/a/b/c/d/e/f/g/h/i/j"), "GET /:id/:id/:id/:id/:id/:id/:id/:id/..."),
            ("DELETE", format!("{api}/folders/77?recursive=true"), "DELETE /folders/:id"),
        ];
        for (method, url, want) in cases {
            assert_eq!(route(method, &url), want, "{method} {url}");
        }
    }
}
