//! `boxfs mount --metrics ADDR`: serves the mount's metrics in Prometheus' text format at
//! `http://ADDR/` (any path), through `metrics-exporter-prometheus` as the process's `metrics`
//! recorder, and refreshes the gauges that mirror the mount's state once a second.
//!
//! The counters and histograms are recorded where things happen, through the `metrics` facade
//! (the API client: `boxfs_api::telemetry`; the vfs: `vfs::telemetry`; FUSE operations:
//! `fuse::timing`), none of which knows this exporter; each describes its own series. The
//! gauges are read here from what `boxfs status` shows ([`Fs::cache_usage`],
//! [`Fs::pending_uploads`], [`Fs::connection`], the event stream's state):
//! - `boxfs_block_cache_size_bytes`, `boxfs_block_cache_capacity_bytes` (unpinned blocks and
//!   their budget), `boxfs_pinned_bytes` (pinned content, not in that budget);
//! - `boxfs_box_reachable` (0 while the mount is offline);
//! - `boxfs_pending_uploads`, `boxfs_pending_upload_bytes` (files not yet in Box, and their sizes);
//! - `boxfs_event_stream_live` (1 while the stream is live; absent with `--events off`).
//!
//! Invariants: nothing is served unless asked for; the address is loopback unless the user
//! wrote another one (which is logged as reachable from the network); one exporter per process
//! (the recorder is global).

use crate::vfs::Fs;
use boxfs_api::StreamState;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Histogram buckets of every `*_seconds` series (FUSE latency, event lag): 100 µs to 1 min.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How often the mirrored gauges are read again.
const REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot serve metrics on {addr}: {message}")]
    Serve { addr: SocketAddr, message: String },
}

/// The running exporter and gauge refresher; dropping it stops both.
pub struct Telemetry {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Telemetry {
    /// Starts mirroring the gauges of `fs` and of the event stream's state (`None`: events off).
    pub fn mirror(&mut self, fs: Arc<Fs>, events: Option<watch::Receiver<StreamState>>) {
        self.tasks.push(tokio::spawn(refresh_gauges(fs, events)));
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds `addr`, installs the process's recorder and serves the metrics there (in this tokio
/// runtime); the gauges follow once [`Telemetry::mirror`] is called.
pub fn serve(addr: SocketAddr) -> Result<Telemetry, TelemetryError> {
    let failed = |message: String| TelemetryError::Serve { addr, message };
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(PrometheusBuilder::build)
        .map_err(|e| failed(e.to_string()))?;
    metrics::set_global_recorder(recorder).map_err(|e| failed(e.to_string()))?;
    boxfs_api::telemetry::describe();
    crate::vfs::telemetry::describe();
    crate::fuse::describe_metrics();
    describe_gauges();
    if addr.ip().is_loopback() {
        tracing::info!(%addr, "serving metrics");
    } else {
        tracing::warn!(%addr, "serving metrics on a non-loopback address: reachable from the network");
    }
    let serving = tokio::spawn(async move {
        if let Err(e) = exporter.await {
            tracing::error!(error = ?e, "the metrics listener stopped");
        }
    });
    Ok(Telemetry { tasks: vec![serving] })
}

fn describe_gauges() {
    use metrics::{describe_gauge, Unit};
    describe_gauge!("boxfs_block_cache_size_bytes", Unit::Bytes, "bytes in the block cache");
    describe_gauge!("boxfs_block_cache_capacity_bytes", Unit::Bytes, "the block cache's budget (cache_size)");
    describe_gauge!("boxfs_pinned_bytes", Unit::Bytes, "bytes of pinned content, not counted in the capacity");
    describe_gauge!("boxfs_box_reachable", "1 while Box can be reached, 0 while the mount is offline");
    describe_gauge!("boxfs_pending_uploads", "files with changes not yet in Box");
    describe_gauge!("boxfs_pending_upload_bytes", Unit::Bytes, "sizes of the files not yet in Box");
    describe_gauge!("boxfs_event_stream_live", "1 while Box's event stream is followed live, else 0");
}

/// Sets the mirrored gauges every [`REFRESH`], until aborted.
async fn refresh_gauges(fs: Arc<Fs>, events: Option<watch::Receiver<StreamState>>) {
    let mut tick = tokio::time::interval(REFRESH);
    loop {
        tick.tick().await;
        let cache = fs.cache_usage();
        metrics::gauge!("boxfs_block_cache_size_bytes").set(cache.used as f64);
        metrics::gauge!("boxfs_block_cache_capacity_bytes").set(cache.capacity as f64);
        metrics::gauge!("boxfs_pinned_bytes").set(cache.pinned as f64);
        metrics::gauge!("boxfs_box_reachable").set(if fs.connection().is_online() { 1.0 } else { 0.0 });
        metrics::gauge!("boxfs_pending_uploads").set(fs.pending_uploads() as f64);
        metrics::gauge!("boxfs_pending_upload_bytes").set(fs.pending_upload_bytes() as f64);
        if let Some(state) = &events {
            let live = matches!(*state.borrow(), StreamState::Live);
            metrics::gauge!("boxfs_event_stream_live").set(if live { 1.0 } else { 0.0 });
        }
    }
}
