//! `boxfs mount`: option parsing (`-o` mount options included), the embedded emulator for
//! `--emulator DIR`, daemonizing (the parent returns once the mount is ready), and running
//! the mount in the foreground.

use super::api_args::ApiArgs;
use super::{log_file, preflight, sd_notify};
use crate::config::{ConfigFile, Raw, Settings, KEYS};
use crate::mount::{self, MountConfig};
use crate::vfs::FsyncMode;
use boxfs_api::{ApiConfig, AuthMode, Client, TokenSource};
use boxfs_emulator::{Emulator, EmulatorConfig};
use clap::builder::RangedU64ValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

/// Set by the daemonizing parent: the child prints `ready` on stdout once mounted.
const READY_ENV: &str = "BOXFS_NOTIFY_READY";

/// Shown after `boxfs mount --help` and in boxfs-mount(1).
fn after_help() -> String {
    let keys: Vec<&str> = KEYS.iter().map(|(key, _)| *key).collect();
    format!(
        "\
Settings come from, lowest first: built-in defaults, the top-level keys of \
$XDG_CONFIG_HOME/boxfs/config.toml, its [accounts.NAME] table, -o key=value, then flags. \
Config keys: {}.

Credentials: BOX_ACCESS_TOKEN or --token-file when given, else the account saved by \
`boxfs login --account NAME` ($XDG_CONFIG_HOME/boxfs/accounts/NAME.json).

As a mount(8) helper (a symlink named mount.boxfs or mount.fuse.boxfs): \
`mount.boxfs ACCOUNT MOUNTPOINT -o OPTIONS`, e.g. the fstab line \
`work /mnt/box fuse.boxfs _netdev,allow_other,metadata_ttl=30 0 0`.

Under systemd (Type=notify) READY=1 is sent to $NOTIFY_SOCKET once mounted, STOPPING=1 when it starts to unmount.",
        keys.join(", ")
    )
}

/// The flags of `boxfs mount`. A flag that is set sets its config key (same name) over the
/// config file and `-o`; one left out leaves the key as they set it (its clap default only
/// shows the built-in one).
#[derive(Debug, Args)]
#[command(after_long_help = after_help())]
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
    /// Disk budget of the block cache, in bytes (pinned content is kept apart from it).
    #[arg(long, value_name = "BYTES", default_value_t = Settings::default().cache_size)]
    pub cache_size: u64,
    /// Seconds metadata (listings, attributes) is trusted before asking Box again; also the
    /// kernel's cache TTL.
    #[arg(long, value_name = "SECS", default_value_t = Settings::default().metadata_ttl)]
    pub metadata_ttl: u64,
    /// Memory budget of cached listings and their items' attributes, in bytes; least recently
    /// used listings beyond it are fetched again when needed.
    #[arg(long, value_name = "BYTES", default_value_t = Settings::default().metadata_cache_size)]
    pub metadata_cache_size: u64,
    /// Follow Box's event stream so that changes made elsewhere show within about a second
    /// (off: metadata expires by --metadata-ttl only).
    #[arg(long, value_enum, value_name = "on|off", default_value_t = Switch::from(Settings::default().events))]
    pub events: Switch,
    /// Milliseconds between the last close of a file and its upload (coalesces rapid re-opens).
    #[arg(long, value_name = "MS", default_value_t = Settings::default().writeback_delay_ms)]
    pub writeback_delay_ms: u64,
    /// Uploads to Box running at once, stores of modes, owners and link targets included (a
    /// large file also sends its parts in parallel).
    #[arg(long, value_name = "N", default_value_t = Settings::default().upload_parallelism,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub upload_parallelism: usize,
    /// What fsync (and fdatasync, msync) promise: `local`, the file's bytes and its journal
    /// record are on the local disk (the upload follows the write-back delay; a crash loses
    /// nothing); `box`, the file is committed in Box (fsync then waits for the upload and
    /// returns its error).
    #[arg(long, value_enum, value_name = "local|box", default_value_t = FsyncArg::from(Settings::default().fsync))]
    pub fsync: FsyncArg,
    /// Make `close` do what fsync does (see --fsync) and return its error, instead of
    /// returning at once.
    #[arg(long)]
    pub sync_on_close: bool,
    /// Lock a file in Box while it is open for writing here (others cannot change it
    /// meanwhile); it is unlocked once its upload has landed.
    #[arg(long)]
    pub lock_on_open: bool,
    /// Append logs (filtered by RUST_LOG) to FILE instead of stderr (default without --foreground:
    /// $XDG_CACHE_HOME/boxfs/mount.log).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Serve Prometheus metrics (API requests, bytes, block cache, uploads, events, FUSE
    /// latency) at http://ADDR/metrics: a bare PORT is 127.0.0.1:PORT; an address that is not
    /// loopback is reachable from the network (default: not served).
    #[arg(long, value_name = "[IP:]PORT", value_parser = crate::config::metrics_addr)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Stay in the foreground (default: return once the mount is ready and serve in the background).
    #[arg(long)]
    pub foreground: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl From<bool> for Switch {
    fn from(on: bool) -> Switch {
        if on {
            Switch::On
        } else {
            Switch::Off
        }
    }
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

impl From<FsyncMode> for FsyncArg {
    fn from(mode: FsyncMode) -> FsyncArg {
        match mode {
            FsyncMode::Local => FsyncArg::Local,
            FsyncMode::Box => FsyncArg::Box,
        }
    }
}

/// `-o` options that fstab and mount(8) pass along and that mean nothing to boxfs (it always
/// mounts nodev,nosuid; readiness does not depend on the network being "up").
const MEANINGLESS_OPTIONS: &[&str] = &[
    "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "_netdev", "nofail", "dev", "nodev", "suid",
    "nosuid", "exec", "async",
];

/// Applies `-o` options over `settings` (`ro`/`rw` set read_only; other keys as in the config file).
pub fn apply_mount_options(opts: &[String], settings: &mut Settings) -> Result<(), String> {
    for opt in opts.iter().flat_map(|o| o.split(',')).map(str::trim).filter(|o| !o.is_empty()) {
        let (key, value) = opt.split_once('=').map_or((opt, None), |(k, v)| (k, Some(v)));
        match key {
            "ro" => settings.read_only = true,
            "rw" => settings.read_only = false,
            k if MEANINGLESS_OPTIONS.contains(&k) || k.starts_with("x-") => {}
            _ => settings.set(key, Raw::Text(value.unwrap_or(""))).map_err(|e| match e {
                None => format!("unknown mount option '{opt}'"),
                Some(expected) => format!("-o {opt}: expected {key}= {expected}"),
            })?,
        }
    }
    Ok(())
}

/// Applies the flags given on the command line (`given(id)`; a flag's id is its config key)
/// over `settings`.
fn apply_flags(args: &MountArgs, given: impl Fn(&str) -> bool, settings: &mut Settings) {
    if given("root") {
        settings.root = args.root.clone();
    }
    if given("read_only") {
        settings.read_only = args.read_only;
    }
    if given("cache_dir") {
        settings.cache_dir = args.cache_dir.clone();
    }
    if given("cache_size") {
        settings.cache_size = args.cache_size;
    }
    if given("metadata_ttl") {
        settings.metadata_ttl = args.metadata_ttl;
    }
    if given("metadata_cache_size") {
        settings.metadata_cache_size = args.metadata_cache_size;
    }
    if given("events") {
        settings.events = args.events == Switch::On;
    }
    if given("writeback_delay_ms") {
        settings.writeback_delay_ms = args.writeback_delay_ms;
    }
    if given("upload_parallelism") {
        settings.upload_parallelism = args.upload_parallelism;
    }
    if given("fsync") {
        settings.fsync = args.fsync.into();
    }
    if given("sync_on_close") {
        settings.sync_on_close = args.sync_on_close;
    }
    if given("lock_on_open") {
        settings.lock_on_open = args.lock_on_open;
    }
    if given("log_file") {
        settings.log_file = args.log_file.clone();
    }
    if given("as_user") {
        settings.as_user = args.api.as_user.clone();
    }
    if given("metrics") {
        settings.metrics = args.metrics;
    }
}

/// The settings in force: the built-in defaults, then `file` (top level, then the account's
/// table), then `-o`, then the flags `matches` says were given.
fn layered(file: &ConfigFile, args: &MountArgs, matches: &ArgMatches) -> Result<Settings, String> {
    let mut settings = Settings::default();
    file.apply_for(&args.api.account, &mut settings).map_err(|e| e.to_string())?;
    apply_mount_options(&args.options, &mut settings)?;
    apply_flags(args, |id| matches.value_source(id) == Some(ValueSource::CommandLine), &mut settings);
    Ok(settings)
}

/// The settings in force, with the config file at its usual place.
fn effective_settings(args: &MountArgs, matches: &ArgMatches) -> Result<Settings, String> {
    let file = ConfigFile::load(&crate::config::config_file()).map_err(|e| e.to_string())?;
    layered(&file, args, matches)
}

/// Runs `boxfs mount`; `matches` are the subcommand's (they tell which flags were given).
pub fn run(args: MountArgs, matches: &ArgMatches) -> ExitCode {
    let prepared = effective_settings(&args, matches)
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
    let (client, default_cache, me) = match &args.emulator {
        Some(dir) => {
            let (client, running) = embedded_emulator(dir).await?;
            _emulator = Some(running);
            (client, dir.join("cache"), None)
        }
        None => {
            let client = args.api.client_as(settings.as_user.clone())?;
            let me = client.me().await.map_err(|e| args.api.explain(&e))?;
            if client.config().as_user.is_some() {
                tracing::info!(user = %me.id, login = %me.login, "acting for this user (As-User)");
            }
            let cache = crate::config::cache_root().join(account_key(client.config(), &me.id));
            (client, cache, Some(me))
        }
    };
    let (cache_dir, _cache_lock) = own_cache_dir(settings.cache_dir.clone(), default_cache)?;
    let cfg = MountConfig {
        mountpoint: args.mountpoint.clone(),
        account: args.emulator.is_none().then(|| args.api.saved_account()).flatten().map(str::to_string),
        cache_dir,
        settings,
    };
    let fs = mount::build_fs(&client, &cfg).await.map_err(|e| e.to_string())?;
    if let Some(me) = me {
        // The account was just read: the first `statfs` (`df`, `du`, `find`) needs no call.
        fs.remember_quota(me);
    }
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
    use clap::{CommandFactory, FromArgMatches, Parser};
    use std::path::Path;

    fn with_options(opts: &[&str]) -> Result<Settings, String> {
        let mut settings = Settings::default();
        apply_mount_options(&opts.iter().map(|o| o.to_string()).collect::<Vec<_>>(), &mut settings)?;
        Ok(settings)
    }

    #[test]
    fn mount_options() {
        let o = with_options(&["allow_other,uid=1000", "gid=100,umask=027,ro,_netdev"]).unwrap();
        let want =
            Settings { allow_other: true, read_only: true, uid: 1000, gid: 100, umask: 0o027, ..Settings::default() };
        assert_eq!(o, want);
        assert!(with_options(&["uid=x"]).unwrap_err().contains("uid"));
        assert!(with_options(&["bogus"]).unwrap_err().contains("bogus"));
        let o = with_options(&["cache_dir=/x,metadata_ttl=30,events=off,x-systemd.automount"]).unwrap();
        assert_eq!((o.cache_dir, o.metadata_ttl, o.events), (Some(PathBuf::from("/x")), 30, false));
        let o = with_options(&["fsync=box,sync_on_close,upload_parallelism=2"]).unwrap();
        assert_eq!((o.fsync, o.sync_on_close, o.upload_parallelism), (FsyncMode::Box, true, 2));
        assert!(with_options(&["lock_on_open"]).unwrap().lock_on_open);
        assert!(with_options(&["fsync=later"]).unwrap_err().contains("\"local\" or \"box\""));
        assert!(with_options(&["ro,rw"]).is_ok_and(|o| !o.read_only));
    }

    /// `boxfs mount` alone, to parse its arguments.
    #[derive(Parser)]
    struct MountOnly {
        #[command(flatten)]
        args: MountArgs,
    }

    /// The settings `config` (a config file's text) and the command line `argv` make.
    fn settings(config: &str, argv: &[&str]) -> Settings {
        let matches = MountOnly::command().try_get_matches_from(std::iter::once("mount").chain(argv.iter().copied()));
        let matches = matches.unwrap();
        let args = MountOnly::from_arg_matches(&matches).unwrap().args;
        layered(&ConfigFile::parse(config, Path::new("config.toml")).unwrap(), &args, &matches).unwrap()
    }

    #[test]
    fn nothing_set_is_the_defaults() {
        assert_eq!(settings("", &["/mnt"]), Settings::default());
    }

    #[test]
    fn flags_over_options_over_account_over_top_level() {
        let config = "metadata_ttl = 1\ncache_size = 1\nwriteback_delay_ms = 1\nupload_parallelism = 1\n\
                      [accounts.work]\nmetadata_ttl = 2\ncache_size = 2\nwriteback_delay_ms = 2\n";
        let argv = ["/mnt", "--account", "work", "-o", "metadata_ttl=3,cache_size=3", "--metadata-ttl", "4"];
        let s = settings(config, &argv);
        assert_eq!((s.metadata_ttl, s.cache_size, s.writeback_delay_ms, s.upload_parallelism), (4, 3, 2, 1));
        assert_eq!(s.events, Settings::default().events, "no source sets it");
        let other = settings(config, &["/mnt", "-o", "upload_parallelism=3", "--upload-parallelism", "5"]);
        assert_eq!((other.metadata_ttl, other.cache_size, other.upload_parallelism), (1, 1, 5));
    }

    #[test]
    fn flags_left_out_leave_what_the_file_and_options_set() {
        let config = "events = \"off\"\nfsync = \"box\"\nread_only = true\nsync_on_close = true\nroot = \"/A\"\n";
        let s = settings(config, &["/mnt", "-o", "as_user=7,upload_parallelism=9"]);
        assert_eq!((s.events, s.fsync, s.read_only, s.sync_on_close), (false, FsyncMode::Box, true, true));
        assert_eq!((s.root.as_deref(), s.as_user.as_deref(), s.upload_parallelism), (Some("/A"), Some("7"), 9));
    }

    #[test]
    fn a_flag_given_its_default_value_still_wins() {
        let default = Settings::default();
        let config = "metadata_ttl = 5\nevents = \"off\"\nfsync = \"box\"\n";
        let ttl = default.metadata_ttl.to_string();
        let s = settings(config, &["/mnt", "--metadata-ttl", &ttl, "--events", "on", "--fsync", "local"]);
        assert_eq!((s.metadata_ttl, s.events, s.fsync), (default.metadata_ttl, true, FsyncMode::Local));
    }

    #[test]
    fn flags_set_every_key_they_name() {
        let argv = [
            "/mnt",
            "--root",
            "/R",
            "--read-only",
            "--cache-dir",
            "/c",
            "--cache-size",
            "7",
            "--metadata-ttl",
            "8",
            "--metadata-cache-size",
            "12",
            "--events",
            "off",
            "--writeback-delay-ms",
            "9",
            "--upload-parallelism",
            "10",
            "--fsync",
            "box",
            "--sync-on-close",
            "--log-file",
            "/l",
            "--as-user",
            "11",
        ];
        let want = Settings {
            root: Some("/R".into()),
            read_only: true,
            cache_dir: Some("/c".into()),
            cache_size: 7,
            metadata_ttl: 8,
            metadata_cache_size: 12,
            events: false,
            writeback_delay_ms: 9,
            upload_parallelism: 10,
            fsync: FsyncMode::Box,
            sync_on_close: true,
            log_file: Some("/l".into()),
            as_user: Some("11".into()),
            ..Settings::default()
        };
        assert_eq!(settings("", &argv), want);
        let zero = MountOnly::command().try_get_matches_from(["mount", "/mnt", "--upload-parallelism", "0"]);
        assert!(zero.is_err());
    }

    #[test]
    fn help_shows_the_built_in_defaults() {
        let help = MountOnly::command().render_long_help().to_string();
        let default = Settings::default();
        for shown in [
            format!("[default: {}]", default.cache_size),
            format!("[default: {}]", default.metadata_ttl),
            format!("[default: {}]", default.metadata_cache_size),
            format!("[default: {}]", default.writeback_delay_ms),
            format!("[default: {}]", default.upload_parallelism),
            "[default: on]".to_string(),
            "[default: local]".to_string(),
        ] {
            assert!(help.contains(&shown), "{shown} in {help}");
        }
        assert!(help.contains("upload_parallelism"), "the keys listed after the help");
    }
}
