//! The per-user runtime directory of boxfs: `$XDG_RUNTIME_DIR/boxfs` (an absolute, existing
//! `XDG_RUNTIME_DIR`), else `/tmp/boxfs-UID`. It holds what lives only while processes run:
//! the control sockets of mounts and the request budgets shared by the processes of an
//! account. Its directories are made with mode 0700 by whoever writes into them first. What
//! is registered there by pid is checked with [`process_alive`].

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// `$XDG_RUNTIME_DIR/boxfs`, else `/tmp/boxfs-UID`.
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .map(|p| p.join("boxfs"))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("boxfs-{}", rustix::process::geteuid().as_raw())))
}

/// Creates `dir` and its parent with mode 0700; returns `dir`.
pub fn private_dir(dir: PathBuf) -> std::io::Result<PathBuf> {
    for d in [dir.parent().unwrap_or(&dir), &dir] {
        std::fs::create_dir_all(d)?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// True while process `pid` exists (a pid of a process that has exited is not alive).
pub fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}
