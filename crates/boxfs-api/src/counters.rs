//! What the client has sent: totals since start and a sliding one-minute window (requests
//! and 429s), for `boxfs status` and tests. Retries and 429s are also recorded as metrics
//! (`telemetry.rs`): this is the one place that counts them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const WINDOW_SECS: usize = 60;

#[derive(Debug)]
pub struct Counters {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub retries: AtomicU64,
    recent: Mutex<Window>,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            recent: Mutex::new(Window::new(Instant::now())),
        }
    }
}

/// Requests and 429s seen in the last minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastMinute {
    pub requests: u64,
    pub throttled: u64,
}

impl Counters {
    pub(crate) fn request_sent(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.window().add(Instant::now(), 1, 0);
    }

    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.window().add(Instant::now(), 0, 1);
        super::telemetry::throttled();
    }

    /// An attempt after the first of a call or of a download is due.
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        super::telemetry::retried();
    }

    pub fn last_minute(&self) -> LastMinute {
        self.window().sum(Instant::now())
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One bucket per second over the last `WINDOW_SECS` seconds.
#[derive(Debug)]
struct Window {
    start: Instant,
    /// (second since `start`, requests, throttled) per slot.
    slots: [(u64, u64, u64); WINDOW_SECS],
}

impl Window {
    fn new(start: Instant) -> Window {
        Window { start, slots: [(u64::MAX, 0, 0); WINDOW_SECS] }
    }

    fn add(&mut self, now: Instant, requests: u64, throttled: u64) {
        let sec = now.duration_since(self.start).as_secs();
        let slot = &mut self.slots[sec as usize % WINDOW_SECS];
        if slot.0 != sec {
            *slot = (sec, 0, 0);
        }
        slot.1 += requests;
        slot.2 += throttled;
    }

    fn sum(&self, now: Instant) -> LastMinute {
        let sec = now.duration_since(self.start).as_secs();
        let live = |s: &&(u64, u64, u64)| s.0 != u64::MAX && s.0 + (WINDOW_SECS as u64) > sec;
        self.slots.iter().filter(live).fold(LastMinute::default(), |acc, s| LastMinute {
            requests: acc.requests + s.1,
            throttled: acc.throttled + s.2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_window_forgets_after_a_minute() {
        let t0 = Instant::now();
        let mut w = Window::new(t0);
        w.add(t0, 3, 1);
        w.add(t0 + Duration::from_secs(30), 2, 0);
        assert_eq!(w.sum(t0 + Duration::from_secs(59)), LastMinute { requests: 5, throttled: 1 });
        assert_eq!(w.sum(t0 + Duration::from_secs(61)), LastMinute { requests: 2, throttled: 0 });
        // A slot reused a minute later starts from zero.
        w.add(t0 + Duration::from_secs(60), 1, 0);
        assert_eq!(w.sum(t0 + Duration::from_secs(60)), LastMinute { requests: 3, throttled: 0 });
        assert_eq!(w.sum(t0 + Duration::from_secs(200)), LastMinute::default());
    }
}
