//! Filesystem logic, async and FUSE-free: the inode table, metadata cache, block cache,
//! prefetcher, write-back (content and stored POSIX attributes) and the operations the FUSE
//! adapter calls. Testable without mounting.

pub mod attr;
pub mod blocks;
mod downloads;
pub mod error;
pub mod events;
mod fs;
mod hasher;
pub mod inode;
pub mod journal;
mod listings;
pub mod posix;
pub mod prefetch;
mod rights;
mod staging;
mod upload_state;
pub mod uploads;
mod write;
mod writeback;

pub use attr::{Attr, AttrPolicy, SpecialType};
pub use error::{VfsError, VfsResult};
pub use fs::{Fs, FsConfig, FsyncMode, XATTRS};
pub use inode::{Ino, NodeKind, ROOT_INO};
pub use listings::{DirEntry, Listing};
pub use write::{Caller, OwnerChange};
