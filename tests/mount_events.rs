//! Live consistency on a real mount: changes made by another client through the API show in
//! the mount within 2 s although kernel and daemon TTLs are 120 s; an idle mount costs only
//! the long-poll; duplicate and out-of-order events leave the cache correct.

mod common;

use common::mount::{fuse_emulator, Mounted};
use reqwest::Method;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits (≤ 2 s) until `cond` holds; returns how long it took.
fn within_2s(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(2), "{what}: not visible within 2 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exists(p: &Path) -> bool {
    std::fs::metadata(p).is_ok()
}

fn upload(m: &Mounted, parent: &str, name: &str, data: &[u8]) -> String {
    m.rt.block_on(m.emu.new_file(parent, name, data.to_vec()))
}

fn new_version(m: &Mounted, id: &str, data: &[u8]) {
    m.rt.block_on(async {
        let form = reqwest::multipart::Form::new()
            .text("attributes", "{}")
            .part("file", reqwest::multipart::Part::bytes(data.to_vec()));
        let r = m
            .emu
            .send(m.emu.authed(Method::POST, &m.emu.upload(&format!("/files/{id}/content"))).multipart(form))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    });
}

fn put(m: &Mounted, path: &str, body: serde_json::Value) {
    m.rt.block_on(async {
        let r = m.emu.json(Method::PUT, &m.emu.api(path), body).await;
        assert_eq!(r.status, 200, "{}", r.body);
    });
}

#[test]
fn remote_changes_show_within_two_seconds_despite_long_ttls() {
    let Some((rt, emu)) = fuse_emulator(|c| c.longpoll_timeout = Duration::from_secs(5)) else { return };
    let a = emu.store().create_folder(boxfs_emulator::ADMIN_ID, 0, "A").unwrap().id.to_string();
    let b = emu.store().create_folder(boxfs_emulator::ADMIN_ID, 0, "B").unwrap().id.to_string();
    let m = Mounted::start(rt, emu, &["--metadata-ttl", "120"]);
    let file = upload(&m, &a, "a.txt", b"v1");
    // Prime the kernel's and the daemon's caches.
    within_2s("a.txt created", || exists(&m.p("A/a.txt")));
    assert_eq!(std::fs::read_to_string(m.p("A/a.txt")).unwrap(), "v1");
    assert!(std::fs::read_dir(m.p("B")).unwrap().next().is_none());

    // A new version: new size and bytes, although attributes and pages were cached.
    let held = std::fs::File::open(m.p("A/a.txt")).unwrap();
    new_version(&m, &file, b"version two");
    within_2s("new version", || std::fs::read_to_string(m.p("A/a.txt")).is_ok_and(|s| s == "version two"));
    assert_eq!(std::fs::metadata(m.p("A/a.txt")).unwrap().len(), 11);
    drop(held);

    // Create.
    upload(&m, &a, "fresh.txt", b"new file");
    within_2s("create", || std::fs::read_to_string(m.p("A/fresh.txt")).is_ok_and(|s| s == "new file"));

    // Rename.
    put(&m, &format!("/files/{file}"), json!({"name": "renamed.txt"}));
    within_2s("rename", || exists(&m.p("A/renamed.txt")) && !exists(&m.p("A/a.txt")));

    // Move between folders.
    put(&m, &format!("/files/{file}"), json!({"parent": {"id": b}}));
    within_2s("move", || exists(&m.p("B/renamed.txt")) && !exists(&m.p("A/renamed.txt")));
    let names: Vec<String> =
        std::fs::read_dir(m.p("B")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["renamed.txt"]);

    // Trash and restore.
    m.rt.block_on(m.emu.delete(&m.emu.api(&format!("/files/{file}"))));
    within_2s("trash", || !exists(&m.p("B/renamed.txt")));
    m.rt.block_on(m.emu.json(Method::POST, &m.emu.api(&format!("/files/{file}")), json!({})));
    within_2s("restore", || std::fs::read_to_string(m.p("B/renamed.txt")).is_ok_and(|s| s == "version two"));

    // A folder renamed elsewhere: its old path disappears, its content follows.
    put(&m, &format!("/folders/{b}"), json!({"name": "B2"}));
    within_2s("folder rename", || exists(&m.p("B2/renamed.txt")) && !exists(&m.p("B")));
}

#[test]
fn an_idle_mount_costs_only_the_long_poll() {
    let Some((rt, emu)) = fuse_emulator(|c| c.longpoll_timeout = Duration::from_secs(10)) else { return };
    emu.store().create_folder(boxfs_emulator::ADMIN_ID, 0, "A").unwrap();
    let m = Mounted::start(rt, emu, &["--metadata-ttl", "5"]);
    let _ = std::fs::read_dir(m.p("A")).unwrap().count();
    m.reset_stats();
    std::thread::sleep(Duration::from_secs(60));
    let stats = m.stats();
    let allowed = ["GET /subscribe", "OPTIONS /2.0/events", "GET /2.0/events"];
    for (route, count) in stats["requests"].as_object().unwrap() {
        assert!(allowed.contains(&route.as_str()), "idle mount called {route} ({count}x): {stats}");
    }
    assert!(stats["requests"]["GET /subscribe"].as_u64().unwrap_or(0) >= 5, "it kept long-polling: {stats}");
}

#[test]
fn duplicate_and_out_of_order_events_leave_the_cache_correct() {
    let Some((rt, emu)) = fuse_emulator(|c| {
        c.longpoll_timeout = Duration::from_secs(5);
        c.faults = boxfs_emulator::FaultSpec::parse("event_chaos=0.5,seed=3").unwrap();
    }) else {
        return;
    };
    let m = Mounted::start(rt, emu, &["--metadata-ttl", "120"]);
    let id = upload(&m, "0", "x0.txt", b"0");
    within_2s("x0", || exists(&m.p("x0.txt")));
    for i in 1..=6 {
        put(&m, &format!("/files/{id}"), json!({"name": format!("x{i}.txt")}));
        new_version(&m, &id, format!("content {i}").as_bytes());
    }
    within_2s("final state", || {
        std::fs::read_to_string(m.p("x6.txt")).is_ok_and(|s| s == "content 6") && !exists(&m.p("x0.txt"))
    });
    // Give late duplicates time to arrive; the state must not regress.
    std::thread::sleep(Duration::from_millis(1500));
    let names: Vec<String> =
        std::fs::read_dir(m.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["x6.txt"]);
    assert_eq!(std::fs::read_to_string(m.p("x6.txt")).unwrap(), "content 6");
}

#[test]
fn with_events_off_changes_arrive_by_ttl_and_nothing_long_polls() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--events", "off", "--metadata-ttl", "1"]);
    assert!(std::fs::read_dir(m.path()).unwrap().next().is_none());
    upload(&m, "0", "later.txt", b"x");
    within_2s("TTL expiry", || exists(&m.p("later.txt")));
    let stats = m.stats();
    assert!(stats["requests"].get("GET /subscribe").is_none(), "{stats}");
}
