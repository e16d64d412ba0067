//! Metadata within a budget on a real mount: with `--metadata-cache-size` far smaller than
//! the tree, a walk of a few thousand files shows exactly what the emulator holds, and a
//! second walk lists the evicted folders again (the emulator's counters show it).

mod common;

use common::mount::{fuse_emulator, Mounted};
use std::collections::BTreeMap;

const FOLDERS: usize = 30;
const FILES: usize = 100;

/// path → size of every item under `root`, walked the way `ls -lR` does (readdir + lstat).
fn walk(root: &std::path::Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readdir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if meta.is_dir() {
                dirs.push(path);
                out.insert(format!("{rel}/"), 0);
            } else {
                out.insert(rel, meta.len());
            }
        }
    }
    out
}

fn listing_calls(m: &Mounted) -> u64 {
    m.stats()["requests"]["GET /2.0/folders/{id}/items"].as_u64().unwrap_or(0)
}

#[test]
fn a_walk_over_a_small_metadata_budget_shows_the_emulators_tree_and_relists_evicted_folders() {
    let Some((rt, emu)) = fuse_emulator(|_| {}) else { return };
    let store = emu.store();
    let blob = store.blobs().put_bytes(b"abc").unwrap();
    let names: Vec<String> = (0..FILES).map(|f| format!("file-{f:03}.txt")).collect();
    let mut folder_ids = Vec::new();
    for d in 0..FOLDERS {
        let id = store.create_folder(boxfs_emulator::ADMIN_ID, 0, &format!("dir-{d:02}")).unwrap().id;
        store.seed_files(id, &names, &blob).unwrap();
        folder_ids.push((format!("dir-{d:02}"), id));
    }
    // What the emulator holds, through its API.
    let mut want = BTreeMap::new();
    for (dir, id) in &folder_ids {
        want.insert(format!("{dir}/"), 0);
        let r = rt.block_on(emu.get(&emu.api(&format!("/folders/{id}/items?limit=1000&fields=name,size"))));
        for e in r.body["entries"].as_array().unwrap() {
            want.insert(format!("{dir}/{}", e["name"].as_str().unwrap()), e["size"].as_u64().unwrap());
        }
    }
    assert_eq!(want.len(), FOLDERS * (FILES + 1));

    // About 30 KB per folder of 100 files: the budget holds three or four of thirty.
    let m = Mounted::start(rt, emu, &["--metadata-cache-size", "100000", "--events", "off"]);
    m.reset_stats();
    assert_eq!(walk(m.path()), want, "the first walk shows the emulator's tree");
    let first = listing_calls(&m);
    assert_eq!(first as usize, FOLDERS + 1, "one listing call per folder and the root");

    assert_eq!(walk(m.path()), want, "the second walk too, with folders listed again");
    let second = listing_calls(&m) - first;
    assert!(second as usize >= FOLDERS - 5, "evicted folders are listed again: {second} listing calls");
}
