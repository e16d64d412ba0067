//! The one-shot OAuth callback server of `boxfs login`: listens on 127.0.0.1, waits for the
//! browser's redirect to `/callback?code=…&state=…`, checks `state`, answers the browser with a
//! short page and hands the code back. Other paths get a 404 and the wait goes on; a wrong
//! `state` or an `error` from Box ends the login.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head read from the browser.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("cannot listen on 127.0.0.1:{port}: {source} (choose another with --port)")]
    Bind { port: u16, source: std::io::Error },
    #[error("no answer from the browser within {0} seconds")]
    Timeout(u64),
    #[error("the redirect's state does not match this login (a stale or forged request); log in again")]
    StateMismatch,
    #[error("Box refused the authorization: {0}")]
    Denied(String),
    #[error("the redirect carried no authorization code")]
    NoCode,
    #[error("callback server: {0}")]
    Io(#[from] std::io::Error),
}

pub struct CallbackServer {
    listener: TcpListener,
    port: u16,
}

/// What one request to the server amounted to.
enum Outcome {
    Code(String),
    Failed(CallbackError),
    Ignored,
}

impl CallbackServer {
    /// Binds 127.0.0.1:`port` (0 = any free port).
    pub async fn bind(port: u16) -> Result<CallbackServer, CallbackError> {
        let listener =
            TcpListener::bind(("127.0.0.1", port)).await.map_err(|source| CallbackError::Bind { port, source })?;
        let port = listener.local_addr()?.port();
        Ok(CallbackServer { listener, port })
    }

    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// Serves until the callback arrives; returns the authorization code.
    pub async fn wait_for_code(self, state: &str, timeout: Duration) -> Result<String, CallbackError> {
        let serve = async {
            loop {
                let (stream, _) = self.listener.accept().await?;
                match handle(stream, state).await {
                    Outcome::Code(code) => return Ok(code),
                    Outcome::Failed(e) => return Err(e),
                    Outcome::Ignored => continue,
                }
            }
        };
        tokio::time::timeout(timeout, serve).await.map_err(|_| CallbackError::Timeout(timeout.as_secs()))?
    }
}

async fn handle(mut stream: TcpStream, state: &str) -> Outcome {
    let Some(target) = read_target(&mut stream).await else {
        return Outcome::Ignored;
    };
    let url = match url::Url::parse(&format!("http://127.0.0.1{target}")) {
        Ok(u) if u.path() == "/callback" => u,
        _ => {
            respond(&mut stream, "404 Not Found", "Not found.").await;
            return Outcome::Ignored;
        }
    };
    let param = |k: &str| url.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
    let outcome = if param("state").as_deref() != Some(state) {
        Outcome::Failed(CallbackError::StateMismatch)
    } else if let Some(error) = param("error") {
        Outcome::Failed(CallbackError::Denied(param("error_description").unwrap_or(error)))
    } else {
        param("code").filter(|c| !c.is_empty()).map_or(Outcome::Failed(CallbackError::NoCode), Outcome::Code)
    };
    match &outcome {
        Outcome::Code(_) => {
            respond(&mut stream, "200 OK", "boxfs received the authorization. You can close this tab.").await
        }
        Outcome::Failed(e) => respond(&mut stream, "400 Bad Request", &format!("boxfs login failed: {e}")).await,
        Outcome::Ignored => {}
    }
    outcome
}

/// Reads the request head and returns the request target of a GET.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next()?.split_whitespace();
    (words.next()? == "GET").then(|| words.next().map(str::to_string))?
}

/// `message` as HTML text (it may echo the redirect's own parameters).
fn html_text(message: &str) -> String {
    message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let body = format!("<!doctype html><title>boxfs</title><p>{}</p>\n", html_text(message));
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}
