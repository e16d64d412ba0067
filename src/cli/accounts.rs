//! The account store: one logged-in Box account per name under
//! `$XDG_CONFIG_HOME/boxfs/accounts/`. `NAME.json` records how the account authenticates (the
//! kind of credential, client id/secret, client-credentials or JWT subject) and the API/upload
//! URLs used at login; `NAME.tokens.json` holds its tokens in the API client's token-file
//! format, so that every process of the account refreshes and rewrites them in place; a JWT
//! account keeps a copy of the app's config file (with its encrypted private key) as
//! `NAME.jwt.json`. All are 0600 and written atomically. Tokens are written and deleted only under the account's token lock
//! (`NAME.tokens.lock`, see `api::token_file`), so a login or logout never races a refresh.

use boxfs_api::token_file::{TokenFile, TokenLock};
use boxfs_api::{ApiConfig, ApiError, AuthMode, StoredTokens, SubjectType};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The account used when `--account` is not given.
pub const DEFAULT_ACCOUNT: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid account name '{0}': use letters, digits, '.', '_' or '-' (not starting with '.')")]
    BadName(String),
    #[error("not logged in: account '{name}' has no credentials (run: boxfs login --account {name})")]
    NotLoggedIn { name: String },
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Tokens(#[from] ApiError),
}

/// The kind of credential an account logged in with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Authorization-code login: refreshable OAuth tokens.
    Oauth,
    /// Client-credentials grant: a token is requested whenever one is needed.
    ClientCredentials,
    /// A developer token read at login; it cannot be renewed.
    DeveloperToken,
    /// A JWT app: a token is requested with a signed assertion whenever one is needed.
    Jwt,
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub kind: Kind,
    pub api_url: String,
    pub upload_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `enterprise` or `user` (client credentials only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the client secret.
        write!(f, "Account({:?}, {})", self.kind, self.api_url)
    }
}

/// `config_dir()/accounts`.
pub fn accounts_dir() -> PathBuf {
    crate::config::config_dir().join("accounts")
}

pub fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadName(name.into()))
    }
}

pub fn account_file(name: &str) -> PathBuf {
    accounts_dir().join(format!("{name}.json"))
}

pub fn tokens_file(name: &str) -> PathBuf {
    accounts_dir().join(format!("{name}.tokens.json"))
}

/// The copy of a JWT app's config file.
pub fn app_config_file(name: &str) -> PathBuf {
    accounts_dir().join(format!("{name}.jwt.json"))
}

/// Keeps a copy (0600, atomically) of the JWT app config `text` for account `name`.
pub fn save_app_config(name: &str, text: &str) -> Result<(), AccountError> {
    check_name(name)?;
    private_accounts_dir()?;
    let path = app_config_file(name);
    boxfs_io::atomic_file::write_atomic(&path, text.as_bytes()).map_err(|source| AccountError::Io { path, source })
}

impl Account {
    pub fn load(name: &str) -> Result<Account, AccountError> {
        check_name(name)?;
        let path = account_file(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AccountError::NotLoggedIn { name: name.into() })
            }
            Err(source) => return Err(AccountError::Io { path, source }),
        };
        serde_json::from_str(&text).map_err(|e| AccountError::Corrupt { path, message: e.to_string() })
    }

    /// Writes `NAME.json` (0600, atomically) in a 0700 accounts dir.
    pub fn save(&self, name: &str) -> Result<(), AccountError> {
        check_name(name)?;
        private_accounts_dir()?;
        let path = account_file(name);
        let json = serde_json::to_string_pretty(self).expect("account serializes");
        boxfs_io::atomic_file::write_atomic(&path, json.as_bytes()).map_err(|source| AccountError::Io { path, source })
    }

    pub fn api_config(&self) -> ApiConfig {
        ApiConfig::with_urls(&self.api_url, &self.upload_url)
    }

    /// How a client authenticates as this account.
    pub fn auth_mode(&self, name: &str) -> Result<AuthMode, AccountError> {
        let corrupt =
            |what: &str| AccountError::Corrupt { path: account_file(name), message: format!("{what} missing") };
        let id = || self.client_id.clone().ok_or_else(|| corrupt("client_id"));
        let secret = || self.client_secret.clone().ok_or_else(|| corrupt("client_secret"));
        let subject_type = || match self.subject_type.as_deref() {
            Some("user") => SubjectType::User,
            _ => SubjectType::Enterprise,
        };
        Ok(match self.kind {
            Kind::Oauth => {
                AuthMode::OAuth { client_id: id()?, client_secret: secret()?, token_file: tokens_file(name) }
            }
            Kind::ClientCredentials => AuthMode::ClientCredentials {
                client_id: id()?,
                client_secret: secret()?,
                subject_type: subject_type(),
                subject_id: self.subject_id.clone().ok_or_else(|| corrupt("subject_id"))?,
            },
            Kind::DeveloperToken => AuthMode::Fixed(self.tokens(name)?.access_token),
            Kind::Jwt => AuthMode::Jwt {
                app: Box::new(boxfs_api::jwt::AppConfig::load(&app_config_file(name))?),
                subject_type: subject_type(),
                subject_id: self.subject_id.clone().ok_or_else(|| corrupt("subject_id"))?,
            },
        })
    }

    /// The stored tokens (not for client credentials, which store none).
    pub fn tokens(&self, name: &str) -> Result<StoredTokens, AccountError> {
        let path = tokens_file(name);
        if !path.exists() {
            return Err(AccountError::NotLoggedIn { name: name.into() });
        }
        Ok(StoredTokens::load(&path)?)
    }
}

/// Waits for the token lock of account `name` (a running mount may be refreshing).
pub async fn lock_tokens(name: &str) -> Result<TokenLock, AccountError> {
    check_name(name)?;
    private_accounts_dir()?;
    Ok(TokenFile::new(tokens_file(name)).lock().await?)
}

/// Removes the account's files (tokens under `held`, its token lock); true when there was
/// anything to remove.
pub fn delete(name: &str, held: &TokenLock) -> Result<bool, AccountError> {
    let path = tokens_file(name);
    let tokens = TokenFile::new(&path).remove(held).map_err(|source| AccountError::Io { path, source })?;
    let app = remove_if_present(app_config_file(name))?;
    Ok(remove_if_present(account_file(name))? || tokens || app)
}

/// Writes the tokens of account `name` (0600, atomically) in the 0700 accounts dir, under its
/// token lock; running mounts of the account switch to them.
pub async fn save_tokens(name: &str, tokens: &StoredTokens) -> Result<(), AccountError> {
    let _held = lock_tokens(name).await?;
    TokenFile::new(tokens_file(name)).save(tokens)?;
    Ok(())
}

/// Forgets stored tokens of account `name` (client credentials store none).
pub async fn remove_tokens(name: &str) -> Result<(), AccountError> {
    let held = lock_tokens(name).await?;
    let path = tokens_file(name);
    TokenFile::new(&path).remove(&held).map(|_| ()).map_err(|source| AccountError::Io { path, source })
}

/// The accounts dir, created 0700 if needed.
fn private_accounts_dir() -> Result<PathBuf, AccountError> {
    let dir = accounts_dir();
    std::fs::create_dir_all(&dir).map_err(|source| AccountError::Io { path: dir.clone(), source })?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    Ok(dir)
}

/// Removes `path`; false when there was nothing to remove.
pub fn remove_if_present(path: PathBuf) -> Result<bool, AccountError> {
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(AccountError::Io { path, source }),
    }
}

/// A Box error, explained for `account`: an expired or refused login names the command that fixes it.
pub fn explain(err: &ApiError, account: &str) -> String {
    match err.root() {
        ApiError::LoginRequired => {
            format!("the login of account '{account}' has expired or was revoked: run boxfs login --account {account} again")
        }
        ApiError::Unauthorized => format!(
            "Box refused the access token of account '{account}' (developer tokens last 60 minutes): \
             run boxfs login --account {account} again"
        ),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["default", "work-2", "a.b_c"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "../x", "sp ace"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let a = Account {
            kind: Kind::Oauth,
            api_url: "u".into(),
            upload_url: "v".into(),
            client_id: Some("id".into()),
            client_secret: Some("hunter2".into()),
            subject_type: None,
            subject_id: None,
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
