//! Logging for `boxfs mount`: `tracing` filtered by `RUST_LOG`, to stderr or appended to the
//! `--log-file` (created 0600 with its directory when missing).

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

/// Opens `path` for appending (0600 when created), creating its directory.
pub fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// Installs the subscriber: `RUST_LOG` or `default_filter`, into `file` or stderr.
pub fn init(default_filter: &str, file: Option<&Path>) -> std::io::Result<()> {
    let Some(path) = file else {
        super::init_logging(default_filter);
        return Ok(());
    };
    super::install_logging(default_filter, Mutex::new(open_append(path)?), false);
    Ok(())
}
