//! The scan service's own metrics, in the shared registry: the queue (jobs by state, the age of
//! the oldest queued one: refreshed by a background job from the jobs table, so every process
//! reports the shared queue), leases the reaper took back (workers that died or hung), and
//! verdicts by kind. Nothing is labelled by org.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sqlx::PgPool;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct State {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabel {
    pub verdict: &'static str,
}

pub struct ScanMetrics {
    pub jobs: Family<State, Gauge>,
    pub oldest_queued: Gauge,
    pub reaped: Counter,
    pub verdicts: Family<VerdictLabel, Counter>,
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
    };
    for state in ["queued", "running"] {
        drop(m.jobs.get_or_create(&State { state }));
    }
    for verdict in coffer_kit::vocab::Verdict::ALL {
        drop(m.verdicts.get_or_create(&VerdictLabel {
            verdict: verdict.as_str(),
        }));
    }
    m
});

pub fn metrics() -> &'static ScanMetrics {
    &METRICS
}

/// Reads the queue through the worker capability and sets the gauges.
pub async fn refresh_queue(pool: &PgPool) -> Result<(), coffer_db::DbError> {
    let mut tx = coffer_db::begin_with_setting(pool, "coffer.lookup_worker", "1").await?;
    let depth = crate::store::queue_depth(&mut tx).await?;
    tx.commit().await?;
    let m = metrics();
    let mut oldest = 0;
    for state in ["queued", "running"] {
        let (count, age) = depth
            .iter()
            .find(|d| d.0 == state)
            .map_or((0, 0), |d| (d.1, d.2));
        m.jobs.get_or_create(&State { state }).set(count);
        if state == "queued" {
            oldest = age;
        }
    }
    m.oldest_queued.set(oldest);
    Ok(())
}
