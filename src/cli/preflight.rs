//! Checks made before mounting, so that the common failures get a message saying what to do:
//! no `/dev/fuse`, no `fusermount3` (the fuse3 package), a missing mountpoint, one that is
//! already a mount (or a dead FUSE mount), and one that is not empty.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "/dev/fuse is missing: load the FUSE kernel module (modprobe fuse), or in a container pass --device /dev/fuse"
    )]
    NoDevFuse,
    #[error("fusermount3 not found on PATH: install FUSE 3 (Debian/Ubuntu: apt-get install fuse3; Fedora: dnf install fuse3)")]
    NoFusermount,
    #[error("mountpoint {} does not exist (create it: mkdir -p {})", .0.display(), .0.display())]
    Missing(PathBuf),
    #[error("mountpoint {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("mountpoint {} is a disconnected FUSE mount (clear it: fusermount3 -u {})", .0.display(), .0.display())]
    Stale(PathBuf),
    #[error("mountpoint {} is already a mount point (unmount it first: fusermount3 -u {})", .0.display(), .0.display())]
    Busy(PathBuf),
    #[error("mountpoint {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Everything that can be known before trying; a non-empty mountpoint is only warned about.
pub fn check(mountpoint: &Path) -> Result<(), PreflightError> {
    if !Path::new("/dev/fuse").exists() {
        return Err(PreflightError::NoDevFuse);
    }
    // Root mounts through /dev/fuse directly; everyone else needs the setuid helper.
    if unsafe { libc::geteuid() } != 0 && !on_path("fusermount3") {
        return Err(PreflightError::NoFusermount);
    }
    let meta = match std::fs::metadata(mountpoint) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(PreflightError::Missing(mountpoint.into())),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return Err(PreflightError::Stale(mountpoint.into())),
        Err(source) => return Err(PreflightError::Io { path: mountpoint.into(), source }),
    };
    if !meta.is_dir() {
        return Err(PreflightError::NotADirectory(mountpoint.into()));
    }
    let canonical =
        std::fs::canonicalize(mountpoint).map_err(|source| PreflightError::Io { path: mountpoint.into(), source })?;
    if is_mount_point(&canonical) {
        return Err(PreflightError::Busy(mountpoint.into()));
    }
    if std::fs::read_dir(&canonical).is_ok_and(|mut d| d.next().is_some()) {
        // Printed, not logged: the check runs before logging is set up.
        eprintln!("boxfs mount: warning: {} is not empty: its files are hidden while mounted", mountpoint.display());
    }
    Ok(())
}

pub(super) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|dir| dir.join(program).is_file()))
}

/// True when `/proc/self/mountinfo` lists `path` as a mount point.
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    info.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| unescape_mountinfo(m) == wanted)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_and_escapes() {
        assert!(is_mount_point(Path::new("/")));
        assert_eq!(unescape_mountinfo("/mnt/a\\040b"), "/mnt/a b");
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(dir.path()));
        assert!(matches!(check(&dir.path().join("nope")), Err(PreflightError::Missing(_) | PreflightError::NoDevFuse)));
    }
}
