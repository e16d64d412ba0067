//! `.box/` against the in-memory Box ([`FakeBox`]): hidden from the root's listing, free until
//! looked into, versions listed and read byte for byte, trashed items restored by a rename and
//! purged by an unlink, and everything else in it read-only. The mount test
//! (tests/mount_box_dir.rs) covers the same through the kernel and the emulator.

use super::fake::{FakeBox, ROOT_ID};
use super::tests::fs_over;
use super::{Caller, Fs, Ino, VfsError, ROOT_INO};

const ME: Caller = Caller { uid: 1000, gid: 1000 };

async fn names(fs: &Fs, dir: Ino) -> Vec<String> {
    let fh = fs.opendir(dir, true).await.expect("opendir").fh;
    let names = fs.readdir(fh).expect("readdir").from(2).map(|(_, e)| e.name.to_string()).collect();
    fs.releasedir(fh);
    names
}

async fn read_all(fs: &Fs, ino: Ino) -> Vec<u8> {
    let fh = fs.open(ino, false, false).await.expect("open");
    let data = fs.read(fh, 0, 1 << 20).await.expect("read").to_vec();
    fs.release(fh);
    data
}

async fn ino(fs: &Fs, parent: Ino, name: &str) -> Ino {
    fs.lookup(parent, name).await.unwrap_or_else(|e| panic!("{name}: {e}")).ino
}

fn box_calls(fake: &FakeBox) -> u64 {
    fake.calls("trash_items") + fake.calls("file_versions")
}

#[tokio::test]
async fn versions_are_listed_and_read_only_when_looked_at() {
    let fake = FakeBox::new();
    let docs = fake.add_folder(ROOT_ID, "docs");
    let id = fake.add_file(&docs, "a.txt", b"one");
    fake.change_remotely(&id, b"two!");
    fake.change_remotely(&id, b"three");
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;

    assert_eq!(names(&fs, ROOT_INO).await, ["docs"], ".box is in no listing");
    let dot_box = ino(&fs, ROOT_INO, ".box").await;
    assert_eq!(names(&fs, dot_box).await, ["versions", "trash"]);
    let versions = ino(&fs, dot_box, "versions").await;
    let mirror = ino(&fs, versions, "docs").await;
    let of_a = ino(&fs, mirror, "a.txt").await;
    assert_eq!(box_calls(&fake), 0, "nothing asked of Box before a versions folder is looked into");

    let listed = names(&fs, of_a).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().all(|n| n.ends_with(".txt")), "{listed:?}");
    let mut contents = Vec::new();
    for name in &listed {
        let v = ino(&fs, of_a, name).await;
        assert!(matches!(fs.open(v, true, false).await, Err(VfsError::ReadOnly)));
        contents.push(read_all(&fs, v).await);
    }
    assert_eq!(contents, [&b"one"[..], b"two!", b"three"], "oldest first, byte for byte");
    assert!(matches!(fs.create(of_a, "x", 0o644, ME).await, Err(VfsError::ReadOnly)));
    assert!(matches!(fs.mkdir(ROOT_INO, ".box", 0o755, ME).await, Err(VfsError::Exists)));
    assert!(matches!(fs.rmdir(ROOT_INO, ".box").await, Err(VfsError::NotPermitted)));
}

#[tokio::test]
async fn a_folder_removed_file_by_file_comes_back_whole_and_purges_go_for_good() {
    let fake = FakeBox::new();
    let proj = fake.add_folder(ROOT_ID, "proj");
    let ids: Vec<String> = (0..3).map(|i| fake.add_file(&proj, &format!("f{i}"), b"x")).collect();
    let dir = tempfile::tempdir().unwrap();
    let fs = fs_over(&fake, dir.path()).await;
    let proj_ino = ino(&fs, ROOT_INO, "proj").await;
    for i in 0..3 {
        fs.unlink(proj_ino, &format!("f{i}")).await.unwrap();
    }
    fs.rmdir(ROOT_INO, "proj").await.unwrap();

    let trash = ino(&fs, ino(&fs, ROOT_INO, ".box").await, "trash").await;
    assert_eq!(names(&fs, trash).await, ["proj"], "the files show inside the folder they left");
    let trashed = ino(&fs, trash, "proj").await;
    assert_eq!(names(&fs, trashed).await, ["f0", "f1", "f2"]);
    assert!(matches!(fs.rmdir(trash, "proj").await, Err(VfsError::NotEmpty)));
    assert!(matches!(fs.rename(trash, "proj", trash, "other", false).await, Err(VfsError::ReadOnly)));

    fs.rename(trash, "proj", ROOT_INO, "back", false).await.unwrap();
    let back = fake.find(ROOT_ID, "back").expect("restored under its new name");
    assert_eq!(back, proj, "the same folder");
    let restored: Vec<String> = (0..3).map(|i| fake.find(&back, &format!("f{i}")).unwrap()).collect();
    assert_eq!(restored, ids, "every file back, with its id");
    assert_eq!(names(&fs, ino(&fs, ROOT_INO, "back").await).await, ["f0", "f1", "f2"]);
    assert!(names(&fs, trash).await.is_empty());

    fs.unlink(ino(&fs, ROOT_INO, "back").await, "f1").await.unwrap();
    fs.unlink(trash, "f1").await.unwrap();
    assert_eq!(fake.in_trash(&ids[1]), None, "purged");
    assert!(names(&fs, trash).await.is_empty());
}
