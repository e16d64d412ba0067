//! Box-like network conditions on loopback: `--latency MS[:JITTER]` holds every response for
//! that long (± up to JITTER ms, uniformly) before its first byte, and `--bandwidth BYTES_PER_SEC`
//! paces the bytes of each connection, request bodies (uploads) and response bodies
//! (downloads) alike, as one TCP connection to Box is paced. Both change at run time through
//! `PUT /_emulator/network`.
//!
//! Pacing never lets a connection run ahead of its rate: its bytes are booked back to back on a
//! clock that restarts from now only when the connection has been idle for more than [`GRACE`]
//! (which absorbs the timer's overshoot, as tokio sleeps in whole milliseconds, so that the rate
//! is kept on average instead of losing a millisecond per piece). A body of `n` bytes on a fresh
//! or rested connection therefore takes at least `n / rate` seconds.

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use rand::Rng;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The conditions in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetworkSpec {
    /// Added before the first byte of every response.
    #[serde(rename = "latency_ms", serialize_with = "as_millis")]
    pub latency: Duration,
    /// The latency varies uniformly within ± this.
    #[serde(rename = "jitter_ms", serialize_with = "as_millis")]
    pub jitter: Duration,
    /// Bytes per second per connection, both ways; `None` for unpaced.
    pub bandwidth: Option<u64>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[derive(Debug, thiserror::Error)]
#[error("invalid network conditions '{entry}': {reason}")]
pub struct NetworkSpecError {
    entry: String,
    reason: &'static str,
}

impl NetworkSpec {
    /// `MS` or `MS:JITTER_MS` (the `--latency` syntax) into `(latency, jitter)`.
    pub fn parse_latency(s: &str) -> Result<(Duration, Duration), NetworkSpecError> {
        let err = |reason| NetworkSpecError { entry: s.to_string(), reason };
        let (ms, jitter) = s.split_once(':').unwrap_or((s, "0"));
        let ms: u64 = ms.trim().parse().map_err(|_| err("latency must be whole milliseconds"))?;
        let jitter: u64 = jitter.trim().parse().map_err(|_| err("jitter must be whole milliseconds"))?;
        if jitter > ms {
            return Err(err("jitter cannot exceed the latency"));
        }
        Ok((Duration::from_millis(ms), Duration::from_millis(jitter)))
    }

    /// A positive bytes-per-second rate (the `--bandwidth` syntax).
    pub fn parse_bandwidth(s: &str) -> Result<u64, NetworkSpecError> {
        s.trim().parse::<u64>().ok().filter(|b| *b > 0).ok_or_else(|| NetworkSpecError {
            entry: s.to_string(),
            reason: "bandwidth must be a positive number of bytes per second",
        })
    }

    /// `latency=MS[:JITTER],bandwidth=BYTES_PER_SEC`, either part optional; empty means none.
    pub fn parse(spec: &str) -> Result<NetworkSpec, NetworkSpecError> {
        let mut out = NetworkSpec::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let err = |reason| NetworkSpecError { entry: entry.to_string(), reason };
            match entry.split_once('=').ok_or_else(|| err("expected KEY=VALUE"))? {
                ("latency", v) => (out.latency, out.jitter) = NetworkSpec::parse_latency(v)?,
                ("bandwidth", v) => out.bandwidth = Some(NetworkSpec::parse_bandwidth(v)?),
                _ => return Err(err("unknown key (latency, bandwidth)")),
            }
        }
        Ok(out)
    }
}

/// The emulator's current conditions, shared by every connection.
pub struct Network(Mutex<NetworkSpec>);

impl Network {
    pub fn new(spec: NetworkSpec) -> Network {
        Network(Mutex::new(spec))
    }

    pub fn spec(&self) -> NetworkSpec {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, spec: NetworkSpec) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = spec;
    }

    /// How long to hold the next response: the latency with its jitter drawn.
    pub fn response_delay(&self) -> Duration {
        let spec = self.spec();
        if spec.jitter.is_zero() {
            return spec.latency;
        }
        let jitter = spec.jitter.as_micros() as i64;
        let offset = rand::rng().random_range(-jitter..=jitter);
        Duration::from_micros((spec.latency.as_micros() as i64 + offset).max(0) as u64)
    }
}

/// How far behind now a connection's clock may be and still go on from where it was (see the
/// module docs).
const GRACE: Duration = Duration::from_millis(5);

/// One connection's clock: the instant its bytes so far have finished "transmitting".
#[derive(Default)]
pub struct Pacer(Mutex<Option<Instant>>);

impl Pacer {
    /// Books `bytes` at `rate` after what is already booked (from now when the connection has
    /// been idle longer than [`GRACE`]) and returns the instant at which they have gone through.
    fn book(&self, bytes: usize, rate: u64) -> Instant {
        let mut ready_at = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let start = match *ready_at {
            Some(t) if t + GRACE >= now => t,
            _ => now,
        };
        let done = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
        *ready_at = Some(done);
        done
    }
}

/// The most one paced frame carries, so that a large chunk trickles out at the rate instead of
/// leaving in one burst after a long pause.
const PACED_FRAME: usize = 64 * 1024;

/// A body whose data frames are released no faster than the connection's rate allows.
pub struct Paced<B> {
    inner: B,
    state: Arc<super::Shared>,
    pacer: Arc<Pacer>,
    /// Bytes already taken from `inner` and not yet released.
    rest: Bytes,
    /// The wait before `held` may go.
    wait: Option<Pin<Box<Sleep>>>,
    held: Option<Bytes>,
}

impl<B> Paced<B> {
    pub fn new(inner: B, state: Arc<super::Shared>, pacer: Arc<Pacer>) -> Paced<B> {
        Paced { inner, state, pacer, rest: Bytes::new(), wait: None, held: None }
    }

    /// Takes the next piece of `rest` and books it; `held` until its time comes.
    fn hold_next(&mut self) {
        let n = self.rest.len().min(PACED_FRAME);
        let piece = self.rest.split_to(n);
        if let Some(rate) = self.state.network.spec().bandwidth {
            let until = self.pacer.book(n, rate);
            if until > Instant::now() {
                self.wait = Some(Box::pin(tokio::time::sleep_until(until)));
            }
        }
        self.held = Some(piece);
    }
}

impl<B> Body for Paced<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(wait) = &mut this.wait {
                ready!(wait.as_mut().poll(cx));
                this.wait = None;
            }
            if let Some(piece) = this.held.take() {
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            if !this.rest.is_empty() {
                this.hold_next();
                continue;
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.rest = data;
                        if this.rest.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::new()))));
                        }
                    }
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let pending = (self.rest.len() + self.held.as_ref().map_or(0, Bytes::len)) as u64;
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + pending);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let s = NetworkSpec::parse("latency=100:20,bandwidth=1000000").unwrap();
        assert_eq!(s.latency, Duration::from_millis(100));
        assert_eq!(s.jitter, Duration::from_millis(20));
        assert_eq!(s.bandwidth, Some(1_000_000));
        assert_eq!(NetworkSpec::parse("").unwrap(), NetworkSpec::default());
        assert_eq!(NetworkSpec::parse_latency("250").unwrap(), (Duration::from_millis(250), Duration::ZERO));
        for bad in ["latency=x", "latency=10:20", "bandwidth=0", "bandwidth=-1", "speed=3", "latency"] {
            assert!(NetworkSpec::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_paced_and_earns_no_credit_when_idle() {
        let pacer = Pacer::default();
        let t0 = Instant::now();
        assert_eq!(pacer.book(1000, 1000) - t0, Duration::from_secs(1));
        assert_eq!(pacer.book(500, 1000) - t0, Duration::from_millis(1500));
        tokio::time::advance(Duration::from_secs(10)).await;
        let t1 = Instant::now();
        assert_eq!(pacer.book(1000, 1000) - t1, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_that_overshoots_does_not_slow_the_rate() {
        // 1 MB/s in 1000-byte pieces is a millisecond each; every wait overshoots by 0.9 ms.
        let pacer = Pacer::default();
        let t0 = Instant::now();
        let mut until = t0;
        for _ in 0..1000 {
            until = pacer.book(1000, 1_000_000);
            tokio::time::sleep_until(until.max(Instant::now()) + Duration::from_micros(900)).await;
        }
        assert_eq!(until - t0, Duration::from_secs(1), "the clock books exactly the rate");
        assert!(Instant::now() - t0 < Duration::from_millis(1010), "overshoot is not added up");
    }
}
