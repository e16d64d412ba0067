//! Where access tokens come from: a fixed (developer) token, OAuth 2.0 tokens with refresh, the
//! client-credentials grant, or a JWT app's signed assertion (see [`super::jwt`]).
//!
//! OAuth tokens live in a token file shared by every process of the account (see
//! [`super::token_file`]). Box refresh tokens are single-use, so a refresh happens under the
//! account's cross-process lock, one at a time per process and per account: under the lock
//! the file is read again, and a pair another process rotated meanwhile is adopted instead of
//! refreshed. The rotated pair reaches the file (atomically, 0600) before any request uses
//! it. Every use of a token first `stat`s the file, so a pair rotated by another process or
//! a new `boxfs login` is picked up at once; a request answered 401 re-reads the file before
//! it refreshes. A refresh token Box refuses (`invalid_grant`: revoked, or already rotated by
//! a refresh whose response was lost) is never sent again: the log says once that the user
//! must log in again, and requests fail with `LoginRequired` until the file changes.
//!
//! Tokens are renewed ahead of their expiry by a margin that follows their lifetime (a 30th
//! of it, at most 60 s). Client-credentials, JWT and developer tokens belong to the process.

use super::error::{ApiError, ApiResult};
use super::model::{OAuthErrorBody, TokenResponse};
use super::token_file::{Stamp, StoredTokens, TokenFile};
use std::path::PathBuf;
use std::sync::Mutex;

/// Renew at most this long before the access token expires.
const MAX_EXPIRY_MARGIN_SECS: f64 = 60.0;

/// Test hook: a process that takes the refresh lock waits this many milliseconds before it
/// refreshes (so that a test can kill it while it holds the lock).
const PAUSE_IN_LOCK_ENV: &str = "BOXFS_TEST_REFRESH_PAUSE_MS";

impl StoredTokens {
    /// How long before `expires_at` the token is renewed: a 30th of its lifetime, at most 60 s
    /// (60 s when the lifetime is unknown).
    fn margin(&self) -> f64 {
        if self.lifetime > 0.0 {
            (self.lifetime / 30.0).min(MAX_EXPIRY_MARGIN_SECS)
        } else {
            MAX_EXPIRY_MARGIN_SECS
        }
    }

    fn fresh(&self, now: f64) -> bool {
        self.expires_at == 0.0 || self.expires_at - self.margin() > now
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectType {
    Enterprise,
    User,
}

impl SubjectType {
    /// Box's name for it (`box_subject_type`, `box_sub_type`).
    pub fn as_str(&self) -> &'static str {
        match self {
            SubjectType::Enterprise => "enterprise",
            SubjectType::User => "user",
        }
    }
}

/// How this process authenticates.
#[derive(Clone)]
pub enum AuthMode {
    Fixed(String),
    OAuth {
        client_id: String,
        client_secret: String,
        token_file: PathBuf,
    },
    ClientCredentials {
        client_id: String,
        client_secret: String,
        subject_type: SubjectType,
        subject_id: String,
    },
    /// A JWT app (its console config file) acting as its service account or a user.
    Jwt {
        app: Box<super::jwt::AppConfig>,
        subject_type: SubjectType,
        subject_id: String,
    },
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            AuthMode::Fixed(_) => f.write_str("Fixed(<token>)"),
            AuthMode::OAuth { token_file, .. } => write!(f, "OAuth({})", token_file.display()),
            AuthMode::ClientCredentials { subject_type, .. } => write!(f, "ClientCredentials({subject_type:?})"),
            AuthMode::Jwt { subject_type, .. } => write!(f, "Jwt({subject_type:?})"),
        }
    }
}

impl std::fmt::Display for AuthMode {
    /// How the credentials authenticate, for people (`boxfs whoami`); no secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthMode::Fixed(_) => f.write_str("developer token"),
            AuthMode::OAuth { .. } => f.write_str("OAuth 2.0 (authorization code, refreshed tokens)"),
            AuthMode::ClientCredentials { subject_type, subject_id, .. } => {
                write!(f, "client credentials grant ({} {subject_id})", subject_type.as_str())
            }
            AuthMode::Jwt { subject_type, subject_id, app } => write!(
                f,
                "JWT (app {}, public key {}, {} {subject_id})",
                app.box_app_settings.client_id,
                app.box_app_settings.app_auth.public_key_id,
                subject_type.as_str()
            ),
        }
    }
}

impl AuthMode {
    /// Who the requests are made as, for sharing a request budget: the token file of an
    /// OAuth login (every process of the account), the subject of client credentials, the
    /// developer token itself. Contains secrets: only ever used hashed.
    pub(crate) fn identity(&self, api_url: &str) -> String {
        match self {
            AuthMode::Fixed(token) => format!("fixed\n{api_url}\n{token}"),
            AuthMode::OAuth { token_file, .. } => {
                let file = std::fs::canonicalize(token_file)
                    .or_else(|_| std::path::absolute(token_file))
                    .unwrap_or_else(|_| token_file.clone());
                format!("oauth\n{api_url}\n{}", file.display())
            }
            AuthMode::ClientCredentials { client_id, subject_type, subject_id, .. } => {
                format!("client_credentials\n{api_url}\n{client_id}\n{subject_type:?}\n{subject_id}")
            }
            AuthMode::Jwt { app, subject_type, subject_id } => {
                format!("jwt\n{api_url}\n{}\n{subject_type:?}\n{subject_id}", app.box_app_settings.client_id)
            }
        }
    }
}

pub struct TokenSource {
    mode: AuthMode,
    /// OAuth only: the token file shared with the account's other processes.
    file: Option<TokenFile>,
    /// JWT only: the app's opened private key.
    signer: Option<super::jwt::Signer>,
    current: Mutex<Current>,
    /// Held while a refresh/grant is in flight: exactly one at a time per process.
    refreshing: tokio::sync::Mutex<()>,
}

/// The tokens in use and where they came from.
#[derive(Default)]
struct Current {
    tokens: Option<StoredTokens>,
    /// The version of the token file `tokens` were read from or written as.
    stamp: Option<Stamp>,
    /// A refresh token Box refused: it is never sent again.
    refused: Option<String>,
}

impl From<TokenResponse> for StoredTokens {
    /// Tokens as granted, with their lifetime turned into an expiry time.
    fn from(granted: TokenResponse) -> StoredTokens {
        let lifetime = granted.expires_in.unwrap_or(0) as f64;
        StoredTokens {
            access_token: granted.access_token,
            refresh_token: granted.refresh_token,
            expires_at: if lifetime > 0.0 { unix_now() + lifetime } else { 0.0 },
            lifetime,
        }
    }
}

/// Unix time in seconds, with the fraction.
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl TokenSource {
    pub fn new(mode: AuthMode) -> ApiResult<TokenSource> {
        let mut current = Current::default();
        let mut file = None;
        let mut signer = None;
        match &mode {
            AuthMode::Fixed(token) => current.tokens = Some(StoredTokens::fixed(token.clone())),
            AuthMode::OAuth { token_file, .. } => {
                let shared = TokenFile::new(token_file);
                let (tokens, stamp) = shared.load()?;
                (current.tokens, current.stamp) = (Some(tokens), Some(stamp));
                file = Some(shared);
            }
            AuthMode::ClientCredentials { .. } => {}
            AuthMode::Jwt { app, .. } => signer = Some(super::jwt::Signer::new(app)?),
        }
        Ok(TokenSource { mode, file, signer, current: Mutex::new(current), refreshing: tokio::sync::Mutex::new(()) })
    }

    pub(crate) fn mode(&self) -> &AuthMode {
        &self.mode
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot(&self) -> Option<StoredTokens> {
        self.current().tokens.clone()
    }

    fn adopt(&self, tokens: StoredTokens, stamp: Stamp) {
        let mut current = self.current();
        current.tokens = Some(tokens);
        current.stamp = Some(stamp);
    }

    /// Adopts the token file when another process (a refresh, a new login) replaced it.
    fn follow_file(&self) {
        let Some(file) = &self.file else { return };
        let Some(stamp) = file.stamp() else { return };
        if self.current().stamp == Some(stamp) {
            return;
        }
        match file.load() {
            Ok((tokens, stamp)) => {
                tracing::debug!("adopting the tokens another boxfs process wrote");
                self.adopt(tokens, stamp);
            }
            Err(e) => tracing::debug!(error = %e, "token file changed but cannot be read (yet)"),
        }
    }

    /// The current access token unless it is `rejected` or about to expire.
    fn usable(&self, rejected: Option<&str>) -> Option<String> {
        let t = self.snapshot()?;
        (Some(t.access_token.as_str()) != rejected && t.fresh(unix_now())).then_some(t.access_token)
    }

    /// A token to use now; renews it first when it is about to expire.
    pub async fn token(&self, http: &reqwest::Client, token_url: &str) -> ApiResult<String> {
        self.follow_file();
        match self.snapshot() {
            Some(t) if t.fresh(unix_now()) || matches!(self.mode, AuthMode::Fixed(_)) => Ok(t.access_token),
            stale => self.renew(http, token_url, stale.map(|t| t.access_token).as_deref()).await,
        }
    }

    /// Called after a 401 with `rejected`: renews once, however many requests ask at once.
    pub async fn renew(&self, http: &reqwest::Client, token_url: &str, rejected: Option<&str>) -> ApiResult<String> {
        let _one_at_a_time = self.refreshing.lock().await;
        self.follow_file();
        if let Some(access) = self.usable(rejected) {
            return Ok(access); // renewed meanwhile, by another request or another process
        }
        match &self.mode {
            AuthMode::Fixed(_) => Err(ApiError::Unauthorized),
            AuthMode::OAuth { client_id, client_secret, .. } => {
                self.refresh_shared(http, token_url, (client_id, client_secret), rejected).await
            }
            AuthMode::ClientCredentials { client_id, client_secret, subject_type, subject_id } => {
                let form = vec![
                    ("grant_type", "client_credentials".into()),
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.clone()),
                    ("box_subject_type", subject_type.as_str().into()),
                    ("box_subject_id", subject_id.clone()),
                ];
                self.grant(http, token_url, &form).await
            }
            AuthMode::Jwt { app, subject_type, subject_id } => {
                let signer = self.signer.as_ref().expect("a JWT token source has a signer");
                let form = vec![
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".into()),
                    ("assertion", signer.assertion(subject_type.as_str(), subject_id)?),
                    ("client_id", app.box_app_settings.client_id.clone()),
                    ("client_secret", app.box_app_settings.client_secret.clone()),
                ];
                self.grant(http, token_url, &form).await
            }
        }
    }

    /// A grant that gives this process a token of its own (client credentials, JWT).
    async fn grant(&self, http: &reqwest::Client, token_url: &str, form: &[(&str, String)]) -> ApiResult<String> {
        let tokens = StoredTokens::from(request_tokens(http, token_url, form).await?);
        let access = tokens.access_token.clone();
        self.current().tokens = Some(tokens);
        tracing::info!("access token granted");
        Ok(access)
    }

    /// The OAuth refresh, under the account's lock: adopts what another process rotated,
    /// else refreshes and writes the new pair to the token file before using it.
    async fn refresh_shared(
        &self,
        http: &reqwest::Client,
        token_url: &str,
        (client_id, client_secret): (&String, &String),
        rejected: Option<&str>,
    ) -> ApiResult<String> {
        let file = self.file.as_ref().expect("an OAuth token source has a token file");
        let _lock = file.lock().await?;
        let (on_disk, stamp) = match file.load() {
            Ok(read) => read,
            Err(_) if file.stamp().is_none() => return Err(ApiError::LoginRequired), // logged out
            Err(e) => return Err(e),
        };
        self.adopt(on_disk.clone(), stamp);
        if let Some(access) = self.usable(rejected) {
            tracing::debug!("another boxfs process renewed the tokens; adopted them");
            return Ok(access);
        }
        let refresh = on_disk.refresh_token.ok_or(ApiError::LoginRequired)?;
        if self.current().refused.as_ref() == Some(&refresh) {
            return Err(ApiError::LoginRequired);
        }
        pause_in_lock_for_tests().await;
        let form = vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh.clone()),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.clone()),
        ];
        let tokens = match request_tokens(http, token_url, &form).await {
            Ok(granted) => StoredTokens::from(granted),
            Err(ApiError::LoginRequired) => {
                tracing::error!(
                    token_file = %file.path().display(),
                    "Box refused the saved refresh token: the login was revoked, or the token was \
                     already used by a refresh whose answer was lost on the way. Box requests fail \
                     until you log in again (boxfs login)"
                );
                self.current().refused = Some(refresh);
                return Err(ApiError::LoginRequired);
            }
            Err(e) => return Err(e),
        };
        let access = tokens.access_token.clone();
        match file.save(&tokens) {
            Ok(saved) => self.adopt(tokens, saved),
            Err(e) => {
                // Box has burned the old pair: the new one is only in memory now. Keep using it
                // (keeping the stamp read, so the burned pair on disk is not adopted back).
                tracing::error!(error = %e, "the renewed tokens could not be saved; other processes of this login will need a new login");
                self.adopt(tokens, stamp);
            }
        }
        tracing::info!("access token renewed");
        Ok(access)
    }
}

/// The test hook of [`PAUSE_IN_LOCK_ENV`].
async fn pause_in_lock_for_tests() {
    let pause = std::env::var(PAUSE_IN_LOCK_ENV).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = pause.filter(|ms| *ms > 0) {
        tracing::warn!(ms, "{PAUSE_IN_LOCK_ENV}: pausing while holding the refresh lock");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Posts a grant to the token endpoint. Transient failures are retried a few times; a
/// refused grant is `LoginRequired` (a used or revoked refresh token cannot recover).
pub async fn request_tokens(
    http: &reqwest::Client,
    token_url: &str,
    form: &[(&str, String)],
) -> ApiResult<TokenResponse> {
    let mut last = ApiError::Network("token endpoint not reached".into());
    for attempt in 0..4u32 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(300 << attempt)).await;
        }
        let resp = match http.post(token_url).form(form).send().await {
            Ok(r) => r,
            Err(e) => {
                last = e.into();
                continue;
            }
        };
        let status = resp.status();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                last = e.into();
                continue;
            }
        };
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| ApiError::Decode(format!("token response: {e}")));
        }
        if status.is_server_error() || status.as_u16() == 429 {
            last = ApiError::Http { status: status.as_u16(), code: None, message: "token endpoint".into() };
            continue;
        }
        let err: OAuthErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        tracing::warn!(error = %err.error, "token endpoint refused the grant");
        return Err(match err.error.as_str() {
            "invalid_grant" => ApiError::LoginRequired,
            "invalid_client" | "unauthorized_client" => {
                ApiError::Config("the client id/secret were refused by the token endpoint".into())
            }
            _ => ApiError::Http {
                status: status.as_u16(),
                code: Some(err.error),
                message: err.error_description.unwrap_or_default(),
            },
        });
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_follows_the_lifetime_and_older_files_still_read() {
        let t = |expires_at: f64, lifetime: f64| StoredTokens {
            access_token: "a".into(),
            refresh_token: None,
            expires_at,
            lifetime,
        };
        assert!(t(1000.0, 3.0).fresh(999.8) && !t(1000.0, 3.0).fresh(999.95), "a 3 s token: 0.1 s ahead");
        assert!(t(10_000.0, 3600.0).fresh(9_939.0) && !t(10_000.0, 3600.0).fresh(9_941.0), "an hour: 60 s ahead");
        assert!(t(0.0, 0.0).fresh(1e12), "no known expiry");
        let old: StoredTokens =
            serde_json::from_str(r#"{"access_token":"a","refresh_token":"r","expires_at":10000}"#).unwrap();
        assert_eq!((old.expires_at, old.lifetime), (10_000.0, 0.0));
        assert!(old.fresh(9_939.0) && !old.fresh(9_941.0), "unknown lifetime: 60 s ahead");
    }
}
