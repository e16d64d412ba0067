//! The mount while Box cannot be reached (the emulator stops serving: its port closes, as in
//! a network outage): listings, attributes, pinned files and `df` keep answering from what
//! the mount holds, a new file waits in the journal, `boxfs status` says since when Box
//! is offline, and what needs Box fails with `EIO` at once; when Box is back the mount notices
//! by itself, says so, and uploads what waited (a file changed in Box meanwhile as a
//! conflicted copy beside Box's version).

mod common;

use common::emu::{bytes, sha1_hex};
use common::mount::{boxfs, fuse_emulator, status_json, wait_for, Mounted};
use std::process::Command;
use std::time::{Duration, Instant};

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// `what` fails with EIO, and quickly (the bound: under 2 s).
fn fails_at_once<T: std::fmt::Debug>(what: &str, op: impl FnOnce() -> std::io::Result<T>) {
    let started = Instant::now();
    let err = op().expect_err(what);
    let took = started.elapsed();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{what}: {err}");
    assert!(took < Duration::from_secs(2), "{what} took {took:?}");
}

#[test]
fn offline_the_mount_serves_what_it_has_and_catches_up_when_box_is_back() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let files: Vec<(String, Vec<u8>)> =
        (0..20).map(|i| (format!("f{i:02}.bin"), bytes(i, 1000 + 7777 * i as usize))).collect();
    let (docs, first_id) = rt.block_on(async {
        let docs = emu.new_folder("0", "docs").await;
        let mut ids = Vec::new();
        for (name, data) in &files {
            ids.push(emu.new_file(&docs, name, data.clone()).await);
        }
        let elsewhere = emu.new_folder("0", "elsewhere").await;
        emu.new_file(&elsewhere, "never-read.bin", bytes(99, 5000)).await;
        // Listing `elsewhere` lists `deeper` ahead of the walk, not what is below.
        let deeper = emu.new_folder(&elsewhere, "deeper").await;
        let deepest = emu.new_folder(&deeper, "deepest").await;
        emu.new_file(&deepest, "x.txt", b"x".to_vec()).await;
        (docs, ids.swap_remove(0))
    });
    // A short TTL: offline, nothing the mount answers is fresh any more.
    let mut m = Mounted::new(rt, emu);
    let log = m.cache.path().join("mount.log");
    m.respawn(&["--metadata-ttl", "1", "--log-file", log.to_str().unwrap()]);
    let pin = boxfs(&["pin", "--wait", m.p("docs").to_str().unwrap()]);
    assert!(pin.status.success(), "pin: {pin:?}");
    assert_eq!(names(&m.p("elsewhere")), ["deeper", "never-read.bin"]);
    assert!(Command::new("df").arg(m.path()).output().unwrap().status.success());

    m.emu.running.pause();
    std::thread::sleep(Duration::from_millis(1100));
    fails_at_once("reading a file never read", || std::fs::read(m.p("elsewhere/never-read.bin")));
    fails_at_once("listing a folder never listed", || std::fs::read_dir(m.p("elsewhere/deeper/deepest")));

    // What the mount holds answers.
    let expected: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names(&m.p("docs")), expected);
    for (name, data) in &files {
        let path = m.p("docs").join(name);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), data.len() as u64);
        assert_eq!(&std::fs::read(&path).unwrap(), data, "{name}, pinned, reads back offline");
    }
    std::thread::sleep(Duration::from_millis(1100));
    let df = Command::new("df").arg(m.path()).output().unwrap();
    assert!(df.status.success(), "df offline: {}", String::from_utf8_lossy(&df.stderr));

    // A new file waits in the journal.
    let new = bytes(7, 12_345);
    std::fs::write(m.p("docs/written offline.bin"), &new).unwrap();
    let journaled = m.journal_records().iter().any(|(_, r)| r["name"] == "written offline.bin");
    assert!(journaled, "{:?}", m.journal_records());

    // A file changed here and, meanwhile, in Box: both versions are kept.
    let mut ours = files[0].1.clone();
    ours.extend_from_slice(b" and a line added offline");
    std::fs::write(m.p("docs/f00.bin"), &ours).unwrap();
    let theirs = bytes(8, 4321);
    let store = m.emu.store();
    let blob = store.blobs().put_bytes(&theirs).unwrap();
    store.new_version(boxfs_emulator::ADMIN_ID, first_id.parse().unwrap(), None, None, blob, None).unwrap();

    let s = status_json(m.path());
    assert_eq!(s["connection"]["state"], "offline", "{s}");
    assert!(s["connection"]["since"].is_string(), "{s}");
    assert!(s["uploads"].as_array().unwrap().iter().any(|u| u["name"] == "written offline.bin"), "{s}");
    let text = boxfs(&["status", m.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Box:      offline since "), "{text}");

    let sync = boxfs(&["sync", m.path().to_str().unwrap()]);
    assert_eq!(sync.status.code(), Some(1), "{sync:?}");
    assert!(String::from_utf8_lossy(&sync.stderr).contains("Box is unreachable"), "{sync:?}");

    let pin = boxfs(&["pin", "--wait", m.p("elsewhere").to_str().unwrap()]);
    assert_eq!(pin.status.code(), Some(1), "{pin:?}");
    assert!(String::from_utf8_lossy(&pin.stderr).contains("Box is unreachable"), "{pin:?}");

    // Box is back: the mount notices by itself and uploads what waited.
    m.rt.block_on(m.emu.running.resume()).expect("the emulator serves again on its port");
    wait_for("status says online", 30, || status_json(m.path())["connection"]["state"] == "online");
    wait_for("the file written offline lands", 30, || {
        m.box_files(&docs).get("written offline.bin") == Some(&sha1_hex(&new))
    });
    wait_for("the file changed on both sides is kept twice", 30, || {
        let files = m.box_files(&docs);
        let copy = files.iter().find(|(n, _)| n.starts_with("f00 (conflicted copy ") && n.ends_with(".bin"));
        files.get("f00.bin") == Some(&sha1_hex(&theirs)) && copy.is_some_and(|(_, sha1)| *sha1 == sha1_hex(&ours))
    });
    wait_for("the event stream is live again", 30, || status_json(m.path())["events"] == "live");
    assert_eq!(std::fs::read(m.p("elsewhere/never-read.bin")).unwrap(), bytes(99, 5000));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("Box is unreachable; offline") && log.contains("back online"), "{log}");
    let refused = log.lines().filter(|l| l.contains("request failed") && l.contains("Box is unreachable")).count();
    assert!((2..=6).contains(&refused), "one line per refused request: {log}");
}
