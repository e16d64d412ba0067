//! The `boxfs` command-line interface (clap): subcommand definitions and dispatch.

pub mod accounts;
mod api_args;
mod callback;
mod emulator_cmd;
mod log_file;
mod login_cmd;
pub mod man_cmd;
mod mount_cmd;
pub mod mount_helper;
mod pin_cmd;
mod preflight;
pub mod sd_notify;
mod share_cmd;
mod status_cmd;
mod versions_cmd;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
    /// Mount Box (or the embedded emulator) on a directory.
    Mount(mount_cmd::MountArgs),
    /// Show the Box user requests act for, how the credentials authenticate, and the quota.
    Whoami(api_args::ApiArgs),
    /// Show what mounts are doing: account, event stream, cache (pinned content apart), API use,
    /// pending and failed uploads, pinned items and their downloads (from the running daemon,
    /// or from the journal when none runs).
    Status(status_cmd::StatusArgs),
    /// Upload what is pending (on every mount, or under the given paths) now and wait until it
    /// is in Box.
    Sync(status_cmd::SyncArgs),
    /// Keep files and folders in a mount on this device: downloaded in the background and
    /// never evicted, so reading them needs no download (a folder: everything in it, also what
    /// is added later).
    Pin(pin_cmd::PinArgs),
    /// Stop keeping files and folders on this device (their content becomes ordinary cache).
    Unpin(pin_cmd::UnpinArgs),
    /// Decide on a file held back after a system crash (its staged data may be incomplete):
    /// upload it after all, or discard it.
    Recover(status_cmd::RecoverArgs),
    /// List the versions of a file in a mount (when each was uploaded, its id, its size, and
    /// where in the mount's hidden `.box/versions/` it can be read or copied back from).
    Versions(versions_cmd::VersionsArgs),
    /// Log in to Box (browser authorization, client credentials or a developer token) and save
    /// the credentials as a named account.
    Login(login_cmd::LoginArgs),
    /// Revoke an account's tokens and delete its saved credentials.
    Logout(login_cmd::LogoutArgs),
    /// Print the shared link of a file or folder in a mount, creating it (or changing its
    /// access, expiry or password) in Box first.
    Share(share_cmd::ShareArgs),
    /// Lock a file in a mount in Box (others cannot change, move or delete it) and print the
    /// lock.
    Lock(share_cmd::LockArgs),
    /// Remove the lock of a file in a mount.
    Unlock(share_cmd::UnlockArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(man_cmd::CompletionsArgs),
    /// Write the man pages generated from these definitions.
    #[command(hide = true)]
    Man(man_cmd::ManArgs),
}

pub fn main() -> ExitCode {
    let matches = match mount_helper::invocation() {
        mount_helper::Invocation::Args(args) => Cli::command().get_matches_from(args),
        mount_helper::Invocation::Fake => return ExitCode::SUCCESS,
        mount_helper::Invocation::Usage(message) => {
            eprintln!("mount.boxfs: {message}");
            return ExitCode::from(1);
        }
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Emulator(args) => emulator_cmd::run(args),
        Command::Mount(args) => {
            mount_cmd::run(args, matches.subcommand_matches("mount").expect("clap parsed `boxfs mount`"))
        }
        Command::Whoami(args) => whoami(args),
        Command::Status(args) => status_cmd::run_status(args),
        Command::Sync(args) => status_cmd::run_sync(args),
        Command::Recover(args) => status_cmd::run_recover(args),
        Command::Pin(args) => pin_cmd::run_pin(args),
        Command::Unpin(args) => pin_cmd::run_unpin(args),
        Command::Versions(args) => versions_cmd::run(args),
        Command::Login(args) => login_cmd::run_login(args),
        Command::Logout(args) => login_cmd::run_logout(args),
        Command::Share(args) => share_cmd::run_share(args),
        Command::Lock(args) => share_cmd::run_lock(args),
        Command::Unlock(args) => share_cmd::run_unlock(args),
        Command::Completions(args) => man_cmd::run_completions(args),
        Command::Man(args) => man_cmd::run_man(args),
    }
}

fn whoami(args: api_args::ApiArgs) -> ExitCode {
    init_logging("warn");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        let client = args.client()?;
        let me = client.me().await.map_err(|e| args.explain(&e))?;
        Ok::<_, String>((client, me))
    });
    match result {
        Ok((client, me)) => {
            println!("{} <{}> (user {})", me.name, me.login, me.id);
            let how = client.auth_mode().to_string();
            match &client.config().as_user {
                Some(_) => println!("acting as this user (As-User) with: {how}"),
                None => println!("authenticated with: {how}"),
            }
            if let Some(account) = args.saved_account() {
                println!("account: {account}");
            }
            println!("storage: {} of {} used", human_bytes(me.space_used), human_bytes(me.space_amount));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("boxfs whoami: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Logs go to stderr (stdout is for machine-readable output), filtered by `RUST_LOG`.
pub fn init_logging(default_filter: &str) {
    install_logging(default_filter, std::io::stderr, std::io::IsTerminal::is_terminal(&std::io::stderr()));
}

/// Installs the subscriber: `RUST_LOG` (else `default_filter`) into `writer`.
fn install_logging<W>(default_filter: &str, writer: W, ansi: bool)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi).try_init();
}
