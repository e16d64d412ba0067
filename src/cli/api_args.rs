//! Command-line options shared by every command that talks to Box: base URLs and how to
//! authenticate (flags, then the `BOX_*` environment variables the emulator prints).

use crate::api::{ApiConfig, AuthMode, Client, TokenSource};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args, Clone)]
pub struct ApiArgs {
    /// Box API base URL [env: BOX_API_URL] (default: https://api.box.com/2.0).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// Box upload base URL [env: BOX_UPLOAD_URL] (default: https://upload.box.com/api/2.0).
    #[arg(long, value_name = "URL")]
    pub upload_url: Option<String>,
    /// OAuth token file (JSON with access_token, refresh_token, expires_at); refreshed tokens
    /// are written back to it. Needs --client-id/--client-secret.
    #[arg(long, value_name = "FILE", requires_all = ["client_id", "client_secret"])]
    pub token_file: Option<PathBuf>,
    /// OAuth client id of your Box app [env: BOX_CLIENT_ID].
    #[arg(long, value_name = "ID", env = "BOX_CLIENT_ID")]
    pub client_id: Option<String>,
    /// OAuth client secret of your Box app [env: BOX_CLIENT_SECRET].
    #[arg(long, value_name = "SECRET", env = "BOX_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
}

impl ApiArgs {
    /// The client these options describe: a token file when given, else `BOX_ACCESS_TOKEN`.
    pub fn client(&self) -> Result<Client, String> {
        let cfg = ApiConfig::resolve(self.api_url.clone(), self.upload_url.clone());
        let mode = match (&self.token_file, &self.client_id, &self.client_secret) {
            (Some(file), Some(id), Some(secret)) => {
                AuthMode::OAuth { client_id: id.clone(), client_secret: secret.clone(), token_file: file.clone() }
            }
            _ => match std::env::var("BOX_ACCESS_TOKEN").ok().filter(|t| !t.is_empty()) {
                Some(token) => AuthMode::Fixed(token),
                None => return Err("not logged in: set BOX_ACCESS_TOKEN or pass --token-file".into()),
            },
        };
        let source = TokenSource::new(mode).map_err(|e| e.to_string())?;
        Client::new(cfg, source).map_err(|e| e.to_string())
    }
}
