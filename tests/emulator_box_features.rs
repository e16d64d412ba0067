//! The emulator's shared links, locks, metadata and search beyond what the SDK suite
//! (tests/sdk) reaches: another user's lock, expiry, persistence, copies and purges; and the
//! leniency Box shows other clients (booleans in any case, trailing slashes, unknown
//! parameters, `fields` on every GET) next to its refusals; and the claims of JWT assertions
//! Box refuses.

mod common;

use boxfs_emulator::store::LockChange;
use common::emu::{bytes, TestEmulator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const OTHER_USER: &str = "20189999";

fn code(r: &common::emu::Resp) -> &str {
    r.body["code"].as_str().unwrap_or_default()
}

async fn upload_version(emu: &TestEmulator, id: &str, data: Vec<u8>) -> common::emu::Resp {
    let form = reqwest::multipart::Form::new()
        .text("attributes", json!({}).to_string())
        .part("file", reqwest::multipart::Part::bytes(data).file_name("f"));
    emu.send(emu.authed(Method::POST, &emu.upload(&format!("/files/{id}/content"))).multipart(form)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_lock_refuses_changes_until_it_expires() {
    let emu = TestEmulator::start_with(|cfg| cfg.part_size = Some(1024)).await;
    let folder = emu.new_folder("0", "team").await;
    let id = emu.new_file(&folder, "plan.docx", bytes(1, 100)).await;
    let file_id: i64 = id.parse().unwrap();
    let store = emu.store();
    let soon = chrono::Utc::now() + chrono::Duration::seconds(3);
    let lock = store
        .lock_file(
            file_id,
            OTHER_USER,
            &LockChange { expires_at: Some(soon.to_rfc3339()), is_download_prevented: true },
        )
        .unwrap();
    assert_eq!(lock.holder_id, OTHER_USER);

    let shown = emu.get(&emu.api(&format!("/files/{id}?fields=lock"))).await;
    assert_eq!(shown.body["lock"]["created_by"]["id"], OTHER_USER, "{}", shown.body);
    assert!(shown.body["lock"]["expired_at"].is_string());

    let file_url = emu.api(&format!("/files/{id}"));
    let refused = [
        upload_version(&emu, &id, bytes(2, 10)).await,
        emu.send(emu.authed(Method::OPTIONS, &emu.api(&format!("/files/{id}/content"))).json(&json!({"size": 5})))
            .await,
        emu.json(Method::POST, &emu.upload(&format!("/files/{id}/upload_sessions")), json!({"file_size": 4096})).await,
        emu.json(Method::PUT, &file_url, json!({"name": "mine.docx"})).await,
        emu.json(Method::PUT, &file_url, json!({"parent": {"id": "0"}})).await,
        emu.json(Method::PUT, &file_url, json!({"lock": null})).await,
        emu.json(Method::PUT, &file_url, json!({"shared_link": {"access": "open"}})).await,
        emu.json(Method::POST, &emu.api(&format!("/files/{id}/metadata/global/properties")), json!({"a": "b"})).await,
        emu.delete(&file_url).await,
        emu.get(&emu.api(&format!("/files/{id}/content"))).await,
    ];
    for (i, r) in refused.iter().enumerate() {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "change {i}: {}", r.body);
        assert_eq!(code(r), "access_denied_item_locked", "change {i}: {}", r.body);
    }
    // Reading stays open to everyone.
    assert_eq!(emu.get(&file_url).await.status, StatusCode::OK);

    // Once the lock expires it no longer holds, and no longer shows.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert!(emu.get(&emu.api(&format!("/files/{id}?fields=lock"))).await.body["lock"].is_null());
    let r = upload_version(&emu, &id, bytes(3, 10)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(emu.json(Method::PUT, &file_url, json!({"name": "mine.docx"})).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holders_own_lock_blocks_nothing() {
    let emu = TestEmulator::start().await;
    let id = emu.new_file("0", "mine.txt", bytes(1, 10)).await;
    let url = emu.api(&format!("/files/{id}?fields=lock,etag"));
    let before = emu.get(&url).await.body["etag"].clone();
    let r = emu.json(Method::PUT, &url, json!({"lock": {"access": "lock", "is_download_prevented": true}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["lock"]["is_download_prevented"], true);
    assert!(r.body["lock"].get("expired_at").is_none(), "no expiry: {}", r.body);
    assert_ne!(r.body["etag"], before, "a lock is a change of the file");
    let (status, _, got) = emu.download(&id, None).await;
    assert_eq!((status, got), (StatusCode::OK, bytes(1, 10)), "the holder still downloads");
    assert_eq!(upload_version(&emu, &id, bytes(2, 5)).await.status, StatusCode::OK);
    let r = emu.json(Method::PUT, &url, json!({"lock": {"access": "unlock"}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let past = emu.json(Method::PUT, &url, json!({"lock": {"expires_at": "2001-01-01T00:00:00Z"}})).await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_persists_is_copied_and_goes_with_a_purge() {
    let emu = TestEmulator::start().await;
    let folder = emu.new_folder("0", "meta").await;
    let id = emu.new_file(&folder, "a.txt", bytes(1, 10)).await;
    let r =
        emu.json(Method::POST, &emu.api(&format!("/files/{id}/metadata/global/properties")), json!({"k": "v"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Other templates and scopes do not exist.
    let r = emu.json(Method::POST, &emu.api(&format!("/files/{id}/metadata/global/boxSkillsCards")), json!({})).await;
    assert_eq!((r.status, code(&r)), (StatusCode::NOT_FOUND, "instance_tuple_not_found"));
    let r = emu.json(Method::POST, &emu.api(&format!("/files/{id}/metadata/nowhere/properties")), json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A patch that is not a JSON Patch.
    let put = emu
        .authed(Method::PUT, &emu.api(&format!("/files/{id}/metadata/global/properties")))
        .header("content-type", "application/json-patch+json")
        .body(r#"{"op": "add"}"#);
    assert_eq!(emu.send(put).await.status, StatusCode::BAD_REQUEST);

    // A copy carries its own instance.
    let r = emu.json(Method::POST, &emu.api(&format!("/files/{id}/copy")), json!({"parent": {"id": "0"}})).await;
    let copy = r.body["id"].as_str().unwrap().to_string();
    let mine = emu.get(&emu.api(&format!("/files/{id}/metadata/global/properties"))).await.body;
    let theirs = emu.get(&emu.api(&format!("/files/{copy}/metadata/global/properties"))).await.body;
    assert_eq!((mine["k"].clone(), theirs["k"].clone()), (json!("v"), json!("v")));
    assert_ne!(mine["$id"], theirs["$id"]);
    assert_eq!(theirs["$parent"], format!("file_{copy}"));

    // It survives a restart.
    let (dir, config) = emu.stop();
    let emu = TestEmulator::start_in(dir, config).await;
    let r = emu.get(&emu.api(&format!("/folders/{folder}/items?fields=name,metadata.global.properties"))).await;
    assert_eq!(r.body["entries"][0]["metadata"]["global"]["properties"]["k"], "v", "{}", r.body);
    // Items without an instance list an empty metadata object.
    let r = emu.get(&emu.api("/folders/0/items?fields=metadata.global.properties")).await;
    let folder_entry = r.body["entries"].as_array().unwrap().iter().find(|e| e["id"] == folder.as_str()).unwrap();
    assert_eq!(folder_entry["metadata"], json!({}));

    // Purged with its item.
    assert_eq!(emu.delete(&emu.api(&format!("/folders/{folder}?recursive=true"))).await.status, StatusCode::NO_CONTENT);
    assert_eq!(emu.delete(&emu.api(&format!("/folders/{folder}/trash"))).await.status, StatusCode::NO_CONTENT);
    let r = emu.get(&emu.api(&format!("/files/{id}/metadata/global/properties"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let left = emu
        .get(&emu.api(&format!(
            "/search?query=a.txt&mdfilters={}",
            url_json(&json!([{"scope": "global", "templateKey": "properties", "filters": {"k": "v"}}]))
        )))
        .await;
    assert_eq!(ids(&left.body), [copy]);
}

fn url_json(v: &Value) -> String {
    url::form_urlencoded::byte_serialize(v.to_string().as_bytes()).collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["entries"].as_array().unwrap_or(&Vec::new()).iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_links_expire_and_follow_their_rules() {
    let emu = TestEmulator::start().await;
    let id = emu.new_file("0", "brief.txt", bytes(1, 10)).await;
    let url = emu.api(&format!("/files/{id}?fields=shared_link"));
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let r = emu.json(Method::PUT, &url, json!({"shared_link": {"access": "open", "unshared_at": expires}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let link = r.body["shared_link"]["url"].as_str().unwrap().to_string();
    for bad in [
        json!({"shared_link": {"access": "everyone"}}),
        json!({"shared_link": {"access": "collaborators", "permissions": {"can_download": true}}}),
        json!({"shared_link": {"permissions": {"can_edit": true, "can_download": false}}}),
        json!({"shared_link": {"vanity_name": "short"}}),
        json!({"shared_link": {"unshared_at": "2001-01-01T00:00:00Z"}}),
        json!({"shared_link": "yes"}),
    ] {
        let r = emu.json(Method::PUT, &url, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let vanity = emu.json(Method::PUT, &url, json!({"shared_link": {"vanity_name": "boxfs-brief-2025"}})).await;
    assert_eq!(vanity.body["shared_link"]["url"], link, "updates keep the link");
    let page = emu.http.get(vanity.body["shared_link"]["vanity_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("brief.txt"));

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(emu.get(&url).await.body["shared_link"].is_null(), "unshared_at has passed");
    let r = emu
        .send(emu.authed(Method::GET, &emu.api("/shared_items")).header("boxapi", format!("shared_link={link}")))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = emu.get(&emu.api("/shared_items")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "the boxapi header is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranges_and_order() {
    let emu = TestEmulator::start().await;
    let folder = emu.new_folder("0", "sizes").await;
    let small = emu.new_file(&folder, "log small.txt", bytes(1, 10)).await;
    let big = emu.new_file(&folder, "log big.txt", bytes(2, 5000)).await;
    let q = |extra: &str| emu.api(&format!("/search?query=log&ancestor_folder_ids={folder}{extra}"));
    assert_eq!(ids(&emu.get(&q("&size_range=1000,")).await.body), [big]);
    assert_eq!(ids(&emu.get(&q("&size_range=,100")).await.body), [small]);
    assert_eq!(ids(&emu.get(&q("&created_at_range=2001-01-01T00:00:00Z,2002-01-01T00:00:00Z")).await.body).len(), 0);
    let by_date = emu.get(&q("&sort=modified_at&direction=ASC&content_types=name,tag")).await;
    assert_eq!(by_date.body["entries"].as_array().unwrap().len(), 2);
    let with_links = emu.get(&q("&include_recent_shared_links=true")).await;
    assert_eq!(with_links.body["type"], "search_results_with_shared_links");
    assert_eq!(with_links.body["entries"][0]["type"], "search_result");
    assert!(with_links.body["entries"][0]["item"]["id"].is_string());
    let other_owner = emu.get(&q("&owner_user_ids=1")).await;
    assert_eq!(other_owner.body["total_count"], 0);
    for (bad, status) in [
        ("&scope=enterprise_content", StatusCode::FORBIDDEN),
        ("&type=document", StatusCode::BAD_REQUEST),
        ("&size_range=big", StatusCode::BAD_REQUEST),
        ("&mdfilters=[{\"scope\":\"global\",\"templateKey\":\"nope\",\"filters\":{}}]", StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(emu.get(&q(bad)).await.status, status, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lenient_where_box_is_and_clear_where_it_refuses() {
    let emu = TestEmulator::start().await;
    let folder = emu.new_folder("0", "lenient").await;
    emu.new_file(&folder, "x.txt", bytes(1, 3)).await;

    // Trailing slashes, unknown parameters and booleans in any case.
    let r = emu.get(&emu.api(&format!("/folders/{folder}/items/?usemarker=TRUE&frobnicate=1&limit=1"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("next_marker").is_some(), "marker paging: {}", r.body);
    assert_eq!(emu.get(&emu.api("/users/me/")).await.status, StatusCode::OK);
    let r = emu.delete(&emu.api(&format!("/folders/{folder}?recursive=maybe"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = emu.delete(&emu.api(&format!("/folders/{folder}?recursive=False"))).await;
    assert_eq!(code(&r), "folder_not_empty");

    // `fields` on every GET.
    let me = emu.get(&emu.api("/users/me?fields=space_used")).await.body;
    assert_eq!(me.as_object().unwrap().keys().collect::<Vec<_>>(), ["id", "space_used", "type"]);
    let id = emu.new_file(&folder, "v.txt", bytes(2, 3)).await;
    upload_version(&emu, &id, bytes(3, 4)).await;
    let versions = emu.get(&emu.api(&format!("/files/{id}/versions?fields=size"))).await.body;
    let first = versions["entries"][0].as_object().unwrap();
    assert_eq!(first.keys().collect::<Vec<_>>(), ["id", "size", "type"]);

    // Body fields Box documents that the emulator does not model are refused by name.
    let r = emu.json(Method::PUT, &emu.api(&format!("/files/{id}")), json!({"tags": ["x"]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("tags"), "{}", r.body);
}

/// A new RSA key: what signs assertions, and the public key (SPKI PEM) to register.
fn signing_key() -> (jsonwebtoken::EncodingKey, String) {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use pkcs8::der::pem::LineEnding;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let private: Pkcs8V1Der = pair.as_der().unwrap();
    let info = pkcs8::PrivateKeyInfo::try_from(private.as_ref()).unwrap();
    let public: PublicKeyX509Der = aws_lc_rs::signature::KeyPair::public_key(&pair).as_der().unwrap();
    let pem = pkcs8::Document::try_from(public.as_ref()).unwrap().to_pem("PUBLIC KEY", LineEnding::LF).unwrap();
    (jsonwebtoken::EncodingKey::from_rsa_der(info.private_key), pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_assertions_are_checked_as_box_checks_them() {
    let emu = TestEmulator::start_with(|c| c.users = 1).await;
    let (key, public) = signing_key();
    let r = emu.http.post(format!("{}/_emulator/public-keys", emu.base())).body(public).send().await.unwrap();
    let kid = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let user = emu.store().users().unwrap().into_iter().find(|u| u.login == "user1@boxfs.invalid").unwrap();
    let now = chrono::Utc::now().timestamp();
    let grant = |claims: Value, alg: jsonwebtoken::Algorithm, kid: &str| {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.to_string());
        let assertion = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string()),
            ("assertion", assertion),
            ("client_id", boxfs_emulator::DEFAULT_CLIENT_ID.to_string()),
            ("client_secret", boxfs_emulator::DEFAULT_CLIENT_SECRET.to_string()),
        ];
        let request = emu.http.post(format!("{}/oauth2/token", emu.base())).form(&form);
        async move {
            let resp = request.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let claims = |sub: &str, kind: &str, jti: &str, exp: i64| {
        json!({"iss": boxfs_emulator::DEFAULT_CLIENT_ID, "sub": sub, "box_sub_type": kind,
               "aud": "https://api.box.com/oauth2/token", "jti": jti, "exp": exp})
    };
    let rs = jsonwebtoken::Algorithm::RS512;
    let (status, body) = grant(claims(&user.id, "user", "jti-0000000000000001", now + 30), rs, &kid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let me = emu.send(emu.http.get(emu.api("/users/me")).bearer_auth(body["access_token"].as_str().unwrap())).await;
    assert_eq!(me.body["id"], user.id.as_str(), "a user subject gets a token of that user");
    let refused = [
        (claims(&user.id, "user", "jti-0000000000000001", now + 30), "a jti used before"),
        (claims(&user.id, "user", "jti-0000000000000002", now + 300), "an exp more than 60 s out"),
        (claims(&user.id, "user", "jti-0000000000000003", now - 5), "an expired assertion"),
        (claims(&user.id, "user", "short", now + 30), "a jti under 16 characters"),
        (claims("4242", "enterprise", "jti-0000000000000004", now + 30), "another enterprise"),
        (claims("999", "user", "jti-0000000000000005", now + 30), "an unknown user"),
    ];
    for (claims, what) in refused {
        let (status, body) = grant(claims, rs, &kid).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{what}: {body}"
        );
    }
    let mut wrong_aud = claims(boxfs_emulator::ENTERPRISE_ID, "enterprise", "jti-0000000000000006", now + 30);
    wrong_aud["aud"] = json!(format!("{}/oauth2/token", emu.base()));
    assert_eq!(grant(wrong_aud, rs, &kid).await.0, StatusCode::BAD_REQUEST, "aud must be Box's token URL");
    let service = claims(boxfs_emulator::ENTERPRISE_ID, "enterprise", "jti-0000000000000007", now + 30);
    assert_eq!(grant(service.clone(), rs, "nokid").await.0, StatusCode::BAD_REQUEST, "an unknown kid");
    let (status, body) = grant(service, jsonwebtoken::Algorithm::RS256, &kid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let me = emu.send(emu.http.get(emu.api("/users/me")).bearer_auth(body["access_token"].as_str().unwrap())).await;
    assert_eq!(me.body["id"], boxfs_emulator::SERVICE_ID, "the enterprise subject is its service account");
}
