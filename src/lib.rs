//! boxfs: mount a Box.com account as a local directory on Linux, and the local Box API
//! emulator it is developed and tested against.

pub mod api;
pub mod atomic_file;
pub mod blockbuf;
pub mod cli;
pub mod config;
pub mod control;
pub mod direct_io;
pub mod emulator;
pub mod fuse;
pub mod lock_file;
pub mod mount;
pub mod runtime_dir;
pub mod vfs;
