//! The durable write-back journal: each pending upload is a staged data file
//! (`journal/<key>.data`) plus a small record (`journal/<key>.json`: target folder, name, the
//! Box file and etag it was based on, mtime, state), written atomically. A record is created
//! when a file is first staged, so that after `kill -9`, a crash or a reboot the next mount
//! finds every pending change.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    /// Box id of the folder the file goes to.
    pub parent_id: String,
    pub name: String,
    /// The Box file this content replaces (a new version), if any.
    pub base_id: Option<String>,
    /// The etag the local copy was based on (`If-Match`).
    pub base_etag: Option<String>,
    /// Content mtime, nanoseconds since the epoch (travels as `content_modified_at`).
    pub mtime_ns: i128,
    /// Why the last attempt failed for good (kept data, listed by `boxfs status`).
    #[serde(default)]
    pub failed: Option<String>,
    /// The upload session the content is going through, so that a restart resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// Opens (creating, mode 0700) the journal directory.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        Ok(Journal { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.data"))
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// A new, empty staged data file (0600) for `key`.
    pub fn create_data(&self, key: &str) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.data_path(key))
    }

    /// Writes a record atomically (temp + fsync + rename).
    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{}.json.tmp", record.key));
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(record).expect("record serializes"))?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, self.record_path(&record.key))?;
        std::fs::File::open(&self.dir)?.sync_all()
    }

    /// Forgets a committed (or abandoned) entry: record first, then data.
    pub fn remove(&self, key: &str) {
        let _ = std::fs::remove_file(self.record_path(key));
        let _ = std::fs::remove_file(self.data_path(key));
    }

    /// Every record with its data file present, oldest first.
    pub fn records(&self) -> std::io::Result<Vec<Record>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json")
                || path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let Ok(text) = std::fs::read(&path) else { continue };
            match serde_json::from_slice::<Record>(&text) {
                Ok(r) if self.data_path(&r.key).exists() => out.push((std::fs::metadata(&path)?.modified()?, r)),
                Ok(r) => {
                    tracing::warn!(key = %r.key, "journal record without data; dropping it");
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "unreadable journal record kept aside"),
            }
        }
        out.sort_by_key(|(t, _)| *t);
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("journal")).unwrap();
        let r = Record {
            key: "k1".into(),
            parent_id: "0".into(),
            name: "a.txt".into(),
            base_id: None,
            base_etag: None,
            mtime_ns: 5,
            failed: None,
            session_id: Some("S1".into()),
        };
        j.create_data("k1").unwrap().write_all(b"data").unwrap();
        j.save(&r).unwrap();
        j.save(&Record { key: "orphan".into(), ..r.clone() }).unwrap();
        assert_eq!(j.records().unwrap(), vec![r]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(j.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(j.data_path("k1")).unwrap().permissions().mode() & 0o777, 0o600);
        j.remove("k1");
        assert!(j.records().unwrap().is_empty());
    }
}
