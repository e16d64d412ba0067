//! The event stream: long-poll (`OPTIONS /events` → realtime URL → `new_change` /
//! `reconnect`), then `GET /events?stream_type=changes` from the last position until drained.
//! Batches go out on a channel, deduplicated by `event_id`; the stream reconnects on
//! `reconnect`, timeouts and errors (with backoff, or as soon as Box is back when it was
//! unreachable) and resumes from its last position, so changes made meanwhile arrive.

use super::client::Client;
use super::error::{ApiError, ApiResult};
use super::model::{Event, EventsPage, RealtimeServers};
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Remembered event ids (Box may repeat events).
const DEDUP_WINDOW: usize = 4096;
const EVENTS_LIMIT: u32 = 500;

#[derive(Clone, Debug)]
pub enum StartAt {
    /// Only changes from now on.
    Now,
    /// Resume after a stored `next_stream_position`.
    Position(String),
}

/// New events, with the position to resume from after them.
#[derive(Clone, Debug)]
pub struct EventBatch {
    pub events: Vec<Event>,
    pub next_position: String,
}

/// The stream's health, for logs and `boxfs status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamState {
    Connecting,
    Live,
    Degraded(String),
}

pub struct EventStream {
    pub batches: mpsc::Receiver<EventBatch>,
    pub state: watch::Receiver<StreamState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Dedup {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Dedup {
    fn new() -> Dedup {
        Dedup { order: VecDeque::new(), seen: HashSet::new() }
    }

    /// True the first time an id is seen.
    fn first_time(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() >= DEDUP_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.seen.insert(id.to_string());
        true
    }
}

impl Client {
    /// Starts consuming the account's change events in a background task.
    pub fn event_stream(&self, start: StartAt) -> EventStream {
        let (tx, batches) = mpsc::channel(64);
        let (state_tx, state) = watch::channel(StreamState::Connecting);
        let client = self.clone();
        let task = tokio::spawn(async move { client.run_events(start, tx, state_tx).await });
        EventStream { batches, state, task }
    }

    /// One page of events after `position` (`now` gives the current position only).
    pub async fn events_page(&self, position: &str) -> ApiResult<EventsPage> {
        self.get_json(self.api(&format!("/events?stream_type=changes&limit={EVENTS_LIMIT}&stream_position={position}")))
            .await
    }

    async fn run_events(self, start: StartAt, tx: mpsc::Sender<EventBatch>, state: watch::Sender<StreamState>) {
        let mut position = match start {
            StartAt::Position(p) => p,
            StartAt::Now => loop {
                match self.events_page("now").await {
                    Ok(page) => break page.next_stream_position,
                    Err(e) => self.degrade(&state, &e, 0).await,
                }
            },
        };
        let mut dedup = Dedup::new();
        let mut failures = 0u32;
        loop {
            match self.poll_round(&mut position, &mut dedup, &tx, &state).await {
                Ok(()) => failures = 0,
                Err(_) if tx.is_closed() => return,
                Err(e) => {
                    failures += 1;
                    self.degrade(&state, &e, failures).await;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    }

    async fn degrade(&self, state: &watch::Sender<StreamState>, e: &ApiError, failures: u32) {
        let msg = e.to_string();
        let changed = state.send_if_modified(|s| {
            let was_live = !matches!(s, StreamState::Degraded(_));
            *s = StreamState::Degraded(msg.clone());
            was_live
        });
        if changed {
            tracing::warn!(error = %msg, "event stream down; metadata falls back to TTL expiry until it recovers");
        }
        if self.connection().is_online() {
            tokio::time::sleep(self.inner.cfg.retry.backoff(failures.min(8))).await;
        } else {
            self.until_online().await;
        }
    }

    /// Asks for a realtime server, then long-polls it until it says `reconnect`.
    async fn poll_round(
        &self,
        position: &mut String,
        dedup: &mut Dedup,
        tx: &mpsc::Sender<EventBatch>,
        state: &watch::Sender<StreamState>,
    ) -> ApiResult<()> {
        let servers: RealtimeServers = self
            .execute(&super::client::Call {
                method: reqwest::Method::OPTIONS,
                url: self.api("/events"),
                upload: false,
                retry_accepted: false,
                build: &|r| r,
            })
            .await?
            .json()?;
        let server = servers.entries.into_iter().next().ok_or_else(|| ApiError::Decode("no realtime server".into()))?;
        let timeout = Duration::from_secs(server.retry_timeout.unwrap_or(610) + 30);
        // Catch up first: changes may have happened while we were not listening.
        self.drain(position, dedup, tx).await?;
        if state.send_if_modified(|s| std::mem::replace(s, StreamState::Live) != StreamState::Live) {
            tracing::info!("event stream live");
        }
        loop {
            let sep = if server.url.contains('?') { '&' } else { '?' };
            let url = format!("{}{sep}stream_position={position}", server.url);
            // The realtime host needs no token; it is not sent there.
            let resp = self.inner.longpoll_http.get(&url).timeout(timeout).send().await;
            super::telemetry::longpoll_answered(&resp);
            let resp = resp?;
            if !resp.status().is_success() {
                return Err(ApiError::Http { status: resp.status().as_u16(), code: None, message: "long-poll".into() });
            }
            let message: serde_json::Value = resp.json().await?;
            match message["message"].as_str() {
                Some("new_change") => self.drain(position, dedup, tx).await?,
                _ => return Ok(()), // "reconnect" (or anything unknown): ask OPTIONS again
            }
        }
    }

    /// Reads events after `position` until none are left, sending the new ones.
    async fn drain(&self, position: &mut String, dedup: &mut Dedup, tx: &mpsc::Sender<EventBatch>) -> ApiResult<()> {
        loop {
            let page = self.events_page(position).await?;
            let full_page = page.entries.len() >= EVENTS_LIMIT as usize;
            let fresh: Vec<Event> = page.entries.into_iter().filter(|e| dedup.first_time(&e.event_id)).collect();
            let moved = page.next_stream_position != *position;
            *position = page.next_stream_position;
            if !fresh.is_empty()
                && tx.send(EventBatch { events: fresh, next_position: position.clone() }).await.is_err()
            {
                return Err(ApiError::Config("event consumer went away".into()));
            }
            if !moved || !full_page {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dedup;

    #[test]
    fn dedup_forgets_beyond_its_window() {
        let mut d = Dedup::new();
        assert!(d.first_time("a"));
        assert!(!d.first_time("a"));
        for i in 0..super::DEDUP_WINDOW {
            d.first_time(&i.to_string());
        }
        assert!(d.first_time("a"), "old ids are forgotten");
    }
}
