//! boxfs: the filesystem (the vfs, its FUSE adapter and the mount), the control channel of a
//! running mount, and the command line. The Box client is the `boxfs-api` crate, the emulator
//! `boxfs-emulator` (which the binary ships as `boxfs emulator`), local I/O primitives
//! `boxfs-io`. The metrics endpoint of a mount is `telemetry`.

pub mod cli;
pub mod config;
pub mod control;
pub mod fuse;
pub mod mount;
pub mod telemetry;
pub mod vfs;
