//! Writing through a real mount: file and directory operations, `cp -r` of small and large
//! files (direct uploads and upload sessions) that read back byte-exact after a remount,
//! recovery of pending uploads after `kill -9`, conflicts keeping both versions, and a copy
//! that succeeds under injected faults without duplicates, and uploads one at a time with
//! `--upload-parallelism 1`.

mod common;

use common::emu::{bytes, sha1_hex};
use common::mount::{fuse_emulator, wait_for, Mounted};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::Command;
use std::time::Duration;

fn folder_id(m: &Mounted, parent: &str, name: &str) -> String {
    m.rt.block_on(async {
        let r = m.emu.get(&m.emu.api(&format!("/folders/{parent}/items?limit=1000"))).await;
        r.body["entries"].as_array().unwrap().iter().find(|e| e["name"] == name).expect("folder exists")["id"]
            .as_str()
            .unwrap()
            .to_string()
    })
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn file_and_directory_operations() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "200", "--fsync", "box"]);

    // Create, read back at once, see the local size; fsync waits for Box (--fsync box).
    std::fs::write(m.p("hello.txt"), b"hello world").unwrap();
    assert_eq!(std::fs::read(m.p("hello.txt")).unwrap(), b"hello world");
    assert_eq!(std::fs::metadata(m.p("hello.txt")).unwrap().len(), 11);
    let f = std::fs::OpenOptions::new().write(true).open(m.p("hello.txt")).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(m.box_files("0")["hello.txt"], sha1_hex(b"hello world"));

    // Overwrite in the middle, append, truncate: a new version each time it is committed.
    // A reader that has the file in the page cache sees what a write-only handle (which
    // bypasses that cache) wrote, through the same open file.
    let mut reader = std::fs::File::open(m.p("hello.txt")).unwrap();
    let mut seen = String::new();
    reader.read_to_string(&mut seen).unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(m.p("hello.txt")).unwrap();
    f.seek(SeekFrom::Start(6)).unwrap();
    f.write_all(b"boxfs").unwrap();
    seen.clear();
    reader.seek(SeekFrom::Start(0)).unwrap();
    reader.read_to_string(&mut seen).unwrap();
    assert_eq!(seen, "hello boxfs");
    drop(reader);
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(m.box_files("0")["hello.txt"], sha1_hex(b"hello boxfs"));
    let mut f = std::fs::OpenOptions::new().append(true).open(m.p("hello.txt")).unwrap();
    f.write_all(b"!\n").unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(std::fs::read(m.p("hello.txt")).unwrap(), b"hello boxfs!\n");
    let f = std::fs::OpenOptions::new().write(true).open(m.p("hello.txt")).unwrap();
    f.set_len(5).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(m.box_files("0")["hello.txt"], sha1_hex(b"hello"));

    // mtime set locally travels as content_modified_at.
    let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let f = std::fs::OpenOptions::new().write(true).open(m.p("hello.txt")).unwrap();
    f.set_modified(when).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let meta = m.rt.block_on(async {
        let id = m.emu.get(&m.emu.api("/folders/0/items?fields=name")).await.body["entries"][0]["id"].clone();
        m.emu.get(&m.emu.api(&format!("/files/{}", id.as_str().unwrap()))).await.body
    });
    assert_eq!(meta["content_modified_at"], "2020-09-13T12:26:40+00:00");

    // Directories.
    std::fs::create_dir(m.p("dir")).unwrap();
    std::fs::write(m.p("dir/inner.txt"), b"inner").unwrap();
    // A directory's mtime cannot be set in Box; it is kept in its metadata (rsync -a sets it last).
    std::fs::File::open(m.p("dir")).unwrap().set_modified(when).unwrap();
    assert_eq!(std::fs::metadata(m.p("dir")).unwrap().modified().unwrap(), when);
    assert_eq!(errno_of(std::fs::remove_dir(m.p("dir"))), Some(libc::ENOTEMPTY));
    std::fs::rename(m.p("dir/inner.txt"), m.p("moved.txt")).unwrap();
    std::fs::remove_dir(m.p("dir")).unwrap();
    assert_eq!(std::fs::read(m.p("moved.txt")).unwrap(), b"inner");
    // Rename over an existing file replaces it; NOREPLACE refuses.
    std::fs::write(m.p("target.txt"), b"old").unwrap();
    std::fs::rename(m.p("moved.txt"), m.p("target.txt")).unwrap();
    assert_eq!(std::fs::read(m.p("target.txt")).unwrap(), b"inner");
    std::fs::write(m.p("other.txt"), b"other").unwrap();
    let from = std::ffi::CString::new(m.p("other.txt").into_os_string().into_encoded_bytes()).unwrap();
    let to = std::ffi::CString::new(m.p("target.txt").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: renameat2 with valid NUL-terminated paths.
    let rc =
        unsafe { libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::RENAME_NOREPLACE) };
    assert_eq!((rc, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EEXIST)));
    std::fs::remove_file(m.p("other.txt")).unwrap();
    assert!(std::fs::metadata(m.p("other.txt")).is_err());

    // Names Box refuses, names longer than a name can be, case-insensitive clashes, hard links.
    assert_eq!(errno_of(std::fs::write(m.p("trailing "), b"x")), Some(libc::EINVAL));
    assert_eq!(errno_of(std::fs::write(m.p("back\\slash"), b"x")), Some(libc::EINVAL));
    assert_eq!(errno_of(std::fs::write(m.p("TARGET.TXT"), b"x")), Some(libc::EEXIST));
    let long = m.p(&"n".repeat(256));
    assert_eq!(errno_of(std::fs::metadata(&long)), Some(libc::ENAMETOOLONG), "lookup");
    assert_eq!(errno_of(std::fs::write(&long, b"x")), Some(libc::ENAMETOOLONG), "create");
    assert_eq!(errno_of(std::fs::create_dir(&long)), Some(libc::ENAMETOOLONG), "mkdir");
    assert_eq!(errno_of(std::fs::rename(m.p("target.txt"), &long)), Some(libc::ENAMETOOLONG), "rename");
    assert_eq!(errno_of(std::fs::remove_file(&long)), Some(libc::ENAMETOOLONG), "unlink");
    assert_eq!(errno_of(std::fs::remove_dir(&long)), Some(libc::ENAMETOOLONG), "rmdir");
    assert_eq!(errno_of(std::fs::hard_link(m.p("target.txt"), m.p("hard"))), Some(libc::ENOTSUP));

    // Everything is in Box after the unmount drained the queue.
    let mut m = m;
    assert!(m.unmount().unwrap().success());
    let files = m.box_files("0");
    assert_eq!(files.keys().collect::<Vec<_>>(), ["hello.txt", "target.txt"]);
    assert_eq!(files["target.txt"], sha1_hex(b"inner"));
}

#[test]
fn cp_r_of_small_and_large_files_reads_back_after_remount() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let src = tempfile::tempdir().unwrap();
    let mut expected = BTreeMap::new();
    std::fs::create_dir_all(src.path().join("tree/sub")).unwrap();
    for i in 0..120u64 {
        let rel = if i % 3 == 0 { format!("tree/sub/s{i:03}.txt") } else { format!("tree/f{i:03}.txt") };
        let data = bytes(i, (i as usize * 997) % 9000);
        std::fs::write(src.path().join(&rel), &data).unwrap();
        expected.insert(rel, sha1_hex(&data));
    }
    for (i, mb) in [25usize, 33].into_iter().enumerate() {
        let data = bytes(500 + i as u64, mb * 1000 * 1000 + i);
        let rel = format!("tree/large{i}.bin");
        std::fs::write(src.path().join(&rel), &data).unwrap();
        expected.insert(rel, sha1_hex(&data));
    }
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "100"]);
    let status = Command::new("cp").arg("-r").arg(src.path().join("tree")).arg(m.path()).status().unwrap();
    assert!(status.success());
    assert!(m.unmount().unwrap().success(), "unmount drains the queue");
    let stats = m.stats();
    assert_eq!(stats["requests"]["POST /api/2.0/files/upload_sessions"], 2, "large files went through sessions");

    let tree = folder_id(&m, "0", "tree");
    let sub = folder_id(&m, &tree, "sub");
    let mut in_box = BTreeMap::new();
    for (name, sha1) in m.box_files(&tree) {
        in_box.insert(format!("tree/{name}"), sha1);
    }
    for (name, sha1) in m.box_files(&sub) {
        in_box.insert(format!("tree/sub/{name}"), sha1);
    }
    assert_eq!(in_box, expected, "every file in Box, byte-exact");
    m.respawn(&[]);
    for (rel, sha1) in &expected {
        assert_eq!(&sha1_hex(&std::fs::read(m.p(rel)).unwrap()), sha1, "{rel} reads back after remount");
    }
}

#[test]
fn kill_9_with_pending_uploads_loses_nothing() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    // Uploads wait a minute after close: all 50 are still pending when the daemon dies.
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "60000"]);
    let mut expected = BTreeMap::new();
    std::fs::create_dir(m.p("pending")).unwrap();
    for i in 0..50u64 {
        let data = bytes(900 + i, 100 + i as usize * 50);
        std::fs::write(m.p(&format!("pending/p{i:02}.dat")), &data).unwrap();
        expected.insert(format!("p{i:02}.dat"), sha1_hex(&data));
    }
    let folder = folder_id(&m, "0", "pending");
    assert!(m.box_files(&folder).is_empty(), "nothing uploaded yet");
    let status = m.signal(libc::SIGKILL).unwrap();
    assert!(!status.success());
    m.respawn(&[]);
    wait_for("recovered uploads", 30, || m.box_files(&folder).len() == 50);
    assert_eq!(m.box_files(&folder), expected);
}

#[test]
fn more_pending_files_than_the_soft_open_file_limit() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    // Each pending file keeps its staging file open (two descriptors: these writes go direct).
    let mut m = Mounted::new(rt, emu);
    m.open_file_limit = Some(64);
    m.respawn(&["--writeback-delay-ms", "60000"]);
    std::fs::create_dir(m.p("many")).unwrap();
    for i in 0..150u64 {
        std::fs::write(m.p(&format!("many/f{i:03}")), bytes(i, 100_000)).unwrap();
    }
    for i in (0..150u64).step_by(7) {
        assert!(std::fs::read(m.p(&format!("many/f{i:03}"))).unwrap() == bytes(i, 100_000), "f{i:03} reads back");
    }
    assert_eq!(std::fs::read_dir(m.p("many")).unwrap().count(), 150);
    m.signal(libc::SIGKILL); // not waiting for 150 uploads at the client's pace
}

#[test]
fn a_remote_change_during_a_local_edit_keeps_both_versions() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let id = rt.block_on(emu.new_file("0", "report.txt", b"original".to_vec()));
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "1500", "--events", "off"]);
    assert_eq!(std::fs::read(m.p("report.txt")).unwrap(), b"original");
    std::fs::write(m.p("report.txt"), b"local edit").unwrap();
    // Someone changes the file in Box before our upload runs.
    m.rt.block_on(async {
        let form = reqwest::multipart::Form::new()
            .text("attributes", "{}")
            .part("file", reqwest::multipart::Part::bytes(b"remote edit".to_vec()));
        let r = m
            .emu
            .send(m.emu.authed(Method::POST, &m.emu.upload(&format!("/files/{id}/content"))).multipart(form))
            .await;
        assert_eq!(r.status, 200);
    });
    wait_for("conflicted copy", 20, || m.box_files("0").len() == 2);
    let files = m.box_files("0");
    assert_eq!(files["report.txt"], sha1_hex(b"remote edit"), "the remote version stays");
    let (copy, sha1) =
        files.iter().find(|(n, _)| n.starts_with("report (conflicted copy ")).expect("a conflicted copy");
    assert!(copy.ends_with(").txt"), "{copy}");
    assert_eq!(sha1, &sha1_hex(b"local edit"), "the local bytes are kept");
}

#[test]
fn a_copy_under_faults_completes_without_errors_or_duplicates() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let src = tempfile::tempdir().unwrap();
    let mut expected = BTreeMap::new();
    std::fs::create_dir(src.path().join("many")).unwrap();
    for i in 0..200u64 {
        let data = bytes(2000 + i, 10 + (i as usize * 131) % 5000);
        std::fs::write(src.path().join(format!("many/m{i:03}")), &data).unwrap();
        expected.insert(format!("m{i:03}"), sha1_hex(&data));
    }
    let mut m = Mounted::start(rt, emu, &["--writeback-delay-ms", "50"]);
    m.rt.block_on(m.emu.set_faults("429=0.05,500=0.03,reset=0.02,reset_after=0.02,seed=5,retry_after=0"));
    let out = Command::new("cp").arg("-r").arg(src.path().join("many")).arg(m.path()).output().unwrap();
    assert!(out.status.success(), "cp reported: {}", String::from_utf8_lossy(&out.stderr));
    // While uploads land (and their events arrive), the mount keeps showing every file.
    for _ in 0..20 {
        let names = std::fs::read_dir(m.p("many")).unwrap().count();
        assert_eq!(names, 200, "the listing lost or duplicated entries");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(m.unmount().unwrap().success());
    m.rt.block_on(m.emu.set_faults(""));
    let folder = folder_id(&m, "0", "many");
    assert_eq!(m.box_files(&folder), expected, "all 200, byte-exact, no duplicates");
    let stats: Value = m.stats();
    assert!(stats["faults_injected"].as_object().is_some_and(|f| !f.is_empty()), "faults really happened");
    let root: Vec<String> = m.rt.block_on(async {
        let r = m.emu.get(&m.emu.api("/folders/0/items")).await;
        r.body["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    });
    assert_eq!(root, ["many"]);
}

/// A tiny deterministic generator for the random-operation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[test]
fn random_writes_truncates_and_reads_match_a_local_file() {
    use std::os::unix::fs::FileExt;
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "300", "--fsync", "box"]);
    let local = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for n in 0..3 {
        let name = format!("fsx{n}.bin");
        let mounted =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(m.p(&name)).unwrap();
        let model = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(local.path().join(&name))
            .unwrap();
        for op in 0..300u64 {
            let size = model.metadata().unwrap().len();
            match rng.next(10) {
                0..=4 => {
                    let offset = rng.next(size + 70_000);
                    let data = bytes(op * 31 + n, rng.next(65_536) as usize + 1);
                    mounted.write_all_at(&data, offset).unwrap();
                    model.write_all_at(&data, offset).unwrap();
                }
                5 => {
                    let to = rng.next(size + 10_000);
                    mounted.set_len(to).unwrap();
                    model.set_len(to).unwrap();
                }
                _ => {
                    let offset = rng.next(size + 100);
                    let len = rng.next(100_000) as usize;
                    let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                    let got_a = mounted.read_at(&mut a, offset).unwrap();
                    let got_b = model.read_at(&mut b, offset).unwrap();
                    assert_eq!((got_a, &a[..got_a]), (got_b, &b[..got_b]), "{name} op {op}: read at {offset}");
                }
            }
            if op % 60 == 59 {
                mounted.sync_all().unwrap();
                let want = sha1_hex(&std::fs::read(local.path().join(&name)).unwrap());
                assert_eq!(m.box_files("0")[&name], want, "{name} in Box after fsync at op {op}");
            }
        }
    }
}

#[test]
fn shared_mmap_writes_reach_box() {
    use std::os::unix::io::AsRawFd;
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "100", "--fsync", "box"]);
    std::fs::write(m.p("mapped.bin"), vec![0u8; 8192]).unwrap();
    let f = std::fs::OpenOptions::new().read(true).write(true).open(m.p("mapped.bin")).unwrap();
    // SAFETY: a fresh shared mapping of an open 8 KiB file, unmapped before the file closes.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(b"mapped!".as_ptr(), (p as *mut u8).add(100), 7);
        assert_eq!(libc::msync(p, 8192, libc::MS_SYNC), 0);
        libc::munmap(p, 8192);
    }
    f.sync_all().unwrap();
    drop(f);
    let mut want = vec![0u8; 8192];
    want[100..107].copy_from_slice(b"mapped!");
    assert_eq!(std::fs::read(m.p("mapped.bin")).unwrap(), want);
    assert_eq!(m.box_files("0")["mapped.bin"], sha1_hex(&want));
}

#[test]
fn fallocate_grows_or_reserves_and_refuses_holes() {
    use std::os::fd::AsRawFd;
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let m = Mounted::start(rt, emu, &["--fsync", "box"]);
    let mut f =
        std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(m.p("pre.bin")).unwrap();
    f.write_all(b"head").unwrap();
    let fd = f.as_raw_fd();
    // SAFETY: fallocate(2) on a descriptor this test owns.
    let call = |mode, off, len| {
        if unsafe { libc::fallocate(fd, mode, off, len) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    call(0, 0, 1 << 20).expect("plain allocation");
    assert_eq!(f.metadata().unwrap().len(), 1 << 20, "grew to the allocated size");
    call(libc::FALLOC_FL_KEEP_SIZE, 0, 4 << 20).expect("keep-size allocation");
    assert_eq!(f.metadata().unwrap().len(), 1 << 20, "keep-size leaves the size");
    let punch = call(libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, 0, 4096);
    assert_eq!(errno_of(punch), Some(libc::EOPNOTSUPP));
    f.sync_all().unwrap();
    let mut expected = b"head".to_vec();
    expected.resize(1 << 20, 0);
    assert_eq!(m.box_files("0").get("pre.bin"), Some(&sha1_hex(&expected)));
}

#[test]
fn sync_on_close_makes_close_wait_for_the_commit() {
    let Some((rt, emu)) = fuse_emulator(|c| c.space_amount = 100_000) else { return };
    // Without --sync-on-close this delay would keep the file local for ten minutes.
    let m = Mounted::start(rt, emu, &["--sync-on-close", "--fsync", "box", "--writeback-delay-ms", "600000"]);
    let data = bytes(77, 5000);
    std::fs::write(m.p("now.txt"), &data).unwrap();
    assert_eq!(m.box_files("0").get("now.txt"), Some(&sha1_hex(&data)), "in Box when close returned");
    // A file Box refuses (over quota) fails at close, and stays local. (A child another test
    // forks meanwhile may hold the file too and flush it empty at its exec: Box may then have
    // the empty file, never these bytes.)
    let big = bytes(78, 200_000);
    let mut f = std::fs::File::create(m.p("too-big.bin")).unwrap();
    f.write_all(&big).unwrap();
    let closed = nix_close(f);
    assert_eq!(closed, Some(libc::EIO), "close reports the failed upload");
    assert_ne!(m.box_files("0").get("too-big.bin"), Some(&sha1_hex(&big)));
    assert_eq!(std::fs::metadata(m.p("too-big.bin")).unwrap().len(), 200_000, "the data is kept");
}

/// Closes `f` with close(2) and returns its errno, if any (std ignores close errors).
fn nix_close(f: std::fs::File) -> Option<i32> {
    use std::os::fd::IntoRawFd;
    let fd = f.into_raw_fd();
    // SAFETY: closing a descriptor this test owns, once.
    let rc = unsafe { libc::close(fd) };
    (rc != 0).then(|| std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

#[test]
fn our_own_uploads_landing_do_not_make_the_folder_be_listed_again() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    // Uploads start at once, so their events arrive while the copy is still creating files.
    let m = Mounted::start(rt, emu, &["--writeback-delay-ms", "0"]);
    std::fs::create_dir(m.p("many")).unwrap();
    m.reset_stats();
    for i in 0..200u64 {
        std::fs::write(m.p(&format!("many/f{i:03}")), bytes(i, 1024)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_boxfs")).arg("sync").arg(m.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stats = m.stats();
    let listings = stats["requests"]["GET /2.0/folders/{id}/items"].as_u64().unwrap_or(0);
    assert_eq!(listings, 0, "a folder made here is known empty: never listed: {stats}");
    let folder = folder_id(&m, "0", "many");
    assert_eq!(m.box_files(&folder).len(), 200);
}

#[test]
fn upload_parallelism_bounds_the_uploads_running_at_once() {
    const FILES: u32 = 4;
    const LATENCY_MS: u32 = 200;
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    // The uploads wait for `boxfs sync`, then go one after another.
    let m = Mounted::start(rt, emu, &["--upload-parallelism", "1", "--writeback-delay-ms", "600000"]);
    for i in 0..FILES {
        std::fs::write(m.p(&format!("f{i}")), bytes(i.into(), 1000)).unwrap();
    }
    m.rt.block_on(async {
        let network = format!("{}/_emulator/network", m.emu.base());
        let r = m.emu.http.put(&network).body(format!("latency={LATENCY_MS}")).send().await.unwrap();
        assert!(r.status().is_success());
    });
    let t0 = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_boxfs")).arg("sync").arg(m.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let took = t0.elapsed();
    // Each upload is at least one response held LATENCY_MS; one at a time, they add up.
    assert!(took >= Duration::from_millis((FILES * LATENCY_MS).into()), "{FILES} uploads took {took:?}");
    assert_eq!(m.box_files("0").len(), FILES as usize);
}
