//! Mounts of several emulator users: what a collaborator's role allows is what their mount
//! allows. A viewer lists and reads a shared folder but cannot write into it (EACCES at once,
//! nothing journaled); a role changed by the owner reaches the collaborator's mount within
//! seconds; a previewer cannot read content; an uploader can create but not list or read.

mod common;

use common::cli::CliEnv;
use common::mount::{fuse_emulator, wait_for};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::ErrorKind;
use std::path::Path;

/// A user of the emulator with a token of their own.
struct Person {
    id: String,
    token: String,
}

fn person(emu: &common::emu::TestEmulator, id: &str) -> Person {
    Person { id: id.to_string(), token: emu.running.state.developer_token_for(id).unwrap() }
}

/// `method url body` as `who`; the response body.
async fn call(emu: &common::emu::TestEmulator, who: &Person, method: Method, url: &str, body: Value) -> (u16, Value) {
    let r = emu.send(emu.http.request(method, url).bearer_auth(&who.token).json(&body)).await;
    (r.status.as_u16(), r.body)
}

/// Shares folder `folder` of `owner` with `with` as `role`; the collaboration id.
async fn share(emu: &common::emu::TestEmulator, owner: &Person, folder: &str, with: &Person, role: &str) -> String {
    let body = json!({"item": {"type": "folder", "id": folder}, "accessible_by": {"type": "user", "id": with.id},
        "role": role});
    let (status, r) = call(emu, owner, Method::POST, &emu.api("/collaborations"), body).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "accepted");
    r["id"].as_str().unwrap().to_string()
}

/// The pending uploads recorded in a mount's journal.
fn journal_records(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("journal"))
        .map(|d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "json")).count())
        .unwrap_or(0)
}

fn mount_as(env: &CliEnv, emu: &common::emu::TestEmulator, who: &Person) -> common::cli::AccountMount {
    let (api, up) = (emu.api(""), emu.upload(""));
    let args = ["--api-url", api.as_str(), "--upload-url", up.as_str(), "--writeback-delay-ms", "0"];
    env.mount_account("default", &args, &[("BOX_ACCESS_TOKEN", &who.token)])
}

#[test]
fn a_viewer_reads_but_cannot_write_until_made_editor() {
    let Some((rt, emu)) = fuse_emulator(|c| c.users = 1) else { return };
    let a = person(&emu, boxfs_emulator::ADMIN_ID);
    let b_id = emu.store().users().unwrap().into_iter().find(|u| u.login == "user1@boxfs.invalid").unwrap().id;
    let b = person(&emu, &b_id);
    let shared = rt.block_on(async {
        let folder = emu.new_folder("0", "Team").await;
        emu.new_file(&folder, "plan.txt", b"the plan\n".to_vec()).await;
        folder
    });
    let collab = rt.block_on(share(&emu, &a, &shared, &b, "viewer"));

    let env = CliEnv::new();
    let mount_a = mount_as(&env, &emu, &a);
    let mount_b = mount_as(&env, &emu, &b);
    // B sees the folder in their root, lists and reads it, and sees it read-only.
    assert_eq!(std::fs::read_to_string(mount_b.p("Team/plan.txt")).unwrap(), "the plan\n");
    let names: Vec<String> =
        std::fs::read_dir(mount_b.p("Team")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, vec!["plan.txt"]);
    assert_eq!(common::cli::mode(&mount_b.p("Team")) & 0o222, 0, "a viewer's folder has no write bits");
    assert_eq!(common::cli::mode(&mount_b.p("Team/plan.txt")) & 0o222, 0);

    // A write into the viewer folder fails when it is made (not at upload time), with nothing staged.
    let err = std::fs::write(mount_b.p("Team/new.txt"), b"from B\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = std::fs::write(mount_b.p("Team/plan.txt"), b"changed").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let err = std::fs::remove_file(mount_b.p("Team/plan.txt")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let err = std::fs::rename(mount_b.p("Team/plan.txt"), mount_b.p("Team/renamed.txt")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(journal_records(mount_b.cache.path()), 0, "nothing journaled");
    assert!(!mount_b.p("Team/new.txt").exists());

    // A makes B an editor: within 2 s B's mount writes, and the file lands in A's folder.
    let changed = rt.block_on(call(
        &emu,
        &a,
        Method::PUT,
        &emu.api(&format!("/collaborations/{collab}")),
        json!({"role": "editor"}),
    ));
    assert_eq!(changed.0, 200, "{}", changed.1);
    wait_for("B may write after the role change", 2, || std::fs::write(mount_b.p("Team/new.txt"), b"from B\n").is_ok());
    wait_for("B's file is in A's folder in Box", 10, || {
        rt.block_on(emu.get(&emu.api(&format!("/folders/{shared}/items?fields=name")))).body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "new.txt")
    });
    wait_for("A's mount shows B's file", 2, || {
        std::fs::read_to_string(mount_a.p("Team/new.txt")).is_ok_and(|t| t == "from B\n")
    });
    // And back: A's change reaches B.
    std::fs::write(mount_a.p("Team/plan.txt"), b"the new plan\n").unwrap();
    wait_for("B sees A's change", 10, || {
        std::fs::read_to_string(mount_b.p("Team/plan.txt")).is_ok_and(|t| t == "the new plan\n")
    });
    assert_eq!(journal_records(mount_b.cache.path()), 0);
}

#[test]
fn a_previewer_cannot_read_and_an_uploader_can_create_but_not_list_or_read() {
    let Some((rt, emu)) = fuse_emulator(|c| c.users = 2) else { return };
    let a = person(&emu, boxfs_emulator::ADMIN_ID);
    let users = emu.store().users().unwrap();
    let id = |login: &str| users.iter().find(|u| u.login == login).unwrap().id.clone();
    let previewer = person(&emu, &id("user1@boxfs.invalid"));
    let uploader = person(&emu, &id("user2@boxfs.invalid"));
    let (preview, drop_box) = rt.block_on(async {
        let preview = emu.new_folder("0", "Preview").await;
        emu.new_file(&preview, "secret.pdf", b"content".to_vec()).await;
        let drop_box = emu.new_folder("0", "Inbox").await;
        emu.new_file(&drop_box, "others.txt", b"not yours".to_vec()).await;
        (preview, drop_box)
    });
    rt.block_on(share(&emu, &a, &preview, &previewer, "previewer"));
    rt.block_on(share(&emu, &a, &drop_box, &uploader, "uploader"));
    let env = CliEnv::new();

    let m = mount_as(&env, &emu, &previewer);
    let names: Vec<String> =
        std::fs::read_dir(m.p("Preview")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, vec!["secret.pdf"], "a previewer lists");
    assert_eq!(common::cli::mode(&m.p("Preview/secret.pdf")) & 0o444, 0, "no read bits without can_download");
    let err = std::fs::read(m.p("Preview/secret.pdf")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = std::fs::write(m.p("Preview/mine.txt"), b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    drop(m);

    let m = mount_as(&env, &emu, &uploader);
    std::fs::write(m.p("Inbox/report.txt"), b"my report\n").expect("an uploader creates files");
    let err = std::fs::read_dir(m.p("Inbox")).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "an uploader cannot list");
    assert_eq!(common::cli::mode(&m.p("Inbox")) & 0o444, 0, "the folder shows without read bits once refused");
    assert!(std::fs::read(m.p("Inbox/others.txt")).is_err(), "nor read what is there");
    wait_for("the uploader's file is in Box", 10, || {
        rt.block_on(emu.get(&emu.api(&format!("/folders/{drop_box}/items?fields=name")))).body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "report.txt")
    });
    assert_eq!(journal_records(m.cache.path()), 0);
}

#[test]
fn an_upload_refused_after_a_role_change_keeps_its_data_and_says_so() {
    let Some((rt, emu)) = fuse_emulator(|c| c.users = 1) else { return };
    let a = person(&emu, boxfs_emulator::ADMIN_ID);
    let b_id = emu.store().users().unwrap().into_iter().find(|u| u.login == "user1@boxfs.invalid").unwrap().id;
    let b = person(&emu, &b_id);
    let shared = rt.block_on(emu.new_folder("0", "Team"));
    let collab = rt.block_on(share(&emu, &a, &shared, &b, "editor"));
    let env = CliEnv::new();
    let (api, up) = (emu.api(""), emu.upload(""));
    let args = ["--api-url", api.as_str(), "--upload-url", up.as_str(), "--writeback-delay-ms", "3000"];
    let mount_b = env.mount_account("default", &args, &[("BOX_ACCESS_TOKEN", &b.token)]);
    std::fs::write(mount_b.p("Team/draft.txt"), b"written while an editor\n").unwrap();
    // Before the upload goes, A makes B a viewer: Box refuses it, the data stays.
    let changed = rt.block_on(call(
        &emu,
        &a,
        Method::PUT,
        &emu.api(&format!("/collaborations/{collab}")),
        json!({"role": "viewer"}),
    ));
    assert_eq!(changed.0, 200);
    let status = || {
        let out = env.run(&["status", mount_b.path().to_str().unwrap(), "--json"], "");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for("the refused upload is reported failed", 15, || status().contains("failed"));
    assert_eq!(journal_records(mount_b.cache.path()), 1, "its data and record stay in the journal");
    assert_eq!(std::fs::read_to_string(mount_b.p("Team/draft.txt")).unwrap(), "written while an editor\n");
    let in_box = rt.block_on(emu.get(&emu.api(&format!("/folders/{shared}/items?fields=name")))).body;
    assert_eq!(in_box["entries"].as_array().unwrap().len(), 0, "{in_box}");
}
