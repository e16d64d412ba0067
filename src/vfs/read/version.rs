//! Which content of a file: Box's `file_version` id when the answer carried it (a download
//! then asks for exactly that version), else the content's SHA-1, else unknown (the current
//! content, whatever it is). Blocks are cached under it, so two versions never mix.

/// One version of a file's content.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ContentVersion {
    /// Box's `file_version.id`.
    Id(String),
    /// The content's SHA-1 (hex), when Box said no version id.
    Sha1(String),
    /// Neither is known.
    Unknown,
}

const SHA1_PREFIX: &str = "sha1-";
const UNKNOWN: &str = "unknown";

impl ContentVersion {
    pub fn of(version_id: Option<&str>, sha1: Option<&str>) -> ContentVersion {
        match (version_id, sha1) {
            (Some(v), _) => ContentVersion::Id(v.to_string()),
            (None, Some(s)) => ContentVersion::Sha1(s.to_string()),
            (None, None) => ContentVersion::Unknown,
        }
    }

    /// The `version` a download asks Box for (`None`: the current content).
    pub fn download_param(&self) -> Option<&str> {
        match self {
            ContentVersion::Id(v) => Some(v),
            ContentVersion::Sha1(_) | ContentVersion::Unknown => None,
        }
    }

    /// The version's name in the block cache's file names: the id, `sha1-<hex>` or `unknown`.
    pub fn cache_name(&self) -> String {
        match self {
            ContentVersion::Id(v) => v.clone(),
            ContentVersion::Sha1(s) => format!("{SHA1_PREFIX}{s}"),
            ContentVersion::Unknown => UNKNOWN.into(),
        }
    }

    /// The version a cache file name part names (the inverse of [`ContentVersion::cache_name`]).
    pub fn from_cache_name(name: &str) -> ContentVersion {
        match name.strip_prefix(SHA1_PREFIX) {
            Some(s) => ContentVersion::Sha1(s.to_string()),
            None if name == UNKNOWN => ContentVersion::Unknown,
            None => ContentVersion::Id(name.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_id_wins_and_cache_names_round_trip() {
        let id = ContentVersion::of(Some("123"), Some("abc"));
        assert_eq!(id, ContentVersion::Id("123".into()));
        assert_eq!(id.download_param(), Some("123"));
        let sha1 = ContentVersion::of(None, Some("abc"));
        assert_eq!(sha1.download_param(), None);
        assert_eq!(ContentVersion::of(None, None), ContentVersion::Unknown);
        for v in [id, sha1, ContentVersion::Unknown] {
            assert_eq!(ContentVersion::from_cache_name(&v.cache_name()), v);
        }
    }
}
