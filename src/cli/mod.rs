//! The `boxfs` command-line interface (clap): subcommand definitions and dispatch.

mod emulator_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "boxfs", version, about = "Mount a Box.com account as a local directory (FUSE)", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local Box API emulator (API, upload and download hosts, events, OAuth) on one
    /// loopback port, persisting its state in a data directory.
    Emulator(emulator_cmd::EmulatorArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Emulator(args) => emulator_cmd::run(args),
    }
}

/// Logs go to stderr (stdout is for machine-readable output), filtered by `RUST_LOG`.
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
