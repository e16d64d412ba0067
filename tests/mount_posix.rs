//! POSIX attributes kept in Box metadata, through real mounts: a tree of symlinks (relative,
//! absolute, dangling), executable and private files, a private directory and files of another
//! owner goes through `rsync -a` and comes back equal after a remount with an empty cache; a
//! listing of files with stored attributes costs what one without does, and `chmod` costs one
//! metadata call per changed file (none when nothing changes, no download or upload); with
//! `allow_other` another user meets the stored modes.

mod common;

use common::mount::{fuse_emulator, Mounted};
use common::run;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

/// The unprivileged user of the permission checks.
const NOBODY: u32 = 65534;

/// True when running as root (chown and another user's view need it; CI runs as root).
fn root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    let ok = unsafe { libc::geteuid() } == 0;
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "the POSIX mount tests run as root in CI");
        eprintln!("skipping: needs root (chown, another user's view)");
    }
    ok
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `sh -c script` as the unprivileged user `nobody`.
fn as_nobody(script: &str) -> Output {
    Command::new("setpriv")
        .args(["--reuid", &NOBODY.to_string(), "--regid", &NOBODY.to_string(), "--clear-groups", "sh", "-c", script])
        .output()
        .expect("setpriv runs")
}

/// `boxfs sync` of a whole mount (given its mountpoint, the command finds it without looking
/// at other tests' mounts).
fn boxfs_sync(m: &Mounted) {
    let out = Command::new(env!("CARGO_BIN_EXE_boxfs")).args(["sync", "--quiet"]).arg(m.path()).output().unwrap();
    assert!(out.status.success(), "sync: {}", String::from_utf8_lossy(&out.stderr));
}

/// Requests of `stats` whose route matches `pred`.
fn count(stats: &Value, pred: impl Fn(&str) -> bool) -> u64 {
    stats["requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(route, _)| pred(route))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum()
}

fn metadata_calls(stats: &Value) -> u64 {
    count(stats, |r| r.contains("/metadata"))
}

/// Uploads and downloads.
fn content_calls(stats: &Value) -> u64 {
    count(stats, |r| r.starts_with("POST /api/") || r.contains("/content") || r.contains("/upload_sessions"))
}

/// Requests that change something in Box.
fn changes(stats: &Value) -> u64 {
    count(stats, |r| !r.starts_with("GET ") && !r.starts_with("OPTIONS "))
}

/// `find -printf '%p %y %m %U %G %l'` of a tree, relative and sorted.
fn find_listing(dir: &Path) -> String {
    let out = run(Command::new("find").arg(".").args(["-printf", "%p %y %m %U %G %l\n"]).current_dir(dir));
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    lines.join("\n")
}

/// The backup tree of the round trip: every kind of thing a home directory holds.
fn make_tree(src: &Path) {
    let p = |rel: &str| src.join(rel);
    std::fs::create_dir_all(p("bin")).unwrap();
    std::fs::write(p("bin/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    chmod(&p("bin/run.sh"), 0o755);
    std::fs::write(p("bin/tool"), vec![7u8; 3000]).unwrap();
    chmod(&p("bin/tool"), 0o750);
    std::fs::write(p("notes.txt"), "plain\n").unwrap();
    std::fs::write(p("secret.key"), "s3cret\n").unwrap();
    chmod(&p("secret.key"), 0o600);
    std::fs::write(p("group.conf"), "g\n").unwrap();
    chmod(&p("group.conf"), 0o640);
    std::fs::create_dir(p("private")).unwrap();
    std::fs::write(p("private/diary"), "dear\n").unwrap();
    chmod(&p("private"), 0o700);
    std::fs::create_dir(p("theirs")).unwrap();
    std::fs::write(p("theirs/data"), "not mine\n").unwrap();
    std::fs::write(p("their.txt"), "theirs\n").unwrap();
    for owned in ["theirs", "theirs/data", "their.txt"] {
        std::os::unix::fs::chown(p(owned), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::os::unix::fs::symlink("bin/run.sh", p("rel")).unwrap();
    std::os::unix::fs::symlink("../notes.txt", p("bin/up")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", p("abs")).unwrap();
    std::os::unix::fs::symlink("no/such/file", p("dangling")).unwrap();
    std::os::unix::fs::symlink("private", p("dirlink")).unwrap();
    run(Command::new("mkfifo").arg(p("fifo")));
    // Directory times last, as rsync sets them.
    for dir in ["bin", "private", "theirs", ""] {
        let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::new(1_500_000_000, 123_456_789);
        std::fs::File::open(p(dir)).unwrap().set_modified(when).unwrap();
    }
}

#[test]
fn rsync_a_round_trips_modes_owners_and_symlinks_through_a_remount() {
    if !root() {
        return;
    }
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path());
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "100"]);
    let from = format!("{}/", src.path().display());
    let backup = m.p("backup");
    let to = format!("{}/", backup.display());
    run(Command::new("rsync").arg("-a").arg(&from).arg(&to));
    assert_eq!(std::fs::read_link(backup.join("rel")).unwrap(), Path::new("bin/run.sh"));
    assert_eq!(std::fs::read(backup.join("rel")).unwrap(), b"#!/bin/sh\necho run\n", "the kernel follows it");
    assert_eq!(std::fs::read(backup.join("bin/up")).unwrap(), b"plain\n");
    assert_eq!(std::fs::symlink_metadata(backup.join("dangling")).unwrap().len(), "no/such/file".len() as u64);

    // Everything reaches Box; a new mount with an empty cache sees it all again.
    assert!(m.unmount().unwrap().success());
    m.cache = tempfile::tempdir().unwrap();
    m.respawn(&["--writeback-delay-ms", "100"]);
    assert_eq!(find_listing(&backup), find_listing(src.path()));
    let dry = run(Command::new("rsync").args(["-a", "--itemize-changes", "--dry-run"]).arg(&from).arg(&to));
    assert_eq!(dry.trim(), "", "nothing differs: {dry}");
    let linked = std::fs::read(backup.join("rel")).unwrap();
    assert_eq!(linked, b"#!/bin/sh\necho run\n");
    // The link's content in Box is its target, for other Box apps to read.
    let (id, _) = m.rt.block_on(async {
        let root = m.emu.get(&m.emu.api("/folders/0/items?fields=name")).await.body;
        let folder = root["entries"][0]["id"].as_str().unwrap().to_string();
        let items = m.emu.get(&m.emu.api(&format!("/folders/{folder}/items?fields=name&limit=1000"))).await.body;
        let rel = items["entries"].as_array().unwrap().iter().find(|e| e["name"] == "rel").unwrap().clone();
        (rel["id"].as_str().unwrap().to_string(), folder)
    });
    assert_eq!(m.rt.block_on(m.emu.download(&id, None)).2, b"bin/run.sh");

    // A second real run changes nothing in Box: no data, no modes, no links.
    m.reset_stats();
    let second = run(Command::new("rsync").args(["-a", "--itemize-changes"]).arg(&from).arg(&to));
    assert_eq!(second.trim(), "", "second rsync: {second}");
    boxfs_sync(&m);
    let stats = m.stats();
    assert_eq!(changes(&stats), 0, "{stats}");
}

/// Files `0..n` of one byte in a new folder `name`, each with `keys` stored on it.
fn seed_folder(m: &Mounted, name: &str, n: usize, keys: Option<Value>) {
    let store = m.emu.store();
    let folder = store.create_folder(boxfs_emulator::ADMIN_ID, 0, name).unwrap().id;
    let blob = store.blobs().put_bytes(b"x").unwrap();
    for i in 0..n {
        let file = store
            .create_file(
                boxfs_emulator::ADMIN_ID,
                boxfs_emulator::store::NewFile {
                    parent_id: folder,
                    name: format!("f{i:04}"),
                    blob: blob.clone(),
                    content_created_at: None,
                    content_modified_at: None,
                },
            )
            .unwrap();
        if let Some(keys) = &keys {
            let data = keys.as_object().unwrap().clone();
            store
                .create_metadata(
                    boxfs_emulator::ADMIN_ID,
                    boxfs_emulator::store::Kind::File,
                    file.id,
                    "global",
                    "properties",
                    data,
                )
                .unwrap();
        }
    }
}

/// `ls -ln` of a folder: every entry's mode and owner.
fn modes_and_owners(dir: &Path) -> Vec<(u32, u32)> {
    let mut out: Vec<(String, u32, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            (e.file_name().into_string().unwrap(), meta.mode() & 0o7777, meta.uid())
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, mode, uid)| (mode, uid)).collect()
}

#[test]
fn attributes_cost_no_listing_call_and_chmod_one_metadata_call_per_changed_file() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::new(rt, emu);
    seed_folder(&m, "plain", 1000, None);
    seed_folder(&m, "with", 1000, Some(serde_json::json!({"boxfs_mode": "0750", "boxfs_uid": "4242"})));
    let mut m = m;
    m.respawn(&["--events", "off", "--writeback-delay-ms", "100"]);
    let (plain, with) = (m.p("plain"), m.p("with"));
    assert!(plain.is_dir() && with.is_dir(), "the root is listed before anything is counted");
    let ls = |dir: &Path| {
        m.reset_stats();
        let seen = modes_and_owners(dir);
        (seen, m.stats())
    };
    let (plain_seen, plain_stats) = ls(&plain);
    let (with_seen, with_stats) = ls(&with);
    // SAFETY: geteuid(2) has no preconditions.
    let me = unsafe { libc::geteuid() };
    assert!(plain_seen.iter().all(|s| *s == (0o644, me)) && plain_seen.len() == 1000, "{:?}", &plain_seen[..3]);
    assert!(with_seen.iter().all(|s| *s == (0o750, 4242)) && with_seen.len() == 1000, "{:?}", &with_seen[..3]);
    assert_eq!(plain_stats["requests"], with_stats["requests"], "a listing costs the same with attributes");
    assert_eq!(count(&with_stats, |r| r.contains("/items")), 1, "one call for 1,000 entries: {with_stats}");

    // chmod of 100 files: one metadata call each, no content moved; again: none.
    let hundred: Vec<_> = (0..100).map(|i| plain.join(format!("f{i:04}"))).collect();
    let chmod_all = |mode: u32| {
        m.reset_stats();
        hundred.iter().for_each(|f| chmod(f, mode));
        boxfs_sync(&m);
        m.stats()
    };
    let stats = chmod_all(0o755);
    assert_eq!(metadata_calls(&stats), 100, "{stats}");
    assert_eq!(content_calls(&stats), 0, "no download or upload for a chmod: {stats}");
    assert_eq!(metadata_calls(&chmod_all(0o755)), 0, "the mode does not change");
    let back = chmod_all(0o644);
    assert_eq!(count(&back, |r| r.starts_with("DELETE ") && r.contains("/metadata")), 100, "{back}");
    assert_eq!(metadata_calls(&back), 100, "{back}");
    // A chmod and its undo before the write-back delay cost nothing.
    m.reset_stats();
    hundred.iter().for_each(|f| {
        chmod(f, 0o700);
        chmod(f, 0o644);
    });
    boxfs_sync(&m);
    assert_eq!(metadata_calls(&m.stats()), 0);
    assert!(modes_and_owners(&plain).iter().all(|s| s.0 == 0o644));
    if !root() {
        return;
    }
    // Back to the defaults, mode and owner: the instance (seeded, listed) goes, one call each.
    m.reset_stats();
    for i in 0..10 {
        let f = with.join(format!("f{i:04}"));
        chmod(&f, 0o644);
        std::os::unix::fs::chown(&f, Some(me), None).unwrap();
    }
    boxfs_sync(&m);
    let stats = m.stats();
    assert_eq!(count(&stats, |r| r.starts_with("DELETE ") && r.contains("/metadata")), 10, "{stats}");
    assert_eq!(metadata_calls(&stats), 10, "{stats}");
}

#[test]
fn another_user_meets_the_stored_modes_with_allow_other() {
    if !root() {
        return;
    }
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let mut m = Mounted::start(rt, emu, &["-o", "allow_other", "--writeback-delay-ms", "100"]);
    std::fs::write(m.p("secret"), "for root only\n").unwrap();
    chmod(&m.p("secret"), 0o600);
    std::fs::write(m.p("public"), "for all\n").unwrap();
    std::fs::create_dir(m.p("open")).unwrap();
    chmod(&m.p("open"), 0o777);
    std::fs::create_dir(m.p("closed")).unwrap();
    let check = |m: &Mounted, mine: &str| {
        let dir = m.path().display().to_string();
        let out = as_nobody(&format!("cat {dir}/secret"));
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
        assert!(as_nobody(&format!("cat {dir}/public")).status.success());
        let out = as_nobody(&format!("echo theirs > {dir}/open/{mine} && cat {dir}/open/{mine}"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let meta = std::fs::metadata(m.p(&format!("open/{mine}"))).unwrap();
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (NOBODY, NOBODY, 0o644), "theirs");
        assert!(!as_nobody(&format!("touch {dir}/closed/x")).status.success(), "0755 directory of root");
    };
    check(&m, "a");
    // The modes and owners are Box's now: a new mount with an empty cache enforces them too.
    assert!(m.unmount().unwrap().success());
    m.cache = tempfile::tempdir().unwrap();
    m.respawn(&["-o", "allow_other"]);
    check(&m, "b");
    let a = std::fs::metadata(m.p("open/a")).unwrap();
    assert_eq!((a.uid(), a.gid()), (NOBODY, NOBODY));
}

/// The `global.properties` instance of an item through the API (`Null` when it has none).
fn properties(m: &Mounted, kind: &str, id: i64) -> Value {
    let r = m.rt.block_on(m.emu.get(&m.emu.api(&format!("/{kind}/{id}/metadata/global/properties"))));
    if r.status == 404 {
        Value::Null
    } else {
        r.body
    }
}

#[test]
fn attribute_changes_pending_at_a_kill_9_reach_box_after_the_remount() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let store = emu.store();
    let folder = store.create_folder(boxfs_emulator::ADMIN_ID, 0, "d").unwrap().id;
    let blob = store.blobs().put_bytes(b"#!/bin/sh\n").unwrap();
    let new = boxfs_emulator::store::NewFile {
        parent_id: folder,
        name: "tool".into(),
        blob,
        content_created_at: None,
        content_modified_at: None,
    };
    let tool = store.create_file(boxfs_emulator::ADMIN_ID, new).unwrap().id;
    // Changes wait a minute: all are pending (journaled) when the daemon dies.
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "60000"]);
    chmod(&m.p("d/tool"), 0o755);
    chmod(&m.p("d"), 0o700);
    std::os::unix::fs::symlink("tool", m.p("d/link")).unwrap();
    assert_eq!(properties(&m, "files", tool), Value::Null, "nothing stored yet");
    assert!(!m.signal(libc::SIGKILL).unwrap().success());
    m.reset_stats();
    m.respawn(&[]);
    common::mount::wait_for("recovered attributes", 30, || {
        properties(&m, "folders", folder)["boxfs_mode"] == "0700"
            && properties(&m, "files", tool)["boxfs_mode"] == "0755"
    });
    assert_eq!(std::fs::read_link(m.p("d/link")).unwrap(), Path::new("tool"));
    boxfs_sync(&m);
    let stats = m.stats();
    assert_eq!(
        count(&stats, |r| r.contains("/files/{id}/content")),
        0,
        "tool is neither downloaded nor uploaded: {stats}"
    );
    assert_eq!(count(&stats, |r| r == "POST /api/2.0/files/content"), 1, "the link's one upload: {stats}");
    let stored = count(&stats, |r| r.contains("/metadata") && !r.starts_with("GET "));
    assert_eq!(stored, 3, "one call per changed item (the GETs are this test's): {stats}");
    assert_eq!(std::fs::symlink_metadata(m.p("d")).unwrap().mode() & 0o7777, 0o700);
}
