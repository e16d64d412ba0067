//! `boxfs emulator`: runs the local Box API emulator until SIGINT/SIGTERM. Prints the three
//! `BOX_*` lines on stdout first so that a script can source them.

use boxfs_emulator::{Emulator, EmulatorConfig, FaultSpec, NetworkSpec};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Directory holding the emulator's state (SQLite metadata + content blobs); created if missing.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Address to listen on. Port 0 picks a free port. Only loopback addresses unless --allow-remote.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Allow --listen on a non-loopback address (the emulator has no real security).
    #[arg(long)]
    pub allow_remote: bool,
    /// Fill a fresh (empty) data directory with sample content.
    #[arg(long, value_enum, value_name = "NAME")]
    pub seed: Option<boxfs_emulator::seed::SeedKind>,
    /// Lifetime of issued access tokens, in seconds (Box: 3600).
    #[arg(long, value_name = "SECS", default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..))]
    pub token_lifetime: i64,
    /// Fault injection, e.g. "429=0.05,500=0.02,reset=0.01,slow=0.01,commit202=0.5,seed=7".
    /// Keys: any 4xx/5xx status, reset (drop the connection unanswered), reset_after (process
    /// the request, then drop the connection), slow, commit202, download202 (probabilities per
    /// request), event_chaos (per event: sent twice, page reversed), seed, retry_after (seconds),
    /// slow_ms.
    #[arg(long, value_name = "SPEC", value_parser = parse_faults)]
    pub faults: Option<FaultSpec>,
    /// Hold every response this long before its first byte, as Box's round trips do; MS:JITTER
    /// varies it uniformly by up to ±JITTER ms (e.g. 100 or 100:20). Changed at run time with
    /// PUT /_emulator/network.
    #[arg(long, value_name = "MS[:JITTER]", value_parser = parse_latency)]
    pub latency: Option<(Duration, Duration)>,
    /// Pace each connection to this many bytes per second, uploads and downloads alike (one
    /// connection to Box carries tens of MB/s). Changed at run time with PUT /_emulator/network.
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = parse_bandwidth)]
    pub bandwidth: Option<u64>,
    /// Enforce Box's per-user rate limits (1000 requests/min, 240 uploads/min) with 429 + Retry-After.
    #[arg(long, value_enum, value_name = "PROFILE")]
    pub rate_limits: Option<RateLimitProfile>,
    /// Upload-session part size in bytes (default 8 MiB); when set, sessions are accepted for
    /// files of at least this size instead of Box's 20 MB minimum.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(i64).range(1..))]
    pub part_size: Option<i64>,
    /// Seconds a long-poll request waits for a change before answering "reconnect".
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub longpoll_timeout: u64,
    /// Lifetime of upload sessions, in seconds (Box: 7 days).
    #[arg(long, value_name = "SECS", default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(i64).range(1..))]
    pub session_lifetime: i64,
    /// Each user's storage quota in bytes (space_amount): the admin's at every start, other
    /// users' when they are made.
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub space_amount: i64,
    /// Make managed users user1@boxfs.invalid … userN@boxfs.invalid (those missing) at start,
    /// besides the admin (whose token is printed) and the service account; their ids are
    /// logged. More come with POST /2.0/users.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub users: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RateLimitProfile {
    /// Box's documented per-user limits.
    Box,
}

fn parse_faults(s: &str) -> Result<FaultSpec, String> {
    FaultSpec::parse(s).map_err(|e| e.to_string())
}

fn parse_latency(s: &str) -> Result<(Duration, Duration), String> {
    NetworkSpec::parse_latency(s).map_err(|e| e.to_string())
}

fn parse_bandwidth(s: &str) -> Result<u64, String> {
    NetworkSpec::parse_bandwidth(s).map_err(|e| e.to_string())
}

impl EmulatorArgs {
    fn config(&self) -> EmulatorConfig {
        EmulatorConfig {
            listen: self.listen,
            seed: self.seed,
            token_lifetime_secs: self.token_lifetime,
            faults: self.faults.clone().unwrap_or_default(),
            network: NetworkSpec {
                latency: self.latency.map(|l| l.0).unwrap_or_default(),
                jitter: self.latency.map(|l| l.1).unwrap_or_default(),
                bandwidth: self.bandwidth,
            },
            rate_limits: self.rate_limits.is_some(),
            part_size: self.part_size,
            longpoll_timeout: Duration::from_secs(self.longpoll_timeout),
            session_lifetime_secs: self.session_lifetime,
            space_amount: self.space_amount,
            users: self.users,
            ..EmulatorConfig::new(&self.data)
        }
    }
}

/// Freed memory the emulator keeps for reuse: a listing page of 1,000 items builds several MB
/// and frees them; given back each time, the pages are faulted in again by the next request.
const EMULATOR_HEAP_KEPT: usize = 256 << 20;

pub fn run(args: EmulatorArgs) -> ExitCode {
    super::init_logging("info");
    boxfs_io::heap::keep_freed_pages(EMULATOR_HEAP_KEPT);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("boxfs emulator: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let emulator = match Emulator::bind(args.config(), args.allow_remote).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("boxfs emulator: {e}");
                return ExitCode::FAILURE;
            }
        };
        let token = match emulator.state().developer_token() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("boxfs emulator: cannot issue a token: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Handlers before the lines are printed: a script may signal right after reading them.
        let shutdown = match crate::mount::shutdown_signal() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("boxfs emulator: cannot install signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(emulator.state().env_lines(&token).as_bytes());
        let _ = out.flush();
        drop(out);
        tracing::info!(addr = %emulator.addr(), data = %args.data.display(), "emulator serving");
        emulator.serve(shutdown).await;
        tracing::info!("emulator stopped");
        ExitCode::SUCCESS
    })
}
