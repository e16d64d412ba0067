//! How many prefetch downloads a reader keeps in flight, learned from what the link gives
//! ([`Ramp`]): a pure state machine, fed the arrivals it measures with the time as an argument.
//!
//! Box's latency is paid per request and its bandwidth is per connection, so one request at a
//! time reads a fraction of the link; the right number in flight is the link's bandwidth-delay
//! product in blocks, which nothing tells in advance. The ramp starts at `initial` downloads in
//! flight and measures the throughput of one round (as many arrivals as downloads in flight)
//! while the prefetcher is link-bound, that is, keeps every slot busy. While a round improves
//! on the best so far by at least [`GAIN`], the limit doubles (never past `cap`, the memory
//! bound); the first round that does not settles the limit back on the level that gave the
//! best throughput, and it stays there. A round is discarded, not judged, when the prefetcher
//! ran out of work (nothing in flight: the reader, not the link, set the pace) or a download
//! failed. A reader somewhat slower than the link still shows in a round, as a gain too small
//! to double for: the ramp settles where more requests would not be read any faster.
//!
//! Invariants: `1 <= limit() <= cap`; the limit only changes at the end of a full round.

use std::time::Instant;

/// The throughput gain (ratio) a round at a doubled limit must show for the ramp to double
/// again: below it, more requests in flight only cost memory.
pub const GAIN: f64 = 1.25;

/// A round being measured: it started when every slot was busy.
#[derive(Clone, Copy, Debug)]
struct Round {
    start: Instant,
    bytes: u64,
    arrivals: usize,
}

/// The learned number of downloads in flight. See the module doc.
#[derive(Clone, Debug)]
pub struct Ramp {
    limit: usize,
    cap: usize,
    /// Best throughput measured (bytes per second) and the limit that gave it.
    best: Option<(f64, usize)>,
    round: Option<Round>,
    settled: bool,
}

impl Ramp {
    /// A ramp from `initial` downloads in flight up to at most `cap` (both at least 1).
    pub fn new(initial: usize, cap: usize) -> Ramp {
        let cap = cap.max(1);
        Ramp { limit: initial.clamp(1, cap), cap, best: None, round: None, settled: false }
    }

    /// Downloads to keep in flight now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether the limit is final.
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// Every slot is busy at `now`: a round starts unless one is under way.
    pub fn busy(&mut self, now: Instant) {
        if !self.settled && self.round.is_none() {
            self.round = Some(Round { start: now, bytes: 0, arrivals: 0 });
        }
    }

    /// The prefetcher had nothing in flight, or a download failed: the round under way says
    /// nothing about the link.
    pub fn interrupted(&mut self) {
        self.round = None;
    }

    /// A download of `bytes` arrived at `now`.
    pub fn arrived(&mut self, bytes: u64, now: Instant) {
        let Some(round) = &mut self.round else { return };
        round.bytes += bytes;
        round.arrivals += 1;
        if round.arrivals < self.limit {
            return;
        }
        let secs = now.saturating_duration_since(round.start).as_secs_f64();
        let rate = if secs > 0.0 { round.bytes as f64 / secs } else { f64::INFINITY };
        self.round = None;
        match self.best {
            Some((best, best_limit)) if rate < best * GAIN => {
                self.limit = best_limit;
                self.settled = true;
            }
            _ => {
                self.best = Some((rate, self.limit));
                if self.limit >= self.cap {
                    self.settled = true;
                } else {
                    self.limit = (self.limit * 2).min(self.cap);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs one round at the ramp's limit on a link where each request takes `per_request` and
    /// the whole link carries at most `link_blocks` blocks per `per_request`; returns the limit
    /// after it.
    fn round(r: &mut Ramp, t: &mut Instant, per_request: Duration, link_blocks: usize) -> usize {
        let n = r.limit();
        r.busy(*t);
        // n requests in flight: they take per_request each while the link has room, longer
        // (shared bandwidth) beyond it.
        let took = per_request.mul_f64((n as f64 / link_blocks as f64).max(1.0));
        *t += took;
        for _ in 0..n {
            r.arrived(4 << 20, *t);
        }
        r.limit()
    }

    #[test]
    fn doubles_while_throughput_improves_then_settles_on_the_best_level() {
        let mut r = Ramp::new(2, 64);
        let mut t = Instant::now();
        let per = Duration::from_millis(140);
        let mut limits = vec![r.limit()];
        while !r.settled() {
            limits.push(round(&mut r, &mut t, per, 12));
        }
        // Up to 8 each doubling doubles the throughput; 16 still gains 1.5x (the link is full
        // at 12); 32 gains nothing, so the ramp settles back on 16.
        assert_eq!(limits, vec![2, 4, 8, 16, 32, 16]);
        assert_eq!(r.limit(), 16);
        // Settled: further arrivals change nothing.
        round(&mut r, &mut t, per, 12);
        assert_eq!(r.limit(), 16);
    }

    #[test]
    fn never_grows_past_the_cap() {
        let mut r = Ramp::new(4, 10);
        let mut t = Instant::now();
        let mut seen = vec![];
        while !r.settled() {
            seen.push(round(&mut r, &mut t, Duration::from_millis(100), 1000));
        }
        assert_eq!(seen, vec![8, 10, 10]);
        assert_eq!(r.limit(), 10);
        assert_eq!(Ramp::new(50, 10).limit(), 10);
        assert_eq!(Ramp::new(0, 0).limit(), 1);
    }

    #[test]
    fn a_link_full_at_the_start_keeps_the_initial_limit() {
        let mut r = Ramp::new(4, 64);
        let mut t = Instant::now();
        assert_eq!(round(&mut r, &mut t, Duration::from_millis(100), 4), 8);
        assert_eq!(round(&mut r, &mut t, Duration::from_millis(100), 4), 4);
        assert!(r.settled());
    }

    #[test]
    fn interrupted_rounds_are_not_judged() {
        let mut r = Ramp::new(2, 64);
        let t = Instant::now();
        r.busy(t);
        r.arrived(1 << 20, t + Duration::from_millis(100));
        // The reader stopped: the slow round is dropped, not taken as the link's best.
        r.interrupted();
        r.arrived(1, t + Duration::from_secs(100));
        r.arrived(1, t + Duration::from_secs(100));
        assert_eq!(r.limit(), 2);
        assert!(!r.settled());
        // Arrivals outside a round (no slot was busy) measure nothing either.
        r.arrived(1 << 20, t + Duration::from_secs(101));
        assert_eq!(r.limit(), 2);
    }
}
