//! The connection pools' state as metrics: connections in use and idle, and the pool's maximum,
//! by role (`runtime`, `owner`). sqlx keeps these counts; a service's background job copies
//! them into gauges every few seconds ([`pool_metrics`] with `Jobs::every`). sqlx exposes no
//! hook on acquiring, so the time a caller waits for a connection is not measured here.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
    }
});

/// Copies `pool`'s counts into the gauges of `role`.
pub fn record_pool(pool: &PgPool, role: &'static str) {
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
