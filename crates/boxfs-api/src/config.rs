//! Client configuration: base URLs (Box's own by default, overridable by flags and the
//! `BOX_*` variables the emulator prints), timeouts, retry policy, request budget, upload
//! tuning and the user requests act for (`As-User`).

use std::time::Duration;

pub const BOX_API_URL: &str = "https://api.box.com/2.0";
pub const BOX_UPLOAD_URL: &str = "https://upload.box.com/api/2.0";
pub const BOX_AUTHORIZE_URL: &str = "https://account.box.com/api/oauth2/authorize";
pub const BOX_TOKEN_URL: &str = "https://api.box.com/oauth2/token";
pub const BOX_REVOKE_URL: &str = "https://api.box.com/oauth2/revoke";

/// Retries in one place: how many attempts and how long in total, and the backoff shape.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_total: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_total: Duration::from_secs(300),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter in `[d/2, d]`, `d = base·2^attempt` capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max_delay);
        let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
        capped.mul_f64(jitter)
    }
}

/// Client-side request budget, per minute, shared by the processes of one identity.
#[derive(Clone, Debug)]
pub struct BudgetConfig {
    pub requests_per_minute: u32,
    pub uploads_per_minute: u32,
    /// Where the shared budget files live (default: `RUNTIME_DIR/budgets`, see
    /// [`boxfs_io::runtime_dir`]).
    pub dir: std::path::PathBuf,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            requests_per_minute: 1000,
            uploads_per_minute: 240,
            dir: boxfs_io::runtime_dir::runtime_dir().join("budgets"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub api_url: String,
    pub upload_url: String,
    pub authorize_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// Time without progress on one request (headers or body) before it is abandoned.
    pub read_timeout: Duration,
    pub pool_max_idle_per_host: usize,
    pub retry: RetryPolicy,
    pub budget: BudgetConfig,
    /// Files at least this big go through upload sessions.
    pub upload_cutoff: u64,
    /// Session parts in flight at once.
    pub upload_parallelism: usize,
    /// Every request acts for this user (`As-User`; the credentials must be an admin's or a
    /// service account's).
    pub as_user: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            api_url: BOX_API_URL.into(),
            upload_url: BOX_UPLOAD_URL.into(),
            authorize_url: BOX_AUTHORIZE_URL.into(),
            token_url: BOX_TOKEN_URL.into(),
            revoke_url: BOX_REVOKE_URL.into(),
            user_agent: format!("boxfs/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            pool_max_idle_per_host: 32,
            retry: RetryPolicy::default(),
            budget: BudgetConfig::default(),
            upload_cutoff: 20 * 1024 * 1024,
            upload_parallelism: 4,
            as_user: None,
        }
    }
}

impl ApiConfig {
    /// The URLs in force: explicit flags, then `BOX_API_URL`/`BOX_UPLOAD_URL`, then Box's.
    pub fn resolve(api_url: Option<String>, upload_url: Option<String>) -> ApiConfig {
        ApiConfig::resolve_over(api_url, upload_url, None)
    }

    /// Like `resolve`, with the URLs `saved` with a login before Box's defaults. A non-Box API
    /// URL without an upload URL has its upload host beside it (`ORIGIN/api/2.0`, as the
    /// emulator serves it); the OAuth endpoints follow a non-Box API host the same way.
    pub fn resolve_over(api_url: Option<String>, upload_url: Option<String>, saved: Option<(&str, &str)>) -> ApiConfig {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let api = api_url
            .or_else(|| env("BOX_API_URL"))
            .or_else(|| saved.map(|(api, _)| api.to_string()))
            .unwrap_or_else(|| BOX_API_URL.into());
        let upload = upload_url
            .or_else(|| env("BOX_UPLOAD_URL"))
            .or_else(|| saved.map(|(_, upload)| upload.to_string()))
            .unwrap_or_else(|| match api.trim_end_matches('/') {
                BOX_API_URL => BOX_UPLOAD_URL.into(),
                other => format!("{}/api/2.0", origin(other)),
            });
        ApiConfig::with_urls(&api, &upload)
    }

    pub fn with_urls(api_url: &str, upload_url: &str) -> ApiConfig {
        let api_url = api_url.trim_end_matches('/').to_string();
        let mut cfg = ApiConfig { upload_url: upload_url.trim_end_matches('/').to_string(), ..ApiConfig::default() };
        if api_url != BOX_API_URL {
            let origin = origin(&api_url);
            cfg.authorize_url = format!("{origin}/oauth2/authorize");
            cfg.token_url = format!("{origin}/oauth2/token");
            cfg.revoke_url = format!("{origin}/oauth2/revoke");
        }
        cfg.api_url = api_url;
        cfg
    }
}

/// `http://host:port/2.0` → `http://host:port`.
fn origin(api_url: &str) -> &str {
    api_url.strip_suffix("/2.0").unwrap_or(api_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_from_flags_then_saved_then_beside_the_api() {
        let flags = |a: &str, u: &str| ApiConfig::resolve_over(Some(a.into()), Some(u.into()), None);
        assert_eq!(flags("http://h:1/2.0/", "http://u:2/api/2.0").upload_url, "http://u:2/api/2.0");
        let saved = Some(("http://s:3/2.0", "http://s:3/up"));
        let cfg = ApiConfig::resolve_over(Some("http://h:1/2.0".into()), None, saved);
        assert_eq!((cfg.api_url.as_str(), cfg.upload_url.as_str()), ("http://h:1/2.0", "http://s:3/up"));
        let beside = ApiConfig::resolve_over(Some("http://h:1/2.0".into()), None, None);
        assert_eq!(beside.upload_url, "http://h:1/api/2.0");
        assert_eq!(beside.token_url, "http://h:1/oauth2/token");
        let boxes = ApiConfig::resolve_over(Some(BOX_API_URL.into()), None, None);
        assert_eq!(
            (boxes.upload_url.as_str(), boxes.token_url.as_str()),
            (BOX_UPLOAD_URL, ApiConfig::default().token_url.as_str())
        );
    }
}
