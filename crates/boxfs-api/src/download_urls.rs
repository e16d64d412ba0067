//! Download URLs recently issued by Box (`GET /files/{id}/content` answers 302 to a short-lived
//! URL on the download host), per file version, reused for a few minutes so that ranged reads
//! of one file cost one API call, not one per range. Bounded: an overfull cache drops what
//! expired, else everything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Box says download URLs live about 15 minutes; reuse them for less than that.
const URL_REUSE: Duration = Duration::from_secs(5 * 60);
const URL_CACHE_MAX: usize = 4096;

/// (file id, version) → (download URL, when it was issued).
pub(crate) type UrlKey = (String, Option<String>);

#[derive(Default)]
pub struct DownloadUrls(Mutex<HashMap<UrlKey, (String, Instant)>>);

impl DownloadUrls {
    pub(crate) fn get(&self, key: &UrlKey) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).filter(|(_, at)| at.elapsed() < URL_REUSE).map(|(u, _)| u.clone())
    }

    pub(crate) fn put(&self, key: UrlKey, url: String) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= URL_CACHE_MAX {
            map.retain(|_, (_, at)| at.elapsed() < URL_REUSE);
            if map.len() >= URL_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(key, (url, Instant::now()));
    }

    pub(crate) fn forget(&self, key: &UrlKey) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}
