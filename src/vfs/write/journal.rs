//! The durable write-back journal: each pending upload is a staged data file
//! (`journal/<key>.data`) plus a small record (`journal/<key>.json`: target folder, name, the
//! Box file and etag it was based on, mtime, POSIX attributes to store, state), written
//! atomically. An entry that changes only the attributes of a file or folder has a record and
//! no data file. A record is created
//! when a file is first staged, so that after `kill -9` the next mount finds every pending
//! change (the page cache survives a dead process).
//!
//! Durability across a system crash follows local-filesystem rules without their silent
//! damage: saving a record costs no fsync; a file's data and record are flushed to disk
//! together when its upload starts and when the mount stops with uploads left.
//! Each record names the boot it was written in, so a record that was never flushed and
//! comes from an earlier boot (a power loss or kernel crash since) is known to maybe hold
//! torn data: recovery holds it back for the user instead of uploading it over a good version.

use crate::vfs::meta::posix::PendingAttrs;
use boxfs_io::direct_io::DirectFile;
use serde::{Deserialize, Serialize};
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
    /// The data file was flushed to disk with the content this record describes.
    #[serde(default)]
    pub synced: bool,
    /// The boot (`/proc/sys/kernel/random/boot_id`) the record was last saved in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// Held back after a system crash (data maybe torn): never uploaded, left to the user.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// What the entry changes.
    #[serde(default, skip_serializing_if = "Entry::has_data")]
    pub entry: Entry,
    /// POSIX attributes to store on the item in Box metadata (`None`: none changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<PendingAttrs>,
}

/// What a journal entry changes.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// A file's content (from its data file), and maybe its attributes.
    #[default]
    Content,
    /// Only the attributes of a file in Box: no data file.
    FileAttrs,
    /// Only the attributes of a folder in Box: no data file.
    FolderAttrs,
}

impl Entry {
    /// The entry has a data file.
    pub fn has_data(&self) -> bool {
        *self == Entry::Content
    }
}

impl Record {
    /// A record for content not yet flushed to disk.
    pub fn new(key: String, parent_id: String, name: String, mtime_ns: i128) -> Record {
        Record {
            key,
            parent_id,
            name,
            base_id: None,
            base_etag: None,
            mtime_ns,
            failed: None,
            session_id: None,
            synced: false,
            boot_id: None,
            held: false,
            entry: Entry::Content,
            attrs: None,
        }
    }

    /// The same content as a new file `NAME (conflicted copy DATE TIME).EXT` beside the one it
    /// was based on (after a 412: Box has a newer version).
    pub fn conflicted_copy(&self, at: chrono::DateTime<chrono::Utc>) -> Record {
        let mut copy = Record { name: conflicted_name(&self.name, at), ..self.clone() };
        copy.as_new_file();
        copy
    }

    /// Points the content at a new file (a conflicted copy, or the file was deleted in Box
    /// meanwhile): no base version, no session, and no metadata instance on it yet.
    pub fn as_new_file(&mut self) {
        (self.base_id, self.base_etag, self.session_id) = (None, None, None);
        if let Some(attrs) = &mut self.attrs {
            attrs.base = Default::default();
        }
    }
}

/// `report.pdf` → `report (conflicted copy 2026-11-22 101500).pdf`.
fn conflicted_name(name: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let stamp = at.format("%Y-%m-%d %H%M%S");
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{} (conflicted copy {stamp}){}", &name[..i], &name[i..]),
        _ => format!("{name} (conflicted copy {stamp})"),
    }
}

#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
    boot_id: Option<String>,
}

impl Journal {
    /// Where the journal of a mount's cache dir lives.
    pub fn dir_in(cache_dir: &Path) -> PathBuf {
        cache_dir.join("journal")
    }

    /// Opens (creating, mode 0700) the journal directory.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string());
        Ok(Journal { dir: dir.to_path_buf(), boot_id })
    }

    /// A record that was never flushed to disk and comes from an earlier boot: the system
    /// went down since, so its data may be torn.
    pub fn maybe_torn(&self, record: &Record) -> bool {
        !record.synced && record.boot_id.is_some() && self.boot_id.is_some() && record.boot_id != self.boot_id
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
    pub fn create_data(&self, key: &str) -> std::io::Result<DirectFile> {
        let path = self.data_path(key);
        let file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        Ok(DirectFile::new(file, &path, true))
    }

    /// The existing data file of `key`, to read and write.
    pub fn open_data(&self, key: &str) -> std::io::Result<DirectFile> {
        let path = self.data_path(key);
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
        Ok(DirectFile::new(file, &path, true))
    }

    /// Writes a record atomically (temp + rename), stamped with this boot; no fsync.
    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        self.write_record(record, false)
    }

    /// Writes `record` (which says `synced`) durably, once its data file has been flushed
    /// (`sync_data`): after this both survive a power loss.
    pub fn save_durable(&self, record: &Record) -> std::io::Result<()> {
        self.write_record(record, true)
    }

    fn write_record(&self, record: &Record, durable: bool) -> std::io::Result<()> {
        let record = Record { boot_id: self.boot_id.clone(), ..record.clone() };
        let json = serde_json::to_vec_pretty(&record).expect("record serializes");
        boxfs_io::atomic_file::replace(&self.record_path(&record.key), &json, durable)
    }

    /// Forgets a committed (or abandoned) entry: record first, then data.
    pub fn remove(&self, key: &str) {
        let _ = std::fs::remove_file(self.record_path(key));
        let _ = std::fs::remove_file(self.data_path(key));
    }

    /// Every record with its data file present (or needing none), oldest first.
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
                Ok(r) if !r.entry.has_data() || self.data_path(&r.key).exists() => {
                    out.push((std::fs::metadata(&path)?.modified()?, r))
                }
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
        let r = Record { session_id: Some("S1".into()), ..Record::new("k1".into(), "0".into(), "a.txt".into(), 5) };
        j.create_data("k1").unwrap().write_all_at(b"data", 0).unwrap();
        j.save(&r).unwrap();
        j.save(&Record { key: "orphan".into(), ..r.clone() }).unwrap();
        let stamped = Record { boot_id: j.boot_id.clone(), ..r.clone() };
        assert_eq!(j.records().unwrap(), vec![stamped]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(j.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(j.data_path("k1")).unwrap().permissions().mode() & 0o777, 0o600);
        j.remove("k1");
        assert!(j.records().unwrap().is_empty());
    }

    #[test]
    fn an_entry_of_attributes_alone_needs_no_data_file() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let attrs =
            PendingAttrs { want: [("boxfs_mode".to_string(), "0700".to_string())].into(), base: Default::default() };
        let r = Record {
            entry: Entry::FolderAttrs,
            attrs: Some(attrs),
            ..Record::new("k".into(), "0".into(), "d".into(), 0)
        };
        j.save(&r).unwrap();
        let read = j.records().unwrap();
        assert_eq!((read.len(), read[0].entry, read[0].attrs.clone()), (1, Entry::FolderAttrs, r.attrs.clone()));
        let content = Record { key: "c".into(), ..Record::new("c".into(), "0".into(), "f".into(), 0) };
        j.save(&content).unwrap();
        assert_eq!(j.records().unwrap().len(), 1, "a content record without its data is dropped");
    }

    #[test]
    fn conflicted_copy_names() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:15:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(conflicted_name("report.pdf", at), "report (conflicted copy 2026-11-22 101500).pdf");
        assert_eq!(conflicted_name("Makefile", at), "Makefile (conflicted copy 2026-11-22 101500)");
        assert_eq!(conflicted_name(".bashrc", at), ".bashrc (conflicted copy 2026-11-22 101500)");
        let stored = crate::vfs::meta::stored::Stored { instance: true, ..Default::default() };
        let attrs = PendingAttrs { want: [("boxfs_mode".into(), "0755".into())].into(), base: stored };
        let r = Record {
            base_id: Some("7".into()),
            attrs: Some(attrs.clone()),
            ..Record::new("k".into(), "0".into(), "a.txt".into(), 0)
        };
        let copy = r.conflicted_copy(at);
        assert_eq!(
            (copy.name.as_str(), copy.base_id, copy.key),
            ("a (conflicted copy 2026-11-22 101500).txt", None, r.key)
        );
        let fresh = PendingAttrs { base: Default::default(), ..attrs };
        assert_eq!(copy.attrs, Some(fresh), "the copy is a new file: no metadata on it yet");
    }

    #[test]
    fn only_unflushed_records_of_an_earlier_boot_may_be_torn() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal { boot_id: Some("boot-2".into()), ..Journal::open(dir.path()).unwrap() };
        let r = Record::new("k".into(), "0".into(), "a".into(), 0);
        let at = |boot: Option<&str>, synced| Record { boot_id: boot.map(str::to_string), synced, ..r.clone() };
        assert!(j.maybe_torn(&at(Some("boot-1"), false)));
        assert!(!j.maybe_torn(&at(Some("boot-1"), true)), "flushed before the crash");
        assert!(!j.maybe_torn(&at(Some("boot-2"), false)), "same boot: the page cache survived");
        assert!(!j.maybe_torn(&at(None, false)), "written by a version that did not record boots");
    }

    #[test]
    fn a_durable_record_stays_synced_when_saved_again() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let data = j.create_data("k").unwrap();
        data.write_all_at(b"content", 0).unwrap();
        let r = Record { synced: true, ..Record::new("k".into(), "0".into(), "a".into(), 0) };
        data.cached().sync_data().unwrap();
        j.save_durable(&r).unwrap();
        let read = j.records().unwrap().remove(0);
        assert!(read.synced && read.boot_id.is_some());
        j.save(&Record { name: "b".into(), ..read }).unwrap();
        assert!(j.records().unwrap()[0].synced);
    }
}
