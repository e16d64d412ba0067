//! `boxfs status` (what a mount is doing: account, event stream, cache, API use, the request
//! budget shared with the other processes of its login, pending and failed uploads; `--json`
//! for scripts) and `boxfs sync` (upload everything now and wait, with a progress bar on a
//! terminal).

use super::human_bytes;
use crate::control::{self, Status};
use crate::vfs::uploads::UploadState;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The mount to report on (default: every boxfs mount known on this machine).
    pub mountpoint: Option<PathBuf>,
    /// Print JSON (one object per mount, in an array when no mountpoint is given).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The mount whose pending uploads to commit.
    pub mountpoint: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run_status(args: StatusArgs) -> ExitCode {
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
    line("events:", s.events.clone());
    let cache = match (s.cache.used_bytes, s.cache.capacity_bytes) {
        (Some(u), Some(c)) => format!("{} of {} in {}", human_bytes(u), human_bytes(c), s.cache.dir.display()),
        _ => s.cache.dir.display().to_string(),
    };
    line("cache:", cache);
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
    let failed = s.uploads.iter().filter(|u| u.state == UploadState::Failed).count();
    line("uploads:", format!("{} pending, {failed} failed", s.uploads.len() - failed));
    for u in &s.uploads {
        let mut row =
            format!("    {:<10} {}  {} / {}", u.state, u.name, human_bytes(u.bytes_done), human_bytes(u.bytes_total));
        if let Some(e) = &u.error {
            row.push_str(&format!("  ({e})"));
        }
        out.push_str(&row);
        out.push('\n');
    }
    out
}

pub fn run_sync(args: SyncArgs) -> ExitCode {
    let bar = !args.quiet && std::io::stderr().is_terminal();
    let result = control::sync(&args.mountpoint, |s| {
        if bar {
            draw_bar(s);
        }
    });
    if bar {
        eprint!("\r\x1b[2K");
    }
    match result {
        Ok(done) if done.failures.is_empty() => {
            if !args.quiet {
                println!("boxfs sync: every pending upload is in Box");
            }
            ExitCode::SUCCESS
        }
        Ok(done) => {
            eprintln!(
                "boxfs sync: {} file(s) could not be uploaded (their data stays in the journal):",
                done.failures.len()
            );
            for f in done.failures {
                eprintln!("  {f}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("boxfs sync: {e}");
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
