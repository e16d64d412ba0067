//! `boxfs mount`: option parsing (`-o` mount options included), the embedded emulator for
//! `--emulator DIR`, daemonizing (the parent returns once the mount is ready), and running
//! the mount in the foreground.

use super::api_args::ApiArgs;
use super::{log_file, preflight, sd_notify};
use crate::config::{Raw, Settings};
use crate::mount::{self, MountConfig};
use crate::vfs::read::blocks::DEFAULT_BLOCK_SIZE;
use crate::vfs::FsyncMode;
use boxfs_api::{ApiConfig, AuthMode, Client, TokenSource};
use boxfs_emulator::{Emulator, EmulatorConfig};
use clap::Args;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// Set by the daemonizing parent: the child prints `ready` on stdout once mounted.
const READY_ENV: &str = "BOXFS_NOTIFY_READY";

/// Shown after `boxfs mount --help` and in boxfs-mount(1).
const MOUNT_AFTER_HELP: &str = "\
Settings come from, lowest first: built-in defaults, the top-level keys of \
$XDG_CONFIG_HOME/boxfs/config.toml, its [accounts.NAME] table, -o key=value, then flags. \
Config keys: root, read_only, allow_other, uid, gid, umask, cache_dir, cache_size, metadata_ttl, \
events, writeback_delay_ms, sync_on_close, fsync, log_file, as_user.

Credentials: BOX_ACCESS_TOKEN or --token-file when given, else the account saved by \
`boxfs login --account NAME` ($XDG_CONFIG_HOME/boxfs/accounts/NAME.json).

As a mount(8) helper (a symlink named mount.boxfs or mount.fuse.boxfs): \
`mount.boxfs ACCOUNT MOUNTPOINT -o OPTIONS`, e.g. the fstab line \
`work /mnt/box fuse.boxfs _netdev,allow_other,metadata_ttl=30 0 0`.

Under systemd (Type=notify) READY=1 is sent to $NOTIFY_SOCKET once mounted, STOPPING=1 when it starts to unmount.";

#[derive(Debug, Args)]
#[command(after_long_help = MOUNT_AFTER_HELP)]
pub struct MountArgs {
    /// Directory to mount on.
    pub mountpoint: PathBuf,
    /// Box folder to mount: a folder id, or a path such as /Documents/Reports (default: all files).
    #[arg(long, value_name = "FOLDER_ID_OR_PATH")]
    pub root: Option<String>,
    /// Start the embedded Box emulator on DIR (seeded with a demo tree when DIR is new) and mount it.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["api_url", "upload_url", "token_file"])]
    pub emulator: Option<PathBuf>,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Mount read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Mount options, comma-separated: allow_other, uid=N, gid=N, umask=OCTAL, ro, rw, and any
    /// config-file key as key=value (e.g. cache_dir=/x,metadata_ttl=30). Accepted and meaningless
    /// here (fstab/mount(8) bookkeeping): defaults, auto, noauto, user, nouser, users, owner,
    /// _netdev, nofail, dev, nodev, suid, nosuid, exec, async, x-*.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Where cached blocks live (default: $XDG_CACHE_HOME/boxfs/<account>, or DIR/cache with --emulator).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Disk budget of the block cache, in bytes [default: 2147483648].
    #[arg(long, value_name = "BYTES")]
    pub cache_size: Option<u64>,
    /// Seconds metadata (listings, attributes) is trusted before asking Box again; also the
    /// kernel's cache TTL [default: 60].
    #[arg(long, value_name = "SECS")]
    pub metadata_ttl: Option<u64>,
    /// Follow Box's event stream so that changes made elsewhere show within about a second
    /// (off: metadata expires by --metadata-ttl only) [default: on].
    #[arg(long, value_enum, value_name = "on|off")]
    pub events: Option<Switch>,
    /// Milliseconds between the last close of a file and its upload (coalesces rapid re-opens) [default: 1000].
    #[arg(long, value_name = "MS")]
    pub writeback_delay_ms: Option<u64>,
    /// What fsync (and fdatasync, msync) promise: `local`, the file's bytes and its journal
    /// record are on the local disk (the upload follows the write-back delay; a crash loses
    /// nothing); `box`, the file is committed in Box (fsync then waits for the upload and
    /// returns its error) [default: local].
    #[arg(long, value_enum, value_name = "local|box")]
    pub fsync: Option<FsyncArg>,
    /// Make `close` do what fsync does (see --fsync) and return its error, instead of
    /// returning at once.
    #[arg(long)]
    pub sync_on_close: bool,
    /// Append logs (filtered by RUST_LOG) to FILE instead of stderr (default without --foreground:
    /// $XDG_CACHE_HOME/boxfs/mount.log).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Stay in the foreground (default: return once the mount is ready and serve in the background).
    #[arg(long)]
    pub foreground: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FsyncArg {
    Local,
    Box,
}

impl From<FsyncArg> for FsyncMode {
    fn from(arg: FsyncArg) -> FsyncMode {
        match arg {
            FsyncArg::Local => FsyncMode::Local,
            FsyncArg::Box => FsyncMode::Box,
        }
    }
}

/// `-o` options that fstab and mount(8) pass along and that mean nothing to boxfs (it always
/// mounts nodev,nosuid; readiness does not depend on the network being "up").
const MEANINGLESS_OPTIONS: &[&str] = &[
    "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "_netdev", "nofail", "dev", "nodev", "suid",
    "nosuid", "exec", "async",
];

/// Parses `-o` options into settings (`ro`/`rw` set read_only; other keys as in the config file).
pub fn parse_mount_options(opts: &[String]) -> Result<Settings, String> {
    let mut out = Settings::default();
    for opt in opts.iter().flat_map(|o| o.split(',')).map(str::trim).filter(|o| !o.is_empty()) {
        let (key, value) = opt.split_once('=').map_or((opt, None), |(k, v)| (k, Some(v)));
        match key {
            "ro" => out.read_only = Some(true),
            "rw" => out.read_only = Some(false),
            k if MEANINGLESS_OPTIONS.contains(&k) || k.starts_with("x-") => {}
            _ => out.set(key, Raw::Text(value.unwrap_or(""))).map_err(|e| match e {
                None => format!("unknown mount option '{opt}'"),
                Some(expected) => format!("-o {opt}: expected {key}= {expected}"),
            })?,
        }
    }
    Ok(out)
}

/// The settings in force: config file (top level, then the account's table), then `-o`, then flags.
fn effective_settings(args: &MountArgs) -> Result<Settings, String> {
    let file = crate::config::ConfigFile::load(&crate::config::config_file()).map_err(|e| e.to_string())?;
    let flags = Settings {
        root: args.root.clone(),
        read_only: args.read_only.then_some(true),
        cache_dir: args.cache_dir.clone(),
        cache_size: args.cache_size,
        metadata_ttl: args.metadata_ttl,
        events: args.events.map(|s| s == Switch::On),
        writeback_delay_ms: args.writeback_delay_ms,
        sync_on_close: args.sync_on_close.then_some(true),
        fsync: args.fsync.map(FsyncMode::from),
        log_file: args.log_file.clone(),
        as_user: args.api.as_user.clone(),
        ..Settings::default()
    };
    Ok(file.for_account(&args.api.account).overlay(parse_mount_options(&args.options)?).overlay(flags))
}

pub fn run(args: MountArgs) -> ExitCode {
    let prepared = effective_settings(&args)
        .and_then(|settings| preflight::check(&args.mountpoint).map(|()| settings).map_err(|e| e.to_string()));
    let settings = match prepared {
        Ok(s) => s,
        Err(e) => {
            eprintln!("boxfs mount: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.foreground {
        return daemonize(settings.log_file.as_deref());
    }
    // fuser warns when the kernel side is already gone after `fusermount3 -u`: not news.
    if let Err(e) = log_file::init("info,fuser::session=error", settings.log_file.as_deref()) {
        eprintln!("boxfs mount: cannot open the log file: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("boxfs mount: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(mount_foreground(args, settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("boxfs mount: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn mount_foreground(args: MountArgs, settings: Settings) -> Result<(), String> {
    // Keeps the embedded emulator alive for as long as the mount.
    let mut _emulator = None;
    let (client, default_cache) = match &args.emulator {
        Some(dir) => {
            let (client, running) = embedded_emulator(dir).await?;
            _emulator = Some(running);
            (client, dir.join("cache"))
        }
        None => {
            let client = args.api.client_as(settings.as_user.clone())?;
            let me = client.me().await.map_err(|e| args.api.explain(&e))?;
            if client.config().as_user.is_some() {
                tracing::info!(user = %me.id, login = %me.login, "acting for this user (As-User)");
            }
            let cache = crate::config::cache_root().join(account_key(client.config(), &me.id));
            (client, cache)
        }
    };
    let (cache_dir, _cache_lock) = own_cache_dir(settings.cache_dir.clone(), default_cache)?;
    let cfg = MountConfig {
        mountpoint: args.mountpoint.clone(),
        account: args.emulator.is_none().then(|| args.api.saved_account()).flatten().map(str::to_string),
        root: settings.root.clone(),
        read_only: settings.read_only.unwrap_or(false),
        allow_other: settings.allow_other.unwrap_or(false),
        uid: settings.uid.unwrap_or_else(|| unsafe { libc::geteuid() }),
        gid: settings.gid.unwrap_or_else(|| unsafe { libc::getegid() }),
        umask: settings.umask.unwrap_or(0o022),
        cache_dir,
        cache_size: settings.cache_size.unwrap_or(2 * 1024 * 1024 * 1024),
        block_size: DEFAULT_BLOCK_SIZE,
        metadata_ttl: Duration::from_secs(settings.metadata_ttl.unwrap_or(60)),
        events: settings.events.unwrap_or(true),
        writeback_delay: Duration::from_millis(settings.writeback_delay_ms.unwrap_or(1000)),
        sync_on_close: settings.sync_on_close.unwrap_or(false),
        fsync: settings.fsync.unwrap_or_default(),
    };
    let fs = mount::build_fs(&client, &cfg).await.map_err(|e| e.to_string())?;
    mount::serve(
        fs,
        client,
        &cfg,
        || {
            if std::env::var_os(READY_ENV).is_some() {
                let mut out = std::io::stdout();
                let _ = out.write_all(b"ready\n");
                let _ = out.flush();
            }
            sd_notify::notify_logged("READY=1");
        },
        || sd_notify::notify_logged("STOPPING=1"),
    )
    .await
    .map_err(|e| e.to_string())
}

/// The cache dir this mount uses, locked for it: the one asked for, which must be free; else
/// the account's default, or (while other mounts of the account hold that) `DEFAULT-2`,
/// `DEFAULT-3`, ...: two mounts never share a journal.
fn own_cache_dir(asked: Option<PathBuf>, default: PathBuf) -> Result<(PathBuf, mount::CacheDirLock), String> {
    let take =
        |dir: &PathBuf| mount::CacheDirLock::try_take(dir).map_err(|e| format!("cache dir {}: {e}", dir.display()));
    if let Some(dir) = asked {
        return match take(&dir)? {
            Some(lock) => Ok((dir, lock)),
            None => Err(format!(
                "cache dir {} is in use by another boxfs mount: give this mount a --cache-dir of its own",
                dir.display()
            )),
        };
    }
    for n in 1..=64 {
        let dir = if n == 1 { default.clone() } else { PathBuf::from(format!("{}-{n}", default.display())) };
        if let Some(lock) = take(&dir)? {
            return Ok((dir, lock));
        }
    }
    Err(format!("every cache dir beside {} is in use: give this mount a --cache-dir", default.display()))
}

/// The cache subdirectory of an account: the user id, qualified by the API host when it is
/// not Box's own (so that two servers never share blocks).
fn account_key(cfg: &ApiConfig, user_id: &str) -> String {
    if cfg.api_url == boxfs_api::config::BOX_API_URL {
        return user_id.to_string();
    }
    let host: String = cfg.api_url.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{host}-{user_id}")
}

/// Starts the emulator on `dir` in this process (demo tree when new) and a client for it.
async fn embedded_emulator(dir: &std::path::Path) -> Result<(Client, boxfs_emulator::RunningEmulator), String> {
    let config = EmulatorConfig {
        seed: Some(boxfs_emulator::seed::SeedKind::Demo),
        // The embedded emulator's token must outlive the mount.
        token_lifetime_secs: 10 * 365 * 24 * 3600,
        ..EmulatorConfig::new(dir.join("emulator"))
    };
    let emulator = Emulator::bind(config, false).await.map_err(|e| e.to_string())?;
    let token = emulator.state().developer_token().map_err(|e| e.to_string())?;
    let cfg = ApiConfig::with_urls(&emulator.state().api_url(), &emulator.state().upload_url());
    let client = Client::new(cfg, TokenSource::new(AuthMode::Fixed(token)).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    tracing::info!(url = %emulator.state().base_url(), "embedded emulator serving");
    Ok((client, emulator.spawn()))
}

/// Re-runs this command in the foreground as a detached child, returns when it is mounted
/// (exit 0) or has failed (its error is shown).
fn daemonize(log_file: Option<&std::path::Path>) -> ExitCode {
    let log = log_file.map(PathBuf::from).unwrap_or_else(|| crate::config::cache_root().join("mount.log"));
    let log_file = match log_file::open_append(&log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("boxfs mount: cannot open log file {}: {e}", log.display());
            return ExitCode::FAILURE;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("boxfs mount: cannot find own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cmd = Command::new(exe);
    cmd.args(super::mount_helper::effective_args().into_iter().skip(1)).arg("--foreground").env(READY_ENV, "1");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log_file);
    // SAFETY: setsid(2) in the child before exec, so the daemon leaves our terminal's session.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("boxfs mount: cannot start the mount daemon: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
    if line.trim() == "ready" {
        return ExitCode::SUCCESS;
    }
    let _ = child.wait();
    let tail = std::fs::read_to_string(&log).unwrap_or_default();
    let last: Vec<&str> = tail.lines().rev().take(5).collect();
    eprintln!("boxfs mount: the mount failed; see {}:", log.display());
    for l in last.into_iter().rev() {
        eprintln!("  {l}");
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options() {
        let o = parse_mount_options(&["allow_other,uid=1000".into(), "gid=100,umask=027,ro,_netdev".into()]).unwrap();
        let want = Settings {
            allow_other: Some(true),
            read_only: Some(true),
            uid: Some(1000),
            gid: Some(100),
            umask: Some(0o027),
            ..Settings::default()
        };
        assert_eq!(o, want);
        assert!(parse_mount_options(&["uid=x".into()]).unwrap_err().contains("uid"));
        assert!(parse_mount_options(&["bogus".into()]).unwrap_err().contains("bogus"));
        let o = parse_mount_options(&["cache_dir=/x,metadata_ttl=30,events=off,x-systemd.automount".into()]).unwrap();
        assert_eq!((o.cache_dir, o.metadata_ttl, o.events), (Some(PathBuf::from("/x")), Some(30), Some(false)));
        let o = parse_mount_options(&["fsync=box,sync_on_close".into()]).unwrap();
        assert_eq!((o.fsync, o.sync_on_close), (Some(FsyncMode::Box), Some(true)));
        assert!(parse_mount_options(&["fsync=later".into()]).unwrap_err().contains("\"local\" or \"box\""));
    }
}
