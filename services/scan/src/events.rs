//! Events of finished scans: written with `pg_notify` in the transaction that finishes the job
//! (so an event is sent once, and only for a committed result), fanned out in every scan process
//! by one `LISTEN` connection to the live streams of that org. The same connection wakes idle
//! workers when a job is queued in any process. Events carry ids and verdicts, never names.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::postgres::PgListener;
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::store::{Job, ResultRow, Subject};

const JOBS: &str = "coffer_scan_jobs";
const EVENTS: &str = "coffer_scan_events";

/// An event and the org it belongs to (the org is for routing; the body does not repeat it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub org: Uuid,
    pub event: Event,
}

/// The body of a live event and of a webhook delivery (Standard Webhooks: type, timestamp, data).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub data: serde_json::Value,
}

use coffer_kit::timestamp::rfc3339;
use coffer_kit::vocab::FileStatus;

/// The event of a finished job; a file's says where the verdict took it (`status`: `available`
/// or `quarantined`, which for `nsfw` depends on the org's policy).
pub fn event_of(job: &Job, result: &ResultRow, status: Option<FileStatus>) -> Event {
    let (kind, id_field) = match job.subject {
        Subject::File => ("file.scanned", "file_id"),
        Subject::Scan => ("scan.completed", "scan_id"),
    };
    // `ruleset_version` stays the YARA-X ruleset's, as webhooks have always had it; every
    // engine's is `engines_version` (`rules:…;nsfw:…`).
    let key = &result.ruleset_version;
    let rules = key
        .strip_prefix("rules:")
        .and_then(|r| r.split(';').next())
        .unwrap_or(key);
    let mut data = serde_json::json!({
        id_field: job.subject_id,
        "verdict": result.verdict,
        "engines": result.engines.0,
        "sha256": result.sha256,
        "ruleset_version": rules,
        "engines_version": key,
        "completed_at": rfc3339(result.completed_at),
    });
    if let Some(status) = status {
        data["status"] = status.as_str().into();
    }
    Event {
        kind: kind.to_owned(),
        timestamp: rfc3339(OffsetDateTime::now_utc()),
        data,
    }
}

/// Announces a finished job inside the transaction that finishes it: to live streams, and to the
/// org's webhook outbox when it has an endpoint.
pub async fn publish(
    tx: &mut coffer_db::TenantTx,
    job: &Job,
    result: &ResultRow,
    status: Option<FileStatus>,
    retry_for_secs: u64,
) -> Result<(), sqlx::Error> {
    let envelope = Envelope {
        org: job.org_id,
        event: event_of(job, result, status),
    };
    let body = serde_json::to_value(&envelope.event).unwrap_or_default();
    crate::store::enqueue_delivery(tx, &envelope.event.kind, &body, retry_for_secs).await?;
    let payload = serde_json::to_string(&envelope).unwrap_or_default();
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(EVENTS)
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Wakes idle workers of every scan process once the transaction commits.
pub async fn wake_workers(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(JOBS)
        .execute(tx)
        .await?;
    Ok(())
}

/// The in-process fan-out of events.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Envelope>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Bus {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.tx.subscribe()
    }
}

/// Listens for both channels until the service stops, reconnecting after a failure.
pub fn schedule_listener(
    jobs: &mut coffer_mesh::Jobs,
    pool: sqlx::PgPool,
    wake: Arc<Notify>,
    bus: Bus,
) {
    jobs.spawn("scan event listener", move |mut stop| async move {
        while !stop.is_stopped() {
            tokio::select! {
                result = listen(&pool, &wake, &bus) => {
                    if let Err(error) = result {
                        tracing::warn!(?error, "scan event listener failed; reconnecting");
                    }
                }
                () = stop.stopped() => return,
            }
            // Whatever was missed while away: workers look for work anyway.
            wake.notify_waiters();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stop.stopped() => {}
            }
        }
    });
}

async fn listen(pool: &sqlx::PgPool, wake: &Notify, bus: &Bus) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([JOBS, EVENTS]).await?;
    loop {
        let n = listener.recv().await?;
        if n.channel() == JOBS {
            wake.notify_waiters();
        } else if let Ok(envelope) = serde_json::from_str::<Envelope>(n.payload()) {
            // No subscriber is fine.
            let _ = bus.tx.send(Arc::new(envelope));
        }
    }
}
