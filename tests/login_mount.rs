//! A logged-in account mounted for real: `boxfs login` (browser flow against the emulator),
//! `boxfs mount --account` under a fake systemd (READY=1/STOPPING=1 on $NOTIFY_SOCKET), file
//! operations across a forced token refresh (the rotated pair is written back), a busy
//! mountpoint refused, the same account mounted through the `mount.boxfs` helper name with
//! `-o` options, logout — and, with `RUST_LOG=debug` throughout, no token or client secret in
//! any output or log.

mod common;

use common::cli::{browse, text, CliEnv, CLIENT_SECRET};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the daemon and lazily unmounts if the test ends early.
struct Guard {
    child: Option<Child>,
    mnt: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-uz").arg(&self.mnt).stderr(Stdio::null()).status();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in pids_with_arg(&self.mnt) {
            // SAFETY: kill(2) on a daemon this test started (found by its mountpoint argument).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Processes of this user whose command line has `arg` (the detached helper-started daemon).
fn pids_with_arg(arg: &Path) -> Vec<i32> {
    let wanted = arg.as_os_str().as_encoded_bytes().to_vec();
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == wanted))
        })
        .collect()
}

fn tokens(env: &CliEnv) -> Vec<String> {
    let path = env.config_dir().join("accounts/work.tokens.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    ["access_token", "refresh_token"].iter().filter_map(|k| v[k].as_str().map(String::from)).collect()
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn unmount(mnt: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Command::new("fusermount3").arg("-u").arg(mnt).status().unwrap().success() {
        assert!(Instant::now() < deadline, "fusermount3 -u keeps failing");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn login_mount_files_logout_without_leaking_secrets() {
    let Some((rt, emu)) = common::mount::fuse_emulator(|_| {}) else { return };
    let env = CliEnv::new();
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut secrets: Vec<String> = vec![CLIENT_SECRET.to_string()];

    let login = env.start_login(emu.base(), "work", &[]);
    assert_eq!(rt.block_on(browse(&login.url)).0, 200);
    let (ok, out, err) = login.finish();
    assert!(ok, "{out}{err}");
    outputs.push(("login".into(), out + &err));
    secrets.extend(tokens(&env));

    let mnt = tempfile::tempdir().unwrap();
    let log = env.home.path().join("logs/mount.log");
    let notify_path = env.home.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut child = env
        .cmd(&["mount", "--foreground", "--account", "work", "--fsync", "box", "--log-file", log.to_str().unwrap()])
        .arg(mnt.path())
        .env("RUST_LOG", "debug")
        .env("NOTIFY_SOCKET", &notify_path)
        .env("BOXFS_NOTIFY_READY", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let mut guard = Guard { child: Some(child), mnt: mnt.path().to_path_buf() };
    assert_eq!(recv(&notify), "READY=1");
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let busy = env.run(&["mount", "--foreground", "--account", "work", mnt.path().to_str().unwrap()], "");
    assert!(text(&busy).1.contains("already a mount point"), "{:?}", text(&busy));
    outputs.push(("busy mount".into(), format!("{:?}", text(&busy))));

    std::fs::write(mnt.path().join("hello.txt"), b"hello from boxfs").unwrap();
    assert_eq!(std::fs::read(mnt.path().join("hello.txt")).unwrap(), b"hello from boxfs");
    let before = tokens(&env);
    rt.block_on(emu.http.post(format!("{}/_emulator/expire-tokens", emu.base())).send()).unwrap();
    let mut f = std::fs::File::create(mnt.path().join("after-refresh.txt")).unwrap();
    f.write_all(b"written with a refreshed token").unwrap();
    f.sync_all().expect("fsync commits the upload (after refreshing the token)");
    drop(f);
    let after = tokens(&env);
    assert_ne!(before, after, "the rotated tokens were written back to the account");
    secrets.extend(after);
    let names: Vec<String> = std::fs::read_dir(mnt.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"hello.txt".to_string()) && names.contains(&"after-refresh.txt".to_string()), "{names:?}");

    unmount(mnt.path());
    let status = guard.child.take().unwrap().wait().unwrap();
    assert!(status.success(), "the daemon exits cleanly");
    assert_eq!(recv(&notify), "STOPPING=1");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    stderr.read_to_string(&mut rest).unwrap();
    outputs.push(("mount stdout/stderr".into(), rest));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("DEBUG"), "debug logging reached the --log-file");
    outputs.push(("mount --log-file".into(), log_text));

    // The same account through the mount(8) helper name, options as -o.
    let bin = env.home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_boxfs"), bin.join("mount.fuse.boxfs")).unwrap();
    let log2 = env.home.path().join("logs/helper.log");
    let opts = format!("rw,_netdev,metadata_ttl=30,log_file={}", log2.display());
    let helper = env
        .program(&bin.join("mount.fuse.boxfs"), &["work", mnt.path().to_str().unwrap(), "-n", "-o", &opts])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(helper.status.success(), "{:?}", text(&helper));
    outputs.push(("helper".into(), format!("{:?}", text(&helper))));
    assert_eq!(std::fs::read(mnt.path().join("hello.txt")).unwrap(), b"hello from boxfs");
    unmount(mnt.path());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !pids_with_arg(mnt.path()).is_empty() {
        assert!(Instant::now() < deadline, "the helper's daemon exits after unmount");
        std::thread::sleep(Duration::from_millis(100));
    }
    secrets.extend(tokens(&env));
    outputs.push(("helper log".into(), std::fs::read_to_string(&log2).unwrap()));
    if let Ok(default_log) = std::fs::read_to_string(env.cache_dir().join("mount.log")) {
        outputs.push(("default mount.log".into(), default_log));
    }

    let bye = env.run(&["logout", "--account", "work"], "");
    assert!(bye.status.success(), "{:?}", text(&bye));
    outputs.push(("logout".into(), format!("{:?}", text(&bye))));

    for (what, output) in &outputs {
        for secret in &secrets {
            assert!(!output.contains(secret.as_str()), "{what} printed a secret");
        }
    }
    drop(guard);
}
