//! SQL of the chain: append under a per-org lock, read back in seq order, retire after an org
//! purge. Every function takes a [`TenantTx`] and reads the org from it, but the retention lookup
//! ([`retention_candidates`]), which finds the orgs.

use coffer_auditlog::{Event, Signer, event_hash, genesis, unhex};
use coffer_db::TenantTx;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AuditError;

/// An event to append: everything but its seq and hashes.
#[derive(Clone)]
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

/// The reads of the chain. Each names the org although row-level security already limits rows
/// to it: the planner takes the tenant policy's `current_org()` for no index condition, so
/// without `org_id = $1` each read scanned every event of every org (15 ms per append at 21,000
/// events); and for the owner the retention lookup's policy is OR'ed in. Tests check each plan,
/// and that an append's lookups stay a few pages on a long chain with plans kept from a short one.
pub mod sql {
    /// The org's last event ($1 org).
    pub const HEAD: &str =
        "SELECT seq, hash FROM events WHERE org_id = $1 ORDER BY seq DESC LIMIT 1";
    /// The org's last checkpoint's seq ($1 org).
    pub const LAST_CHECKPOINT: &str = "SELECT max(seq) FROM checkpoints WHERE org_id = $1";
    /// Events after $2 in seq order, at most $3.
    pub const EVENTS_AFTER: &str = "SELECT org_id, seq, at_us, actor, action, target, outcome, request_id, trace_id, prev_hash, hash
         FROM events WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
    /// Newest first below $2, optionally action $3 and not older than $4, at most $5.
    pub const LIST: &str = "SELECT org_id, seq, at_us, actor, action, target, outcome, request_id, trace_id, prev_hash, hash
         FROM events WHERE org_id = $1 AND ($2::bigint IS NULL OR seq < $2)
           AND ($3::text IS NULL OR action = $3) AND ($4::bigint IS NULL OR at_us >= $4)
         ORDER BY seq DESC LIMIT $5";
    /// A batch of one org's events ($1 org, then one array per column), in one statement.
    pub const INSERT_BATCH: &str = "INSERT INTO events (org_id, seq, at_us, actor, action, target, outcome, request_id, trace_id, prev_hash, hash)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::text[], $9::text[], $10::bytea[], $11::bytea[])";
    /// [`INSERT_BATCH`] as a statement of its own, only while the event $12 with hash $13 is in
    /// the chain (the head the appender last wrote): `append_after` (migration 0004) sets the
    /// tenant for the call and checks with `chain_continues` (0003) after it takes the chain lock
    /// shared. Returns how many events it inserted. See [`super::append_after`].
    pub const INSERT_AFTER: &str =
        "SELECT append_after($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    /// Every checkpoint of the org.
    pub const CHECKPOINTS: &str =
        "SELECT org_id, seq, hash, at_us, prev_checkpoint_seq, key_id, signature
         FROM checkpoints WHERE org_id = $1 ORDER BY seq";
}

fn hash32(bytes: &[u8]) -> Result<[u8; 32], AuditError> {
    bytes
        .try_into()
        .map_err(|_| AuditError::Internal("a stored hash is not 32 bytes".into()))
}

/// The org's last event as an appender knows it: its seq and hash.
pub type Head = (u64, [u8; 32]);

/// Appends `batch` (all of one org) after the org's head in order, and signs a checkpoint at every
/// multiple of `every` it passes. Takes the org's chain lock for the rest of the transaction, so
/// appenders in other processes serialise too; one head read and one INSERT for the whole batch.
/// Returns the head it read (none for a new chain) and each event's seq and hash.
pub async fn append_batch(
    tx: &mut TenantTx,
    batch: &[NewEvent],
    signer: &Signer,
    every: u64,
) -> Result<(Option<Head>, Vec<Head>), AuditError> {
    let org_id = tx.org();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    let read = match head(tx).await? {
        Some((seq, hash)) => Some((seq as u64, hash32(&hash)?)),
        None => None,
    };
    let (cols, out, due) = chain(org_id, read.unwrap_or((0, genesis(org_id))), batch, every);
    cols.bind(sqlx::query(sql::INSERT_BATCH).bind(tx.org()))
        .execute(&mut **tx)
        .await?;
    if !due.is_empty() {
        let last: Option<i64> = sqlx::query_scalar(sql::LAST_CHECKPOINT)
            .bind(tx.org())
            .fetch_one(&mut **tx)
            .await?;
        let mut last = last.unwrap_or(0) as u64;
        for (seq, hash, at_us) in due {
            let c = signer.checkpoint(org_id, seq, &hash, at_us, last);
            insert_checkpoint(tx, &c).await?;
            last = seq;
        }
    }
    Ok((read, out))
}

/// Appends `batch` of `org` after `known`, the head this appender itself last committed, in one
/// statement that is its own transaction, without a head read. The statement first takes the
/// chain lock *shared* and then checks, in a snapshot taken after the lock (`chain_continues`),
/// that `known` is still an event of the chain with that hash: a retention that removed the chain
/// meanwhile is seen, and while the shared lock is held neither retention nor [`append_batch`]
/// runs. The primary key (org, seq) refuses a seq another appender took meanwhile (shared holders
/// do not exclude each other). So the chain stays as whole as under the exclusive lock, in one
/// round trip where the locked path takes five, which is most of an append's cost when appends
/// arrive one by one. Returns `None` if the batch would reach a checkpoint (those are signed under
/// the exclusive lock, in order) or `known` is no longer in the chain; an `AlreadyExists` error if
/// another appender went first. Either way nothing of the batch stays, and the caller appends it
/// with [`append_batch`].
pub async fn append_after(
    pool: &PgPool,
    org: Uuid,
    known: Head,
    batch: &[NewEvent],
    every: u64,
) -> Result<Option<Vec<Head>>, AuditError> {
    let (cols, out, due) = chain(org, known, batch, every);
    if !due.is_empty() {
        return Ok(None);
    }
    let mut conn = coffer_db::connection(pool).await?;
    let row = cols
        .bind(sqlx::query(sql::INSERT_AFTER).bind(org))
        .bind(known.0 as i64)
        .bind(&known.1[..])
        .fetch_one(&mut *conn)
        .await?;
    let inserted: i64 = sqlx::Row::try_get(&row, 0)?;
    Ok((inserted == out.len() as i64).then_some(out))
}

/// Whether `n` events after `head` reach a multiple of `every` (a checkpoint to sign).
pub fn reaches_checkpoint(head: Head, n: usize, every: u64) -> bool {
    every > 0 && (head.0 + n as u64) / every > head.0 / every
}

/// A checkpoint due in a batch: its seq, hash and time.
type Due = (u64, [u8; 32], i64);

/// The hash chain of `batch` after `head`: its columns, each event's seq and hash, and the
/// checkpoints due (every multiple of `every`).
fn chain(
    org_id: Uuid,
    head: Head,
    batch: &[NewEvent],
    every: u64,
) -> (Columns, Vec<Head>, Vec<Due>) {
    let (mut seq, mut prev) = head;
    let mut out = Vec::with_capacity(batch.len());
    let mut cols = Columns::default();
    let mut due = Vec::new();
    for e in batch {
        seq += 1;
        let event = Event {
            org_id,
            seq,
            at_us: e.at_us,
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            outcome: e.outcome.clone(),
            request_id: e.request_id.clone(),
            trace_id: e.trace_id.clone(),
        };
        let hash = event_hash(&prev, &event);
        if every > 0 && seq % every == 0 {
            due.push((seq, hash, event.at_us));
        }
        cols.push(event, prev, hash);
        out.push((seq, hash));
        prev = hash;
    }
    (cols, out, due)
}

/// A batch of events as column arrays, for one `INSERT … SELECT FROM UNNEST`.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    at_us: Vec<i64>,
    actor: Vec<String>,
    action: Vec<String>,
    target: Vec<String>,
    outcome: Vec<String>,
    request_id: Vec<String>,
    trace_id: Vec<String>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    /// Binds the column arrays as $2 to $11 of [`sql::INSERT_BATCH`] and [`sql::INSERT_AFTER`].
    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.seq)
            .bind(&self.at_us)
            .bind(&self.actor)
            .bind(&self.action)
            .bind(&self.target)
            .bind(&self.outcome)
            .bind(&self.request_id)
            .bind(&self.trace_id)
            .bind(&self.prev_hash)
            .bind(&self.hash)
    }

    fn push(&mut self, e: Event, prev: [u8; 32], hash: [u8; 32]) {
        self.seq.push(e.seq as i64);
        self.at_us.push(e.at_us);
        self.actor.push(e.actor);
        self.action.push(e.action);
        self.target.push(e.target);
        self.outcome.push(e.outcome);
        self.request_id.push(e.request_id);
        self.trace_id.push(e.trace_id);
        self.prev_hash.push(prev.to_vec());
        self.hash.push(hash.to_vec());
    }
}

/// The org's last event: its seq and hash.
async fn head(tx: &mut TenantTx) -> Result<Option<(i64, Vec<u8>)>, AuditError> {
    Ok(sqlx::query_as(sql::HEAD)
        .bind(tx.org())
        .fetch_optional(&mut **tx)
        .await?)
}

/// Signs the org's head if no checkpoint covers it yet; returns whether it signed one.
pub async fn checkpoint_head(
    tx: &mut TenantTx,
    signer: &Signer,
    at_us: i64,
) -> Result<bool, AuditError> {
    let org_id = tx.org();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    let head = head(tx).await?;
    let Some((seq, hash)) = head else {
        return Ok(false);
    };
    let last: Option<i64> = sqlx::query_scalar(sql::LAST_CHECKPOINT)
        .bind(tx.org())
        .fetch_one(&mut **tx)
        .await?;
    let last = last.unwrap_or(0);
    if last >= seq {
        return Ok(false);
    }
    let c = signer.checkpoint(org_id, seq as u64, &hash32(&hash)?, at_us, last as u64);
    insert_checkpoint(tx, &c).await?;
    Ok(true)
}

pub async fn insert_checkpoint(
    tx: &mut TenantTx,
    c: &coffer_auditlog::CheckpointLine,
) -> Result<(), AuditError> {
    let hash = unhex(&c.hash).ok_or_else(|| AuditError::Internal("checkpoint hash".into()))?;
    if c.org_id != tx.org() {
        return Err(AuditError::Internal("a checkpoint of another org".into()));
    }
    sqlx::query(
        "INSERT INTO checkpoints (org_id, seq, hash, at_us, prev_checkpoint_seq, key_id, signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tx.org())
    .bind(c.seq as i64)
    .bind(&hash[..])
    .bind(c.at_us)
    .bind(c.prev_checkpoint_seq as i64)
    .bind(&c.key_id)
    .bind(&c.signature)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Events after `after` in seq order, at most `limit`.
pub async fn events_after(
    tx: &mut TenantTx,
    after: i64,
    limit: i64,
) -> Result<Vec<Row>, AuditError> {
    Ok(sqlx::query_as(sql::EVENTS_AFTER)
        .bind(tx.org())
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?)
}

/// Newest first, below `before` (exclusive), optionally one action and not older than `since`.
pub async fn list(
    tx: &mut TenantTx,
    before: Option<i64>,
    action: Option<&str>,
    since_us: Option<i64>,
    limit: i64,
) -> Result<Vec<Row>, AuditError> {
    Ok(sqlx::query_as(sql::LIST)
        .bind(tx.org())
        .bind(before)
        .bind(action)
        .bind(since_us)
        .bind(limit)
        .fetch_all(&mut **tx)
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

pub async fn checkpoints(tx: &mut TenantTx) -> Result<Vec<CheckpointRow>, AuditError> {
    Ok(sqlx::query_as(sql::CHECKPOINTS)
        .bind(tx.org())
        .fetch_all(&mut **tx)
        .await?)
}

/// Orgs with an `org.purge` event no newer than `cutoff`, through the retention lookup capability
/// (`coffer.lookup_retention`, which shows only those events).
pub async fn retention_candidates(
    tx: &mut sqlx::PgConnection,
    cutoff: i64,
) -> Result<Vec<Uuid>, AuditError> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT org_id FROM events WHERE action = $2 AND at_us <= $1")
            .bind(cutoff)
            .bind(coffer_kit::audit::Action::OrgPurge.as_str())
            .fetch_all(tx)
            .await?,
    )
}

/// Retires the org's chain if its last event is `org.purge` no newer than `cutoff`: a tombstone
/// (event count, head hash, purge time) in `retired_chains`, then its checkpoints and events
/// deleted (the append-only trigger allows it only for the org named in
/// `coffer.retention_purge`, and only to the schema owner). False, and nothing changed, if the
/// chain is not due (empty, or events after the purge).
pub async fn retire_chain(tx: &mut TenantTx, cutoff: i64) -> Result<bool, AuditError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    let head: Option<(i64, String, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, action, at_us, hash FROM events WHERE org_id = $1
             ORDER BY seq DESC LIMIT 1",
    )
    .bind(tx.org())
    .fetch_optional(&mut **tx)
    .await?;
    let Some((count, action, at_us, hash)) = head else {
        return Ok(false);
    };
    if coffer_kit::audit::Action::parse(&action) != Some(coffer_kit::audit::Action::OrgPurge)
        || at_us > cutoff
    {
        return Ok(false);
    }
    let org = tx.org().to_string();
    coffer_db::set_local(tx, "coffer.retention_purge", &org).await?;
    sqlx::query("INSERT INTO retired_chains (org_id, events, head_hash, purged_at_us) VALUES ($1, $2, $3, $4)")
        .bind(tx.org())
        .bind(count)
        .bind(&hash)
        .bind(at_us)
        .execute(&mut **tx)
        .await?;
    // The org named as well as set: see `sql` on the planner and the two policies.
    sqlx::query("DELETE FROM checkpoints WHERE org_id = $1")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM events WHERE org_id = $1")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reaches_a_checkpoint_when_it_passes_a_multiple_of_every() {
        let h = |seq| (seq, [0u8; 32]);
        assert!(reaches_checkpoint(h(9), 1, 10));
        assert!(reaches_checkpoint(h(0), 10, 10));
        assert!(reaches_checkpoint(h(5), 100, 10));
        assert!(!reaches_checkpoint(h(10), 9, 10));
        assert!(!reaches_checkpoint(h(0), 9, 10));
        assert!(!reaches_checkpoint(h(123), 1000, 0), "every = 0 signs none");
    }
}
