//! Fault injection (`--faults "429=0.05,500=0.02,reset=0.01,slow=0.01,commit202=0.5,seed=7"`):
//! per-request probabilities drawn from one seeded generator, so that a sequential client sees
//! the same faults for the same seed.

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    /// `(status, probability)`, e.g. `(429, 0.05)`, `(503, 0.01)`.
    pub statuses: Vec<(u16, f64)>,
    pub reset: f64,
    /// Process the request, then drop the connection instead of answering (the case where a
    /// blind retry duplicates work).
    pub reset_after: f64,
    pub slow: f64,
    pub commit202: f64,
    pub download202: f64,
    /// Per event in a `GET /events` page: the chance it is sent twice; a page with any
    /// duplicate is also sent in reverse order (Box's user streams may do both).
    pub event_chaos: f64,
    pub seed: Option<u64>,
    /// `Retry-After` seconds sent with injected 429/202 (default 1).
    pub retry_after: u64,
    /// How long a `slow` request is held (default 2000 ms).
    pub slow_ms: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid --faults entry '{entry}': {reason}")]
pub struct FaultSpecError {
    entry: String,
    reason: &'static str,
}

impl FaultSpec {
    pub fn parse(spec: &str) -> Result<FaultSpec, FaultSpecError> {
        let mut out = FaultSpec { retry_after: 1, slow_ms: 2000, ..FaultSpec::default() };
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let err = |reason| FaultSpecError { entry: entry.to_string(), reason };
            let (key, value) = entry.split_once('=').ok_or_else(|| err("expected KEY=VALUE"))?;
            let prob = || -> Result<f64, FaultSpecError> {
                let p: f64 = value.parse().map_err(|_| err("not a number"))?;
                if (0.0..=1.0).contains(&p) {
                    Ok(p)
                } else {
                    Err(err("probability must be within 0..=1"))
                }
            };
            let int = || value.parse::<u64>().map_err(|_| err("not a non-negative integer"));
            match key {
                "reset" => out.reset = prob()?,
                "reset_after" => out.reset_after = prob()?,
                "slow" => out.slow = prob()?,
                "commit202" => out.commit202 = prob()?,
                "download202" => out.download202 = prob()?,
                "event_chaos" => out.event_chaos = prob()?,
                "seed" => out.seed = Some(int()?),
                "retry_after" => out.retry_after = int()?,
                "slow_ms" => out.slow_ms = int()?,
                status => {
                    let code: u16 = status.parse().map_err(|_| err("unknown key"))?;
                    if !(400..=599).contains(&code) {
                        return Err(err("status must be 4xx or 5xx"));
                    }
                    out.statuses.push((code, prob()?));
                }
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
            && self.reset == 0.0
            && self.slow == 0.0
            && self.commit202 == 0.0
            && self.download202 == 0.0
            && self.event_chaos == 0.0
    }
}

/// What to do to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    Status(u16),
    Reset,
    ResetAfter,
    Slow(Duration),
}

pub struct Faults {
    inner: Mutex<(FaultSpec, StdRng)>,
}

impl Faults {
    pub fn new(spec: FaultSpec) -> Faults {
        let rng = rng_for(&spec);
        Faults { inner: Mutex::new((spec, rng)) }
    }

    /// Replaces the spec (and reseeds).
    pub fn set(&self, spec: FaultSpec) {
        let rng = rng_for(&spec);
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = (spec, rng);
    }

    pub fn spec(&self) -> FaultSpec {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// Draws the fault for one request.
    pub fn decide(&self) -> Fault {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (spec, rng) = &mut *guard;
        if spec.statuses.is_empty() && spec.reset == 0.0 && spec.reset_after == 0.0 && spec.slow == 0.0 {
            return Fault::None;
        }
        let x: f64 = rng.random();
        let mut acc = 0.0;
        for (code, p) in &spec.statuses {
            acc += p;
            if x < acc {
                return Fault::Status(*code);
            }
        }
        acc += spec.reset;
        if x < acc {
            return Fault::Reset;
        }
        acc += spec.reset_after;
        if x < acc {
            return Fault::ResetAfter;
        }
        acc += spec.slow;
        if x < acc {
            return Fault::Slow(Duration::from_millis(spec.slow_ms));
        }
        Fault::None
    }

    /// Draws whether a commit (or download) answers 202; gives the `Retry-After` seconds.
    pub fn accepted_202(&self, download: bool) -> Option<u64> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (spec, rng) = &mut *guard;
        let p = if download { spec.download202 } else { spec.commit202 };
        if p == 0.0 {
            return None;
        }
        (rng.random::<f64>() < p).then_some(spec.retry_after)
    }
}

impl Faults {
    /// Duplicates and reorders a page of events when `event_chaos` says so.
    pub fn scramble_events<T: Clone>(&self, entries: Vec<T>) -> Vec<T> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (spec, rng) = &mut *guard;
        if spec.event_chaos == 0.0 {
            return entries;
        }
        let mut out = Vec::with_capacity(entries.len() * 2);
        let mut duplicated = false;
        for e in entries {
            if rng.random::<f64>() < spec.event_chaos {
                out.push(e.clone());
                duplicated = true;
            }
            out.push(e);
        }
        if duplicated {
            out.reverse();
        }
        out
    }
}

fn rng_for(spec: &FaultSpec) -> StdRng {
    match spec.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let s = FaultSpec::parse("429=0.05,500=0.02,reset=0.01,slow=0.01,commit202=0.5,seed=7").unwrap();
        assert_eq!(s.statuses, vec![(429, 0.05), (500, 0.02)]);
        assert_eq!((s.reset, s.slow, s.commit202, s.seed), (0.01, 0.01, 0.5, Some(7)));
        assert_eq!(s.retry_after, 1);
    }

    #[test]
    fn rejects_bad_entries() {
        for bad in ["429", "429=2", "abc=0.1", "200=0.1", "seed=x"] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn same_seed_same_faults() {
        let spec = FaultSpec::parse("429=0.2,500=0.2,reset=0.1,seed=42").unwrap();
        let draw = || {
            let f = Faults::new(spec.clone());
            (0..200).map(|_| f.decide()).collect::<Vec<_>>()
        };
        let a = draw();
        assert_eq!(a, draw());
        assert!(a.contains(&Fault::Status(429)) && a.contains(&Fault::Reset) && a.contains(&Fault::None));
    }
}
