//! SQL of the chain: append under a per-org lock, read back in seq order. Every function runs in
//! a transaction whose tenant is set.

use coffer_auditlog::{Event, Signer, event_hash, genesis, unhex};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::AuditError;

/// An event to append: everything but its seq and hashes.
pub struct NewEvent {
    pub org_id: Uuid,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: String,
    pub trace_id: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub org_id: Uuid,
    pub seq: i64,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: String,
    pub trace_id: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl Row {
    pub fn event(&self) -> Event {
        Event {
            org_id: self.org_id,
            seq: self.seq as u64,
            at_us: self.at_us,
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            outcome: self.outcome.clone(),
            request_id: self.request_id.clone(),
            trace_id: self.trace_id.clone(),
        }
    }
}

pub const COLUMNS: &str =
    "org_id, seq, at_us, actor, action, target, outcome, request_id, trace_id, prev_hash, hash";

fn hash32(bytes: &[u8]) -> Result<[u8; 32], AuditError> {
    bytes
        .try_into()
        .map_err(|_| AuditError::Internal("a stored hash is not 32 bytes".into()))
}

/// Appends `e` after the org's head (the caller holds no lock: this takes the org's chain lock
/// for the rest of the transaction), and signs a checkpoint every `every` events.
pub async fn append(
    tx: &mut PgConnection,
    e: NewEvent,
    signer: &Signer,
    every: u64,
) -> Result<(u64, [u8; 32]), AuditError> {
    // Appends of one org wait for each other here; other orgs' appends do not.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))")
        .bind(e.org_id)
        .execute(&mut *tx)
        .await?;
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let (seq, prev) = match head {
        Some((seq, hash)) => (seq as u64 + 1, hash32(&hash)?),
        None => (1, genesis(e.org_id)),
    };
    let event = Event {
        org_id: e.org_id,
        seq,
        at_us: e.at_us,
        actor: e.actor,
        action: e.action,
        target: e.target,
        outcome: e.outcome,
        request_id: e.request_id,
        trace_id: e.trace_id,
    };
    let hash = event_hash(&prev, &event);
    sqlx::query(&format!(
        "INSERT INTO events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(event.org_id)
    .bind(seq as i64)
    .bind(event.at_us)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.target)
    .bind(&event.outcome)
    .bind(&event.request_id)
    .bind(&event.trace_id)
    .bind(&prev[..])
    .bind(&hash[..])
    .execute(&mut *tx)
    .await?;
    if every > 0 && seq % every == 0 {
        let last: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM checkpoints")
            .fetch_one(&mut *tx)
            .await?;
        let c = signer.checkpoint(e.org_id, seq, &hash, event.at_us, last.unwrap_or(0) as u64);
        insert_checkpoint(tx, &c).await?;
    }
    Ok((seq, hash))
}

pub async fn insert_checkpoint(
    tx: &mut PgConnection,
    c: &coffer_auditlog::CheckpointLine,
) -> Result<(), AuditError> {
    let hash = unhex(&c.hash).ok_or_else(|| AuditError::Internal("checkpoint hash".into()))?;
    sqlx::query(
        "INSERT INTO checkpoints (org_id, seq, hash, at_us, prev_checkpoint_seq, key_id, signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(c.org_id)
    .bind(c.seq as i64)
    .bind(&hash[..])
    .bind(c.at_us)
    .bind(c.prev_checkpoint_seq as i64)
    .bind(&c.key_id)
    .bind(&c.signature)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Events after `after` in seq order, at most `limit`.
pub async fn events_after(
    tx: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<Row>, AuditError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Newest first, below `before` (exclusive), optionally one action and not older than `since`.
pub async fn list(
    tx: &mut PgConnection,
    before: Option<i64>,
    action: Option<&str>,
    since_us: Option<i64>,
    limit: i64,
) -> Result<Vec<Row>, AuditError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events
         WHERE ($1::bigint IS NULL OR seq < $1) AND ($2::text IS NULL OR action = $2)
           AND ($3::bigint IS NULL OR at_us >= $3)
         ORDER BY seq DESC LIMIT $4"
    ))
    .bind(before)
    .bind(action)
    .bind(since_us)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

#[derive(Debug, sqlx::FromRow)]
pub struct CheckpointRow {
    pub org_id: Uuid,
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at_us: i64,
    pub prev_checkpoint_seq: i64,
    pub key_id: String,
    pub signature: String,
}

pub async fn checkpoints(tx: &mut PgConnection) -> Result<Vec<CheckpointRow>, AuditError> {
    Ok(sqlx::query_as(
        "SELECT org_id, seq, hash, at_us, prev_checkpoint_seq, key_id, signature
         FROM checkpoints ORDER BY seq",
    )
    .fetch_all(&mut *tx)
    .await?)
}
