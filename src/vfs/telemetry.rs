//! What the vfs records through the `metrics` facade (the process that installs an exporter
//! decides where it goes; without one these are no-ops). Series:
//! - `boxfs_block_cache_hits_total`: a block a read needs was in the block cache (its recent
//!   tier in memory, or its files on disk);
//! - `boxfs_block_cache_misses_total`: a read had to wait for the block's download (one it
//!   started, or a prefetch still under way);
//! - `boxfs_event_lag_seconds` (histogram): for each event of Box's stream the mount applied,
//!   the time from the event's `created_at` (Box's clock, whole seconds) to when the mount had
//!   applied it: how stale the mount's view of changes made elsewhere was. Clock skew between
//!   Box and this machine shifts it; a negative lag counts as 0.
//!
//! Invariant: recording never fails and never waits.

use boxfs_api::model::Event;

/// Gives the series their help texts and makes the counters visible before their first event.
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!("boxfs_block_cache_hits_total", "blocks a read needed that were in the block cache");
    describe_counter!("boxfs_block_cache_misses_total", "blocks a read needed and waited to download");
    describe_histogram!(
        "boxfs_event_lag_seconds",
        Unit::Seconds,
        "from a Box event's created_at to when the mount had applied it"
    );
    for zero in ["boxfs_block_cache_hits_total", "boxfs_block_cache_misses_total"] {
        metrics::counter!(zero).increment(0);
    }
}

pub fn block_hit() {
    metrics::counter!("boxfs_block_cache_hits_total").increment(1);
}

pub fn block_miss() {
    metrics::counter!("boxfs_block_cache_misses_total").increment(1);
}

/// Records the lag of `ev`, just applied (an event without a readable `created_at` is skipped).
pub fn event_applied(ev: &Event) {
    let Some(created) = ev.created_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return;
    };
    let lag = chrono::Utc::now().signed_duration_since(created).to_std().unwrap_or_default();
    metrics::histogram!("boxfs_event_lag_seconds").record(lag.as_secs_f64());
}
