//! Pinned content against real mounts on the emulator: `boxfs pin --wait` downloads a folder,
//! whose files then read back byte-exact without a single download request, also over a
//! `--cache-size` smaller than the folder and after a remount; `user.boxfs.pinned` reads `1`
//! and `inherited`; files created in the pinned folder through the mount, or uploaded into it
//! elsewhere (arriving through the event stream), are pinned and downloaded too; `unpin`
//! makes the content ordinary cache; pinning more than the cache disk holds is refused before
//! anything is downloaded.

mod common;

use common::emu::bytes;
use common::mount::{boxfs, fuse_emulator, getxattr, removexattr, status_json, wait_for, Mounted};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// Requests that download file content (the API's redirect and the download host).
const DOWNLOADS: &[&str] = &["GET /2.0/files/{id}/content", "GET /d/1/{ticket}/download"];

fn downloads(m: &Mounted) -> u64 {
    let stats = m.stats();
    DOWNLOADS.iter().map(|r| stats["requests"][*r].as_u64().unwrap_or(0)).sum()
}

/// The pin at `path` in `boxfs status --json`.
fn pin_status(m: &Mounted, path: &str) -> Option<Value> {
    status_json(m.path())["pins"].as_array().unwrap().iter().find(|p| p["path"] == path).cloned()
}

/// Twenty files of 30 KB to 600 KB, and one of 5 MB (two blocks), in folder `Docs`.
fn docs(m: &Mounted) -> (String, Vec<(String, Vec<u8>)>) {
    let mut files: Vec<(String, Vec<u8>)> =
        (0..20).map(|i| (format!("f{i:02}.bin"), bytes(100 + i, 30_000 + 30_000 * i as usize))).collect();
    files.push(("big.bin".into(), bytes(99, 5_000_000)));
    let id = m.rt.block_on(async {
        let id = m.emu.new_folder("0", "Docs").await;
        for (name, data) in &files {
            m.emu.new_file(&id, name, data.clone()).await;
        }
        id
    });
    (id, files)
}

fn read_back(m: &Mounted, files: &[(String, Vec<u8>)]) {
    for (name, data) in files {
        let got = std::fs::read(m.p(&format!("Docs/{name}"))).unwrap();
        assert!(got == *data, "{name} reads back byte-exact");
    }
}

fn wait_complete(m: &Mounted, files_total: u64) {
    wait_for("the pin to download what was added", 60, || {
        pin_status(m, "Docs").is_some_and(|p| {
            p["state"] == "complete" && p["files_total"] == files_total && p["files_present"] == files_total
        })
    });
}

#[test]
fn a_pinned_folder_reads_back_without_downloads_over_a_small_cache_and_after_a_remount() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    // The cache budget (2 MB) is smaller than the folder (11 MB) and than its biggest file.
    // The metadata stays fresh for the test's length, so that reads are about content only.
    let small_cache = ["--cache-size", "2000000", "--metadata-ttl", "3600"];
    let mut m = Mounted::start(rt, emu, &small_cache);
    let (docs_id, mut files) = docs(&m);
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();

    let out = boxfs(&["pin", "--wait", m.p("Docs").to_str().unwrap()]);
    assert!(out.status.success(), "pin: {}", String::from_utf8_lossy(&out.stderr));
    let pin = pin_status(&m, "Docs").expect("listed in status");
    assert_eq!((pin["state"].as_str(), pin["files_present"].as_u64()), (Some("complete"), Some(21)), "{pin}");
    assert_eq!((pin["bytes_present"].as_u64(), pin["bytes_total"].as_u64()), (Some(total), Some(total)));
    let status = status_json(m.path());
    assert_eq!(status["cache"]["pinned_bytes"].as_u64(), Some(total), "{status}");
    assert!(status["cache"]["used_bytes"].as_u64().unwrap() <= 2_000_000, "{status}");
    let text = String::from_utf8_lossy(&boxfs(&["status", m.path().to_str().unwrap()]).stdout).into_owned();
    assert!(text.contains("Docs: 21 of 21 files") && text.contains("complete"), "{text}");

    m.reset_stats();
    read_back(&m, &files);
    let mut names: Vec<String> =
        std::fs::read_dir(m.p("Docs")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names.len(), 21);
    assert_eq!(downloads(&m), 0, "pinned files read without a download: {}", m.stats());
    // With the metadata fresh, no API call at all: what an offline mount will need.
    assert_eq!(m.item_requests(), 0, "no API call to read pinned files: {}", m.stats());

    // The attribute: `1` on the folder, `inherited` in it; only the folder's own pin can go.
    let pinned = "user.boxfs.pinned";
    assert_eq!(getxattr(&m.p("Docs"), pinned).unwrap(), b"1");
    assert_eq!(getxattr(&m.p("Docs/f03.bin"), pinned).unwrap(), b"inherited");
    assert_eq!(removexattr(&m.p("Docs/f03.bin"), pinned), Err(libc::EPERM));
    let listed = Command::new("getfattr").arg("-d").arg(m.p("Docs/f03.bin")).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("user.boxfs.pinned=\"inherited\""), "{listed:?}");

    // A remount with the same small budget evicts nothing pinned.
    m.unmount();
    m.respawn(&small_cache);
    m.reset_stats();
    read_back(&m, &files);
    assert_eq!(downloads(&m), 0, "after the remount too: {}", m.stats());

    // A file written into the pinned folder, once in Box, is kept here too.
    let local = bytes(7, 300_000);
    std::fs::write(m.p("Docs/local.bin"), &local).unwrap();
    let out = boxfs(&["sync", m.path().to_str().unwrap()]);
    assert!(out.status.success(), "sync: {}", String::from_utf8_lossy(&out.stderr));
    files.push(("local.bin".into(), local));
    wait_complete(&m, 22);
    // And one uploaded into it elsewhere, which arrives through the event stream.
    let remote = bytes(8, 400_000);
    m.rt.block_on(m.emu.new_file(&docs_id, "remote.bin", remote.clone()));
    files.push(("remote.bin".into(), remote));
    wait_complete(&m, 23);
    m.reset_stats();
    read_back(&m, &files);
    assert_eq!(downloads(&m), 0, "new files pinned and downloaded: {}", m.stats());

    // Unpinned: no attribute, no pin; the content is ordinary cache, evicted to the budget.
    let out = boxfs(&["unpin", m.p("Docs").to_str().unwrap()]);
    assert!(out.status.success(), "unpin: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(getxattr(&m.p("Docs"), pinned), Err(libc::ENODATA));
    assert_eq!(getxattr(&m.p("Docs/f03.bin"), pinned), Err(libc::ENODATA));
    assert!(pin_status(&m, "Docs").is_none());
    wait_for("the unpinned content to be evictable", 30, || {
        let s = status_json(m.path());
        s["cache"]["pinned_bytes"] == 0 && s["cache"]["used_bytes"].as_u64().unwrap() <= 2_000_000
    });
    let out = boxfs(&["unpin", m.p("Docs").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Docs is not pinned"), "{out:?}");

    // The attribute pins too.
    let set = Command::new("setfattr").args(["-n", pinned, "-v", "1"]).arg(m.p("Docs/f05.bin")).output().unwrap();
    assert!(set.status.success(), "{set:?}");
    assert_eq!(getxattr(&m.p("Docs/f05.bin"), pinned).unwrap(), b"1");
    wait_for("the pinned file to download", 60, || {
        pin_status(&m, "Docs/f05.bin").is_some_and(|p| p["state"] == "complete")
    });
    m.reset_stats();
    assert!(std::fs::read(m.p("Docs/f05.bin")).unwrap() == files[5].1);
    assert_eq!(downloads(&m), 0);
}

/// A small tmpfs mounted on a temp dir, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs");
        Tmpfs { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[test]
fn pinning_more_than_the_cache_disk_holds_is_refused_before_any_download() {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small tmpfs as the cache disk needs root");
        return;
    }
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let disk = Tmpfs::mount("16m");
    let mut m = Mounted::new(rt, emu);
    m.cache = tempfile::tempdir_in(disk.path()).unwrap();
    m.respawn(&[]);
    m.rt.block_on(async {
        let id = m.emu.new_folder("0", "Docs").await;
        for i in 0..3 {
            m.emu.new_file(&id, &format!("part{i}.bin"), bytes(i, 8_000_000)).await;
        }
    });
    assert!(std::fs::read_dir(m.p("Docs")).unwrap().count() == 3);
    m.reset_stats();

    let out = boxfs(&["pin", "--wait", m.p("Docs").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot pin Docs: it needs 22.9 MiB, the cache disk (") && err.contains("MiB free"), "{err}");
    let refused =
        Command::new("setfattr").args(["-n", "user.boxfs.pinned", "-v", "1"]).arg(m.p("Docs")).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("No space left on device"), "{refused:?}");
    assert!(pin_status(&m, "Docs").is_none());
    assert_eq!(downloads(&m), 0, "nothing downloaded: {}", m.stats());
    m.unmount();
    drop(m);
}
