//! Times as the journal and Box's metadata keep them: signed nanoseconds since the epoch (any
//! `SystemTime`, also before 1970, round-trips) and RFC 3339 for Box's `content_modified_at`.

use std::time::SystemTime;

/// `content_modified_at` for an mtime.
pub fn rfc3339(t: SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Utc> = t.into();
    dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn nanos(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

pub fn from_nanos(n: i128) -> SystemTime {
    if n >= 0 {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(n as u64)
    } else {
        SystemTime::UNIX_EPOCH - std::time::Duration::from_nanos((-n) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtime_round_trips_through_nanos() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(from_nanos(nanos(t)), t);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
    }
}
