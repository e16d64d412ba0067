//! `boxfs login` and `boxfs logout`: the authorization-code flow (browser + one-shot callback
//! server on 127.0.0.1), the client-credentials grant, JWT apps (the console's config file)
//! and developer tokens from stdin, each checked against `/users/me` and saved as a named
//! account (running mounts of the account
//! switch to the new tokens); logout revokes and deletes, and names the running mounts of the
//! account that stop working.

use super::accounts::{self, Account, AccountError, Kind, DEFAULT_ACCOUNT};
use super::callback::{CallbackError, CallbackServer};
use boxfs_api::{oauth, ApiConfig, ApiError, AuthMode, Client, StoredTokens, TokenSource};
use clap::Args;
use std::io::{BufRead, IsTerminal};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

/// The callback port when `--port` is not given (the redirect URI to register in the Box app
/// is `http://127.0.0.1:53682/callback`).
pub const DEFAULT_PORT: u16 = 53682;

/// Shown after `boxfs login --help` and in boxfs-login(1).
const LOGIN_AFTER_HELP: &str = "\
Without --client-credentials, --jwt or --token, prints an authorization URL (and opens it when a \
browser is available), then waits on http://127.0.0.1:PORT/callback for Box to redirect back. \
Register exactly that redirect URI in the Box app (default http://127.0.0.1:53682/callback).

The account is saved 0600 under $XDG_CONFIG_HOME/boxfs/accounts/: NAME.json (kind of \
credential, client id/secret, API and upload URLs) and NAME.tokens.json (tokens, refreshed in \
place by mounts). Every boxfs process of the account shares these tokens (one refresh at a time, \
under a lock on NAME.tokens.lock) and one request budget; logging in again while mounts of the \
account run switches them to the new tokens.

With --jwt, the app config file from Box's developer console (boxAppSettings: clientID, \
clientSecret, appAuth with publicKeyID, the encrypted privateKey and its passphrase; \
enterpriseID) is copied 0600 to NAME.jwt.json; every process of the account requests its own \
token with a signed assertion whenever it needs one (as the enterprise's service account, or \
as --user ID). Add --as-user ID to a mount to act for another user.";

#[derive(Debug, Args)]
#[command(after_long_help = LOGIN_AFTER_HELP)]
pub struct LoginArgs {
    /// Name to save this login under (mount it with `boxfs mount --account NAME`).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ACCOUNT)]
    pub account: String,
    /// Box API base URL to log in to [env: BOX_API_URL] (default: https://api.box.com/2.0); recorded in the account.
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// Box upload base URL [env: BOX_UPLOAD_URL] (default: https://upload.box.com/api/2.0, or
    /// ORIGIN/api/2.0 beside a non-Box --api-url such as the emulator's); recorded in the account.
    #[arg(long, value_name = "URL")]
    pub upload_url: Option<String>,
    /// Client id of your Box app.
    #[arg(long, value_name = "ID", env = "BOX_CLIENT_ID", hide_env_values = true)]
    pub client_id: Option<String>,
    /// Client secret of your Box app (prefer the variable: flags show in `ps`).
    #[arg(long, value_name = "SECRET", env = "BOX_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Port of the callback server on 127.0.0.1: the Box app's redirect URI must be
    /// http://127.0.0.1:PORT/callback (0 picks a free port).
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Only print the authorization URL; do not try to open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for the browser to come back.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// Use the client-credentials grant (Box "server authentication") instead of a browser;
    /// needs --enterprise or --user.
    #[arg(long, conflicts_with_all = ["token", "jwt"], requires = "subject")]
    pub client_credentials: bool,
    /// Log in as a JWT app ("server authentication with JWT") with the app config file
    /// Box's developer console downloads; as its service account (the file's enterpriseID),
    /// or as --user ID.
    #[arg(long, value_name = "CONFIG.json", conflicts_with = "token")]
    pub jwt: Option<std::path::PathBuf>,
    /// Client credentials or JWT: act as the service account of this enterprise id.
    #[arg(long, value_name = "ID", group = "subject")]
    pub enterprise: Option<String>,
    /// Client credentials or JWT: act as this user id.
    #[arg(long, value_name = "ID", group = "subject")]
    pub user: Option<String>,
    /// Read a developer token from stdin (valid 60 minutes; not renewable). With --client-id
    /// and --client-secret, logout can revoke it.
    #[arg(long)]
    pub token: bool,
}

/// Shown after `boxfs logout --help` and in boxfs-logout(1).
const LOGOUT_AFTER_HELP: &str = "\
Revokes the account's tokens at Box and deletes its files. Running mounts of the account are \
listed: they stop working until the next boxfs login of the account.";

#[derive(Debug, Args)]
#[command(after_long_help = LOGOUT_AFTER_HELP)]
pub struct LogoutArgs {
    /// The account to log out of.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ACCOUNT)]
    pub account: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    Usage(&'static str),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("reading the token from stdin: {0}")]
    Stdin(std::io::Error),
}

pub fn run_login(args: LoginArgs) -> ExitCode {
    report("login", block_on(login(args)))
}

pub fn run_logout(args: LogoutArgs) -> ExitCode {
    report("logout", block_on(logout(&args.account)))
}

fn block_on<T>(fut: impl std::future::Future<Output = Result<T, LoginError>>) -> Result<T, LoginError> {
    super::init_logging("warn");
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ApiError::Io)?.block_on(fut)
}

fn report(what: &str, result: Result<String, LoginError>) -> ExitCode {
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("boxfs {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn login(args: LoginArgs) -> Result<String, LoginError> {
    accounts::check_name(&args.account)?;
    let cfg = ApiConfig::resolve(args.api_url.clone(), args.upload_url.clone());
    let mut account = Account {
        kind: Kind::Oauth,
        api_url: cfg.api_url.clone(),
        upload_url: cfg.upload_url.clone(),
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
        subject_type: None,
        subject_id: None,
    };
    let name = args.account.as_str();
    if (args.user.is_some() || args.enterprise.is_some()) && !args.client_credentials && args.jwt.is_none() {
        return Err(LoginError::Usage("--user and --enterprise go with --client-credentials or --jwt"));
    }
    let me = if args.token {
        account.kind = Kind::DeveloperToken;
        let token = read_token()?;
        let me = verify(&account, AuthMode::Fixed(token.clone())).await?;
        accounts::save_tokens(name, &StoredTokens::fixed(token)).await?;
        me
    } else if let Some(path) = &args.jwt {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ApiError::Config(format!("cannot read {}: {e}", path.display())))?;
        let app = boxfs_api::jwt::AppConfig::parse(&text)?;
        account.kind = Kind::Jwt;
        account.client_id = Some(app.box_app_settings.client_id.clone());
        account.client_secret = None;
        (account.subject_type, account.subject_id) = match (&args.user, &args.enterprise, &app.enterprise_id) {
            (Some(user), _, _) => (Some("user".into()), Some(user.clone())),
            (None, Some(e), _) | (None, None, Some(e)) => (Some("enterprise".into()), Some(e.clone())),
            (None, None, None) => {
                return Err(LoginError::Usage("the app config has no enterpriseID: give --enterprise ID or --user ID"))
            }
        };
        accounts::save_app_config(name, &text)?;
        let verified = match account.auth_mode(name) {
            Ok(mode) => verify(&account, mode).await,
            Err(e) => Err(e.into()),
        };
        if verified.is_err() {
            let _ = accounts::remove_if_present(accounts::app_config_file(name));
        }
        let me = verified?;
        accounts::remove_tokens(name).await?;
        me
    } else if args.client_credentials {
        client_pair(&args)?;
        account.kind = Kind::ClientCredentials;
        account.subject_type = Some(if args.user.is_some() { "user" } else { "enterprise" }.into());
        account.subject_id = args.user.clone().or(args.enterprise.clone());
        let me = verify(&account, account.auth_mode(name)?).await?;
        accounts::remove_tokens(name).await?;
        me
    } else {
        let (id, secret) = client_pair(&args)?;
        let tokens = authorization_code(&args, &cfg, &id, &secret).await?;
        let me = verify(&account, AuthMode::Fixed(tokens.access_token.clone())).await?;
        accounts::save_tokens(name, &tokens).await?;
        me
    };
    account.save(name)?;
    let mount = if name == DEFAULT_ACCOUNT {
        "boxfs mount DIR".to_string()
    } else {
        format!("boxfs mount --account {name} DIR")
    };
    Ok(format!("Logged in as {} <{}> (account '{name}', {}). Mount with: {mount}", me.name, me.login, account.api_url))
}

fn client_pair(args: &LoginArgs) -> Result<(String, String), LoginError> {
    match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Ok((id.clone(), secret.clone())),
        _ => Err(LoginError::Usage(
            "needs your Box app's client id and secret: --client-id/--client-secret or BOX_CLIENT_ID/BOX_CLIENT_SECRET",
        )),
    }
}

/// The browser flow: print (and open) the authorize URL, wait for the callback, trade the code.
async fn authorization_code(
    args: &LoginArgs,
    cfg: &ApiConfig,
    id: &str,
    secret: &str,
) -> Result<StoredTokens, LoginError> {
    let server = CallbackServer::bind(args.port).await?;
    let redirect_uri = server.redirect_uri();
    let state = hex::encode(rand::random::<[u8; 16]>());
    let url = oauth::authorize_url(cfg, id, &redirect_uri, &state);
    eprintln!("To let boxfs use your Box account, open this address in a browser:\n\n{url}\n");
    if !args.no_browser && open_browser(&url) {
        eprintln!("(opened in your browser)");
    }
    eprintln!("Waiting for Box to redirect to {redirect_uri} ...");
    let code = server.wait_for_code(&state, Duration::from_secs(args.timeout)).await?;
    Ok(oauth::exchange_code(cfg, id, secret, &code, &redirect_uri).await?)
}

/// Checks the credential by asking who it belongs to.
async fn verify(account: &Account, mode: AuthMode) -> Result<boxfs_api::model::User, LoginError> {
    let client = Client::new(account.api_config(), TokenSource::new(mode)?)?;
    Ok(client.me().await?)
}

fn read_token() -> Result<String, LoginError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Paste the developer token and press Enter:");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(LoginError::Stdin)?;
    let token = line.trim().to_string();
    if token.is_empty() {
        return Err(LoginError::Usage("no token on stdin"));
    }
    Ok(token)
}

/// Opens `url` with `xdg-open` when there is a display to open it on.
fn open_browser(url: &str) -> bool {
    let display = ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
    if !display || !super::preflight::on_path("xdg-open") {
        return false;
    }
    let spawned = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

async fn logout(name: &str) -> Result<String, LoginError> {
    let account = Account::load(name)?;
    // Asked first: once the tokens are revoked, the mounts cannot even answer a stat.
    let mounts = crate::control::running_mounts_of(name);
    // Under the token lock: a mount refreshing right now cannot write the tokens back.
    let held = accounts::lock_tokens(name).await?;
    let revoked = revoke(name, &account).await;
    accounts::delete(name, &held)?;
    drop(held);
    let stopping = if mounts.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = mounts.iter().map(|m| format!("\n  {}", m.display())).collect();
        format!(
            "\nThese running mounts of account '{name}' stop working until you log in again \
             (boxfs login --account {name}) or unmount them:{}",
            list.concat()
        )
    };
    match revoked {
        Ok(what) => Ok(format!("Logged out of account '{name}': {what}; its credentials are deleted.{stopping}")),
        Err(e) => Err(LoginError::Api(ApiError::Config(format!(
            "the credentials of account '{name}' are deleted, but revoking them failed: {e}{stopping}"
        )))),
    }
}

/// Revokes what the account holds; says what was done.
async fn revoke(name: &str, account: &Account) -> Result<&'static str, ApiError> {
    if matches!(account.kind, Kind::ClientCredentials | Kind::Jwt) {
        return Ok("tokens of server authentication are never stored, so there was nothing to revoke");
    }
    let (Some(id), Some(secret)) = (&account.client_id, &account.client_secret) else {
        return Ok("the developer token was not revoked (no client id/secret recorded; it expires within 60 minutes)");
    };
    let tokens = match account.tokens(name) {
        Ok(t) => t,
        Err(_) => return Ok("no tokens were stored"),
    };
    let cfg = account.api_config();
    if let Some(refresh) = &tokens.refresh_token {
        oauth::revoke(&cfg, id, secret, refresh).await?;
    }
    oauth::revoke(&cfg, id, secret, &tokens.access_token).await?;
    Ok("its tokens are revoked")
}
