//! Several processes of one logged-in account, run for real against the emulator: mounts of
//! different folders and a `whoami` loop share one login through short-lived tokens (one
//! refresh per expiry period for the account, never `invalid_grant`); a mount killed while it
//! holds the refresh lock does not block the others; a new `boxfs login` reaches running
//! mounts, `boxfs status` shows the budget they share and `boxfs logout` names them; two mounts
//! copying files in under Box's rate limits share one budget and stay (almost) off 429s.
//!
//! Every test has its own HOME and XDG dirs (a `CliEnv`), so no two tests share an account
//! store or a budget file.

mod common;

use common::cli::{browse, text, AccountMount, CliEnv};
use common::emu::TestEmulator;
use common::mount::wait_for;
use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `boxfs login --account NAME` through the browser flow.
fn login(env: &CliEnv, rt: &tokio::runtime::Runtime, emu: &TestEmulator, account: &str) {
    let login = env.start_login(emu.base(), account, &[]);
    assert_eq!(rt.block_on(browse(&login.url)).0, 200);
    let (ok, out, err) = login.finish();
    assert!(ok, "login: {out}{err}");
}

/// Gives the test's own API calls a new developer token (the tests' tokens are short-lived).
fn renew_test_token(emu: &mut TestEmulator) {
    emu.token = emu.running.state.developer_token().expect("developer token");
}

/// Creates folder `/name` holding `seed.txt`; returns the folder id.
fn seeded_folder(rt: &tokio::runtime::Runtime, emu: &mut TestEmulator, name: &str) -> String {
    renew_test_token(emu);
    rt.block_on(async {
        let id = emu.new_folder("0", name).await;
        emu.new_file(&id, "seed.txt", format!("seed of {name}").into_bytes()).await;
        id
    })
}

fn reset_stats(rt: &tokio::runtime::Runtime, emu: &TestEmulator) {
    rt.block_on(async {
        emu.http.delete(format!("{}/_emulator/stats", emu.base())).send().await.unwrap();
    });
}

fn count(stats: &Value, pointer: &str) -> u64 {
    stats.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// name → content of the files in a Box folder (through the API).
fn box_contents(
    rt: &tokio::runtime::Runtime,
    emu: &mut TestEmulator,
    folder: &str,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    renew_test_token(emu);
    rt.block_on(async {
        let listing = emu.get(&emu.api(&format!("/folders/{folder}/items?limit=1000"))).await;
        let mut out = std::collections::BTreeMap::new();
        for e in listing.body["entries"].as_array().unwrap() {
            let id = e["id"].as_str().unwrap();
            out.insert(e["name"].as_str().unwrap().to_string(), emu.download(id, None).await.2);
        }
        out
    })
}

/// Lists the folder, reads its seed file, writes and reads back one of ten files.
fn exercise(m: &AccountMount, name: &str, i: usize) -> std::io::Result<()> {
    std::fs::read_dir(m.path())?.count();
    assert_eq!(std::fs::read(m.p("seed.txt"))?, format!("seed of {name}").into_bytes());
    let file = m.p(&format!("f{}.txt", i % 10));
    let content = format!("{name} round {i}");
    std::fs::write(&file, &content)?;
    assert_eq!(std::fs::read_to_string(&file)?, content);
    Ok(())
}

#[test]
fn three_mounts_and_whoami_share_one_login_through_short_tokens() {
    const LIFETIME: u64 = 5;
    const RUN: Duration = Duration::from_secs(60);
    let Some((rt, mut emu)) = common::mount::fuse_emulator(|c| c.token_lifetime_secs = LIFETIME as i64) else { return };
    let env = CliEnv::new();
    login(&env, &rt, &emu, "work");
    let names = ["Documents", "Photos", "Music"];
    let folders: Vec<String> = names.iter().map(|n| seeded_folder(&rt, &mut emu, n)).collect();
    let mounts: Vec<AccountMount> = names
        .iter()
        .map(|n| env.mount_account("work", &["--root", &format!("/{n}"), "--metadata-ttl", "1"], &[]))
        .collect();

    reset_stats(&rt, &emu);
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let last_round: Vec<usize> = std::thread::scope(|s| {
        let whoami = s.spawn(|| {
            let mut runs = 0;
            while started.elapsed() < RUN {
                let out = env.run(&["whoami", "--account", "work"], "");
                assert!(out.status.success(), "whoami #{runs}: {:?}", text(&out));
                runs += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
            runs
        });
        let workers: Vec<_> = mounts
            .iter()
            .zip(names)
            .map(|(m, name)| {
                let stop = stop.clone();
                s.spawn(move || {
                    let mut i = 0;
                    while started.elapsed() < RUN && !stop.load(Ordering::Relaxed) {
                        if let Err(e) = exercise(m, name, i) {
                            stop.store(true, Ordering::Relaxed);
                            panic!("{name} round {i} after {:?}: {e}", started.elapsed());
                        }
                        i += 1;
                        std::thread::sleep(Duration::from_millis(1000));
                    }
                    i - 1
                })
            })
            .collect();
        let runs = whoami.join().expect("every whoami succeeded");
        assert!(runs > 20, "the whoami loop ran ({runs} runs)");
        workers.into_iter().map(|w| w.join().expect("every operation in every mount succeeded")).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stats = rt.block_on(emu.stats());
    let refreshes = count(&stats, "/token_grants/refresh_token");
    let periods = elapsed / LIFETIME as f64;
    eprintln!(
        "{refreshes} refreshes in {elapsed:.1} s ({periods:.1} token lifetimes of {LIFETIME} s), {} requests, {} answered 401",
        count(&stats, "/total_requests"),
        count(&stats, "/statuses/401"),
    );
    assert!(stats["token_errors"].as_object().is_some_and(|e| e.is_empty()), "no refused grant: {stats}");
    assert!(
        refreshes as f64 <= periods.ceil() + 1.0,
        "about one refresh per expiry period for the whole account, not one per process: {stats}"
    );
    assert!(refreshes as f64 >= periods / 2.0, "the tokens were renewed as they expired: {stats}");

    for ((mut m, folder), (name, last)) in mounts.into_iter().zip(&folders).zip(names.iter().zip(last_round)) {
        assert!(m.unmount().is_some_and(|s| s.success()), "{name}: clean exit after draining its uploads");
        let log = m.log_text();
        assert!(!log.contains("refused") && !log.contains("ERROR"), "{name} log:\n{log}");
        let in_box = box_contents(&rt, &mut emu, folder);
        for i in last.saturating_sub(9)..=last {
            let want = format!("{name} round {i}");
            assert_eq!(
                in_box[&format!("f{}.txt", i % 10)],
                want.as_bytes(),
                "{name}: the last write of each file is in Box"
            );
        }
    }
}

/// The pid holding an `flock` on `path`, from /proc/locks.
fn flock_holder(path: &Path) -> Option<u32> {
    let ino = std::fs::metadata(path).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let held = f.get(1) == Some(&"FLOCK") && f.get(5)?.rsplit(':').next()?.parse::<u64>().ok()? == ino;
        held.then(|| f.get(4)?.parse().ok()).flatten()
    })
}

#[test]
fn a_mount_killed_while_it_holds_the_refresh_lock_blocks_no_one() {
    const LIFETIME: u64 = 4;
    let Some((rt, mut emu)) = common::mount::fuse_emulator(|c| c.token_lifetime_secs = LIFETIME as i64) else { return };
    let env = CliEnv::new();
    login(&env, &rt, &emu, "work");
    for name in ["A", "B", "C"] {
        seeded_folder(&rt, &mut emu, name);
    }
    let quiet = ["--events", "off", "--metadata-ttl", "0"];
    let pause = [("BOXFS_TEST_REFRESH_PAUSE_MS", "600000")];
    let mut a = env.mount_account("work", &[&["--root", "/A"][..], &quiet].concat(), &pause);
    let b = env.mount_account("work", &[&["--root", "/B"][..], &quiet].concat(), &[]);
    let c = env.mount_account("work", &[&["--root", "/C"][..], &quiet].concat(), &[]);
    let lock = env.config_dir().join("accounts/work.tokens.lock");

    // Once the login's token has expired, the next request in A takes the lock and stays inside.
    std::thread::sleep(Duration::from_secs(LIFETIME));
    reset_stats(&rt, &emu);
    let a_path = a.path().to_path_buf();
    let stuck = std::thread::spawn(move || std::fs::read_dir(a_path).map(|d| d.count()));
    wait_for("A holds the refresh lock", 20, || flock_holder(&lock) == Some(a.pid));
    // B and C need a token too: they wait for the lock, then A dies holding it.
    let waiting: Vec<_> = [&b, &c]
        .iter()
        .map(|m| {
            let path = m.path().to_path_buf();
            std::thread::spawn(move || std::fs::read_dir(path).map(|d| d.count()))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(flock_holder(&lock), Some(a.pid), "A still holds the lock; B and C wait");
    a.kill9();
    for w in waiting {
        w.join().unwrap().expect("B and C renew the token once A is gone");
    }
    let _ = stuck.join();
    let stats = rt.block_on(emu.stats());
    assert_eq!(count(&stats, "/token_grants/refresh_token"), 1, "one of B and C refreshed, the other adopted: {stats}");

    // And they keep working through the next expiries.
    let until = Instant::now() + Duration::from_secs(3 * LIFETIME);
    let mut i = 0;
    while Instant::now() < until {
        for (m, name) in [(&b, "B"), (&c, "C")] {
            exercise(m, name, i).unwrap_or_else(|e| panic!("{name} round {i}: {e}"));
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let stats = rt.block_on(emu.stats());
    assert!(count(&stats, "/token_grants/refresh_token") >= 3, "renewed at the next expiries: {stats}");
    assert!(stats["token_errors"].as_object().is_some_and(|e| e.is_empty()), "no refused grant: {stats}");
}

/// The access and refresh token saved for `account`.
fn saved_pair(env: &CliEnv, account: &str) -> (String, String) {
    let path = env.config_dir().join(format!("accounts/{account}.tokens.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    (v["access_token"].as_str().unwrap().into(), v["refresh_token"].as_str().unwrap().into())
}

#[test]
fn a_new_login_reaches_running_mounts_and_logout_names_them() {
    let Some((rt, mut emu)) = common::mount::fuse_emulator(|_| {}) else { return };
    let env = CliEnv::new();
    login(&env, &rt, &emu, "work");
    seeded_folder(&rt, &mut emu, "A");
    seeded_folder(&rt, &mut emu, "B");
    let quiet = ["--events", "off", "--metadata-ttl", "0"];
    let a = env.mount_account("work", &[&["--root", "/A"][..], &quiet].concat(), &[]);
    let b = env.mount_account("work", &[&["--root", "/B"][..], &quiet].concat(), &[]);
    exercise(&a, "A", 0).unwrap();
    exercise(&b, "B", 0).unwrap();

    let (old_access, old_refresh) = saved_pair(&env, "work");
    login(&env, &rt, &emu, "work");
    assert_ne!(saved_pair(&env, "work").0, old_access);
    reset_stats(&rt, &emu);
    rt.block_on(async {
        for token in [&old_access, &old_refresh] {
            let form = [("client_id", common::cli::CLIENT_ID), ("client_secret", common::cli::CLIENT_SECRET)];
            let form = [form[0], form[1], ("token", token.as_str())];
            let r = emu.http.post(format!("{}/oauth2/revoke", emu.base())).form(&form).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    });
    for i in 1..4 {
        exercise(&a, "A", i).unwrap();
        exercise(&b, "B", i).unwrap();
    }
    let stats = rt.block_on(emu.stats());
    assert_eq!(count(&stats, "/statuses/401"), 0, "both mounts use the new login's token: {stats}");
    assert_eq!(count(&stats, "/token_grants/refresh_token"), 0, "picked up, not refreshed: {stats}");

    // Both daemons share one request budget; `boxfs status` says so.
    let status = env.run(&["status", "--json", a.path().to_str().unwrap()], "");
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let pids: Vec<u64> = status["budget"]["pids"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    assert!(pids.contains(&a.pid.into()) && pids.contains(&b.pid.into()), "{status}");
    assert!(status["budget"]["requests_last_minute"].as_u64().unwrap() >= 8, "{status}");
    let human = text(&env.run(&["status", a.path().to_str().unwrap()], "")).0;
    assert!(
        human.contains(&format!("pid {}", pids.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))),
        "{human}"
    );

    for m in [&a, &b] {
        assert!(env.run(&["sync", "--quiet", m.path().to_str().unwrap()], "").status.success());
    }
    let bye = env.run(&["logout", "--account", "work"], "");
    let (out, err) = text(&bye);
    assert!(bye.status.success(), "{out}{err}");
    for m in [&a, &b] {
        assert!(out.contains(m.path().to_str().unwrap()), "logout names the running mounts: {out}");
    }
    assert!(!env.config_dir().join("accounts/work.tokens.json").exists());
    assert!(!env.config_dir().join("accounts/work.tokens.lock").exists());
}

#[test]
fn two_mounts_copying_in_under_box_rate_limits_share_one_budget() {
    const FILES: usize = 300;
    let Some((rt, mut emu)) = common::mount::fuse_emulator(|c| c.rate_limits = true) else { return };
    let env = CliEnv::new();
    login(&env, &rt, &emu, "work");
    let folders = [rt.block_on(emu.new_folder("0", "A")), rt.block_on(emu.new_folder("0", "B"))];
    let src = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        std::fs::write(src.path().join(format!("file-{i:03}.txt")), format!("small file {i}\n")).unwrap();
    }
    let mounts = [env.mount_account("work", &["--root", "/A"], &[]), env.mount_account("work", &["--root", "/B"], &[])];
    reset_stats(&rt, &emu);
    let copies: Vec<_> = mounts
        .iter()
        .map(|m| {
            std::process::Command::new("cp")
                .arg("-r")
                .arg(format!("{}/.", src.path().display()))
                .arg(m.path())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for cp in copies {
        let out = cp.wait_with_output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "cp: {}", String::from_utf8_lossy(&out.stderr));
    }
    for m in &mounts {
        let sync = env.run(&["sync", "--quiet", m.path().to_str().unwrap()], "");
        assert!(sync.status.success(), "every upload lands: {:?}", text(&sync));
    }
    let stats = rt.block_on(emu.stats());
    let (total, limited) = (count(&stats, "/total_requests"), count(&stats, "/rate_limited"));
    eprintln!("{total} requests, {limited} answered 429 ({:.2}%)", 100.0 * limited as f64 / total as f64);
    assert!(limited * 100 <= total, "at most 1% of the requests are answered 429: {stats}");
    for folder in &folders {
        let in_box = box_contents(&rt, &mut emu, folder);
        assert_eq!(in_box.len(), FILES);
        for i in 0..FILES {
            assert_eq!(in_box[&format!("file-{i:03}.txt")], format!("small file {i}\n").as_bytes());
        }
    }
}
