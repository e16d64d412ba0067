//! The emulator's routes and the middleware around them: bearer-token authentication with
//! Box's 401 shape, the `As-User` header (for the admin and the service account), the
//! [`Viewer`] every route acts for, `--rate-limits box`, per-route request counters and the
//! test-only response observer; and what every route shares: lenient parameters (booleans in
//! any case), `fields`, item ids (`0` is the viewer's root) and rendering items as the viewer
//! sees them, with their extras. Folder listing pages are kept while nothing changes
//! ([`PageCache`]).

mod admin;
mod collabs;
mod content;
mod events;
mod items;
mod metadata;
mod oauth;
mod page_cache;
mod search;
mod sessions;
mod shared;
mod upload;
mod users;

pub use content::DownloadTickets;
pub use page_cache::PageCache;

use super::error::{ApiError, ApiResult};
use super::store::render::{self, Repr};
use super::store::{Access, Ancestor, Item, Kind, TokenGrant, User, Viewer, Wanted};
use super::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;

pub type Params = axum::extract::Query<HashMap<String, String>>;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/2.0/users/me", get(users::me))
        .route("/2.0/users", get(users::list).post(users::create))
        .route("/2.0/users/{id}", get(users::get))
        .route("/2.0/collaborations", get(collabs::pending).post(collabs::create))
        .route("/2.0/collaborations/{id}", get(collabs::get).put(collabs::update).delete(collabs::delete))
        .route("/2.0/folders/{id}/collaborations", get(collabs::of_folder))
        .route("/2.0/files/{id}/collaborations", get(collabs::of_file))
        .route("/2.0/folders", post(items::create_folder))
        .route("/2.0/folders/trash/items", get(items::trash_items))
        .route(
            "/2.0/folders/{id}",
            get(items::get_folder).put(items::update_folder).delete(items::delete_folder).post(items::restore_folder),
        )
        .route("/2.0/folders/{id}/items", get(items::folder_items))
        .route("/2.0/folders/{id}/copy", post(items::copy_folder))
        .route("/2.0/folders/{id}/trash", get(items::get_trashed_folder).delete(items::purge_folder))
        .route(
            "/2.0/files/{id}",
            get(items::get_file).put(items::update_file).delete(items::delete_file).post(items::restore_file),
        )
        .route("/2.0/files/{id}/copy", post(items::copy_file))
        .route("/2.0/files/{id}/trash", get(items::get_trashed_file).delete(items::purge_file))
        .route("/2.0/files/{id}/versions", get(items::file_versions))
        .route("/2.0/files/{id}/versions/current", post(items::promote_version))
        .route(
            "/2.0/files/{id}/versions/{version}",
            get(items::get_version).delete(items::delete_version).put(items::restore_version),
        )
        .route("/2.0/files/{id}/metadata", get(metadata::list_file))
        .route(
            "/2.0/files/{id}/metadata/{scope}/{template}",
            get(metadata::get_file)
                .post(metadata::create_file)
                .put(metadata::update_file)
                .delete(metadata::delete_file),
        )
        .route("/2.0/folders/{id}/metadata", get(metadata::list_folder))
        .route(
            "/2.0/folders/{id}/metadata/{scope}/{template}",
            get(metadata::get_folder)
                .post(metadata::create_folder)
                .put(metadata::update_folder)
                .delete(metadata::delete_folder),
        )
        .route("/2.0/search", get(search::search))
        .route("/2.0/shared_items", get(shared::shared_item))
        .route("/2.0/files/{id}/content", get(content::download).options(upload::preflight_version))
        .route("/2.0/files/content", axum::routing::options(upload::preflight))
        .route("/2.0/web_links", post(items::create_web_link))
        .route(
            "/2.0/web_links/{id}",
            get(items::get_web_link)
                .put(items::update_web_link)
                .delete(items::delete_web_link)
                .post(items::restore_web_link),
        )
        .route("/2.0/web_links/{id}/trash", get(items::get_trashed_web_link).delete(items::purge_web_link))
        .route("/2.0/events", get(events::list).options(events::realtime_servers))
        .route("/api/2.0/files/content", post(upload::upload_new))
        .route("/api/2.0/files/{id}/content", post(upload::upload_version))
        .route("/api/2.0/files/upload_sessions", post(sessions::create_for_new))
        .route("/api/2.0/files/{id}/upload_sessions", post(sessions::create_for_version))
        .route(
            "/api/2.0/files/upload_sessions/{sid}",
            put(sessions::upload_part).get(sessions::status).delete(sessions::abort),
        )
        .route("/api/2.0/files/upload_sessions/{sid}/parts", get(sessions::list_parts))
        .route("/api/2.0/files/upload_sessions/{sid}/commit", post(sessions::commit))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let open = Router::new()
        .route("/oauth2/authorize", get(oauth::authorize))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route("/d/1/{ticket}/download", get(content::serve_download))
        .route("/subscribe", get(events::long_poll))
        .route("/s/{token}", get(shared::link_page))
        .route("/v/{vanity}", get(shared::link_page))
        .route("/shared/static/{file}", get(shared::static_download));
    let admin = Router::new()
        .route("/_emulator/stats", get(admin::stats).delete(admin::reset_stats))
        .route("/_emulator/faults", put(admin::set_faults))
        .route("/_emulator/network", get(admin::network).put(admin::set_network))
        .route("/_emulator/expire-tokens", post(admin::expire_tokens))
        .route("/_emulator/public-keys", post(admin::add_public_key));
    api.merge(open)
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .merge(admin)
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Counts every routed request under `METHOD /route/{template}` with its final status, and
/// shows the response to the test observer when there is one.
async fn count(State(state): State<AppState>, matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let template = matched.as_ref().map_or("?", |m| m.as_str()).to_string();
    let resp = next.run(req).await;
    state.stats.request(format!("{method} {template}"), resp.status().as_u16());
    match &state.config.observer {
        Some(observer) => observe(observer, method, template, resp).await,
        None => resp,
    }
}

async fn observe(observer: &super::ResponseObserver, method: String, route: String, resp: Response) -> Response {
    let content_type = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let is_json = content_type.is_some_and(|t| t.starts_with("application/json"));
    let (parts, body) = resp.into_parts();
    let (json_body, body) = if is_json {
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => (Some(bytes.clone()), axum::body::Body::from(bytes)),
            Err(e) => {
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_server_error", e.to_string())
                    .into_response()
            }
        }
    } else {
        (None, body)
    };
    let status = parts.status.as_u16();
    (observer.0)(super::ObservedResponse { method, route, status, json_body });
    Response::from_parts(parts, body)
}

/// Checks the bearer token (Box answers 401 with `WWW-Authenticate` and an empty body) and
/// `As-User`, then the rate limits when they are on (per user acted for, as Box counts them);
/// the request goes on with the [`Viewer`] it acts for.
async fn authenticate(State(state): State<AppState>, params: Params, mut req: Request, next: Next) -> Response {
    let token = bearer(req.headers()).or_else(|| params.get("access_token").cloned());
    let grant = match token {
        Some(t) => state.store.check_access_token(&t).unwrap_or(TokenGrant::Unknown),
        None => TokenGrant::Unknown,
    };
    let challenge = match grant {
        TokenGrant::Valid(_) => None,
        TokenGrant::Expired => Some(
            r#"Bearer realm="Service", error="invalid_token", error_description="The access token provided has expired.""#,
        ),
        TokenGrant::Unknown => Some(
            r#"Bearer realm="Service", error="invalid_token", error_description="The access token provided is invalid.""#,
        ),
    };
    if let Some(challenge) = challenge {
        let refused = (StatusCode::UNAUTHORIZED, [(axum::http::header::WWW_AUTHENTICATE, challenge)]);
        return refuse(req, refused.into_response()).await;
    }
    let TokenGrant::Valid(user_id) = grant else { unreachable!("refused above") };
    let viewer = match acting_viewer(&state, &user_id, header(req.headers(), "as-user")) {
        Ok(Some(v)) => v,
        Ok(None) => {
            let challenge = r#"Bearer realm="Service", error="insufficient_scope", error_description="The request requires higher privileges than provided by the access token.""#;
            let refused = (StatusCode::FORBIDDEN, [(axum::http::header::WWW_AUTHENTICATE, challenge)]);
            return refuse(req, refused.into_response()).await;
        }
        Err(e) => return refuse(req, e.into_response()).await,
    };
    if let Some(limiter) = &state.limiter {
        if let Err(wait) = limiter.take(&viewer.user.id, is_upload(req.method(), req.uri().path())) {
            state.stats.rate_limited();
            return refuse(req, ApiError::too_many_requests(wait).into_response()).await;
        }
    }
    req.extensions_mut().insert(viewer);
    next.run(req).await
}

/// The viewer a request acts for: the token's user, or the `As-User` one when the token's user
/// may act for others (the admin, the service account). `None` for anyone else, or a user who
/// does not exist: Box refuses those as a token without that scope (403, empty body).
fn acting_viewer(state: &AppState, token_user: &str, as_user: Option<String>) -> ApiResult<Option<Viewer>> {
    let Some(viewer) = state.store.viewer(token_user)? else { return Ok(None) };
    match as_user.filter(|id| !id.is_empty()) {
        None => Ok(Some(viewer)),
        Some(_) if !viewer.user.role.is_privileged() => Ok(None),
        Some(id) => Ok(state.store.viewer(&id)?),
    }
}

/// The most of a refused request's body that is read and discarded, so that a client still
/// sending (an upload) sees the error response instead of a reset.
pub(super) const DRAIN_LIMIT: usize = 256 * 1024 * 1024;

/// Reads what is left of a body and drops it, up to `DRAIN_LIMIT`.
pub(super) async fn drain(stream: &mut axum::body::BodyDataStream) {
    let mut read = 0;
    while let Some(Ok(chunk)) = futures_util::StreamExt::next(stream).await {
        read += chunk.len();
        if read > DRAIN_LIMIT {
            break;
        }
    }
}

/// Answers `response` once the request's body is read (see `drain`).
async fn refuse(req: Request, response: Response) -> Response {
    drain(&mut req.into_body().into_data_stream()).await;
    response
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Requests that count against Box's upload limit.
fn is_upload(method: &Method, path: &str) -> bool {
    method == Method::POST
        && path.starts_with("/api/2.0/files/")
        && (path.ends_with("/content") || path.ends_with("/upload_sessions"))
}

/// A path id; anything that is not a number is simply not found. (`0` is resolved to the
/// viewer's root by the store.)
fn parse_id(s: &str) -> ApiResult<i64> {
    s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(ApiError::not_found)
}

/// How rendering sees the enterprise's users, for the viewer's answers.
fn ctx<'a>(state: &'a AppState, viewer: &Viewer, users: &'a [User]) -> render::Ctx<'a> {
    render::Ctx { base_url: state.base_url(), viewer_root: viewer.user.root_id, users }
}

/// A JSON request body (`{}` when empty).
fn json_body(bytes: &Bytes) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request("bad_request", format!("Invalid JSON body: {e}")))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string())
}

/// An id given as a JSON string (Box's form) or number.
fn json_id(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// `parent.id` of a request body, if present.
fn parent_id(body: &Value) -> ApiResult<Option<i64>> {
    match body.get("parent") {
        None | Some(Value::Null) => Ok(None),
        Some(p) => json_id(&p["id"]).map(Some).ok_or_else(|| ApiError::invalid_param("parent")),
    }
}

fn str_field<'a>(body: &'a Value, name: &str) -> ApiResult<Option<&'a str>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid_param(name)),
    }
}

/// The representation `fields=` asks for, else `default`.
fn repr(q: &Params, default: Repr) -> Repr {
    Repr::from_query(q.get("fields").map(String::as_str), default)
}

/// A boolean query parameter; Box takes `true`/`false` in any case (`recursive=True`).
fn bool_param(q: &Params, name: &str) -> ApiResult<Option<bool>> {
    match q.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid_param(name)),
    }
}

/// Refuses body fields Box documents for this call that the emulator does not model, so that
/// a client never believes they were applied.
fn refuse_unmodelled(body: &Value, fields: &[&str]) -> ApiResult<()> {
    match fields.iter().find(|f| body.get(**f).is_some()) {
        Some(f) => Err(ApiError::bad_request("bad_request", format!("'{f}' is not supported by the boxfs emulator"))),
        None => Ok(()),
    }
}

/// `body` with `entries` moved in as its `entries` array. `json!` would copy them (it
/// serializes what it is given into a new tree).
fn with_entries(mut body: Value, entries: Vec<Value>) -> Value {
    body["entries"] = Value::Array(entries);
    body
}

/// A JSON body written as bytes (a listing page), answered as it is.
pub(super) struct JsonBytes(Bytes);

impl JsonBytes {
    /// `head`'s fields (an object) with an `entries` array that `entries` writes into the body;
    /// with what `entries` returns.
    fn with_entries<T>(head: &Value, entries: impl FnOnce(&mut Vec<u8>) -> ApiResult<T>) -> ApiResult<(JsonBytes, T)> {
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(b"{\"entries\":[");
        let written = entries(&mut out)?;
        out.push(b']');
        let head = serde_json::to_vec(head).expect("a JSON value serializes");
        if head.len() > 2 {
            out.push(b',');
            out.extend_from_slice(&head[1..head.len() - 1]);
        }
        out.push(b'}');
        out.shrink_to_fit(); // A page may be kept, and what is kept is counted by its length.
        Ok((JsonBytes(out.into()), written))
    }

    /// The body (shared, not copied).
    fn bytes(&self) -> Bytes {
        self.0.clone()
    }
}

impl From<Bytes> for JsonBytes {
    fn from(body: Bytes) -> JsonBytes {
        JsonBytes(body)
    }
}

impl IntoResponse for JsonBytes {
    fn into_response(self) -> Response {
        ([(CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

/// Renders an item as `viewer` sees it (not found when they do not), with its
/// `path_collection` and the extras `repr` shows.
fn render_item(state: &AppState, viewer: &Viewer, item: &Item, repr: &Repr) -> ApiResult<Value> {
    let access = state.store.access(viewer, item)?;
    render_seen(state, viewer, item, &access, repr)
}

/// Renders an item whose [`Access`] for `viewer` is known.
fn render_seen(state: &AppState, viewer: &Viewer, item: &Item, access: &Access, repr: &Repr) -> ApiResult<Value> {
    let extras = state.store.extras_of(item, repr.wanted())?;
    let users = state.store.users()?;
    let layout = render::Layout::of(repr);
    let ctx = ctx(state, viewer, &users);
    let source = render::Source { item, path: &access.path, perms: access.perms, ctx: &ctx, extras: &extras };
    Ok(source.value(&layout))
}

/// Renders a page of items `viewer` sees (see [`each_seen`]).
fn render_items(
    state: &AppState,
    viewer: &Viewer,
    items: &[Item],
    folder: Option<(&Item, &Access)>,
    repr: &Repr,
) -> ApiResult<Vec<Value>> {
    let layout = render::Layout::of(repr);
    let mut out = Vec::with_capacity(items.len());
    each_seen(state, viewer, items, folder, repr.wanted(), |item| out.push(item.value(&layout)))?;
    Ok(out)
}

/// Writes a page of items `viewer` sees (see [`each_seen`]) as the elements of a JSON array,
/// straight into `out`: a listing page holds a thousand items. Answers when the clock alone
/// changes what was written (see [`each_seen`]).
fn write_items(
    out: &mut Vec<u8>,
    state: &AppState,
    viewer: &Viewer,
    items: &[Item],
    folder: Option<(&Item, &Access)>,
    repr: &Repr,
) -> ApiResult<Option<i64>> {
    let layout = render::Layout::of(repr);
    let mut first = true;
    each_seen(state, viewer, items, folder, repr.wanted(), |item| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        item.write(out, &layout);
    })
}

/// Calls `render` with each of `items` as `viewer` sees it ([`render::Source`]), with
/// the extras `wanted`; `folder` is their folder as the viewer sees it (its children share its
/// rights and path; what others share in the viewer's root has its own), or `None` to work out
/// each item's own. Answers the first time (unix seconds) at which the clock alone would
/// change what it rendered (a lock expiring, a shared link unshared; [`Extras::changes_at`]),
/// `None` when never: nothing else it renders depends on the clock.
fn each_seen(
    state: &AppState,
    viewer: &Viewer,
    items: &[Item],
    folder: Option<(&Item, &Access)>,
    wanted: Wanted,
    mut render: impl FnMut(&render::Source<'_>),
) -> ApiResult<Option<i64>> {
    let refs: Vec<&Item> = items.iter().collect();
    let mut extras = state.store.extras(&refs, wanted)?;
    let users = state.store.users()?;
    let ctx = ctx(state, viewer, &users);
    let children_path = folder.map(|(f, a)| {
        let mut path = a.path.clone();
        path.push(Ancestor {
            id: if f.is_root() { 0 } else { f.id },
            name: f.name.clone(),
            sequence_id: f.sequence_id,
        });
        path
    });
    let mut changes_at: Option<i64> = None;
    for it in items {
        let extras = extras.remove(&it.id).unwrap_or_default();
        changes_at = changes_at.into_iter().chain(extras.changes_at()).min();
        let own;
        let (path, perms) = match (folder, &children_path) {
            (Some((f, a)), Some(path)) if it.parent_id == Some(f.id) => (path, viewer.child_perms(a, it)),
            _ => {
                own = state.store.access(viewer, it)?;
                (&own.path, own.perms)
            }
        };
        render(&render::Source { item: it, path, perms, ctx: &ctx, extras: &extras });
    }
    Ok(changes_at)
}

/// `{total_count, entries}` (Box's `Files` shape) with one file, full unless `fields=`.
fn files_body(state: &AppState, viewer: &Viewer, item: &Item, q: &Params) -> ApiResult<Value> {
    let entry = render_item(state, viewer, item, &repr(q, Repr::Full))?;
    Ok(serde_json::json!({"total_count": 1, "entries": [entry]}))
}

/// The active item of `kind` named by the path id `id` that `viewer` sees, with how.
pub(super) fn visible(state: &AppState, viewer: &Viewer, kind: Kind, id: &str) -> ApiResult<(Item, Access)> {
    Ok(state.store.visible(viewer, kind, parse_id(id)?)?)
}

/// The folder `parent` (a body's `parent.id`) as `viewer` sees it, which must let them add to it.
pub(super) fn writable_folder(state: &AppState, viewer: &Viewer, parent: i64) -> ApiResult<Item> {
    let (folder, access) = state.store.visible(viewer, Kind::Folder, parent).map_err(|e| match e {
        super::store::StoreError::Trashed | super::store::StoreError::NotFound { .. } => {
            super::store::StoreError::NotFound { what: "parent folder" }
        }
        other => other,
    })?;
    require(access.perms.upload)?;
    Ok(folder)
}

/// The file `id` as `viewer` sees it, which must let them upload new versions of it.
pub(super) fn writable_file(state: &AppState, viewer: &Viewer, id: i64) -> ApiResult<Item> {
    let (file, access) = state.store.visible(viewer, Kind::File, id)?;
    require(access.perms.edit)?;
    Ok(file)
}

/// `Err(403)` unless `allowed`.
pub(super) fn require(allowed: bool) -> ApiResult<()> {
    Ok(super::store::Perms::require(allowed)?)
}
