//! `boxfs status` (what a mount is doing: account, event stream, cache and pinned bytes, API
//! use, the request budget shared with the other processes of its login, pending and failed
//! uploads, pinned items with their download's progress, or where
//! one file or folder stands; `--json` for scripts), `boxfs sync` (upload what is pending,
//! everywhere or under some paths, now and wait, with a progress bar on a terminal) and `boxfs
//! recover` (upload or discard an entry held after a system crash).

use super::human_bytes;
use crate::control::{self, Status};
use crate::control::{PinReport, Upload, UploadStage};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A mountpoint (its whole report), or a file or folder in a mount (where its uploads
    /// stand) [default: every boxfs mount known on this machine].
    #[arg(value_name = "PATH")]
    pub mountpoint: Option<PathBuf>,
    /// Print JSON (one object per mount, in an array when no path is given).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Mountpoints, or files and folders in mounts, whose pending uploads to commit (a folder:
    /// everything under it) [default: everything on every boxfs mount].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("decision").required(true).args(["upload", "discard"])))]
pub struct RecoverArgs {
    /// Upload the held content of PATH after all (as a new version of the file, or a new file).
    #[arg(long)]
    pub upload: bool,
    /// Discard the held content of PATH (the file keeps what Box has).
    #[arg(long)]
    pub discard: bool,
    /// Where the held file would be in the mount (`boxfs status` lists held entries).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

pub fn run_status(args: StatusArgs) -> ExitCode {
    if let Some(path) = &args.mountpoint {
        if let Err(e) = std::fs::symlink_metadata(path) {
            eprintln!("boxfs status: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let result = match &args.mountpoint {
        Some(m) => control::status(m).map(|s| vec![s]),
        None => control::status_all(),
    };
    let statuses = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("boxfs status: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        let json = match &args.mountpoint {
            Some(_) => serde_json::to_string_pretty(&statuses[0]),
            None => serde_json::to_string_pretty(&statuses),
        };
        println!("{}", json.expect("status serializes"));
    } else if statuses.is_empty() {
        println!("no boxfs mounts");
    } else {
        for s in &statuses {
            print!("{}", render(s));
        }
    }
    ExitCode::SUCCESS
}

/// The human-readable report of one mount.
pub fn render(s: &Status) -> String {
    let mut out = match s.pid {
        Some(pid) => format!("{} (mounted, daemon pid {pid})\n", s.mountpoint.display()),
        None => format!("{} (no daemon running; pending uploads as the journal holds them)\n", s.mountpoint.display()),
    };
    let mut line = |label: &str, text: String| out.push_str(&format!("  {label:<9} {text}\n"));
    if let Some(a) = &s.account {
        line("account:", format!("{} (user {}) at {}", a.login, a.user_id, a.api_url));
        line("storage:", format!("{} of {} used", human_bytes(a.space_used), human_bytes(a.space_amount)));
    }
    line("Box:", s.connection.describe());
    line("events:", s.events.clone());
    let cache = match (s.cache.used_bytes, s.cache.capacity_bytes) {
        (Some(u), Some(c)) => format!("{} of {} in {}", human_bytes(u), human_bytes(c), s.cache.dir.display()),
        _ => s.cache.dir.display().to_string(),
    };
    line("cache:", cache);
    if let Some(pinned) = s.cache.pinned_bytes {
        line("pinned:", format!("{} kept on this device (apart from the cache size)", human_bytes(pinned)));
    }
    if let Some(api) = &s.api {
        line(
            "API:",
            format!(
                "{} requests, {} throttled (429) in the last minute; {} requests, {} retries since mount",
                api.requests_last_minute, api.throttled_last_minute, api.requests_total, api.retries_total
            ),
        );
    }
    if let Some(b) = &s.budget {
        let pids: Vec<String> = b.pids.iter().map(u32::to_string).collect();
        line(
            "budget:",
            format!(
                "{} of {} requests, {} of {} uploads in the last minute, by the {} process(es) sharing it: pid {}",
                b.requests_last_minute,
                b.requests_per_minute,
                b.uploads_last_minute,
                b.uploads_per_minute,
                pids.len(),
                pids.join(", ")
            ),
        );
    }
    if let Some(path) = &s.path {
        let state = if s.uploads.is_empty() { "in Box (nothing pending)" } else { "pending upload" };
        line("path:", format!("{}: {state}", path.display()));
    }
    let stuck = |u: &&Upload| matches!(u.state, UploadStage::Failed | UploadStage::Held);
    let failed = s.uploads.iter().filter(stuck).count();
    line("uploads:", format!("{} pending, {failed} failed or held", s.uploads.len() - failed));
    for u in &s.uploads {
        let durable = if u.durable { ", durable here" } else { "" };
        let mut row = format!(
            "    {:<10} {}  {} / {}{durable}",
            u.state,
            u.name,
            human_bytes(u.bytes_done),
            human_bytes(u.bytes_total)
        );
        if let Some(e) = &u.error {
            row.push_str(&format!("  ({e})"));
        }
        out.push_str(&row);
        out.push('\n');
    }
    if !s.pins.is_empty() {
        out.push_str(&format!("  {:<9} {} item(s) kept on this device\n", "pins:", s.pins.len()));
        for p in &s.pins {
            out.push_str(&format!("    {}\n", progress_line(p)));
        }
    }
    out
}

pub fn run_sync(args: SyncArgs) -> ExitCode {
    let bar = !args.quiet && std::io::stderr().is_terminal();
    let failures = per_mount("sync", &args.paths, |mountpoint, paths| {
        let result = control::sync(mountpoint, paths, |s| {
            if bar {
                draw_bar(s);
            }
        });
        if bar {
            eprint!("\r\x1b[2K");
        }
        result.map(|done| done.failures)
    });
    let failures = match failures {
        Ok(f) => f,
        Err(code) => return code,
    };
    if failures.is_empty() {
        if !args.quiet {
            println!("boxfs sync: everything asked for is in Box");
        }
        return ExitCode::SUCCESS;
    }
    eprintln!("boxfs sync: not everything asked for is in Box (what is not stays in the journal):");
    for f in failures {
        eprintln!("  {f}");
    }
    ExitCode::FAILURE
}

/// Asks each mount `paths` lie in (every mount when there are none) with the paths in it
/// (relative to its root; none: all of it), gathering the messages of what could not be done.
/// A path in no mount, or a daemon that does not answer, ends it: `boxfs COMMAND: why` and
/// exit code 2.
pub(super) fn per_mount(
    command: &str,
    paths: &[PathBuf],
    mut ask: impl FnMut(&Path, Vec<PathBuf>) -> Result<Vec<String>, control::ControlError>,
) -> Result<Vec<String>, ExitCode> {
    let asked = sync_targets(paths).and_then(|targets| {
        let mut messages = Vec::new();
        for (mountpoint, paths) in targets {
            messages.extend(ask(&mountpoint, paths)?);
        }
        Ok(messages)
    });
    asked.map_err(|e| {
        eprintln!("boxfs {command}: {e}");
        ExitCode::from(2)
    })
}

/// Each mount to sync with the paths in it (relative to its root; none: all of it).
fn sync_targets(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Vec<PathBuf>)>, control::ControlError> {
    if paths.is_empty() {
        return Ok(control::all_registered()?.into_iter().map(|m| (m.mountpoint, Vec::new())).collect());
    }
    let mut targets: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    for path in paths {
        let (entry, inside) = control::locate(path)?;
        match targets.iter_mut().find(|(m, _)| *m == entry.mountpoint) {
            Some((_, list)) => list.push(inside),
            None => targets.push((entry.mountpoint, vec![inside])),
        }
    }
    Ok(targets)
}

pub fn run_recover(args: RecoverArgs) -> ExitCode {
    match control::recover(&args.path, args.upload) {
        Ok(done) if done.error.is_none() && done.decided > 0 => {
            let what = if args.upload { "will be uploaded" } else { "was discarded" };
            println!("boxfs recover: the held content of {} {what}", args.path.display());
            ExitCode::SUCCESS
        }
        Ok(done) => {
            let why = done.error.unwrap_or_else(|| "nothing is held there (boxfs status lists held entries)".into());
            eprintln!("boxfs recover: {}: {why}", args.path.display());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("boxfs recover: {e}");
            ExitCode::from(2)
        }
    }
}

fn draw_bar(s: &Status) {
    const WIDTH: usize = 30;
    let total: u64 = s.uploads.iter().map(|u| u.bytes_total).sum();
    let done: u64 = s.uploads.iter().map(|u| u.bytes_done).sum();
    let filled = if total == 0 { WIDTH } else { (done as f64 / total as f64 * WIDTH as f64) as usize };
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r\x1b[2K[{}{}] {} file(s) pending, {} / {}",
        "#".repeat(filled.min(WIDTH)),
        "-".repeat(WIDTH - filled.min(WIDTH)),
        s.uploads.len(),
        human_bytes(done),
        human_bytes(total)
    );
    let _ = err.flush();
}

/// `Docs: 12 of 20 files, 3.0 MiB of 5.0 MiB, downloading`.
pub fn progress_line(p: &PinReport) -> String {
    let path = match p.path.as_os_str().is_empty() {
        true => "(the mount's root)".to_string(),
        false => p.path.display().to_string(),
    };
    let mut line = format!(
        "{path}: {} of {} files, {} of {}, {}",
        p.files_present,
        p.files_total,
        human_bytes(p.bytes_present),
        human_bytes(p.bytes_total),
        p.state
    );
    if let Some(e) = &p.error {
        line.push_str(&format!(" ({e})"));
    }
    line
}
