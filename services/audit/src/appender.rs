//! Group commit per org: appends of one org queue for that org's writer task, which takes
//! everything queued (up to [`MAX_BATCH`]) and appends it in one transaction — one lock, one head
//! read, one INSERT, one commit; or, after the writer's own last commit, one INSERT that checks
//! the head it wrote is still in the chain (`store::append_after`) — then answers each caller. Appends of different orgs run in
//! parallel writers. A caller hears success only after its event is committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use coffer_auditlog::Signer;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use coffer_db::DbError;

use crate::error::AuditError;
use crate::store::{self, NewEvent};

/// The most events one transaction appends.
pub const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<(u64, [u8; 32]), String>>;
/// An org's queue: events and where to answer.
type Queue = mpsc::Sender<(NewEvent, Reply)>;

#[derive(Clone)]
pub struct Appender {
    writers: Arc<Mutex<HashMap<Uuid, Queue>>>,
    pool: PgPool,
    signer: Arc<Signer>,
    every: u64,
    interval: std::time::Duration,
}

impl Appender {
    /// Checkpoints every `every` events of an org, and `interval` after its last event.
    pub fn new(
        pool: PgPool,
        signer: Arc<Signer>,
        every: u64,
        interval: std::time::Duration,
    ) -> Self {
        Appender {
            writers: Arc::default(),
            pool,
            signer,
            every,
            interval,
        }
    }

    fn writer(&self, org: Uuid) -> Queue {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        writers
            .entry(org)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
                tokio::spawn(write(
                    rx,
                    org,
                    self.pool.clone(),
                    self.signer.clone(),
                    (self.every, self.interval),
                ));
                tx
            })
            .clone()
    }

    /// Appends one event and returns its seq and hash once committed.
    pub async fn append(&self, event: NewEvent) -> Result<(u64, [u8; 32]), AuditError> {
        let started = std::time::Instant::now();
        let appended = self.append_untimed(event).await;
        let m = crate::metrics::metrics();
        m.append_seconds.observe(started.elapsed().as_secs_f64());
        let outcome = if appended.is_ok() { "ok" } else { "failed" };
        m.appends
            .get_or_create(&crate::metrics::Outcome { outcome })
            .inc();
        appended
    }

    async fn append_untimed(&self, event: NewEvent) -> Result<(u64, [u8; 32]), AuditError> {
        let (reply, answer) = oneshot::channel();
        self.writer(event.org_id)
            .send((event, reply))
            .await
            .map_err(|_| AuditError::Internal("the org's writer stopped".into()))?;
        answer
            .await
            .map_err(|_| AuditError::Internal("the org's writer stopped".into()))?
            .map_err(AuditError::Batch)
    }
}

/// What an org's writer knows of its chain between batches.
#[derive(Default)]
struct Known {
    /// The head as this writer last committed it; none at first and after a failure.
    head: Option<store::Head>,
    /// Whether another appender (a second replica) wrote since this writer's last commit when it
    /// last looked: then the next batch goes under the lock at once, since a lock-free try would
    /// most likely fail, costing a round trip and an error line in the server's log.
    shared: bool,
}

/// Appends `events` in one transaction: after the head this writer last committed, lock-free
/// (`store::append_after`) while it is still the head, unless the batch reaches a checkpoint or
/// the chain is shared; else under the chain lock after the head it reads. Updates `known`.
async fn append_once(
    pool: &PgPool,
    org: Uuid,
    signer: &Signer,
    every: u64,
    known: &mut Known,
    events: &[NewEvent],
) -> Result<Vec<store::Head>, AuditError> {
    let lock_free = known
        .head
        .filter(|h| !known.shared && !store::reaches_checkpoint(*h, events.len(), every));
    if let Some(head) = lock_free {
        match store::append_after(pool, org, head, events, every).await {
            Ok(Some(out)) => {
                known.head = out.last().copied();
                crate::metrics::batch("lock_free");
                return Ok(out);
            }
            // Another appender went first, or the chain was retired: nothing of it stays.
            Ok(None) | Err(AuditError::Db(DbError::AlreadyExists)) => {
                crate::metrics::batch("refused");
            }
            Err(e) => return Err(e),
        }
    }
    let mut tx = coffer_db::tenant_tx(pool, org).await?;
    let (read, out) = store::append_batch(&mut tx, events, signer, every).await?;
    tx.commit().await?;
    known.shared = known.head.is_some_and(|h| Some(h) != read);
    known.head = out.last().copied();
    crate::metrics::batch("locked");
    Ok(out)
}

async fn write(
    mut rx: mpsc::Receiver<(NewEvent, Reply)>,
    org: Uuid,
    pool: PgPool,
    signer: Arc<Signer>,
    (every, interval): (u64, std::time::Duration),
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(interval.max(std::time::Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: take it, so a timed checkpoint comes an interval after events.
    tick.tick().await;
    // Events appended since the last timed checkpoint.
    let mut unsigned = false;
    let mut known = Known::default();
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => {
                if n == 0 {
                    break;
                }
            }
            _ = tick.tick(), if unsigned => {
                let signed = async {
                    let mut tx = coffer_db::tenant_tx(&pool, org).await?;
                    let at = coffer_kit::timestamp::now_micros();
                    let signed = store::checkpoint_head(&mut tx, &signer, at).await?;
                    tx.commit().await?;
                    crate::metrics::checkpoints_written(u64::from(signed));
                    Ok::<_, AuditError>(())
                }
                .await;
                match signed {
                    Ok(()) => unsigned = false,
                    Err(error) => tracing::warn!(?error, "timed checkpoint failed; will retry"),
                }
                continue;
            }
        }
        unsigned = true;
        let (events, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        crate::metrics::metrics()
            .batch_size
            .observe(events.len() as f64);
        let result = append_once(&pool, org, &signer, every, &mut known, &events).await;
        if result.is_err() {
            known = Known::default();
        }
        match result {
            Ok(out) => {
                let signed = out.iter().filter(|(seq, _)| every > 0 && seq % every == 0);
                crate::metrics::checkpoints_written(signed.count() as u64);
                for (reply, r) in replies.into_iter().zip(out) {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, "audit append failed");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}
