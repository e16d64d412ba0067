//! The emulator is an independent oracle: it reaches nothing of the client (so that it can
//! move into its own crate, and so that a rule the client gets wrong cannot pass because the
//! emulator borrowed it), and where both sides implement one of Box's rules they agree.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/emulator") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn emulator_uses_no_client_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/emulator");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 10, "found the emulator's sources");
    let mut offenders = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                let after = &rest[at + "crate::".len()..];
                if !after.starts_with("emulator") {
                    offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
                rest = after;
            }
        }
    }
    assert!(offenders.is_empty(), "the emulator reaches outside itself:\n{}", offenders.join("\n"));
}

/// The emulator's naming rules and the client's are separate implementations; on names that
/// exercise every rule they must give the same verdict.
#[test]
fn client_and_emulator_agree_on_names() {
    use boxfs::api::model::{name_problem, NameProblem};
    use boxfs::emulator::store::names::{check_name, NameRefusal};
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
