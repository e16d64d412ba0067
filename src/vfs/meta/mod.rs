//! The metadata room: what the mount knows of Box's items, without their content.
//!
//! - `inode.rs`: one stable inode per Box item (files, folders and web links are separate id
//!   spaces) with what Box said of it ([`inode::Meta`]), its rights and the kernel's lookup count.
//! - `listings.rs`: folder listings, each behind its own async lock, so one fetch serves every
//!   concurrent caller and a local edit is never lost to a fetch that started before it.
//! - `attr.rs`, `stored.rs`, `posix.rs`: `stat` attributes: the mount's defaults from Box's
//!   permissions and the mount options, with the POSIX attributes stored on the item over them.
//! - `rights.rs`: which operation each Box right allows; `names.rs`: Box's naming rules as errnos.
//! - `sharing.rs`: who the mount is in Box, the locks it took for writers, and a shared link
//!   or lock just read for a size probe.
//! - `slots.rs`: the inode table's storage, in chunks given back once empty.
//! - `compact.rs`: the compact forms the table keeps items in (ids as integers, SHA-1s as bytes).
//!
//! Memory is bounded: listings are kept within a byte budget (least recently used dropped
//! first), and an item leaves the table once the kernel has forgotten it and no cached
//! listing, open handle or pending change holds it (the filesystem decides; `fs.rs`).
//!
//! Invariants: an inode number names one Box item (or one local item not yet in Box), and
//! never another for the life of the mount; an item keeps its number while it is in the table
//! (seen again after it left, it gets a new one); a listing holds only inodes present in the table; an
//! item's rights and stored attributes, once known, are kept across answers that do not carry
//! them (event sources) and dropped only by a revalidation. Nothing here calls Box: the
//! filesystem (`fs.rs`) fetches and hands the answers in.

pub mod attr;
pub mod compact;
pub mod inode;
pub mod listings;
pub mod names;
pub mod posix;
pub mod rights;
pub mod sharing;
pub mod slots;
pub mod stored;
