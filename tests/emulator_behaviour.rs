//! Behaviour of the emulator over real HTTP on 127.0.0.1: paging, names, conditional
//! requests, trash, ranged downloads, direct and session uploads, OAuth rotation, events and
//! long-poll, persistence, faults and rate limits.

mod common;

use common::emu::{bytes, sha1_hex, sha_digest, TestEmulator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn ids(entries: &Value) -> Vec<String> {
    entries.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_both_ways_across_2500_items() {
    let emu = TestEmulator::start().await;
    let store = emu.store();
    let folder = store.create_folder(boxfs_emulator::ADMIN_ID, 0, "big").unwrap().id;
    for i in 0..500 {
        store.create_folder(boxfs_emulator::ADMIN_ID, folder, &format!("dir {i:04}")).unwrap();
    }
    for i in 0..2000 {
        let blob = store.blobs().put_bytes(format!("file {i}").as_bytes()).unwrap();
        store
            .create_file(
                boxfs_emulator::ADMIN_ID,
                boxfs_emulator::store::NewFile {
                    parent_id: folder,
                    name: format!("File {i:04}.txt"),
                    blob,
                    content_created_at: None,
                    content_modified_at: None,
                },
            )
            .unwrap();
    }

    // Marker paging, 1000 per page.
    let mut marker_ids = Vec::new();
    let mut marker: Option<String> = None;
    let mut calls = 0;
    loop {
        let mut url = emu.api(&format!("/folders/{folder}/items?usemarker=true&limit=1000&fields=name"));
        if let Some(m) = &marker {
            url.push_str(&format!("&marker={m}"));
        }
        let r = emu.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        calls += 1;
        marker_ids.extend(ids(&r.body["entries"]));
        match r.body["next_marker"].as_str() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    assert_eq!(calls, 3);
    assert_eq!(marker_ids.len(), 2500);
    assert_eq!(marker_ids.iter().collect::<HashSet<_>>().len(), 2500, "no duplicates");

    // Offset paging: step by the returned limit; limit above 1000 is capped.
    let mut offset_entries = Vec::new();
    let mut offset = 0;
    loop {
        let r = emu.get(&emu.api(&format!("/folders/{folder}/items?offset={offset}&limit=5000"))).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["total_count"], 2500);
        let limit = r.body["limit"].as_i64().unwrap();
        assert_eq!(limit, 1000);
        offset_entries.extend(r.body["entries"].as_array().unwrap().clone());
        offset += limit;
        if offset >= 2500 {
            break;
        }
    }
    let offset_ids: Vec<String> = offset_entries.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(offset_ids, marker_ids, "both paging styles give the same order");
    // Folders first, then files, each by name.
    let types: Vec<&str> = offset_entries.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(types[..500].iter().all(|t| *t == "folder") && types[500..].iter().all(|t| *t == "file"));
    let names: Vec<&str> = offset_entries.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "dir 0000");
    assert_eq!(names[500], "File 0000.txt");
    assert_eq!(names[2499], "File 1999.txt");
    // Descending sort on name keeps folders first.
    let r = emu.get(&emu.api(&format!("/folders/{folder}/items?limit=2&sort=name&direction=DESC&offset=500"))).await;
    assert_eq!(r.body["entries"][0]["name"], "File 1999.txt");
    // Bad parameters are errors, not guesses.
    let r = emu.get(&emu.api(&format!("/folders/{folder}/items?marker=garbage"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = emu.get(&emu.api(&format!("/folders/{folder}/items?sort=colour"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_validated_and_unique_case_insensitively() {
    let emu = TestEmulator::start().await;
    let a = emu.new_folder("0", "Reports").await;
    let clash = emu.json(Method::POST, &emu.api("/folders"), json!({"name": "reports", "parent": {"id": "0"}})).await;
    assert_eq!(clash.status, StatusCode::CONFLICT);
    assert_eq!(clash.body["code"], "item_name_in_use");
    assert_eq!(clash.body["context_info"]["conflicts"][0]["id"], a.as_str());
    // An upload conflict carries a single object, as Box's upload API does.
    emu.new_file("0", "Notes.txt", b"x".to_vec()).await;
    let r = emu.upload_file("0", "NOTES.TXT", b"y".to_vec()).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["context_info"]["conflicts"]["name"], "Notes.txt");
    for bad in ["a/b", "a\\b", ".", "..", "trailing ", "tab\there", ""] {
        let r = emu.json(Method::POST, &emu.api("/folders"), json!({"name": bad, "parent": {"id": "0"}})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(r.body["code"], "item_name_invalid", "{bad:?}");
    }
    let r = emu.json(Method::POST, &emu.api("/folders"), json!({"name": "x".repeat(256), "parent": {"id": "0"}})).await;
    assert_eq!(r.body["code"], "item_name_too_long");
    let r = emu.json(Method::POST, &emu.api("/folders"), json!({"name": " leading ok", "parent": {"id": "0"}})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Renaming to a case variant of itself is fine.
    let r = emu.json(Method::PUT, &emu.api(&format!("/folders/{a}")), json!({"name": "REPORTS"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_conditional_requests_moves_and_cycles() {
    let emu = TestEmulator::start().await;
    let id = emu.new_file("0", "a.txt", b"hello".to_vec()).await;
    let f = emu.get(&emu.api(&format!("/files/{id}"))).await.body;
    let etag = f["etag"].as_str().unwrap().to_string();
    assert_eq!(f["sequence_id"], etag.as_str());
    let r = emu.send(emu.authed(Method::GET, &emu.api(&format!("/files/{id}"))).header("if-none-match", &etag)).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = emu
        .send(
            emu.authed(Method::PUT, &emu.api(&format!("/files/{id}")))
                .header("if-match", "stale")
                .json(&json!({"name": "b.txt"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = emu
        .send(
            emu.authed(Method::PUT, &emu.api(&format!("/files/{id}")))
                .header("if-match", &etag)
                .json(&json!({"name": "b.txt"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.body["etag"].as_str().unwrap(), etag, "etag changes on every modification");
    let r = emu.send(emu.authed(Method::GET, &emu.api(&format!("/files/{id}"))).header("if-none-match", &etag)).await;
    assert_eq!(r.status, StatusCode::OK);

    let outer = emu.new_folder("0", "outer").await;
    let inner = emu.new_folder(&outer, "inner").await;
    let r = emu.json(Method::PUT, &emu.api(&format!("/folders/{outer}")), json!({"parent": {"id": inner}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "cyclical_folder_structure");
    let r = emu.json(Method::PUT, &emu.api(&format!("/files/{id}")), json!({"parent": {"id": inner}})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["parent"]["id"], inner.as_str());
    let paths: Vec<&str> =
        r.body["path_collection"]["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(paths, ["All Files", "outer", "inner"]);
    // Folder sizes are recursive and follow moves.
    let outer_size = emu.get(&emu.api(&format!("/folders/{outer}?fields=size"))).await.body["size"].clone();
    assert_eq!(outer_size, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_restore_purge_and_copy() {
    let emu = TestEmulator::start().await;
    let dir = emu.new_folder("0", "dir").await;
    let file = emu.new_file(&dir, "f.txt", b"data".to_vec()).await;
    let r = emu.delete(&emu.api(&format!("/folders/{dir}"))).await;
    assert_eq!(r.body["code"], "folder_not_empty");
    let copy = emu
        .json(
            Method::POST,
            &emu.api(&format!("/folders/{dir}/copy")),
            json!({"parent": {"id": "0"}, "name": "dir copy"}),
        )
        .await;
    assert_eq!(copy.status, StatusCode::CREATED);
    let copy_id = copy.body["id"].as_str().unwrap().to_string();
    let r = emu.delete(&emu.api(&format!("/folders/{dir}?recursive=true"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = emu.get(&emu.api(&format!("/files/{file}"))).await;
    assert_eq!((r.status, r.body["code"].as_str()), (StatusCode::NOT_FOUND, Some("trashed")));
    let trash = emu.get(&emu.api("/folders/trash/items")).await;
    assert_eq!(ids(&trash.body["entries"]), vec![dir.clone()], "only the trashed root is listed");
    let r = emu.get(&emu.api(&format!("/folders/{dir}/trash"))).await;
    assert_eq!(r.body["item_status"], "trashed");
    let r = emu.json(Method::POST, &emu.api(&format!("/folders/{dir}")), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = emu.get(&emu.api(&format!("/files/{file}"))).await;
    assert_eq!(r.status, StatusCode::OK, "restoring a folder restores its content");
    // The copy is independent.
    let items = emu.get(&emu.api(&format!("/folders/{copy_id}/items?fields=name,size"))).await;
    assert_eq!(items.body["entries"][0]["name"], "f.txt");
    // Purge.
    emu.delete(&emu.api(&format!("/files/{file}"))).await;
    let used_before = emu.get(&emu.api("/users/me")).await.body["space_used"].as_i64().unwrap();
    let r = emu.delete(&emu.api(&format!("/files/{file}/trash"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(emu.get(&emu.api(&format!("/files/{file}"))).await.status, StatusCode::NOT_FOUND);
    let used_after = emu.get(&emu.api("/users/me")).await.body["space_used"].as_i64().unwrap();
    assert_eq!(used_before - used_after, 4);
    // Web links appear in listings after folders and files.
    let r = emu
        .json(
            Method::POST,
            &emu.api("/web_links"),
            json!({"url": "https://example.invalid/x", "parent": {"id": "0"}, "name": "Link"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let root = emu.get(&emu.api("/folders/0/items?fields=name,url")).await;
    let last = root.body["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["type"].as_str(), last["url"].as_str()), (Some("web_link"), Some("https://example.invalid/x")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_downloads_and_versions() {
    let emu = TestEmulator::start().await;
    let data = bytes(1, 100_000);
    let id = emu.new_file("0", "blob.bin", data.clone()).await;
    let (status, _, body) = emu.download(&id, None).await;
    assert_eq!((status, sha1_hex(&body)), (StatusCode::OK, sha1_hex(&data)));
    let (status, headers, body) = emu.download(&id, Some("bytes=1000-1999")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers["content-range"], "bytes 1000-1999/100000");
    assert_eq!(body, &data[1000..2000]);
    let (_, _, body) = emu.download(&id, Some("bytes=99990-")).await;
    assert_eq!(body, &data[99990..]);
    let (_, _, body) = emu.download(&id, Some("bytes=-5")).await;
    assert_eq!(body, &data[99995..]);
    let (status, headers, _) = emu.download(&id, Some("bytes=100000-")).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers["content-range"], "bytes */100000");
    // The download URL needs no Authorization header (it's on the "download host").
    let old_version =
        emu.get(&emu.api(&format!("/files/{id}"))).await.body["file_version"]["id"].as_str().unwrap().to_string();
    let v2 = bytes(2, 5000);
    let form = reqwest::multipart::Form::new()
        .text("attributes", json!({"content_modified_at": "2020-01-02T03:04:05-08:00"}).to_string())
        .part("file", reqwest::multipart::Part::bytes(v2.clone()));
    let r = emu.send(emu.authed(Method::POST, &emu.upload(&format!("/files/{id}/content"))).multipart(form)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["entries"][0]["content_modified_at"], "2020-01-02T11:04:05+00:00");
    let (_, _, body) = emu.download(&id, None).await;
    assert_eq!(body, v2);
    let r =
        emu.authed(Method::GET, &emu.api(&format!("/files/{id}/content?version={old_version}"))).send().await.unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let old = emu.http.get(location).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(sha1_hex(&old), sha1_hex(&data));
    let versions = emu.get(&emu.api(&format!("/files/{id}/versions"))).await;
    assert_eq!(ids(&versions.body["entries"]), vec![old_version]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_upload_rules() {
    let emu = TestEmulator::start().await;
    // File part before attributes.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"abc".to_vec()))
        .text("attributes", json!({"name": "x.txt", "parent": {"id": "0"}}).to_string());
    let r = emu.send(emu.authed(Method::POST, &emu.upload("/files/content")).multipart(form)).await;
    assert_eq!((r.status, r.body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("metadata_after_file_contents")));
    // content-md5 carries a SHA-1 and is checked.
    let attrs =
        json!({"name": "y.txt", "parent": {"id": "0"}, "content_modified_at": "2021-05-06T07:08:09+00:00"}).to_string();
    let form = || {
        reqwest::multipart::Form::new()
            .text("attributes", attrs.clone())
            .part("contents", reqwest::multipart::Part::bytes(b"abc".to_vec()))
    };
    let r = emu
        .send(
            emu.authed(Method::POST, &emu.upload("/files/content"))
                .header("content-md5", "0".repeat(40))
                .multipart(form()),
        )
        .await;
    assert_eq!((r.status, r.body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_digest")));
    let r = emu
        .send(
            emu.authed(Method::POST, &emu.upload("/files/content"))
                .header("content-md5", sha1_hex(b"abc"))
                .multipart(form()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let file = &r.body["entries"][0];
    assert_eq!(file["content_modified_at"], "2021-05-06T07:08:09+00:00");
    assert_eq!(file["sha1"], sha1_hex(b"abc"));
    assert_eq!(file["size"], 3);
    // New version with a stale if-match.
    let id = file["id"].as_str().unwrap();
    let form = reqwest::multipart::Form::new()
        .text("attributes", "{}")
        .part("file", reqwest::multipart::Part::bytes(b"new".to_vec()));
    let r = emu
        .send(
            emu.authed(Method::POST, &emu.upload(&format!("/files/{id}/content")))
                .header("if-match", "999")
                .multipart(form),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    // Quota: the user's space is reported and enforced.
    let me = emu.get(&emu.api("/users/me")).await.body;
    assert_eq!(me["space_used"], 3);
    assert!(me["space_amount"].as_i64().unwrap() > 0 && me["max_upload_size"].as_i64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_full_is_refused() {
    let emu = TestEmulator::start_with(|c| c.space_amount = 10_000).await;
    emu.new_file("0", "a.bin", bytes(1, 8000)).await;
    let r = emu.upload_file("0", "b.bin", bytes(2, 8000)).await;
    assert_eq!((r.status, r.body["code"].as_str()), (StatusCode::FORBIDDEN, Some("storage_limit_exceeded")));
    let r = emu
        .json(
            Method::OPTIONS,
            &emu.api("/files/content"),
            json!({"name": "c.bin", "parent": {"id": "0"}, "size": 5000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn put_part(
    emu: &TestEmulator,
    session: &Value,
    data: &[u8],
    offset: usize,
    len: usize,
    digest: String,
) -> (StatusCode, Value) {
    let url = session["session_endpoints"]["upload_part"].as_str().unwrap();
    let range = format!("bytes {}-{}/{}", offset, offset + len - 1, data.len());
    let r = emu
        .send(
            emu.authed(Method::PUT, url)
                .header("content-range", range)
                .header("digest", digest)
                .body(data[offset..offset + len].to_vec()),
        )
        .await;
    (r.status, r.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabyte_session_upload_with_a_bad_part_fixed() {
    let emu = TestEmulator::start().await;
    let data = bytes(50, 50 * 1000 * 1000);
    let small = emu
        .json(
            Method::POST,
            &emu.upload("/files/upload_sessions"),
            json!({"folder_id": "0", "file_size": 1000, "file_name": "s"}),
        )
        .await;
    assert_eq!(small.body["code"], "file_size_too_small");
    let r = emu
        .json(
            Method::POST,
            &emu.upload("/files/upload_sessions"),
            json!({"folder_id": "0", "file_size": data.len(), "file_name": "big.bin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let session = r.body;
    let part_size = session["part_size"].as_u64().unwrap() as usize;
    assert_eq!(part_size, 8 * 1024 * 1024);
    let total_parts = data.len().div_ceil(part_size);
    assert_eq!(session["total_parts"], total_parts);

    // A wrong part size and a part not on a boundary are refused.
    let (status, _) = put_part(&emu, &session, &data, 0, 1000, sha_digest(&data[..1000])).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    let (status, _) = put_part(&emu, &session, &data, 1, part_size, sha_digest(&data[1..=part_size])).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    let mut parts = Vec::new();
    for i in 0..total_parts {
        let offset = i * part_size;
        let len = part_size.min(data.len() - offset);
        if i == 2 {
            let (status, body) = put_part(&emu, &session, &data, offset, len, sha_digest(b"not this part")).await;
            assert_eq!(status, StatusCode::PRECONDITION_FAILED, "bad digest rejected: {body}");
        }
        let (status, body) =
            put_part(&emu, &session, &data, offset, len, sha_digest(&data[offset..offset + len])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        parts.push(body["part"].clone());
    }
    // Same bytes again: idempotent. Different bytes over a stored part: conflict.
    let (status, body) = put_part(&emu, &session, &data, 0, part_size, sha_digest(&data[..part_size])).await;
    assert_eq!((status, &body["part"]), (StatusCode::OK, &parts[0]));
    let mut other = data[..part_size].to_vec();
    other[0] ^= 1;
    let url = session["session_endpoints"]["upload_part"].as_str().unwrap();
    let r = emu
        .send(
            emu.authed(Method::PUT, url)
                .header("content-range", format!("bytes 0-{}/{}", part_size - 1, data.len()))
                .header("digest", sha_digest(&other))
                .body(other),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let listed = emu.get(session["session_endpoints"]["list_parts"].as_str().unwrap()).await;
    assert_eq!(listed.body["total_count"], total_parts);
    let status = emu.get(session["session_endpoints"]["status"].as_str().unwrap()).await;
    assert_eq!(status.body["num_parts_processed"], total_parts);

    let commit = session["session_endpoints"]["commit"].as_str().unwrap();
    let r = emu
        .send(
            emu.authed(Method::POST, commit)
                .header("digest", sha_digest(&data))
                .json(&json!({"parts": &parts[..total_parts - 1]})),
        )
        .await;
    assert_eq!(r.body["code"], "parts_mismatch");
    let r = emu
        .send(emu.authed(Method::POST, commit).header("digest", sha_digest(b"wrong")).json(&json!({"parts": parts})))
        .await;
    assert_eq!(r.body["code"], "digest_mismatch");
    // The fault knob makes the commit answer 202 + Retry-After until the client retries.
    emu.set_faults("commit202=1").await;
    let r = emu
        .send(emu.authed(Method::POST, commit).header("digest", sha_digest(&data)).json(&json!({"parts": parts})))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.headers["retry-after"], "1");
    emu.set_faults("").await;
    let r = emu
        .send(emu.authed(Method::POST, commit).header("digest", sha_digest(&data)).json(&json!({"parts": parts})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let file = &r.body["entries"][0];
    assert_eq!(file["sha1"], sha1_hex(&data));
    assert_eq!(file["size"], data.len());
    let (_, _, body) = emu.download(file["id"].as_str().unwrap(), None).await;
    assert_eq!(sha1_hex(&body), sha1_hex(&data));
    // A committed session's parts are gone; retrying the commit returns the same file.
    let again = emu
        .send(emu.authed(Method::POST, commit).header("digest", sha_digest(&data)).json(&json!({"parts": parts})))
        .await;
    assert_eq!(again.body["entries"][0]["id"], file["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_abort() {
    let emu = TestEmulator::start_with(|c| {
        c.part_size = Some(1024);
        c.session_lifetime_secs = 1;
    })
    .await;
    let data = bytes(3, 3000);
    let sessions_url = emu.upload("/files/upload_sessions");
    let create =
        || emu.json(Method::POST, &sessions_url, json!({"folder_id": "0", "file_size": 3000, "file_name": "e.bin"}));
    let session = create().await.body;
    let abort = emu.delete(session["session_endpoints"]["abort"].as_str().unwrap()).await;
    assert_eq!(abort.status, StatusCode::NO_CONTENT);
    assert_eq!(emu.get(session["session_endpoints"]["status"].as_str().unwrap()).await.status, StatusCode::NOT_FOUND);
    let session = create().await.body;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = put_part(&emu, &session, &data, 0, 1024, sha_digest(&data[..1024])).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::GONE, Some("session_expired")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_refresh_tokens_rotate_and_are_single_use() {
    use boxfs_emulator::{DEFAULT_CLIENT_ID as ID, DEFAULT_CLIENT_SECRET as SECRET};
    let emu = TestEmulator::start().await;
    let authorize = format!(
        "{}/oauth2/authorize?response_type=code&client_id={ID}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=s123",
        emu.base()
    );
    let r = emu.http.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/cb");
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "s123");
    let token_url = format!("{}/oauth2/token", emu.base());
    let grant = |form: Vec<(&'static str, String)>| {
        let mut form = form;
        form.push(("client_id", ID.to_string()));
        form.push(("client_secret", SECRET.to_string()));
        emu.http.post(&token_url).form(&form).send()
    };
    let first: Value = grant(vec![("grant_type", "authorization_code".into()), ("code", q["code"].clone())])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh1 = first["refresh_token"].as_str().unwrap().to_string();
    // A code works once.
    let reuse = grant(vec![("grant_type", "authorization_code".into()), ("code", q["code"].clone())]).await.unwrap();
    assert_eq!(reuse.status(), StatusCode::BAD_REQUEST);
    let second: Value = grant(vec![("grant_type", "refresh_token".into()), ("refresh_token", refresh1.clone())])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(refresh1, refresh2);
    let used = grant(vec![("grant_type", "refresh_token".into()), ("refresh_token", refresh1)]).await.unwrap();
    assert_eq!(used.status(), StatusCode::BAD_REQUEST);
    let used: Value = used.json().await.unwrap();
    assert_eq!(used["error"], "invalid_grant");
    let me =
        emu.http.get(emu.api("/users/me")).bearer_auth(second["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // Client credentials: an access token, no refresh token.
    let ccg: Value = grant(vec![
        ("grant_type", "client_credentials".into()),
        ("box_subject_type", "enterprise".into()),
        ("box_subject_id", boxfs_emulator::ENTERPRISE_ID.into()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(ccg["access_token"].is_string() && ccg.get("refresh_token").is_none());
    // Expired tokens get a 401 with WWW-Authenticate; revoked ones too.
    emu.http.post(format!("{}/_emulator/expire-tokens", emu.base())).send().await.unwrap();
    let r = emu.get(&emu.api("/users/me")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let stats = emu.stats().await;
    assert_eq!(stats["token_grants"]["refresh_token"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_long_poll_wake_up() {
    let emu = TestEmulator::start_with(|c| c.longpoll_timeout = Duration::from_secs(2)).await;
    let now = emu.get(&emu.api("/events?stream_position=now")).await.body;
    assert_eq!(now["entries"].as_array().unwrap().len(), 0);
    let position = now["next_stream_position"].as_i64().unwrap();
    let servers = emu.send(emu.authed(Method::OPTIONS, &emu.api("/events"))).await.body;
    let url = format!("{}&stream_position={position}", servers["entries"][0]["url"].as_str().unwrap());
    // Nothing happens: reconnect after the timeout.
    let idle: Value = emu.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(idle["message"], "reconnect");
    // A change wakes a waiting long-poll at once.
    let http = emu.http.clone();
    let url2 = url.clone();
    let poll = tokio::spawn(async move {
        let v: Value = http.get(&url2).send().await.unwrap().json().await.unwrap();
        (v, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let changed_at = Instant::now();
    let folder = emu.new_folder("0", "watched").await;
    let (answer, woke_at) = poll.await.unwrap();
    assert_eq!(answer["message"], "new_change");
    let latency = woke_at.duration_since(changed_at);
    assert!(latency < Duration::from_millis(100), "long-poll woke after {latency:?}");
    emu.json(Method::PUT, &emu.api(&format!("/folders/{folder}")), json!({"name": "renamed"})).await;
    let events = emu.get(&emu.api(&format!("/events?stream_type=changes&stream_position={position}"))).await.body;
    let kinds: Vec<&str> =
        events["entries"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ITEM_CREATE", "ITEM_RENAME"]);
    let source = &events["entries"][1]["source"];
    assert_eq!((source["id"].as_str(), source["name"].as_str()), (Some(folder.as_str()), Some("renamed")));
    assert_eq!(source["parent"]["id"], "0");
    assert!(source["sequence_id"].is_string());
    let next = events["next_stream_position"].as_i64().unwrap();
    assert!(next > position);
    let later = emu.get(&emu.api(&format!("/events?stream_position={next}"))).await.body;
    assert_eq!(later["entries"].as_array().unwrap().len(), 0);
    // Paging with a limit.
    let one = emu.get(&emu.api(&format!("/events?stream_position={position}&limit=1"))).await.body;
    assert_eq!(one["entries"].as_array().unwrap().len(), 1);
    let r = emu.get(&emu.api("/events?stream_type=admin_logs")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_persists_across_restart() {
    let emu = TestEmulator::start().await;
    let folder = emu.new_folder("0", "kept").await;
    let data = bytes(9, 123_456);
    let file = emu.new_file(&folder, "kept.bin", data.clone()).await;
    let token = emu.token.clone();
    let position =
        emu.get(&emu.api("/events?stream_position=now")).await.body["next_stream_position"].as_i64().unwrap();
    let (dir, config) = emu.stop();
    let emu = TestEmulator::start_in(dir, config).await;
    let mut emu = emu;
    emu.token = token;
    let r = emu.get(&emu.api(&format!("/folders/{folder}/items?fields=name,size,sha1"))).await;
    assert_eq!(r.status, StatusCode::OK, "the old token is still valid");
    assert_eq!(r.body["entries"][0]["sha1"], sha1_hex(&data));
    let (_, _, body) = emu.download(&file, None).await;
    assert_eq!(body, data);
    emu.new_folder("0", "after restart").await;
    let events = emu.get(&emu.api(&format!("/events?stream_position={position}"))).await.body;
    assert_eq!(events["entries"].as_array().unwrap().len(), 1, "positions continue after a restart");
}

/// Statuses of `n` sequential requests (0 = connection dropped).
async fn fault_trace(emu: &TestEmulator, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        match emu.authed(Method::GET, &emu.api("/folders/0")).send().await {
            Ok(r) => out.push(r.status().as_u16()),
            Err(_) => out.push(0),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_deterministic_for_a_seed() {
    let spec = boxfs_emulator::FaultSpec::parse("429=0.15,500=0.1,503=0.05,reset=0.1,seed=7,retry_after=0").unwrap();
    let emu = TestEmulator::start_with(|c| c.faults = spec.clone()).await;
    let first = fault_trace(&emu, 80).await;
    drop(emu);
    let emu = TestEmulator::start_with(|c| c.faults = spec).await;
    let second = fault_trace(&emu, 80).await;
    assert_eq!(first, second);
    for status in [0, 200, 429, 500, 503] {
        assert!(first.contains(&status), "{status} occurs in {first:?}");
    }
    let stats = emu.stats().await;
    assert!(stats["faults_injected"]["reset"].as_u64().unwrap() > 0);
    // A 429 fault carries Retry-After.
    emu.set_faults("429=1,retry_after=3").await;
    let r = emu.get(&emu.api("/folders/0")).await;
    assert_eq!((r.status, r.headers["retry-after"].to_str().unwrap()), (StatusCode::TOO_MANY_REQUESTS, "3"));
    assert_eq!(r.body["code"], "rate_limit_exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_rate_limits_answer_429_with_retry_after() {
    let emu = TestEmulator::start_with(|c| c.rate_limits = true).await;
    let mut limited = None;
    for i in 0..1100 {
        let r = emu.authed(Method::GET, &emu.api("/users/me")).send().await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap()));
            break;
        }
    }
    let (at, retry_after) = limited.expect("the limit is enforced");
    assert!((1000..1010).contains(&at), "limited after {at} requests");
    assert!(retry_after >= 1);
    assert_eq!(emu.stats().await["rate_limited"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_holds_every_response() {
    let emu = TestEmulator::start_with(|cfg| cfg.network.latency = Duration::from_millis(100)).await;
    let folder = emu.new_folder("0", "slow").await;
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = emu.get(&emu.api(&format!("/folders/{folder}/items"))).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(t0.elapsed() >= Duration::from_millis(100), "a listing took {:?}", t0.elapsed());
    }
    // The download costs two round trips, as on Box (the API's 302, then the download host).
    let file = emu.new_file("0", "f.bin", bytes(1, 10)).await;
    let t0 = Instant::now();
    emu.download(&file, None).await;
    assert!(t0.elapsed() >= Duration::from_millis(200), "a download took {:?}", t0.elapsed());

    // Changed at run time; /_emulator itself is never held.
    let network = format!("{}/_emulator/network", emu.base());
    let r = emu.http.put(&network).body("latency=300:50").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let t0 = Instant::now();
    let now: Value = emu.http.get(&network).send().await.unwrap().json().await.unwrap();
    assert!(t0.elapsed() < Duration::from_millis(250), "GET /_emulator/network took {:?}", t0.elapsed());
    assert_eq!(now, json!({"latency_ms": 300, "jitter_ms": 50, "bandwidth": null}));
    let t0 = Instant::now();
    emu.get(&emu.api("/users/me")).await;
    assert!(t0.elapsed() >= Duration::from_millis(250), "held {:?}", t0.elapsed());
    let r = emu.http.put(&network).body("latency=fast").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_paces_each_connection_both_ways() {
    const SIZE: usize = 10_000_000;
    let emu = TestEmulator::start().await;
    let data = bytes(3, SIZE);
    let blob = emu.store().blobs().put_bytes(&data).unwrap();
    let file = emu
        .store()
        .create_file(
            boxfs_emulator::ADMIN_ID,
            boxfs_emulator::store::NewFile {
                parent_id: 0,
                name: "ten.bin".into(),
                blob,
                content_created_at: None,
                content_modified_at: None,
            },
        )
        .unwrap()
        .id
        .to_string();
    let network = format!("{}/_emulator/network", emu.base());
    let r = emu.http.put(&network).body("bandwidth=10000000").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // 10 MB at 10 MB/s on one connection: at least a second, and every byte intact.
    let t0 = Instant::now();
    let (status, _, got) = emu.download(&file, None).await;
    let took = t0.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(got == data, "the paced download is byte-exact");
    assert!(took >= Duration::from_secs(1), "10 MB at 10 MB/s took {took:?}");

    // Uploads are paced as well: 4 MB at 4 MB/s.
    emu.http.put(&network).body("bandwidth=4000000").send().await.unwrap();
    let t0 = Instant::now();
    let id = emu.new_file("0", "up.bin", bytes(4, 4_000_000)).await;
    assert!(t0.elapsed() >= Duration::from_secs(1), "4 MB up at 4 MB/s took {:?}", t0.elapsed());
    assert_eq!(emu.get(&emu.api(&format!("/files/{id}"))).await.body["sha1"], sha1_hex(&bytes(4, 4_000_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_count_requests_per_route() {
    let emu = TestEmulator::start().await;
    emu.http.delete(format!("{}/_emulator/stats", emu.base())).send().await.unwrap();
    for _ in 0..3 {
        emu.get(&emu.api("/folders/0/items")).await;
    }
    let id = emu.new_file("0", "c.txt", b"12345".to_vec()).await;
    emu.download(&id, None).await;
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["GET /2.0/folders/{id}/items"], 3);
    assert_eq!(stats["requests"]["POST /api/2.0/files/content"], 1);
    assert_eq!(stats["requests"]["GET /d/1/{ticket}/download"], 1);
    assert_eq!(stats["bytes_served"], 5);
    assert!(stats.get("requests").unwrap().get("GET /_emulator/stats").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_stay_indexed_at_100k_items() {
    let emu = TestEmulator::start().await;
    let store = emu.store();
    let folder = store.create_folder(boxfs_emulator::ADMIN_ID, 0, "huge").unwrap().id;
    let blob = store.blobs().put_bytes(b"x").unwrap();
    for i in 0..100_000 {
        store
            .create_file(
                boxfs_emulator::ADMIN_ID,
                boxfs_emulator::store::NewFile {
                    parent_id: folder,
                    name: format!("f{i:06}"),
                    blob: blob.clone(),
                    content_created_at: None,
                    content_modified_at: None,
                },
            )
            .unwrap();
    }
    // Every page, including the last of a 100k folder, is served from the index (no scan,
    // no sort): the query plan is the deterministic stand-in for "does not slow down".
    for plan in store.explain_listing_plans(folder).unwrap() {
        assert!(plan.contains("items_children"), "listing uses the children index: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "listing does not sort: {plan}");
    }
    let r = emu.get(&emu.api(&format!("/folders/{folder}/items?offset=9000&limit=1000&fields=name"))).await;
    assert_eq!(r.body["total_count"], 100_000);
    assert_eq!(r.body["entries"][0]["name"], "f009000");
    let mut marker: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut url = emu.api(&format!("/folders/{folder}/items?usemarker=true&limit=1000"));
        if let Some(m) = &marker {
            url.push_str(&format!("&marker={m}"));
        }
        let r = emu.get(&url).await;
        seen += r.body["entries"].as_array().unwrap().len();
        match r.body["next_marker"].as_str() {
            Some(m) => marker = Some(m.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, 100_000);
}

/// A data dir from before there were several users (no users table, no owner on items, tokens
/// and events without a user) opens as the admin's: its token, its tree and its events are
/// the admin's, and new users get roots of their own beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_user_data_dir_opens_as_the_admins() {
    let emu = TestEmulator::start().await;
    let folder = emu.new_folder("0", "kept").await;
    emu.new_file(&folder, "old.txt", b"from before".to_vec()).await;
    let old_token = emu.token.clone();
    let (dir, config) = emu.stop();
    // The layout of the emulator before users: what was added since is taken away again.
    let db = rusqlite::Connection::open(config.data_dir.join("emulator.sqlite3")).unwrap();
    db.execute_batch(
        "DROP INDEX items_root_trash; DROP INDEX events_user;
         ALTER TABLE items DROP COLUMN root_id; ALTER TABLE tokens DROP COLUMN user_id;
         ALTER TABLE events DROP COLUMN user_id; ALTER TABLE events DROP COLUMN created_by;
         DROP TABLE users; DROP TABLE collaborations; DROP TABLE public_keys; DROP TABLE used_jtis;
         DELETE FROM sqlite_sequence WHERE name = 'collaborations';",
    )
    .unwrap();
    drop(db);
    let emu = TestEmulator::start_in(dir, config).await;
    let me = emu.send(emu.http.get(emu.api("/users/me")).bearer_auth(&old_token)).await;
    assert_eq!((me.status, me.body["id"].as_str()), (StatusCode::OK, Some(boxfs_emulator::ADMIN_ID)));
    assert!(me.body["space_used"].as_i64() >= Some(11), "{}", me.body);
    let items = emu.get(&emu.api(&format!("/folders/{folder}/items?fields=name,owned_by,permissions"))).await.body;
    assert_eq!(items["entries"][0]["name"], "old.txt");
    assert_eq!(items["entries"][0]["owned_by"]["id"], boxfs_emulator::ADMIN_ID);
    assert_eq!(items["entries"][0]["permissions"]["can_delete"], true);
    let events = emu.get(&emu.api("/events?stream_position=0")).await.body;
    assert!(events["entries"].as_array().unwrap().iter().any(|e| e["source"]["name"] == "old.txt"), "{events}");
    let user = emu.json(Method::POST, &emu.api("/users"), json!({"name": "New", "login": "new@example.com"})).await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.body);
    let token = emu.running.state.developer_token_for(user.body["id"].as_str().unwrap()).unwrap();
    let theirs = emu.send(emu.http.get(emu.api("/folders/0/items")).bearer_auth(&token)).await.body;
    assert_eq!(theirs["total_count"], 0, "a new user's root is their own");
    let hidden = emu.send(emu.http.get(emu.api(&format!("/folders/{folder}"))).bearer_auth(&token)).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
}
