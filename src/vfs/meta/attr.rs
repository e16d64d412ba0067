//! Attributes as `stat` shows them: kind, size, times from Box, mode bits from Box permissions
//! (read: a file's `can_download`, a folder that Box lets the user list; write: `can_upload`)
//! and the mount's `uid`/`gid`/`umask`/read-only options. These are the defaults; POSIX
//! attributes stored on the item (`posix.rs`) override them where present, less the read and
//! write bits the user's rights do not allow ([`AttrPolicy::allowed_bits`]).

use super::inode::{Ino, Node, NodeKind, Rights};
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
    /// What the user may do with the item (Box permissions, a read-only mount): (read, write).
    fn may(&self, node: &Node) -> (bool, bool) {
        let rights = node.meta.rights.unwrap_or(Rights::ALL);
        let writable = !self.read_only && rights.write && node.kind != NodeKind::Link;
        let readable = if node.kind == NodeKind::Dir { !node.unlistable } else { rights.read };
        (readable, writable)
    }

    /// The mode bits the user's rights allow at all: stored POSIX modes show no read or write
    /// bit that Box would refuse.
    pub fn allowed_bits(&self, node: &Node) -> u16 {
        let (readable, writable) = self.may(node);
        0o7777 & !if readable { 0 } else { 0o444 } & !if writable { 0 } else { 0o222 }
    }

    pub fn attr(&self, node: &Node) -> Attr {
        let (readable, writable) = self.may(node);
        let read_bits: u16 = match (node.kind, readable) {
            (NodeKind::Dir, true) => 0o555,
            (NodeKind::Dir, false) => 0o111,
            (_, true) => 0o444,
            (_, false) => 0,
        };
        let base = read_bits | if writable { 0o222 } else { 0 };
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
