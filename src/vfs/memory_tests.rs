//! The metadata budget against an in-memory Box ([`FakeBox`]): listings past the budget are
//! dropped and listed again when needed, with the same entries; inodes the kernel forgot are
//! dropped once no cached listing shows them, and their numbers never name another item;
//! pending local changes stay.

use super::fake::{FakeBox, ROOT_ID};
use super::tests::{config, fs_with};
use super::{Caller, Fs, FsConfig, Ino, ROOT_INO};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const ME: Caller = Caller { uid: 1000, gid: 1000 };
const FOLDERS: usize = 12;
const FILES: usize = 25;

/// A filesystem over `fake` whose metadata budget holds about two folders' listings.
async fn small_budget_fs(fake: &FakeBox, dir: &Path) -> Arc<Fs> {
    fs_with(fake, dir, FsConfig { metadata_budget: 20_000, ..config(Duration::from_secs(3600)) }).await
}

fn tree() -> FakeBox {
    let fake = FakeBox::new();
    for d in 0..FOLDERS {
        let folder = fake.add_folder(ROOT_ID, &format!("d{d:02}"));
        for f in 0..FILES {
            fake.add_file(&folder, &format!("f{f:02}"), format!("{d}/{f}").as_bytes());
        }
    }
    fake
}

/// `ls -R` as the kernel does it: each folder looked up, opened and read; each entry looked
/// up (a kernel reference) and, when `forget`, forgotten again. Returns (path, inode) pairs.
async fn walk(fs: &Fs, forget: bool) -> Vec<(String, Ino)> {
    let mut seen = Vec::new();
    for d in 0..FOLDERS {
        let name = format!("d{d:02}");
        let dir = fs.lookup(ROOT_INO, &name).await.expect("folder").ino;
        let fh = fs.opendir(dir, true).await.expect("opendir").fh;
        let entries: Vec<_> = fs.readdir(fh).expect("readdir").from(2).map(|(_, e)| e.clone()).collect();
        fs.releasedir(fh);
        for e in entries {
            let attr = fs.lookup(dir, &e.name).await.expect("entry");
            seen.push((format!("{name}/{}", e.name), attr.ino));
            if forget {
                fs.forget(attr.ino, 1);
            }
        }
        if forget {
            fs.forget(dir, 1);
        }
    }
    seen.sort();
    seen
}

#[tokio::test]
async fn folders_past_the_budget_are_listed_again_with_the_same_entries() {
    let fake = tree();
    let dir = tempfile::tempdir().unwrap();
    let fs = small_budget_fs(&fake, dir.path()).await;

    let first = walk(&fs, false).await;
    assert_eq!(first.len(), FOLDERS * FILES);
    let listed = fake.calls("list_folder");
    assert_eq!(listed as usize, FOLDERS + 1, "each folder and the root once");
    let (used, budget) = fs.listings_usage();
    assert!(used <= budget, "{used} bytes of listings kept, budget {budget}");

    let second = walk(&fs, false).await;
    assert_eq!(second, first, "the same names, and the kernel's inodes kept their numbers");
    assert!(
        fake.calls("list_folder") >= listed + FOLDERS as u64 - 2,
        "evicted folders are listed again: {} calls after {listed}",
        fake.calls("list_folder")
    );
}

#[tokio::test]
async fn forgotten_inodes_are_dropped_and_their_numbers_never_name_another_item() {
    let fake = tree();
    let dir = tempfile::tempdir().unwrap();
    let fs = small_budget_fs(&fake, dir.path()).await;

    let mut names_of: HashMap<Ino, String> = HashMap::new();
    for round in 0..3 {
        for (path, ino) in walk(&fs, true).await {
            let earlier = names_of.entry(ino).or_insert_with(|| path.clone());
            assert_eq!(*earlier, path, "round {round}: inode {ino} named another item before");
        }
        let kept = fs.inode_count();
        assert!(kept < FOLDERS * FILES / 2, "round {round}: {kept} inodes kept of {}", FOLDERS * (FILES + 1));
    }
}

#[tokio::test]
async fn pending_changes_and_their_folders_are_never_evicted() {
    let fake = tree();
    let dir = tempfile::tempdir().unwrap();
    let fs = small_budget_fs(&fake, dir.path()).await;

    let d00 = fs.lookup(ROOT_INO, "d00").await.expect("d00").ino;
    let (attr, fh) = fs.create(d00, "pending.txt", 0o644, ME).await.expect("create");
    assert_eq!(fs.write(fh, 0, b"not in Box yet").expect("write"), 14);
    fs.flush(fh).await.expect("flush");
    fs.release(fh);
    fs.forget(attr.ino, 1);
    fs.forget(d00, 1);
    let listed = fake.calls("list_folder");

    walk(&fs, true).await;
    walk(&fs, true).await;
    assert_eq!(fs.lookup(ROOT_INO, "d00").await.expect("d00").ino, d00, "the folder of a pending file stays");
    let again = fs.lookup(d00, "pending.txt").await.expect("the pending file is listed");
    assert_eq!((again.ino, again.size), (attr.ino, 14));
    assert_eq!(fake.calls("upload_bytes") + fake.calls("upload_resumable"), 0, "still pending");
    assert!(fake.calls("list_folder") > listed, "other folders were evicted and listed again");
}
