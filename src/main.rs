//! The `boxfs` command line: parses arguments (clap) and runs the chosen subcommand.

use boxfs::cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
