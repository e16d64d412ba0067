//! Attributes as `stat` shows them: kind, size, times from Box, mode bits from Box permissions
//! and the mount's `uid`/`gid`/`umask`/read-only options. These are the defaults; POSIX
//! attributes stored on the item (`posix.rs`) override them where present.

use super::inode::{Ino, Node, NodeKind};
use std::time::SystemTime;

/// Preferred I/O size reported to `stat` (so that `cp` and friends read in large chunks).
pub const BLKSIZE: u32 = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Attr {
    pub ino: Ino,
    pub kind: NodeKind,
    pub size: u64,
    pub blocks: u64,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub crtime: SystemTime,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub blksize: u32,
    /// A file that is not a regular file (a symlink, FIFO, socket or device node), from the
    /// attributes stored on it.
    pub special: Option<SpecialType>,
    /// The device number of a device node.
    pub rdev: u32,
}

/// The file types a Box file can stand for besides a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialType {
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// How Box metadata becomes ownership and mode bits.
#[derive(Clone, Debug)]
pub struct AttrPolicy {
    pub uid: u32,
    pub gid: u32,
    pub umask: u16,
    pub read_only: bool,
}

impl AttrPolicy {
    pub fn attr(&self, node: &Node) -> Attr {
        let writable = !self.read_only && node.meta.can_write && node.kind != NodeKind::Link;
        let base: u16 = match (node.kind, writable) {
            (NodeKind::Dir, true) => 0o777,
            (NodeKind::Dir, false) => 0o555,
            (_, true) => 0o666,
            (_, false) => 0o444,
        };
        Attr {
            ino: node.ino,
            kind: node.kind,
            size: node.meta.size,
            blocks: node.meta.size.div_ceil(512),
            mtime: node.mtime_set.unwrap_or(node.meta.mtime),
            ctime: node.meta.ctime,
            crtime: node.meta.crtime,
            perm: base & !self.umask,
            nlink: if node.kind == NodeKind::Dir { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            blksize: BLKSIZE,
            special: None,
            rdev: 0,
        }
    }
}
