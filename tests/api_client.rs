//! The API client against the emulator over 127.0.0.1: correct under injected faults (no
//! duplicates, byte-exact), one refresh for many concurrent expired calls, session resume,
//! live events, staying under Box's rate limits, and typed errors.

mod common;

use boxfs_api::model::EventKind;
use boxfs_api::{
    ApiConfig, ApiError, AuthMode, Client, Fetched, RetryPolicy, StartAt, StoredTokens, StreamState, TokenSource,
    UploadOptions, UploadTarget,
};
use boxfs_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use common::emu::{bytes, sha1_hex, TestEmulator};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Fast retries for tests (the emulator's injected 429s say `Retry-After: 0`); request budgets
/// in the emulator's temp dir.
fn test_config(emu: &TestEmulator) -> ApiConfig {
    let mut cfg = ApiConfig::with_urls(&emu.api(""), &emu.upload(""));
    cfg.budget.dir = emu.dir.path().join("budgets");
    cfg.retry = RetryPolicy {
        max_attempts: 40,
        max_total: Duration::from_secs(120),
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(200),
    };
    cfg
}

fn fixed_client(emu: &TestEmulator) -> Client {
    Client::new(test_config(emu), TokenSource::new(AuthMode::Fixed(emu.token.clone())).unwrap()).unwrap()
}

fn oauth_client(emu: &TestEmulator, token_file: &Path) -> Client {
    let mode = AuthMode::OAuth {
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret: DEFAULT_CLIENT_SECRET.into(),
        token_file: token_file.to_path_buf(),
    };
    Client::new(test_config(emu), TokenSource::new(mode).unwrap()).unwrap()
}

/// Runs the emulator's authorization-code flow and returns the token pair.
async fn oauth_login(emu: &TestEmulator) -> StoredTokens {
    let authorize = format!(
        "{}/oauth2/authorize?response_type=code&client_id={DEFAULT_CLIENT_ID}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=x",
        emu.base()
    );
    let r = emu.http.get(&authorize).send().await.unwrap();
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ];
    let t: Value =
        emu.http.post(format!("{}/oauth2/token", emu.base())).form(&form).send().await.unwrap().json().await.unwrap();
    StoredTokens {
        access_token: t["access_token"].as_str().unwrap().into(),
        refresh_token: t["refresh_token"].as_str().map(str::to_string),
        expires_at: chrono::Utc::now().timestamp() as f64 + 3600.0,
        lifetime: 3600.0,
    }
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_succeeds_byte_exact_under_faults_without_duplicates() {
    let emu = TestEmulator::start_with(|c| c.part_size = Some(1024 * 1024)).await;
    let store = emu.store();
    let big = store.create_folder(boxfs_emulator::ADMIN_ID, 0, "listing").unwrap().id;
    let blob = store.blobs().put_bytes(b"x").unwrap();
    for i in 0..2500 {
        let nf = boxfs_emulator::store::NewFile {
            parent_id: big,
            name: format!("item {i:04}"),
            blob: blob.clone(),
            content_created_at: None,
            content_modified_at: None,
        };
        store.create_file(boxfs_emulator::ADMIN_ID, nf).unwrap();
    }
    let download_me = emu.new_file("0", "download.bin", bytes(7, 3_000_000)).await;
    emu.set_faults("429=0.1,500=0.05,reset=0.05,reset_after=0.03,seed=11,retry_after=0").await;
    let client = fixed_client(&emu);
    let tmp = tempfile::tempdir().unwrap();

    let listed = client.list_folder(&big.to_string()).await.expect("listing under faults");
    assert_eq!(listed.len(), 2500);
    assert_eq!(listed.iter().map(|i| i.id().to_string()).collect::<HashSet<_>>().len(), 2500);

    let mut sink = Vec::new();
    let (n, sha1) = client.download_to(&download_me, None, &mut sink).await.expect("download under faults");
    assert_eq!((n, sha1), (3_000_000, sha1_hex(&bytes(7, 3_000_000))));
    let part = client.read_range(&download_me, None, 1_000_000, 4096).await.unwrap();
    assert_eq!(part, &bytes(7, 3_000_000)[1_000_000..1_004_096]);

    let folder = client.create_folder("0", "uploads").await.expect("mkdir under faults");
    let folder_id = folder.common.id.clone();
    let mut expected = Vec::new();
    for i in 0..12u64 {
        let data = bytes(100 + i, 1000 + (i as usize) * 3000);
        let path = write_file(tmp.path(), &format!("small{i}"), &data);
        let name = format!("small {i}.bin");
        let f = client
            .upload(UploadTarget::NewFile { parent_id: &folder_id, name: &name }, &path, &UploadOptions::default())
            .await
            .expect("direct upload under faults");
        assert_eq!(f.sha1.as_deref(), Some(sha1_hex(&data).as_str()));
        expected.push((name, sha1_hex(&data)));
    }
    let mut cfg_small_cutoff = test_config(&emu);
    cfg_small_cutoff.upload_cutoff = 1024 * 1024;
    let session_client =
        Client::new(cfg_small_cutoff, TokenSource::new(AuthMode::Fixed(emu.token.clone())).unwrap()).unwrap();
    for (i, mb) in [30usize, 45, 60].into_iter().enumerate() {
        let data = bytes(200 + i as u64, mb * 1000 * 1000 + i);
        let path = write_file(tmp.path(), &format!("big{i}"), &data);
        let name = format!("big {i}.bin");
        let f = session_client
            .upload(UploadTarget::NewFile { parent_id: &folder_id, name: &name }, &path, &UploadOptions::default())
            .await
            .expect("session upload under faults");
        assert_eq!(f.sha1.as_deref(), Some(sha1_hex(&data).as_str()), "{name}");
        expected.push((name, sha1_hex(&data)));
    }
    // A new version with if-match: a landed-but-unseen attempt must not become two versions.
    let first = &expected[0];
    let target_id = client
        .list_folder(&folder_id)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name() == first.0)
        .unwrap()
        .id()
        .to_string();
    let Fetched::Modified(current) = client.get_file(&target_id, None).await.unwrap() else { panic!("no etag sent") };
    let v2 = bytes(999, 5000);
    let p2 = write_file(tmp.path(), "v2", &v2);
    let etag = current.common.etag.clone();
    let target = UploadTarget::NewVersion { file_id: &target_id, name: None, if_match: etag.as_deref() };
    let f = client.upload(target, &p2, &UploadOptions::default()).await.expect("new version under faults");
    assert_eq!(f.sha1.as_deref(), Some(sha1_hex(&v2).as_str()));
    expected[0].1 = sha1_hex(&v2);

    emu.set_faults("").await;
    let check = fixed_client(&emu);
    let entries = check.list_folder(&folder_id).await.unwrap();
    let got: Vec<(String, String)> = entries
        .iter()
        .map(|i| match i {
            boxfs_api::model::Item::File(f) => (f.common.name.clone(), f.sha1.clone().unwrap()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, expected_sorted, "exactly the uploaded files, byte-exact, no duplicates");
    let versions = emu.get(&emu.api(&format!("/files/{target_id}/versions"))).await.body;
    assert_eq!(versions["total_count"], 1, "one new version, not two");
    let root_names: Vec<String> = check.list_folder("0").await.unwrap().iter().map(|i| i.name().to_string()).collect();
    assert_eq!(root_names.iter().filter(|n| *n == "uploads").count(), 1, "one folder created");
    for (name, sha1) in &expected {
        let id = entries.iter().find(|i| i.name() == name).unwrap().id().to_string();
        let mut out = Vec::new();
        let (_, got) = check.download_to(&id, None, &mut out).await.unwrap();
        assert_eq!(&got, sha1, "{name} reads back byte-exact");
    }
    let stats = emu.stats().await;
    assert!(
        stats["faults_injected"]["reset_after"].as_u64().unwrap_or(0) > 0,
        "the test really injected faults: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_expired_calls_cause_one_refresh() {
    let emu = TestEmulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("tokens.json");
    let original = oauth_login(&emu).await;
    original.save_atomic(&token_file).unwrap();
    let client = oauth_client(&emu, &token_file);
    client.me().await.unwrap();
    emu.http.post(format!("{}/_emulator/expire-tokens", emu.base())).send().await.unwrap();
    emu.http.delete(format!("{}/_emulator/stats", emu.base())).send().await.unwrap();

    let calls: Vec<_> = (0..100)
        .map(|_| {
            tokio::spawn({
                let c = client.clone();
                async move { c.me().await }
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every call succeeds after the refresh");
    }
    let stats = emu.stats().await;
    assert_eq!(stats["token_grants"]["refresh_token"], 1, "exactly one refresh: {stats}");
    let saved = StoredTokens::load(&token_file).unwrap();
    assert_ne!(saved.access_token, original.access_token);
    assert_ne!(saved.refresh_token, original.refresh_token);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    // The saved pair is the one in use.
    let r = emu.http.get(emu.api("/users/me")).bearer_auth(&saved.access_token).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // The burned refresh token cannot come back: "log in again", not an endless retry.
    let stale_file = dir.path().join("stale.json");
    original.save_atomic(&stale_file).unwrap();
    let stale = oauth_client(&emu, &stale_file);
    let err = stale.me().await.unwrap_err();
    assert!(matches!(err, ApiError::LoginRequired), "{err:?}");
    // ... and the refused refresh token is not sent again.
    assert!(matches!(stale.me().await.unwrap_err(), ApiError::LoginRequired));
    let stats = emu.stats().await;
    assert_eq!(stats["token_grants"]["refresh_token"], 2, "{stats}");
    assert_eq!(stats["token_errors"]["invalid_grant"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_one_token_file_refresh_once_and_follow_each_other() {
    let emu = TestEmulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("tokens.json");
    oauth_login(&emu).await.save_atomic(&token_file).unwrap();
    // Two token sources on one file behave as two processes: each has its own lock file handle.
    let (a, b) = (oauth_client(&emu, &token_file), oauth_client(&emu, &token_file));
    emu.http.post(format!("{}/_emulator/expire-tokens", emu.base())).send().await.unwrap();
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let c = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { c.me().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every call succeeds");
    }
    assert_eq!(emu.stats().await["token_grants"]["refresh_token"], 1, "one refresh for both");
    assert!(!dir.path().read_dir().unwrap().flatten().any(|e| e.file_name().to_string_lossy().contains(".tmp")));

    // A pair written by someone else (a new login) is used at once, without a refresh.
    let renewed = StoredTokens::load(&token_file).unwrap();
    let fresh = oauth_login(&emu).await;
    fresh.save_atomic(&token_file).unwrap();
    for token in [&renewed.access_token, renewed.refresh_token.as_ref().unwrap()] {
        let form = [("client_id", DEFAULT_CLIENT_ID), ("client_secret", DEFAULT_CLIENT_SECRET), ("token", token)];
        emu.http.post(format!("{}/oauth2/revoke", emu.base())).form(&form).send().await.unwrap();
    }
    emu.http.delete(format!("{}/_emulator/stats", emu.base())).send().await.unwrap();
    a.me().await.unwrap();
    b.me().await.unwrap();
    let stats = emu.stats().await;
    assert!(stats["statuses"].get("401").is_none() && stats["token_grants"].get("refresh_token").is_none(), "{stats}");

    // Both clients count against one budget.
    let used = a.budget_use().await;
    assert!(used.requests_last_minute >= 42, "{used:?}");
    assert_eq!(used, b.budget_use().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_session_resumes_with_only_the_missing_parts() {
    let emu = TestEmulator::start_with(|c| c.part_size = Some(1024 * 1024)).await;
    let client = fixed_client(&emu);
    let tmp = tempfile::tempdir().unwrap();
    let data = bytes(5, 10 * 1024 * 1024 + 100);
    let path = write_file(tmp.path(), "resume.bin", &data);
    let target = UploadTarget::NewFile { parent_id: "0", name: "resume.bin" };
    let session = client.create_session(target, data.len() as u64).await.unwrap();
    assert_eq!(session.total_parts, 11);
    // Four parts made it before the "crash" (sent by hand here).
    use base64::Engine;
    use sha1::Digest;
    let part = 1024 * 1024;
    for i in [0usize, 1, 5, 10] {
        let chunk = &data[i * part..((i + 1) * part).min(data.len())];
        let digest = format!("sha={}", base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(chunk)));
        let range = format!("bytes {}-{}/{}", i * part, i * part + chunk.len() - 1, data.len());
        let r = emu
            .send(
                emu.authed(Method::PUT, &session.session_endpoints.upload_part)
                    .header("content-range", range)
                    .header("digest", digest)
                    .body(chunk.to_vec()),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    emu.http.delete(format!("{}/_emulator/stats", emu.base())).send().await.unwrap();
    let f = client.resume_session(&session.id, target, &path, &UploadOptions::default()).await.unwrap();
    assert_eq!(f.sha1.as_deref(), Some(sha1_hex(&data).as_str()));
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["PUT /api/2.0/files/upload_sessions/{sid}"], 7, "only the 7 missing parts: {stats}");
    assert_eq!(stats["requests"]["POST /api/2.0/files/upload_sessions/{sid}/commit"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_202_and_session_fault_paths() {
    let emu = TestEmulator::start_with(|c| c.part_size = Some(1024 * 1024)).await;
    let mut cfg = test_config(&emu);
    cfg.upload_cutoff = 1024 * 1024;
    let client = Client::new(cfg, TokenSource::new(AuthMode::Fixed(emu.token.clone())).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = bytes(8, 3 * 1024 * 1024 + 5);
    let path = write_file(tmp.path(), "c.bin", &data);
    emu.set_faults("commit202=0.7,seed=3,retry_after=0").await;
    let created = std::sync::Mutex::new(None);
    let f = client
        .upload_via_session(
            UploadTarget::NewFile { parent_id: "0", name: "c.bin" },
            &path,
            &UploadOptions::default(),
            &|s| *created.lock().unwrap() = Some(s.id.clone()),
        )
        .await
        .unwrap();
    assert_eq!(f.sha1.as_deref(), Some(sha1_hex(&data).as_str()));
    assert!(created.lock().unwrap().is_some(), "the caller saw the session id first");
    assert!(emu.stats().await["faults_injected"]["commit202"].as_u64().unwrap() > 0);
    // A fatal error (name taken) aborts the session instead of leaving it behind.
    emu.set_faults("").await;
    let err = client
        .upload_via_session(
            UploadTarget::NewFile { parent_id: "0", name: "C.BIN" },
            &path,
            &UploadOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::NameConflict { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_delivers_a_remote_change_within_a_second() {
    let emu = TestEmulator::start_with(|c| c.longpoll_timeout = Duration::from_secs(3)).await;
    let client = fixed_client(&emu);
    let mut stream = client.event_stream(StartAt::Now);
    // (The watch guard must not be held: it would block the stream's state updates.)
    let live = tokio::time::timeout(Duration::from_secs(5), stream.state.wait_for(|s| *s == StreamState::Live))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(live, "stream goes live");
    // Let it reach the long-poll (and survive one reconnect round).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let changed_at = Instant::now();
    let id = emu.new_folder("0", "made elsewhere").await;
    let batch = tokio::time::timeout(Duration::from_secs(1), stream.batches.recv()).await.expect("within 1 s").unwrap();
    let latency = changed_at.elapsed();
    let ev = &batch.events[0];
    assert_eq!(ev.event_type, EventKind::ItemCreate);
    assert_eq!(ev.item().unwrap().id(), id);
    eprintln!("event latency {latency:?}");
    // Later changes keep coming, after the long-poll's reconnect timeout too.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    emu.json(Method::PUT, &emu.api(&format!("/folders/{id}")), json!({"name": "renamed elsewhere"})).await;
    let batch =
        tokio::time::timeout(Duration::from_secs(2), stream.batches.recv()).await.expect("after reconnect").unwrap();
    assert_eq!(batch.events[0].event_type, EventKind::ItemRename);
    // Resuming from a stored position replays what came after it.
    let mut again = client.event_stream(StartAt::Position("0".into()));
    let replay = tokio::time::timeout(Duration::from_secs(2), again.batches.recv()).await.unwrap().unwrap();
    let kinds: Vec<&str> = replay.events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["ITEM_CREATE", "ITEM_RENAME"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_hundred_calls_stay_under_box_rate_limits() {
    let emu = TestEmulator::start_with(|c| c.rate_limits = true).await;
    // The default budget: Box's documented 1000 requests/min.
    let mut cfg = ApiConfig::with_urls(&emu.api(""), &emu.upload(""));
    cfg.budget.dir = emu.dir.path().join("budgets");
    let client = Client::new(cfg, TokenSource::new(AuthMode::Fixed(emu.token.clone())).unwrap()).unwrap();
    let calls: Vec<_> = (0..1500)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.me().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("no error surfaced");
    }
    let stats = emu.stats().await;
    let limited = stats["rate_limited"].as_u64().unwrap();
    // Requests the server refused with 429 were retried: 1,500 got through.
    assert_eq!(stats["requests"]["GET /2.0/users/me"].as_u64().unwrap() - limited, 1500, "{stats}");
    assert!(stats["rate_limited"].as_u64().unwrap() <= 20, "the budget keeps us (almost) off 429s: {stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_distinct_and_typed() {
    let emu = TestEmulator::start_with(|c| c.space_amount = 10_000).await;
    let client = fixed_client(&emu);
    let tmp = tempfile::tempdir().unwrap();
    let err = client.get_file("999999999", None).await.unwrap_err();
    assert!(matches!(err, ApiError::NotFound { .. }), "{err:?}");
    client.create_folder("0", "Taken").await.unwrap();
    let err = client.create_folder("0", "taken").await.unwrap_err();
    assert!(matches!(&err, ApiError::NameConflict { conflicts } if conflicts.len() == 1), "{err:?}");
    let p = write_file(tmp.path(), "a", b"abc");
    let f = client
        .upload(UploadTarget::NewFile { parent_id: "0", name: "a.txt" }, &p, &UploadOptions::default())
        .await
        .unwrap();
    let err = client.update_file(&f.common.id, Some("b.txt"), None, Some("12345")).await.unwrap_err();
    assert!(matches!(err, ApiError::PreconditionFailed), "{err:?}");
    let big = write_file(tmp.path(), "big", &bytes(1, 20_000));
    let err = client
        .upload(UploadTarget::NewFile { parent_id: "0", name: "big" }, &big, &UploadOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::QuotaExceeded), "{err:?}");
    let err = client.create_folder("0", "bad/name").await.unwrap_err();
    assert!(matches!(err, ApiError::InvalidName { .. }), "{err:?}");
    emu.set_faults("403=1").await;
    let err = client.me().await.unwrap_err();
    assert!(matches!(err, ApiError::Forbidden { .. }), "{err:?}");
    emu.set_faults("503=1,retry_after=0").await;
    let err = client.me().await.unwrap_err();
    assert!(matches!(err, ApiError::RetriesExhausted { .. }) && err.root().is_transient(), "{err:?}");
    emu.set_faults("").await;
    let fixed =
        Client::new(test_config(&emu), TokenSource::new(AuthMode::Fixed("not-a-token".into())).unwrap()).unwrap();
    assert!(matches!(fixed.me().await.unwrap_err(), ApiError::Unauthorized));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_are_requested_and_renewed() {
    let emu = TestEmulator::start().await;
    let mode = AuthMode::ClientCredentials {
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret: DEFAULT_CLIENT_SECRET.into(),
        subject_type: boxfs_api::SubjectType::Enterprise,
        subject_id: boxfs_emulator::ENTERPRISE_ID.into(),
    };
    let client = Client::new(test_config(&emu), TokenSource::new(mode.clone()).unwrap()).unwrap();
    client.me().await.expect("a token is granted on first use");
    emu.http.post(format!("{}/_emulator/expire-tokens", emu.base())).send().await.unwrap();
    client.me().await.expect("a new token is granted after expiry");
    assert_eq!(emu.stats().await["token_grants"]["client_credentials"], 2);
    // Another process of the same subject has a token of its own and shares the budget.
    let other = Client::new(test_config(&emu), TokenSource::new(mode).unwrap()).unwrap();
    other.me().await.unwrap();
    assert_eq!(emu.stats().await["token_grants"]["client_credentials"], 3);
    let sent = |c: &Client| c.counters().requests.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(client.budget_use().await.requests_last_minute, sent(&client) + sent(&other));
    let bad = AuthMode::ClientCredentials {
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret: "wrong".into(),
        subject_type: boxfs_api::SubjectType::User,
        subject_id: "1".into(),
    };
    let client = Client::new(test_config(&emu), TokenSource::new(bad).unwrap()).unwrap();
    assert!(matches!(client.me().await.unwrap_err(), ApiError::Config(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_trash_restore_and_purge_are_typed_calls() {
    let emu = TestEmulator::start().await;
    let client = fixed_client(&emu);
    let folder = emu.new_folder("0", "keep").await;
    let file_id = emu.new_file(&folder, "a.txt", b"one".to_vec()).await;
    let tmp = tempfile::tempdir().unwrap();
    for (i, content) in [&b"two!"[..], b"three"].into_iter().enumerate() {
        let path = write_file(tmp.path(), &format!("v{i}"), content);
        let target = UploadTarget::NewVersion { file_id: &file_id, name: None, if_match: None };
        client.upload(target, &path, &UploadOptions::default()).await.unwrap();
    }
    let versions = client.file_versions(&file_id).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.size).collect::<Vec<_>>(), [4, 3], "older versions, newest first");
    assert!(versions.iter().all(|v| v.created_at.is_some() && v.trashed_at.is_none()));
    let old = client.read_range(&file_id, Some(&versions[1].id), 0, 3).await.unwrap();
    assert_eq!(old, b"one");

    client.delete_folder(&folder, true, None).await.unwrap();
    let trashed = client.trash_items().await.unwrap();
    assert_eq!(trashed.iter().map(|i| i.id()).collect::<Vec<_>>(), [folder.as_str()]);
    assert_eq!(trashed[0].common().parent.as_ref().map(|p| p.id.as_str()), Some("0"), "where it was");
    let back = client.restore_folder(&folder, Some("kept"), Some("0")).await.unwrap();
    assert_eq!((back.common.id.as_str(), back.common.name.as_str()), (folder.as_str(), "kept"));
    assert!(client.trash_items().await.unwrap().is_empty());

    client.delete_file(&file_id, None).await.unwrap();
    client.purge_file(&file_id).await.unwrap();
    assert!(client.trash_items().await.unwrap().is_empty(), "purged: gone from the trash");
    assert!(matches!(client.restore_file(&file_id, None, None).await, Err(ApiError::NotFound { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_box_fails_calls_at_once_and_its_return_is_noticed() {
    let mut emu = TestEmulator::start().await;
    let client = fixed_client(&emu);
    client.me().await.unwrap();
    assert!(client.connection().is_online());

    emu.running.pause();
    let started = Instant::now();
    let err = client.me().await.unwrap_err();
    assert!(matches!(err, ApiError::Offline { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "found out in {:?}", started.elapsed());
    assert!(!client.connection().is_online());
    let before = client.counters().requests.load(std::sync::atomic::Ordering::Relaxed);
    let err = client.list_folder("0").await.unwrap_err();
    assert!(matches!(err, ApiError::Offline { .. }), "{err:?}");
    assert_eq!(client.counters().requests.load(std::sync::atomic::Ordering::Relaxed), before, "nothing sent");

    emu.running.resume().await.unwrap();
    tokio::time::timeout(Duration::from_secs(15), client.until_online()).await.expect("the probe notices Box is back");
    client.list_folder("0").await.expect("calls go through again");
}
