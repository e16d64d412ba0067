//! Mount harness: an emulator on its own runtime (so the test thread can do blocking file I/O)
//! and a real `boxfs mount --foreground` child process on a temp mountpoint. Drop unmounts
//! (`fusermount3 -u`, lazily if busy), stops the daemon and the emulator, also when a test
//! fails, so that a stale mount never breaks the next run.

use super::emu::TestEmulator;
use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub struct Mounted {
    child: Option<Child>,
    /// A soft limit on open files for the daemon (`None`: this process's).
    pub open_file_limit: Option<u64>,
    pub mnt: TempDir,
    pub cache: TempDir,
    pub emu: TestEmulator,
    pub rt: tokio::runtime::Runtime,
}

/// Starts an emulator (configured by `configure`) on a dedicated runtime.
pub fn emulator(
    configure: impl FnOnce(&mut boxfs_emulator::EmulatorConfig),
) -> (tokio::runtime::Runtime, TestEmulator) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let emu = rt.block_on(TestEmulator::start_with(configure));
    (rt, emu)
}

/// The emulator for a mount test, or `None` (the test then returns, skipped) when this
/// machine cannot mount FUSE filesystems (see `fuse_available`).
pub fn fuse_emulator(
    configure: impl FnOnce(&mut boxfs_emulator::EmulatorConfig),
) -> Option<(tokio::runtime::Runtime, TestEmulator)> {
    fuse_available().then(|| emulator(configure))
}

impl Mounted {
    /// Mounts the emulator's root (plus `extra` CLI arguments) and waits until it is ready.
    pub fn start(rt: tokio::runtime::Runtime, emu: TestEmulator, extra: &[&str]) -> Mounted {
        let mut mounted = Mounted::new(rt, emu);
        mounted.respawn(extra);
        mounted
    }

    /// Not started yet: set fields, then `respawn`.
    pub fn new(rt: tokio::runtime::Runtime, emu: TestEmulator) -> Mounted {
        let (mnt, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        Mounted { child: None, open_file_limit: None, mnt, cache, emu, rt }
    }

    /// Starts the daemon (again) on the same mountpoint and cache dir.
    pub fn respawn(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "the previous daemon is gone");
        let mut command = Command::new(env!("CARGO_BIN_EXE_boxfs"));
        if let Some(soft) = self.open_file_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: only getrlimit/setrlimit(2) on a local struct, between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                    lim.rlim_cur = soft;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                    Ok(())
                })
            };
        }
        let child = command
            .arg("mount")
            .arg(self.mnt.path())
            .args(["--foreground", "--api-url", &self.emu.api(""), "--upload-url", &self.emu.upload("")])
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(extra)
            .env("BOX_ACCESS_TOKEN", &self.emu.token)
            .env("BOXFS_NOTIFY_READY", "1")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,fuser::session=error".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("boxfs mount starts");
        wait_ready(self.child.insert(child));
    }

    pub fn path(&self) -> &Path {
        self.mnt.path()
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.mnt.path().join(rel)
    }

    /// name → sha1 of the files in a Box folder (through the API, not the mount).
    pub fn box_files(&self, folder_id: &str) -> std::collections::BTreeMap<String, String> {
        self.rt.block_on(async {
            let r =
                self.emu.get(&self.emu.api(&format!("/folders/{folder_id}/items?limit=1000&fields=name,sha1"))).await;
            r.body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "file")
                .map(|e| (e["name"].as_str().unwrap().to_string(), e["sha1"].as_str().unwrap().to_string()))
                .collect()
        })
    }

    /// The write-back journal's records (path, record) in the cache dir, by path.
    pub fn journal_records(&self) -> Vec<(PathBuf, serde_json::Value)> {
        let dir = self.cache.path().join("journal");
        let mut out: Vec<_> = std::fs::read_dir(&dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .filter(|p| !p.file_name().unwrap_or_default().to_string_lossy().starts_with('.'))
            .map(|p| {
                let record = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                (p, record)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Emulator counters (blocking).
    pub fn stats(&self) -> serde_json::Value {
        self.rt.block_on(self.emu.stats())
    }

    /// Requests about items (everything but the event stream, whose long-poll reconnects on
    /// its own schedule).
    pub fn item_requests(&self) -> u64 {
        let stats = self.stats();
        let events: u64 = ["GET /subscribe", "OPTIONS /2.0/events", "GET /2.0/events"]
            .iter()
            .map(|r| stats["requests"][*r].as_u64().unwrap_or(0))
            .sum();
        stats["total_requests"].as_u64().unwrap_or(0) - events
    }

    pub fn reset_stats(&self) {
        self.rt.block_on(async {
            self.emu.http.delete(format!("{}/_emulator/stats", self.emu.base())).send().await.unwrap();
        });
    }

    /// Unmounts with `fusermount3 -u` and waits for the daemon to exit; returns its status.
    pub fn unmount(&mut self) -> Option<std::process::ExitStatus> {
        stop_daemon(self.mnt.path(), self.child.take()?)
    }

    /// Sends a signal to the daemon (e.g. SIGTERM) and waits for it to exit.
    pub fn signal(&mut self, sig: i32) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own, unreaped child.
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        let status = child.wait().ok();
        let _ = Command::new("fusermount3").arg("-uz").arg(self.mnt.path()).stderr(Stdio::null()).status();
        status
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Unmounts `mnt` with `fusermount3 -u` (lazily if it stays busy) and waits for its daemon
/// `child` to exit (killing it after 10 s); returns its status.
pub fn stop_daemon(mnt: &Path, mut child: Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("fusermount3").arg("-u").arg(mnt).output();
        if out.as_ref().is_ok_and(|o| o.status.success()) {
            break;
        }
        if Instant::now() > deadline {
            let why = out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
            eprintln!("fusermount3 -u kept failing ({}); unmounting lazily", why.trim());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("fusermount3").arg("-uz").arg(mnt).stderr(Stdio::null()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Reads the daemon's first stdout line and checks it is `ready` (within 30 s).
pub fn wait_ready(child: &mut Child) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    assert_eq!(line.trim(), "ready", "the mount came up");
}

/// Polls `cond` every 50 ms; fails the test after `secs` seconds.
pub fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when this machine can mount FUSE filesystems (else mount tests skip with a note,
/// unless `CI` is set, where they must run).
pub fn fuse_available() -> bool {
    let ok = Path::new("/dev/fuse").exists() && Command::new("fusermount3").arg("-V").output().is_ok();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "FUSE is required in CI (/dev/fuse and fusermount3)");
        eprintln!("skipping: FUSE is not available here");
    }
    ok
}

/// Runs the `boxfs` binary with `args` (a command beside the mounts: `status`, `sync`, `pin`...).
pub fn boxfs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_boxfs")).args(args).output().expect("boxfs runs")
}

/// `boxfs status PATH --json`: the report of the mount `path` is in (or of that file).
pub fn status_json(path: &Path) -> serde_json::Value {
    let out = boxfs(&["status", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "status: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status prints JSON")
}

/// `getxattr(2)`: the value, or the errno.
pub fn getxattr(path: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let (path, name) = (CString::new(path.as_os_str().as_bytes()).unwrap(), CString::new(name).unwrap());
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings and a buffer of the length given.
    let n = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `removexattr(2)`: done, or the errno.
pub fn removexattr(path: &Path, name: &str) -> Result<(), i32> {
    let (path, name) = (CString::new(path.as_os_str().as_bytes()).unwrap(), CString::new(name).unwrap());
    // SAFETY: NUL-terminated strings.
    match unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error().raw_os_error().unwrap()),
    }
}
