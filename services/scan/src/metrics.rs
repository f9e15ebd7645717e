//! The scan service's own metrics, in the shared registry: the queue (jobs by state, the age of
//! the oldest queued one: refreshed by the worker's background job from the jobs table, so every
//! process reports the shared queue), jobs claimed and what came of each try, leases the reaper took back
//! (workers that died or hung), the engines' time and the bytes they read, clamd's errors, verdicts
//! by kind, and webhook deliveries (by outcome, and the age of the oldest one still owed).
//! Nothing is labelled by org.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct State {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabel {
    pub verdict: &'static str,
}

pub use coffer_telemetry::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EngineLabel {
    pub engine: &'static str,
}

/// What a try of a job came to: a verdict recorded and carried out, put back for a retry after an
/// error, or its lease lost to another worker.
pub const TRY_OUTCOMES: [&str; 3] = ["done", "retry", "lease_lost"];
/// The engines' timed stages: one streaming pass (YARA-X, the sensitive-data patterns and the
/// true-type check read the file once together), the archive walk, each image the NSFW engine
/// classifies, clamd, and the whole engine child (its start, containment, every engine but clamd).
pub const ENGINE_STAGES: [&str; 5] = ["stream", "archive", "nsfw", "clamav", "sandbox"];
/// Why an engine child gave no report (each is a failed try): it crashed, hit its CPU or disk
/// limit, timed out, could not contain itself, reported a scan error, wrote a report that is not
/// valid, or could not start (or refused its request).
pub const CHILD_FAILURES: [&str; 7] = [
    "crashed",
    "limit",
    "timeout",
    "not_contained",
    "scan_error",
    "bad_report",
    "start",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}
/// A webhook delivery try: taken by the receiver (2xx), or not (any other answer, a timeout, a
/// refused address).
pub const DELIVERY_OUTCOMES: [&str; 2] = ["delivered", "failed"];

pub struct ScanMetrics {
    pub jobs: Family<State, Gauge>,
    pub oldest_queued: Gauge,
    pub reaped: Counter,
    pub verdicts: Family<VerdictLabel, Counter>,
    pub claimed: Counter,
    pub tries: Family<Outcome, Counter>,
    pub engine_duration: Family<EngineLabel, Histogram>,
    pub bytes: Counter,
    pub clamd_errors: Counter,
    pub child_failures: Family<Reason, Counter>,
    pub deliveries: Family<Outcome, Counter>,
    pub oldest_undelivered: Gauge,
}

static METRICS: LazyLock<ScanMetrics> = LazyLock::new(|| {
    let r = coffer_telemetry::metrics();
    let m = ScanMetrics {
        jobs: r.registered(
            "scan_jobs",
            "scan jobs in the queue, by state (the shared queue, as this process last read it)",
            Family::default(),
        ),
        oldest_queued: r.registered(
            "scan_oldest_queued_job_age_seconds",
            "how long the oldest queued scan job has waited (0: none queued)",
            Gauge::default(),
        ),
        reaped: r.registered(
            "scan_leases_reaped",
            "running jobs whose lease expired, returned to the queue by the reaper",
            Counter::default(),
        ),
        verdicts: r.registered(
            "scan_verdicts",
            "scan results recorded, by verdict",
            Family::default(),
        ),
        claimed: r.registered(
            "scan_jobs_claimed",
            "scan jobs this process took from the queue (each try counts)",
            Counter::default(),
        ),
        tries: r.registered(
            "scan_job_tries",
            "tries of scan jobs, by outcome (done, retry: the engines failed, wait: a dependency did, lease_lost)",
            Family::default(),
        ),
        engine_duration: r.registered(
            "scan_engine_duration_seconds",
            "time an engine stage took on one file (stream, archive, clamav)",
            Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0])
            }),
        ),
        bytes: r.registered(
            "scan_bytes",
            "bytes of uploaded objects the engines read",
            Counter::default(),
        ),
        clamd_errors: r.registered(
            "scan_clamd_errors",
            "clamd scans that failed (no answer, a broken stream, an error reply)",
            Counter::default(),
        ),
        child_failures: r.registered(
            "scan_engine_child_failures",
            "engine children that gave no report, by reason (crashed, limit, timeout, \
             not_contained, scan_error, bad_report, start)",
            Family::default(),
        ),
        deliveries: r.registered(
            "scan_webhook_deliveries",
            "webhook delivery tries, by outcome (delivered, failed)",
            Family::default(),
        ),
        oldest_undelivered: r.registered(
            "scan_webhook_oldest_undelivered_age_seconds",
            "how long the oldest webhook event still owed has waited (0: none)",
            Gauge::default(),
        ),
    };
    for state in ["queued", "running"] {
        drop(m.jobs.get_or_create(&State { state }));
    }
    for verdict in coffer_kit::vocab::Verdict::ALL {
        drop(m.verdicts.get_or_create(&VerdictLabel {
            verdict: verdict.as_str(),
        }));
    }
    for outcome in TRY_OUTCOMES {
        drop(m.tries.get_or_create(&Outcome { outcome }));
    }
    for engine in ENGINE_STAGES {
        drop(m.engine_duration.get_or_create(&EngineLabel { engine }));
    }
    for reason in CHILD_FAILURES {
        drop(m.child_failures.get_or_create(&Reason { reason }));
    }
    for outcome in DELIVERY_OUTCOMES {
        drop(m.deliveries.get_or_create(&Outcome { outcome }));
    }
    m
});

impl ScanMetrics {
    pub fn tried(&self, outcome: &'static str) {
        self.tries.get_or_create(&Outcome { outcome }).inc();
    }

    pub fn engine_took(&self, engine: &'static str, took: std::time::Duration) {
        self.engine_duration
            .get_or_create(&EngineLabel { engine })
            .observe(took.as_secs_f64());
    }

    pub fn engine_took_secs(&self, engine: &'static str, secs: f64) {
        self.engine_duration
            .get_or_create(&EngineLabel { engine })
            .observe(secs);
    }

    pub fn contained_failure(&self, reason: &'static str) {
        self.child_failures.get_or_create(&Reason { reason }).inc();
    }

    pub fn delivery(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.deliveries.get_or_create(&Outcome { outcome }).inc();
    }
}

pub fn metrics() -> &'static ScanMetrics {
    &METRICS
}
