//! The daemon side of the control channel: answers `status` from the live filesystem, runs
//! `sync` and `pin --wait`, streaming progress, and `unpin`; a `sync` or a `pin --wait` ends
//! early, saying so, while Box cannot be reached. Removes its socket (and, when nothing is
//! left pending, its registry entry) when dropped at unmount.

use super::{
    paths_for, private_parent, register, Account, ApiUse, Cache, MountEntry, PinDone, PinReport, PinsNow, Reachability,
    RecoverDone, Request, SharedBudget, Status, SyncDone, Upload,
};
use crate::vfs::read::pins::PinState;
use crate::vfs::uploads::Scope;
use crate::vfs::Fs;
use boxfs_api::{Client, StreamState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// How often `sync` reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What the server reports besides the filesystem itself.
#[derive(Clone)]
struct Context {
    fs: Arc<Fs>,
    /// The Box client `fs` talks through: its account, request counters and budget.
    client: Client,
    entry: MountEntry,
    events: Option<watch::Receiver<StreamState>>,
}

pub struct ControlServer {
    task: tokio::task::JoinHandle<()>,
    fs: Arc<Fs>,
    registry: PathBuf,
    socket: PathBuf,
}

impl ControlServer {
    /// Registers the mount and listens on its socket (mode 0600).
    pub fn start(
        fs: Arc<Fs>,
        client: Client,
        entry: MountEntry,
        events: Option<watch::Receiver<StreamState>>,
    ) -> std::io::Result<ControlServer> {
        let (registry, socket) = paths_for(&entry.mountpoint)?;
        private_parent(&socket)?;
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)?;
        std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        register(&entry)?;
        let ctx = Context { fs: fs.clone(), client, entry, events };
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_one(stream, &ctx).await {
                        tracing::debug!(error = %e, "control connection ended");
                    }
                });
            }
        });
        Ok(ControlServer { task, fs, registry, socket })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
        // Failed uploads stay in the journal: keep the entry so `boxfs status` finds them.
        if self.fs.pending_uploads() == 0 {
            let _ = std::fs::remove_file(&self.registry);
        }
    }
}

async fn serve_one(stream: UnixStream, ctx: &Context) -> Result<(), super::ControlError> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    match serde_json::from_str::<Request>(line.trim())? {
        Request::Status { path } => {
            let scope = match &path {
                Some(p) => scope_of(&ctx.fs, std::slice::from_ref(p)).await.unwrap_or(Scope::Under(Vec::new())),
                None => Scope::All,
            };
            send(&mut write, &Status { path, ..status(ctx, &scope).await }).await
        }
        Request::Sync { paths } => {
            let scope = match scope_of(&ctx.fs, &paths).await {
                Ok(scope) => scope,
                Err(failures) => return send(&mut write, &SyncDone { done: true, failures }).await,
            };
            let (fs, chosen) = (ctx.fs.clone(), scope.clone());
            let mut sync = tokio::spawn(async move { fs.sync(&chosen).await });
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            loop {
                tokio::select! {
                    failures = &mut sync => {
                        let failures = failures.unwrap_or_else(|e| vec![format!("sync task: {e}")]);
                        return send(&mut write, &SyncDone { done: true, failures }).await;
                    }
                    _ = tick.tick() => {
                        let now = status(ctx, &scope).await;
                        let queued = || format!("{} upload(s) stay queued and go when it is back", now.uploads.len());
                        if let Some(why) = unreachable_now(&ctx.fs, queued) {
                            return send(&mut write, &SyncDone { done: true, failures: vec![why] }).await;
                        }
                        send(&mut write, &now).await?
                    }
                }
            }
        }
        Request::Recover { path, upload } => send(&mut write, &recover(&ctx.fs, &path, upload).await).await,
        Request::Pin { paths, wait } => {
            let (pinned, mut errors) = pin(&ctx.fs, &paths).await;
            if wait && errors.is_empty() {
                errors = wait_for_pins(&ctx.fs, &pinned, &mut write).await?;
            }
            send(&mut write, &PinDone { done: true, errors }).await
        }
        Request::Unpin { paths } => {
            let mut errors = Vec::new();
            for path in &paths {
                let unpinned = match ctx.fs.resolve(path).await {
                    Ok(ino) => ctx.fs.unpin(ino).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = unpinned {
                    errors.push(path_error(path, e));
                }
            }
            send(&mut write, &PinDone { done: true, errors }).await
        }
    }
}

/// Pins each path; the inodes pinned, and one message per path that could not be.
async fn pin(fs: &Fs, paths: &[PathBuf]) -> (Vec<u64>, Vec<String>) {
    let (mut pinned, mut errors) = (Vec::new(), Vec::new());
    for path in paths {
        let done = match fs.resolve(path).await {
            Ok(ino) => fs.pin(ino).await.map(|_| ino),
            Err(e) => Err(e),
        };
        match done {
            Ok(ino) => pinned.push(ino),
            Err(e) => errors.push(path_error(path, e)),
        }
    }
    (pinned, errors)
}

/// Why a pin or unpin of `path` could not be done: `path: why`, or a pin's own refusal alone
/// (its message names the item).
fn path_error(path: &Path, e: crate::vfs::VfsError) -> String {
    match e {
        crate::vfs::VfsError::Pin(e) => e.to_string(),
        e => format!("{}: {e}", path.display()),
    }
}

/// While Box cannot be reached, why a `sync` or a `pin --wait` ends now (`then`: what happens
/// once it is back).
fn unreachable_now(fs: &Fs, then: impl FnOnce() -> String) -> Option<String> {
    let connection = fs.connection();
    if connection.is_online() {
        return None;
    }
    Some(format!("Box is unreachable ({}); {}", Reachability::of(&connection).describe(), then()))
}

/// Sends the progress of the pins of `inos` every [`PROGRESS_EVERY`] until each is complete or
/// failed; the failures.
async fn wait_for_pins(
    fs: &Fs,
    inos: &[u64],
    write: &mut (impl AsyncWriteExt + Unpin),
) -> Result<Vec<String>, super::ControlError> {
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tick.tick().await;
        if let Some(why) = unreachable_now(fs, || "what is missing downloads when it is back".into()) {
            return Ok(vec![why]);
        }
        let infos: Vec<_> = inos.iter().map(|&ino| fs.pin_info(ino)).collect();
        let pins: Vec<PinReport> = infos.iter().flatten().cloned().map(PinReport::from).collect();
        send(write, &PinsNow { pins }).await?;
        let states: Vec<_> = infos.iter().map(|i| i.as_ref().map(|i| &i.progress.state)).collect();
        if states.iter().all(|s| s.is_none_or(|s| *s != PinState::Downloading)) {
            let failed = inos.iter().zip(states).filter_map(|(&ino, state)| match state {
                Some(PinState::Failed(why)) => Some(format!("{}: {why}", fs.path_in_mount(ino))),
                None => Some(format!("{}: no longer pinned", fs.path_in_mount(ino))),
                _ => None,
            });
            return Ok(failed.collect());
        }
    }
}

/// The files at or under `paths` (relative to the mount's root); none: everything. The
/// error lists the paths not found.
async fn scope_of(fs: &Fs, paths: &[PathBuf]) -> Result<Scope, Vec<String>> {
    if paths.iter().all(|p| p.as_os_str().is_empty()) {
        return Ok(Scope::All);
    }
    let mut inos = Vec::new();
    let mut missing = Vec::new();
    for path in paths {
        match fs.resolve(path).await {
            Ok(ino) => inos.push(ino),
            Err(e) => missing.push(format!("{}: {e}", path.display())),
        }
    }
    if missing.is_empty() {
        Ok(Scope::Under(inos))
    } else {
        Err(missing)
    }
}

async fn recover(fs: &Fs, path: &std::path::Path, upload: bool) -> RecoverDone {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return RecoverDone { decided: 0, error: Some(format!("{}: not a file", path.display())) };
    };
    let decided = match fs.resolve(dir).await {
        Ok(dir) => fs.decide_held(dir, name, upload),
        Err(e) => Err(e),
    };
    match decided {
        Ok(decided) => RecoverDone { decided, error: None },
        Err(e) => RecoverDone { decided: 0, error: Some(format!("{}: {e}", path.display())) },
    }
}

async fn send(
    write: &mut (impl AsyncWriteExt + Unpin),
    value: &impl serde::Serialize,
) -> Result<(), super::ControlError> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    Ok(())
}

async fn status(ctx: &Context, scope: &Scope) -> Status {
    let fs = &ctx.fs;
    let account = match fs.quota().await {
        Ok(me) => Some(Account {
            user_id: me.id,
            login: me.login,
            api_url: ctx.client.config().api_url.clone(),
            space_used: me.space_used,
            space_amount: me.space_amount,
        }),
        Err(e) => {
            tracing::debug!(error = %e, "status: cannot ask Box who we are");
            None
        }
    };
    let counters = ctx.client.counters();
    let minute = counters.last_minute();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let usage = fs.cache_usage();
    let budget = ctx.client.budget_use().await;
    Status {
        mountpoint: ctx.entry.mountpoint.clone(),
        source: "daemon".into(),
        pid: Some(std::process::id()),
        account,
        connection: Reachability::of(&ctx.client.connection()),
        events: events_word(ctx.events.as_ref()),
        cache: Cache {
            dir: ctx.entry.cache_dir.clone(),
            used_bytes: Some(usage.used),
            capacity_bytes: Some(usage.capacity),
            pinned_bytes: Some(usage.pinned),
        },
        api: Some(ApiUse {
            requests_last_minute: minute.requests,
            throttled_last_minute: minute.throttled,
            requests_total: load(&counters.requests),
            throttled_total: load(&counters.throttled),
            retries_total: load(&counters.retries),
        }),
        uploads: fs.uploads(scope).into_iter().map(Upload::from).collect(),
        path: None,
        budget: Some(SharedBudget {
            requests_last_minute: budget.requests_last_minute,
            uploads_last_minute: budget.uploads_last_minute,
            requests_per_minute: budget.requests_per_minute,
            uploads_per_minute: budget.uploads_per_minute,
            pids: budget.pids,
        }),
        pins: fs.pins_report().into_iter().map(PinReport::from).collect(),
    }
}

fn events_word(events: Option<&watch::Receiver<StreamState>>) -> String {
    match events.map(|rx| rx.borrow().clone()) {
        None => "off".into(),
        Some(StreamState::Live) => "live".into(),
        Some(StreamState::Connecting) => "connecting".into(),
        Some(StreamState::Degraded(why)) => format!("degraded: {why}"),
    }
}
