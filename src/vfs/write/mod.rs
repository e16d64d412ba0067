//! The write room: local changes on their way to Box.
//!
//! - `staging.rs`: a staged entry: a file's local content (and size, mtime) and its journal
//!   record, the one place reads, `stat` and listings take them from until the upload commits.
//! - `staged_files.rs`: every staged entry, one per inode, and the rule by which a writer joins
//!   an entry and an entry leaves.
//! - `journal.rs`: the durable journal of staged entries (data file + record), read back after
//!   a crash.
//! - `upload_state.rs`: each entry's way to Box, as a state machine without I/O.
//! - `hasher.rs`: the SHA-1 of a file written front to back, computed behind the writer.
//!
//! Invariants: every staged entry has a journal record from the moment it exists until its
//! content and attributes are in Box (or it is removed); at most one send per entry is under
//! way, and changes made meanwhile coalesce into exactly one more; an entry leaves the journal
//! only from the final states of its machine. The filesystem's write-back driver
//! (`writeback.rs`) runs the machines and makes the calls to Box.

pub mod hasher;
pub mod journal;
pub mod staged_files;
pub mod staging;
pub mod upload_state;
