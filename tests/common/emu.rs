//! Test harness: an in-process emulator on 127.0.0.1:0 with its own temp data dir, and a thin
//! HTTP helper around reqwest. Everything stops when the value is dropped.

use boxfs_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

pub struct TestEmulator {
    pub running: RunningEmulator,
    pub token: String,
    pub http: reqwest::Client,
    /// Kept last so the dir outlives the server.
    pub dir: TempDir,
}

/// A response: status, headers and the body parsed as JSON (`Null` when empty or not JSON).
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestEmulator {
    pub async fn start() -> TestEmulator {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut EmulatorConfig)) -> TestEmulator {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = EmulatorConfig::new(dir.path().join("data"));
        configure(&mut config);
        Self::start_in(dir, config).await
    }

    /// Starts on an existing dir (for restart tests).
    pub async fn start_in(dir: TempDir, config: EmulatorConfig) -> TestEmulator {
        let emulator = Emulator::bind(config, false).await.expect("emulator binds");
        let token = emulator.state().developer_token().expect("token");
        let running = emulator.spawn();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestEmulator { running, token, http, dir }
    }

    /// Stops the server, keeping the data dir; returns it with the config to restart.
    pub fn stop(self) -> (TempDir, EmulatorConfig) {
        let config = self.running.state.config.clone();
        drop(self.running);
        (self.dir, config)
    }

    pub fn base(&self) -> &str {
        self.running.base_url()
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/2.0{path}", self.base())
    }

    pub fn upload(&self, path: &str) -> String {
        format!("{}/api/2.0{path}", self.base())
    }

    pub fn store(&self) -> &boxfs_emulator::Store {
        &self.running.state.store
    }

    pub fn authed(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url).bearer_auth(&self.token)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, headers, body }
    }

    pub async fn get(&self, url: &str) -> Resp {
        self.send(self.authed(Method::GET, url)).await
    }

    pub async fn json(&self, method: Method, url: &str, body: Value) -> Resp {
        self.send(self.authed(method, url).json(&body)).await
    }

    pub async fn delete(&self, url: &str) -> Resp {
        self.send(self.authed(Method::DELETE, url)).await
    }

    /// Direct multipart upload of a new file; returns the response.
    pub async fn upload_file(&self, parent: &str, name: &str, bytes: Vec<u8>) -> Resp {
        let attrs = serde_json::json!({"name": name, "parent": {"id": parent}}).to_string();
        let form = reqwest::multipart::Form::new()
            .text("attributes", attrs)
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()));
        self.send(self.authed(Method::POST, &self.upload("/files/content")).multipart(form)).await
    }

    /// Uploads a new file and returns its id (panics unless 201).
    pub async fn new_file(&self, parent: &str, name: &str, bytes: Vec<u8>) -> String {
        let r = self.upload_file(parent, name, bytes).await;
        assert_eq!(r.status, StatusCode::CREATED, "upload {name}: {}", r.body);
        r.body["entries"][0]["id"].as_str().expect("file id").to_string()
    }

    /// Creates a folder and returns its id (panics unless 201).
    pub async fn new_folder(&self, parent: &str, name: &str) -> String {
        let r = self
            .json(Method::POST, &self.api("/folders"), serde_json::json!({"name": name, "parent": {"id": parent}}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "create folder {name}: {}", r.body);
        r.body["id"].as_str().expect("folder id").to_string()
    }

    /// Downloads a file (following the 302 by hand, without the Authorization header).
    pub async fn download(
        &self,
        file_id: &str,
        range: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let r =
            self.authed(Method::GET, &self.api(&format!("/files/{file_id}/content"))).send().await.expect("download");
        assert_eq!(r.status(), StatusCode::FOUND, "download of {file_id} should redirect");
        let location = r.headers()["location"].to_str().expect("location").to_string();
        let mut req = self.http.get(location);
        if let Some(range) = range {
            req = req.header("range", range);
        }
        let resp = req.send().await.expect("download host");
        let status = resp.status();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.expect("bytes").to_vec())
    }

    pub async fn stats(&self) -> Value {
        self.http.get(format!("{}/_emulator/stats", self.base())).send().await.unwrap().json().await.unwrap()
    }

    pub async fn set_faults(&self, spec: &str) {
        let r = self.http.put(format!("{}/_emulator/faults", self.base())).body(spec.to_string()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(bytes))
}

/// The `Digest` header value Box wants for `data`: `sha=<base64 SHA-1>`.
pub fn sha_digest(data: &[u8]) -> String {
    use base64::Engine;
    use sha1::Digest;
    format!("sha={}", base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(data)))
}

/// Deterministic test bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    boxfs_emulator::seed::pattern_bytes(seed, len)
}
