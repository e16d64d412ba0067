//! Box permissions are the truth for what the mount allows: an operation the user's role on an
//! item forbids is refused with `EACCES` when it is made, before anything is staged or queued
//! (also for root, whom the kernel's mode checks let through). What is known of an item's
//! rights is revalidated first when it is stale, so a role changed in Box (the event stream
//! marks every item stale) reaches the refusals at once.

use super::error::{VfsError, VfsResult};
use super::fs::Fs;
use super::inode::{Ino, NodeKind};

/// What an operation needs of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
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

impl Fs {
    /// `Err(EACCES)` unless the user's rights on `ino` allow `op`.
    pub(super) async fn check_allowed(&self, ino: Ino, op: Op) -> VfsResult<()> {
        let mut node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        let local = node.box_id.starts_with("local:");
        if !local && (node.fetched.is_none() || node.meta.rights.is_none()) && node.kind != NodeKind::Link {
            self.getattr(ino).await?;
            node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        }
        let Some(rights) = node.meta.rights else { return Ok(()) };
        let allowed = match op {
            Op::Read => rights.read,
            Op::List => !node.unlistable,
            Op::Create | Op::Write => rights.write,
            Op::Rename => rights.rename,
            Op::Delete => rights.delete,
        };
        if allowed {
            Ok(())
        } else {
            tracing::debug!(ino, ?op, name = %node.name, "refused: the item's permissions in Box do not allow it");
            Err(VfsError::Denied)
        }
    }

    /// A collaboration changed (the user's role somewhere): forget every listing and what the
    /// user may do with each item; everything is asked for again at next use. Returns the
    /// inodes whose kernel attributes are to be dropped.
    pub(super) async fn rights_changed(&self) -> Vec<Ino> {
        self.forget_all_listings().await;
        self.inodes().forget_rights()
    }
}
