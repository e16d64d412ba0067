//! Where access tokens come from: a fixed (developer) token, OAuth 2.0 tokens with refresh, or
//! the client-credentials grant. Box refresh tokens are single-use, so one refresh at a time
//! runs for the whole process, and the rotated pair reaches the token file (temp + fsync +
//! rename, mode 0600) before any request uses it.

use super::error::{ApiError, ApiResult};
use super::model::{OAuthErrorBody, TokenResponse};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Refresh this long before the access token expires.
const EXPIRY_MARGIN_SECS: i64 = 60;

/// The token file's content.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredTokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds; 0 when unknown.
    #[serde(default)]
    pub expires_at: i64,
}

impl StoredTokens {
    pub fn load(path: &Path) -> ApiResult<StoredTokens> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ApiError::TokenFile(format!("cannot read {}: {e} (log in first)", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| ApiError::TokenFile(format!("{} is not a token file: {e}", path.display())))
    }

    /// Writes the file atomically: a 0600 temp file in the same dir, fsync, rename, fsync dir.
    pub fn save_atomic(&self, path: &Path) -> ApiResult<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).expect("tokens serialize");
        Ok(crate::atomic_file::write_atomic(path, json.as_bytes())?)
    }

    fn fresh(&self, now: i64) -> bool {
        self.expires_at == 0 || self.expires_at - EXPIRY_MARGIN_SECS > now
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectType {
    Enterprise,
    User,
}

/// How this process authenticates.
#[derive(Clone)]
pub enum AuthMode {
    Fixed(String),
    OAuth { client_id: String, client_secret: String, token_file: PathBuf },
    ClientCredentials { client_id: String, client_secret: String, subject_type: SubjectType, subject_id: String },
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            AuthMode::Fixed(_) => f.write_str("Fixed(<token>)"),
            AuthMode::OAuth { token_file, .. } => write!(f, "OAuth({})", token_file.display()),
            AuthMode::ClientCredentials { subject_type, .. } => write!(f, "ClientCredentials({subject_type:?})"),
        }
    }
}

pub struct TokenSource {
    mode: AuthMode,
    current: Mutex<Option<StoredTokens>>,
    /// Held while a refresh/grant is in flight: exactly one at a time per process.
    refreshing: tokio::sync::Mutex<()>,
}

impl From<TokenResponse> for StoredTokens {
    /// Tokens as granted, with their lifetime turned into an expiry time.
    fn from(granted: TokenResponse) -> StoredTokens {
        StoredTokens {
            access_token: granted.access_token,
            refresh_token: granted.refresh_token,
            expires_at: granted.expires_in.map(|s| unix_now() + s as i64).unwrap_or(0),
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl TokenSource {
    pub fn new(mode: AuthMode) -> ApiResult<TokenSource> {
        let current = match &mode {
            AuthMode::Fixed(token) => {
                Some(StoredTokens { access_token: token.clone(), refresh_token: None, expires_at: 0 })
            }
            AuthMode::OAuth { token_file, .. } => Some(StoredTokens::load(token_file)?),
            AuthMode::ClientCredentials { .. } => None,
        };
        Ok(TokenSource { mode, current: Mutex::new(current), refreshing: tokio::sync::Mutex::new(()) })
    }

    fn snapshot(&self) -> Option<StoredTokens> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A token to use now; renews it first when it is about to expire.
    pub async fn token(&self, http: &reqwest::Client, token_url: &str) -> ApiResult<String> {
        match self.snapshot() {
            Some(t) if t.fresh(unix_now()) || matches!(self.mode, AuthMode::Fixed(_)) => Ok(t.access_token),
            stale => self.renew(http, token_url, stale.map(|t| t.access_token).as_deref()).await,
        }
    }

    /// Called after a 401 with `rejected`: renews once, however many requests ask at once.
    pub async fn renew(&self, http: &reqwest::Client, token_url: &str, rejected: Option<&str>) -> ApiResult<String> {
        let _one_at_a_time = self.refreshing.lock().await;
        let current = self.snapshot();
        if let Some(t) = &current {
            if Some(t.access_token.as_str()) != rejected && t.fresh(unix_now()) {
                return Ok(t.access_token.clone()); // another request renewed it meanwhile
            }
        }
        let form: Vec<(&str, String)> = match &self.mode {
            AuthMode::Fixed(_) => return Err(ApiError::Unauthorized),
            AuthMode::OAuth { client_id, client_secret, .. } => {
                let refresh = current.and_then(|t| t.refresh_token).ok_or(ApiError::LoginRequired)?;
                vec![
                    ("grant_type", "refresh_token".into()),
                    ("refresh_token", refresh),
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.clone()),
                ]
            }
            AuthMode::ClientCredentials { client_id, client_secret, subject_type, subject_id } => vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.clone()),
                (
                    "box_subject_type",
                    if *subject_type == SubjectType::Enterprise { "enterprise" } else { "user" }.into(),
                ),
                ("box_subject_id", subject_id.clone()),
            ],
        };
        let tokens = StoredTokens::from(request_tokens(http, token_url, &form).await?);
        if let AuthMode::OAuth { token_file, .. } = &self.mode {
            tokens.save_atomic(token_file)?;
        }
        let access = tokens.access_token.clone();
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokens);
        tracing::info!("access token renewed");
        Ok(access)
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
