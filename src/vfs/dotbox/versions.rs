//! The versions of one file as `.box/versions/PATH/` shows them: the current version (from the
//! file itself) and the older ones Box lists (deleted versions left out), each named by
//! [`version_name`] after the time it was uploaded.

use super::names::version_name;
use boxfs_api::model::{File, Version};
use std::time::{Instant, SystemTime};

/// One version as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    pub name: String,
    pub id: String,
    pub size: u64,
    /// When it was uploaded.
    pub mtime: SystemTime,
}

#[derive(Debug)]
pub struct VersionsView {
    pub fetched: Instant,
    /// Oldest first.
    pub entries: Vec<VersionEntry>,
}

impl VersionsView {
    /// The versions of `file` (as Box answers now) with its older versions `older`. The
    /// current version's time is the file's `modified_at` (its last upload, unless it was
    /// renamed or moved since); an older version's is its `created_at`.
    pub fn new(file: &File, older: &[Version], fetched: Instant) -> VersionsView {
        let name = &file.common.name;
        let current = file.file_version.as_ref().map(|v| VersionEntry {
            name: String::new(),
            id: v.id.clone(),
            size: file.common.size,
            mtime: time(file.common.modified_at.as_deref()),
        });
        let previous = older.iter().filter(|v| v.trashed_at.is_none()).map(|v| VersionEntry {
            name: String::new(),
            id: v.id.clone(),
            size: v.size,
            mtime: time(v.created_at.as_deref().or(v.modified_at.as_deref())),
        });
        let mut entries: Vec<VersionEntry> = previous.rev().chain(current).collect();
        for e in &mut entries {
            e.name = version_name(e.mtime, &e.id, name);
        }
        VersionsView { fetched, entries }
    }

    pub fn find(&self, name: &str) -> Option<&VersionEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

fn time(rfc3339: Option<&str>) -> SystemTime {
    rfc3339.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map_or(SystemTime::UNIX_EPOCH, SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxfs_api::model::{FileVersion, ItemCommon};

    #[test]
    fn current_and_older_versions_oldest_first_without_deleted_ones() {
        let common = ItemCommon {
            id: "5".into(),
            name: "r.pdf".into(),
            size: 30,
            modified_at: Some("2026-11-03T09:00:00Z".into()),
            ..ItemCommon::default()
        };
        let file =
            File { common, sha1: None, file_version: Some(FileVersion { id: "103".into(), sha1: None }), lock: None };
        let v = |id: &str, day: u32, trashed: bool| Version {
            id: id.into(),
            size: 10,
            created_at: Some(format!("2026-11-0{day}T10:15:00Z")),
            trashed_at: trashed.then(|| "2026-11-04T00:00:00Z".into()),
            ..Version::default()
        };
        let view =
            VersionsView::new(&file, &[v("102", 2, false), v("101", 1, false), v("100", 1, true)], Instant::now());
        let names: Vec<&str> = view.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["2026-11-01T101500_101.pdf", "2026-11-02T101500_102.pdf", "2026-11-03T090000_103.pdf"]);
        assert_eq!(view.find("2026-11-03T090000_103.pdf").map(|e| e.size), Some(30));
    }
}
