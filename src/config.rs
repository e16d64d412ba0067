//! Configuration: where boxfs keeps its files (XDG config dir, account files), the settings of
//! a mount ([`Settings`]), and the config file `$XDG_CONFIG_HOME/boxfs/config.toml`, which sets
//! them for every account (top-level keys) and per account (`[accounts.NAME]` tables). The
//! same keys are accepted as `-o key=value` mount options. Unknown keys and bad values are
//! errors that name the key and where it came from.
//!
//! `Settings::default()` is the one place every built-in default lives. A mount's settings are
//! that default with each source applied over it, lowest first: the config file's top-level
//! keys, its account table, `-o` options, then the command-line flags (the last one applied
//! wins).
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
use std::net::SocketAddr;
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
    ("upload_parallelism", "a number of uploads (whole number, 1 or more)"),
    ("sync_on_close", "true or false"),
    ("lock_on_open", "true or false"),
    ("fsync", "\"local\" or \"box\""),
    ("log_file", "an absolute path (or one starting with ~/)"),
    ("as_user", "a Box user id (string) to act for"),
    ("metadata_cache_size", "a size in bytes (whole number)"),
    ("metrics", "a port (served on 127.0.0.1) or an IP:PORT to serve Prometheus metrics on"),
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

/// The settings of a mount, each under its config key. `Default` gives the built-in defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `root`: the Box folder mounted, a folder id or a path such as `/Documents/Reports`
    /// (`None`: the whole account, folder `0`).
    pub root: Option<String>,
    /// `read_only`: refuse every change (default false).
    pub read_only: bool,
    /// `allow_other`: other users may use the mount (default false).
    pub allow_other: bool,
    /// `uid`: the owner of items without a stored owner (default: the mounting user's).
    pub uid: u32,
    /// `gid`: the group of items without a stored group (default: the mounting user's).
    pub gid: u32,
    /// `umask`: mode bits cleared on items without a stored mode (default `022`).
    pub umask: u16,
    /// `cache_dir`: where the block cache and the write-back journal live (`None`: the
    /// account's own dir under [`cache_root`], chosen when mounting).
    pub cache_dir: Option<PathBuf>,
    /// `cache_size`: disk budget of the block cache, in bytes (default 2 GiB).
    pub cache_size: u64,
    /// `metadata_ttl`: seconds listings and attributes are trusted before Box is asked again;
    /// also the kernel's cache TTL (default 60).
    pub metadata_ttl: u64,
    /// `metadata_cache_size`: memory budget of cached listings and the attributes of their
    /// items, in bytes (default 256 MiB, about a million items); least recently used listings
    /// beyond it are dropped and fetched again when needed.
    pub metadata_cache_size: u64,
    /// `events`: follow Box's event stream so that changes made elsewhere show within about a
    /// second (default on).
    pub events: bool,
    /// `writeback_delay_ms`: milliseconds between the last close of a file and its upload
    /// (default 1000).
    pub writeback_delay_ms: u64,
    /// `upload_parallelism`: uploads to Box running at once, stores of a mode, owner or link
    /// target included (default 4; at least 1).
    pub upload_parallelism: usize,
    /// `sync_on_close`: `close` does what `fsync` does and returns its error (default false).
    pub sync_on_close: bool,
    /// `lock_on_open`: a file in Box opened for writing is locked in Box until its upload
    /// lands (default false).
    pub lock_on_open: bool,
    /// `fsync`: what `fsync` waits for (default: the local disk).
    pub fsync: FsyncMode,
    /// `log_file`: where the daemon's logs go (`None`: stderr in the foreground, else
    /// `mount.log` under [`cache_root`]).
    pub log_file: Option<PathBuf>,
    /// `as_user`: every request acts for this Box user (`As-User`; default: nobody else).
    pub as_user: Option<String>,
    /// `metrics`: where to serve Prometheus metrics (default: nowhere; see [`metrics_addr`]).
    pub metrics: Option<SocketAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            root: None,
            read_only: false,
            allow_other: false,
            // SAFETY: geteuid/getegid(2) cannot fail and touch no memory.
            uid: unsafe { libc::geteuid() },
            gid: unsafe { libc::getegid() },
            umask: 0o022,
            cache_dir: None,
            cache_size: 2 * 1024 * 1024 * 1024,
            metadata_ttl: 60,
            metadata_cache_size: 256 * 1024 * 1024,
            events: true,
            writeback_delay_ms: 1000,
            upload_parallelism: 4,
            sync_on_close: false,
            lock_on_open: false,
            fsync: FsyncMode::Local,
            log_file: None,
            as_user: None,
            metrics: None,
        }
    }
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

    /// A port as a TOML integer, or the text [`metrics_addr`] reads.
    fn metrics_addr(&self) -> Option<SocketAddr> {
        match self {
            Raw::Toml(toml::Value::Integer(n)) => u16::try_from(*n).ok().map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
            _ => metrics_addr(self.text()?).ok(),
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
            "read_only" => raw.boolean().map(|v| self.read_only = v),
            "allow_other" => raw.boolean().map(|v| self.allow_other = v),
            "uid" => raw.integer().and_then(|v| u32::try_from(v).ok()).map(|v| self.uid = v),
            "gid" => raw.integer().and_then(|v| u32::try_from(v).ok()).map(|v| self.gid = v),
            "umask" => raw.text().and_then(parse_umask).map(|v| self.umask = v),
            "cache_dir" => raw.path().map(|v| self.cache_dir = Some(v)),
            "cache_size" => raw.integer().map(|v| self.cache_size = v),
            "metadata_ttl" => raw.integer().map(|v| self.metadata_ttl = v),
            "metadata_cache_size" => raw.integer().map(|v| self.metadata_cache_size = v),
            "events" => raw.switch().map(|v| self.events = v),
            "writeback_delay_ms" => raw.integer().map(|v| self.writeback_delay_ms = v),
            "upload_parallelism" => raw.integer().and_then(|v| usize::try_from(v).ok()).filter(|v| *v >= 1).map(|v| {
                self.upload_parallelism = v;
            }),
            "sync_on_close" => raw.boolean().map(|v| self.sync_on_close = v),
            "lock_on_open" => raw.boolean().map(|v| self.lock_on_open = v),
            "fsync" => raw.fsync().map(|v| self.fsync = v),
            "log_file" => raw.path().map(|v| self.log_file = Some(v)),
            "as_user" => raw.text().filter(|v| !v.trim().is_empty()).map(|v| self.as_user = Some(v.trim().to_string())),
            "metrics" => raw.metrics_addr().map(|v| self.metrics = Some(v)),
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
}

/// The address `--metrics`/`metrics=` means: a bare port is `127.0.0.1:PORT` (loopback);
/// otherwise an `IP:PORT` (`[::1]:PORT` for IPv6), served as written.
pub fn metrics_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    match text.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => text.parse().map_err(|_| format!("'{text}' is neither a port nor an IP:PORT")),
    }
}

fn parse_umask(text: &str) -> Option<u16> {
    u16::from_str_radix(text.trim(), 8).ok().filter(|m| *m <= 0o777)
}

/// The config file: its top-level keys and its `[accounts.NAME]` tables, every key and value
/// checked when it is read.
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// Where it was read from (named in errors).
    origin: String,
    all: toml::Table,
    accounts: toml::Table,
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

    /// Parses `text` (read from `file`); a bad key or value in any table is an error.
    pub fn parse(text: &str, file: &Path) -> Result<ConfigFile, ConfigError> {
        let mut all: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax { file: file.into(), message: e.to_string() })?;
        let origin = file.display().to_string();
        let accounts = match all.remove("accounts") {
            None => toml::Table::new(),
            Some(toml::Value::Table(accounts)) => accounts,
            Some(_) => return Err(ConfigError::NotATable { origin, key: "accounts".into() }),
        };
        let config = ConfigFile { origin, all, accounts };
        config.apply_table(&config.all, "", &mut Settings::default())?;
        for (name, section) in &config.accounts {
            let not_table =
                || ConfigError::NotATable { origin: config.origin.clone(), key: format!("accounts.{name}") };
            let section = section.as_table().ok_or_else(not_table)?;
            config.apply_table(section, &format!("accounts.{name}."), &mut Settings::default())?;
        }
        Ok(config)
    }

    /// Applies the settings of `account` over `settings`: the top-level keys, then its table.
    pub fn apply_for(&self, account: &str, settings: &mut Settings) -> Result<(), ConfigError> {
        self.apply_table(&self.all, "", settings)?;
        match self.accounts.get(account).and_then(toml::Value::as_table) {
            Some(section) => self.apply_table(section, &format!("accounts.{account}."), settings),
            None => Ok(()),
        }
    }

    /// Applies the keys of `table` over `settings`; errors name them with `prefix`.
    fn apply_table(&self, table: &toml::Table, prefix: &str, settings: &mut Settings) -> Result<(), ConfigError> {
        for (key, value) in table {
            settings.set_named(&self.origin, key, Raw::Toml(value)).map_err(|e| prefix_key(e, prefix))?;
        }
        Ok(())
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

    fn settings_for(config: &ConfigFile, account: &str) -> Settings {
        let mut settings = Settings::default();
        config.apply_for(account, &mut settings).unwrap();
        settings
    }

    #[test]
    fn accounts_override_top_level() {
        let c =
            parse("metadata_ttl = 30\nevents = \"off\"\n[accounts.work]\nmetadata_ttl = 5\numask = \"027\"\n").unwrap();
        let work = settings_for(&c, "work");
        assert_eq!((work.metadata_ttl, work.events, work.umask), (5, false, 0o027));
        let other = settings_for(&c, "default");
        assert_eq!((other.metadata_ttl, other.umask), (30, Settings::default().umask));
        assert_eq!(settings_for(&parse("fsync = \"box\"\n").unwrap(), "x").fsync, FsyncMode::Box);
    }

    #[test]
    fn keys_left_unset_keep_their_defaults() {
        let c = parse("cache_size = 1\n[accounts.work]\nread_only = true\n").unwrap();
        let want = Settings { cache_size: 1, read_only: true, ..Settings::default() };
        assert_eq!(settings_for(&c, "work"), want);
        assert_eq!(settings_for(&ConfigFile::default(), "work"), Settings::default());
    }

    #[test]
    fn errors_name_key_and_file() {
        let e = parse("[accounts.work]\ncache_sise = 1\n").unwrap_err().to_string();
        assert!(e.contains("/etc/x/config.toml") && e.contains("accounts.work.cache_sise"), "{e}");
        let e = parse("metadata_ttl = \"soon\"\n").unwrap_err().to_string();
        assert!(e.contains("/etc/x/config.toml") && e.contains("'metadata_ttl'") && e.contains("soon"), "{e}");
        let e = parse("accounts = 1\n").unwrap_err().to_string();
        assert!(e.contains("'accounts' must be a table"), "{e}");
        assert!(parse("[accounts]\nwork = 1\n").unwrap_err().to_string().contains("'accounts.work'"));
        assert!(parse("cache_dir = \"relative\"\n").is_err());
        assert!(parse("umask = \"999\"\n").is_err());
        assert!(parse("uid = -1\n").is_err());
        assert!(parse("upload_parallelism = 0\n").is_err());
    }

    #[test]
    fn text_values_from_mount_options() {
        let mut s = Settings::default();
        s.set("metadata_ttl", Raw::Text("30")).unwrap();
        s.set("cache_dir", Raw::Text("/x")).unwrap();
        s.set("allow_other", Raw::Text("")).unwrap();
        s.set("upload_parallelism", Raw::Text("8")).unwrap();
        assert_eq!(s.set("cache_dir", Raw::Text("x")), Err(Some(KEYS[6].1)));
        assert_eq!(s.set("nope", Raw::Text("x")), Err(None));
        assert_eq!(s.set("upload_parallelism", Raw::Text("0")), Err(Some(KEYS[11].1)));
        assert_eq!((s.metadata_ttl, s.allow_other, s.upload_parallelism), (30, true, 8));
    }

    #[test]
    fn metrics_addresses_a_bare_port_is_loopback() {
        let addr = |t: &str| metrics_addr(t).ok();
        assert_eq!(addr("9464"), Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(addr(" 127.0.0.1:0 "), Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(addr("[::1]:9464"), Some("[::1]:9464".parse().unwrap()));
        assert_eq!(addr("0.0.0.0:9464"), Some("0.0.0.0:9464".parse().unwrap()));
        assert_eq!((addr("localhost:9464"), addr("99999"), addr("")), (None, None, None));
        let mut s = Settings::default();
        s.set("metrics", Raw::Text("9100")).unwrap();
        assert_eq!(s.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        let file = parse("metrics = 9200\n[accounts.work]\nmetrics = \"127.0.0.2:9300\"\n").unwrap();
        let mut work = Settings::default();
        file.apply_for("work", &mut work).unwrap();
        assert_eq!(work.metrics, Some("127.0.0.2:9300".parse().unwrap()));
        let mut other = Settings::default();
        file.apply_for("other", &mut other).unwrap();
        assert_eq!(other.metrics, Some("127.0.0.1:9200".parse().unwrap()));
        assert!(parse("metrics = \"nowhere\"\n").unwrap_err().to_string().contains("'metrics'"));
    }
}
