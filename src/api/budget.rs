//! The client-side request budget: token buckets (requests and uploads per minute) that a
//! request waits on before it is sent, so that a busy mount stays under Box's limits instead
//! of living on 429s.

use super::config::BudgetConfig;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

struct Bucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_minute: u32) -> Bucket {
        let capacity = f64::from(per_minute.max(1));
        Bucket { capacity, per_sec: capacity / 60.0, tokens: capacity, last: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.per_sec).min(self.capacity);
        self.last = now;
    }

    fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)
        }
    }
}

pub struct Budget {
    buckets: Mutex<(Bucket, Bucket)>,
}

impl Budget {
    pub fn new(cfg: &BudgetConfig) -> Budget {
        Budget { buckets: Mutex::new((Bucket::new(cfg.requests_per_minute), Bucket::new(cfg.uploads_per_minute))) }
    }

    /// Waits until one request (and one upload when `upload`) may be sent, then takes it.
    /// Waiters are served in turn (the lock is fair), so none starves.
    pub async fn acquire(&self, upload: bool) {
        let mut guard = self.buckets.lock().await;
        loop {
            let now = Instant::now();
            let (requests, uploads) = &mut *guard;
            requests.refill(now);
            uploads.refill(now);
            let wait = requests.wait().max(if upload { uploads.wait() } else { Duration::ZERO });
            if wait.is_zero() {
                requests.tokens -= 1.0;
                if upload {
                    uploads.tokens -= 1.0;
                }
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_when_the_minute_is_spent() {
        let b = Budget::new(&BudgetConfig { requests_per_minute: 60, uploads_per_minute: 6 });
        let start = tokio::time::Instant::now();
        for _ in 0..60 {
            b.acquire(false).await;
        }
        assert!(start.elapsed() < Duration::from_millis(10));
        b.acquire(false).await;
        assert!(start.elapsed() >= Duration::from_millis(900), "one more request waits ~1 s");
    }
}
