//! Filesystem logic, async and FUSE-free, in three rooms and a facade.
//!
//! - [`meta`]: what is known of Box's items: inodes, listings, attributes, rights.
//! - [`read`]: file content through the block cache, downloads and prefetch.
//! - [`write`]: local changes: staged entries, the journal, the upload state machine.
//! - [`dotbox`]: the hidden `.box/` directory (versions and trash): virtual inodes and the
//!   views fetched from Box when someone looks.
//! - [`remote`]: what the vfs needs of Box, as a trait ([`Remote`]): the Box client implements
//!   it for the mount, an in-memory fake for the unit tests.
//!
//! [`Fs`] is the facade the FUSE adapter calls. It owns one of each room's parts and the open
//! handles, and its operations are where rooms meet: `fs.rs` (lookup, getattr, readdir, read,
//! xattrs), `ops.rs` (create, write, setattr, mkdir, unlink, rename), `dotbox_ops.rs` (the same
//! operations on `.box/`), `writeback.rs` (the
//! driver that takes staged entries to Box), `uploads.rs` (sync, drain, recovery, status) and
//! `events.rs` (Box's change events as invalidations), `pinning.rs` (pins and the worker that
//! keeps their content on this device). Rooms never call the facade; the facade
//! files do not import each other except for the types `fs.rs` defines. `box_attrs.rs` adds
//! Box's shared links and locks (as xattrs, and where files are opened for writing).
//!
//! The rules the facade keeps between rooms:
//! - A file with a staged entry is read, `stat`ed and listed from that entry (its size,
//!   mtime, content), whatever Box or the block cache hold, until the entry leaves.
//! - The staged map has at most one entry per inode; a handle open for writing holds that
//!   entry, and an entry takes a new writer only while it is still the map's entry for its
//!   inode (checked under the map's lock, which the driver also holds to unstage it), so no
//!   write lands in an entry that has left.
//! - An entry recovered from the journal is staged like any other (shown in its folder once
//!   that is listed) unless it is held; a held entry is in the journal only.
//! - A change made here is applied to the cached listing under the listing's lock, after Box
//!   accepted it (folders, renames and deletes of items in Box) or at once (items not in Box
//!   yet), so that a concurrent fetch of the folder cannot undo it.
//! - Every error becomes one errno in one place (`error.rs`).

mod box_attrs;
pub mod dotbox;
mod dotbox_ops;
pub mod error;
pub mod events;
mod fs;
pub mod meta;
mod ops;
mod pinning;
pub mod read;
pub mod remote;
pub mod telemetry;
mod time;
pub mod uploads;
pub mod write;
mod writeback;

#[cfg(test)]
mod box_attrs_tests;
#[cfg(test)]
mod dotbox_tests;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod pinning_tests;
#[cfg(test)]
mod tests;

pub use box_attrs::asks_box;
pub use dotbox::is_virtual;
pub use error::{VfsError, VfsResult};
pub use fs::{CacheUsage, DirOpened, DirSnapshot, Fs, FsConfig, FsyncMode, KernelCopy, PINNED, XATTRS};
pub use meta::attr::{Attr, AttrPolicy, SpecialType};
pub use meta::inode::{Ino, NodeKind, ROOT_INO};
pub use meta::listings::{DirEntry, Listing};
pub use ops::{Caller, OwnerChange};
pub use pinning::PinMark;
pub use remote::{Remote, RemoteResult};

/// Whether `name` is an extended attribute that can be set or removed ([`Fs::setxattr`]): Box's
/// shared link and lock (each a Box call) and the pin. Any other name is `ENOTSUP`.
pub fn settable_xattr(name: &str) -> bool {
    asks_box(name) || name == PINNED
}
