//! Configuration: where boxfs keeps its files (XDG config dir, account files) and the config
//! file `$XDG_CONFIG_HOME/boxfs/config.toml`, which sets mount options for every account
//! (top-level keys) and per account (`[accounts.NAME]` tables). The same keys are accepted as
//! `-o key=value` mount options. Unknown keys and bad values are errors that name the key and
//! where it came from.
//!
//! ```toml
//! cache_size = 4294967296      # every account
//! metadata_ttl = 30
//!
//! [accounts.work]              # `boxfs mount --account work` (overrides the keys above)
//! root = "/Projects"
//! read_only = true
//! ```

use crate::vfs::FsyncMode;
use std::path::{Path, PathBuf};

/// Every key the config file (and `-o key=value`) accepts, with what its value must be.
pub const KEYS: &[(&str, &str)] = &[
    ("root", "a folder id or a path such as \"/Documents\""),
    ("read_only", "true or false"),
    ("allow_other", "true or false"),
    ("uid", "a user id (whole number)"),
    ("gid", "a group id (whole number)"),
    ("umask", "an octal string such as \"022\""),
    ("cache_dir", "an absolute path (or one starting with ~/)"),
    ("cache_size", "a size in bytes (whole number)"),
    ("metadata_ttl", "a number of seconds (whole number)"),
    ("events", "true/false or \"on\"/\"off\""),
    ("writeback_delay_ms", "a number of milliseconds (whole number)"),
    ("sync_on_close", "true or false"),
    ("fsync", "\"local\" or \"box\""),
    ("log_file", "an absolute path (or one starting with ~/)"),
    ("as_user", "a Box user id (string) to act for"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{}: {message}", file.display())]
    Syntax { file: PathBuf, message: String },
    #[error("{origin}: unknown key '{key}' (known keys: {})", known_keys())]
    UnknownKey { origin: String, key: String },
    #[error("{origin}: bad value for '{key}': expected {expected}, found {found}")]
    BadValue { origin: String, key: String, expected: &'static str, found: String },
    #[error("{origin}: '{key}' must be a table of accounts ([accounts.NAME])")]
    NotATable { origin: String, key: String },
}

fn known_keys() -> String {
    KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

/// Mount settings from one source; `None` = not set there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub root: Option<String>,
    pub read_only: Option<bool>,
    pub allow_other: Option<bool>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub umask: Option<u16>,
    pub cache_dir: Option<PathBuf>,
    pub cache_size: Option<u64>,
    pub metadata_ttl: Option<u64>,
    pub events: Option<bool>,
    pub writeback_delay_ms: Option<u64>,
    pub sync_on_close: Option<bool>,
    pub fsync: Option<FsyncMode>,
    pub log_file: Option<PathBuf>,
    /// Every request acts for this user (`As-User`).
    pub as_user: Option<String>,
}

/// A value as written: typed (TOML) or text (`-o key=value`).
#[derive(Clone, Copy)]
pub enum Raw<'a> {
    Toml(&'a toml::Value),
    Text(&'a str),
}

impl Raw<'_> {
    fn shown(&self) -> String {
        match self {
            Raw::Toml(v) => v.to_string(),
            Raw::Text(s) => format!("\"{s}\""),
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Raw::Toml(toml::Value::String(s)) => Some(s),
            Raw::Text(s) => Some(s),
            Raw::Toml(_) => None,
        }
    }

    fn integer(&self) -> Option<u64> {
        match self {
            Raw::Toml(toml::Value::Integer(n)) => u64::try_from(*n).ok(),
            Raw::Text(s) => s.trim().parse().ok(),
            Raw::Toml(_) => None,
        }
    }

    fn boolean(&self) -> Option<bool> {
        match self {
            Raw::Toml(toml::Value::Boolean(b)) => Some(*b),
            Raw::Text("" | "true" | "yes" | "on" | "1") => Some(true),
            Raw::Text("false" | "no" | "off" | "0") => Some(false),
            _ => None,
        }
    }

    fn switch(&self) -> Option<bool> {
        match self.text() {
            Some("on") => Some(true),
            Some("off") => Some(false),
            _ => self.boolean(),
        }
    }

    fn fsync(&self) -> Option<FsyncMode> {
        match self.text()? {
            "local" => Some(FsyncMode::Local),
            "box" => Some(FsyncMode::Box),
            _ => None,
        }
    }

    fn path(&self) -> Option<PathBuf> {
        let text = self.text()?;
        match text.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME").map(|h| Path::new(&h).join(rest)),
            None => Some(PathBuf::from(text)).filter(|p| p.is_absolute()),
        }
    }
}

impl Settings {
    /// Sets `key` from `raw`. `Err(None)` = unknown key; `Err(Some(expected))` = bad value.
    pub fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Option<&'static str>> {
        let expected = KEYS.iter().find(|(k, _)| *k == key).map(|(_, e)| *e).ok_or(None)?;
        let ok = match key {
            "root" => raw.text().map(|v| self.root = Some(v.to_string())),
            "read_only" => raw.boolean().map(|v| self.read_only = Some(v)),
            "allow_other" => raw.boolean().map(|v| self.allow_other = Some(v)),
            "uid" => raw.integer().and_then(|v| u32::try_from(v).ok()).map(|v| self.uid = Some(v)),
            "gid" => raw.integer().and_then(|v| u32::try_from(v).ok()).map(|v| self.gid = Some(v)),
            "umask" => raw.text().and_then(parse_umask).map(|v| self.umask = Some(v)),
            "cache_dir" => raw.path().map(|v| self.cache_dir = Some(v)),
            "cache_size" => raw.integer().map(|v| self.cache_size = Some(v)),
            "metadata_ttl" => raw.integer().map(|v| self.metadata_ttl = Some(v)),
            "events" => raw.switch().map(|v| self.events = Some(v)),
            "writeback_delay_ms" => raw.integer().map(|v| self.writeback_delay_ms = Some(v)),
            "sync_on_close" => raw.boolean().map(|v| self.sync_on_close = Some(v)),
            "fsync" => raw.fsync().map(|v| self.fsync = Some(v)),
            "log_file" => raw.path().map(|v| self.log_file = Some(v)),
            "as_user" => raw.text().filter(|v| !v.trim().is_empty()).map(|v| self.as_user = Some(v.trim().to_string())),
            _ => None,
        };
        ok.ok_or(Some(expected))
    }

    /// Like [`Settings::set`], with an error that names the key and `origin` (file or `-o`).
    pub fn set_named(&mut self, origin: &str, key: &str, raw: Raw<'_>) -> Result<(), ConfigError> {
        self.set(key, raw).map_err(|e| match e {
            None => ConfigError::UnknownKey { origin: origin.into(), key: key.into() },
            Some(expected) => {
                ConfigError::BadValue { origin: origin.into(), key: key.into(), expected, found: raw.shown() }
            }
        })
    }

    /// `self` with every value that `over` sets replaced by it.
    pub fn overlay(self, over: Settings) -> Settings {
        Settings {
            root: over.root.or(self.root),
            read_only: over.read_only.or(self.read_only),
            allow_other: over.allow_other.or(self.allow_other),
            uid: over.uid.or(self.uid),
            gid: over.gid.or(self.gid),
            umask: over.umask.or(self.umask),
            cache_dir: over.cache_dir.or(self.cache_dir),
            cache_size: over.cache_size.or(self.cache_size),
            metadata_ttl: over.metadata_ttl.or(self.metadata_ttl),
            events: over.events.or(self.events),
            writeback_delay_ms: over.writeback_delay_ms.or(self.writeback_delay_ms),
            sync_on_close: over.sync_on_close.or(self.sync_on_close),
            fsync: over.fsync.or(self.fsync),
            log_file: over.log_file.or(self.log_file),
            as_user: over.as_user.or(self.as_user),
        }
    }
}

fn parse_umask(text: &str) -> Option<u16> {
    u16::from_str_radix(text.trim(), 8).ok().filter(|m| *m <= 0o777)
}

/// The parsed config file: settings for every account, and per account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigFile {
    pub all: Settings,
    pub accounts: Vec<(String, Settings)>,
}

impl ConfigFile {
    /// Reads `file`; a missing file is an empty config.
    pub fn load(file: &Path) -> Result<ConfigFile, ConfigError> {
        match std::fs::read_to_string(file) {
            Ok(text) => ConfigFile::parse(&text, file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(source) => Err(ConfigError::Read { file: file.into(), source }),
        }
    }

    pub fn parse(text: &str, file: &Path) -> Result<ConfigFile, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax { file: file.into(), message: e.to_string() })?;
        let origin = file.display().to_string();
        let mut out = ConfigFile::default();
        for (key, value) in &table {
            if key != "accounts" {
                out.all.set_named(&origin, key, Raw::Toml(value))?;
                continue;
            }
            let not_table = || ConfigError::NotATable { origin: origin.clone(), key: key.clone() };
            for (name, section) in value.as_table().ok_or_else(not_table)? {
                let section = section.as_table().ok_or_else(|| ConfigError::NotATable {
                    origin: origin.clone(),
                    key: format!("accounts.{name}"),
                })?;
                let mut settings = Settings::default();
                for (k, v) in section {
                    settings
                        .set_named(&origin, k, Raw::Toml(v))
                        .map_err(|e| prefix_key(e, &format!("accounts.{name}.")))?;
                }
                out.accounts.push((name.clone(), settings));
            }
        }
        Ok(out)
    }

    /// The settings of `account`: its table over the top-level keys.
    pub fn for_account(&self, account: &str) -> Settings {
        let own = self.accounts.iter().find(|(n, _)| n == account).map(|(_, s)| s.clone()).unwrap_or_default();
        self.all.clone().overlay(own)
    }
}

fn prefix_key(e: ConfigError, prefix: &str) -> ConfigError {
    match e {
        ConfigError::UnknownKey { origin, key } => ConfigError::UnknownKey { origin, key: format!("{prefix}{key}") },
        ConfigError::BadValue { origin, key, expected, found } => {
            ConfigError::BadValue { origin, key: format!("{prefix}{key}"), expected, found }
        }
        other => other,
    }
}

/// `$VAR/boxfs` when `VAR` holds an absolute path, else `~/FALLBACK/boxfs` (XDG base dirs).
pub fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(fallback)))
        .unwrap_or_else(std::env::temp_dir)
        .join("boxfs")
}

/// `$XDG_CONFIG_HOME/boxfs` (or `~/.config/boxfs`).
pub fn config_dir() -> PathBuf {
    xdg_dir("XDG_CONFIG_HOME", ".config")
}

/// `$XDG_CACHE_HOME/boxfs` (or `~/.cache/boxfs`): cache dirs, the mount registry, the daemon's log.
pub fn cache_root() -> PathBuf {
    xdg_dir("XDG_CACHE_HOME", ".cache")
}

/// `config_dir()/config.toml`.
pub fn config_file() -> PathBuf {
    config_dir().join("config.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(text, Path::new("/etc/x/config.toml"))
    }

    #[test]
    fn accounts_override_top_level() {
        let c =
            parse("metadata_ttl = 30\nevents = \"off\"\n[accounts.work]\nmetadata_ttl = 5\numask = \"027\"\n").unwrap();
        let work = c.for_account("work");
        assert_eq!((work.metadata_ttl, work.events, work.umask), (Some(5), Some(false), Some(0o027)));
        assert_eq!(c.for_account("default").metadata_ttl, Some(30));
        assert_eq!(parse("fsync = \"box\"\n").unwrap().for_account("x").fsync, Some(FsyncMode::Box));
    }

    #[test]
    fn errors_name_key_and_file() {
        let e = parse("[accounts.work]\ncache_sise = 1\n").unwrap_err().to_string();
        assert!(e.contains("/etc/x/config.toml") && e.contains("accounts.work.cache_sise"), "{e}");
        let e = parse("metadata_ttl = \"soon\"\n").unwrap_err().to_string();
        assert!(e.contains("/etc/x/config.toml") && e.contains("'metadata_ttl'") && e.contains("soon"), "{e}");
        assert!(parse("cache_dir = \"relative\"\n").is_err());
        assert!(parse("umask = \"999\"\n").is_err());
        assert!(parse("uid = -1\n").is_err());
    }

    #[test]
    fn text_values_from_mount_options() {
        let mut s = Settings::default();
        s.set("metadata_ttl", Raw::Text("30")).unwrap();
        s.set("cache_dir", Raw::Text("/x")).unwrap();
        s.set("allow_other", Raw::Text("")).unwrap();
        assert_eq!(s.set("cache_dir", Raw::Text("x")), Err(Some(KEYS[6].1)));
        assert_eq!(s.set("nope", Raw::Text("x")), Err(None));
        assert_eq!((s.metadata_ttl, s.allow_other), (Some(30), Some(true)));
    }
}
