//! `boxfs pin PATH...` (keep files and folders on this device: downloaded in the background and
//! never evicted; `--wait` reports progress until they are downloaded) and `boxfs unpin
//! PATH...` (their content becomes ordinary cache again), through each mount's control socket.

use super::status_cmd::{per_mount, progress_line};
use crate::control;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct PinArgs {
    /// Files and folders in boxfs mounts to keep on this device (a folder: everything in it,
    /// including what is added later).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Wait until everything pinned is downloaded, reporting progress on stderr.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct UnpinArgs {
    /// Files and folders pinned themselves (not only through a pinned folder).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

pub fn run_pin(args: PinArgs) -> ExitCode {
    let terminal = std::io::stderr().is_terminal();
    let errors = per_mount("pin", &args.paths, |mountpoint, paths| {
        let mut last = String::new();
        let result = control::pin(mountpoint, paths, args.wait, |now| {
            let line = now.pins.iter().map(progress_line).collect::<Vec<_>>().join("; ");
            if line != last {
                match terminal {
                    true => eprint!("\r\x1b[2K{line}"),
                    false => eprintln!("{line}"),
                }
                let _ = std::io::stderr().flush();
                last = line;
            }
        });
        if terminal && args.wait {
            eprint!("\r\x1b[2K");
        }
        result.map(|done| done.errors)
    });
    finish("pin", errors, if args.wait { "pinned and downloaded" } else { "pinned (downloading in the background)" })
}

pub fn run_unpin(args: UnpinArgs) -> ExitCode {
    let errors =
        per_mount("unpin", &args.paths, |mountpoint, paths| control::unpin(mountpoint, paths).map(|d| d.errors));
    finish("unpin", errors, "unpinned (its content stays cached until evicted)")
}

fn finish(command: &str, errors: Result<Vec<String>, ExitCode>, success: &str) -> ExitCode {
    let errors = match errors {
        Ok(errors) => errors,
        Err(code) => return code,
    };
    if errors.is_empty() {
        println!("boxfs {command}: {success}");
        return ExitCode::SUCCESS;
    }
    for e in errors {
        eprintln!("boxfs {command}: {e}");
    }
    ExitCode::FAILURE
}
