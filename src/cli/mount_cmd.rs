//! `boxfs mount`: option parsing (`-o` mount options included), the embedded emulator for
//! `--emulator DIR`, daemonizing (the parent returns once the mount is ready), and running
//! the mount in the foreground.

use super::api_args::ApiArgs;
use crate::api::{ApiConfig, AuthMode, Client, TokenSource};
use crate::emulator::{Emulator, EmulatorConfig};
use crate::mount::{self, MountConfig};
use crate::vfs::blocks::DEFAULT_BLOCK_SIZE;
use clap::Args;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// Set by the daemonizing parent: the child prints `ready` on stdout once mounted.
const READY_ENV: &str = "BOXFS_NOTIFY_READY";

#[derive(Debug, Args)]
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
    /// Mount options, comma-separated: allow_other, uid=N, gid=N, umask=OCTAL, ro, rw.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Where cached blocks live (default: $XDG_CACHE_HOME/boxfs/<account>, or DIR/cache with --emulator).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Disk budget of the block cache, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub cache_size: u64,
    /// Seconds metadata (listings, attributes) is trusted before asking Box again; also the kernel's cache TTL.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub metadata_ttl: u64,
    /// Follow Box's event stream so that changes made elsewhere show within about a second
    /// (off: metadata expires by --metadata-ttl only).
    #[arg(long, value_enum, value_name = "on|off", default_value = "on")]
    pub events: Switch,
    /// Milliseconds between the last close of a file and its upload (coalesces rapid re-opens).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub writeback_delay_ms: u64,
    /// Stay in the foreground (default: return once the mount is ready and serve in the background).
    #[arg(long)]
    pub foreground: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// Parsed `-o` options.
#[derive(Debug, Default, PartialEq)]
pub struct MountOpts {
    pub allow_other: bool,
    pub read_only: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub umask: Option<u16>,
}

pub fn parse_mount_options(opts: &[String]) -> Result<MountOpts, String> {
    let mut out = MountOpts::default();
    for opt in opts.iter().flat_map(|o| o.split(',')).map(str::trim).filter(|o| !o.is_empty()) {
        let (key, value) = opt.split_once('=').map_or((opt, None), |(k, v)| (k, Some(v)));
        let number = |radix| {
            value
                .and_then(|v| u32::from_str_radix(v, radix).ok())
                .ok_or_else(|| format!("-o {opt}: expected {key}=NUMBER"))
        };
        match key {
            "allow_other" => out.allow_other = true,
            "ro" => out.read_only = true,
            "rw" => out.read_only = false,
            "uid" => out.uid = Some(number(10)?),
            "gid" => out.gid = Some(number(10)?),
            "umask" => out.umask = Some(number(8)?.try_into().map_err(|_| format!("-o {opt}: umask too large"))?),
            // Accepted from fstab/mount(8) and meaningless here.
            "defaults" | "_netdev" | "nofail" | "noauto" | "auto" | "user" | "nouser" => {}
            _ => return Err(format!("unknown mount option '{opt}'")),
        }
    }
    Ok(out)
}

pub fn run(args: MountArgs) -> ExitCode {
    if !args.foreground {
        return daemonize();
    }
    // fuser warns when the kernel side is already gone after `fusermount3 -u`: not news.
    super::init_logging("info,fuser::session=error");
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("boxfs mount: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mount_foreground(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("boxfs mount: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn mount_foreground(args: MountArgs) -> Result<(), String> {
    let opts = parse_mount_options(&args.options)?;
    // Keeps the embedded emulator alive for as long as the mount.
    let mut _emulator = None;
    let (client, default_cache) = match &args.emulator {
        Some(dir) => {
            let (client, running) = embedded_emulator(dir).await?;
            _emulator = Some(running);
            (client, dir.join("cache"))
        }
        None => {
            let client = args.api.client()?;
            let me = client.me().await.map_err(|e| e.to_string())?;
            let cache = mount::default_cache_root().join(account_key(client.config(), &me.id));
            (client, cache)
        }
    };
    let cfg = MountConfig {
        mountpoint: args.mountpoint.clone(),
        root: args.root.clone(),
        read_only: args.read_only || opts.read_only,
        allow_other: opts.allow_other,
        uid: opts.uid.unwrap_or_else(|| unsafe { libc::geteuid() }),
        gid: opts.gid.unwrap_or_else(|| unsafe { libc::getegid() }),
        umask: opts.umask.unwrap_or(0o022),
        cache_dir: args.cache_dir.clone().unwrap_or(default_cache),
        cache_size: args.cache_size,
        block_size: DEFAULT_BLOCK_SIZE,
        metadata_ttl: Duration::from_secs(args.metadata_ttl),
        events: args.events == Switch::On,
        writeback_delay: Duration::from_millis(args.writeback_delay_ms),
    };
    let fs = mount::build_fs(client, &cfg).await.map_err(|e| e.to_string())?;
    mount::serve(fs, &cfg, || {
        if std::env::var_os(READY_ENV).is_some() {
            let mut out = std::io::stdout();
            let _ = out.write_all(b"ready\n");
            let _ = out.flush();
        }
    })
    .await
    .map_err(|e| e.to_string())
}

/// The cache subdirectory of an account: the user id, qualified by the API host when it is
/// not Box's own (so that two servers never share blocks).
fn account_key(cfg: &ApiConfig, user_id: &str) -> String {
    if cfg.api_url == crate::api::config::BOX_API_URL {
        return user_id.to_string();
    }
    let host: String = cfg.api_url.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{host}-{user_id}")
}

/// Starts the emulator on `dir` in this process (demo tree when new) and a client for it.
async fn embedded_emulator(dir: &std::path::Path) -> Result<(Client, crate::emulator::RunningEmulator), String> {
    let config = EmulatorConfig {
        seed: Some(crate::emulator::seed::SeedKind::Demo),
        // The embedded emulator's token must outlive the mount.
        token_lifetime_secs: 10 * 365 * 24 * 3600,
        ..EmulatorConfig::new(dir.join("emulator"))
    };
    let emulator = Emulator::bind(config, false).await.map_err(|e| e.to_string())?;
    let token = emulator.state().developer_token().map_err(|e| e.to_string())?;
    let cfg = ApiConfig::with_urls(&emulator.state().api_url(), &emulator.state().upload_url());
    let client = Client::new(cfg, TokenSource::new(AuthMode::Fixed(token)).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    tracing::info!(url = %emulator.state().base_url, "embedded emulator serving");
    Ok((client, emulator.spawn()))
}

/// Re-runs this command in the foreground as a detached child, returns when it is mounted
/// (exit 0) or has failed (its error is shown).
fn daemonize() -> ExitCode {
    let log = mount::default_cache_root().join("mount.log");
    let _ = std::fs::create_dir_all(log.parent().expect("log has a parent"));
    let log_file = match std::fs::OpenOptions::new().create(true).append(true).open(&log) {
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
    cmd.args(std::env::args_os().skip(1)).arg("--foreground").env(READY_ENV, "1");
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
        assert_eq!(
            o,
            MountOpts { allow_other: true, read_only: true, uid: Some(1000), gid: Some(100), umask: Some(0o027) }
        );
        assert!(parse_mount_options(&["uid=x".into()]).is_err());
        assert!(parse_mount_options(&["bogus".into()]).unwrap_err().contains("bogus"));
    }
}
