//! The accept loop. Each connection is served by hyper directly (not `axum::serve`) so that an
//! injected `reset` fault can drop the connection without any response, the way a failing
//! network or load balancer does; other faults (429/5xx, slow) are answered here before routing.
//! The network conditions apply here too: every response but the `/_emulator` ones waits out
//! the latency before its first byte, and bodies both ways are paced per connection.

use super::faults::Fault;
use super::network::{Paced, Pacer};
use super::AppState;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::task::JoinSet;
use tower::ServiceExt;

#[derive(Debug, thiserror::Error)]
#[error("connection reset by fault injection")]
struct InjectedReset;

pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let router = super::routes::router(state.clone());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, _) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let state = state.clone();
        let pacer = Arc::new(Pacer::default());
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let router = router.clone();
                let state = state.clone();
                let pacer = pacer.clone();
                async move { handle(state, router, pacer, req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

async fn handle(
    state: AppState,
    router: axum::Router,
    pacer: Arc<Pacer>,
    req: hyper::Request<Incoming>,
) -> Result<axum::response::Response, InjectedReset> {
    let req = without_trailing_slash(req);
    if req.uri().path().starts_with("/_emulator") {
        return Ok(route(router, req.map(axum::body::Body::new)).await);
    }
    let resp = answer(&state, router, req.map(|b| paced(&state, &pacer, b))).await?;
    let delay = state.network.response_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(resp.map(|b| paced(&state, &pacer, b)))
}

/// `body`, paced on this connection when a bandwidth is set.
fn paced<B>(state: &AppState, pacer: &Arc<Pacer>, body: B) -> axum::body::Body
where
    B: hyper::body::Body<Data = axum::body::Bytes> + Unpin + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    match state.network.spec().bandwidth {
        Some(_) => axum::body::Body::new(Paced::new(body, state.clone(), pacer.clone())),
        None => axum::body::Body::new(body),
    }
}

/// Box serves `/2.0/folders/0/` as `/2.0/folders/0`.
fn without_trailing_slash<B>(mut req: hyper::Request<B>) -> hyper::Request<B> {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let mut uri = path.trim_end_matches('/').to_string();
        if uri.is_empty() {
            uri.push('/');
        }
        if let Some(query) = req.uri().query() {
            uri.push('?');
            uri.push_str(query);
        }
        if let Ok(uri) = uri.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

async fn route(router: axum::Router, req: axum::extract::Request) -> axum::response::Response {
    let resp: Result<_, Infallible> = router.oneshot(req).await;
    resp.unwrap_or_else(|never| match never {})
}

/// The response to an API request: an injected fault, or what the routes answer.
async fn answer(
    state: &AppState,
    router: axum::Router,
    req: axum::extract::Request,
) -> Result<axum::response::Response, InjectedReset> {
    let mut reset_after = false;
    match state.faults.decide() {
        Fault::None => {}
        Fault::ResetAfter => reset_after = true,
        Fault::Reset => {
            state.stats.fault("reset");
            return Err(InjectedReset);
        }
        Fault::Status(code) => {
            state.stats.fault(&code.to_string());
            return Ok(injected_status(code, state.faults.spec().retry_after));
        }
        Fault::Slow(delay) => {
            state.stats.fault("slow");
            tokio::time::sleep(delay).await;
        }
    }
    let resp = route(router, req).await;
    if reset_after {
        state.stats.fault("reset_after");
        return Err(InjectedReset);
    }
    Ok(resp)
}

fn injected_status(code: u16, retry_after: u64) -> axum::response::Response {
    use super::error::ApiError;
    use axum::http::StatusCode;
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let err = match code {
        429 => ApiError::too_many_requests(retry_after),
        503 => ApiError::new(status, "unavailable", "Unavailable")
            .with_header(axum::http::header::RETRY_AFTER, retry_after.to_string()),
        500 => ApiError::new(status, "internal_server_error", "Internal Server Error"),
        _ => ApiError::new(status, "injected_fault", format!("Injected fault {code}")),
    };
    err.into_response()
}
