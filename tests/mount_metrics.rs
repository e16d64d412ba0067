//! `boxfs mount --metrics 127.0.0.1:PORT` against the emulator: the endpoint serves
//! Prometheus text that a parser reads line for line, and copying a file in and reading one
//! back moves the counters (API requests by route and status, bytes up and down, FUSE
//! operations and their latency histogram, block cache misses then hits, event lag) and sets
//! the gauges; an address already in use fails the mount.

mod common;

use common::emu::{bytes, sha1_hex};
use common::mount::{fuse_emulator, wait_for, Mounted};
use prometheus_parse::{Sample, Scrape, Value};
use std::time::Duration;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The endpoint's samples; every sample line of the text must parse.
fn scrape(m: &Mounted, port: u16) -> Vec<Sample> {
    let text = m.rt.block_on(async {
        let resp = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.expect("the endpoint answers");
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    });
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    let sample_lines = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
    // A histogram's bucket lines make one sample (its `_sum` and `_count` lines one each).
    let histogram_extra_lines: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            Value::Histogram(buckets) => buckets.len() - 1,
            _ => 0,
        })
        .sum();
    assert_eq!(scrape.samples.len() + histogram_extra_lines, sample_lines, "every line parsed:\n{text}");
    scrape.samples
}

/// The value of the counter or gauge `metric` with `labels` (0 when absent).
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => panic!("{metric} is not a counter or gauge"),
        })
        .sum()
}

/// The bucket counts (le, count) of histogram `metric` with `labels`.
fn buckets(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
    let sample = samples.iter().find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match sample.map(|s| &s.value) {
        Some(Value::Histogram(b)) => b.iter().map(|b| (b.less_than, b.count)).collect(),
        Some(other) => panic!("{metric} is not a histogram: {other:?}"),
        None => Vec::new(),
    }
}

#[test]
fn metrics_move_with_a_copy_in_and_a_read_back() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let remote = bytes(7, 3 << 20);
    rt.block_on(emu.new_file("0", "remote.bin", remote.clone()));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let m = Mounted::start(rt, emu, &["--metrics", &addr, "--writeback-delay-ms", "0"]);

    let before = scrape(&m, port);
    let local = bytes(8, 2 << 20);
    let src = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(src.path(), &local).unwrap();
    std::fs::copy(src.path(), m.p("copied.bin")).unwrap();
    // Its first FUSE read waits for the block's download (a miss); the following ones find the
    // block in the cache (hits).
    let read = std::fs::read(m.p("remote.bin")).unwrap();
    assert!(read == remote, "read back what Box holds");
    wait_for("the copy reaching Box", 30, || m.box_files("0").get("copied.bin") == Some(&sha1_hex(&local)));
    // The gauges are refreshed every second.
    std::thread::sleep(Duration::from_millis(1500));
    let after = scrape(&m, port);

    let moved = |metric: &str, labels: &[(&str, &str)]| value(&after, metric, labels) - value(&before, metric, labels);
    let listing = [("route", "GET /folders/:id/items"), ("status", "200")];
    assert!(moved("boxfs_api_requests_total", &listing) >= 1.0, "the root was listed");
    assert!(
        moved("boxfs_api_requests_total", &[("route", "POST /files/content"), ("status", "201")]) >= 1.0,
        "the copy was uploaded"
    );
    assert!(moved("boxfs_api_requests_total", &[("route", "GET :download_url"), ("status", "206")]) >= 1.0);
    assert!(moved("boxfs_api_uploaded_bytes_total", &[]) >= local.len() as f64, "bytes up");
    assert!(moved("boxfs_api_downloaded_bytes_total", &[]) >= remote.len() as f64, "bytes down");
    assert!(moved("boxfs_block_cache_misses_total", &[]) >= 1.0, "the first read downloaded");
    assert!(moved("boxfs_block_cache_hits_total", &[]) >= 1.0, "later reads found the block");
    for op in ["lookup", "create", "write", "read", "open"] {
        assert!(moved("boxfs_fuse_operations_total", &[("op", op)]) >= 1.0, "FUSE {op} counted");
    }
    let writes = buckets(&after, "boxfs_fuse_operation_duration_seconds", &[("op", "write")]);
    let writes_before = buckets(&before, "boxfs_fuse_operation_duration_seconds", &[("op", "write")]);
    let all = |b: &[(f64, f64)]| b.iter().find(|(le, _)| le.is_infinite()).map_or(0.0, |(_, c)| *c);
    assert!(writes.len() > 10, "latency buckets: {writes:?}");
    assert!(all(&writes) >= all(&writes_before) + 1.0, "writes entered the histogram: {writes:?}");
    assert!(writes.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "buckets are cumulative: {writes:?}");
    assert!(value(&after, "boxfs_block_cache_size_bytes", &[]) >= remote.len() as f64, "cache size gauge");
    assert!(value(&after, "boxfs_block_cache_capacity_bytes", &[]) > 0.0);
    assert_eq!(value(&after, "boxfs_pending_uploads", &[]), 0.0, "nothing pending once in Box");
    assert_eq!(value(&after, "boxfs_event_stream_live", &[]), 1.0, "the event stream is live");
    // Our own upload came back through the event stream.
    let lag = buckets(&after, "boxfs_event_lag_seconds", &[]);
    assert!(all(&lag) >= 1.0, "event lag recorded: {lag:?}");
}

#[test]
fn a_port_in_use_is_a_mount_error() {
    let Some((_rt, emu)) = fuse_emulator(|_| {}) else { return };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mnt = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_boxfs"))
        .arg("mount")
        .arg(mnt.path())
        .args(["--foreground", "--metrics", &addr, "--api-url", &emu.api(""), "--upload-url", &emu.upload("")])
        .arg("--cache-dir")
        .arg(cache.path())
        .env("BOX_ACCESS_TOKEN", &emu.token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the mount fails");
    assert!(stderr.contains(&format!("cannot serve metrics on {addr}")), "says why: {stderr}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(mnt.path().to_str().unwrap()), "nothing stays mounted");
}

#[test]
fn throttled_requests_and_their_retries_are_counted() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let port = free_port();
    let m = Mounted::start(rt, emu, &["--metrics", &port.to_string()]);
    let before = scrape(&m, port);
    // A third of the requests answer 429 with `Retry-After: 0`; each mkdir is one call,
    // retried until it passes (10 attempts at most: all of them failing is about a 1 in 65,000 chance).
    m.rt.block_on(m.emu.set_faults("429=0.33,retry_after=0,seed=3"));
    let mut after = before.clone();
    for i in 0..50 {
        std::fs::create_dir(m.p(&format!("d{i}"))).unwrap();
        after = scrape(&m, port);
        if value(&after, "boxfs_api_throttled_total", &[]) > value(&before, "boxfs_api_throttled_total", &[]) {
            break;
        }
    }
    m.rt.block_on(m.emu.set_faults(""));
    let moved = |metric: &str, labels: &[(&str, &str)]| value(&after, metric, labels) - value(&before, metric, labels);
    assert!(moved("boxfs_api_throttled_total", &[]) >= 1.0, "a 429 was counted");
    assert!(moved("boxfs_api_retries_total", &[]) >= 1.0, "and retried");
    let throttled_routes: Vec<&str> = after
        .iter()
        .filter(|s| s.metric == "boxfs_api_requests_total" && s.labels.get("status") == Some("429"))
        .filter_map(|s| s.labels.get("route"))
        .collect();
    assert!(!throttled_routes.is_empty(), "429 is a status of some route");
}
