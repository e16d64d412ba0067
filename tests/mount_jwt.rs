//! Server authentication end to end: `boxfs login --jwt` with an app config whose key pair is
//! made here (its public key registered with the emulator as Box's developer console does),
//! a mount as the enterprise's service account, and an admin's mount acting for another user
//! with `--as-user`, which shows that user's files only.

mod common;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use common::cli::{text, CliEnv};
use common::mount::{fuse_emulator, wait_for};
use serde_json::json;

const PASSPHRASE: &str = "correct horse battery staple";

/// A new RSA key pair: the private key as the console writes it (encrypted PKCS#8 PEM) and
/// the public key (SPKI PEM).
fn key_pair() -> (String, String) {
    use pkcs8::der::pem::LineEnding;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let private: Pkcs8V1Der = pair.as_der().unwrap();
    let public: PublicKeyX509Der = aws_lc_rs::signature::KeyPair::public_key(&pair).as_der().unwrap();
    let (salt, iv): ([u8; 16], [u8; 16]) = (rand::random(), rand::random());
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &salt, &iv).unwrap();
    let info = pkcs8::PrivateKeyInfo::try_from(private.as_ref()).unwrap();
    let encrypted = info.encrypt_with_params(params, PASSPHRASE).unwrap();
    let private_pem = encrypted.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF).unwrap().to_string();
    let public_pem = pkcs8::Document::try_from(public.as_ref()).unwrap().to_pem("PUBLIC KEY", LineEnding::LF).unwrap();
    (private_pem, public_pem)
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn jwt_login_mounts_the_service_account_and_an_admin_acts_for_a_user() {
    let Some((rt, emu)) = fuse_emulator(|c| c.users = 1) else { return };
    let (private_pem, public_pem) = key_pair();
    let kid = rt.block_on(async {
        let r = emu.http.post(format!("{}/_emulator/public-keys", emu.base())).body(public_pem).send().await.unwrap();
        assert_eq!(r.status(), 201);
        r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    });
    let env = CliEnv::new();
    let config = env.home.path().join("config.json");
    let app = json!({
        "boxAppSettings": {
            "clientID": boxfs_emulator::DEFAULT_CLIENT_ID,
            "clientSecret": boxfs_emulator::DEFAULT_CLIENT_SECRET,
            "appAuth": {"publicKeyID": kid, "privateKey": private_pem, "passphrase": PASSPHRASE},
        },
        "enterpriseID": boxfs_emulator::ENTERPRISE_ID,
    });
    std::fs::write(&config, serde_json::to_vec_pretty(&app).unwrap()).unwrap();
    let (api, up) = (emu.api(""), emu.upload(""));
    let config_arg = config.to_str().unwrap();
    let login =
        env.run(&["login", "--account", "svc", "--api-url", &api, "--upload-url", &up, "--jwt", config_arg], "");
    assert!(login.status.success(), "{:?}", text(&login));
    assert_eq!(common::cli::mode(&env.config_dir().join("accounts/svc.jwt.json")), 0o600);
    let who = env.run(&["whoami", "--account", "svc"], "");
    let (out, err) = text(&who);
    assert!(who.status.success(), "{err}");
    assert!(out.contains(&format!("(user {})", boxfs_emulator::SERVICE_ID)) && out.contains("JWT"), "{out}");
    assert!(!out.contains(PASSPHRASE) && !out.contains("PRIVATE KEY"), "{out}");

    // A mount as the service account: its own root, written through the mount.
    let svc = env.mount_account("svc", &["--writeback-delay-ms", "0"], &[]);
    std::fs::write(svc.p("from the app.txt"), b"service account\n").unwrap();
    let as_service = |path: &str| {
        let r = emu.authed(reqwest::Method::GET, &emu.api(path)).header("as-user", boxfs_emulator::SERVICE_ID);
        rt.block_on(emu.send(r)).body
    };
    wait_for("the service account's file is in Box", 10, || {
        as_service("/folders/0/items?fields=name")["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "from the app.txt")
    });
    assert!(
        rt.block_on(emu.stats())["token_grants"]["urn:ietf:params:oauth:grant-type:jwt-bearer"].as_u64() >= Some(1)
    );
    drop(svc);

    // The admin acts for user C: the mount shows C's files, not the admin's.
    let c = emu.store().users().unwrap().into_iter().find(|u| u.login == "user1@boxfs.invalid").unwrap();
    let c_token = emu.running.state.developer_token_for(&c.id).unwrap();
    rt.block_on(async {
        emu.new_file("0", "admin only.txt", b"admin".to_vec()).await;
        let attrs = json!({"name": "c only.txt", "parent": {"id": "0"}}).to_string();
        let form = reqwest::multipart::Form::new()
            .text("attributes", attrs)
            .part("file", reqwest::multipart::Part::bytes(b"C's".to_vec()).file_name("c only.txt"));
        let r = emu.send(emu.http.post(emu.upload("/files/content")).bearer_auth(&c_token).multipart(form)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    });
    let admin_env = [("BOX_ACCESS_TOKEN", emu.token.as_str())];
    let args = ["--api-url", api.as_str(), "--upload-url", up.as_str(), "--as-user", c.id.as_str()];
    let as_c = env.mount_account("default", &args, &admin_env);
    assert_eq!(names(as_c.path()), vec!["c only.txt"]);
    assert_eq!(std::fs::read(as_c.p("c only.txt")).unwrap(), b"C's");
    let who = env
        .cmd(&["whoami", "--api-url", &api, "--upload-url", &up, "--as-user", &c.id])
        .env("BOX_ACCESS_TOKEN", &emu.token)
        .output()
        .unwrap();
    let (out, err) = text(&who);
    assert!(who.status.success(), "{err}");
    assert!(out.contains(&format!("(user {})", c.id)) && out.contains("As-User"), "{out}");
    // A managed user's token may not act for others.
    let refused = env
        .cmd(&["whoami", "--api-url", &api, "--upload-url", &up, "--as-user", boxfs_emulator::ADMIN_ID])
        .env("BOX_ACCESS_TOKEN", &c_token)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}
