//! The emulator's kept folder listing pages, over real HTTP on 127.0.0.1: the same request
//! made again while nothing changed is the same bytes, answered without rendering (counted in
//! `/_emulator/stats`); every kind of change, an expiring lock, each viewer and each query get
//! a page of their own; and what wraps the route (authentication, faults, counters) still
//! applies to a kept page.

mod common;

use common::emu::{bytes, TestEmulator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// The fields boxfs asks a listing for.
const FIELDS: &str = boxfs_api::LIST_FIELDS;

/// A user of the emulator with a token of their own.
struct Person {
    id: String,
    token: String,
}

fn person(emu: &TestEmulator, id: &str) -> Person {
    Person { id: id.to_string(), token: emu.running.state.developer_token_for(id).unwrap() }
}

/// The admin, with the token the test emulator already holds for them.
fn admin(emu: &TestEmulator) -> Person {
    Person { id: boxfs_emulator::ADMIN_ID.to_string(), token: emu.token.clone() }
}

/// The managed user `user1@boxfs.invalid` (start the emulator with `users = 1`).
fn user1(emu: &TestEmulator) -> Person {
    let id = emu.store().users().unwrap().into_iter().find(|u| u.login == "user1@boxfs.invalid").unwrap().id;
    person(emu, &id)
}

/// A listing page as `req` answers it: status and body bytes.
async fn raw(req: reqwest::RequestBuilder) -> (StatusCode, Vec<u8>) {
    let resp = req.send().await.expect("request sent");
    (resp.status(), resp.bytes().await.expect("body read").to_vec())
}

/// `GET /folders/{folder}/items?{query}` as `who`: the body bytes (panics unless 200).
async fn page(emu: &TestEmulator, who: &Person, folder: &str, query: &str) -> Vec<u8> {
    let url = emu.api(&format!("/folders/{folder}/items?{query}"));
    let (status, body) = raw(emu.http.get(url).bearer_auth(&who.token)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    body
}

fn parsed(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("a JSON page")
}

/// `(rendered, cached)` listing pages since the counters were last read, then resets them.
async fn counted(emu: &TestEmulator) -> (u64, u64) {
    let stats = emu.stats().await;
    let r = emu.http.delete(format!("{}/_emulator/stats", emu.base())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    (stats["listing_pages_rendered"].as_u64().unwrap(), stats["listing_pages_cached"].as_u64().unwrap())
}

/// The entry named `name` of a page.
fn entry<'a>(page: &'a Value, name: &str) -> Option<&'a Value> {
    page["entries"].as_array().unwrap().iter().find(|e| e["name"] == name)
}

/// An emulator with the admin's folder `name` at their root: (emulator, admin, folder id).
async fn a_folder(name: &str) -> (TestEmulator, Person, String) {
    let emu = TestEmulator::start().await;
    let me = admin(&emu);
    let folder = emu.new_folder("0", name).await;
    (emu, me, folder)
}

/// An emulator with one managed user; the admin's folder `shared` (holding `plan.txt`) shared
/// with that user as a viewer: (emulator, admin, user, folder id, collaboration id).
async fn shared_with_a_viewer() -> (TestEmulator, Person, Person, String, String) {
    let emu = TestEmulator::start_with(|c| c.users = 1).await;
    let (a, b) = (admin(&emu), user1(&emu));
    let folder = emu.new_folder("0", "shared").await;
    emu.new_file(&folder, "plan.txt", bytes(1, 10)).await;
    let body = json!({"item": {"type": "folder", "id": folder}, "accessible_by": {"type": "user", "id": b.id},
        "role": "viewer"});
    let r = emu.send(emu.http.post(emu.api("/collaborations")).bearer_auth(&a.token).json(&body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let collab = r.body["id"].as_str().unwrap().to_string();
    (emu, a, b, folder, collab)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_listing_is_the_same_bytes_without_rendering() {
    let (emu, me, folder) = a_folder("walk").await;
    for i in 0..20 {
        emu.new_file(&folder, &format!("f{i:02}.txt"), bytes(i, 10)).await;
    }
    emu.new_folder(&folder, "sub").await;
    let query = format!("usemarker=true&limit=1000&fields={FIELDS}");
    counted(&emu).await;
    let first = page(&emu, &me, &folder, &query).await;
    let again = page(&emu, &me, &folder, &query).await;
    assert_eq!(first, again);
    assert_eq!(counted(&emu).await, (1, 1), "the second page came from memory");
    // The same parameters in another order are the same request.
    let reordered = format!("fields={FIELDS}&limit=1000&usemarker=true");
    assert_eq!(page(&emu, &me, &folder, &reordered).await, first);
    // The request counters see a kept page as any other.
    assert_eq!(emu.stats().await["requests"]["GET /2.0/folders/{id}/items"], 1);
    assert_eq!(counted(&emu).await, (0, 1));
    // A change elsewhere drops the kept pages: the page rendered again is the same bytes.
    emu.new_folder("0", "elsewhere").await;
    assert_eq!(page(&emu, &me, &folder, &query).await, first);
    assert_eq!(counted(&emu).await, (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_shows_in_the_next_listing() {
    let (emu, me, folder) = a_folder("team").await;
    let other = emu.new_folder("0", "other").await;
    let plan = emu.new_file(&folder, "plan.txt", bytes(1, 10)).await;
    let notes = emu.new_file(&folder, "notes.txt", bytes(2, 10)).await;
    let query = format!("fields={FIELDS},shared_link");
    let listing = || async { parsed(&page(&emu, &me, &folder, &query).await) };
    let file_url = |id: &str| emu.api(&format!("/files/{id}"));

    // Each change, then what the next listing must show.
    let before = listing().await;
    assert_eq!(before, listing().await, "kept");
    emu.new_file(&folder, "new.txt", bytes(3, 10)).await;
    assert!(entry(&listing().await, "new.txt").is_some(), "an upload into the folder");

    listing().await;
    let r = emu.json(Method::PUT, &file_url(&plan), json!({"name": "plan-v2.txt"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = listing().await;
    assert!(entry(&after, "plan.txt").is_none() && entry(&after, "plan-v2.txt").is_some(), "a rename");

    listing().await;
    let form = reqwest::multipart::Form::new()
        .text("attributes", "{}")
        .part("file", reqwest::multipart::Part::bytes(bytes(4, 99)).file_name("notes.txt"));
    let r = emu.send(emu.authed(Method::POST, &emu.upload(&format!("/files/{notes}/content"))).multipart(form)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(entry(&listing().await, "notes.txt").unwrap()["size"], 99, "a new version");

    listing().await;
    let r = emu.json(Method::PUT, &file_url(&notes), json!({"lock": {"access": "lock"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(entry(&listing().await, "notes.txt").unwrap()["lock"].is_object(), "a lock");

    listing().await;
    let url = emu.api(&format!("/files/{notes}/metadata/global/properties"));
    assert_eq!(emu.json(Method::POST, &url, json!({"k": "v"})).await.status, StatusCode::CREATED);
    let notes_entry = listing().await;
    let metadata = &entry(&notes_entry, "notes.txt").unwrap()["metadata"]["global"]["properties"];
    assert_eq!(metadata["k"], "v", "metadata set: {notes_entry}");

    listing().await;
    let r = emu.json(Method::PUT, &file_url(&notes), json!({"shared_link": {"access": "open"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(entry(&listing().await, "notes.txt").unwrap()["shared_link"].is_object(), "a shared link");

    listing().await;
    assert_eq!(emu.delete(&file_url(&plan)).await.status, StatusCode::NO_CONTENT);
    assert!(entry(&listing().await, "plan-v2.txt").is_none(), "a delete (to the trash)");

    listing().await;
    let r = emu.json(Method::POST, &file_url(&plan), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(entry(&listing().await, "plan-v2.txt").is_some(), "a restore from the trash");

    listing().await;
    let r = emu.json(Method::PUT, &file_url(&plan), json!({"parent": {"id": other}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(entry(&listing().await, "plan-v2.txt").is_none(), "a move out");

    listing().await;
    let r = emu.json(Method::PUT, &file_url(&plan), json!({"parent": {"id": folder}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(entry(&listing().await, "plan-v2.txt").is_some(), "a move in");

    listing().await;
    let sub = emu.new_folder(&folder, "sub").await;
    let r = emu.json(Method::PUT, &emu.api(&format!("/folders/{sub}")), json!({"name": "renamed sub"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(entry(&listing().await, "renamed sub").is_some(), "a folder made and renamed");

    // Nothing changed since the last listing: the same listing twice is the kept page twice.
    counted(&emu).await;
    assert_eq!(listing().await, listing().await);
    assert_eq!(counted(&emu).await, (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collaboration_change_shows_in_the_collaborators_next_listing() {
    let (emu, a, b, folder, collab) = shared_with_a_viewer().await;
    let query = "fields=name,permissions";
    let can_delete = |body: Vec<u8>| parsed(&body)["entries"][0]["permissions"]["can_delete"].clone();

    assert_eq!(can_delete(page(&emu, &b, &folder, query).await), false);
    assert_eq!(can_delete(page(&emu, &b, &folder, query).await), false, "kept");
    let url = emu.api(&format!("/collaborations/{collab}"));
    let r = emu.send(emu.http.put(&url).bearer_auth(&a.token).json(&json!({"role": "editor"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(can_delete(page(&emu, &b, &folder, query).await), true, "the new role");

    // Without the collaboration, B may no longer list the folder, kept page or not.
    let r = emu.send(emu.http.delete(&url).bearer_auth(&a.token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (status, _) =
        raw(emu.http.get(emu.api(&format!("/folders/{folder}/items?{query}"))).bearer_auth(&b.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_viewer_gets_their_own_page() {
    let (emu, a, b, folder, _) = shared_with_a_viewer().await;
    let query = "fields=name,permissions";

    counted(&emu).await;
    let as_a = page(&emu, &a, &folder, query).await;
    let as_b = page(&emu, &b, &folder, query).await;
    assert_ne!(as_a, as_b, "the owner and a viewer have other rights");
    assert_eq!(page(&emu, &b, &folder, query).await, as_b);
    assert_eq!(page(&emu, &a, &folder, query).await, as_a);
    assert_eq!(counted(&emu).await, (2, 2));
    // The admin acting as B (`As-User`) is B.
    let url = emu.api(&format!("/folders/{folder}/items?{query}"));
    let (status, as_user) = raw(emu.http.get(&url).bearer_auth(&a.token).header("as-user", &b.id)).await;
    assert_eq!((status, as_user), (StatusCode::OK, as_b));
    assert_eq!(counted(&emu).await, (0, 1));
    // Each viewer's root is their own `0`.
    let (root_a, root_b) = (page(&emu, &a, "0", query).await, page(&emu, &b, "0", query).await);
    assert!(entry(&parsed(&root_a), "shared").is_some() && entry(&parsed(&root_b), "shared").is_some());
    assert_ne!(root_a, root_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_query_gets_its_own_page() {
    let (emu, me, folder) = a_folder("many").await;
    for i in 0..5 {
        emu.new_file(&folder, &format!("f{i}.txt"), bytes(i, 10 + i as usize)).await;
    }
    let names = |body: &[u8]| -> Vec<String> {
        parsed(body)["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    };
    let queries = [
        "fields=name",
        "fields=name,size",
        "fields=name&limit=2",
        "fields=name&limit=2&offset=2",
        "fields=name&limit=2&offset=2&direction=DESC",
        "fields=name&sort=size&direction=DESC",
        "fields=name&usemarker=true&limit=2",
        "",
    ];
    counted(&emu).await;
    let mut pages = Vec::new();
    for q in queries {
        pages.push(page(&emu, &me, &folder, q).await);
    }
    for (i, q) in queries.iter().enumerate() {
        assert_eq!(page(&emu, &me, &folder, q).await, pages[i], "{q} kept");
        for j in 0..i {
            assert_ne!(pages[i], pages[j], "{q} and {}", queries[j]);
        }
    }
    assert_eq!(counted(&emu).await, (queries.len() as u64, queries.len() as u64));
    assert_eq!(names(&pages[2]), ["f0.txt", "f1.txt"]);
    assert_eq!(names(&pages[3]), ["f2.txt", "f3.txt"]);
    assert_eq!(names(&pages[4]), ["f2.txt", "f1.txt"]);
    // The next marker page is a request of its own.
    let marker = parsed(&pages[6])["next_marker"].as_str().unwrap().to_string();
    let next = page(&emu, &me, &folder, &format!("fields=name&usemarker=true&limit=2&marker={marker}")).await;
    assert_eq!(names(&next), ["f2.txt", "f3.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_page_with_an_expiring_lock_is_rendered_again_once_it_expires() {
    let (emu, me, folder) = a_folder("locked").await;
    let id = emu.new_file(&folder, "plan.txt", bytes(1, 10)).await;
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let r = emu.json(Method::PUT, &emu.api(&format!("/files/{id}")), json!({"lock": {"expires_at": expires}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let lock = |body: Vec<u8>| parsed(&body)["entries"][0]["lock"].clone();

    counted(&emu).await;
    assert!(lock(page(&emu, &me, &folder, "fields=name,lock").await).is_object());
    assert!(lock(page(&emu, &me, &folder, "fields=name,lock").await).is_object());
    assert_eq!(counted(&emu).await, (1, 1));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(lock(page(&emu, &me, &folder, "fields=name,lock").await).is_null(), "the lock expired");
    assert_eq!(counted(&emu).await, (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_wraps_the_route_applies_to_a_kept_page() {
    let (emu, me, folder) = a_folder("kept").await;
    emu.new_file(&folder, "plan.txt", bytes(1, 10)).await;
    let kept = page(&emu, &me, &folder, "fields=name").await;
    let url = emu.api(&format!("/folders/{folder}/items?fields=name"));

    let (status, _) = raw(emu.http.get(&url).bearer_auth("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = raw(emu.http.get(&url)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    emu.set_faults("500=1").await;
    let (status, _) = raw(emu.http.get(&url).bearer_auth(&me.token)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    emu.set_faults("").await;
    assert_eq!(page(&emu, &me, &folder, "fields=name").await, kept);
    let stats = emu.stats().await;
    assert_eq!(stats["faults_injected"]["500"], 1, "{stats}");
    assert_eq!(stats["statuses"]["401"], 2, "{stats}");
    assert_eq!(stats["listing_pages_cached"], 1, "{stats}");
}
