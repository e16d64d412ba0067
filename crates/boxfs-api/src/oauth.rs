//! The OAuth 2.0 calls a login and a logout make: the authorize URL a browser opens, the
//! authorization-code exchange, and token revocation. (Refresh and client credentials live in
//! `auth`, where a running client renews its tokens.)

use super::auth::request_tokens;
use super::config::ApiConfig;
use super::error::{ApiError, ApiResult};
use super::token_file::StoredTokens;

/// `authorize_url?response_type=code&client_id=…&redirect_uri=…&state=…`.
pub fn authorize_url(cfg: &ApiConfig, client_id: &str, redirect_uri: &str, state: &str) -> String {
    let mut url = url::Url::parse(&cfg.authorize_url).expect("authorize URL is a URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state);
    url.into()
}

fn http(cfg: &ApiConfig) -> ApiResult<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(cfg.user_agent.clone())
        .connect_timeout(cfg.connect_timeout)
        .timeout(cfg.read_timeout)
        .build()
        .map_err(|e| ApiError::Config(format!("HTTP client: {e}")))
}

/// Trades an authorization code for tokens.
pub async fn exchange_code(
    cfg: &ApiConfig,
    client_id: &str,
    client_secret: &str,
    code: &str,
    redirect_uri: &str,
) -> ApiResult<StoredTokens> {
    let form = [
        ("grant_type", "authorization_code".to_string()),
        ("code", code.to_string()),
        ("client_id", client_id.to_string()),
        ("client_secret", client_secret.to_string()),
        ("redirect_uri", redirect_uri.to_string()),
    ];
    let granted = request_tokens(&http(cfg)?, &cfg.token_url, &form).await.map_err(|e| match e {
        ApiError::LoginRequired => {
            ApiError::Config("the authorization code was refused (expired or already used)".into())
        }
        other => other,
    })?;
    Ok(granted.into())
}

/// Revokes `token` (access or refresh) at the revoke endpoint.
pub async fn revoke(cfg: &ApiConfig, client_id: &str, client_secret: &str, token: &str) -> ApiResult<()> {
    let form = [("client_id", client_id), ("client_secret", client_secret), ("token", token)];
    let resp = http(cfg)?.post(&cfg.revoke_url).form(&form).send().await?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body: super::model::OAuthErrorBody = resp.json().await.unwrap_or_default();
    Err(ApiError::Http { status: status.as_u16(), code: Some(body.error), message: "token revocation refused".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_carries_the_request() {
        let cfg = ApiConfig::with_urls("http://127.0.0.1:9/2.0", "http://127.0.0.1:9/api/2.0");
        let url = authorize_url(&cfg, "cid", "http://127.0.0.1:5/callback", "s t");
        assert!(url.starts_with("http://127.0.0.1:9/oauth2/authorize?response_type=code&client_id=cid"));
        assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcallback") && url.contains("state=s+t"));
    }
}
