//! Dependencies point one way. This test reads the workspace's `Cargo.toml` files and the
//! Rust sources under every crate's `src/`, and fails on:
//! - a dependency between workspace crates outside [`CRATE_DEPS`] (boxfs-io on none, boxfs-api
//!   and boxfs-emulator on boxfs-io only), or `fuser` in any crate but boxfs;
//! - an edge between the root crate's top-level modules outside [`MODULE_EDGES`] (they point
//!   down: cli → mount → fuse → vfs), named by file, line and path;
//! - a cycle between the files (or subdirectories) of one directory of any crate, named by the
//!   files and the paths that tie them.
//!
//! A file reaches a sibling through a `crate::`, `super::` or `self::` path, in a `use` tree
//! or in an expression. A path to a name that a module imports (`pub use x::Name` in a
//! `mod.rs`) is followed to the file the name comes from. A directory's `mod.rs` (or `lib.rs`)
//! is its facade: what it takes from its children and what they take from it are not edges.
//!
//! The checker, [`violations`], is a function over (path, text) pairs: the tests at the end
//! feed it the real tree plus a synthetic upward `use`, a two-file cycle or a manifest that
//! reaches the client and fuser, to show it fails.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

/// The workspace crates each workspace crate may depend on (in any dependency table).
const CRATE_DEPS: &[(&str, &[&str])] = &[
    ("boxfs-io", &[]),
    ("boxfs-api", &["boxfs-io"]),
    ("boxfs-emulator", &["boxfs-io"]),
    ("boxfs", &["boxfs-io", "boxfs-api", "boxfs-emulator"]),
];

/// The only crate that may use the FUSE library.
const FUSE_CRATE: &str = "boxfs";

/// The allowed edges between the root crate's top-level modules (`src/X`).
const MODULE_EDGES: &[(&str, &[&str])] = &[
    ("cli", &["mount", "control", "config", "vfs"]),
    ("mount", &["fuse", "control", "config", "telemetry", "vfs"]),
    ("telemetry", &["fuse", "vfs"]),
    ("control", &["config", "vfs"]),
    ("config", &["vfs"]),
    ("fuse", &["vfs"]),
    ("vfs", &[]),
];

/// Every rule the files break, one message each; empty when the architecture holds.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let manifests: Vec<_> = files.iter().filter(|(path, _)| path.ends_with("Cargo.toml")).collect();
    for (path, text) in manifests {
        check_manifest(path, text, &mut out);
    }
    let tree = Tree::parse(files);
    let mut graphs: BTreeMap<(String, Vec<String>), Graph> = BTreeMap::new();
    for file in &tree.files {
        for r in &file.refs {
            let target = tree.resolve(&file.krate, r.path.clone());
            let common = file.module.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == file.module.len() || common == target.len() {
                continue; // itself, its own child, or one of its facades
            }
            let (from, to) = (file.module[common].clone(), target[common].clone());
            let at = format!("{}:{} uses {}", file.path, r.line, r.written);
            if file.krate.is_empty() && common == 0 && !module_edge_allowed(&from, &to) {
                out.push(format!("{at}: module {from} may not use module {to} (MODULE_EDGES)"));
            }
            let graph = graphs.entry((file.krate.clone(), file.module[..common].to_vec())).or_default();
            graph.entry((from, to)).or_default().push(at);
        }
    }
    for ((krate, dir), graph) in &graphs {
        for cycle in cycles(graph) {
            let name = |m: &String| tree.label(krate, dir, m);
            let mut message = format!("cycle between {}:", cycle.iter().map(name).collect::<Vec<_>>().join(", "));
            for ((from, to), uses) in graph.iter().filter(|((f, t), _)| cycle.contains(f) && cycle.contains(t)) {
                message += &format!("\n  {} -> {}: {}", name(from), name(to), uses.join("; "));
            }
            out.push(message);
        }
    }
    out
}

fn module_edge_allowed(from: &str, to: &str) -> bool {
    MODULE_EDGES.iter().any(|(m, allowed)| *m == from && allowed.contains(&to))
}

fn check_manifest(path: &str, text: &str, out: &mut Vec<String>) {
    let manifest: toml::Table = match text.parse() {
        Ok(manifest) => manifest,
        Err(e) => return out.push(format!("{path}: not TOML: {e}")),
    };
    let Some(name) = manifest.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()) else { return };
    let Some((_, allowed)) = CRATE_DEPS.iter().find(|(krate, _)| *krate == name) else {
        return out.push(format!("{path}: crate {name} is not in CRATE_DEPS"));
    };
    let tables = ["dependencies", "dev-dependencies", "build-dependencies"];
    for dep in tables.iter().filter_map(|t| manifest.get(*t).and_then(|d| d.as_table())).flat_map(|d| d.keys()) {
        let workspace_crate = CRATE_DEPS.iter().any(|(krate, _)| krate == dep);
        if workspace_crate && !allowed.contains(&dep.as_str()) {
            out.push(format!("{path}: crate {name} may not depend on {dep} (CRATE_DEPS)"));
        }
        if dep == "fuser" && name != FUSE_CRATE {
            out.push(format!("{path}: only {FUSE_CRATE} may depend on fuser"));
        }
    }
}

/// The edges between the children of one directory, each with the uses that make it.
type Graph = BTreeMap<(String, String), Vec<String>>;

/// The sets of children that reach each other (strongly connected, more than one).
fn cycles(graph: &Graph) -> BTreeSet<BTreeSet<String>> {
    let mut next: HashMap<&String, Vec<&String>> = HashMap::new();
    for (from, to) in graph.keys() {
        next.entry(from).or_default().push(to);
    }
    let reach = |start: &String| {
        let mut seen = HashSet::new();
        let mut todo = vec![start];
        while let Some(m) = todo.pop() {
            for n in next.get(m).into_iter().flatten() {
                if seen.insert(*n) {
                    todo.push(n);
                }
            }
        }
        seen
    };
    let reached: HashMap<&String, HashSet<&String>> = next.keys().map(|m| (*m, reach(m))).collect();
    let mut out = BTreeSet::new();
    for (m, from_m) in &reached {
        let cycle: BTreeSet<String> =
            from_m.iter().filter(|n| reached.get(*n).is_some_and(|r| r.contains(m))).map(|n| n.to_string()).collect();
        if cycle.len() > 1 {
            out.insert(cycle);
        }
    }
    out
}

/// A `crate::`/`super::`/`self::` path (or a relative one in a `use`) in a file.
struct Ref {
    line: usize,
    /// Resolved to start at the crate root.
    path: Vec<String>,
    written: String,
}

struct SourceFile {
    path: String,
    /// The crate's directory: "" for the root crate, "crates/NAME/" for a member.
    krate: String,
    /// The module the file is, from the crate root.
    module: Vec<String>,
    refs: Vec<Ref>,
    /// The names the file's top level imports, with the paths they come from.
    imports: HashMap<String, Vec<String>>,
}

struct Tree {
    files: Vec<SourceFile>,
}

impl Tree {
    fn parse(files: &[(String, String)]) -> Tree {
        let mut sources: Vec<_> = files.iter().filter_map(|(path, text)| Some((source_file(path)?, text))).collect();
        let modules: HashSet<_> = sources.iter().map(|(f, _)| (f.krate.clone(), f.module.clone())).collect();
        for (file, text) in &mut sources {
            let is_module = |path: &[String]| modules.contains(&(file.krate.clone(), path.to_vec()));
            scan(&tokens(text), &file.module, &is_module, &mut file.refs, &mut file.imports);
        }
        Tree { files: sources.into_iter().map(|(file, _)| file).collect() }
    }

    fn file(&self, krate: &str, module: &[String]) -> Option<&SourceFile> {
        self.files.iter().find(|f| f.krate == krate && f.module == module)
    }

    /// The module of the file that defines what `path` names, following (up to 8) imports.
    fn resolve(&self, krate: &str, mut path: Vec<String>) -> Vec<String> {
        let mut module = Vec::new();
        for _ in 0..8 {
            let Some(file) = (0..=path.len()).rev().find_map(|n| self.file(krate, &path[..n])) else { break };
            module = file.module.clone();
            let rest = &path[module.len()..];
            let Some(from) = rest.first().and_then(|name| file.imports.get(name)) else { break };
            path = [from, &rest[1..]].concat();
        }
        module
    }

    /// How a child of `dir` is shown: its file, or its directory.
    fn label(&self, krate: &str, dir: &[String], child: &str) -> String {
        let module = [dir, &[child.to_string()]].concat();
        let path = self.file(krate, &module).map_or(child, |f| f.path.as_str());
        path.strip_suffix("mod.rs").unwrap_or(path).to_string()
    }
}

/// A file of a crate's `src/` and the module it is; `None` for other files and binaries.
fn source_file(path: &str) -> Option<SourceFile> {
    let (krate, rel) = match path.strip_prefix("src/") {
        Some(rel) => ("", rel),
        None => {
            let (name, rel) = path.strip_prefix("crates/")?.split_once("/src/")?;
            (&path[..7 + name.len() + 1], rel)
        }
    };
    let rel = rel.strip_suffix(".rs")?;
    if rel == "main" || rel.starts_with("bin/") {
        return None;
    }
    let mut module: Vec<String> = rel.split('/').map(String::from).collect();
    if rel == "lib" || rel.ends_with("/mod") {
        module.pop();
    }
    Some(SourceFile { path: path.into(), krate: krate.into(), module, refs: Vec::new(), imports: HashMap::new() })
}

struct Token {
    text: String,
    line: usize,
}

/// Identifiers, `::` and single punctuation; comments, strings and char literals dropped.
fn tokens(text: &str) -> Vec<Token> {
    let c: Vec<char> = text.chars().collect();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    let word = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        let start = i;
        let at = |k: usize| c.get(k).copied().unwrap_or('\0');
        match c[i] {
            '/' if at(i + 1) == '/' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                loop {
                    match (at(i), at(i + 1)) {
                        ('/', '*') => (depth, i) = (depth + 1, i + 2),
                        ('*', '/') => (depth, i) = (depth - 1, i + 2),
                        ('\0', _) => break,
                        _ => i += 1,
                    }
                    if depth == 0 {
                        break;
                    }
                }
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            'r' | 'b' if raw_string_hashes(&c[i..]).is_some() => {
                let (prefix, hashes) = raw_string_hashes(&c[i..]).expect("matched");
                let close: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                i += prefix + hashes + 1;
                while i < c.len() && !c[i..].starts_with(&close) {
                    i += 1;
                }
                i += close.len();
            }
            '\'' if at(i + 1) == '\\' || at(i + 2) == '\'' => {
                i += if at(i + 1) == '\\' { 3 } else { 2 };
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            ':' if at(i + 1) == ':' => {
                out.push(Token { text: "::".into(), line });
                i += 2;
            }
            ch if word(ch) => {
                while i < c.len() && word(c[i]) {
                    i += 1;
                }
                out.push(Token { text: c[start..i].iter().collect(), line });
            }
            ch => {
                if !ch.is_whitespace() {
                    out.push(Token { text: ch.to_string(), line });
                }
                i += 1;
            }
        }
        line += c[start..i.min(c.len())].iter().filter(|ch| **ch == '\n').count();
    }
    out
}

/// For a raw string at the start of `c` (`r"`, `r#"`, `br##"`...): its prefix's length and
/// how many `#` it has.
fn raw_string_hashes(c: &[char]) -> Option<(usize, usize)> {
    let prefix = if c.starts_with(&['b', 'r']) { 2 } else { usize::from(c.starts_with(&['r'])) };
    let hashes = c.iter().skip(prefix).take_while(|ch| **ch == '#').count();
    (prefix > 0 && c.get(prefix + hashes) == Some(&'"')).then_some((prefix, hashes))
}

/// Collects a file's paths (resolved from `module`, the file's module) and its top-level imports.
fn scan(
    t: &[Token],
    module: &[String],
    is_module: &dyn Fn(&[String]) -> bool,
    refs: &mut Vec<Ref>,
    imports: &mut HashMap<String, Vec<String>>,
) {
    let text = |k: usize| t.get(k).map_or("", |tok| tok.text.as_str());
    let mut inline: Vec<(String, usize)> = Vec::new(); // `mod NAME {` blocks and their depth
    let (mut depth, mut i) = (0, 0);
    while i < t.len() {
        let here: Vec<String> = module.iter().cloned().chain(inline.iter().map(|(m, _)| m.clone())).collect();
        let mut add = |written: Vec<String>, line: usize, name: Option<String>| {
            let Some(path) = absolute(&here, &written, is_module) else { return };
            if let (Some(name), true) = (name, depth == 0) {
                imports.insert(name, path.clone());
            }
            let written = written.join("::").trim_end_matches("::self").to_string();
            refs.push(Ref { line, path, written });
        };
        match text(i) {
            "{" => depth += 1,
            "}" => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            "mod" if text(i + 2) == "{" => inline.push((text(i + 1).to_string(), depth + 1)),
            "use" if text(i + 1) != "<" => {
                let line = t[i].line;
                i += 1;
                let mut paths = Vec::new();
                use_tree(t, &mut i, Vec::new(), &mut paths);
                for (path, name) in paths {
                    add(path, line, Some(name));
                }
                continue;
            }
            "crate" | "super" | "self" if text(i + 1) == "::" => {
                let mut path = vec![text(i).to_string()];
                while text(i + 1) == "::" && text(i + 2).starts_with(|ch: char| ch.is_alphabetic() || ch == '_') {
                    path.push(text(i + 2).to_string());
                    i += 2;
                }
                add(path, t[i].line, None);
            }
            _ => {}
        }
        i += 1;
    }
}

/// Reads one use tree at `t[*i]`, pushing each path and the name it binds.
fn use_tree(t: &[Token], i: &mut usize, mut path: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    let text = |k: usize| t.get(k).map_or("", |tok| tok.text.as_str());
    loop {
        match text(*i) {
            "::" => *i += 1,
            "{" => {
                *i += 1;
                while !matches!(text(*i), "}" | "") {
                    use_tree(t, i, path.clone(), out);
                    if text(*i) == "," {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                return out.push((path, "*".into()));
            }
            word if word.starts_with(|ch: char| ch.is_alphanumeric() || ch == '_') => {
                path.push(word.to_string());
                *i += 1;
                let mut name = if word == "self" { path[path.len().saturating_sub(2)].clone() } else { word.into() };
                if text(*i) == "as" {
                    name = text(*i + 1).to_string();
                    *i += 2;
                }
                if text(*i) != "::" {
                    return out.push((path, name));
                }
            }
            _ => return,
        }
    }
}

/// `written` from the crate root, seen from module `here`; `None` for another crate's path.
fn absolute(here: &[String], written: &[String], is_module: &dyn Fn(&[String]) -> bool) -> Option<Vec<String>> {
    let mut base: Vec<String> = here.to_vec();
    let mut rest = written;
    match written.first().map(String::as_str) {
        Some("crate") => (base, rest) = (Vec::new(), &written[1..]),
        Some("self") => rest = &written[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) if is_module(&[here, &[first.to_string()]].concat()) => {}
        _ => return None,
    }
    Some(base.into_iter().chain(rest.iter().filter(|s| *s != "self" && *s != "*").cloned()).collect())
}

/// The workspace's manifests and the Rust files under every crate's `src/`.
fn workspace_files() -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read dir").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                out.push((rel, std::fs::read_to_string(&path).expect("read source")));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![("Cargo.toml".to_string(), std::fs::read_to_string(root.join("Cargo.toml")).expect("manifest"))];
    walk(root, &root.join("src"), &mut out);
    let mut members: Vec<_> =
        std::fs::read_dir(root.join("crates")).expect("crates").map(|e| e.expect("entry").path()).collect();
    members.sort();
    for member in members {
        let manifest = member.join("Cargo.toml");
        let rel = manifest.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        out.push((rel, std::fs::read_to_string(&manifest).expect("member manifest")));
        walk(root, &member.join("src"), &mut out);
    }
    out
}

#[test]
fn dependencies_point_one_way() {
    let found = violations(&workspace_files());
    assert!(found.is_empty(), "the architecture is broken:\n{}", found.join("\n"));
}

#[test]
fn an_upward_use_fails_with_its_file_and_line() {
    let mut files = workspace_files();
    let before = violations(&files);
    files.push(("src/vfs/upward.rs".into(), "//! Reaches up.\n\nuse crate::cli::{main, accounts::Accounts};\n".into()));
    let added: Vec<_> = violations(&files).into_iter().filter(|v| !before.contains(v)).collect();
    assert_eq!(
        added[..2],
        [
            "src/vfs/upward.rs:3 uses crate::cli::main: module vfs may not use module cli (MODULE_EDGES)",
            "src/vfs/upward.rs:3 uses crate::cli::accounts::Accounts: module vfs may not use module cli (MODULE_EDGES)",
        ]
    );
    // cli already uses vfs: the new edge also closes a cycle through the crate's top level.
    assert_eq!(added.len(), 3, "{added:#?}");
    assert!(added[2].starts_with("cycle between src/cli/, "), "{}", added[2]);
    assert!(added[2].contains("\n  src/vfs/ -> src/cli/: src/vfs/upward.rs:3 uses crate::cli::main; "), "{}", added[2]);
}

#[test]
fn a_cycle_fails_with_its_files_and_names() {
    let mut files = workspace_files();
    let before = violations(&files);
    files.push(("crates/boxfs-io/src/ring/mod.rs".into(), "pub use left::Left;\n".into()));
    files.push(("crates/boxfs-io/src/ring/left.rs".into(), "pub struct Left(super::right::Right);\n".into()));
    files.push((
        "crates/boxfs-io/src/ring/right.rs".into(),
        "use super::Left;\n\npub struct Right(Box<Left>);\n".into(),
    ));
    let added: Vec<_> = violations(&files).into_iter().filter(|v| !before.contains(v)).collect();
    assert_eq!(
        added,
        ["cycle between crates/boxfs-io/src/ring/left.rs, crates/boxfs-io/src/ring/right.rs:\n  \
          crates/boxfs-io/src/ring/left.rs -> crates/boxfs-io/src/ring/right.rs: crates/boxfs-io/src/ring/left.rs:1 uses super::right::Right\n  \
          crates/boxfs-io/src/ring/right.rs -> crates/boxfs-io/src/ring/left.rs: crates/boxfs-io/src/ring/right.rs:1 uses super::Left"]
    );
}

#[test]
fn a_crate_reaching_the_client_or_fuse_fails() {
    let mut files = workspace_files();
    let before = violations(&files);
    let (path, manifest) = files.iter_mut().find(|(p, _)| p == "crates/boxfs-emulator/Cargo.toml").expect("manifest");
    manifest.push_str("\n[build-dependencies]\nboxfs-api = { workspace = true }\nfuser = { workspace = true }\n");
    let path = path.clone();
    let added: Vec<_> = violations(&files).into_iter().filter(|v| !before.contains(v)).collect();
    assert_eq!(
        added,
        [
            format!("{path}: crate boxfs-emulator may not depend on boxfs-api (CRATE_DEPS)"),
            format!("{path}: only boxfs may depend on fuser"),
        ]
    );
}
