//! FUSE operations through the `metrics` facade: `boxfs_fuse_operations_total{op}` and
//! `boxfs_fuse_operation_duration_seconds{op}` (histogram), from the request's arrival in the
//! adapter to its reply, whether it is answered inline on the FUSE thread or by a task.
//!
//! Invariant: an [`OpTimer`] is started first thing in each operation and dropped after the
//! reply: at the end of the method for inline answers, at the end of the task (which
//! [`spawn_timed`] and [`spawn_blocking_timed`] make it part of) for the others.

use std::future::Future;
use std::time::Instant;

/// Gives the series their help texts.
pub fn describe() {
    metrics::describe_counter!("boxfs_fuse_operations_total", "FUSE operations answered, by op");
    metrics::describe_histogram!(
        "boxfs_fuse_operation_duration_seconds",
        metrics::Unit::Seconds,
        "FUSE operations from arrival to reply, by op"
    );
}

/// Times one operation; records it when dropped.
pub struct OpTimer {
    op: &'static str,
    started: Instant,
}

impl OpTimer {
    pub fn start(op: &'static str) -> OpTimer {
        OpTimer { op, started: Instant::now() }
    }
}

impl Drop for OpTimer {
    fn drop(&mut self) {
        metrics::counter!("boxfs_fuse_operations_total", "op" => self.op).increment(1);
        metrics::histogram!("boxfs_fuse_operation_duration_seconds", "op" => self.op)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// Spawns `task` (which replies) on `rt`; `op` is recorded once it has finished.
pub fn spawn_timed(rt: &tokio::runtime::Handle, op: OpTimer, task: impl Future<Output = ()> + Send + 'static) {
    rt.spawn(async move {
        task.await;
        drop(op);
    });
}

/// Runs `task` (which replies) on `rt`'s blocking pool; `op` is recorded once it has finished.
pub fn spawn_blocking_timed(rt: &tokio::runtime::Handle, op: OpTimer, task: impl FnOnce() + Send + 'static) {
    rt.spawn_blocking(move || {
        task();
        drop(op);
    });
}
