//! Generated documentation: man pages from the clap definitions (`boxfs man --out DIR`, hidden;
//! the checked-in `man/` is kept fresh by `tests/cli_docs.rs`) and shell completions
//! (`boxfs completions bash|zsh|fish`).

use clap::{Args, CommandFactory};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write boxfs.1 and one boxfs-SUBCOMMAND.1 page per subcommand into.
    #[arg(long, value_name = "DIR", default_value = "man")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Every man page: (file name, roff text). The top page first, then one per visible subcommand.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut top = super::Cli::command();
    top.build();
    let mut pages = vec![("boxfs.1".to_string(), render(top.clone()))];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = format!("boxfs-{}", sub.get_name());
        let page = sub.clone().name(name.clone()).bin_name(format!("boxfs {}", sub.get_name()));
        pages.push((format!("{name}.1"), render(page)));
    }
    pages
}

fn render(cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out).expect("rendering to memory cannot fail");
    out
}

pub fn run_man(args: ManArgs) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("boxfs man: {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    for (name, text) in man_pages() {
        let path = args.out.join(&name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("boxfs man: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}

pub fn run_completions(args: CompletionsArgs) -> ExitCode {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "boxfs", &mut std::io::stdout());
    ExitCode::SUCCESS
}
