//! The emulator is an independent oracle: it reaches nothing of the client (so that a rule the
//! client gets wrong cannot pass because the emulator borrowed it), and where both sides
//! implement one of Box's rules they agree.

use std::path::Path;

/// The emulator is a crate of its own that depends on no other boxfs crate (so the compiler
/// refuses any use of the client in it).
#[test]
fn emulator_depends_on_no_boxfs_crate() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/boxfs-emulator/Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string(&manifest).expect("read the manifest").parse().expect("toml");
    let deps: Vec<&String> = ["dependencies", "dev-dependencies", "build-dependencies"]
        .iter()
        .filter_map(|k| manifest.get(*k).and_then(|d| d.as_table()))
        .flat_map(|d| d.keys())
        .filter(|name| name.starts_with("boxfs"))
        .collect();
    assert!(deps.is_empty(), "the emulator depends on {deps:?}");
}

/// The emulator's naming rules and the client's are separate implementations; on names that
/// exercise every rule they must give the same verdict.
#[test]
fn client_and_emulator_agree_on_names() {
    use boxfs_api::model::{name_problem, NameProblem};
    use boxfs_emulator::store::names::{check_name, NameRefusal};
    let mut names: Vec<String> = [
        "",
        ".",
        "..",
        "...",
        "a",
        "a.",
        ".a",
        " a",
        "a ",
        "a  ",
        "a\t",
        "a/b",
        "a\\b",
        "ok name.txt",
        "ünï",
        "✓",
        "a\u{7f}",
        "a\u{0}",
        "a\u{1f}",
        "a\u{80}",
        "a\u{a0}",
        "con",
        "*?<>|:\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in [254, 255, 256] {
        names.push("x".repeat(n));
        names.push("é".repeat(n));
    }
    for name in &names {
        let client = match name_problem(name) {
            None => Ok(()),
            Some(NameProblem::Invalid) => Err(NameRefusal::Invalid),
            Some(NameProblem::TooLong) => Err(NameRefusal::TooLong),
        };
        assert_eq!(client, check_name(name), "client and emulator disagree on {name:?}");
    }
}
