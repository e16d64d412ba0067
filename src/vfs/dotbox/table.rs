//! The virtual inodes of `.box/`: what each stands for, its parent, its mtime and the kernel's
//! lookup count. The same thing (a version, a trashed item, a file's versions folder) keeps its
//! number while it is in the table; `.box`, `.box/versions` and `.box/trash` have fixed numbers.
//!
//! Invariants: every number has [`VIRTUAL_BIT`]; numbers are never reused (a counter); an
//! entry the kernel does not know (no lookups) is dropped once idle for [`IDLE`], so that an
//! entry handed out by a listing survives until the kernel's `readdirplus` takes it.

use super::VIRTUAL_BIT;
use crate::vfs::meta::inode::Ino;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// `.box` itself.
pub const DOT_BOX_INO: Ino = VIRTUAL_BIT | 1;
/// `.box/versions`, the mirror of the mount root.
pub const VERSIONS_INO: Ino = VIRTUAL_BIT | 2;
/// `.box/trash`.
pub const TRASH_INO: Ino = VIRTUAL_BIT | 3;
const FIRST_DYNAMIC: Ino = VIRTUAL_BIT | 16;

/// How long an entry the kernel does not know stays.
pub const IDLE: Duration = Duration::from_secs(60);

/// What a virtual inode stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Virtual {
    DotBox,
    /// `.box/versions`: the mount root's folders and files.
    VersionsRoot,
    /// A folder of the tree under `.box/versions` (`real`: its inode in the tree).
    Mirror {
        real: Ino,
        box_id: String,
    },
    /// A file of the tree under `.box/versions`: the folder of its versions.
    Versions {
        real: Ino,
        box_id: String,
        name: String,
    },
    /// One version of a file.
    Version {
        file_id: String,
        version_id: String,
        size: u64,
    },
    TrashRoot,
    /// A trashed file or folder.
    Trashed {
        id: String,
        folder: bool,
        size: u64,
    },
}

impl Virtual {
    pub fn is_dir(&self) -> bool {
        !matches!(self, Virtual::Version { .. } | Virtual::Trashed { folder: false, .. })
    }

    /// What two inodes of the same thing share (`None`: a fixed inode).
    fn key(&self) -> Option<Key> {
        match self {
            Virtual::Mirror { box_id, .. } => Some(Key::Mirror(box_id.clone())),
            Virtual::Versions { box_id, .. } => Some(Key::Versions(box_id.clone())),
            Virtual::Version { file_id, version_id, .. } => Some(Key::Version(file_id.clone(), version_id.clone())),
            Virtual::Trashed { id, folder, .. } => Some(Key::Trashed(*folder, id.clone())),
            Virtual::DotBox | Virtual::VersionsRoot | Virtual::TrashRoot => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Mirror(String),
    Versions(String),
    Version(String, String),
    Trashed(bool, String),
}

#[derive(Clone, Debug)]
pub struct VNode {
    pub ino: Ino,
    pub parent: Ino,
    pub what: Virtual,
    pub mtime: SystemTime,
    lookups: u64,
    touched: Instant,
}

struct Inner {
    nodes: HashMap<Ino, VNode>,
    by_key: HashMap<Key, Ino>,
    next: Ino,
}

pub struct VirtualTable {
    inner: Mutex<Inner>,
}

impl Default for VirtualTable {
    fn default() -> VirtualTable {
        let now = SystemTime::now();
        let fixed = [
            (DOT_BOX_INO, crate::vfs::meta::inode::ROOT_INO, Virtual::DotBox),
            (VERSIONS_INO, DOT_BOX_INO, Virtual::VersionsRoot),
            (TRASH_INO, DOT_BOX_INO, Virtual::TrashRoot),
        ];
        let nodes = fixed
            .into_iter()
            .map(|(ino, parent, what)| {
                (ino, VNode { ino, parent, what, mtime: now, lookups: 0, touched: Instant::now() })
            })
            .collect();
        VirtualTable { inner: Mutex::new(Inner { nodes, by_key: HashMap::new(), next: FIRST_DYNAMIC }) }
    }
}

impl VirtualTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, ino: Ino) -> Option<VNode> {
        self.lock().nodes.get(&ino).cloned()
    }

    /// The inode of `what` under `parent` (the one it has, or a new one), with what is known
    /// of it now.
    pub fn insert(&self, parent: Ino, what: Virtual, mtime: SystemTime) -> Ino {
        let mut t = self.lock();
        let key = what.key().expect("fixed inodes are not inserted");
        if let Some(ino) = t.by_key.get(&key).copied() {
            let node = t.nodes.get_mut(&ino).expect("indexed nodes exist");
            (node.parent, node.what, node.mtime, node.touched) = (parent, what, mtime, Instant::now());
            return ino;
        }
        sweep(&mut t);
        let ino = t.next;
        t.next += 1;
        t.by_key.insert(key, ino);
        t.nodes.insert(ino, VNode { ino, parent, what, mtime, lookups: 0, touched: Instant::now() });
        ino
    }

    /// The kernel holds one more reference to `ino`.
    pub fn add_lookup(&self, ino: Ino) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.lookups += 1;
            n.touched = Instant::now();
        }
    }

    /// The kernel forgot `n` lookups of `ino`.
    pub fn forget(&self, ino: Ino, n: u64) {
        if let Some(node) = self.lock().nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
            node.touched = Instant::now();
        }
    }

    /// Drops `ino` (a trashed item restored or purged); a fixed inode stays.
    pub fn remove(&self, ino: Ino) {
        let mut t = self.lock();
        let key = t.nodes.get(&ino).and_then(|n| n.what.key());
        if let Some(key) = key {
            t.by_key.remove(&key);
            t.nodes.remove(&ino);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().nodes.is_empty()
    }
}

/// Drops the entries the kernel does not know that have been idle for [`IDLE`].
fn sweep(t: &mut Inner) {
    let Inner { nodes, by_key, .. } = t;
    nodes.retain(|_, n| {
        let keep = n.what.key().is_none() || n.lookups > 0 || n.touched.elapsed() < IDLE;
        if !keep {
            by_key.remove(&n.what.key().expect("checked"));
        }
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thing_keeps_one_number_and_numbers_are_virtual() {
        let t = VirtualTable::default();
        let v = |id: &str| Virtual::Version { file_id: "9".into(), version_id: id.into(), size: 1 };
        let a = t.insert(VERSIONS_INO, v("1"), SystemTime::UNIX_EPOCH);
        let b = t.insert(VERSIONS_INO, v("2"), SystemTime::UNIX_EPOCH);
        assert_ne!(a, b);
        assert_eq!(t.insert(VERSIONS_INO, v("1"), SystemTime::UNIX_EPOCH), a);
        assert!(super::super::is_virtual(a) && super::super::is_virtual(DOT_BOX_INO));
        t.remove(a);
        assert!(t.get(a).is_none());
        assert_ne!(t.insert(VERSIONS_INO, v("1"), SystemTime::UNIX_EPOCH), a, "numbers are never reused");
        t.remove(TRASH_INO);
        assert!(t.get(TRASH_INO).is_some(), "fixed inodes stay");
    }
}
