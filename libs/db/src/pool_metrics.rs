//! The connection pools' state as metrics: connections in use and idle, and the pool's maximum,
//! by role (`runtime`, `owner`). sqlx keeps these counts; a service's background job copies
//! them into gauges every few seconds ([`pool_metrics`] with `Jobs::every`). The wait for a
//! connection is measured where every transaction of the services starts ([`crate::tenant_tx`],
//! [`crate::begin_with_setting`], [`crate::begin`], [`crate::connection`]): sqlx exposes no hook on
//! acquiring, so what is timed is the acquire and the `BEGIN` round trip together, or the acquire
//! alone for a one-statement [`crate::connection`] (`db_begin_duration_seconds`: a millisecond or
//! so when a connection is free, the wait when none is), and the callers waiting in it right now
//! (`db_pool_waiting`).

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use sqlx::PgPool;

/// How often a service copies its pools' counts into the gauges.
pub const POOL_METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Connections {
    role: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Role {
    role: &'static str,
}

struct Gauges {
    connections: Family<Connections, Gauge>,
    max: Family<Role, Gauge>,
    waiting: Gauge,
    begin: Histogram,
}

static GAUGES: LazyLock<Gauges> = LazyLock::new(|| {
    let r = coffer_telemetry::metrics();
    Gauges {
        connections: r.registered(
            "db_pool_connections",
            "database connections of the pool, by role and state (in_use, idle)",
            Family::default(),
        ),
        max: r.registered(
            "db_pool_max_connections",
            "the most connections the pool opens, by role",
            Family::default(),
        ),
        waiting: r.registered(
            "db_pool_waiting",
            "transactions (and one-statement calls) waiting for a connection and their BEGIN right now",
            Gauge::default(),
        ),
        begin: r.registered(
            "db_begin_duration_seconds",
            "time from asking the pool for a connection to the transaction's start (to the connection, for a one-statement call)",
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
        ),
    }
});

/// Registers the pool metrics (so a service exposes them from start-up, before its first
/// transaction: its pool job's first reading does it).
fn register() {
    LazyLock::force(&GAUGES);
}

/// Times `begin` (an acquire and a `BEGIN`) into `db_begin_duration_seconds`, counting it in
/// `db_pool_waiting` while it waits, also when the future is dropped half-way.
pub(crate) async fn timed_begin<T>(begin: impl std::future::Future<Output = T>) -> T {
    struct Waiting(std::time::Instant);
    impl Drop for Waiting {
        fn drop(&mut self) {
            let g = &*GAUGES;
            g.waiting.dec();
            g.begin.observe(self.0.elapsed().as_secs_f64());
        }
    }
    GAUGES.waiting.inc();
    let _waiting = Waiting(std::time::Instant::now());
    begin.await
}

/// Copies `pool`'s counts into the gauges of `role`.
pub fn record_pool(pool: &PgPool, role: &'static str) {
    register();
    let size = i64::from(pool.size());
    let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX).min(size);
    let g = &*GAUGES;
    g.connections
        .get_or_create(&Connections {
            role,
            state: "in_use",
        })
        .set(size - idle);
    g.connections
        .get_or_create(&Connections {
            role,
            state: "idle",
        })
        .set(idle);
    g.max
        .get_or_create(&Role { role })
        .set(i64::from(pool.options().get_max_connections()));
}

/// A background job (for `Jobs::every`, every [`POOL_METRICS_EVERY`]) that keeps `role`'s gauges
/// current; it records once at once, so the gauges exist from start-up.
pub fn pool_metrics(
    pool: PgPool,
    role: &'static str,
) -> impl FnMut() -> std::future::Ready<Result<usize, std::convert::Infallible>> + Send + 'static {
    record_pool(&pool, role);
    move || {
        record_pool(&pool, role);
        std::future::ready(Ok(0))
    }
}
