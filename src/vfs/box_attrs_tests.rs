//! Shared links and locks (`box_attrs.rs`) against the in-memory Box: what the attributes
//! read and set, which calls reach Box, writes refused on files another user locked, and
//! `lock_on_open` locking a file for its writer until its upload landed.

use super::box_attrs::{LOCK, SHARED_LINK};
use super::fake::{FakeBox, ROOT_ID};
use super::tests::{config, fs_with};
use super::uploads::Scope;
use super::{Fs, FsConfig, VfsError, ROOT_INO};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

async fn fs_over(fake: &FakeBox, dir: &Path, lock_on_open: bool) -> Arc<Fs> {
    fs_with(fake, dir, FsConfig { lock_on_open, ..config(Duration::from_secs(3600)) }).await
}

/// Opens `ino` for writing with `O_TRUNC`, writes `data` and closes it.
async fn overwrite(fs: &Fs, ino: u64, data: &[u8]) {
    let fh = fs.open(ino, true, true).await.unwrap();
    fs.write(fh, 0, data).unwrap();
    fs.release(fh);
}

fn text(value: Vec<u8>) -> String {
    String::from_utf8(value).unwrap()
}

#[tokio::test]
async fn a_shared_link_is_read_created_and_removed_on_files_and_folders() {
    let fake = FakeBox::new();
    let file_id = fake.add_file(ROOT_ID, "report.pdf", b"pdf");
    let folder_id = fake.add_folder(ROOT_ID, "Team");
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path(), false).await;
    let file = fs.lookup(ROOT_INO, "report.pdf").await.unwrap().ino;
    let folder = fs.lookup(ROOT_INO, "Team").await.unwrap().ino;

    assert!(matches!(fs.box_xattr(file, SHARED_LINK, false).await, Err(VfsError::NoAttr)));
    assert_eq!(fake.calls("sharing"), 1, "one GET per read");
    fs.setxattr(file, SHARED_LINK, b"company expires=2099-01-01", 0).await.unwrap();
    let link = fake.sharing_of(&file_id).shared_link.unwrap();
    assert_eq!((link.access.as_deref(), link.unshared_at.as_deref()), (Some("company"), Some("2099-01-01T00:00:00Z")));
    assert_eq!(text(fs.box_xattr(file, SHARED_LINK, false).await.unwrap()), link.url);
    assert!(matches!(fs.setxattr(file, SHARED_LINK, b"open", libc::XATTR_CREATE).await, Err(VfsError::Exists)));
    // getfattr asks for the size first, then reads: one GET for both.
    let calls = fake.calls("sharing");
    let probed = fs.box_xattr(file, SHARED_LINK, true).await.unwrap();
    assert_eq!(fs.box_xattr(file, SHARED_LINK, false).await.unwrap(), probed);
    assert_eq!(fake.calls("sharing"), calls + 1);
    fs.box_xattr(file, SHARED_LINK, false).await.unwrap();
    assert_eq!(fake.calls("sharing"), calls + 2, "a kept value serves one read");
    fs.removexattr(file, SHARED_LINK).await.unwrap();
    assert!(fake.sharing_of(&file_id).shared_link.is_none());

    fs.setxattr(folder, SHARED_LINK, b"open", 0).await.unwrap();
    assert!(fake.sharing_of(&folder_id).shared_link.is_some());
    assert!(matches!(fs.box_xattr(folder, LOCK, false).await, Err(VfsError::NoAttr)), "folders have no lock");
    assert!(matches!(fs.setxattr(folder, LOCK, b"on", 0).await, Err(VfsError::NotSupported)));

    let calls = fake.total_calls();
    assert!(matches!(fs.setxattr(file, SHARED_LINK, b"everyone", 0).await, Err(VfsError::Invalid)));
    assert!(matches!(fs.setxattr(file, "user.box.id", b"7", 0).await, Err(VfsError::NotSupported)));
    assert!(matches!(fs.removexattr(file, "user.box.etag").await, Err(VfsError::NotSupported)));
    assert_eq!(fake.total_calls(), calls, "refused values cost no call");
}

#[tokio::test]
async fn a_file_locked_by_someone_else_is_read_but_not_written() {
    let fake = FakeBox::new();
    let id = fake.add_file(ROOT_ID, "plan.txt", b"the plan");
    fake.lock_by_someone_else(&id);
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path(), false).await;
    let ino = fs.lookup(ROOT_INO, "plan.txt").await.unwrap().ino;

    assert!(fs.listxattr(ino).unwrap().contains(&LOCK), "the listing told of the lock");
    assert!(matches!(fs.open(ino, true, false).await, Err(VfsError::Denied)));
    assert!(matches!(fs.setattr(ino, Some(0), None, Default::default()).await, Err(VfsError::Denied)));
    let fh = fs.open(ino, false, false).await.expect("reading is fine");
    assert_eq!(&fs.read(fh, 0, 100).await.unwrap()[..], b"the plan");
    fs.release(fh);
    assert_eq!(
        text(fs.box_xattr(ino, LOCK, false).await.unwrap()),
        "locked by Someone Else <else@example.com>, no expiry"
    );
    assert_eq!(fake.calls("upload_bytes"), 0);
}

#[tokio::test]
async fn a_lock_set_as_an_attribute_is_ours_and_allows_writing() {
    let fake = FakeBox::new();
    let id = fake.add_file(ROOT_ID, "notes.txt", b"v1");
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path(), false).await;
    let ino = fs.lookup(ROOT_INO, "notes.txt").await.unwrap().ino;

    fs.setxattr(ino, LOCK, b"on expires=2099-12-05T10:00:00Z", 0).await.unwrap();
    assert_eq!(
        text(fs.box_xattr(ino, LOCK, false).await.unwrap()),
        "locked by Fake <fake@example.com> until 2099-12-05T10:00:00Z"
    );
    let fh = fs.open(ino, true, true).await.expect("our own lock does not stop us");
    fs.write(fh, 0, b"v2").unwrap();
    fs.release(fh);
    assert!(fs.sync(&Scope::All).await.is_empty());
    assert_eq!(&fake.content(&id).unwrap()[..], b"v2");
    assert!(fake.sharing_of(&id).lock.is_some(), "a lock set by hand stays after the upload");
    fs.setxattr(ino, LOCK, b"off", 0).await.unwrap();
    assert!(fake.sharing_of(&id).lock.is_none());
    assert!(matches!(fs.box_xattr(ino, LOCK, false).await, Err(VfsError::NoAttr)));
}

#[tokio::test]
async fn lock_on_open_locks_for_the_writer_and_unlocks_after_the_upload() {
    let fake = FakeBox::new();
    let id = fake.add_file(ROOT_ID, "doc.txt", b"old");
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path(), true).await;
    let ino = fs.lookup(ROOT_INO, "doc.txt").await.unwrap().ino;

    let fh = fs.open(ino, true, true).await.unwrap();
    let second = fs.open(ino, true, false).await.unwrap();
    assert_eq!(fake.calls("lock_file"), 1, "one lock for every writer");
    assert!(fake.sharing_of(&id).lock.is_some());
    fs.write(fh, 0, b"new").unwrap();
    fs.release(fh);
    fs.release(second);
    assert!(fs.sync(&Scope::All).await.is_empty());
    assert_eq!(&fake.content(&id).unwrap()[..], b"new", "the lock holder uploads");
    assert_eq!(fake.calls("unlock_file"), 1);
    assert!(fake.sharing_of(&id).lock.is_none());
    // A file opened for reading is not locked.
    let fh = fs.open(ino, false, false).await.unwrap();
    fs.release(fh);
    assert_eq!(fake.calls("lock_file"), 1);
}

#[tokio::test]
async fn sharing_or_locking_a_file_with_a_pending_upload_is_no_conflict() {
    let fake = FakeBox::new();
    let id = fake.add_file(ROOT_ID, "draft.txt", b"v1");
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path(), false).await;
    let ino = fs.lookup(ROOT_INO, "draft.txt").await.unwrap().ino;

    overwrite(&fs, ino, b"v2").await;
    // Both change the file's etag in Box while its upload waits.
    fs.setxattr(ino, SHARED_LINK, b"open", 0).await.unwrap();
    fs.setxattr(ino, LOCK, b"on", 0).await.unwrap();
    assert!(fs.sync(&Scope::All).await.is_empty());
    assert_eq!(&fake.content(&id).unwrap()[..], b"v2", "the pending upload is a new version of the file");
    assert_eq!(fake.names(ROOT_ID), vec!["draft.txt"], "no conflicted copy");
    // And a later edit is based on what Box has now.
    fs.removexattr(ino, SHARED_LINK).await.unwrap();
    overwrite(&fs, ino, b"v3").await;
    assert!(fs.sync(&Scope::All).await.is_empty());
    assert_eq!(&fake.content(&id).unwrap()[..], b"v3");
    assert_eq!(fake.names(ROOT_ID), vec!["draft.txt"]);
}

#[tokio::test]
async fn a_link_change_does_not_hide_a_version_uploaded_elsewhere_from_a_pending_upload() {
    let fake = FakeBox::new();
    let id = fake.add_file(ROOT_ID, "draft.txt", b"v1");
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path(), false).await;
    let ino = fs.lookup(ROOT_INO, "draft.txt").await.unwrap().ino;

    overwrite(&fs, ino, b"ours").await;
    fake.change_remotely(&id, b"theirs");
    fs.setxattr(ino, SHARED_LINK, b"open", 0).await.unwrap();
    assert!(fs.sync(&Scope::All).await.is_empty());
    assert_eq!(&fake.content(&id).unwrap()[..], b"theirs", "their version stays");
    let names = fake.names(ROOT_ID);
    assert_eq!(names.len(), 2, "ours is kept beside it: {names:?}");
    assert!(names.iter().any(|n| n.starts_with("draft (conflicted copy ")), "{names:?}");
}

#[tokio::test]
async fn a_file_not_in_box_yet_has_no_link_and_gets_none_until_it_is() {
    let fake = FakeBox::new();
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path(), false).await;
    let (attr, fh) = fs.create(ROOT_INO, "new.txt", 0o644, super::Caller { uid: 1000, gid: 1000 }).await.unwrap();
    fs.release(fh);
    let calls = fake.total_calls();
    assert!(matches!(fs.box_xattr(attr.ino, SHARED_LINK, false).await, Err(VfsError::NoAttr)));
    assert!(matches!(fs.setxattr(attr.ino, SHARED_LINK, b"open", 0).await, Err(VfsError::NotInBoxYet)));
    assert!(matches!(fs.setxattr(attr.ino, LOCK, b"on", 0).await, Err(VfsError::NotInBoxYet)));
    assert_eq!(fake.total_calls(), calls, "nothing to ask Box");
    assert!(fs.sync(&Scope::All).await.is_empty());
    fs.setxattr(attr.ino, SHARED_LINK, b"open", 0).await.unwrap();
    let id = fake.find(ROOT_ID, "new.txt").unwrap();
    assert!(fake.sharing_of(&id).shared_link.is_some());
}
