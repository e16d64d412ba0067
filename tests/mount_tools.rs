//! Everyday tools on a real mount: `rsync -a` twice (the second run transfers nothing),
//! `git clone` (with executable files and symlinks) + `git fsck` + `git status`, and `sqlite3`
//! creating and querying a database.

mod common;

use common::mount::{emulator, fuse_available, Mounted};
use common::run;
use std::process::Command;

fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{tool} is required in CI (scripts/test.sh installs it)");
        eprintln!("skipping: {tool} not installed");
    }
    ok
}

#[test]
fn rsync_twice_transfers_nothing_the_second_time() {
    if !fuse_available() || !have("rsync") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("a/b")).unwrap();
    for i in 0..30 {
        std::fs::write(src.path().join(format!("a/f{i}.txt")), format!("file {i}\n").repeat(i + 1)).unwrap();
        std::fs::write(src.path().join(format!("a/b/g{i}.bin")), vec![i as u8; 1000 * i]).unwrap();
    }
    let (rt, emu) = emulator(|_| {});
    let m = Mounted::start(rt, emu, &[]);
    let dst = format!("{}/dst/", m.path().display());
    run(Command::new("rsync").arg("-a").arg(format!("{}/", src.path().display())).arg(&dst));
    let second = run(Command::new("rsync")
        .arg("-a")
        .arg("--itemize-changes")
        .arg(format!("{}/", src.path().display()))
        .arg(&dst));
    assert_eq!(second.trim(), "", "second rsync transferred: {second}");
    let diff = Command::new("diff").arg("-r").arg(src.path()).arg(m.p("dst")).status().unwrap();
    assert!(diff.success());
}

#[test]
fn git_clone_fsck_and_status_in_the_mount() {
    if !fuse_available() || !have("git") {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let git = |dir: &std::path::Path, args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "init.defaultBranch=main"])
            .args(args))
    };
    git(repo.path(), &["init", "-q"]);
    for i in 0..20 {
        std::fs::write(repo.path().join(format!("src{i}.rs")), format!("fn f{i}() {{}}\n").repeat(50)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(repo.path().join("scripts")).unwrap();
    std::fs::write(repo.path().join("scripts/build.sh"), "#!/bin/sh\necho built\n").unwrap();
    std::fs::set_permissions(repo.path().join("scripts/build.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("scripts/build.sh", repo.path().join("build")).unwrap();
    std::os::unix::fs::symlink("../src0.rs", repo.path().join("scripts/first.rs")).unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-qm", "first"]);
    std::fs::write(repo.path().join("src0.rs"), "changed\n").unwrap();
    git(repo.path(), &["commit", "-qam", "second"]);

    let (rt, emu) = emulator(|_| {});
    let m = Mounted::start(rt, emu, &[]);
    run(Command::new("git").arg("clone").arg("-q").arg("--no-hardlinks").arg(repo.path()).arg(m.p("clone")));
    git(&m.p("clone"), &["fsck", "--strict"]);
    let status = git(&m.p("clone"), &["-c", "core.fileMode=true", "-c", "core.symlinks=true", "status", "--porcelain"]);
    assert_eq!(status.trim(), "", "clean working tree, modes and links included");
    let log = git(&m.p("clone"), &["log", "--oneline"]);
    assert_eq!(log.lines().count(), 2);
    let built = run(&mut Command::new(m.p("clone/build")));
    assert_eq!(built, "built\n", "the link resolves and the script is executable");
    assert_eq!(std::fs::read_link(m.p("clone/scripts/first.rs")).unwrap(), std::path::Path::new("../src0.rs"));
}

#[test]
fn sqlite3_creates_and_queries_a_database_in_the_mount() {
    if !fuse_available() || !have("sqlite3") {
        return;
    }
    let (rt, emu) = emulator(|_| {});
    let m = Mounted::start(rt, emu, &[]);
    let db = m.p("data.db");
    run(Command::new("sqlite3").arg(&db).arg(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
         INSERT INTO t(v) SELECT 'row ' || i FROM n;",
    ));
    run(Command::new("sqlite3").arg(&db).arg("UPDATE t SET v = 'changed' WHERE id % 10 = 0;"));
    let out = run(Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT count(*), sum(v = 'changed') FROM t; PRAGMA integrity_check;"));
    assert_eq!(out.trim(), "2000|200\nok");
}
