//! Local I/O primitives shared by the Box client and the filesystem: files replaced
//! atomically (token files, account files, journal records), exclusive lock files, the
//! per-user runtime directory, page-aligned buffers and files read and written with
//! `O_DIRECT`, and giving freed heap memory back to the system. Nothing here knows Box, HTTP or FUSE.

pub mod atomic_file;
pub mod blockbuf;
pub mod direct_io;
pub mod heap;
pub mod lock_file;
pub mod runtime_dir;
