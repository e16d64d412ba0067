//! `boxfs` as a mount(8) helper: invoked as `mount.boxfs` or `mount.fuse.boxfs` (a symlink to
//! the binary, see scripts/install-helpers.sh), it gets `SOURCE MOUNTPOINT [-o OPTS] [-n] [-s]
//! [-v] [-f]` and runs `boxfs mount MOUNTPOINT --account SOURCE -o OPTS` (SOURCE is an account
//! name; `boxfs#NAME` is accepted too). `-n`, `-s` and `-v` are mount(8)'s bookkeeping flags and
//! mean nothing here; `-f` ("fake") exits at once without mounting.

use std::ffi::OsString;
use std::path::Path;

/// Program names that make the binary behave as the helper.
const HELPER_NAMES: [&str; 2] = ["mount.boxfs", "mount.fuse.boxfs"];

/// What the command line amounts to.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    /// Parse these arguments as `boxfs ...` (already rewritten for the helper).
    Args(Vec<OsString>),
    /// `-f`: pretend the mount happened.
    Fake,
    Usage(String),
}

/// The process's arguments, rewritten when called under a helper name.
pub fn invocation() -> Invocation {
    classify(std::env::args_os().collect())
}

/// The arguments as `boxfs` parses them (rewritten under a helper name), for re-running the
/// same command in a child.
pub fn effective_args() -> Vec<OsString> {
    match invocation() {
        Invocation::Args(args) => args,
        Invocation::Fake | Invocation::Usage(_) => std::env::args_os().collect(),
    }
}

pub fn classify(argv: Vec<OsString>) -> Invocation {
    let is_helper =
        argv.first().and_then(|a| Path::new(a).file_name()).is_some_and(|n| HELPER_NAMES.iter().any(|h| n == *h));
    if is_helper {
        rewrite(&argv[1..])
    } else {
        Invocation::Args(argv)
    }
}

fn rewrite(args: &[OsString]) -> Invocation {
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut fake = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy();
        match text.as_ref() {
            "-o" => match it.next() {
                Some(o) => options.push(o.clone()),
                None => return Invocation::Usage("-o needs a value".into()),
            },
            "-n" | "-s" | "-v" => {}
            "-f" => fake = true,
            t if t.starts_with("-o") => options.push(OsString::from(&t[2..])),
            t if t.starts_with('-') && t.len() > 1 => return Invocation::Usage(format!("unknown flag {t}")),
            _ => positional.push(arg.clone()),
        }
    }
    let [source, mountpoint] = positional.as_slice() else {
        return Invocation::Usage("usage: mount.boxfs ACCOUNT MOUNTPOINT [-o OPTIONS]".into());
    };
    if fake {
        return Invocation::Fake;
    }
    let source = source.to_string_lossy();
    let account = source.rsplit_once('#').map_or(source.as_ref(), |(_, name)| name);
    let mut out: Vec<OsString> =
        vec!["boxfs".into(), "mount".into(), mountpoint.clone(), "--account".into(), account.into()];
    for o in options {
        out.push("-o".into());
        out.push(o);
    }
    Invocation::Args(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn rewrites_mount_helper_calls() {
        let got =
            classify(argv(&["/sbin/mount.fuse.boxfs", "work", "/mnt/box", "-n", "-o", "rw,_netdev,metadata_ttl=30"]));
        let want = argv(&["boxfs", "mount", "/mnt/box", "--account", "work", "-o", "rw,_netdev,metadata_ttl=30"]);
        assert_eq!(got, Invocation::Args(want));
        let got = classify(argv(&["mount.boxfs", "boxfs#home", "/m", "-oro"]));
        assert_eq!(got, Invocation::Args(argv(&["boxfs", "mount", "/m", "--account", "home", "-o", "ro"])));
        assert_eq!(classify(argv(&["mount.boxfs", "a", "/m", "-f"])), Invocation::Fake);
        assert!(matches!(classify(argv(&["mount.boxfs", "/m"])), Invocation::Usage(_)));
        assert_eq!(classify(argv(&["boxfs", "whoami"])), Invocation::Args(argv(&["boxfs", "whoami"])));
    }
}
