//! Box's per-user rate limits (`--rate-limits box`): 1000 API requests and 240 uploads per
//! minute for each user acted for, as token buckets; an empty bucket answers 429 with the
//! `Retry-After` it needs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

struct Bucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn per_minute(n: f64) -> Bucket {
        Bucket { capacity: n, per_sec: n / 60.0, tokens: n, last: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        self.last = now;
    }

    /// Seconds until one token is available (0 when one is).
    fn wait_secs(&self) -> u64 {
        if self.tokens >= 1.0 {
            0
        } else {
            ((1.0 - self.tokens) / self.per_sec).ceil().max(1.0) as u64
        }
    }
}

/// Requests and uploads of each user.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (Bucket, Bucket)>>,
}

impl RateLimiter {
    /// Box's documented limits.
    pub fn box_limits() -> RateLimiter {
        RateLimiter::default()
    }

    /// Takes one request (and one upload when `upload`) of `user`; `Err(retry_after_secs)`
    /// when over.
    pub fn take(&self, user: &str, upload: bool) -> Result<(), u64> {
        let mut guard = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (requests, uploads) =
            guard.entry(user.to_string()).or_insert_with(|| (Bucket::per_minute(1000.0), Bucket::per_minute(240.0)));
        let now = Instant::now();
        requests.refill(now);
        uploads.refill(now);
        let wait = requests.wait_secs().max(if upload { uploads.wait_secs() } else { 0 });
        if wait > 0 {
            return Err(wait);
        }
        requests.tokens -= 1.0;
        if upload {
            uploads.tokens -= 1.0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_budget_then_refuses() {
        let l = RateLimiter::box_limits();
        for _ in 0..240 {
            l.take("a", true).unwrap();
        }
        assert!(l.take("a", true).is_err());
        l.take("b", true).unwrap();
        for _ in 0..760 {
            l.take("a", false).unwrap();
        }
        assert!(matches!(l.take("a", false), Err(s) if s >= 1));
    }
}
