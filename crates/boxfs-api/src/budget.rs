//! The client-side request budget: token buckets (requests and uploads per minute) that a
//! request waits on before it is sent, so that boxfs stays under Box's per-user limits instead
//! of living on 429s.
//!
//! One budget is shared by every process that makes requests as the same identity on this
//! machine (every mount and `whoami` of an account; every process of one client-credentials
//! subject): its state is a small JSON file under the runtime dir
//! (`$XDG_RUNTIME_DIR/boxfs/budgets/<hash of the identity>.json`), read and rewritten under an
//! exclusive `flock` held for microseconds (never across an await). A file rather than a broker
//! process: nothing to start, supervise or reconnect to, nothing lost when any process dies
//! (the kernel drops its lock), and a take is a few syscalls on tmpfs. Times in it are
//! `CLOCK_MONOTONIC`, which all processes share; a state from before a reboot is discarded.
//! When the file cannot be used the process falls back to a budget of its own (and says so).
//!
//! Priorities: background requests (prefetch, uploads) may not take the last
//! [`BACKGROUND_RESERVE`] of a bucket, so that requests someone waits on (a lookup, a read) go
//! ahead when the budget is tight; idle requests (downloads of pinned content) may not take the
//! last [`IDLE_RESERVE`], so that background work goes ahead of them too. Within a process,
//! waiters of one priority are served in turn.
//!
//! The file also keeps what was sent in the last minute (per second) and the pids of the
//! processes sharing the budget, for `boxfs status`.

use super::config::BudgetConfig;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::Mutex;

/// The share of each bucket that only foreground requests may take.
const BACKGROUND_RESERVE: f64 = 0.1;
/// The share of each bucket that idle requests may not take (foreground and background may).
const IDLE_RESERVE: f64 = 0.3;

/// How long a take waits between tries while another process holds the file's lock.
const LOCK_RETRY: Duration = Duration::from_millis(1);

const WINDOW_SECS: u64 = 60;

/// Who waits for a request: a user (foreground), nobody right now (background), or nobody
/// at all soon (idle: content kept ahead of any need, such as pinned files).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Priority {
    #[default]
    Foreground,
    Background,
    Idle,
}

impl Priority {
    /// The share of each bucket requests of this priority leave to the ones above it.
    fn reserve(self) -> f64 {
        match self {
            Priority::Foreground => 0.0,
            Priority::Background => BACKGROUND_RESERVE,
            Priority::Idle => IDLE_RESERVE,
        }
    }
}

/// The budget's use across every process sharing it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BudgetUse {
    pub requests_last_minute: u64,
    pub uploads_last_minute: u64,
    pub requests_per_minute: u32,
    pub uploads_per_minute: u32,
    /// Live processes sharing the budget, this one included.
    pub pids: Vec<u32>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
struct Bucket {
    tokens: f64,
}

/// The shared state (the file's content).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct State {
    /// `CLOCK_MONOTONIC` nanoseconds of the last update; 0 for a new budget.
    at_ns: u64,
    requests: Bucket,
    uploads: Bucket,
    /// `[second, requests, uploads]` sent in each of the last `WINDOW_SECS` seconds.
    recent: Vec<[u64; 3]>,
    pids: Vec<u32>,
}

impl State {
    /// Refills both buckets up to `now_ns` (a state from another boot starts full).
    fn refill(&mut self, now_ns: u64, cfg: &BudgetConfig) {
        let (req_cap, up_cap) = caps(cfg);
        if self.at_ns == 0 || self.at_ns > now_ns {
            *self = State { pids: std::mem::take(&mut self.pids), ..State::default() };
            self.requests.tokens = req_cap;
            self.uploads.tokens = up_cap;
        } else {
            let secs = (now_ns - self.at_ns) as f64 / 1e9;
            self.requests.tokens = (self.requests.tokens + secs * req_cap / 60.0).min(req_cap);
            self.uploads.tokens = (self.uploads.tokens + secs * up_cap / 60.0).min(up_cap);
        }
        self.at_ns = now_ns;
        let sec = now_ns / 1_000_000_000;
        self.recent.retain(|r| r[0] + WINDOW_SECS > sec);
    }

    /// Takes one request (and one upload) now, or says how long until it may.
    fn take(&mut self, now_ns: u64, upload: bool, priority: Priority, cfg: &BudgetConfig) -> Result<(), Duration> {
        self.refill(now_ns, cfg);
        let (req_cap, up_cap) = caps(cfg);
        let reserve = priority.reserve();
        let wait = |bucket: &Bucket, cap: f64| {
            let need = 1.0 + (reserve * cap).floor();
            Duration::from_secs_f64(((need - bucket.tokens) / (cap / 60.0)).max(0.0))
        };
        let wait = wait(&self.requests, req_cap).max(if upload { wait(&self.uploads, up_cap) } else { Duration::ZERO });
        if !wait.is_zero() {
            return Err(wait);
        }
        self.requests.tokens -= 1.0;
        if upload {
            self.uploads.tokens -= 1.0;
        }
        let sec = now_ns / 1_000_000_000;
        match self.recent.last_mut() {
            Some(last) if last[0] == sec => {
                last[1] += 1;
                last[2] += u64::from(upload);
            }
            _ => self.recent.push([sec, 1, u64::from(upload)]),
        }
        Ok(())
    }

    /// Drops the pids of processes that are gone. (A pid appears once per budget it opened.)
    fn prune(&mut self) {
        self.pids.retain(|pid| boxfs_io::runtime_dir::process_alive(*pid));
    }

    fn usage(&self, cfg: &BudgetConfig) -> BudgetUse {
        BudgetUse {
            requests_last_minute: self.recent.iter().map(|r| r[1]).sum(),
            uploads_last_minute: self.recent.iter().map(|r| r[2]).sum(),
            requests_per_minute: cfg.requests_per_minute,
            uploads_per_minute: cfg.uploads_per_minute,
            pids: {
                let mut pids = self.pids.clone();
                pids.sort_unstable();
                pids.dedup();
                pids
            },
        }
    }
}

fn caps(cfg: &BudgetConfig) -> (f64, f64) {
    (f64::from(cfg.requests_per_minute.max(1)), f64::from(cfg.uploads_per_minute.max(1)))
}

fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
}

/// Where the state lives.
enum Store {
    /// Shared with other processes (see the module doc).
    File { path: PathBuf, file: File },
    /// This process's own, when the file cannot be used.
    Memory(State),
}

pub struct Budget {
    cfg: BudgetConfig,
    store: Mutex<Store>,
    /// One waiter per priority (indexed by it) at a time asks the store; the others queue
    /// here in turn.
    turns: [Mutex<()>; 3],
}

impl Budget {
    /// The budget of `identity` (see `AuthMode::identity`) in `cfg.dir`, joined by this process.
    pub fn open(cfg: &BudgetConfig, identity: &str) -> Budget {
        let mut store = match open_shared(&cfg.dir, &budget_file_name(identity)) {
            Ok((path, file)) => Store::File { path, file },
            Err(e) => {
                tracing::warn!(dir = %cfg.dir.display(), error = %e, "cannot share the request budget with other boxfs processes; this process keeps its own");
                Store::Memory(State::default())
            }
        };
        update_sync(&mut store, |s| {
            s.prune();
            s.pids.push(std::process::id());
        });
        Budget { cfg: cfg.clone(), store: Mutex::new(store), turns: Default::default() }
    }

    /// Waits until one request (and one upload when `upload`) may be sent, then takes it.
    pub async fn acquire(&self, upload: bool, priority: Priority) {
        let _turn = self.turns[priority as usize].lock().await;
        loop {
            let taken = self.update(|s| s.take(monotonic_ns(), upload, priority, &self.cfg)).await;
            match taken {
                Ok(()) => return,
                // Another process may take what refills meanwhile: then this waits again.
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// What the processes sharing this budget sent in the last minute, and who they are.
    pub async fn usage(&self) -> BudgetUse {
        self.update(|s| {
            s.refill(monotonic_ns(), &self.cfg);
            s.prune();
            s.usage(&self.cfg)
        })
        .await
    }

    /// Applies `f` to the state under the file's lock (tried without blocking a thread).
    async fn update<R>(&self, mut f: impl FnMut(&mut State) -> R) -> R {
        let mut store = self.store.lock().await;
        loop {
            match try_update(&mut store, &mut f) {
                Some(r) => return r,
                None => tokio::time::sleep(LOCK_RETRY).await,
            }
        }
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        let me = std::process::id();
        update_sync(self.store.get_mut(), |s| {
            if let Some(mine) = s.pids.iter().position(|p| *p == me) {
                s.pids.remove(mine);
            }
        });
    }
}

fn budget_file_name(identity: &str) -> String {
    format!("{}.json", hex::encode(&Sha1::digest(identity.as_bytes())[..10]))
}

/// Opens (creating, 0600) the budget file `name` in `dir` (made 0700).
fn open_shared(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let dir = boxfs_io::runtime_dir::private_dir(dir.to_path_buf())?;
    let path = dir.join(name);
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path)?;
    Ok((path, file))
}

/// `f` on the state if the lock is free now; `None` if another process holds it.
fn try_update<R>(store: &mut Store, f: &mut impl FnMut(&mut State) -> R) -> Option<R> {
    match store {
        Store::Memory(state) => Some(f(state)),
        Store::File { path, file } => {
            match rustix::fs::flock(&*file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return None,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot lock the shared request budget; continuing with this process's own");
                    *store = Store::Memory(State::default());
                    return try_update(store, f);
                }
            }
            let mut state = read_state(file);
            let out = f(&mut state);
            if let Err(e) = write_state(file, &state) {
                tracing::debug!(path = %path.display(), error = %e, "cannot write the shared request budget");
            }
            let _ = rustix::fs::flock(&*file, rustix::fs::FlockOperation::Unlock);
            Some(out)
        }
    }
}

/// `try_update` until it gets the lock, blocking this thread (for `open` and `drop`, which
/// run once per process and wait at most for another process's few-microsecond update).
fn update_sync(store: &mut Store, mut f: impl FnMut(&mut State)) {
    while try_update(store, &mut f).is_none() {
        std::thread::sleep(LOCK_RETRY);
    }
}

/// The state in the file; a new (full) one when it is empty or unreadable.
fn read_state(file: &File) -> State {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0) as usize;
    let mut buf = vec![0u8; len];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) if len > 0 => serde_json::from_slice(&buf).unwrap_or_default(),
        _ => State::default(),
    }
}

fn write_state(file: &File, state: &State) -> std::io::Result<()> {
    let json = serde_json::to_vec(state).expect("budget state serializes");
    file.write_all_at(&json, 0)?;
    file.set_len(json.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn cfg(requests: u32, uploads: u32) -> BudgetConfig {
        BudgetConfig { requests_per_minute: requests, uploads_per_minute: uploads, ..BudgetConfig::default() }
    }

    #[test]
    fn a_spent_minute_waits_for_the_refill() {
        let cfg = cfg(60, 6);
        let mut s = State::default();
        for _ in 0..60 {
            s.take(SEC, false, Priority::Foreground, &cfg).unwrap();
        }
        let wait = s.take(SEC, false, Priority::Foreground, &cfg).unwrap_err();
        assert!(wait > Duration::from_millis(990) && wait <= Duration::from_secs(1), "{wait:?}");
        s.take(2 * SEC, false, Priority::Foreground, &cfg).expect("one more a second later");
        assert_eq!(s.usage(&cfg).requests_last_minute, 61);
        assert_eq!(s.usage(&cfg).uploads_last_minute, 0);
    }

    /// Takes requests (uploads when `upload`) at `priority`, all at one instant, until one is
    /// refused: how many were taken.
    fn takes(s: &mut State, upload: bool, priority: Priority, cfg: &BudgetConfig) -> usize {
        let mut taken = 0;
        while s.take(SEC, upload, priority, cfg).is_ok() {
            taken += 1;
        }
        taken
    }

    #[test]
    fn background_leaves_the_reserve_to_foreground() {
        let cfg = cfg(100, 10);
        let mut s = State::default();
        assert_eq!(
            takes(&mut s, false, Priority::Background, &cfg),
            90,
            "the last 10% are not for background requests"
        );
        assert_eq!(takes(&mut s, false, Priority::Foreground, &cfg), 10, "foreground takes the reserve");
        // Uploads have their own bucket and reserve.
        let mut s = State::default();
        assert_eq!(takes(&mut s, true, Priority::Background, &cfg), 9);
        s.take(SEC, true, Priority::Foreground, &cfg).unwrap();
    }

    #[test]
    fn idle_leaves_a_larger_reserve_to_background_and_foreground() {
        let cfg = cfg(100, 10);
        let mut s = State::default();
        assert_eq!(takes(&mut s, false, Priority::Idle, &cfg), 70, "the last 30% are not for idle requests");
        assert_eq!(takes(&mut s, false, Priority::Background, &cfg), 20, "background takes its share of the reserve");
        assert_eq!(takes(&mut s, false, Priority::Foreground, &cfg), 10, "foreground takes the rest");
    }

    #[test]
    fn the_window_forgets_after_a_minute_and_a_state_from_another_boot_starts_full() {
        let cfg = cfg(1000, 240);
        let mut s = State::default();
        s.take(10 * SEC, true, Priority::Foreground, &cfg).unwrap();
        s.take(40 * SEC, false, Priority::Foreground, &cfg).unwrap();
        s.refill(69 * SEC, &cfg);
        assert_eq!((s.usage(&cfg).requests_last_minute, s.usage(&cfg).uploads_last_minute), (2, 1));
        s.refill(71 * SEC, &cfg);
        assert_eq!((s.usage(&cfg).requests_last_minute, s.usage(&cfg).uploads_last_minute), (1, 0));
        s.requests.tokens = 0.0;
        s.refill(5 * SEC, &cfg);
        assert_eq!((s.requests.tokens, s.uploads.tokens), (1000.0, 240.0));
        assert!(s.recent.is_empty());
    }

    #[tokio::test]
    async fn processes_of_one_identity_share_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = BudgetConfig { dir: dir.path().join("budgets"), ..cfg(600, 600) };
        let a = Budget::open(&cfg, "account a");
        let b = Budget::open(&cfg, "account a");
        let other = Budget::open(&cfg, "account b");
        for _ in 0..100 {
            a.acquire(false, Priority::Foreground).await;
            b.acquire(true, Priority::Background).await;
        }
        let used = b.usage().await;
        assert_eq!((used.requests_last_minute, used.uploads_last_minute), (200, 100));
        assert_eq!(other.usage().await.requests_last_minute, 0);
        assert_eq!(used.pids, vec![std::process::id()]);
        // Spend the rest: the next request waits for the refill (10 per second).
        let start = std::time::Instant::now();
        for _ in 0..401 {
            a.acquire(false, Priority::Foreground).await;
        }
        assert!(start.elapsed() >= Duration::from_millis(50), "{:?}", start.elapsed());
        drop((a, b));
        let c = Budget::open(&cfg, "account a");
        assert_eq!(c.usage().await.pids, vec![std::process::id()]);
        let raw = read_state(&std::fs::File::open(cfg.dir.join(budget_file_name("account a"))).unwrap());
        assert_eq!(raw.pids, vec![std::process::id()], "a and b left it, c joined");
        let file_mode =
            |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions());
        let files: Vec<_> = std::fs::read_dir(&cfg.dir).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| file_mode(f) & 0o777 == 0o600));
        assert_eq!(file_mode(&cfg.dir) & 0o777, 0o700);
    }
}
