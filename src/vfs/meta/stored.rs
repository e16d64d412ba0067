//! What the mount knows of the POSIX attributes stored on a Box item: the `boxfs_` keys of
//! its `global.properties` metadata instance, whether it has an instance at all, and whether
//! other apps keep keys in it too. Plain data, parsed from Box's JSON; `posix.rs` gives the keys
//! their meaning.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What every boxfs key starts with.
pub const PREFIX: &str = "boxfs_";
/// Permission bits, octal (`"0750"`).
pub const MODE: &str = "boxfs_mode";
pub const UID: &str = "boxfs_uid";
pub const GID: &str = "boxfs_gid";
/// `symlink`, `fifo`, `socket`, `char` or `block`; absent for regular files and folders.
pub const TYPE: &str = "boxfs_type";
/// A symlink's target (also the file's content).
pub const TARGET: &str = "boxfs_target";
/// A device node's device number.
pub const RDEV: &str = "boxfs_rdev";
/// A directory's mtime (RFC 3339, nanoseconds): Box has no settable folder time.
pub const MTIME: &str = "boxfs_mtime";

/// boxfs keys and their values.
pub type Keys = BTreeMap<String, String>;

/// What Box holds in an item's `global.properties` instance, as far as the mount knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The item has an instance.
    #[serde(default)]
    pub instance: bool,
    /// Its boxfs keys.
    #[serde(default)]
    pub keys: Keys,
    /// It also has keys of other apps.
    #[serde(default)]
    pub foreign: bool,
}

impl Stored {
    /// From an instance as Box returns it (`None`: the item has no instance); Box's own
    /// `$` fields are not keys.
    pub fn from_properties(properties: Option<&Map<String, Value>>) -> Stored {
        let Some(props) = properties else { return Stored::default() };
        let mut stored = Stored { instance: true, ..Stored::default() };
        for (k, v) in props.iter().filter(|(k, _)| !k.starts_with('$')) {
            match (k.starts_with(PREFIX), v) {
                (true, Value::String(s)) => {
                    stored.keys.insert(k.clone(), s.clone());
                }
                (true, other) => {
                    stored.keys.insert(k.clone(), other.to_string());
                }
                (false, _) => stored.foreign = true,
            }
        }
        stored
    }
}
