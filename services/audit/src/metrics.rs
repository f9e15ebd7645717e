//! The audit service's own metrics, in the shared registry: appends by outcome (every file action
//! fails closed on a failed one), the group commit's batch sizes and how each batch was appended, the time a caller waits for its
//! event to be committed, checkpoints written and the newest one's time, and failed verifies.
//! Nothing is labelled by org.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

pub use coffer_telemetry::Outcome;

pub struct AuditMetrics {
    pub appends: Family<Outcome, Counter>,
    pub batch_size: Histogram,
    pub batches: Family<Outcome, Counter>,
    pub append_seconds: Histogram,
    pub checkpoints: Counter,
    pub newest_checkpoint: Gauge,
    pub verify_failures: Counter,
}

static METRICS: LazyLock<AuditMetrics> = LazyLock::new(|| {
    let r = coffer_telemetry::metrics();
    let m = AuditMetrics {
        appends: r.registered(
            "audit_appends",
            "events appended, by outcome (ok: committed; failed: the caller was refused)",
            Family::default(),
        ),
        batch_size: r.registered(
            "audit_append_batch_size",
            "events per group-commit transaction",
            Histogram::new((0..10).map(|i| f64::from(1u32 << i))),
        ),
        batches: r.registered(
            "audit_append_batches",
            "group-commit transactions by how they were appended (lock_free: after the writer's \
             own head in one statement; locked: under the chain lock, as a writer's first batch, \
             one reaching a checkpoint, or while another appender writes; refused: a lock-free \
             try that another appender or a retirement beat, the batch then went locked)",
            Family::default(),
        ),
        append_seconds: r.registered(
            "audit_append_duration_seconds",
            "how long a caller waited for its event to be committed",
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        ),
        checkpoints: r.registered(
            "audit_checkpoints",
            "signed checkpoints written",
            Counter::default(),
        ),
        newest_checkpoint: r.registered(
            "audit_newest_checkpoint_timestamp_seconds",
            "when this process last wrote a checkpoint, unix seconds (0: not yet)",
            Gauge::default(),
        ),
        verify_failures: r.registered(
            "audit_verify_failures",
            "verifies that found a broken chain",
            Counter::default(),
        ),
    };
    // Both outcomes exist from the start: a failure ratio reads 0 before the first failure.
    for outcome in ["ok", "failed"] {
        drop(m.appends.get_or_create(&Outcome { outcome }));
    }
    for outcome in ["lock_free", "locked", "refused"] {
        drop(m.batches.get_or_create(&Outcome { outcome }));
    }
    m
});

pub fn metrics() -> &'static AuditMetrics {
    &METRICS
}

/// Counts `n` checkpoints written now.
pub fn checkpoints_written(n: u64) {
    if n == 0 {
        return;
    }
    let m = metrics();
    m.checkpoints.inc_by(n);
    m.newest_checkpoint
        .set(coffer_kit::timestamp::now_micros() / 1_000_000);
}

/// Counts one batch appended (or a lock-free try refused) as `outcome`.
pub fn batch(outcome: &'static str) {
    metrics().batches.get_or_create(&Outcome { outcome }).inc();
}
