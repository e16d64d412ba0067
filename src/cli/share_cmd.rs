//! `boxfs share`, `boxfs lock` and `boxfs unlock`: Box's shared links and locks of files in a
//! mount, through the mount's own extended attributes (`user.box.shared_link`,
//! `user.box.lock`; their value grammar is in SEMANTICS.md). Nothing here talks to Box: the
//! mount does, as the user it is mounted for.
//!
//! A link password is read from the terminal without echo (or as one line of standard input
//! when it is not a terminal); it goes only into the attribute's value, never to the output.

use clap::{Args, ValueEnum};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const SHARED_LINK: &str = "user.box.shared_link";
const LOCK: &str = "user.box.lock";
/// Every item of a boxfs mount has it; nothing else does.
const BOX_ID: &str = "user.box.id";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Access {
    /// Anyone with the link.
    Open,
    /// People in your company (enterprise).
    Company,
    /// Collaborators on the item only.
    Collaborators,
}

/// The attribute behind `boxfs share`, as the man page tells it.
const SHARE_ATTRIBUTE: &str = "The link is the item's extended attribute user.box.shared_link in the mount: \
`getfattr -n user.box.shared_link PATH` prints it (no such attribute: no link), `setfattr -n \
user.box.shared_link -v '[ACCESS][ expires=DATE][ password=PASSWORD]' PATH` creates or changes it \
(each part optional, at least one given; ACCESS: open, company or collaborators; the password last, the rest of the \
value) and \
`setfattr -x user.box.shared_link PATH` removes it.";

/// The attribute behind `boxfs lock` and `boxfs unlock`, as the man pages tell it.
const LOCK_ATTRIBUTE: &str = "The lock is the file's extended attribute user.box.lock in the mount: \
`getfattr -n user.box.lock PATH` prints `locked by NAME <LOGIN> until DATE` (or `..., no \
expiry`; no such attribute: unlocked), `setfattr -n user.box.lock -v 'on[ expires=DATE]' PATH` \
locks and `setfattr -x user.box.lock PATH` (or `-v off`) unlocks. A file someone else locked \
cannot be opened for writing in the mount (EACCES); `boxfs mount --lock-on-open` locks files \
while they are open for writing.";

#[derive(Debug, Args)]
#[command(after_long_help = SHARE_ATTRIBUTE)]
pub struct ShareArgs {
    /// A file or folder in a boxfs mount.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Who may open the link [default: as the link has it; a new link: open].
    #[arg(long, value_enum)]
    pub access: Option<Access>,
    /// The link stops working then: a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    pub expires: Option<String>,
    /// Protect the link with a password, read from the terminal (or standard input); only
    /// for open links.
    #[arg(long)]
    pub password: bool,
}

#[derive(Debug, Args)]
#[command(after_long_help = LOCK_ATTRIBUTE)]
pub struct LockArgs {
    /// A file in a boxfs mount.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The lock ends then: a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time [default:
    /// until unlocked].
    #[arg(long, value_name = "DATE")]
    pub expires: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_long_help = LOCK_ATTRIBUTE)]
pub struct UnlockArgs {
    /// A file in a boxfs mount.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// Why a verb failed, as the user is told.
#[derive(Debug, thiserror::Error)]
enum VerbError {
    #[error("{}: not in a boxfs mount", .0.display())]
    NotInMount(PathBuf),
    #[error("{}: {why}", .path.display())]
    Refused { path: PathBuf, why: String },
    #[error("cannot read the password: {0}")]
    Password(std::io::Error),
}

fn explain(path: &Path, e: std::io::Error) -> VerbError {
    let why = match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "permission denied (your role in Box does not allow it, or someone else holds the lock)".to_string()
        }
        Some(libc::EINVAL) => "Box refused the settings (the mount's log says why)".to_string(),
        Some(libc::ENOTSUP) => {
            "not supported for this item (shared links are for files and folders, locks for files)".to_string()
        }
        Some(libc::EROFS) => "the mount is read-only".to_string(),
        Some(libc::EAGAIN) => "not in Box yet (its upload is pending; `boxfs sync` it first)".to_string(),
        _ => e.to_string(),
    };
    VerbError::Refused { path: path.to_path_buf(), why }
}

fn read_attr(path: &Path, name: &str) -> std::io::Result<Option<String>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::getxattr(path, name, &mut buf[..]) {
        Ok(n) => Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_attr(path: &Path, name: &str, value: &str) -> std::io::Result<()> {
    Ok(rustix::fs::setxattr(path, name, value.as_bytes(), rustix::fs::XattrFlags::empty())?)
}

/// `Err` unless `path` is an item of a boxfs mount.
fn in_mount(path: &Path) -> Result<(), VerbError> {
    match read_attr(path, BOX_ID) {
        Ok(Some(_)) => Ok(()),
        _ => Err(VerbError::NotInMount(path.to_path_buf())),
    }
}

/// Reads a password without echoing it. On a terminal, echo is off before the prompt shows: what
/// is typed as soon as the prompt appears is never echoed.
fn read_password() -> std::io::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    let mut fd = stdin.lock();
    let saved = rustix::termios::tcgetattr(&fd)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &quiet)?;
    eprint!("Link password: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = fd.read_line(&mut line); // stdin's lock is not reentrant: read through the one held
    rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &saved)?;
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The `user.box.shared_link` value for these settings (`None`: nothing to change).
fn link_value(access: Option<Access>, expires: Option<&str>, password: Option<&str>) -> Option<String> {
    let access = access.map(|a| a.to_possible_value().expect("no skipped values").get_name().to_string());
    let expires = expires.map(|date| format!("expires={date}"));
    let password = password.map(|pw| format!("password={pw}"));
    let words: Vec<String> = [access, expires, password].into_iter().flatten().collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn share(args: &ShareArgs) -> Result<String, VerbError> {
    let path = &args.path;
    in_mount(path)?;
    let password = if args.password { Some(read_password().map_err(VerbError::Password)?) } else { None };
    let existing = read_attr(path, SHARED_LINK).map_err(|e| explain(path, e))?;
    let value = match (link_value(args.access, args.expires.as_deref(), password.as_deref()), existing) {
        (None, Some(url)) => return Ok(url),
        (None, None) => "open".to_string(),
        (Some(value), None) if args.access.is_none() => format!("open {value}"),
        (Some(value), _) => value,
    };
    write_attr(path, SHARED_LINK, &value).map_err(|e| explain(path, e))?;
    read_attr(path, SHARED_LINK)
        .map_err(|e| explain(path, e))?
        .ok_or_else(|| VerbError::Refused { path: path.clone(), why: "the link is gone again".into() })
}

fn lock(args: &LockArgs) -> Result<String, VerbError> {
    let path = &args.path;
    in_mount(path)?;
    let value = match &args.expires {
        Some(date) => format!("on expires={date}"),
        None => "on".to_string(),
    };
    write_attr(path, LOCK, &value).map_err(|e| explain(path, e))?;
    read_attr(path, LOCK)
        .map_err(|e| explain(path, e))?
        .ok_or_else(|| VerbError::Refused { path: path.clone(), why: "the lock is gone again".into() })
}

fn unlock(args: &UnlockArgs) -> Result<(), VerbError> {
    in_mount(&args.path)?;
    rustix::fs::removexattr(&args.path, LOCK).map_err(|e| explain(&args.path, e.into()))
}

fn finish<T>(verb: &str, result: Result<T, VerbError>, print: impl FnOnce(T)) -> ExitCode {
    match result {
        Ok(out) => {
            print(out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("boxfs {verb}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn run_share(args: ShareArgs) -> ExitCode {
    finish("share", share(&args), |url| println!("{url}"))
}

pub fn run_lock(args: LockArgs) -> ExitCode {
    finish("lock", lock(&args), |lock| println!("{lock}"))
}

pub fn run_unlock(args: UnlockArgs) -> ExitCode {
    finish("unlock", unlock(&args), |()| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_values_follow_the_attribute_grammar() {
        assert_eq!(link_value(None, None, None), None);
        assert_eq!(link_value(Some(Access::Company), None, None).as_deref(), Some("company"));
        assert_eq!(
            link_value(None, Some("2027-01-01"), Some("pass word1")).as_deref(),
            Some("expires=2027-01-01 password=pass word1")
        );
        assert_eq!(link_value(Some(Access::Collaborators), None, None).as_deref(), Some("collaborators"));
    }
}
