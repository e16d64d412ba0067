//! Command-line options shared by every command that talks to Box: base URLs, how to
//! authenticate and whom to act for (`--as-user`). Explicit flags and the `BOX_*` environment
//! variables the emulator prints win; otherwise the named account saved by `boxfs login`
//! supplies URLs and credentials.

use super::accounts::{self, Account, DEFAULT_ACCOUNT};
use boxfs_api::{ApiConfig, AuthMode, Client, TokenSource};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args, Clone)]
pub struct ApiArgs {
    /// Account saved by `boxfs login` to use; also picks the [accounts.NAME] table of the config
    /// file (its saved credentials are ignored when BOX_ACCESS_TOKEN or --token-file is given).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ACCOUNT)]
    pub account: String,
    /// Box API base URL [env: BOX_API_URL] (default: the account's, else https://api.box.com/2.0).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// Box upload base URL [env: BOX_UPLOAD_URL] (default: the account's, else https://upload.box.com/api/2.0,
    /// or ORIGIN/api/2.0 beside a non-Box --api-url such as the emulator's).
    #[arg(long, value_name = "URL")]
    pub upload_url: Option<String>,
    /// OAuth token file (JSON with access_token, refresh_token, expires_at); refreshed tokens
    /// are written back to it. Needs --client-id/--client-secret.
    #[arg(long, value_name = "FILE", requires_all = ["client_id", "client_secret"])]
    pub token_file: Option<PathBuf>,
    /// OAuth client id of your Box app, with --token-file.
    #[arg(long, value_name = "ID", env = "BOX_CLIENT_ID", hide_env_values = true)]
    pub client_id: Option<String>,
    /// OAuth client secret of your Box app, with --token-file.
    #[arg(long, value_name = "SECRET", env = "BOX_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Act for this user (Box's As-User header): every request is made as them. The
    /// credentials must be an admin's or a JWT/client-credentials app's service account with
    /// the right to act for users.
    #[arg(long, value_name = "USER_ID")]
    pub as_user: Option<String>,
}

impl ApiArgs {
    /// The client these options describe: a token file when given, else `BOX_ACCESS_TOKEN`,
    /// else the saved account. URLs: flags, then `BOX_API_URL`/`BOX_UPLOAD_URL`, then the account's.
    pub fn client(&self) -> Result<Client, String> {
        self.client_as(self.as_user.clone())
    }

    /// Like [`ApiArgs::client`], acting for `as_user` (`--as-user`, or the config file's `as_user`).
    pub fn client_as(&self, as_user: Option<String>) -> Result<Client, String> {
        let (mut cfg, mode) = match self.explicit_mode() {
            Some(mode) => (ApiConfig::resolve(self.api_url.clone(), self.upload_url.clone()), mode),
            None => {
                let account = Account::load(&self.account).map_err(|e| e.to_string())?;
                let saved = Some((account.api_url.as_str(), account.upload_url.as_str()));
                let cfg = ApiConfig::resolve_over(self.api_url.clone(), self.upload_url.clone(), saved);
                (cfg, account.auth_mode(&self.account).map_err(|e| e.to_string())?)
            }
        };
        cfg.as_user = as_user.filter(|u| !u.is_empty());
        let source = TokenSource::new(mode).map_err(|e| self.explain(&e))?;
        Client::new(cfg, source).map_err(|e| e.to_string())
    }

    /// Credentials given outright: a token file (clap requires its client id and secret), else
    /// `BOX_ACCESS_TOKEN`. `None`: the saved account's.
    fn explicit_mode(&self) -> Option<AuthMode> {
        match (&self.token_file, &self.client_id, &self.client_secret) {
            (Some(file), Some(id), Some(secret)) => {
                Some(AuthMode::OAuth { client_id: id.clone(), client_secret: secret.clone(), token_file: file.clone() })
            }
            _ => std::env::var("BOX_ACCESS_TOKEN").ok().filter(|v| !v.is_empty()).map(AuthMode::Fixed),
        }
    }

    /// The saved account whose credentials these options use (`None`: given outright).
    pub fn saved_account(&self) -> Option<&str> {
        self.explicit_mode().is_none().then_some(self.account.as_str())
    }

    /// A Box error for the user: with a saved account, an expired login names the fix.
    pub fn explain(&self, err: &boxfs_api::ApiError) -> String {
        match self.saved_account() {
            Some(account) => accounts::explain(err, account),
            None => err.to_string(),
        }
    }
}
