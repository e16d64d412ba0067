//! Mounting: resolves the root folder, opens the block cache, builds the vfs, mounts it with
//! fuser (serving its metrics first when asked), reports readiness, and serves until
//! `fusermount3 -u` or SIGINT/SIGTERM (both clean).

use crate::config::Settings;
use crate::control::{ControlServer, MountEntry};
use crate::fuse::{BoxFuse, KernelTtl};
use crate::vfs::read::blocks::{BlockCache, DEFAULT_BLOCK_SIZE};
use crate::vfs::read::pins::PinList;
use crate::vfs::read::prefetch::ReaderConfig;
use crate::vfs::write::journal::Journal;
use crate::vfs::{AttrPolicy, Fs, FsConfig, VfsError};
use boxfs_api::model::Item;
use boxfs_api::{ApiError, Client, StartAt, StreamState};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What a mount is made of: where, for whom, with which cache dir, with which settings.
#[derive(Clone, Debug)]
pub struct MountConfig {
    pub mountpoint: PathBuf,
    /// The saved account whose credentials the mount uses (`None`: given outright).
    pub account: Option<String>,
    /// The cache dir this mount holds (`settings.cache_dir`, or the account's default).
    pub cache_dir: PathBuf,
    pub settings: Settings,
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mountpoint {0} does not exist or is not a directory")]
    BadMountpoint(PathBuf),
    #[error("root folder '{0}' not found")]
    RootNotFound(String),
    #[error("cannot reach Box: {0}")]
    Api(#[from] ApiError),
    #[error("{0}")]
    Vfs(#[from] VfsError),
    #[error("cache dir {dir}: {source}")]
    Cache { dir: PathBuf, source: std::io::Error },
    #[error("FUSE mount failed: {0} (is fuse3 installed and /dev/fuse available?)")]
    Fuse(std::io::Error),
    #[error("{0}")]
    Metrics(#[from] crate::telemetry::TelemetryError),
}

/// Resolves `--root`: a numeric folder id as is, a path folder by folder (exact name first,
/// then Box's case-insensitive match).
pub async fn resolve_root(client: &Client, root: Option<&str>) -> Result<String, MountError> {
    let Some(root) = root.map(str::trim).filter(|r| !r.is_empty() && *r != "/") else {
        return Ok("0".into());
    };
    if root.chars().all(|c| c.is_ascii_digit()) {
        return Ok(root.to_string());
    }
    let mut id = "0".to_string();
    for part in root.split('/').filter(|p| !p.is_empty()) {
        let items = client.list_folder(&id).await?;
        let folder = |exact: bool| {
            items.iter().find(|i| {
                matches!(i, Item::Folder(_))
                    && if exact { i.name() == part } else { i.name().eq_ignore_ascii_case(part) }
            })
        };
        id = folder(true)
            .or_else(|| folder(false))
            .ok_or_else(|| MountError::RootNotFound(root.into()))?
            .id()
            .to_string();
    }
    Ok(id)
}

/// Builds the filesystem for `cfg` (no mounting yet).
pub async fn build_fs(client: &Client, cfg: &MountConfig) -> Result<Arc<Fs>, MountError> {
    if !cfg.mountpoint.is_dir() {
        return Err(MountError::BadMountpoint(cfg.mountpoint.clone()));
    }
    let root = resolve_root(client, cfg.settings.root.as_deref()).await?;
    let blocks_dir = cfg.cache_dir.join("blocks");
    let fs_cfg = fs_config(&cfg.settings);
    let cache = BlockCache::open(&blocks_dir, cfg.settings.cache_size, DEFAULT_BLOCK_SIZE)
        .map_err(|source| MountError::Cache { dir: blocks_dir.clone(), source })?
        .with_recent_blocks(fs_cfg.reader.recent_blocks());
    let journal_dir = Journal::dir_in(&cfg.cache_dir);
    let journal = Journal::open(&journal_dir).map_err(|source| MountError::Cache { dir: journal_dir, source })?;
    let pins =
        PinList::open(&cfg.cache_dir).map_err(|source| MountError::Cache { dir: cfg.cache_dir.clone(), source })?;
    Fs::new(Arc::new(client.clone()), &root, Arc::new(cache), journal, pins, fs_cfg).await.map_err(|e| match e {
        VfsError::Api(ApiError::NotFound { .. }) => MountError::RootNotFound(root.clone()),
        other => MountError::Vfs(other),
    })
}

/// What the vfs takes of `settings`.
fn fs_config(settings: &Settings) -> FsConfig {
    FsConfig {
        metadata_ttl: Duration::from_secs(settings.metadata_ttl),
        metadata_budget: usize::try_from(settings.metadata_cache_size).unwrap_or(usize::MAX),
        attrs: AttrPolicy {
            uid: settings.uid,
            gid: settings.gid,
            umask: settings.umask,
            read_only: settings.read_only,
        },
        reader: ReaderConfig::default(),
        writeback_delay: Duration::from_millis(settings.writeback_delay_ms),
        upload_parallelism: settings.upload_parallelism,
        sync_on_close: settings.sync_on_close,
        fsync: settings.fsync,
        lock_on_open: settings.lock_on_open,
    }
}

/// How long the kernel keeps entries and attributes while the event stream is live (it
/// tells the kernel of every change made elsewhere); otherwise `--metadata-ttl`.
const FOLLOWED_TTL: Duration = Duration::from_secs(3600);

/// Raises the soft limit on open files to the hard one: every pending upload keeps its staging
/// file open (two descriptors once it had a big write), and the usual soft limit of 1024 would
/// fail a copy of a few hundred files with `EMFILE`.
fn raise_open_file_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit(2) with a pointer to a local struct of the right type.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max && {
            let wanted = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0
        }
    };
    if raised {
        tracing::debug!(from = lim.rlim_cur, to = lim.rlim_max, "raised the open file limit");
    }
}

fn fuser_config(cfg: &MountConfig) -> fuser::Config {
    use fuser::MountOption as O;
    let mut config = fuser::Config::default();
    config.mount_options =
        vec![O::FSName("boxfs".into()), O::Subtype("boxfs".into()), O::DefaultPermissions, O::NoDev, O::NoSuid];
    config.mount_options.push(if cfg.settings.read_only { O::RO } else { O::RW });
    if cfg.settings.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(2);
    config
}

/// How long unmount waits for pending uploads that make no progress before it leaves them in
/// the journal for the next mount.
const DRAIN_PATIENCE: Duration = Duration::from_secs(60);

/// Mounts `fs` (which talks to Box through `client`) and serves until unmounted or signalled.
/// `ready` runs once the mount is live, `stopping` once it is going away (before pending
/// uploads drain).
pub async fn serve(
    fs: Arc<Fs>,
    client: Client,
    cfg: &MountConfig,
    ready: impl FnOnce(),
    stopping: impl FnOnce(),
) -> Result<(), MountError> {
    raise_open_file_limit();
    // Before mounting: an address that cannot be served fails the mount with nothing mounted.
    let mut telemetry = cfg.settings.metrics.map(crate::telemetry::serve).transpose()?;
    let kernel_ttl = KernelTtl::new(FOLLOWED_TTL, Duration::from_secs(cfg.settings.metadata_ttl));
    let adapter = BoxFuse::new(fs.clone(), tokio::runtime::Handle::current(), kernel_ttl.clone());
    let mut session = fuser::Session::new(adapter, &cfg.mountpoint, &fuser_config(cfg)).map_err(MountError::Fuse)?;
    let mut unmounter = session.unmount_callable();
    let notifier = session.notifier();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("boxfs-fuse".into())
        .spawn(move || {
            let _ = done_tx.send(session.run());
        })
        .map_err(MountError::Fuse)?;
    tracing::info!(mountpoint = %cfg.mountpoint.display(), "mounted");
    let events = cfg.settings.events.then(|| follow_events(fs.clone(), &client, notifier, kernel_ttl));
    if let Some(telemetry) = &mut telemetry {
        telemetry.mirror(fs.clone(), events.as_ref().map(|e| e.1.clone()));
    }
    if !cfg.settings.read_only {
        fs.recover();
    }
    fs.start_pinning();
    let entry = MountEntry {
        mountpoint: std::path::absolute(&cfg.mountpoint).unwrap_or_else(|_| cfg.mountpoint.clone()),
        cache_dir: cfg.cache_dir.clone(),
        account: cfg.account.clone(),
        pid: Some(std::process::id()),
    };
    // Without it the mount still works; `boxfs status` then reads the journal.
    let _control = match ControlServer::start(fs.clone(), client, entry, events.as_ref().map(|e| e.1.clone())) {
        Ok(server) => Some(server),
        Err(e) => {
            tracing::warn!(error = %e, "no control socket: boxfs status/sync cannot reach this mount");
            None
        }
    };
    // Handlers first: a SIGTERM right after "ready" must unmount, not kill.
    let shutdown = shutdown_signal().map_err(MountError::Fuse)?;
    ready();
    let result = tokio::select! {
        ended = done_rx => {
            tracing::info!("unmounted");
            ended.unwrap_or(Ok(())).map_err(MountError::Fuse)
        }
        _ = shutdown => {
            tracing::info!("signal received; unmounting");
            unmounter.unmount().map_err(MountError::Fuse)
        }
    };
    stopping();
    let pending = fs.pending_uploads();
    if pending > 0 {
        tracing::info!(
            pending,
            "waiting for pending uploads before exiting (signal again to leave them for the next mount)"
        );
        let again = shutdown_signal().map_err(MountError::Fuse)?;
        tokio::select! {
            _ = fs.drain(DRAIN_PATIENCE) => {}
            _ = again => {
                let left = fs.pending_uploads();
                tracing::warn!(left, "exiting with uploads pending; they stay in the journal and resume at the next mount");
            }
        }
    }
    fs.release_writer_locks().await;
    result
}

/// Starts the event consumer, which also keeps `kernel_ttl` long while the stream is live; it
/// stops when the returned tasks are dropped (aborted). The receiver tells the stream's health.
fn follow_events(
    fs: Arc<Fs>,
    client: &Client,
    notifier: fuser::Notifier,
    kernel_ttl: KernelTtl,
) -> (Vec<AbortOnDrop>, watch::Receiver<StreamState>) {
    let stream = client.event_stream(StartAt::Now);
    let mut state = stream.state.clone();
    let notifier = Arc::new(notifier);
    let follow = AbortOnDrop(tokio::spawn(crate::vfs::events::follow(fs, stream, move |inval| {
        let notifier = notifier.clone();
        // Off the async workers: a kernel notification may wait for a FUSE request to finish.
        tokio::task::spawn_blocking(move || crate::fuse::notify_kernel(&notifier, &inval));
    })));
    let health = state.clone();
    let ttl = AbortOnDrop(tokio::spawn(async move {
        loop {
            kernel_ttl.set_live(matches!(*state.borrow_and_update(), StreamState::Live));
            if state.changed().await.is_err() {
                return kernel_ttl.set_live(false);
            }
        }
    }));
    (vec![follow, ttl], health)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Installs the SIGTERM/SIGINT handlers now; the future resolves on the first signal.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// One mount's exclusive use of a cache dir (its block cache and write-back journal): an
/// `flock` on `DIR/lock`, which the kernel drops when the process exits however it exits, so
/// a dir left by a killed mount is free at once (and its journal is taken up by the next
/// mount that uses it: journal records are complete in themselves).
pub struct CacheDirLock {
    _file: std::fs::File,
}

impl CacheDirLock {
    /// The lock of `dir` (made 0700 if need be), or `None` while another process holds it.
    pub fn try_take(dir: &std::path::Path) -> std::io::Result<Option<CacheDirLock>> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(boxfs_io::lock_file::try_lock(&dir.join("lock"))?.map(|file| CacheDirLock { _file: file }))
    }
}
