//! The vfs's logic against an in-memory Box ([`FakeBox`]): no FUSE, no HTTP, no emulator. Each
//! test builds a filesystem over its own temp dir (block cache and journal) and checks what
//! the operations answer and which calls reached Box. The mount tests (tests/mount_*.rs) cover
//! the same paths end to end through the kernel and the emulator.

use super::fake::{FakeBox, ROOT_ID};
use super::read::blocks::BlockCache;
use super::read::pins::PinList;
use super::read::prefetch::ReaderConfig;
use super::uploads::Scope;
use super::write::journal::Journal;
use super::{AttrPolicy, Caller, Fs, FsConfig, FsyncMode, KernelCopy, VfsError, ROOT_INO};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const ME: Caller = Caller { uid: 1000, gid: 1000 };

pub(super) fn config(writeback_delay: Duration) -> FsConfig {
    FsConfig {
        metadata_ttl: Duration::from_secs(600),
        metadata_budget: usize::MAX,
        attrs: AttrPolicy { uid: ME.uid, gid: ME.gid, umask: 0o022, read_only: false },
        reader: ReaderConfig::default(),
        writeback_delay,
        upload_parallelism: 2,
        sync_on_close: false,
        fsync: FsyncMode::Local,
        lock_on_open: false,
    }
}

/// A filesystem over `fake` with `cfg`, keeping its cache and journal in `dir`.
pub(super) async fn fs_with(fake: &FakeBox, dir: &Path, cfg: FsConfig) -> Arc<Fs> {
    let blocks = BlockCache::open(&dir.join("blocks"), 64 << 20, 1 << 20).expect("block cache");
    let journal = Journal::open(&Journal::dir_in(dir)).expect("journal");
    let pins = PinList::open(dir).expect("pins");
    let fs = Fs::new(Arc::new(fake.clone()), ROOT_ID, Arc::new(blocks), journal, pins, cfg).await.expect("fs");
    fs.start_pinning();
    fs
}

/// A filesystem over `fake`, keeping its cache and journal in `dir`. Uploads wait an hour
/// unless a sync hurries them, so that a test decides when they happen.
pub(super) async fn fs_over(fake: &FakeBox, dir: &Path) -> Arc<Fs> {
    fs_with(fake, dir, config(Duration::from_secs(3600))).await
}

pub(super) async fn read_all(fs: &Fs, ino: u64) -> Vec<u8> {
    let fh = fs.open(ino, false, false).await.expect("open");
    let mut out = Vec::new();
    loop {
        let chunk = fs.read(fh, out.len() as u64, 1 << 16).await.expect("read");
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    fs.release(fh);
    out
}

async fn write_new(fs: &Fs, parent: u64, name: &str, data: &[u8]) -> u64 {
    let (attr, fh) = fs.create(parent, name, 0o644, ME).await.expect("create");
    assert_eq!(fs.write(fh, 0, data).expect("write") as usize, data.len());
    fs.flush(fh).await.expect("flush");
    fs.release(fh);
    attr.ino
}

async fn sync_all(fs: &Fs) {
    let failures = fs.sync(&Scope::All).await;
    assert!(failures.is_empty(), "sync failed: {failures:?}");
}

fn uploads(fake: &FakeBox) -> u64 {
    fake.calls("upload_bytes") + fake.calls("upload_resumable")
}

#[tokio::test]
async fn lookups_and_readdir_of_a_folder_cost_one_listing_and_misses_are_answered_from_it() {
    let fake = FakeBox::new();
    let docs = fake.add_folder(ROOT_ID, "docs");
    fake.add_file(&docs, "a.txt", b"alpha");
    fake.add_file(&docs, "b.txt", b"bravo!");
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;

    let docs_attr = fs.lookup(ROOT_INO, "docs").await.expect("docs");
    assert_eq!(fake.calls("list_folder"), 1, "the root is listed once");
    let a = fs.lookup(docs_attr.ino, "a.txt").await.expect("a.txt");
    assert_eq!(a.size, 5);
    assert_eq!(fs.lookup(docs_attr.ino, "b.txt").await.expect("b.txt").size, 6);
    for _ in 0..3 {
        assert!(matches!(fs.lookup(docs_attr.ino, "missing").await, Err(VfsError::NotFound)));
    }
    let fh = fs.opendir(docs_attr.ino, true).await.expect("opendir").fh;
    let names: Vec<String> = fs.readdir(fh).expect("readdir").from(0).map(|(_, e)| e.name.to_string()).collect();
    fs.releasedir(fh);
    assert!(names.contains(&"a.txt".to_string()) && names.contains(&"b.txt".to_string()), "{names:?}");
    assert_eq!(fs.getattr(a.ino).await.expect("getattr").size, 5);

    assert_eq!(fake.calls("list_folder"), 2, "root and docs, once each: hits and misses come from the listing");
    assert_eq!(fake.calls("get_file"), 0, "attributes come from the listing");
    assert_eq!(fake.total_calls(), fake.calls("list_folder") + fake.calls("get_folder"));
}

#[tokio::test]
async fn the_kernel_keeps_its_copy_of_a_folder_until_the_listing_changes() {
    let fake = FakeBox::new();
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;
    let open = |fs: &Arc<Fs>| {
        let fs = fs.clone();
        async move {
            let dir = fs.opendir(ROOT_INO, true).await.expect("opendir");
            fs.releasedir(dir.fh);
            dir.kernel_copy
        }
    };
    assert_eq!(open(&fs).await, KernelCopy::Outdated, "never read by the kernel");
    assert_eq!(open(&fs).await, KernelCopy::Current);
    write_new(&fs, ROOT_INO, "new.txt", b"x").await;
    assert_eq!(open(&fs).await, KernelCopy::Outdated, "an entry was added");
    assert_eq!(open(&fs).await, KernelCopy::Current);
    fs.revalidate_all().await;
    assert_eq!(open(&fs).await, KernelCopy::Outdated, "listed again from Box");
}

#[tokio::test]
async fn a_kernel_copy_of_names_is_read_again_for_an_opener_that_wants_attributes() {
    let fake = FakeBox::new();
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;
    let open = |fs: &Arc<Fs>, with_attributes: bool| {
        let fs = fs.clone();
        async move {
            let dir = fs.opendir(ROOT_INO, with_attributes).await.expect("opendir");
            assert_eq!(fs.readdir(dir.fh).unwrap().with_attributes(), with_attributes);
            fs.releasedir(dir.fh);
            dir.kernel_copy
        }
    };
    assert_eq!(open(&fs, false).await, KernelCopy::Outdated, "never read by the kernel");
    assert_eq!(open(&fs, false).await, KernelCopy::Current);
    assert_eq!(open(&fs, true).await, KernelCopy::Outdated, "the kernel has names only");
    assert_eq!(open(&fs, true).await, KernelCopy::Current);
    assert_eq!(open(&fs, false).await, KernelCopy::Current, "a copy with attributes serves names too");
    assert_eq!(open(&fs, true).await, KernelCopy::Current, "and stays one with attributes");
}

#[tokio::test]
async fn a_written_file_reads_back_before_and_after_its_single_upload() {
    let fake = FakeBox::new();
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;

    let ino = write_new(&fs, ROOT_INO, "new.txt", b"hello, box").await;
    assert_eq!(read_all(&fs, ino).await, b"hello, box", "read from the staged copy");
    assert_eq!(uploads(&fake), 0, "the upload waits for the write-back delay");
    assert_eq!(fs.getattr(ino).await.unwrap().size, 10);

    sync_all(&fs).await;
    let id = fake.find(ROOT_ID, "new.txt").expect("uploaded");
    assert_eq!(fake.content(&id).unwrap(), &b"hello, box"[..]);
    assert_eq!(uploads(&fake), 1);
    assert_eq!(fs.pending_uploads(), 0);

    assert_eq!(read_all(&fs, ino).await, b"hello, box", "read from Box once it is there");
    assert_eq!(fs.lookup(ROOT_INO, "new.txt").await.unwrap().ino, ino, "same inode after the upload");
}

#[tokio::test]
async fn a_file_below_a_block_is_read_in_one_request_and_a_bigger_one_block_by_block() {
    let fake = FakeBox::new();
    // fs_over's blocks are 1 MiB; reads are 64 KiB.
    let small: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let big: Vec<u8> = (0..(5 << 19) as u32).map(|i| (i % 253) as u8).collect();
    fake.add_file(ROOT_ID, "small.bin", &small);
    fake.add_file(ROOT_ID, "big.bin", &big);
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;

    let small_ino = fs.lookup(ROOT_INO, "small.bin").await.expect("small").ino;
    assert_eq!(read_all(&fs, small_ino).await, small);
    assert_eq!(fake.calls("read_range_into"), 1);
    let big_ino = fs.lookup(ROOT_INO, "big.bin").await.expect("big").ino;
    assert_eq!(read_all(&fs, big_ino).await, big);
    // 2.5 MiB: three blocks, each downloaded once however far the prefetcher ran ahead.
    assert_eq!(fake.calls("read_range_into"), 1 + 3);
}

#[tokio::test]
async fn a_pending_file_renamed_before_its_upload_is_uploaded_once_under_its_new_name() {
    let fake = FakeBox::new();
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;

    let ino = write_new(&fs, ROOT_INO, "draft.tmp", b"final words").await;
    fs.rename(ROOT_INO, "draft.tmp", ROOT_INO, "final.txt", false).await.expect("rename");
    assert!(matches!(fs.lookup(ROOT_INO, "draft.tmp").await, Err(VfsError::NotFound)));
    assert_eq!(fs.lookup(ROOT_INO, "final.txt").await.unwrap().ino, ino);
    assert_eq!(fake.calls("update_file"), 0, "nothing is in Box yet to rename");

    sync_all(&fs).await;
    assert_eq!(fake.names(ROOT_ID), vec!["final.txt"]);
    let id = fake.find(ROOT_ID, "final.txt").unwrap();
    assert_eq!(fake.content(&id).unwrap(), &b"final words"[..]);
    assert_eq!(uploads(&fake), 1);
    assert_eq!(fake.calls("update_file") + fake.calls("delete_file"), 0);
}

#[tokio::test]
async fn a_local_change_to_a_file_changed_in_box_meanwhile_becomes_a_conflicted_copy() {
    let fake = FakeBox::new();
    let id = fake.add_file(ROOT_ID, "doc.txt", b"version one");
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;

    let ino = fs.lookup(ROOT_INO, "doc.txt").await.unwrap().ino;
    let fh = fs.open_write(ino, true).await.expect("open for writing");
    fs.write(fh, 0, b"mine").unwrap();
    fs.release(fh);
    fake.change_remotely(&id, b"theirs");

    sync_all(&fs).await;
    let names = fake.names(ROOT_ID);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(fake.content(&id).unwrap(), &b"theirs"[..], "Box's newer version is not overwritten");
    let copy = names.iter().find(|n| n.starts_with("doc (conflicted copy ") && n.ends_with(".txt")).expect("a copy");
    assert_eq!(fake.content(&fake.find(ROOT_ID, copy).unwrap()).unwrap(), &b"mine"[..]);
}

#[test]
fn a_change_left_in_the_journal_by_a_killed_daemon_is_uploaded_by_the_next_one() {
    let fake = FakeBox::new();
    let dir = tempfile::tempdir().unwrap();
    {
        // The daemon's runtime dies with its tasks, as with `kill -9`: the upload never starts.
        let first = tokio::runtime::Runtime::new().unwrap();
        first.block_on(async {
            let fs = fs_over(&fake, dir.path()).await;
            write_new(&fs, ROOT_INO, "survivor.txt", b"still here").await;
            assert_eq!(fs.pending_uploads(), 1);
        });
        first.shutdown_background();
    }
    assert_eq!(uploads(&fake), 0);

    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let fs = fs_over(&fake, dir.path()).await;
        let left = Journal::open(&Journal::dir_in(dir.path())).unwrap().records().unwrap();
        assert_eq!(left.len(), 1, "the journal entry survived the kill");
        // Recovered entries upload at once: on the fake that may finish before any check here,
        // so what recovery did shows in Box after the sync below.
        fs.recover();
        let shown = fs.lookup(ROOT_INO, "survivor.txt").await.expect("shown before it is in Box");
        assert_eq!(read_all(&fs, shown.ino).await, b"still here");
        sync_all(&fs).await;
    });
    let id = fake.find(ROOT_ID, "survivor.txt").expect("uploaded after recovery");
    assert_eq!(fake.content(&id).unwrap(), &b"still here"[..]);
    assert_eq!(uploads(&fake), 1);
}

#[tokio::test]
async fn chmod_is_stored_as_one_metadata_call_and_read_back_by_the_next_filesystem() {
    let fake = FakeBox::new();
    let id = fake.add_file(ROOT_ID, "run.sh", b"#!/bin/sh\n");
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;

    let ino = fs.lookup(ROOT_INO, "run.sh").await.unwrap().ino;
    let change = super::OwnerChange { mode: Some(0o755), ..Default::default() };
    let attr = fs.setattr(ino, None, None, change).await.expect("chmod");
    assert_eq!(attr.perm, 0o755);
    sync_all(&fs).await;
    assert_eq!(uploads(&fake), 0, "a chmod sends no content");
    assert_eq!(fake.calls("create_properties"), 1);
    assert!(fake.properties(&id).expect("an instance").contains_key(super::meta::stored::MODE));

    let other = tempfile::tempdir().unwrap();
    let fresh = fs_over(&fake, other.path()).await;
    assert_eq!(fresh.lookup(ROOT_INO, "run.sh").await.unwrap().perm, 0o755);
}

#[tokio::test]
async fn while_box_is_unreachable_what_is_known_serves_and_what_needs_box_fails_at_once() {
    let fake = FakeBox::new();
    let docs = fake.add_folder(ROOT_ID, "docs");
    fake.add_file(&docs, "a.txt", b"alpha");
    fake.add_file(&docs, "b.txt", b"bravo");
    fake.add_folder(ROOT_ID, "other");
    let dir = tempfile::tempdir().unwrap();
    // Nothing is fresh: every access asks Box first.
    let fs = fs_with(&fake, dir.path(), FsConfig { metadata_ttl: Duration::ZERO, ..config(Duration::ZERO) }).await;
    let docs_ino = fs.lookup(ROOT_INO, "docs").await.unwrap().ino;
    let other = fs.lookup(ROOT_INO, "other").await.unwrap().ino;
    let a = fs.lookup(docs_ino, "a.txt").await.unwrap().ino;
    assert_eq!(read_all(&fs, a).await, b"alpha");
    fs.forget_listing(docs_ino).await; // an event said it changed: still there while offline

    fake.set_offline(true);
    let b = fs.lookup(docs_ino, "b.txt").await.expect("a stale listing answers").ino;
    assert_eq!(fs.getattr(a).await.expect("known attributes answer").size, 5);
    assert_eq!(read_all(&fs, a).await, b"alpha", "cached bytes read");
    let err = fs.listing(other).await.expect_err("never listed");
    assert!(err.is_offline() && err.errno() == libc::EIO, "{err:?}");
    let fh = fs.open(b, false, false).await.expect("open");
    let err = fs.read(fh, 0, 100).await.expect_err("never read");
    assert_eq!(err.errno(), libc::EIO);
    fs.release(fh);

    write_new(&fs, docs_ino, "new.txt", b"written offline").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(uploads(&fake), 0, "nothing is tried while Box is unreachable");
    fake.set_offline(false);
    sync_all(&fs).await;
    let id = fake.find(&docs, "new.txt").expect("landed once Box is back");
    assert_eq!(fake.content(&id).unwrap(), &b"written offline"[..]);
}
