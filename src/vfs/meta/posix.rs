//! POSIX attributes Box has no place for: mode bits, owner and group, a symlink's target, the
//! type of a FIFO, socket or device node, a directory's mtime. They are kept on the item, in
//! its `global.properties` metadata instance (Box's free-form template), under `boxfs_` keys
//! whose values are strings readable in Box's web app. Only what differs from the mount's
//! defaults is stored, so an item without those keys (made on the web, by another app, or
//! never changed) shows what Box's permissions and the mount's options say.
//!
//! Box's `global.properties` takes any key that does not start with `$` (Box's own fields);
//! the keys here use only lowercase letters and `_`, which also fits the stricter pattern Box
//! gives template field keys (`^[a-zA-Z_][-a-zA-Z0-9_]*$`); the values are all strings.
//!
//! Pure: it parses and writes the keys, applies them over the default attributes, and plans
//! the one metadata call that takes an item from what Box holds to what it should hold. Keys
//! of other apps in the same instance are left alone (the instance is deleted only when no
//! other key is in it).

use super::attr::{Attr, SpecialType};
use super::stored::{Keys, Stored, GID, MODE, MTIME, RDEV, TARGET, TYPE, UID};
use crate::vfs::time::{from_nanos, nanos};
use boxfs_api::metadata::PatchOp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A file that is not a regular file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Special {
    Symlink(String),
    Fifo,
    Socket,
    CharDevice(u32),
    BlockDevice(u32),
}

impl Special {
    pub fn kind(&self) -> SpecialType {
        match self {
            Special::Symlink(_) => SpecialType::Symlink,
            Special::Fifo => SpecialType::Fifo,
            Special::Socket => SpecialType::Socket,
            Special::CharDevice(_) => SpecialType::CharDevice,
            Special::BlockDevice(_) => SpecialType::BlockDevice,
        }
    }

    /// The node `mknod` makes for `mode`'s file type (`None`: a regular file or directory).
    pub fn from_mknod(mode: u32, rdev: u32) -> Option<Special> {
        match mode & libc::S_IFMT {
            libc::S_IFIFO => Some(Special::Fifo),
            libc::S_IFSOCK => Some(Special::Socket),
            libc::S_IFCHR => Some(Special::CharDevice(rdev)),
            libc::S_IFBLK => Some(Special::BlockDevice(rdev)),
            _ => None,
        }
    }
}

/// The stored POSIX attributes of an item; `None` fields take the mount's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Posix {
    /// Permission bits (`0o7777`).
    pub mode: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub special: Option<Special>,
    /// A directory's mtime, nanoseconds since the epoch.
    pub mtime_ns: Option<i128>,
}

fn time_string(ns: i128) -> String {
    let dt: chrono::DateTime<chrono::Utc> = from_nanos(ns).into();
    dt.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn parse_time(s: &str) -> Option<i128> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos()))
}

/// The permission bits of a mode (`chmod`'s, or what a file is created with).
pub fn permission_bits(mode: u32) -> u16 {
    (mode & 0o7777) as u16
}

impl Posix {
    /// Attributes with `mode`'s permission bits.
    pub fn with_mode(mode: u32) -> Posix {
        Posix { mode: Some(permission_bits(mode)), ..Posix::default() }
    }

    /// From stored keys; values that do not parse (written by hand, say) count as absent.
    pub fn from_keys(keys: &Keys) -> Posix {
        let get = |k: &str| keys.get(k).map(String::as_str);
        let number = |k: &str| get(k).and_then(|v| v.parse::<u32>().ok());
        let special = match get(TYPE) {
            Some("symlink") => get(TARGET).filter(|t| !t.is_empty()).map(|t| Special::Symlink(t.to_string())),
            Some("fifo") => Some(Special::Fifo),
            Some("socket") => Some(Special::Socket),
            Some("char") => Some(Special::CharDevice(number(RDEV).unwrap_or(0))),
            Some("block") => Some(Special::BlockDevice(number(RDEV).unwrap_or(0))),
            _ => None,
        };
        Posix {
            mode: get(MODE).and_then(|m| u16::from_str_radix(m, 8).ok()).filter(|m| *m <= 0o7777),
            uid: number(UID),
            gid: number(GID),
            special,
            mtime_ns: get(MTIME).and_then(parse_time),
        }
    }

    /// The keys that store these attributes.
    pub fn to_keys(&self) -> Keys {
        let mut keys = Keys::new();
        let mut put = |k: &str, v: String| {
            keys.insert(k.to_string(), v);
        };
        if let Some(m) = self.mode {
            put(MODE, format!("{m:04o}"));
        }
        if let Some(u) = self.uid {
            put(UID, u.to_string());
        }
        if let Some(g) = self.gid {
            put(GID, g.to_string());
        }
        match &self.special {
            None => {}
            Some(Special::Symlink(target)) => {
                put(TYPE, "symlink".into());
                put(TARGET, target.clone());
            }
            Some(Special::Fifo) => put(TYPE, "fifo".into()),
            Some(Special::Socket) => put(TYPE, "socket".into()),
            Some(Special::CharDevice(rdev)) => {
                put(TYPE, "char".into());
                put(RDEV, rdev.to_string());
            }
            Some(Special::BlockDevice(rdev)) => {
                put(TYPE, "block".into());
                put(RDEV, rdev.to_string());
            }
        }
        if let Some(t) = self.mtime_ns {
            put(MTIME, time_string(t));
        }
        keys
    }

    /// Without what equals the defaults (`defaults`: the attributes the item shows with
    /// nothing stored), so that setting a value back to the default stores nothing. A
    /// symlink has no mode of its own.
    pub fn without_defaults(mut self, defaults: &Attr) -> Posix {
        if self.mode == Some(defaults.perm) || matches!(self.special, Some(Special::Symlink(_))) {
            self.mode = None;
        }
        if self.uid == Some(defaults.uid) {
            self.uid = None;
        }
        if self.gid == Some(defaults.gid) {
            self.gid = None;
        }
        if self.mtime_ns == Some(nanos(defaults.mtime)) {
            self.mtime_ns = None;
        }
        self
    }

    /// Shows these attributes over the defaults in `attr`.
    pub fn apply(&self, attr: &mut Attr) {
        if let Some(m) = self.mode {
            attr.perm = m;
        }
        if let Some(u) = self.uid {
            attr.uid = u;
        }
        if let Some(g) = self.gid {
            attr.gid = g;
        }
        if let Some(t) = self.mtime_ns {
            attr.mtime = from_nanos(t);
        }
        if let Some(special) = &self.special {
            attr.special = Some(special.kind());
            match special {
                Special::Symlink(target) => {
                    attr.perm = 0o777;
                    attr.size = target.len() as u64;
                    attr.blocks = attr.size.div_ceil(512);
                }
                Special::CharDevice(rdev) | Special::BlockDevice(rdev) => attr.rdev = *rdev,
                Special::Fifo | Special::Socket => {}
            }
        }
    }

    /// A symlink's target.
    pub fn target(&self) -> Option<&str> {
        match &self.special {
            Some(Special::Symlink(t)) => Some(t),
            _ => None,
        }
    }
}

/// Attributes waiting to be stored on an item (journaled with its entry): the keys it should
/// have, and what Box held when they were last compared (the base of the next call).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAttrs {
    pub want: Keys,
    pub base: Stored,
}

/// The one metadata call that changes an item's instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// The item has no instance: create one with these keys.
    Create(Map<String, Value>),
    /// Change the instance's keys.
    Update(Vec<PatchOp>),
    /// Nothing is left in the instance: delete it.
    Delete,
}

/// The call that makes Box hold `want` where it holds `have`; `None` when it holds it already.
pub fn plan(have: &Stored, want: &Keys) -> Option<Call> {
    if *want == have.keys {
        return None;
    }
    if !have.instance {
        let map = want.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        return Some(Call::Create(map));
    }
    if want.is_empty() && !have.foreign {
        return Some(Call::Delete);
    }
    let mut ops: Vec<PatchOp> = want
        .iter()
        .filter(|(k, v)| have.keys.get(*k) != Some(*v))
        .map(|(k, v)| PatchOp::set(k, Value::String(v.clone())))
        .collect();
    ops.extend(have.keys.keys().filter(|k| !want.contains_key(*k)).map(|k| PatchOp::remove(k)));
    Some(Call::Update(ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(pairs: &[(&str, &str)]) -> Keys {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// What a file shows with nothing stored (`-o uid=1000,gid=100`, umask 022).
    fn defaults() -> Attr {
        let t = std::time::SystemTime::UNIX_EPOCH;
        Attr {
            ino: 2,
            kind: super::super::inode::NodeKind::File,
            size: 10,
            blocks: 1,
            mtime: t,
            ctime: t,
            crtime: t,
            perm: 0o644,
            nlink: 1,
            uid: 1000,
            gid: 100,
            blksize: 4096,
            special: None,
            rdev: 0,
        }
    }

    #[test]
    fn attributes_round_trip_through_their_keys() {
        let all = [
            Posix { mode: Some(0o4755), uid: Some(65534), gid: Some(0), ..Posix::default() },
            Posix { special: Some(Special::Symlink("../a b/ü".into())), uid: Some(7), ..Posix::default() },
            Posix { special: Some(Special::Fifo), mode: Some(0o600), ..Posix::default() },
            Posix { special: Some(Special::Socket), ..Posix::default() },
            Posix { special: Some(Special::CharDevice(0x0103)), ..Posix::default() },
            Posix { special: Some(Special::BlockDevice(0x0801)), ..Posix::default() },
            Posix { mtime_ns: Some(1_600_000_000_123_456_789), ..Posix::default() },
            Posix { mtime_ns: Some(-1_500_000_000), ..Posix::default() },
            Posix::default(),
        ];
        for p in all {
            assert_eq!(Posix::from_keys(&p.to_keys()), p);
        }
        assert_eq!(Posix { mode: Some(0o750), ..Posix::default() }.to_keys(), keys(&[(MODE, "0750")]));
        assert!(Posix::default().to_keys().is_empty(), "defaults store nothing");
    }

    #[test]
    fn values_that_do_not_parse_count_as_absent() {
        let odd = keys(&[(MODE, "rwx"), (UID, "-1"), (TYPE, "symlink"), (MTIME, "yesterday"), (TYPE, "door")]);
        assert_eq!(Posix::from_keys(&odd), Posix::default());
        assert_eq!(Posix::from_keys(&keys(&[(MODE, "17777")])).mode, None, "more than permission bits");
        assert_eq!(Posix::from_keys(&keys(&[(TYPE, "symlink")])).special, None, "a link without a target");
    }

    #[test]
    fn only_boxfs_keys_are_ours_and_others_are_noticed() {
        let props = json!({"$id": "i", "$version": 2, "boxfs_mode": "0700", "boxfs_uid": 5, "project": "x"});
        let stored = Stored::from_properties(props.as_object());
        assert_eq!(stored, Stored { instance: true, keys: keys(&[(MODE, "0700"), (UID, "5")]), foreign: true });
        let ours = json!({"$id": "i", "$template": "properties", "boxfs_mode": "0700"});
        assert!(!Stored::from_properties(ours.as_object()).foreign, "Box's $ fields are not another app's keys");
        assert_eq!(Stored::from_properties(None), Stored::default());
    }

    #[test]
    fn defaults_are_not_stored() {
        let d = defaults();
        let p = Posix { mode: Some(0o644), uid: Some(1000), gid: Some(100), ..Posix::default() };
        assert_eq!(p.without_defaults(&d), Posix::default());
        let p = Posix { mode: Some(0o755), uid: Some(0), gid: Some(100), ..Posix::default() };
        assert_eq!(p.without_defaults(&d), Posix { mode: Some(0o755), uid: Some(0), ..Posix::default() });
        let link = Posix { mode: Some(0o777), special: Some(Special::Symlink("t".into())), ..Posix::default() };
        assert_eq!(link.without_defaults(&d).mode, None, "a symlink has no mode of its own");
    }

    #[test]
    fn stored_attributes_show_over_the_defaults() {
        let mut a = defaults();
        Posix { mode: Some(0o700), uid: Some(3), ..Posix::default() }.apply(&mut a);
        assert_eq!((a.perm, a.uid, a.gid, a.special), (0o700, 3, 100, None));
        let mut a = defaults();
        Posix { special: Some(Special::Symlink("../x".into())), ..Posix::default() }.apply(&mut a);
        assert_eq!((a.perm, a.size, a.special), (0o777, 4, Some(SpecialType::Symlink)));
        let mut a = defaults();
        Posix { special: Some(Special::CharDevice(259)), ..Posix::default() }.apply(&mut a);
        assert_eq!((a.special, a.rdev), (Some(SpecialType::CharDevice), 259));
    }

    #[test]
    fn one_call_takes_box_from_what_it_has_to_what_is_wanted() {
        let none = Stored::default();
        let ours = Stored { instance: true, keys: keys(&[(MODE, "0700"), (UID, "5")]), foreign: false };
        let shared = Stored { foreign: true, ..ours.clone() };
        assert_eq!(plan(&none, &Keys::new()), None, "nothing stored, nothing wanted");
        assert_eq!(plan(&ours, &ours.keys), None, "unchanged");
        let Some(Call::Create(map)) = plan(&none, &keys(&[(MODE, "0600")])) else { panic!("create") };
        assert_eq!(Value::Object(map), json!({"boxfs_mode": "0600"}));
        assert_eq!(plan(&ours, &Keys::new()), Some(Call::Delete), "back to the defaults: no instance left");
        assert_eq!(
            plan(&shared, &Keys::new()),
            Some(Call::Update(vec![PatchOp::remove(MODE), PatchOp::remove(UID)])),
            "another app's keys stay"
        );
        assert_eq!(
            plan(&ours, &keys(&[(MODE, "0750"), (GID, "9")])),
            Some(Call::Update(vec![
                PatchOp::set(GID, json!("9")),
                PatchOp::set(MODE, json!("0750")),
                PatchOp::remove(UID)
            ]))
        );
        let empty_instance = Stored { instance: true, ..Stored::default() };
        assert!(matches!(plan(&empty_instance, &keys(&[(MODE, "0600")])), Some(Call::Update(_))));
    }
}
