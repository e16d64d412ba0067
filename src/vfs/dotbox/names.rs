//! Names of `.box/` entries: a version as `YYYY-MM-DDTHHMMSS_<version id>.<ext>` (the time in
//! UTC, the extension of the file's name, none when it has none), and trashed items by their
//! name, or `NAME (id ID)` for every item of one folder of the trash whose name another has.

use std::collections::HashMap;
use std::time::SystemTime;

/// The name of a version of file `file_name` uploaded at `at`.
pub fn version_name(at: SystemTime, version_id: &str, file_name: &str) -> String {
    let time = chrono::DateTime::<chrono::Utc>::from(at).format("%Y-%m-%dT%H%M%S");
    match extension(file_name) {
        Some(ext) => format!("{time}_{version_id}.{ext}"),
        None => format!("{time}_{version_id}"),
    }
}

/// The time (as written) and version id a version's name carries.
pub fn parse_version_name(name: &str) -> Option<(&str, &str)> {
    let (time, rest) = name.split_once('_')?;
    let id = rest.split_once('.').map_or(rest, |(id, _)| id);
    let valid_time = chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H%M%S").is_ok();
    (valid_time && !id.is_empty()).then_some((time, id))
}

fn extension(name: &str) -> Option<&str> {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => Some(&name[i + 1..]),
        _ => None,
    }
}

/// The names shown for items `(name, id)` of one folder of the trash, in the same order: the
/// name itself, or `NAME (id ID)` where two or more items have that name.
pub fn trash_names<'a>(items: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (name, _) in items.clone() {
        *count.entry(name).or_default() += 1;
    }
    items.map(|(name, id)| if count[name] > 1 { format!("{name} (id {id})") } else { name.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn version_names_carry_time_id_and_extension() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_793_528_100); // 2026-11-01T10:15:00Z
        assert_eq!(version_name(at, "12345", "report.pdf"), "2026-11-01T101500_12345.pdf");
        assert_eq!(version_name(at, "7", "Makefile"), "2026-11-01T101500_7");
        assert_eq!(version_name(at, "7", ".bashrc"), "2026-11-01T101500_7");
        assert_eq!(parse_version_name("2026-11-01T101500_12345.pdf"), Some(("2026-11-01T101500", "12345")));
        assert_eq!(parse_version_name("2026-11-01T101500_7"), Some(("2026-11-01T101500", "7")));
        assert_eq!(parse_version_name("notes.txt"), None);
    }

    #[test]
    fn clashing_trash_names_all_get_their_id() {
        let items = [("a.txt", "1"), ("b", "2"), ("a.txt", "3")];
        assert_eq!(trash_names(items.iter().copied()), ["a.txt (id 1)", "b", "a.txt (id 3)"]);
    }
}
