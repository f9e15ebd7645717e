//! The auth service's own metrics, in the shared registry: logins that succeeded, logins refused
//! by reason, authentications of the gateway's requests by credential and outcome, and the
//! sessions open across the mesh (a count from the database, which holds no row for the reader).
//! Never labelled by account, org or address.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Why a login did not open a session: `bad_credentials`, `bad_totp`, `throttled`, or
/// `totp_required` (the password was right; the second factor is asked for).
pub const LOGIN_REFUSALS: [&str; 4] = ["bad_credentials", "bad_totp", "throttled", "totp_required"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Authentication {
    /// `session` or `api_key` (`missing` when none was presented).
    pub credential: &'static str,
    /// `ok` or `refused`.
    pub outcome: &'static str,
}

pub struct AuthMetrics {
    pub logins: Counter,
    pub login_failures: Family<coffer_telemetry::Reason, Counter>,
    pub authentications: Family<Authentication, Counter>,
    pub active_sessions: Gauge,
}

static METRICS: LazyLock<AuthMetrics> = LazyLock::new(|| {
    let r = coffer_telemetry::metrics();
    let m = AuthMetrics {
        logins: r.registered(
            "auth_logins",
            "logins that opened a session",
            Counter::default(),
        ),
        login_failures: r.registered(
            "auth_login_failures",
            "logins that did not open a session, by reason",
            Family::default(),
        ),
        authentications: r.registered(
            "auth_authentications",
            "credentials of the gateway's requests checked, by kind and outcome",
            Family::default(),
        ),
        active_sessions: r.registered(
            "auth_active_sessions",
            "sessions neither revoked nor expired, across every org (read every few seconds)",
            Gauge::default(),
        ),
    };
    for reason in LOGIN_REFUSALS {
        drop(m.login_failures.get_or_create(&coffer_telemetry::Reason {
            reason: reason.to_owned(),
        }));
    }
    for credential in ["session", "api_key"] {
        for outcome in ["ok", "refused"] {
            drop(m.authentications.get_or_create(&Authentication {
                credential,
                outcome,
            }));
        }
    }
    m
});

pub fn metrics() -> &'static AuthMetrics {
    &METRICS
}

/// Counts a login refused for `reason` (one of [`LOGIN_REFUSALS`]).
pub fn login_refused(reason: &str) {
    metrics()
        .login_failures
        .get_or_create(&coffer_telemetry::Reason {
            reason: reason.to_owned(),
        })
        .inc();
}

/// Reads the number of active sessions (neither revoked, expired nor idle longer than
/// `idle_secs`: a count only, `active_session_count` runs as the owner) and sets the gauge.
pub async fn refresh_sessions(
    pool: &sqlx::PgPool,
    idle_secs: u64,
) -> Result<usize, coffer_db::DbError> {
    let count: i64 = sqlx::query_scalar("SELECT active_session_count($1)")
        .bind(i64::try_from(idle_secs).unwrap_or(i64::MAX))
        .fetch_one(pool)
        .await?;
    metrics().active_sessions.set(count);
    // A reading is not work done: nothing to log.
    Ok(0)
}
