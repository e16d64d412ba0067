//! Walking a tree through a real mount: directories are listed with their entries' attributes
//! (READDIRPLUS) to a thread that stats them and with names only (but for folders) to one that
//! does not, a cold walk lists each folder once however the listings ahead of the walker
//! and the walker's own meet, and the extended attributes the kernel and `ls` ask of every file
//! are answered without being an error that would stop the `user.box.*` ones.

mod common;

use boxfs_emulator::store::NewFile;
use boxfs_emulator::{Store, ADMIN_ID};
use common::mount::{fuse_emulator, getxattr, wait_for, Mounted};
use std::path::Path;
use std::time::Duration;

fn folder(store: &Store, parent: i64, name: &str) -> i64 {
    store.create_folder(ADMIN_ID, parent, name).unwrap().id
}

fn file(store: &Store, parent: i64, name: &str) -> String {
    let blob = store.blobs().put_bytes(name.as_bytes()).unwrap();
    let nf =
        NewFile { parent_id: parent, name: name.into(), blob, content_created_at: None, content_modified_at: None };
    store.create_file(ADMIN_ID, nf).unwrap().id.to_string()
}

/// Waits until the mount follows Box's event stream (the kernel then keeps what it is given
/// for long).
fn wait_events_live(m: &Mounted) {
    let live = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_boxfs"))
            .args(["status", m.path().to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|s| s["events"] == "live")
    };
    wait_for("event stream live", 10, live);
}

fn listing_calls(m: &Mounted) -> u64 {
    m.stats()["requests"]["GET /2.0/folders/{id}/items"].as_u64().unwrap_or(0)
}

/// Every directory under `dir` and every entry's `lstat`, depth first, like `find` or `ls -lR`.
fn walk(dir: &Path) -> usize {
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        seen += 1;
        if meta.is_dir() {
            seen += walk(&path);
        }
    }
    seen
}

/// Names under `dir`, read without a `stat` (like `find -name`).
fn names(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect()
}

/// `stat`s every `name` in `dir`, checking the seeded sizes (a file's size is its name's length).
fn stat_all(dir: &Path, names: &[std::ffi::OsString]) {
    for name in names {
        let meta = std::fs::symlink_metadata(dir.join(name)).unwrap();
        let expected = if meta.is_dir() { 0 } else { name.len() as u64 };
        assert_eq!(meta.len(), expected, "{name:?}");
    }
}

/// Folder `d` with 40 files and a subfolder, and a file `probe.txt` at the root; mounted with
/// the daemon's listings stale after a second (the kernel keeps what it is given for long).
fn forty_files() -> Option<Mounted> {
    let (rt, emu) = fuse_emulator(|_| {})?;
    let d = folder(emu.store(), 0, "d");
    for i in 0..40 {
        file(emu.store(), d, &format!("f{i:02}.txt"));
    }
    folder(emu.store(), d, "sub");
    file(emu.store(), 0, "probe.txt");
    let m = Mounted::start(rt, emu, &["--metadata-ttl", "1"]);
    wait_events_live(&m);
    Some(m)
}

/// Makes the calling thread one that stats what it lists: it looks up a file.
fn become_a_statting_thread(m: &Mounted) {
    std::fs::symlink_metadata(m.p("probe.txt")).unwrap();
}

/// Waits until the daemon's listings are stale, with the emulator's counters reset: a LOOKUP
/// that reaches the daemon from then on costs a call to Box.
fn let_the_daemon_forget(m: &Mounted) {
    std::thread::sleep(Duration::from_millis(1500));
    m.reset_stats();
}

/// A thread that stats what it lists gets every entry with its attributes: once the folder is
/// read, the entries' `stat`s are answered by the kernel (its TTL is long while events flow)
/// even after the folder's listing expired in the daemon (which a LOOKUP would fetch again).
#[test]
fn a_statting_thread_gets_every_entrys_attributes_with_the_listing() {
    let Some(m) = forty_files() else { return };
    become_a_statting_thread(&m);
    let names = names(&m.p("d"));
    assert_eq!(names.len(), 41);
    // `sub`'s listing, fetched ahead of the walk, is in before the counting starts.
    assert_eq!(std::fs::read_dir(m.p("d/sub")).unwrap().count(), 0);
    let_the_daemon_forget(&m);
    stat_all(&m.p("d"), &names);
    // (The directories on the path may have their own attributes revalidated: not the entries.)
    let stats = m.stats();
    assert_eq!(listing_calls(&m), 0, "no lookup reached Box: {stats}");
    assert_eq!(stats["requests"]["GET /2.0/files/{id}"].as_u64().unwrap_or(0), 0, "nor a getattr: {stats}");
}

/// A thread that only reads names (`find -name`) gets files without attributes, which spares
/// the kernel an inode each: a `stat` of one then is a LOOKUP, which finds the daemon's listing
/// stale and asks Box. Folders come with theirs (walkers go into them).
#[test]
fn a_thread_reading_names_only_gets_files_without_attributes() {
    let Some(m) = forty_files() else { return };
    assert_eq!(names(&m.p("d")).len(), 41);
    let_the_daemon_forget(&m);
    std::fs::symlink_metadata(m.p("d/sub")).unwrap();
    assert_eq!(m.item_requests(), 0, "the folder came with its attributes: {}", m.stats());
    assert_eq!(std::fs::symlink_metadata(m.p("d/f07.txt")).unwrap().len(), 7);
    assert!(m.item_requests() > 0, "the file did not: its stat was a lookup: {}", m.stats());
}

/// The kernel keeps a folder's entries between opens. When a thread that stats opens a folder
/// whose kept entries came without attributes, the kernel is made to list it again, with them,
/// instead of looking up every entry.
#[test]
fn a_statting_thread_gets_attributes_where_the_kernel_kept_bare_entries() {
    let Some(m) = forty_files() else { return };
    let dir = m.p("d");
    std::thread::spawn(move || assert_eq!(names(&dir).len(), 41)).join().unwrap();
    become_a_statting_thread(&m);
    let names = names(&m.p("d"));
    let_the_daemon_forget(&m);
    stat_all(&m.p("d"), &names);
    assert_eq!(listing_calls(&m), 0, "no lookup reached Box: {}", m.stats());
    assert_eq!(m.item_requests(), 0, "{}", m.stats());
}

/// A cold walk of a tree (root, 1 + 4 + 12 folders) costs one listing call per folder: the
/// listings fetched ahead of the walker are the ones it then uses.
#[test]
fn a_cold_walk_lists_each_folder_once() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let store = emu.store();
    let top = folder(store, 0, "top");
    let mut folders = 1;
    for a in 0..4 {
        let fa = folder(store, top, &format!("a{a}"));
        file(store, fa, "x.txt");
        for b in 0..3 {
            let fb = folder(store, fa, &format!("b{b}"));
            for f in 0..5 {
                file(store, fb, &format!("f{f}.txt"));
            }
            folders += 1;
        }
        folders += 1;
    }
    let m = Mounted::start(rt, emu, &[]);
    assert_eq!(walk(m.path()), folders + 4 + 4 * 3 * 5);
    assert_eq!(listing_calls(&m), 1 + folders as u64, "the root and each folder once: {}", m.stats());
    // Walking again costs nothing: every listing and attribute is cached.
    m.reset_stats();
    walk(m.path());
    assert_eq!(m.item_requests(), 0, "{}", m.stats());
}

/// The names the kernel and `ls` ask of every file are answered, and the kernel keeps asking
/// for the `user.box.*` ones (no ENOSYS for xattrs as a whole).
#[test]
fn security_xattrs_are_absent_and_box_ones_answer() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let id = file(emu.store(), 0, "a.txt");
    let m = Mounted::start(rt, emu, &[]);
    let path = m.p("a.txt");
    for name in ["security.capability", "security.ima", "user.other", "trusted.x"] {
        assert_eq!(getxattr(&path, name), Err(libc::ENODATA), "{name}");
    }
    // Labels and ACLs are unsupported (which `ls` remembers for the mount, not the kernel).
    for name in ["security.selinux", "system.posix_acl_access", "system.posix_acl_default"] {
        assert_eq!(getxattr(m.path(), name), Err(libc::EOPNOTSUPP), "{name}");
    }
    // Asked again: still answered, and the user.box.* ones too.
    assert_eq!(getxattr(&path, "security.capability"), Err(libc::ENODATA));
    assert_eq!(getxattr(&path, "user.box.id").unwrap(), id.as_bytes());
    assert_eq!(getxattr(m.path(), "user.box.id").unwrap(), b"0");
}
