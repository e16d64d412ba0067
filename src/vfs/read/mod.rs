//! The read room: file content from Box through the on-disk block cache.
//!
//! - `version.rs`: which content of a file a block holds ([`version::ContentVersion`]).
//! - `blocks.rs`: fixed-size blocks keyed by file id, content version and index, on disk
//!   (evicted least-recently-used to a byte capacity), written by downloads as their bytes
//!   arrive, with a recent tier of the latest blocks' open files.
//! - `downloads.rs`: the downloads under way, shared by every reader of one cache.
//! - `pins.rs`: the pinned items (kept on this device), persisted, with their progress.
//! - `ramp.rs`: how many prefetch downloads to keep in flight, learned from their arrivals.
//! - `prefetch.rs`: one reader per open handle, with a prefetch window that grows while reads
//!   are sequential, as many downloads in flight as its ramp says.
//!
//! Invariants: blocks of two versions of a file never mix (a reader reads one version, and a
//! download asks Box for exactly that version when its id is known); a block is downloaded at
//! most once at a time, and anyone looking finds it in the registry of downloads or in the
//! cache, never in neither; only whole blocks (or a file's last, short block) are cached.
//! Box is reached only through the fetch function the filesystem hands in.

pub mod blocks;
pub mod downloads;
pub mod pins;
pub mod prefetch;
pub mod ramp;
pub mod version;
