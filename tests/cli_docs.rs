//! Generated docs stay in step with the CLI: the checked-in man pages under `man/` equal what
//! the clap definitions produce now, and every shell's completion script mentions the
//! subcommands. Regenerate the pages with `BOXFS_UPDATE_MAN=1 cargo test --test cli_docs`.

use std::path::Path;
use std::process::Command;

#[test]
fn man_pages_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = boxfs::cli::man_cmd::man_pages();
    assert!(pages.iter().any(|(n, _)| n == "boxfs.1") && pages.iter().any(|(n, _)| n == "boxfs-login.1"));
    if std::env::var_os("BOXFS_UPDATE_MAN").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "1") {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        for (name, text) in &pages {
            std::fs::write(dir.join(name), text).unwrap();
        }
        return;
    }
    let hint = "regenerate with: BOXFS_UPDATE_MAN=1 cargo test --test cli_docs";
    for (name, text) in &pages {
        let on_disk = std::fs::read(dir.join(name)).unwrap_or_default();
        assert!(on_disk == *text, "man/{name} is out of date; {hint}");
    }
    let stale: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1") && !pages.iter().any(|(p, _)| p == n))
        .collect();
    assert!(stale.is_empty(), "man/ has pages for no command: {stale:?}; {hint}");
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_boxfs")).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.len() > 500, "{shell}: a real script");
        for sub in ["mount", "login", "logout", "whoami", "emulator", "completions"] {
            assert!(script.contains(sub), "{shell} completion mentions {sub}");
        }
    }
}

#[test]
fn readme_config_example_parses() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```toml\n").expect("README has a config example") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let parsed = boxfs::config::ConfigFile::parse(&readme[start..end], Path::new("README.md")).unwrap();
    let mut work = boxfs::config::Settings::default();
    parsed.apply_for("work", &mut work).unwrap();
    assert!(work.read_only);
}
