//! `boxfs emulator`: a faithful, persistent local Box API 2.0 server (API, upload host,
//! download host, long-poll and OAuth on one port) that boxfs and its tests run against.
//!
//! [`Emulator::bind`] opens the store in the data dir and binds the port; [`Emulator::spawn`]
//! serves in the background and stops when the returned handle is dropped.

mod error;
mod faults;
mod limits;
pub mod network;
mod routes;
pub mod seed;
mod server;
mod stats;
pub mod store;

pub use faults::{FaultSpec, FaultSpecError};
pub use network::{NetworkSpec, NetworkSpecError};
pub use store::{Store, StoreError, User, UserDefaults, ADMIN_ID, ENTERPRISE_ID, SERVICE_ID};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The OAuth client the emulator knows (Box apps have a client id and secret).
pub const DEFAULT_CLIENT_ID: &str = "boxfs-emulator-client";
pub const DEFAULT_CLIENT_SECRET: &str = "boxfs-emulator-secret";

#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Seed a fresh data dir with sample content.
    pub seed: Option<seed::SeedKind>,
    pub token_lifetime_secs: i64,
    pub faults: FaultSpec,
    /// Latency and per-connection bandwidth (`--latency`, `--bandwidth`).
    pub network: NetworkSpec,
    pub rate_limits: bool,
    /// Upload-session part size; when set, sessions are allowed from this size up (tests).
    pub part_size: Option<i64>,
    pub longpoll_timeout: Duration,
    pub session_lifetime_secs: i64,
    /// Every user's storage quota (the admin's at every start; others' when they are made).
    pub space_amount: i64,
    /// Managed users `user1@boxfs.invalid` … made at start when missing (`--users N`).
    pub users: usize,
    pub client_id: String,
    pub client_secret: String,
    /// Sees every API response (tests validate them against Box's spec); never set by the CLI.
    pub observer: Option<ResponseObserver>,
}

/// One API response as a client received it, for [`ResponseObserver`].
#[derive(Clone, Debug)]
pub struct ObservedResponse {
    pub method: String,
    /// The route template, e.g. `/2.0/files/{id}`.
    pub route: String,
    pub status: u16,
    /// The body when it is JSON (other bodies, such as file contents, are not kept).
    pub json_body: Option<bytes::Bytes>,
}

/// A test hook called with every response the emulator's routes give (not `/_emulator`).
#[derive(Clone)]
pub struct ResponseObserver(pub std::sync::Arc<dyn Fn(ObservedResponse) + Send + Sync>);

impl std::fmt::Debug for ResponseObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseObserver")
    }
}

impl EmulatorConfig {
    /// Defaults for a data dir, on an ephemeral loopback port.
    pub fn new(data_dir: impl Into<PathBuf>) -> EmulatorConfig {
        EmulatorConfig {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: None,
            token_lifetime_secs: 3600,
            faults: FaultSpec::default(),
            network: NetworkSpec::default(),
            rate_limits: false,
            part_size: None,
            longpoll_timeout: Duration::from_secs(60),
            session_lifetime_secs: 7 * 24 * 3600,
            space_amount: UserDefaults::default().space_amount,
            users: 0,
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            observer: None,
        }
    }
}

/// Box's default part size for sessions and the smallest file a session accepts.
pub const DEFAULT_PART_SIZE: i64 = 8 * 1024 * 1024;
pub const MIN_SESSION_FILE_SIZE: i64 = 20_000_000;

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot open the emulator data dir: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("refusing to listen on non-loopback address {0} (pass --allow-remote to do so)")]
    NotLoopback(SocketAddr),
}

/// Shared state of a running emulator.
pub struct Shared {
    pub store: Store,
    pub config: EmulatorConfig,
    stats: stats::Stats,
    faults: faults::Faults,
    network: network::Network,
    limiter: Option<limits::RateLimiter>,
    downloads: routes::DownloadTickets,
    pages: routes::PageCache,
    channel: String,
}

pub type AppState = Arc<Shared>;

pub struct Emulator {
    state: AppState,
    listener: tokio::net::TcpListener,
}

impl Emulator {
    /// Binds the listen address, then opens the data dir (seeding it when asked and new).
    pub async fn bind(config: EmulatorConfig, allow_remote: bool) -> Result<Emulator, EmulatorError> {
        if !allow_remote && !config.listen.ip().is_loopback() {
            return Err(EmulatorError::NotLoopback(config.listen));
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmulatorError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| EmulatorError::Bind { addr: config.listen, source })?;
        let defaults = UserDefaults { space_amount: config.space_amount, ..UserDefaults::default() };
        let store = Store::open(&config.data_dir, defaults, &format!("http://{addr}"))?;
        if let (Some(kind), true) = (config.seed, store.is_empty()?) {
            seed::seed(&store, kind)?;
        }
        for user in store.ensure_managed_users(config.users)? {
            tracing::info!(id = %user.id, login = %user.login, "managed user");
        }
        let state = Arc::new(Shared {
            stats: stats::Stats::default(),
            faults: faults::Faults::new(config.faults.clone()),
            network: network::Network::new(config.network),
            limiter: config.rate_limits.then(limits::RateLimiter::box_limits),
            downloads: routes::DownloadTickets::default(),
            pages: routes::PageCache::new(routes::PageCache::DEFAULT_BUDGET),
            channel: store::random_hex(10).to_lowercase(),
            store,
            config,
        });
        Ok(Emulator { state, listener })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        server::serve(self.listener, self.state, shutdown).await
    }

    /// Serves in the background; dropping the handle stops the server and its connections.
    pub fn spawn(self) -> RunningEmulator {
        let addr = self.addr();
        let state = self.state.clone();
        let task = tokio::spawn(self.serve(std::future::pending()));
        RunningEmulator { addr, state, task }
    }
}

impl Shared {
    /// `http://127.0.0.1:PORT`: the one origin of every host the emulator serves.
    pub fn base_url(&self) -> &str {
        self.store.base_url()
    }

    pub fn api_url(&self) -> String {
        format!("{}/2.0", self.base_url())
    }

    pub fn upload_url(&self) -> String {
        format!("{}/api/2.0", self.base_url())
    }

    /// Issues a developer token of the admin (no refresh token) with the configured lifetime.
    pub fn developer_token(&self) -> Result<String, StoreError> {
        self.developer_token_for(ADMIN_ID)
    }

    /// Issues a developer token of user `user_id`.
    pub fn developer_token_for(&self, user_id: &str) -> Result<String, StoreError> {
        let lifetime = self.config.token_lifetime_secs;
        Ok(self.store.issue_tokens(&self.config.client_id, user_id, lifetime, false)?.access_token)
    }

    /// The three `KEY=value` lines `boxfs emulator` prints first.
    pub fn env_lines(&self, token: &str) -> String {
        format!("BOX_API_URL={}\nBOX_UPLOAD_URL={}\nBOX_ACCESS_TOKEN={token}\n", self.api_url(), self.upload_url())
    }

    pub fn set_faults(&self, spec: FaultSpec) {
        self.faults.set(spec)
    }

    pub fn stats_snapshot(&self) -> serde_json::Value {
        self.stats.snapshot()
    }

    fn part_size(&self) -> i64 {
        self.config.part_size.unwrap_or(DEFAULT_PART_SIZE)
    }

    fn min_session_size(&self) -> i64 {
        self.config.part_size.unwrap_or(MIN_SESSION_FILE_SIZE)
    }
}

/// A background emulator; stops when dropped.
pub struct RunningEmulator {
    pub addr: SocketAddr,
    pub state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    pub fn base_url(&self) -> &str {
        self.state.base_url()
    }

    /// Stops serving, as if Box went away: the port is closed and every connection dropped;
    /// the state stays, for [`RunningEmulator::resume`].
    pub fn pause(&mut self) {
        self.task.abort();
    }

    /// Serves again on the same address after [`RunningEmulator::pause`].
    pub async fn resume(&mut self) -> Result<(), EmulatorError> {
        self.task.abort();
        let _ = (&mut self.task).await;
        let addr = self.addr;
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|source| EmulatorError::Bind { addr, source })?;
        self.task = tokio::spawn(server::serve(listener, self.state.clone(), std::future::pending()));
        Ok(())
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
