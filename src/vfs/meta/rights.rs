//! Box permissions are the truth for what the mount allows: an operation the user's role on an
//! item forbids is refused with `EACCES` when it is made, before anything is staged or queued
//! (also for root, whom the kernel's mode checks let through). What is known of an item's
//! rights is revalidated first when it is stale, so a role changed in Box (the event stream
//! marks every item stale) reaches the refusals at once.

use super::inode::{Node, Rights};

/// What an operation needs of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read a file's content.
    Read,
    /// List a folder.
    List,
    /// Add an item to a folder.
    Create,
    /// Change a file's content (or its mtime, which travels with the next version).
    Write,
    Rename,
    /// Trash the item, or move it to another folder.
    Delete,
}

impl Op {
    /// Whether `rights` (what Box lets the user do with `node`) allow this operation on it.
    pub fn allowed(self, node: &Node, rights: Rights) -> bool {
        match self {
            Op::Read => rights.read,
            Op::List => !node.unlistable,
            Op::Create | Op::Write => rights.write,
            Op::Rename => rights.rename,
            Op::Delete => rights.delete,
        }
    }
}
