//! `boxfs versions PATH`: the versions of a file in a boxfs mount as a table (when each was
//! uploaded, in UTC; its version id; its size in bytes; the current one marked `*`), read through
//! the mount from its hidden `.box/versions/PATH/` like any other program would. Each line's
//! version is readable (and can be copied back) at the path the last column gives.

use crate::control;
use crate::vfs::dotbox::names::parse_version_name;
use crate::vfs::dotbox::DOT_BOX;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// A file in a boxfs mount.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// One version as the table shows it.
struct Row {
    time: String,
    id: String,
    size: u64,
    path: PathBuf,
}

pub fn run(args: VersionsArgs) -> ExitCode {
    match rows(&args.path) {
        Ok(rows) => {
            print!("{}", render(&rows, current_version(&args.path).as_deref()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("boxfs versions: {}: {e}", args.path.display());
            ExitCode::FAILURE
        }
    }
}

/// The folder of `path`'s versions in its mount.
fn versions_dir(path: &Path) -> Result<PathBuf, String> {
    let (mount, inside) = control::locate(path).map_err(|e| e.to_string())?;
    if inside.as_os_str().is_empty() {
        return Err("a mountpoint has no versions; give a file".into());
    }
    Ok(mount.mountpoint.join(DOT_BOX).join("versions").join(inside))
}

/// The versions of `path`, oldest first.
fn rows(path: &Path) -> Result<Vec<Row>, String> {
    if std::fs::metadata(path).map_err(|e| e.to_string())?.is_dir() {
        return Err("a folder has no versions; give a file".into());
    }
    let dir = versions_dir(path)?;
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((time, id)) = parse_version_name(&name) else { continue };
        let size = entry.metadata().map_err(|e| e.to_string())?.len();
        rows.push(Row { time: readable_time(time), id: id.to_string(), size, path: entry.path() });
    }
    rows.sort_by(|a, b| (&a.time, &a.path).cmp(&(&b.time, &b.path)));
    Ok(rows)
}

/// `2026-11-01T101500` as `2026-11-01 10:15:00`.
fn readable_time(name_time: &str) -> String {
    chrono::NaiveDateTime::parse_from_str(name_time, "%Y-%m-%dT%H%M%S")
        .map_or_else(|_| name_time.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// The file's current version id (its `user.box.version` attribute).
fn current_version(path: &Path) -> Option<String> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::getxattr(path, "user.box.version", &mut buf).ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
}

fn render(rows: &[Row], current: Option<&str>) -> String {
    let id_width = rows.iter().map(|r| r.id.len()).max().unwrap_or(0).max("VERSION".len());
    let size_width = rows.iter().map(|r| r.size.to_string().len()).max().unwrap_or(0).max("SIZE".len());
    let mut out = format!("{:<19}  {:<id_width$}  {:>size_width$}    PATH\n", "UPLOADED (UTC)", "VERSION", "SIZE");
    for r in rows {
        let mark = if current == Some(r.id.as_str()) { "*" } else { " " };
        out.push_str(&format!(
            "{:<19}  {:<id_width$}  {:>size_width$} {mark}  {}\n",
            r.time,
            r.id,
            r.size,
            r.path.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_line_per_version_and_marks_the_current_one() {
        let row = |id: &str, size| Row {
            time: readable_time("2026-11-01T101500"),
            id: id.into(),
            size,
            path: PathBuf::from(format!("/m/.box/versions/r.pdf/2026-11-01T101500_{id}.pdf")),
        };
        let table = render(&[row("7", 10), row("12345", 2048)], Some("12345"));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "UPLOADED (UTC)       VERSION  SIZE    PATH");
        assert_eq!(lines[1], "2026-11-01 10:15:00  7          10    /m/.box/versions/r.pdf/2026-11-01T101500_7.pdf");
        assert_eq!(
            lines[2],
            "2026-11-01 10:15:00  12345    2048 *  /m/.box/versions/r.pdf/2026-11-01T101500_12345.pdf"
        );
    }
}
