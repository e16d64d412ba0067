//! Local-first durability through a real mount: `fsync` returns once the bytes are on the
//! local disk (no upload waited for) and a `kill -9` right after loses nothing and uploads
//! nothing twice; uploads coalesce (a file rewritten while its upload runs ends with its last
//! bytes; write-temp-then-rename saves become versions of one Box file; files created and
//! deleted before their upload cost no API call); reads racing truncates never fail; random
//! reads, writes, truncates and mapped writes with `msync` leave Box equal to a local copy;
//! `boxfs sync` and `boxfs status` of one path.

mod common;

use common::emu::{bytes, sha1_hex};
use common::mount::{boxfs, fuse_emulator, status_json, Mounted};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::time::{Duration, Instant};

fn sync(path: &std::path::Path) {
    let out = boxfs(&["sync", "--quiet", path.to_str().unwrap()]);
    assert!(out.status.success(), "sync: {}", String::from_utf8_lossy(&out.stderr));
}

/// Upload requests (direct, new versions and sessions created) the emulator has seen.
fn uploads(stats: &Value) -> u64 {
    let routes = &stats["requests"];
    [
        "POST /api/2.0/files/content",
        "POST /api/2.0/files/{id}/content",
        "POST /api/2.0/files/upload_sessions",
        "POST /api/2.0/files/{id}/upload_sessions",
    ]
    .iter()
    .map(|r| routes[*r].as_u64().unwrap_or(0))
    .sum()
}

fn entries(m: &Mounted, folder: &str) -> Vec<Value> {
    m.rt.block_on(async {
        let r = m.emu.get(&m.emu.api(&format!("/folders/{folder}/items?limit=1000&fields=name,sha1"))).await;
        r.body["entries"].as_array().unwrap().clone()
    })
}

fn versions(m: &Mounted, file_id: &str) -> usize {
    m.rt.block_on(async {
        let r = m.emu.get(&m.emu.api(&format!("/files/{file_id}/versions"))).await;
        r.body["entries"].as_array().map_or(0, Vec::len)
    })
}

#[test]
fn fsync_is_durable_here_without_waiting_for_box() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000"]);
    m.reset_stats();
    let mut f = std::fs::File::create(m.p("db.sqlite")).unwrap();
    for i in 0..50u64 {
        f.write_all(&bytes(i, 4096)).unwrap();
        f.sync_all().unwrap();
        f.sync_data().unwrap();
    }
    assert_eq!(uploads(&m.stats()), 0, "fsync waited for no upload");
    drop(f);
    let s = status_json(&m.p("db.sqlite"));
    let upload = &s["uploads"][0];
    assert_eq!((upload["state"].as_str(), upload["durable"].as_bool()), (Some("waiting"), Some(true)), "{s}");
    let text = String::from_utf8(boxfs(&["status", m.p("db.sqlite").to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("pending upload") && text.contains("durable here"), "{text}");
    sync(&m.p("db.sqlite"));
    let text = String::from_utf8(boxfs(&["status", m.p("db.sqlite").to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("db.sqlite: in Box"), "{text}");
}

#[test]
fn kill_9_right_after_fsync_loses_nothing_and_uploads_nothing_twice() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    // Uploads start as soon as a file is closed, so some are in flight when the daemon dies.
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "0"]);
    let mut expected = BTreeMap::new();
    for i in 0..100u64 {
        let (name, data) = (format!("f{i:03}.bin"), bytes(7000 + i, 1000 + i as usize * 37));
        let mut f = std::fs::File::create(m.p(&name)).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        expected.insert(name, sha1_hex(&data));
    }
    assert!(!m.signal(libc::SIGKILL).unwrap().success());
    m.respawn(&[]);
    sync(m.path());
    assert_eq!(m.box_files("0"), expected, "all 100 in Box, byte-exact, no conflicted copies");
    for e in entries(&m, "0") {
        assert_eq!(versions(&m, e["id"].as_str().unwrap()), 0, "{} was uploaded once", e["name"]);
    }
}

#[test]
fn a_file_rewritten_50_times_while_its_upload_runs_ends_with_its_last_bytes() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000"]);
    std::fs::write(m.p("busy.txt"), b"version 0").unwrap();
    // From here every request is held 4 s: the upload a sync starts runs while the file is
    // rewritten.
    m.rt.block_on(m.emu.set_faults("slow=1,slow_ms=4000"));
    m.reset_stats();
    let first = std::thread::spawn({
        let file = m.p("busy.txt");
        move || sync(&file)
    });
    std::thread::sleep(Duration::from_millis(500));
    for i in 1..=50 {
        std::fs::write(m.p("busy.txt"), format!("version {i}")).unwrap();
    }
    m.rt.block_on(m.emu.set_faults(""));
    first.join().unwrap();
    sync(&m.p("busy.txt"));
    assert_eq!(m.box_files("0")["busy.txt"], sha1_hex(b"version 50"));
    assert_eq!(std::fs::read(m.p("busy.txt")).unwrap(), b"version 50");
    let stats = m.stats();
    assert_eq!(uploads(&stats), 2, "the one in flight, then exactly one more: {stats}");
    let sent = stats["bytes_received"].as_u64().unwrap();
    assert_eq!(sent, (b"version 0".len() + b"version 50".len()) as u64, "version 0 was in flight: {stats}");
}

#[test]
fn editor_saves_become_versions_of_one_box_file() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let id = rt.block_on(emu.new_file("0", "notes.txt", b"original".to_vec()));
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "1000"]);
    m.reset_stats();
    for i in 0..100 {
        let tmp = m.p(&format!(".notes.txt.{i}.tmp"));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(format!("save {i}").as_bytes()).unwrap();
        f.sync_all().unwrap();
        drop(f);
        std::fs::rename(&tmp, m.p("notes.txt")).unwrap();
    }
    assert_eq!(std::fs::read(m.p("notes.txt")).unwrap(), b"save 99");
    sync(m.path());
    let listed = entries(&m, "0");
    assert_eq!(listed.len(), 1, "no temp file reached Box: {listed:?}");
    assert_eq!((listed[0]["id"].as_str(), listed[0]["name"].as_str()), (Some(id.as_str()), Some("notes.txt")));
    assert_eq!(listed[0]["sha1"].as_str(), Some(sha1_hex(b"save 99").as_str()), "the last save is current");
    let stats = m.stats();
    assert!(uploads(&stats) <= 3, "at most a few uploads of the final file: {stats}");
    assert_eq!(stats["requests"]["DELETE /2.0/files/{id}"].as_u64().unwrap_or(0), 0, "nothing deleted: {stats}");
    assert!(versions(&m, &id) >= 1, "the original is kept as an old version");
    // Opened to be overwritten and closed unwritten: the empty file is a change too.
    drop(std::fs::File::create(m.p("notes.txt")).unwrap());
    sync(m.path());
    assert_eq!(m.box_files("0")["notes.txt"], sha1_hex(b""));
}

#[test]
fn files_created_and_deleted_before_their_upload_cost_no_api_call() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "1000"]);
    std::fs::create_dir(m.p("repo")).unwrap();
    std::fs::write(m.p("repo/index"), b"index 0").unwrap();
    sync(m.path());
    m.reset_stats();
    for i in 1..=20 {
        // sqlite's rollback journal, an editor's swap file, git's lock-then-rename.
        let mut journal = std::fs::File::create(m.p("repo/db-journal")).unwrap();
        journal.write_all(&bytes(i, 2048)).unwrap();
        journal.sync_all().unwrap();
        drop(journal);
        std::fs::remove_file(m.p("repo/db-journal")).unwrap();
        std::fs::write(m.p("repo/index.lock"), format!("index {i}")).unwrap();
        std::fs::rename(m.p("repo/index.lock"), m.p("repo/index")).unwrap();
    }
    assert_eq!(m.item_requests(), 0, "nothing reached Box yet: {}", m.stats());
    sync(m.path());
    let stats = m.stats();
    assert_eq!(uploads(&stats), 1, "one new version of index: {stats}");
    assert_eq!(stats["requests"]["DELETE /2.0/files/{id}"].as_u64().unwrap_or(0), 0, "{stats}");
}

#[test]
fn reads_racing_truncates_never_fail() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let log = tempfile::NamedTempFile::new().unwrap();
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000", "--log-file", log.path().to_str().unwrap()]);
    std::fs::write(m.p("racy.bin"), bytes(1, 1 << 20)).unwrap();
    let stop = Instant::now() + Duration::from_secs(10);
    let path = m.p("racy.bin");
    let truncator = std::thread::spawn(move || {
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut n = 1u64;
        while Instant::now() < stop {
            n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            f.set_len((n >> 44) % (1 << 20)).unwrap();
            f.write_all_at(&[7u8; 8192], (n >> 40) % (1 << 20)).unwrap();
        }
    });
    let reader = std::fs::File::open(m.p("racy.bin")).unwrap();
    let (mut reads, mut buf) = (0u64, vec![0u8; 128 * 1024]);
    while Instant::now() < stop {
        reads += 1;
        reader.read_at(&mut buf, (reads * 7919) % (1 << 20)).expect("a read racing a truncate never fails");
    }
    truncator.join().unwrap();
    let logged = std::fs::read_to_string(log.path()).unwrap();
    assert!(!logged.contains("read failed"), "the daemon logged a read error: {logged}");
    assert!(reads > 100, "{reads} reads");
}

#[test]
fn random_operations_with_mapped_writes_leave_box_equal_to_a_local_copy() {
    use std::os::fd::AsRawFd;
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "300"]);
    let local = tempfile::tempdir().unwrap();
    let open = |p: std::path::PathBuf| {
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(p).unwrap()
    };
    let (mounted, model) = (open(m.p("fsx.bin")), open(local.path().join("fsx.bin")));
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound.max(1)
    };
    let started = Instant::now();
    for op in 0..20_000u64 {
        let size = model.metadata().unwrap().len();
        match next(10) {
            0..=2 => {
                let (offset, len) = (next(size + 20_000), next(16_384) as usize + 1);
                let data = bytes(op, len);
                mounted.write_all_at(&data, offset).unwrap();
                model.write_all_at(&data, offset).unwrap();
            }
            3 => {
                let to = next(262_144);
                mounted.set_len(to).unwrap();
                model.set_len(to).unwrap();
            }
            4 | 5 if size > 0 => {
                // A shared mapping of the whole file, a few bytes written, msync(MS_SYNC).
                let (offset, len) = (next(size), next(512) as usize + 1);
                let len = len.min((size - offset) as usize);
                let data = bytes(op + 1_000_000, len);
                for f in [&mounted, &model] {
                    // SAFETY: a fresh shared mapping of `size` bytes of an open file, written
                    // within its bounds and unmapped at once.
                    unsafe {
                        let p = libc::mmap(
                            std::ptr::null_mut(),
                            size as usize,
                            libc::PROT_READ | libc::PROT_WRITE,
                            libc::MAP_SHARED,
                            f.as_raw_fd(),
                            0,
                        );
                        assert_ne!(p, libc::MAP_FAILED, "op {op}: mmap");
                        std::ptr::copy_nonoverlapping(data.as_ptr(), (p as *mut u8).add(offset as usize), len);
                        assert_eq!(libc::msync(p, size as usize, libc::MS_SYNC), 0, "op {op}: msync");
                        libc::munmap(p, size as usize);
                    }
                }
            }
            _ => {
                let (offset, len) = (next(size + 100), next(65_536) as usize);
                let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                let got_a = mounted.read_at(&mut a, offset).unwrap();
                let got_b = model.read_at(&mut b, offset).unwrap();
                assert!(got_a == got_b && a[..got_a] == b[..got_b], "op {op}: read {len} at {offset}");
            }
        }
    }
    eprintln!("20,000 operations in {:?}", started.elapsed());
    drop(mounted);
    sync(m.path());
    let want = sha1_hex(&std::fs::read(local.path().join("fsx.bin")).unwrap());
    assert_eq!(m.box_files("0")["fsx.bin"], want, "Box has what the local copy has");
}

#[test]
fn sync_and_status_of_one_path() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000"]);
    for dir in ["a", "a/deep", "b"] {
        std::fs::create_dir(m.p(dir)).unwrap();
    }
    for file in ["a/one.txt", "a/deep/two.txt", "b/three.txt", "four.txt"] {
        std::fs::write(m.p(file), file.as_bytes()).unwrap();
    }
    let names = |s: &Value| -> Vec<String> {
        let mut n: Vec<String> =
            s["uploads"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&status_json(&m.p("a"))), ["one.txt", "two.txt"], "status of a subtree");
    sync(&m.p("a"));
    assert_eq!(names(&status_json(m.path())), ["four.txt", "three.txt"], "only the subtree was synced");
    sync(&m.p("four.txt"));
    assert_eq!(names(&status_json(m.path())), ["three.txt"]);
    assert!(names(&status_json(&m.p("a/one.txt"))).is_empty());
    let missing = boxfs(&["sync", m.p("nowhere").to_str().unwrap()]);
    assert!(!missing.status.success());
}

#[test]
fn a_cache_dir_serves_one_mount_at_a_time() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &[]);
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_boxfs"))
        .args(["mount", "--foreground", "--api-url", &m.emu.api(""), "--upload-url", &m.emu.upload("")])
        .arg("--cache-dir")
        .arg(m.cache.path())
        .arg(other.path())
        .env("BOX_ACCESS_TOKEN", &m.emu.token)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use by another boxfs mount"), "{err}");
}

#[test]
fn an_upload_that_committed_just_before_a_crash_is_not_sent_again() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let id = rt.block_on(emu.new_file("0", "old.txt", b"old".to_vec()));
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000"]);
    std::fs::write(m.p("new.txt"), b"brand new").unwrap();
    std::fs::write(m.p("old.txt"), b"changed").unwrap();
    let saved = tempfile::tempdir().unwrap();
    let entries = m.journal_records();
    assert_eq!(entries.len(), 2);
    for (record, _) in &entries {
        for file in [record.clone(), record.with_extension("data")] {
            std::fs::copy(&file, saved.path().join(file.file_name().unwrap())).unwrap();
        }
    }
    sync(m.path());
    let etag = m.rt.block_on(m.emu.get(&m.emu.api(&format!("/files/{id}")))).body["etag"].clone();
    // The daemon dies after both commits landed but before their journal entries went: put
    // them back as they were, the version's record already naming the etag it landed as.
    assert!(!m.signal(libc::SIGKILL).unwrap().success());
    for file in std::fs::read_dir(saved.path()).unwrap().flatten() {
        std::fs::copy(file.path(), m.cache.path().join("journal").join(file.file_name())).unwrap();
    }
    for (path, mut record) in m.journal_records() {
        if record["base_id"] == id.as_str() {
            record["base_etag"] = etag.clone();
            std::fs::write(path, serde_json::to_vec(&record).unwrap()).unwrap();
        }
    }
    m.reset_stats();
    m.respawn(&[]);
    sync(m.path());
    let files = m.box_files("0");
    assert_eq!(files.len(), 2, "no conflicted copy: {files:?}");
    assert_eq!(
        (files["new.txt"].as_str(), files["old.txt"].as_str()),
        (sha1_hex(b"brand new").as_str(), sha1_hex(b"changed").as_str())
    );
    assert_eq!(versions(&m, &id), 1, "old.txt: the original and one new version, not two");
    let stats = m.stats();
    assert_eq!(stats["requests"]["POST /api/2.0/files/{id}/content"].as_u64().unwrap_or(0), 0, "{stats}");
    assert!(m.journal_records().is_empty(), "both entries done");
}

#[test]
fn unmount_with_box_failing_gives_up_waiting_and_keeps_the_uploads() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000"]);
    std::fs::write(m.p("late.txt"), b"written while Box fails").unwrap();
    m.rt.block_on(m.emu.set_faults("503=1"));
    let started = Instant::now();
    let status = m.signal(libc::SIGTERM).expect("the daemon exits");
    assert!(status.success(), "{status:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(60), "it waited for progress first: {waited:?}");
    let records = m.journal_records();
    assert_eq!(records.len(), 1, "left in the journal for the next mount");
    let data = records[0].0.with_extension("data");
    assert_eq!(std::fs::read(data).unwrap(), b"written while Box fails");
    assert_eq!(records[0].1["synced"], true, "flushed to disk before the daemon left");
}
