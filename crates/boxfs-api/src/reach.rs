//! Whether Box can be reached: the client's connection state ([`Connection`]), learned from
//! what its requests meet, so that a mount keeps answering when the network is down instead of
//! making every request wait out the whole retry policy.
//!
//! Box is taken to be unreachable (offline) when connections to it cannot even be opened
//! ([`UNREACHABLE_IN_A_ROW`] attempts in a row refused, DNS failing, or one connect timeout), or
//! when no request has got an answer other than 5xx, a reset or a timeout for
//! [`FAILING_FOR`]. While offline, requests fail at once with [`ApiError::Offline`] (callers
//! that can wait, such as uploads and the event stream, wait for [`Reach::until_online`]) and
//! one probe at a time asks Box, every [`PROBE_INTERVALS`] step up to the last, until an answer
//! comes back: any HTTP status below 500 means reachable again.
//!
//! Invariants: the state changes only here; each change is logged once; while offline a probe
//! is running or about to run; an answer from Box (any status below 500) to any request ends
//! a failure streak.
//!
//! [`ApiError::Offline`]: super::error::ApiError::Offline

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// Refused connections in a row after which Box is offline.
pub const UNREACHABLE_IN_A_ROW: u32 = 2;
/// How long failures (5xx, resets, timeouts) may go on without an answer before Box is offline.
pub const FAILING_FOR: Duration = Duration::from_secs(30);
/// The waits between probes while offline; the last one repeats.
pub const PROBE_INTERVALS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(5)];

/// Whether Box can be reached, for `boxfs status` and the filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    Online,
    Offline { since: SystemTime, reason: String },
}

impl Connection {
    pub fn is_online(&self) -> bool {
        matches!(self, Connection::Online)
    }
}

/// How an attempt failed without an answer from Box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be opened (refused, DNS, connect timeout).
    Unreachable { timed_out: bool },
    /// Box (or something on the way) answered 5xx, reset the connection or stopped answering.
    Transient,
}

pub struct Reach {
    state: watch::Sender<Connection>,
    streak: Mutex<Streak>,
}

#[derive(Default)]
struct Streak {
    refused_in_a_row: u32,
    failing_since: Option<Instant>,
}

impl Default for Reach {
    fn default() -> Reach {
        Reach { state: watch::channel(Connection::Online).0, streak: Mutex::default() }
    }
}

impl Reach {
    pub fn connection(&self) -> Connection {
        self.state.borrow().clone()
    }

    /// When Box went offline (`None`: it is online).
    pub fn offline_since(&self) -> Option<SystemTime> {
        match &*self.state.borrow() {
            Connection::Online => None,
            Connection::Offline { since, .. } => Some(*since),
        }
    }

    /// Resolves once Box is online (at once if it is).
    pub async fn until_online(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(Connection::is_online).await;
    }

    /// Box answered (any status below 500): a failure streak ends, and an offline state too
    /// (returns true then).
    pub fn answered(&self) -> bool {
        *self.streak() = Streak::default();
        let back = self.state.send_if_modified(|c| !std::mem::replace(c, Connection::Online).is_online());
        if back {
            tracing::warn!("Box is reachable again; back online");
        }
        back
    }

    /// An attempt failed without an answer; returns true when this made Box offline (the
    /// caller then starts probing).
    pub fn failed(&self, failure: Failure, reason: &str) -> bool {
        let offline = {
            let mut streak = self.streak();
            let since = *streak.failing_since.get_or_insert_with(Instant::now);
            match failure {
                Failure::Unreachable { timed_out } => {
                    streak.refused_in_a_row += 1;
                    timed_out || streak.refused_in_a_row >= UNREACHABLE_IN_A_ROW
                }
                Failure::Transient => {
                    streak.refused_in_a_row = 0;
                    since.elapsed() >= FAILING_FOR
                }
            }
        };
        offline && self.go_offline(reason)
    }

    fn go_offline(&self, reason: &str) -> bool {
        let went = self.state.send_if_modified(|c| {
            if !c.is_online() {
                return false;
            }
            *c = Connection::Offline { since: SystemTime::now(), reason: reason.to_string() };
            true
        });
        if went {
            tracing::warn!(
                error = reason,
                "Box is unreachable; offline: serving what is cached, keeping changes in the journal, \
                 failing what needs Box at once until it is back"
            );
        }
        went
    }

    fn streak(&self) -> std::sync::MutexGuard<'_, Streak> {
        self.streak.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The wait before probe number `n` (from 0) of an offline spell.
pub fn probe_interval(n: usize) -> Duration {
    PROBE_INTERVALS[n.min(PROBE_INTERVALS.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_in_a_row_make_box_offline_and_an_answer_ends_it() {
        let reach = Reach::default();
        assert!(!reach.failed(Failure::Unreachable { timed_out: false }, "refused"));
        assert!(reach.connection().is_online());
        assert!(reach.failed(Failure::Unreachable { timed_out: false }, "refused"));
        assert!(reach.offline_since().is_some());
        assert!(!reach.failed(Failure::Unreachable { timed_out: false }, "refused"), "already offline");
        assert!(reach.answered());
        assert!(reach.connection().is_online());
        assert!(!reach.answered());
    }

    #[test]
    fn a_connect_timeout_is_enough_and_an_answer_resets_the_count() {
        let reach = Reach::default();
        assert!(!reach.failed(Failure::Unreachable { timed_out: false }, "refused"));
        reach.answered();
        assert!(!reach.failed(Failure::Unreachable { timed_out: false }, "refused"));
        assert!(reach.failed(Failure::Unreachable { timed_out: true }, "connect timeout"));
    }

    #[test]
    fn transient_failures_make_box_offline_only_when_they_last() {
        let reach = Reach::default();
        for _ in 0..100 {
            assert!(!reach.failed(Failure::Transient, "503"));
        }
        reach.streak().failing_since = Some(Instant::now() - FAILING_FOR);
        assert!(reach.failed(Failure::Transient, "503"));
    }

    #[tokio::test]
    async fn until_online_waits_for_the_answer() {
        let reach = std::sync::Arc::new(Reach::default());
        reach.until_online().await;
        reach.failed(Failure::Unreachable { timed_out: true }, "down");
        let waiter = tokio::spawn({
            let reach = reach.clone();
            async move { reach.until_online().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        reach.answered();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    }
}
