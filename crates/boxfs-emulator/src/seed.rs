//! `--seed`: deterministic sample content: `demo`, a small tree for a newcomer to browse,
//! `bench`, the benchmark data set, `walk`, the metadata benchmark's 100,000 files, and
//! `million`, a million small files for the metadata memory benchmark.

use super::store::{NewFile, Store, StoreResult, ADMIN_ID};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SeedKind {
    /// A small sample tree: folders, text and binary files, a web link.
    Demo,
    /// The benchmark set: a 1 GiB file and a 10,000-file tree.
    Bench,
    /// The metadata benchmark set: `walk/dNNN/fNNNN.txt`, 100 folders of 1,000 small files.
    Walk,
    /// `million/`: 1,000 folders of 1,000 one-byte files, written in one transaction.
    Million,
}

pub fn seed(store: &Store, kind: SeedKind) -> StoreResult<()> {
    match kind {
        SeedKind::Demo => demo(store),
        SeedKind::Bench => bench(store),
        SeedKind::Walk => walk(store),
        SeedKind::Million => million(store),
    }
}

/// Deterministic pseudo-random bytes (xorshift), so demo files have stable SHA-1s.
pub fn pattern_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn file(store: &Store, parent: i64, name: &str, bytes: &[u8], mtime: &str) -> StoreResult<()> {
    let blob = store.blobs().put_bytes(bytes)?;
    store.create_file(
        ADMIN_ID,
        NewFile {
            parent_id: parent,
            name: name.to_string(),
            blob,
            content_created_at: Some(mtime.to_string()),
            content_modified_at: Some(mtime.to_string()),
        },
    )?;
    Ok(())
}

pub fn demo(store: &Store) -> StoreResult<()> {
    let t = "2025-06-01T09:30:00+00:00";
    file(
        store,
        0,
        "Welcome to boxfs.txt",
        b"This tree lives in the boxfs Box API emulator.\nBrowse it with ls, cat and find; write to it like any folder.\n",
        t,
    )?;
    let docs = store.create_folder(ADMIN_ID, 0, "Documents")?.id;
    file(store, docs, "notes.md", b"# Notes\n\n- boxfs mounts Box on Linux\n- the emulator speaks Box API 2.0\n", t)?;
    file(store, docs, "budget.csv", b"month,amount\n2025-01,1200\n2025-02,980\n2025-03,1430\n", t)?;
    let reports = store.create_folder(ADMIN_ID, docs, "Reports")?.id;
    file(store, reports, "Q1 report.txt", &b"Quarterly report. ".repeat(2000), t)?;
    file(store, reports, "empty.txt", b"", t)?;
    let photos = store.create_folder(ADMIN_ID, 0, "Photos")?.id;
    for i in 1..=3u64 {
        file(store, photos, &format!("IMG_{i:04}.raw"), &pattern_bytes(i, 256 * 1024 * i as usize), t)?;
    }
    let projects = store.create_folder(ADMIN_ID, 0, "Projects")?.id;
    let boxfs = store.create_folder(ADMIN_ID, projects, "boxfs")?.id;
    file(store, boxfs, "README.txt", b"A Box client for Linux.\n", t)?;
    file(store, boxfs, "data.bin", &pattern_bytes(42, 3 * 1024 * 1024 + 17), t)?;
    store.create_folder(ADMIN_ID, projects, "Archive")?;
    store.create_web_link(ADMIN_ID, 0, "https://www.box.com/", "Box website", "Where the real thing lives")?;
    Ok(())
}

/// `--seed bench`: the benchmark data set: `bench/big.bin` (1 GiB) and `bench/tree` with
/// 100 folders of 100 small files (10,000 files).
pub fn bench(store: &Store) -> StoreResult<()> {
    let t = "2025-06-01T09:30:00+00:00";
    let bench = store.create_folder(ADMIN_ID, 0, "bench")?.id;
    let blob = store.blobs().put_chunks((0..1024u64).map(|i| pattern_bytes(1_000 + i, 1024 * 1024)))?;
    store.create_file(
        ADMIN_ID,
        NewFile {
            parent_id: bench,
            name: "big.bin".into(),
            blob,
            content_created_at: Some(t.into()),
            content_modified_at: Some(t.into()),
        },
    )?;
    let tree = store.create_folder(ADMIN_ID, bench, "tree")?.id;
    for d in 0..100 {
        let dir = store.create_folder(ADMIN_ID, tree, &format!("d{d:03}"))?.id;
        for f in 0..100 {
            file(store, dir, &format!("f{f:03}.txt"), format!("file {d}/{f}\n").as_bytes(), t)?;
        }
    }
    Ok(())
}

/// Files per folder and folders of `--seed walk`.
pub const WALK_FILES: usize = 1_000;
pub const WALK_FOLDERS: usize = 100;

/// `--seed walk`: `walk/d000`..`d099`, each with `f0000.txt`..`f0999.txt` of 0 to 15 bytes (file
/// `n` holds `n % 16` bytes), one transaction per folder.
pub fn walk(store: &Store) -> StoreResult<()> {
    let t = "2025-06-01T09:30:00+00:00";
    let blobs =
        (0..16u64).map(|n| store.blobs().put_bytes(&pattern_bytes(n, n as usize))).collect::<Result<Vec<_>, _>>()?;
    let walk = store.create_folder(ADMIN_ID, 0, "walk")?.id;
    for d in 0..WALK_FOLDERS {
        let dir = store.create_folder(ADMIN_ID, walk, &format!("d{d:03}"))?.id;
        let files = (0..WALK_FILES).map(|f| NewFile {
            parent_id: dir,
            name: format!("f{f:04}.txt"),
            blob: blobs[f % blobs.len()].clone(),
            content_created_at: Some(t.into()),
            content_modified_at: Some(t.into()),
        });
        store.create_files(ADMIN_ID, files)?;
    }
    Ok(())
}

/// `--seed million`: `million/d000`..`d999`, each with `f000`..`f999` (one byte each), all
/// sharing one blob and seeded without events (no client has seen the account yet).
pub fn million(store: &Store) -> StoreResult<()> {
    let top = store.create_folder(ADMIN_ID, 0, "million")?.id;
    let blob = store.blobs().put_bytes(b"x")?;
    let names: Vec<String> = (0..1000).map(|f| format!("f{f:03}")).collect();
    for d in 0..1000 {
        let dir = store.create_folder(ADMIN_ID, top, &format!("d{d:03}"))?.id;
        store.seed_files(dir, &names, &blob)?;
    }
    Ok(())
}
