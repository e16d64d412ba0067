//! CLI harness: runs the `boxfs` binary with its own temp HOME and XDG config/cache/runtime
//! dirs (none of the `BOX_*` variables, no display), plays the browser of `boxfs login`, and
//! mounts saved accounts ([`AccountMount`], unmounted and stopped on drop).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tempfile::TempDir;

pub const CLIENT_ID: &str = "boxfs-emulator-client";
pub const CLIENT_SECRET: &str = "boxfs-emulator-secret";

pub struct CliEnv {
    pub home: TempDir,
}

impl CliEnv {
    pub fn new() -> CliEnv {
        let home = tempfile::tempdir().expect("temp home");
        for d in ["config", "cache", "runtime"] {
            std::fs::create_dir_all(home.path().join(d)).unwrap();
        }
        CliEnv { home }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("config/boxfs")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.home.path().join("cache/boxfs")
    }

    /// `boxfs ARGS` in this environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.program(Path::new(env!("CARGO_BIN_EXE_boxfs")), args)
    }

    /// Any program (e.g. a `mount.boxfs` symlink) in this environment.
    pub fn program(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("XDG_RUNTIME_DIR", self.home.path().join("runtime"));
        for var in [
            "BOX_ACCESS_TOKEN",
            "BOX_API_URL",
            "BOX_UPLOAD_URL",
            "BOX_CLIENT_ID",
            "BOX_CLIENT_SECRET",
            "DISPLAY",
            "WAYLAND_DISPLAY",
            "NOTIFY_SOCKET",
            "BOXFS_NOTIFY_READY",
        ] {
            c.env_remove(var);
        }
        c
    }

    /// Runs to completion with `stdin` as input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child =
            self.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// `boxfs login` (authorization code) against `emu_base`, up to the printed URL.
    pub fn start_login(&self, emu_base: &str, account: &str, extra: &[&str]) -> Login {
        let api = format!("{emu_base}/2.0");
        let upload = format!("{emu_base}/api/2.0");
        let mut args = vec!["login", "--account", account, "--api-url", &api, "--upload-url", &upload];
        args.extend(["--port", "0", "--no-browser", "--client-id", CLIENT_ID, "--timeout", "60"]);
        args.extend(extra);
        let mut child = self
            .cmd(&args)
            .env("BOX_CLIENT_SECRET", CLIENT_SECRET)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("boxfs login starts");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("http://") {
                    let _ = tx.send(line.clone());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let url = rx.recv_timeout(Duration::from_secs(20)).expect("login prints the authorization URL");
        Login { child, url, reader: Some(reader) }
    }
}

/// A `boxfs mount --foreground --account NAME` daemon of a [`CliEnv`] on a temp mountpoint,
/// with its own cache dir and log file. Drop unmounts and stops it, also when a test fails.
pub struct AccountMount {
    child: Option<Child>,
    pub pid: u32,
    pub log: PathBuf,
    pub mnt: TempDir,
    pub cache: TempDir,
}

impl CliEnv {
    /// Mounts saved account `account` (plus `extra` arguments and `envs`) and waits until ready.
    pub fn mount_account(&self, account: &str, extra: &[&str], envs: &[(&str, &str)]) -> AccountMount {
        let (mnt, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let log = cache.path().join("mount.log");
        let mut cmd = self.cmd(&["mount", "--foreground", "--account", account]);
        cmd.arg("--cache-dir").arg(cache.path()).arg("--log-file").arg(&log).args(extra).arg(mnt.path());
        cmd.env("BOXFS_NOTIFY_READY", "1").env("RUST_LOG", "info,fuser::session=error");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().expect("boxfs mount starts");
        let mut mounted = AccountMount { pid: child.id(), child: Some(child), log, mnt, cache };
        super::mount::wait_ready(mounted.child.as_mut().unwrap());
        mounted
    }
}

impl AccountMount {
    pub fn path(&self) -> &Path {
        self.mnt.path()
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.mnt.path().join(rel)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9` of the daemon (the mountpoint stays until the drop's lazy unmount).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Unmounts and waits for the daemon to exit; returns its status.
    pub fn unmount(&mut self) -> Option<std::process::ExitStatus> {
        super::mount::stop_daemon(self.mnt.path(), self.child.take()?)
    }
}

impl Drop for AccountMount {
    fn drop(&mut self) {
        self.unmount();
        let _ = Command::new("fusermount3").arg("-uz").arg(self.mnt.path()).stderr(Stdio::null()).status();
    }
}

pub struct Login {
    child: Child,
    pub url: String,
    reader: Option<std::thread::JoinHandle<String>>,
}

impl Login {
    /// Waits for the process; returns (success, stdout, stderr).
    pub fn finish(mut self) -> (bool, String, String) {
        let status = self.child.wait().unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(self.child.stdout.as_mut().unwrap(), &mut out).unwrap();
        let err = self.reader.take().unwrap().join().unwrap();
        (status.success(), out, err)
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plays the browser: GET `url`, following redirects (to the callback server).
pub async fn browse(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("browser request");
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

pub fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}
