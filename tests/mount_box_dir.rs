//! The hidden `.box/` directory through a real mount over the emulator: `ls -a`, `find` and
//! `rsync -a` of the mount never enter it (and cost no versions or trash call); the versions
//! of a file are listed and read byte for byte under `.box/versions/PATH/`, `cp` of an old one
//! makes a new version, and `boxfs versions` prints them; a folder deleted with `rm -r` comes
//! back with `mv` out of `.box/trash/` with every file and id, and `rm` there purges for good.

mod common;

use common::emu::{bytes, sha1_hex};
use common::mount::{fuse_emulator, Mounted};
use common::run;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn boxfs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boxfs"))
}

/// Requests for versions and the trash so far.
fn box_dir_requests(m: &Mounted) -> u64 {
    let stats = m.stats();
    ["GET /2.0/files/{id}/versions", "GET /2.0/folders/trash/items"]
        .iter()
        .map(|r| stats["requests"][*r].as_u64().unwrap_or(0))
        .sum()
}

/// Uploads `data` as a new version of file `id` through the API.
fn upload_version(m: &Mounted, id: &str, data: Vec<u8>) {
    m.rt.block_on(async {
        let form = reqwest::multipart::Form::new()
            .text("attributes", "{}")
            .part("file", reqwest::multipart::Part::bytes(data).file_name("v"));
        let url = m.emu.upload(&format!("/files/{id}/content"));
        let r = m.emu.send(m.emu.authed(Method::POST, &url).multipart(form)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    });
}

fn api_get(m: &Mounted, path: &str) -> (StatusCode, Value) {
    let r = m.rt.block_on(m.emu.get(&m.emu.api(path)));
    (r.status, r.body)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn errno_of(result: std::io::Result<impl Sized>) -> i32 {
    result.err().and_then(|e| e.raw_os_error()).expect("an OS error")
}

#[test]
fn versions_are_read_byte_for_byte_copied_back_and_never_walked_into() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let docs = rt.block_on(emu.new_folder("0", "docs"));
    let sub = rt.block_on(emu.new_folder(&docs, "sub"));
    rt.block_on(emu.new_file(&sub, "other.txt", b"other".to_vec()));
    let contents = [bytes(1, 300_000), bytes(2, 200_001), bytes(3, 250_002)];
    let id = rt.block_on(emu.new_file(&docs, "report.pdf", contents[0].clone()));
    let m = Mounted::start(rt, emu, &[]);
    upload_version(&m, &id, contents[1].clone());
    upload_version(&m, &id, contents[2].clone());
    m.reset_stats();

    // Walks of the tree never see `.box`, and ask nothing about versions or the trash.
    let ls = run(Command::new("ls").arg("-a").arg(m.path()));
    assert_eq!(ls.lines().collect::<Vec<_>>(), [".", "..", "docs"]);
    let found = run(Command::new("find").arg(m.path()));
    assert!(!found.contains(".box") && found.contains("other.txt"), "{found}");
    let copy = tempfile::tempdir().unwrap();
    run(Command::new("rsync").arg("-a").arg(format!("{}/", m.path().display())).arg(copy.path()));
    assert_eq!(names_in(copy.path()), ["docs"]);
    assert!(copy.path().join("docs/sub/other.txt").exists());
    assert_eq!(box_dir_requests(&m), 0, "a walk of the tree asks nothing of versions or the trash");

    // Reachable by path; the mirror of the tree costs nothing more than the tree's listings.
    assert_eq!(names_in(&m.p(".box")), ["trash", "versions"]);
    assert_eq!(names_in(&m.p(".box/versions")), ["docs"]);
    assert_eq!(names_in(&m.p(".box/versions/docs")), ["report.pdf", "sub"]);
    assert_eq!(box_dir_requests(&m), 0, "no versions asked for before a file's are looked into");

    // The versions of docs/report.pdf, each byte for byte.
    let of_report = m.p(".box/versions/docs/report.pdf");
    let listed = names_in(&of_report);
    assert_eq!(listed.len(), 3, "{listed:?}");
    let (_, older) = api_get(&m, &format!("/files/{id}/versions"));
    let (_, file) = api_get(&m, &format!("/files/{id}"));
    let mut ids: Vec<String> =
        older["entries"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
    ids.reverse(); // oldest first
    ids.push(file["file_version"]["id"].as_str().unwrap().to_string());
    for (version_id, content) in ids.iter().zip(&contents) {
        let name = listed.iter().find(|n| n.ends_with(&format!("_{version_id}.pdf"))).expect("named by id");
        assert!(name.len() == "2026-11-01T101500_".len() + version_id.len() + 4, "{name}");
        let path = of_report.join(name);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), content.len() as u64);
        assert!(std::fs::read(&path).unwrap() == *content, "version {version_id} byte for byte");
    }
    assert!(box_dir_requests(&m) > 0, "looking inside asks Box");
    assert_eq!(errno_of(std::fs::write(of_report.join("new"), b"x")), libc::EROFS);
    assert_eq!(errno_of(std::fs::create_dir(m.p(".box"))), libc::EEXIST);

    // The oldest copied back is a fourth version, with the oldest's bytes.
    let oldest = listed.iter().find(|n| n.contains(&format!("_{}.", ids[0]))).unwrap();
    run(Command::new("cp").arg(of_report.join(oldest)).arg(m.p("docs/report.pdf")));
    run(boxfs().arg("sync").arg(m.path()).arg("--quiet"));
    let (_, file) = api_get(&m, &format!("/files/{id}"));
    assert_eq!(file["sha1"], sha1_hex(&contents[0]));
    let (_, older) = api_get(&m, &format!("/files/{id}/versions"));
    assert_eq!(older["total_count"], 3, "three older versions and the current one");
    assert_eq!(names_in(&of_report).len(), 4);

    // `boxfs versions` prints the same, one line each, the current one marked.
    let table = run(boxfs().arg("versions").arg(m.p("docs/report.pdf")));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("UPLOADED (UTC)"), "{table}");
    let current = file["file_version"]["id"].as_str().unwrap();
    let marked: Vec<&&str> = lines.iter().filter(|l| l.contains(" *  ")).collect();
    assert_eq!(marked.len(), 1, "{table}");
    assert!(marked[0].contains(&format!("  {current}  ")), "{table}");
    for version_id in &ids {
        assert!(lines.iter().any(|l| l.contains(&format!("  {version_id}  "))), "{version_id} in {table}");
    }
}

#[test]
fn a_folder_removed_with_rm_comes_back_with_mv_and_rm_in_the_trash_purges() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let proj = rt.block_on(emu.new_folder("0", "proj"));
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(rt.block_on(emu.new_file(&proj, &format!("f{i}.txt"), format!("file {i}").into_bytes())));
    }
    let m = Mounted::start(rt, emu, &[]);

    run(Command::new("rm").arg("-r").arg(m.p("proj")));
    assert_eq!(api_get(&m, &format!("/folders/{proj}")).0, StatusCode::NOT_FOUND);
    assert_eq!(names_in(&m.p(".box/trash")), ["proj"], "the files show inside the folder they left");
    assert_eq!(names_in(&m.p(".box/trash/proj")).len(), 10);

    run(Command::new("mv").arg(m.p(".box/trash/proj")).arg(m.p("back")));
    let (status, folder) = api_get(&m, &format!("/folders/{proj}"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!((folder["name"].as_str(), folder["parent"]["id"].as_str()), (Some("back"), Some("0")));
    let (_, items) = api_get(&m, &format!("/folders/{proj}/items?limit=1000"));
    let mut back: Vec<String> =
        items["entries"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    back.sort();
    ids.sort();
    assert_eq!(back, ids, "all ten back, with their ids");
    assert_eq!(names_in(&m.p("back")).len(), 10);
    assert_eq!(std::fs::read(m.p("back/f3.txt")).unwrap(), b"file 3");
    assert!(names_in(&m.p(".box/trash")).is_empty());

    // `rm` in the trash purges: gone from Box's trash too.
    run(Command::new("rm").arg(m.p("back/f0.txt")));
    assert_eq!(names_in(&m.p(".box/trash")), ["f0.txt"]);
    assert_eq!(errno_of(std::fs::read(m.p(".box/trash/f0.txt"))), libc::EACCES, "Box serves no trashed content");
    let over = std::fs::rename(m.p(".box/trash/f0.txt"), m.p("back/f1.txt"));
    assert_eq!(errno_of(over), libc::EEXIST, "a restore never replaces");
    run(Command::new("rm").arg(m.p(".box/trash/f0.txt")));
    let f0 = &ids[0];
    let gone = ids.iter().find(|i| api_get(&m, &format!("/files/{i}/trash")).0 == StatusCode::OK);
    assert!(gone.is_none(), "nothing of proj left in the trash ({f0} purged)");
    run(Command::new("rm").arg("-r").arg(m.p("back")));
    run(Command::new("rm").arg("-r").arg(m.p(".box/trash/back")));
    let (_, trash) = api_get(&m, "/folders/trash/items");
    assert_eq!(trash["total_count"], 0, "{trash}");
    assert!(names_in(&m.p(".box/trash")).is_empty());
    let renamed = std::fs::rename(m.p(".box/versions"), m.p("elsewhere"));
    assert_eq!(errno_of(renamed), libc::EROFS);
}
