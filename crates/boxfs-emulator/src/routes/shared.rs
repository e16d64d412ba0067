//! Shared links from the outside: `GET /2.0/shared_items` (the item a link names, from the
//! `boxapi: shared_link=URL[&shared_link_password=PW]` header), and the link URLs themselves,
//! served without a token as Box serves them to anyone holding the link: the link's page
//! (`/s/{token}`, `/v/{vanity_name}`) and the file's download URL (`/shared/static/{token}.ext`,
//! open links that allow downloads and have no password).

use super::items::not_modified;
use super::{header, render_seen, repr, Params};
use crate::error::{ApiError, ApiResult};
use crate::store::render::{self, Repr};
use crate::store::{Access, Kind, LinkUse, Perms, Viewer};
use crate::AppState;
use axum::extract::{Extension, OriginalUri, Path, State};
use axum::http::{header as h, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

/// The link and password a `boxapi` header carries.
fn boxapi(headers: &HeaderMap) -> ApiResult<(String, Option<String>)> {
    let value = header(headers, "boxapi")
        .ok_or_else(|| ApiError::bad_request("bad_request", "The boxapi header with shared_link=URL is required"))?;
    let mut link = None;
    let mut password = None;
    for (k, v) in url::form_urlencoded::parse(value.as_bytes()) {
        match k.as_ref() {
            "shared_link" => link = Some(v.into_owned()),
            "shared_link_password" => password = Some(v.into_owned()),
            _ => {}
        }
    }
    let link = link.ok_or_else(|| ApiError::bad_request("bad_request", "The boxapi header has no shared_link"))?;
    Ok((link, password))
}

/// The item a shared link names, as the viewer sees it: through their own rights when they
/// see it anyway, else through the link's (no path above it).
pub async fn shared_item(
    State(s): State<AppState>,
    Extension(v): Extension<Viewer>,
    q: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (link, password) = boxapi(&headers)?;
    let (item, shared) = s.store.resolve_shared_link(&link, password.as_deref())?;
    if not_modified(&headers, &item) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let access = s.store.access(&v, &item).unwrap_or(Access {
        perms: Perms { list: true, preview: true, download: shared.can_download, ..Perms::default() },
        path: Vec::new(),
    });
    Ok(Json(render_seen(&s, &v, &item, &access, &repr(&q, Repr::Standard))?).into_response())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page a shared link opens: what the item is and, for a downloadable file, its link.
pub async fn link_page(State(s): State<AppState>, OriginalUri(uri): OriginalUri) -> ApiResult<Response> {
    let url = format!("{}{}", s.base_url(), uri.path());
    let (item, link) = s.store.resolve_shared_link(&url, None).map_err(|e| match e {
        crate::store::StoreError::SharedLinkPassword => ApiError::new(
            StatusCode::FORBIDDEN,
            "incorrect_shared_item_password",
            "This shared link needs a password: ask for the item through GET /2.0/shared_items",
        ),
        other => other.into(),
    })?;
    s.store.count_shared_link_use(item.id, LinkUse::Preview)?;
    let download = if item.kind == Kind::File && link.can_download && link.access == "open" {
        let href = render::shared_download_url(&item, &link, s.base_url()).unwrap_or_default();
        format!("<p><a href=\"{}\">Download</a></p>", escape(&href))
    } else {
        String::new()
    };
    Ok(Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{name}</title></head>\
         <body><h1>{name}</h1><p>A {kind} shared from the boxfs emulator.</p>{download}</body></html>",
        name = escape(&item.name),
        kind = item.kind.as_str().replace('_', " "),
    ))
    .into_response())
}

/// A shared file's download URL: the bytes (through the download host) for an open link that
/// allows downloads and has no password.
pub async fn static_download(State(s): State<AppState>, Path(file): Path<String>) -> ApiResult<Response> {
    let url = format!("{}/shared/static/{file}", s.base_url());
    let forbidden = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "access_denied_insufficient_permissions",
            "This shared link does not allow downloads without signing in",
        )
    };
    let (item, link) = s.store.resolve_shared_link(&url, None).map_err(|e| match e {
        crate::store::StoreError::SharedLinkPassword => forbidden(),
        other => other.into(),
    })?;
    if item.kind != Kind::File {
        return Err(ApiError::not_found());
    }
    if link.access != "open" || !link.can_download {
        return Err(forbidden());
    }
    s.store.check_download_allowed("", &item)?;
    s.store.count_shared_link_use(item.id, LinkUse::Download)?;
    let mut resp = super::content::redirect_to_bytes(&s, item.sha1.clone().unwrap_or_default(), item.size, &item.name);
    resp.headers_mut().insert(h::CACHE_CONTROL, h::HeaderValue::from_static("no-store"));
    Ok(resp)
}
