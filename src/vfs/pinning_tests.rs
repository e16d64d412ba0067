//! Pinned content against the in-memory Box: pins are kept through eviction and reopen, read
//! back without a download, inherited by what is below a pinned folder, and refused or
//! unpinned as `pinning.rs` says.

use super::fake::{FakeBox, ROOT_ID};
use super::read::blocks::BlockCache;
use super::read::pins::{PinList, PinState};
use super::tests::{config, read_all};
use super::write::journal::Journal;
use super::{Fs, PinMark, VfsError, ROOT_INO};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const BLOCK: u64 = 64 * 1024;

/// A filesystem over `fake` whose block cache holds `capacity` bytes of unpinned blocks.
async fn fs_in(fake: &FakeBox, dir: &Path, capacity: u64) -> Arc<Fs> {
    let blocks = BlockCache::open(&dir.join("blocks"), capacity, BLOCK).expect("block cache");
    let journal = Journal::open(&Journal::dir_in(dir)).expect("journal");
    let pins = PinList::open(dir).expect("pins");
    let cfg = config(Duration::from_secs(3600));
    let fs = Fs::new(Arc::new(fake.clone()), ROOT_ID, Arc::new(blocks), journal, pins, cfg).await.expect("fs");
    fs.start_pinning();
    fs
}

fn content(i: usize) -> Vec<u8> {
    (0..(BLOCK as usize * 2 + 1000 * i)).map(|b| (b * 7 + i) as u8).collect()
}

/// A folder `docs` of five files of three blocks each (well over a 2-block capacity).
fn docs(fake: &FakeBox) -> String {
    let docs = fake.add_folder(ROOT_ID, "docs");
    for i in 0..5 {
        fake.add_file(&docs, &format!("f{i}.bin"), &content(i));
    }
    docs
}

async fn complete(fs: &Fs, ino: u64) {
    for _ in 0..500 {
        match fs.pin_progress(ino).map(|p| p.state) {
            Some(PinState::Complete) => return,
            Some(PinState::Failed(why)) => panic!("pin failed: {why}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("the pin did not complete: {:?}", fs.pin_progress(ino));
}

#[tokio::test]
async fn a_pinned_folder_is_downloaded_kept_over_the_capacity_and_read_without_downloads() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeBox::new();
    docs(&fake);
    let other = fake.add_file(ROOT_ID, "other.bin", &vec![9u8; 4 * BLOCK as usize]);
    let fs = fs_in(&fake, tmp.path(), 2 * BLOCK).await;
    let docs = fs.lookup(ROOT_INO, "docs").await.unwrap().ino;
    assert!(fs.pin(docs).await.unwrap());
    assert!(!fs.pin(docs).await.unwrap(), "pinned already");
    complete(&fs, docs).await;
    let progress = fs.pin_progress(docs).unwrap();
    assert_eq!((progress.files_present, progress.files_total), (5, 5));
    assert_eq!(progress.bytes_present, progress.bytes_total);
    let usage = fs.cache_usage();
    assert_eq!((usage.pinned, usage.used), (progress.bytes_total, 0));

    // Unpinned reads fill the capacity and evict among themselves; nothing pinned goes.
    let other_ino = fs.lookup(ROOT_INO, "other.bin").await.unwrap().ino;
    assert_eq!(read_all(&fs, other_ino).await, fake.content(&other).unwrap());
    assert!(fs.cache_usage().used <= 2 * BLOCK);
    let downloads = fake.calls("read_range_into");
    for i in 0..5 {
        let ino = fs.lookup(docs, &format!("f{i}.bin")).await.unwrap().ino;
        assert_eq!(read_all(&fs, ino).await, content(i), "f{i}");
    }
    assert_eq!(fake.calls("read_range_into"), downloads, "pinned files read without a download");

    // The attribute: `1` on the folder, `inherited` below, nothing elsewhere.
    let f0 = fs.lookup(docs, "f0.bin").await.unwrap().ino;
    assert_eq!(fs.pinned_xattr(docs).unwrap(), b"1");
    assert_eq!(fs.pinned_xattr(f0).unwrap(), b"inherited");
    assert!(matches!(fs.pin_mark(f0), Some(PinMark::Inherited(p)) if p.path == "docs"));
    assert_eq!(fs.pinned_xattr(other_ino).unwrap_err().errno(), libc::ENODATA);
    assert!(fs.listxattr(f0).unwrap().contains(&"user.boxfs.pinned"));
    let refused = fs.unpin(f0).await.unwrap_err();
    assert_eq!(refused.errno(), libc::EPERM, "{refused}");
    assert_eq!(fs.unpin(other_ino).await.unwrap_err().errno(), libc::ENODATA);
}

#[tokio::test]
async fn pins_survive_a_remount_with_a_smaller_cache_and_unpinning_makes_them_evictable() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeBox::new();
    docs(&fake);
    {
        let fs = fs_in(&fake, tmp.path(), 64 * BLOCK).await;
        let docs = fs.lookup(ROOT_INO, "docs").await.unwrap().ino;
        fs.pin(docs).await.unwrap();
        complete(&fs, docs).await;
    }
    let fs = fs_in(&fake, tmp.path(), BLOCK).await;
    let pinned = fs.cache_usage().pinned;
    assert!(pinned >= 5 * 2 * BLOCK, "nothing pinned evicted at open: {pinned}");
    let docs = fs.lookup(ROOT_INO, "docs").await.unwrap().ino;
    complete(&fs, docs).await;
    let downloads = fake.calls("read_range_into");
    for i in 0..5 {
        let ino = fs.lookup(docs, &format!("f{i}.bin")).await.unwrap().ino;
        assert_eq!(read_all(&fs, ino).await, content(i));
    }
    assert_eq!(fake.calls("read_range_into"), downloads);

    fs.unpin(docs).await.unwrap();
    assert_eq!(fs.pinned_xattr(docs).unwrap_err().errno(), libc::ENODATA);
    for _ in 0..500 {
        if fs.cache_usage().pinned == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let usage = fs.cache_usage();
    assert_eq!(usage.pinned, 0, "unpinned at the worker's run");
    assert!(usage.used <= BLOCK, "and evicted down to the capacity: {usage:?}");
}

#[tokio::test]
async fn a_changed_pinned_file_gets_its_new_version_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeBox::new();
    let id = fake.add_file(ROOT_ID, "a.bin", &content(1));
    let fs = fs_in(&fake, tmp.path(), BLOCK).await;
    let ino = fs.lookup(ROOT_INO, "a.bin").await.unwrap().ino;
    fs.pin(ino).await.unwrap();
    complete(&fs, ino).await;
    assert_eq!(fs.pinned_xattr(ino).unwrap(), b"1");
    fake.change_remotely(&id, &content(3));
    fs.inodes().mark_stale(ino);
    fs.getattr(ino).await.unwrap();
    fs.pins().wake();
    for _ in 0..500 {
        if fs.cache_usage().pinned == content(3).len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fs.cache_usage().pinned, content(3).len() as u64, "the new version pinned, the old one not");
    let downloads = fake.calls("read_range_into");
    assert_eq!(read_all(&fs, ino).await, content(3));
    assert_eq!(fake.calls("read_range_into"), downloads);
}

#[tokio::test]
async fn pinning_what_is_not_in_box_or_not_a_file_or_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeBox::new();
    let fs = fs_in(&fake, tmp.path(), BLOCK).await;
    assert!(matches!(fs.pin(9_999_999).await, Err(VfsError::NotFound)));
    let (attr, fh) = fs.create(ROOT_INO, "new.txt", 0o644, super::Caller { uid: 1000, gid: 1000 }).await.unwrap();
    fs.release(fh);
    assert!(matches!(fs.pin(attr.ino).await, Err(VfsError::NotInBoxYet)));
}

#[tokio::test]
async fn a_file_moved_into_a_pinned_folder_is_pinned_and_a_deleted_pinned_item_loses_its_pin() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeBox::new();
    docs(&fake);
    fake.add_file(ROOT_ID, "later.bin", &content(7));
    fake.add_file(ROOT_ID, "gone.bin", &content(8));
    let fs = fs_in(&fake, tmp.path(), BLOCK).await;
    let docs = fs.lookup(ROOT_INO, "docs").await.unwrap().ino;
    fs.pin(docs).await.unwrap();
    complete(&fs, docs).await;

    fs.rename(ROOT_INO, "later.bin", docs, "later.bin", false).await.unwrap();
    for _ in 0..500 {
        if fs.pin_progress(docs).is_some_and(|p| p.files_present == 6 && p.state == PinState::Complete) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fs.pin_progress(docs).unwrap().files_present, 6, "moved in: pinned by its position");
    let later = fs.lookup(docs, "later.bin").await.unwrap().ino;
    assert_eq!(fs.pinned_xattr(later).unwrap(), b"inherited");
    let downloads = fake.calls("read_range_into");
    assert_eq!(read_all(&fs, later).await, content(7));
    assert_eq!(fake.calls("read_range_into"), downloads);

    let gone = fs.lookup(ROOT_INO, "gone.bin").await.unwrap().ino;
    fs.pin(gone).await.unwrap();
    complete(&fs, gone).await;
    fs.unlink(ROOT_INO, "gone.bin").await.unwrap();
    for _ in 0..500 {
        if fs.pins_report().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left: Vec<String> = fs.pins_report().into_iter().map(|p| p.pin.path).collect();
    assert_eq!(left, vec!["docs".to_string()], "the deleted file's pin went with it");
}

#[tokio::test]
async fn the_root_can_be_pinned_and_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeBox::new();
    docs(&fake);
    let fs = fs_in(&fake, tmp.path(), BLOCK).await;
    let docs = fs.lookup(ROOT_INO, "docs").await.unwrap().ino;
    fs.pin(ROOT_INO).await.unwrap();
    complete(&fs, ROOT_INO).await;
    assert_eq!(fs.pin_progress(ROOT_INO).unwrap().files_present, 5);
    assert_eq!(fs.pinned_xattr(docs).unwrap(), b"inherited");
    let refused = fs.unpin(docs).await.unwrap_err();
    assert_eq!(refused.to_string(), "docs is pinned through the pinned folder /; unpin that folder instead");
}
