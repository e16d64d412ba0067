//! The hidden `.box/` directory at the mount root: what Box keeps beside the tree, shown as
//! read-only files and folders that exist only in the mount.
//!
//! - `.box/versions/PATH/`: a folder per file of the tree (folders mirror the tree), listing
//!   every version of the file at `PATH` as a read-only file named by [`names::version_name`].
//! - `.box/trash/`: the user's trash, one entry per trashed item ([`trash::TrashView`]); an item
//!   trashed out of a folder that is in the trash too is shown inside that folder.
//!
//! This room owns the virtual inodes ([`table::VirtualTable`]) and the views fetched from Box
//! ([`trash::TrashView`], [`versions::VersionsView`]); the facade (`dotbox_ops.rs`) answers the
//! filesystem operations with them.
//!
//! Invariants:
//! - A virtual inode has [`VIRTUAL_BIT`] set, which no inode of the tree has (those are
//!   `generation << 32 | slot` with generations far below 2^31): the two never collide.
//! - Nothing here is fetched until someone looks inside `.box/`; a view is trusted for
//!   [`VIEW_TTL`] at most, and only for lookups (listing a folder of `.box/` fetches it again).
//! - A virtual inode the kernel forgot is dropped once it is idle ([`table`]).

pub mod names;
pub mod table;
pub mod trash;
pub mod versions;

use super::meta::inode::Ino;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use table::VirtualTable;
use trash::TrashView;
use versions::VersionsView;

/// The bit every virtual inode number has.
pub const VIRTUAL_BIT: Ino = 1 << 63;

/// The name of the hidden directory at the mount root.
pub const DOT_BOX: &str = ".box";

/// How long a fetched view answers lookups without asking Box again.
pub const VIEW_TTL: Duration = Duration::from_secs(5);

/// Whether `ino` is one of `.box/`'s.
pub fn is_virtual(ino: Ino) -> bool {
    ino & VIRTUAL_BIT != 0
}

/// What the mount knows of `.box/`: its inodes and the views fetched last.
#[derive(Default)]
pub struct DotBox {
    pub table: VirtualTable,
    trash: Mutex<Option<Arc<TrashView>>>,
    /// By file id.
    versions: Mutex<HashMap<String, Arc<VersionsView>>>,
}

impl DotBox {
    /// The trash as fetched last, if it is fresh.
    pub fn fresh_trash(&self) -> Option<Arc<TrashView>> {
        let trash = self.trash.lock().unwrap_or_else(|p| p.into_inner());
        trash.as_ref().filter(|t| t.fetched.elapsed() < VIEW_TTL).cloned()
    }

    pub fn set_trash(&self, view: Arc<TrashView>) {
        *self.trash.lock().unwrap_or_else(|p| p.into_inner()) = Some(view);
    }

    /// The trash changed (something was deleted, restored or purged): fetch it at next look.
    pub fn trash_changed(&self) {
        *self.trash.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The versions of file `file_id` as fetched last, if they are fresh.
    pub fn fresh_versions(&self, file_id: &str) -> Option<Arc<VersionsView>> {
        let versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        versions.get(file_id).filter(|v| v.fetched.elapsed() < VIEW_TTL).cloned()
    }

    /// Keeps the versions of `file_id` (and drops the views that are no longer fresh).
    pub fn set_versions(&self, file_id: &str, view: Arc<VersionsView>) {
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        versions.retain(|_, v| v.fetched.elapsed() < VIEW_TTL);
        versions.insert(file_id.to_string(), view);
    }
}
