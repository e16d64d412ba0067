//! Box's shared links and locks from the shell, through a real mount of the emulator:
//! `setfattr`/`getfattr` on `user.box.shared_link` and `user.box.lock`, the `boxfs share`,
//! `boxfs lock` and `boxfs unlock` verbs, a file locked by another user refusing writes (and
//! the mount learning of locks through the event stream), and `-o lock_on_open` holding a
//! lock while a writer has the file open and releasing it once the upload landed.

mod common;

use common::cli::CliEnv;
use common::emu::{sha1_hex, TestEmulator};
use common::mount::{fuse_emulator, wait_for, Mounted};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn getfattr(path: &Path, name: &str) -> Output {
    Command::new("getfattr").args(["--only-values", "-n", name]).arg(path).output().expect("getfattr runs")
}

/// The attribute's value (`None` when `getfattr` fails, e.g. "No such attribute").
fn attr(path: &Path, name: &str) -> Option<String> {
    let out = getfattr(path, name);
    out.status.success().then(|| String::from_utf8(out.stdout).unwrap())
}

fn setfattr(args: &[&str], path: &Path) -> Output {
    Command::new("setfattr").args(args).arg(path).output().expect("setfattr runs")
}

fn boxfs(args: &[&str], path: &Path, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxfs"))
        .args(args)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("boxfs runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `boxfs ARGS PATH` on a terminal (`script` gives it a pseudo-terminal): `typed` is typed
/// once the program has asked with `prompt`. Returns everything the terminal showed. A
/// program that hangs is killed after 30 s (and the test fails).
fn boxfs_on_terminal(args: &[&str], path: &Path, prompt: &str, typed: &str) -> String {
    use std::io::Read;
    let mut line = vec![env!("CARGO_BIN_EXE_boxfs").to_string()];
    line.extend(args.iter().map(|a| a.to_string()));
    line.push(path.display().to_string());
    let mut child = Command::new("timeout")
        .args(["30", "script", "-qec", &line.join(" "), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut shown = Vec::new();
    let mut out = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&shown).contains(prompt) {
        assert_eq!(out.read(&mut byte).unwrap(), 1, "no prompt: {}", String::from_utf8_lossy(&shown));
        shown.push(byte[0]);
    }
    child.stdin.take().unwrap().write_all(typed.as_bytes()).unwrap();
    out.read_to_end(&mut shown).unwrap();
    assert!(child.wait().unwrap().success(), "failed: {}", String::from_utf8_lossy(&shown));
    String::from_utf8_lossy(&shown).into_owned()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap().trim_end().to_string()
}

/// The item a shared link opens, as Box's `GET /shared_items` resolves it: (type, id).
fn resolve(m: &Mounted, url: &str) -> (String, String) {
    let req = m.emu.authed(Method::GET, &m.emu.api("/shared_items")).header("boxapi", format!("shared_link={url}"));
    let r = m.rt.block_on(m.emu.send(req));
    assert_eq!(r.status, 200, "{}", r.body);
    (r.body["type"].as_str().unwrap().to_string(), r.body["id"].as_str().unwrap().to_string())
}

/// An item's `shared_link` and `lock` in Box.
fn sharing(emu: &TestEmulator, rt: &tokio::runtime::Runtime, kind: &str, id: &str) -> Value {
    let fields = if kind == "files" { "shared_link,lock" } else { "shared_link" };
    let r = rt.block_on(emu.get(&emu.api(&format!("/{kind}/{id}?fields={fields}"))));
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[test]
fn setfattr_creates_a_shared_link_the_emulator_resolves_and_x_removes_it() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let (file_id, folder_id) = rt.block_on(async {
        let folder = emu.new_folder("0", "Team").await;
        (emu.new_file("0", "report.pdf", b"%PDF report".to_vec()).await, folder)
    });
    let m = Mounted::start(rt, emu, &[]);
    let (file, folder) = (m.p("report.pdf"), m.p("Team"));

    std::fs::metadata(&file).unwrap();
    m.reset_stats();
    assert!(attr(&file, "user.box.id").is_some());
    assert_eq!(attr(&file, "user.box.shared_link"), None, "no link yet");
    assert_eq!(m.item_requests(), 1, "the link costs one GET when asked for, the id none");
    let out = setfattr(&["-n", "user.box.shared_link", "-v", "open"], &file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    m.reset_stats();
    let url = attr(&file, "user.box.shared_link").expect("the link");
    assert_eq!(m.item_requests(), 1, "getfattr's size probe and read cost one GET");
    assert_eq!(resolve(&m, &url), ("file".to_string(), file_id.clone()));
    // Anyone holding an open link sees its page, without a token.
    let page = m.rt.block_on(async { reqwest::get(&url).await.unwrap().status().as_u16() });
    assert_eq!(page, 200);
    assert_eq!(sharing(&m.emu, &m.rt, "files", &file_id)["shared_link"]["access"], "open");

    // Changing the access keeps the link; -x removes it.
    assert!(setfattr(&["-n", "user.box.shared_link", "-v", "company"], &file).status.success());
    assert_eq!(attr(&file, "user.box.shared_link").as_deref(), Some(url.as_str()));
    assert_eq!(sharing(&m.emu, &m.rt, "files", &file_id)["shared_link"]["access"], "company");
    assert!(setfattr(&["-x", "user.box.shared_link"], &file).status.success());
    let err = String::from_utf8(getfattr(&file, "user.box.shared_link").stderr).unwrap();
    assert!(err.contains("No such attribute"), "{err}");
    assert!(sharing(&m.emu, &m.rt, "files", &file_id)["shared_link"].is_null());

    // Folders too.
    assert!(setfattr(&["-n", "user.box.shared_link", "-v", "collaborators"], &folder).status.success());
    let folder_url = attr(&folder, "user.box.shared_link").unwrap();
    assert_eq!(resolve(&m, &folder_url), ("folder".to_string(), folder_id));

    // Refused: a value that is no access level, a password Box finds too weak, names that are
    // not settable.
    let bad = setfattr(&["-n", "user.box.shared_link", "-v", "everyone"], &file);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Invalid argument"), "{bad:?}");
    let weak = setfattr(&["-n", "user.box.shared_link", "-v", "open password=abc"], &file);
    assert!(String::from_utf8_lossy(&weak.stderr).contains("Invalid argument"), "{weak:?}");
    for name in ["user.box.id", "user.box.web_url", "user.comment"] {
        let out = setfattr(&["-n", name, "-v", "x"], &file);
        assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not supported"), "{name}: {out:?}");
    }
    let out = setfattr(&["-x", "user.box.sha1"], &file);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not supported"), "{out:?}");
}

#[test]
fn boxfs_share_lock_and_unlock_work_from_the_cli() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let file_id = rt.block_on(emu.new_file("0", "notes.txt", b"notes\n".to_vec()));
    let m = Mounted::start(rt, emu, &[]);
    let file = m.p("notes.txt");

    let url = stdout(&boxfs(&["share"], &file, ""));
    assert_eq!(resolve(&m, &url), ("file".to_string(), file_id.clone()));
    assert_eq!(stdout(&boxfs(&["share"], &file, "")), url, "an existing link is printed as it is");
    let changed = stdout(&boxfs(&["share", "--access", "company", "--expires", "2099-01-01"], &file, ""));
    assert_eq!(changed, url);
    let link = sharing(&m.emu, &m.rt, "files", &file_id)["shared_link"].clone();
    assert_eq!(link["access"], "company");
    assert!(link["unshared_at"].as_str().unwrap().starts_with("2099-01-01T00:00:00"), "{link}");
    // What is not given stays as it is.
    assert_eq!(stdout(&boxfs(&["share", "--expires", "2099-02-02"], &file, "")), url);
    let link = sharing(&m.emu, &m.rt, "files", &file_id)["shared_link"].clone();
    assert_eq!(link["access"], "company", "{link}");
    assert!(link["unshared_at"].as_str().unwrap().starts_with("2099-02-02T00:00:00"), "{link}");
    // The password comes from standard input, and is not printed.
    let out = boxfs(&["share", "--access", "open", "--password"], &file, "Secret-123\n");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Secret-123"));
    stdout(&out);
    assert_eq!(sharing(&m.emu, &m.rt, "files", &file_id)["shared_link"]["is_password_enabled"], true);
    // On a terminal it is asked for, and not echoed.
    let other_id = m.rt.block_on(m.emu.new_file("0", "other.txt", b"other\n".to_vec()));
    let shown = boxfs_on_terminal(&["share", "--password"], &m.p("other.txt"), "Link password:", "Other-456\n");
    assert!(!shown.contains("Other-456"), "the password was shown: {shown}");
    assert_eq!(sharing(&m.emu, &m.rt, "files", &other_id)["shared_link"]["is_password_enabled"], true);

    let admin = m.emu.store().users().unwrap().into_iter().find(|u| u.id == boxfs_emulator::ADMIN_ID).unwrap();
    let shown = stdout(&boxfs(&["lock", "--expires", "2099-01-01"], &file, ""));
    assert_eq!(shown, format!("locked by {} <{}> until 2099-01-01T00:00:00Z", admin.name, admin.login));
    let lock = sharing(&m.emu, &m.rt, "files", &file_id)["lock"].clone();
    assert_eq!(lock["created_by"]["id"], boxfs_emulator::ADMIN_ID, "{lock}");
    assert_eq!(attr(&file, "user.box.lock").as_deref(), Some(shown.as_str()));
    // Our own lock does not stop us writing.
    std::fs::write(&file, b"notes, locked\n").unwrap();
    stdout(&boxfs(&["unlock"], &file, ""));
    assert!(sharing(&m.emu, &m.rt, "files", &file_id)["lock"].is_null());
    assert_eq!(attr(&file, "user.box.lock"), None);

    // Outside a mount, nothing happens.
    let elsewhere = tempfile::NamedTempFile::new().unwrap();
    let out = boxfs(&["share"], elsewhere.path(), "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in a boxfs mount"));
    // A folder cannot be locked.
    let folder = m.p("Team");
    std::fs::create_dir(&folder).unwrap();
    let out = boxfs(&["lock"], &folder, "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("locks for files"), "{out:?}");
}

/// A user of the emulator with a token of their own.
struct Person {
    id: String,
    token: String,
}

fn person(emu: &TestEmulator, id: &str) -> Person {
    Person { id: id.to_string(), token: emu.running.state.developer_token_for(id).unwrap() }
}

async fn call(emu: &TestEmulator, who: &Person, method: Method, url: &str, body: Value) -> (u16, Value) {
    let r = emu.send(emu.http.request(method, url).bearer_auth(&who.token).json(&body)).await;
    (r.status.as_u16(), r.body)
}

#[test]
fn a_file_locked_by_another_user_refuses_writes_and_the_mount_follows_lock_changes() {
    let Some((rt, emu)) = fuse_emulator(|c| c.users = 1) else { return };
    let a = person(&emu, boxfs_emulator::ADMIN_ID);
    let b_user = emu.store().users().unwrap().into_iter().find(|u| u.login == "user1@boxfs.invalid").unwrap();
    let b = person(&emu, &b_user.id);
    let (folder, file_id) = rt.block_on(async {
        let folder = emu.new_folder("0", "Team").await;
        (folder.clone(), emu.new_file(&folder, "plan.txt", b"the plan\n".to_vec()).await)
    });
    let lock_url = emu.api(&format!("/files/{file_id}"));
    rt.block_on(async {
        let body = json!({"item": {"type": "folder", "id": folder}, "accessible_by": {"type": "user", "id": b.id},
            "role": "editor"});
        assert_eq!(call(&emu, &a, Method::POST, &emu.api("/collaborations"), body).await.0, 201);
        let (status, r) = call(&emu, &b, Method::PUT, &lock_url, json!({"lock": {"access": "lock"}})).await;
        assert_eq!(status, 200, "{r}");
    });

    let env = CliEnv::new();
    let (api, up) = (emu.api(""), emu.upload(""));
    let args = ["--api-url", api.as_str(), "--upload-url", up.as_str(), "--writeback-delay-ms", "0"];
    let envs = [("BOX_ACCESS_TOKEN", a.token.as_str()), ("RUST_LOG", "debug")];
    let m = env.mount_account("default", &args, &envs);
    let plan = m.p("Team/plan.txt");

    // Read: fine. Write: refused when opened, with a log line naming the holder.
    assert_eq!(std::fs::read_to_string(&plan).unwrap(), "the plan\n");
    let err = std::fs::write(&plan, b"mine now\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = std::fs::OpenOptions::new().append(true).open(&plan).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let log = m.log_text();
    assert!(log.contains("locked in Box") && log.contains(&b_user.login), "{log}");
    let shown = attr(&plan, "user.box.lock").unwrap();
    assert_eq!(shown, format!("locked by {} <{}>, no expiry", b_user.name, b_user.login));
    let listed = String::from_utf8(Command::new("getfattr").arg("-d").arg(&plan).output().unwrap().stdout).unwrap();
    assert!(listed.contains("user.box.lock="), "{listed}");
    // Unlocking someone else's lock is theirs to do.
    let out = setfattr(&["-x", "user.box.lock"], &plan);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"), "{out:?}");

    // Link passwords never reach the log, at debug level either, accepted or refused.
    let team = m.p("Team");
    assert!(setfattr(&["-n", "user.box.shared_link", "-v", "open password=Folder-Pass-42"], &team).status.success());
    assert!(!setfattr(&["-n", "user.box.shared_link", "-v", "open password=weakling"], &team).status.success());
    let log = m.log_text();
    assert!(log.contains("DEBUG") && log.contains("Box refused the shared link"), "debug logs, and the refusal");
    assert!(!log.contains("Folder-Pass-42") && !log.contains("weakling"), "a password in the log");

    // B unlocks in Box: the event stream tells the mount, and A may write.
    rt.block_on(call(&emu, &b, Method::PUT, &lock_url, json!({"lock": null})));
    wait_for("A may write once B unlocked", 5, || std::fs::write(&plan, b"A's plan\n").is_ok());
    wait_for("A's version is in Box", 10, || {
        let r = rt.block_on(emu.get(&emu.api(&format!("/files/{file_id}?fields=sha1"))));
        r.body["sha1"] == sha1_hex(b"A's plan\n")
    });
    // B locks again: refused again, learnt from the event stream.
    rt.block_on(async {
        let (status, r) = call(&emu, &b, Method::PUT, &lock_url, json!({"lock": {"access": "lock"}})).await;
        assert_eq!(status, 200, "{r}");
    });
    wait_for("A is refused again once B locked", 5, || {
        std::fs::OpenOptions::new().write(true).open(&plan).is_err_and(|e| e.kind() == ErrorKind::PermissionDenied)
    });
}

#[test]
fn lock_on_open_holds_the_lock_while_a_writer_has_the_file_and_releases_it_after_the_upload() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let file_id = rt.block_on(emu.new_file("0", "doc.txt", b"first\n".to_vec()));
    let m = Mounted::start(rt, emu, &["-o", "lock_on_open", "--writeback-delay-ms", "0"]);
    let lock = || sharing(&m.emu, &m.rt, "files", &file_id)["lock"].clone();

    // Reading takes no lock.
    assert_eq!(std::fs::read_to_string(m.p("doc.txt")).unwrap(), "first\n");
    assert!(lock().is_null());

    let mut writer = std::fs::OpenOptions::new().write(true).truncate(true).open(m.p("doc.txt")).unwrap();
    let held = lock();
    assert_eq!(held["created_by"]["id"], boxfs_emulator::ADMIN_ID, "{held}");
    writer.write_all(b"second\n").unwrap();
    writer.flush().unwrap();
    assert!(!lock().is_null(), "still open: still locked");
    drop(writer);

    wait_for("the upload landed and the lock is gone", 10, || {
        let r = m.rt.block_on(m.emu.get(&m.emu.api(&format!("/files/{file_id}?fields=sha1,lock"))));
        r.body["sha1"] == sha1_hex(b"second\n") && r.body["lock"].is_null()
    });
    let names: Vec<String> = m.box_files("0").into_keys().collect();
    assert_eq!(names, vec!["doc.txt"], "the holder's upload is a new version, not a conflicted copy");
    assert_eq!(std::fs::read_to_string(m.p("doc.txt")).unwrap(), "second\n");
}

#[test]
fn lock_on_open_releases_its_locks_when_the_mount_stops() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let file_id = rt.block_on(emu.new_file("0", "doc.txt", b"first\n".to_vec()));
    // The upload waits a minute after the close: it is still pending when the mount stops.
    let mut m = Mounted::start(rt, emu, &["--lock-on-open", "--writeback-delay-ms", "60000"]);
    std::fs::write(m.p("doc.txt"), b"second\n").unwrap();
    assert!(!sharing(&m.emu, &m.rt, "files", &file_id)["lock"].is_null(), "locked while pending");
    m.unmount();
    let r = m.rt.block_on(m.emu.get(&m.emu.api(&format!("/files/{file_id}?fields=sha1,lock"))));
    assert_eq!(r.body["sha1"], sha1_hex(b"second\n"), "the upload drained");
    assert!(r.body["lock"].is_null(), "no lock outlives the mount: {}", r.body);
}
