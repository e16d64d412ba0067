//! The read-only mount, for real: FUSE on a temp dir, the daemon as a child process, the
//! emulator over HTTP on 127.0.0.1. Content is byte-exact, `find`/`ls -lR` match the tree,
//! and API-call budgets hold (emulator counters, not timings).

mod common;

use boxfs_emulator::store::{NewFile, Store};
use common::emu::{bytes, sha1_hex};
use common::mount::{emulator, fuse_available, fuse_emulator, Mounted};
use common::run;
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::process::Command;

/// (relative path → (size, sha1)) of everything seeded.
type Tree = BTreeMap<String, (u64, String)>;

fn add_file(store: &Store, parent: i64, name: &str, data: &[u8]) -> i64 {
    let blob = store.blobs().put_bytes(data).unwrap();
    let nf = NewFile {
        parent_id: parent,
        name: name.into(),
        blob,
        content_created_at: None,
        content_modified_at: Some("2024-03-04T05:06:07+00:00".into()),
    };
    store.create_file(boxfs_emulator::ADMIN_ID, nf).unwrap().id
}

/// 50 folders (10 top-level with 4 subfolders each) holding 2,000 files from 0 B to 40 MB.
fn seed_tree(store: &Store) -> (Tree, Vec<String>) {
    let mut tree = Tree::new();
    let mut dirs = Vec::new();
    let large = [1 << 20, 5 << 20, 12 << 20, 40 << 20];
    let mut n = 0u64;
    for d in 0..10 {
        let top_name = format!("dir{d:02}");
        let top = store.create_folder(boxfs_emulator::ADMIN_ID, 0, &top_name).unwrap().id;
        dirs.push(top_name.clone());
        let mut folders = vec![(top, top_name.clone())];
        for s in 0..4 {
            let name = format!("{top_name}/sub {s}");
            folders.push((
                store.create_folder(boxfs_emulator::ADMIN_ID, top, &format!("sub {s}")).unwrap().id,
                name.clone(),
            ));
            dirs.push(name);
        }
        for (id, path) in folders {
            for f in 0..40 {
                let size: usize = match n {
                    n if (n as usize) < large.len() => large[n as usize],
                    n if n % 50 == 0 => 0,
                    n => ((n * 7919) % 30_000) as usize,
                };
                let data = bytes(n, size);
                let name = format!("file {f:02}.bin");
                add_file(store, id, &name, &data);
                tree.insert(format!("{path}/{name}"), (size as u64, sha1_hex(&data)));
                n += 1;
            }
        }
    }
    (tree, dirs)
}

fn listing_calls(m: &Mounted) -> u64 {
    m.stats()["requests"]["GET /2.0/folders/{id}/items"].as_u64().unwrap_or(0)
}

#[test]
fn seeded_tree_reads_back_byte_exact_within_api_budgets() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let (tree, dirs) = seed_tree(emu.store());
    // Without the event stream, every call counted below is a metadata or content call.
    let m = Mounted::start(rt, emu, &["--events", "off"]);
    m.reset_stats();

    // Cold `ls -lR`: one listing call per folder (51 with the root), nothing else.
    let ls = run(Command::new("ls").arg("-lR").arg(m.path()));
    assert_eq!(listing_calls(&m), 51, "{}", m.stats());
    assert_eq!(m.item_requests(), 51, "only listings: {}", m.stats());
    assert!(ls.contains("file 39.bin"));
    // Warm, within the TTL: zero API calls.
    m.reset_stats();
    let again = run(Command::new("ls").arg("-lR").arg(m.path()));
    assert_eq!(again, ls);
    assert_eq!(m.item_requests(), 0, "second ls -lR is free: {}", m.stats());
    // A missing name in a listed folder costs nothing.
    assert!(std::fs::metadata(m.p("dir03/sub 1/no such file")).is_err());
    assert!(std::fs::metadata(m.p("dir03/nope")).is_err());
    assert_eq!(m.item_requests(), 0);

    // `find` sees exactly the tree; sizes match.
    let found =
        run(Command::new("find").arg(".").arg("-type").arg("f").arg("-printf").arg("%P\t%s\n").current_dir(m.path()));
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for line in found.lines() {
        let (path, size) = line.split_once('\t').unwrap();
        seen.insert(path.to_string(), size.parse().unwrap());
    }
    let expected: BTreeMap<String, u64> = tree.iter().map(|(p, (s, _))| (p.clone(), *s)).collect();
    assert_eq!(seen, expected);
    let found_dirs = run(Command::new("find")
        .arg(".")
        .arg("-mindepth")
        .arg("1")
        .arg("-type")
        .arg("d")
        .arg("-printf")
        .arg("%P\n")
        .current_dir(m.path()));
    let mut found_dirs: Vec<&str> = found_dirs.lines().collect();
    found_dirs.sort();
    let mut want_dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    want_dirs.sort();
    assert_eq!(found_dirs, want_dirs);

    // Every byte, through the mount, hashes to the emulator's SHA-1.
    for (path, (size, sha1)) in &tree {
        let data = std::fs::read(m.p(path)).unwrap();
        assert_eq!(data.len() as u64, *size, "{path}");
        assert_eq!(&sha1_hex(&data), sha1, "{path}");
    }
    // Times come from content_modified_at.
    let meta = std::fs::metadata(m.p("dir00/file 00.bin")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.mtime(), 1_709_528_767);

    // Read-only xattrs.
    let out = run(Command::new("getfattr").arg("-d").arg("-m").arg("user.box").arg(m.p("dir00/file 01.bin")));
    assert!(out.contains("user.box.id="), "{out}");
    assert!(out.contains(&format!("user.box.sha1=\"{}\"", tree["dir00/file 01.bin"].1)), "{out}");
    assert!(out.contains("user.box.web_url=\"https://app.box.com/file/"), "{out}");
}

#[test]
fn random_reads_fetch_only_the_blocks_they_need() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let data = bytes(77, 40 * 1000 * 1000);
    add_file(emu.store(), 0, "big.bin", &data);
    let m = Mounted::start(rt, emu, &[]);
    let f = std::fs::File::open(m.p("big.bin")).unwrap();
    // SAFETY: advisory call on an open fd; no readahead beyond what is asked.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
    m.reset_stats();
    let mut offset = 12_345_678u64;
    for _ in 0..10 {
        offset = (offset * 2_654_435_761 + 17) % (data.len() as u64 - 4096);
        let mut buf = vec![0u8; 4096];
        f.read_exact_at(&mut buf, offset).unwrap();
        assert_eq!(buf, &data[offset as usize..offset as usize + 4096]);
    }
    let downloads = m.stats()["requests"]["GET /d/1/{ticket}/download"].as_u64().unwrap_or(0);
    assert!(downloads <= 10, "10 random 4 KiB reads downloaded {downloads} blocks");
}

#[test]
fn sequential_read_fetches_each_block_once() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let data = bytes(78, 40 * 1000 * 1000 + 123);
    add_file(emu.store(), 0, "seq.bin", &data);
    let m = Mounted::start(rt, emu, &[]);
    m.reset_stats();
    let got = std::fs::read(m.p("seq.bin")).unwrap();
    assert_eq!(sha1_hex(&got), sha1_hex(&data));
    let stats = m.stats();
    let blocks = data.len().div_ceil(4 * 1024 * 1024) as u64;
    assert_eq!(stats["requests"]["GET /d/1/{ticket}/download"].as_u64().unwrap(), blocks, "{stats}");
    assert_eq!(stats["bytes_served"].as_u64().unwrap(), data.len() as u64, "no byte downloaded twice");
    // A re-read is served from the caches: no download at all.
    m.reset_stats();
    let again = std::fs::read(m.p("seq.bin")).unwrap();
    assert_eq!(again.len(), data.len());
    assert_eq!(m.stats()["bytes_served"].as_u64().unwrap_or(0), 0);
}

#[test]
fn at_latency_a_small_file_is_one_download_and_a_big_one_each_block_once() {
    // Box-like conditions, scaled down: every response 20 ms late, each connection paced to
    // 50 MB/s, so the prefetcher ramps up its downloads in flight. Requests are counted, not
    // timed.
    let Some((rt, emu)) = fuse_emulator(|cfg| {
        cfg.network.latency = std::time::Duration::from_millis(20);
        cfg.network.bandwidth = Some(50_000_000);
    }) else {
        return;
    };
    let small = bytes(80, 300_000);
    let big = bytes(81, 60 * 1000 * 1000 + 5);
    add_file(emu.store(), 0, "small.bin", &small);
    add_file(emu.store(), 0, "big.bin", &big);
    let m = Mounted::start(rt, emu, &[]);
    let count = |stats: &serde_json::Value, request: &str| stats["requests"][request].as_u64().unwrap_or(0);

    m.reset_stats();
    assert_eq!(std::fs::read(m.p("small.bin")).unwrap(), small);
    let stats = m.stats();
    assert_eq!(count(&stats, "GET /d/1/{ticket}/download"), 1, "{stats}");
    assert_eq!(count(&stats, "GET /2.0/files/{id}/content"), 1, "{stats}");

    m.reset_stats();
    let got = std::fs::read(m.p("big.bin")).unwrap();
    assert_eq!(sha1_hex(&got), sha1_hex(&big));
    let stats = m.stats();
    let blocks = big.len().div_ceil(4 * 1024 * 1024) as u64;
    assert_eq!(count(&stats, "GET /d/1/{ticket}/download"), blocks, "{stats}");
    assert_eq!(stats["bytes_served"].as_u64().unwrap(), big.len() as u64, "no byte downloaded twice");
    assert_eq!(count(&stats, "GET /2.0/files/{id}/content"), 1, "one download URL for every block: {stats}");
}

#[test]
fn web_links_statfs_refusals_and_clean_unmounts() {
    let Some((rt, emu)) = fuse_emulator(|c| c.space_amount = 1 << 30) else { return };
    emu.store().create_web_link(boxfs_emulator::ADMIN_ID, 0, "https://example.invalid/page", "Example", "").unwrap();
    add_file(emu.store(), 0, "a.txt", b"hello");
    let mut m = Mounted::start(rt, emu, &["--read-only"]);
    assert_eq!(
        std::fs::read_to_string(m.p("Example.url")).unwrap(),
        "[InternetShortcut]\nURL=https://example.invalid/page\n"
    );
    m.reset_stats();
    let st = run(Command::new("stat").arg("-f").arg("-c").arg("%b %S").arg(m.path()));
    let (blocks, bsize) = st.trim().split_once(' ').unwrap();
    assert_eq!(blocks.parse::<u64>().unwrap() * bsize.parse::<u64>().unwrap(), 1 << 30, "statfs reports the quota");
    // The mount read the account when it started: the first statfs (which `du` and `find`
    // make too) asks Box nothing.
    assert_eq!(m.stats()["requests"]["GET /2.0/users/me"].as_u64().unwrap_or(0), 0, "{}", m.stats());
    let err = std::fs::write(m.p("a.txt"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    let err = std::fs::create_dir(m.p("newdir")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    let status = m.unmount().expect("daemon ran");
    assert!(status.success(), "fusermount3 -u ends the daemon cleanly: {status:?}");

    let (rt, emu) = emulator(|_| {});
    let mut m = Mounted::start(rt, emu, &[]);
    let status = m.signal(libc::SIGTERM).expect("daemon ran");
    assert!(status.success(), "SIGTERM unmounts cleanly: {status:?}");
    assert!(std::fs::read_dir(m.path()).unwrap().next().is_none(), "nothing left mounted");
}

/// Unmounts lazily on drop, whatever happened.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-uz").arg(&self.0).stderr(std::process::Stdio::null()).status();
    }
}

#[test]
fn the_one_line_try_on_the_embedded_emulator() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = tempfile::tempdir().unwrap();
    let _guard = Unmount(mnt.path().to_path_buf());
    let status = Command::new(env!("CARGO_BIN_EXE_boxfs"))
        .arg("mount")
        .arg("--emulator")
        .arg(dir.path().join("emu"))
        .arg(mnt.path())
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .status()
        .unwrap();
    assert!(status.success(), "boxfs mount returns once the mount is ready");
    let names: Vec<String> =
        std::fs::read_dir(mnt.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    for expected in ["Documents", "Photos", "Projects", "Welcome to boxfs.txt", "Box website.url"] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    let notes = std::fs::read_to_string(mnt.path().join("Documents/notes.md")).unwrap();
    assert!(notes.starts_with("# Notes"));
    let status = Command::new("fusermount3").arg("-u").arg(mnt.path()).status().unwrap();
    assert!(status.success());
}
