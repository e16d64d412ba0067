//! `boxfs status` and `boxfs sync` against real mounts on the emulator: pending uploads with
//! progress from the daemon's control socket, `sync` committing a queue held back by a long
//! write-back delay, failures (full quota) reported and kept, the journal read when no daemon
//! runs, a half-sent upload session resumed after `kill -9` (only missing parts sent), and
//! after a system crash only entries flushed to disk uploaded (the others held for the user).

mod common;

use common::emu::{bytes, sha1_hex};
use common::mount::{boxfs, fuse_emulator, status_json, wait_for, Mounted};
use serde_json::Value;
use std::time::{Duration, Instant};

fn uploads(status: &Value) -> Vec<Value> {
    status["uploads"].as_array().unwrap().clone()
}

#[test]
fn status_lists_pending_uploads_and_sync_commits_them() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000"]);
    let a = bytes(1, 3000);
    let b = bytes(2, 70_000);
    std::fs::write(m.p("a.txt"), &a).unwrap();
    std::fs::write(m.p("b.bin"), &b).unwrap();

    let s = status_json(m.path());
    assert_eq!(s["source"], "daemon");
    assert_eq!(s["events"], "live");
    assert_eq!(s["account"]["login"].as_str().map(|l| l.contains('@')), Some(true), "{s}");
    assert!(s["api"]["requests_last_minute"].as_u64().unwrap() > 0, "{s}");
    let mut pending: Vec<(String, String, u64)> = uploads(&s)
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().into(),
                u["state"].as_str().unwrap().into(),
                u["bytes_total"].as_u64().unwrap(),
            )
        })
        .collect();
    pending.sort();
    assert_eq!(pending, vec![("a.txt".into(), "waiting".into(), 3000), ("b.bin".into(), "waiting".into(), 70_000)]);
    assert!(m.box_files("0").is_empty(), "held back by the write-back delay");

    // The human report says the same.
    let text = boxfs(&["status", m.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("2 pending, 0 failed or held") && text.contains("b.bin"), "{text}");

    // `sync` cuts the ten-minute delay short and returns once both are in Box.
    let started = Instant::now();
    let out = boxfs(&["sync", m.path().to_str().unwrap()]);
    assert!(out.status.success(), "sync: {}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(60));
    let files = m.box_files("0");
    assert_eq!(files.get("a.txt"), Some(&sha1_hex(&a)));
    assert_eq!(files.get("b.bin"), Some(&sha1_hex(&b)));
    assert!(uploads(&status_json(m.path())).is_empty());

    // With every status command, no daemon: the registry entry goes with a clean unmount.
    m.unmount();
    let gone = boxfs(&["status", m.path().to_str().unwrap()]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no boxfs mount"), "{gone:?}");
}

#[test]
fn a_full_quota_is_reported_as_failed_and_kept() {
    let Some((rt, emu)) = fuse_emulator(|c| c.space_amount = 100_000) else { return };
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000"]);
    std::fs::write(m.p("small.txt"), b"fits").unwrap();
    std::fs::write(m.p("big.bin"), bytes(3, 200_000)).unwrap();
    let out = boxfs(&["sync", m.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "sync reports the failure");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("big.bin") && err.contains("quota"), "{err}");
    assert!(m.box_files("0").contains_key("small.txt"));

    let s = status_json(m.path());
    let failed = uploads(&s);
    assert_eq!(failed.len(), 1, "{s}");
    assert_eq!((failed[0]["name"].as_str(), failed[0]["state"].as_str()), (Some("big.bin"), Some("failed")));
    assert!(failed[0]["error"].as_str().unwrap().contains("quota"));

    // After the daemon is gone the journal still holds it, and status says so.
    m.signal(libc::SIGKILL);
    let s = status_json(m.path());
    assert_eq!(s["source"], "journal");
    let left = uploads(&s);
    assert_eq!(left.len(), 1, "{s}");
    assert_eq!((left[0]["name"].as_str(), left[0]["state"].as_str()), (Some("big.bin"), Some("failed")));
    assert_eq!(left[0]["bytes_total"], 200_000);
}

#[test]
fn a_half_sent_upload_session_resumes_after_kill_9() {
    const PART: usize = 1024 * 1024;
    // 1 MiB parts, every request held 400 ms: the 24 parts take a few seconds.
    let Some((rt, emu)) = fuse_emulator(|c| c.part_size = Some(PART as i64)) else { return };
    let data = bytes(4, 24 * PART);
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "0"]);
    m.rt.block_on(m.emu.set_faults("slow=1.0,slow_ms=400"));
    std::fs::write(m.p("big.iso"), &data).unwrap();
    wait_for("a few parts to be stored", 60, || {
        uploads(&status_json(m.path())).first().is_some_and(|u| u["bytes_done"].as_u64().unwrap() >= 4 * PART as u64)
    });
    m.signal(libc::SIGKILL);
    let stored_before = m.stats()["requests"]["PUT /api/2.0/files/upload_sessions/{sid}"].as_u64().unwrap();
    assert!(stored_before < 24, "killed mid-upload");
    let records = m.journal_records();
    assert_eq!(records[0].1["synced"], true, "flushed to disk once its upload started: {records:?}");

    m.rt.block_on(m.emu.set_faults(""));
    m.reset_stats();
    m.respawn(&[]);
    wait_for("the file to land", 60, || m.box_files("0").contains_key("big.iso"));
    assert_eq!(m.box_files("0")["big.iso"], sha1_hex(&data));
    let stats = m.stats();
    assert_eq!(stats["requests"]["POST /api/2.0/files/upload_sessions"], Value::Null, "no new session: {stats}");
    let resent = stats["requests"]["PUT /api/2.0/files/upload_sessions/{sid}"].as_u64().unwrap();
    eprintln!("parts before kill: {stored_before}, resent after: {resent}");
    assert!(resent <= 24 - 4, "only the missing parts were sent ({resent} of 24): {stats}");
}

#[test]
fn after_a_system_crash_only_data_flushed_to_disk_is_uploaded() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000"]);
    let (flushed, unflushed) = (bytes(5, 5000), bytes(6, 7000));
    std::fs::write(m.p("flushed.txt"), &flushed).unwrap();
    std::fs::write(m.p("unflushed.txt"), &unflushed).unwrap();
    m.signal(libc::SIGKILL);

    // Pretend the machine went down since: both records come from an earlier boot, and only
    // one of them had been flushed to disk.
    let records = m.journal_records();
    assert_eq!(records.len(), 2, "{records:?}");
    for (path, mut record) in records {
        assert_eq!(record["synced"], false, "a record is flushed when its upload starts, not before");
        record["boot_id"] = "an-earlier-boot".into();
        record["synced"] = (record["name"] == "flushed.txt").into();
        std::fs::write(path, serde_json::to_vec(&record).unwrap()).unwrap();
    }

    m.respawn(&[]);
    wait_for("the flushed file to land", 60, || m.box_files("0").contains_key("flushed.txt"));
    assert_eq!(m.box_files("0")["flushed.txt"], sha1_hex(&flushed));
    let out = boxfs(&["sync", m.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "sync reports the held-back file");
    assert!(!m.box_files("0").contains_key("unflushed.txt"), "maybe torn: never uploaded");
    let held = uploads(&status_json(m.path()));
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["state"], "held");
    let why = held[0]["error"].as_str().unwrap();
    assert!(why.contains("may be incomplete"), "{why}");
    // The message names the data file, which still holds the bytes, for the user to check.
    let data = why.split(" is in ").nth(1).and_then(|s| s.split(':').next()).unwrap();
    assert_eq!(std::fs::read(data).unwrap(), unflushed);

    // It stays held across mounts (and is not sent by the next one either).
    m.unmount();
    m.respawn(&[]);
    let held = uploads(&status_json(m.path()));
    assert_eq!((held.len(), held[0]["state"].as_str()), (1, Some("held")));
    assert!(!m.box_files("0").contains_key("unflushed.txt"));
    assert!(std::fs::metadata(m.p("unflushed.txt")).is_err(), "a held entry shows nowhere in the mount");

    // The user decides: nothing is held at a wrong path; uploading it sends it after all.
    let wrong = boxfs(&["recover", "--upload", m.p("other.txt").to_str().unwrap()]);
    assert!(!wrong.status.success() && String::from_utf8_lossy(&wrong.stderr).contains("nothing is held"));
    let out = boxfs(&["recover", "--upload", m.p("unflushed.txt").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = boxfs(&["sync", m.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(m.box_files("0")["unflushed.txt"], sha1_hex(&unflushed));
    assert!(uploads(&status_json(m.path())).is_empty());
    assert!(m.journal_records().is_empty());
}

#[test]
fn a_held_entry_can_be_discarded() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let id = rt.block_on(emu.new_file("0", "report.txt", b"good version in Box".to_vec()));
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "600000"]);
    std::fs::write(m.p("report.txt"), b"half-writ").unwrap();
    m.signal(libc::SIGKILL);
    for (path, mut record) in m.journal_records() {
        record["boot_id"] = "an-earlier-boot".into();
        std::fs::write(path, serde_json::to_vec(&record).unwrap()).unwrap();
    }
    m.respawn(&[]);
    assert_eq!(std::fs::read(m.p("report.txt")).unwrap(), b"good version in Box", "the mount shows Box's version");
    assert_eq!(uploads(&status_json(m.path()))[0]["state"], "held");
    let out = boxfs(&["recover", "--discard", m.p("report.txt").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("the discarded entry to leave the journal", 10, || m.journal_records().is_empty());
    assert!(uploads(&status_json(m.path())).is_empty());
    let box_sha1 = m.rt.block_on(m.emu.get(&m.emu.api(&format!("/files/{id}")))).body["sha1"].clone();
    assert_eq!(box_sha1, sha1_hex(b"good version in Box").as_str());
}
