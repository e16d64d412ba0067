//! `boxfs emulator` as a newcomer and a script run it: the three sourceable lines, the demo
//! seed listed with the printed token, loopback-only listening, clear errors, and state that
//! survives `kill -9`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `boxfs emulator` child process; killed on drop.
struct EmulatorProcess {
    child: Child,
    env: std::collections::HashMap<String, String>,
}

impl EmulatorProcess {
    fn start(args: &[&str]) -> EmulatorProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_boxfs"))
            .arg("emulator")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("boxfs emulator starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut env = std::collections::HashMap::new();
        for expected in ["BOX_API_URL", "BOX_UPLOAD_URL", "BOX_ACCESS_TOKEN"] {
            let line = lines.next().expect("a line").expect("utf-8 line");
            let (key, value) = line.split_once('=').expect("KEY=value");
            assert_eq!(key, expected, "stdout begins with the three sourceable lines");
            assert!(!value.is_empty() && !value.contains(' '));
            env.insert(key.to_string(), value.to_string());
        }
        EmulatorProcess { child, env }
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{path}", self.env["BOX_API_URL"]);
        let resp = http::get(&url, &self.env["BOX_ACCESS_TOKEN"]);
        serde_json::from_str(&resp).expect("JSON")
    }

    fn kill9(mut self) {
        // SAFETY: kill(2) on our own, still unreaped child process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Blocking HTTP calls over a fresh tokio runtime (keeps this file free of async plumbing).
mod http {
    pub fn get(url: &str, token: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let client = reqwest::Client::new();
            let resp = client.get(url).bearer_auth(token).send().await.expect("GET");
            assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
            resp.text().await.expect("body")
        })
    }

    pub fn upload(upload_url: &str, token: &str, name: &str, bytes: Vec<u8>) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let attrs = serde_json::json!({"name": name, "parent": {"id": "0"}}).to_string();
            let form = reqwest::multipart::Form::new()
                .text("attributes", attrs)
                .part("file", reqwest::multipart::Part::bytes(bytes));
            let resp = reqwest::Client::new()
                .post(format!("{upload_url}/files/content"))
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await
                .expect("upload");
            assert_eq!(resp.status().as_u16(), 201);
            resp.json().await.expect("json")
        })
    }
}

#[test]
fn demo_seed_is_listed_with_the_printed_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("x");
    let emu = EmulatorProcess::start(&["--seed", "demo", "--data", data.to_str().unwrap()]);
    assert!(emu.env["BOX_API_URL"].starts_with("http://127.0.0.1:") && emu.env["BOX_API_URL"].ends_with("/2.0"));
    assert!(emu.env["BOX_UPLOAD_URL"].ends_with("/api/2.0"));
    let root = emu.get("/folders/0/items");
    let names: Vec<&str> = root["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Documents", "Photos", "Projects", "Welcome to boxfs.txt", "Box website"]);
}

#[test]
fn state_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let emu = EmulatorProcess::start(&["--data", data.to_str().unwrap()]);
    let file =
        http::upload(&emu.env["BOX_UPLOAD_URL"], &emu.env["BOX_ACCESS_TOKEN"], "survivor.txt", b"still here".to_vec());
    let id = file["entries"][0]["id"].as_str().unwrap().to_string();
    emu.kill9();
    let emu = EmulatorProcess::start(&["--data", data.to_str().unwrap()]);
    let got = emu.get(&format!("/files/{id}"));
    assert_eq!(got["name"], "survivor.txt");
    assert_eq!(got["size"], 10);
}

#[test]
fn refuses_non_loopback_listen_and_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_boxfs"))
        .args(["emulator", "--data", &data, "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
    let out = Command::new(env!("CARGO_BIN_EXE_boxfs"))
        .args(["emulator", "--data", &data, "--faults", "429=5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("probability"));
}

#[test]
fn network_conditions_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let emu =
        EmulatorProcess::start(&["--data", data.to_str().unwrap(), "--latency", "120:10", "--bandwidth", "5000000"]);
    let t0 = std::time::Instant::now();
    emu.get("/folders/0/items");
    assert!(t0.elapsed() >= std::time::Duration::from_millis(110), "held {:?}", t0.elapsed());
    let base = emu.env["BOX_API_URL"].trim_end_matches("/2.0").to_string();
    let conditions: serde_json::Value =
        serde_json::from_str(&http::get(&format!("{base}/_emulator/network"), "")).unwrap();
    assert_eq!(conditions, serde_json::json!({"latency_ms": 120, "jitter_ms": 10, "bandwidth": 5_000_000}));
    for bad in [["--latency", "fast"], ["--latency", "10:20"], ["--bandwidth", "0"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_boxfs"))
            .args(["emulator", "--data", data.to_str().unwrap()])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains(bad[1]), "{bad:?}: the error names the value");
    }
}

#[test]
fn help_documents_every_emulator_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_boxfs")).args(["emulator", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--data",
        "--listen",
        "--allow-remote",
        "--seed",
        "--token-lifetime",
        "--faults",
        "--rate-limits",
        "--part-size",
        "--longpoll-timeout",
        "--session-lifetime",
        "--space-amount",
        "--latency",
        "--bandwidth",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[test]
fn whoami_uses_the_printed_environment() {
    let dir = tempfile::tempdir().unwrap();
    let emu = EmulatorProcess::start(&["--data", dir.path().join("d").to_str().unwrap()]);
    let out = Command::new(env!("CARGO_BIN_EXE_boxfs")).arg("whoami").envs(&emu.env).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Emulator User") && text.contains("storage: 0 B of 10.0 GiB used"), "{text}");
    assert!(!text.contains(&emu.env["BOX_ACCESS_TOKEN"]), "never print the token");
    let out = Command::new(env!("CARGO_BIN_EXE_boxfs"))
        .arg("whoami")
        .env_remove("BOX_ACCESS_TOKEN")
        .env("BOX_API_URL", &emu.env["BOX_API_URL"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not logged in"));
}
