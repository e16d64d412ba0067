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
    let file = open_append(path)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(Mutex::new(file)).with_ansi(false).try_init();
    Ok(())
}
