//! The accept loop. Each connection is served by hyper directly (not `axum::serve`) so that an
//! injected `reset` fault can drop the connection without any response, the way a failing
//! network or load balancer does; other faults (429/5xx, slow) are answered here before routing.

use super::faults::Fault;
use super::AppState;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
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
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let router = router.clone();
                let state = state.clone();
                async move { handle(state, router, req).await }
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
    req: hyper::Request<Incoming>,
) -> Result<axum::response::Response, InjectedReset> {
    let mut reset_after = false;
    if !req.uri().path().starts_with("/_emulator") {
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
    }
    let resp: Result<_, Infallible> = router.oneshot(req.map(axum::body::Body::new)).await;
    let resp = resp.unwrap_or_else(|never| match never {});
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
