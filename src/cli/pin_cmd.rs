//! `boxfs pin PATH...` (keep files and folders on this device: downloaded in the background and
//! never evicted; `--wait` reports progress until they are downloaded) and `boxfs unpin
//! PATH...` (their content becomes ordinary cache again), through each mount's control socket.

use super::status_cmd::{progress_line, sync_targets};
use crate::control::{self, PinDone};
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
    let targets = match sync_targets(&args.paths) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("boxfs pin: {e}");
            return ExitCode::from(2);
        }
    };
    let terminal = std::io::stderr().is_terminal();
    let mut errors = Vec::new();
    for (mountpoint, paths) in targets {
        let mut last = String::new();
        let result = control::pin(&mountpoint, paths, args.wait, |now| {
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
        match result {
            Ok(PinDone { errors: e, .. }) => errors.extend(e),
            Err(e) => {
                eprintln!("boxfs pin: {e}");
                return ExitCode::from(2);
            }
        }
    }
    finish("pin", errors, if args.wait { "pinned and downloaded" } else { "pinned (downloading in the background)" })
}

pub fn run_unpin(args: UnpinArgs) -> ExitCode {
    let targets = match sync_targets(&args.paths) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("boxfs unpin: {e}");
            return ExitCode::from(2);
        }
    };
    let mut errors = Vec::new();
    for (mountpoint, paths) in targets {
        match control::unpin(&mountpoint, paths) {
            Ok(done) => errors.extend(done.errors),
            Err(e) => {
                eprintln!("boxfs unpin: {e}");
                return ExitCode::from(2);
            }
        }
    }
    finish("unpin", errors, "unpinned (its content stays cached until evicted)")
}

fn finish(command: &str, errors: Vec<String>, success: &str) -> ExitCode {
    if errors.is_empty() {
        println!("boxfs {command}: {success}");
        return ExitCode::SUCCESS;
    }
    for e in errors {
        eprintln!("boxfs {command}: {e}");
    }
    ExitCode::FAILURE
}
