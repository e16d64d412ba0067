//! `boxfs login`/`whoami`/`logout` against the emulator's OAuth endpoints, run as a user runs
//! them: the authorization-code flow with the test playing the browser (and a forged `state`
//! refused), client credentials, a developer token on stdin, logout revoking the tokens, clear
//! messages when not logged in or when the login expired, and config-file errors.

mod common;

use common::cli::{browse, mode, text, CliEnv, CLIENT_ID, CLIENT_SECRET};
use common::emu::TestEmulator;
use serde_json::Value;

fn emulator() -> (tokio::runtime::Runtime, TestEmulator) {
    common::mount::emulator(|_| {})
}

/// Status of `GET /users/me` with `token`.
fn me_status(rt: &tokio::runtime::Runtime, emu: &TestEmulator, token: &str) -> u16 {
    rt.block_on(async { emu.http.get(emu.api("/users/me")).bearer_auth(token).send().await.unwrap().status().as_u16() })
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn authorization_code_login_whoami_and_logout_revokes() {
    let (rt, emu) = emulator();
    let env = CliEnv::new();
    let login = env.start_login(emu.base(), "work", &[]);
    assert!(login.url.starts_with(&format!("{}/oauth2/authorize?", emu.base())), "{}", login.url);
    let (status, page) = rt.block_on(browse(&login.url));
    assert_eq!(status, 200, "the callback answers the browser: {page}");
    let (ok, out, err) = login.finish();
    assert!(ok, "login succeeds: {out}{err}");
    assert!(out.contains("Logged in as") && out.contains("account 'work'"), "{out}");

    let account = env.config_dir().join("accounts/work.json");
    let tokens_file = env.config_dir().join("accounts/work.tokens.json");
    assert_eq!((mode(&account), mode(&tokens_file)), (0o600, 0o600));
    let saved = read_json(&account);
    assert_eq!(saved["kind"], "oauth");
    assert_eq!(saved["api_url"], emu.api(""));
    assert_eq!(saved["client_id"], CLIENT_ID);
    let tokens = read_json(&tokens_file);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(me_status(&rt, &emu, &access), 200);

    let who = env.run(&["whoami", "--account", "work"], "");
    let (out, err) = text(&who);
    assert!(who.status.success() && out.contains("storage:"), "{out}{err}");
    for secret in [access.as_str(), refresh.as_str(), CLIENT_SECRET] {
        assert!(!out.contains(secret) && !err.contains(secret), "whoami printed a secret");
    }

    let bye = env.run(&["logout", "--account", "work"], "");
    assert!(bye.status.success(), "{:?}", text(&bye));
    assert!(!account.exists() && !tokens_file.exists(), "logout deletes the credentials");
    assert_eq!(me_status(&rt, &emu, &access), 401, "the revoked access token no longer works");
    let refreshed = rt.block_on(async {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ];
        emu.http.post(format!("{}/oauth2/token", emu.base())).form(&form).send().await.unwrap().status().as_u16()
    });
    assert_eq!(refreshed, 400, "the revoked refresh token no longer works");
    let who = env.run(&["whoami", "--account", "work"], "");
    assert!(text(&who).1.contains("boxfs login --account work"), "{:?}", text(&who));
}

#[test]
fn a_redirect_with_the_wrong_state_is_refused() {
    let (rt, emu) = emulator();
    let env = CliEnv::new();
    let login = env.start_login(emu.base(), "default", &[]);
    let (status, body) = rt.block_on(async {
        let authorize = emu.http.get(&login.url).send().await.unwrap();
        assert_eq!(authorize.status().as_u16(), 302);
        let location = authorize.headers()["location"].to_str().unwrap().to_string();
        let mut forged = url::Url::parse(&location).unwrap();
        let pairs: Vec<(String, String)> = forged.query_pairs().into_owned().collect();
        forged.query_pairs_mut().clear();
        for (k, v) in pairs {
            forged.query_pairs_mut().append_pair(&k, if k == "state" { "forged" } else { &v });
        }
        let resp = emu.http.get(forged.as_str()).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    assert_eq!(status, 400, "{body}");
    let (ok, out, err) = login.finish();
    assert!(!ok, "login fails: {out}");
    assert!(err.contains("state"), "{err}");
    assert!(!env.config_dir().join("accounts/default.json").exists(), "nothing saved");
}

#[test]
fn client_credentials_login() {
    let (rt, emu) = emulator();
    let env = CliEnv::new();
    let api = emu.api("");
    let up = emu.upload("");
    let out =
        env.run(&["login", "--account", "svc", "--api-url", &api, "--upload-url", &up, "--client-credentials"], "");
    assert!(!out.status.success(), "needs a subject");
    let out = env
        .cmd(&["login", "--account", "svc", "--api-url", &api, "--upload-url", &up])
        .args(["--client-credentials", "--enterprise", boxfs_emulator::ENTERPRISE_ID, "--client-id", CLIENT_ID])
        .env("BOX_CLIENT_SECRET", CLIENT_SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let saved = read_json(&env.config_dir().join("accounts/svc.json"));
    assert_eq!(
        (saved["kind"].as_str(), saved["subject_type"].as_str()),
        (Some("client_credentials"), Some("enterprise"))
    );
    assert!(!env.config_dir().join("accounts/svc.tokens.json").exists(), "a fresh token is requested each time");
    let grants_before = rt.block_on(emu.stats())["token_grants"].clone();
    let who = env.run(&["whoami", "--account", "svc"], "");
    assert!(who.status.success(), "{:?}", text(&who));
    let grants_after = rt.block_on(emu.stats())["token_grants"].clone();
    assert_ne!(grants_before, grants_after, "whoami requested a client-credentials token: {grants_after}");
    let bye = env.run(&["logout", "--account", "svc"], "");
    assert!(bye.status.success(), "{:?}", text(&bye));
    assert!(!env.config_dir().join("accounts/svc.json").exists());
}

#[test]
fn developer_token_from_stdin() {
    let (rt, emu) = emulator();
    let env = CliEnv::new();
    let (api, up) = (emu.api(""), emu.upload(""));
    let bad = env.run(&["login", "--token", "--api-url", &api, "--upload-url", &up], "not-a-token\n");
    assert!(!bad.status.success(), "a refused token is not saved");
    assert!(!env.config_dir().join("accounts/default.json").exists());
    let out = env.run(&["login", "--token", "--api-url", &api], &format!("{}\n", emu.token));
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(!text(&out).0.contains(&emu.token) && !text(&out).1.contains(&emu.token));
    let saved = read_json(&env.config_dir().join("accounts/default.json"));
    assert_eq!(saved["kind"], "developer_token");
    assert_eq!(saved["upload_url"], up, "the emulator's upload URL is derived from --api-url");
    let who = env.run(&["whoami"], "");
    assert!(who.status.success(), "the default account is used: {:?}", text(&who));
    let bye = env.run(&["logout"], "");
    assert!(bye.status.success(), "{:?}", text(&bye));
    assert!(text(&bye).0.contains("not revoked"), "says the token could not be revoked: {:?}", text(&bye));
    assert_eq!(me_status(&rt, &emu, &emu.token), 200);
}

#[test]
fn not_logged_in_and_expired_logins_name_the_fix() {
    let (rt, emu) = emulator();
    let env = CliEnv::new();
    let who = env.run(&["whoami", "--account", "nobody"], "");
    let (_, err) = text(&who);
    assert!(!who.status.success() && err.contains("'nobody'") && err.contains("boxfs login --account nobody"), "{err}");

    let login = env.start_login(emu.base(), "old", &[]);
    rt.block_on(browse(&login.url));
    assert!(login.finish().0);
    let tokens = read_json(&env.config_dir().join("accounts/old.tokens.json"));
    rt.block_on(async {
        let revoke = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
        let token = tokens["refresh_token"].as_str().unwrap();
        let form = [revoke[0], revoke[1], ("token", token)];
        emu.http.post(format!("{}/oauth2/revoke", emu.base())).form(&form).send().await.unwrap();
        emu.http.post(format!("{}/_emulator/expire-tokens", emu.base())).send().await.unwrap();
    });
    let who = env.run(&["whoami", "--account", "old"], "");
    let (_, err) = text(&who);
    assert!(!who.status.success(), "{err}");
    assert!(err.contains("run boxfs login --account old again"), "{err}");
}

#[test]
fn config_errors_name_the_key_and_the_file() {
    let env = CliEnv::new();
    let file = env.config_dir().join("config.toml");
    std::fs::create_dir_all(env.config_dir()).unwrap();
    let mnt = tempfile::tempdir().unwrap();
    let mnt = mnt.path().to_str().unwrap();
    let cases = [
        ("metadata_ttl = 30\n[accounts.work]\ncache_sise = 10\n", "accounts.work.cache_sise"),
        ("metadata_ttl = \"soon\"\n", "'metadata_ttl'"),
        ("events = 3\n", "'events'"),
        ("umask = \"088\"\n", "'umask'"),
    ];
    for (content, key) in cases {
        std::fs::write(&file, content).unwrap();
        let out = env.run(&["mount", "--account", "work", "--foreground", mnt], "");
        let (_, err) = text(&out);
        assert!(!out.status.success(), "{content}");
        assert!(err.contains(key) && err.contains(file.to_str().unwrap()), "{content} → {err}");
    }
    std::fs::remove_file(&file).unwrap();
    let out = env.run(&["mount", "-o", "metadata_ttl=soon", "--foreground", mnt], "");
    assert!(text(&out).1.contains("metadata_ttl"), "{:?}", text(&out));
}
