//! Retention after an org purge: an org whose last event is `org.purge`, older than the
//! retention time, loses its chain — deleted as the schema owner, which the append-only trigger
//! allows only for the org named in `coffer.retention_purge` — and leaves a tombstone (event
//! count, head hash, purge time) in `retired_chains`. An org with events after its `org.purge`
//! (restored, say) is left alone. See migration 0002.

use coffer_kit::audit::Action;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AuditError;

/// Removes the chains that are due; returns how many orgs' logs were removed.
pub async fn sweep(owner: &PgPool, retention_secs: u64, now_us: i64) -> Result<usize, AuditError> {
    let retention_us = i64::try_from(retention_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000);
    let cutoff = now_us.saturating_sub(retention_us);
    let mut tx = coffer_db::begin_with_setting(owner, "coffer.lookup_retention", "1").await?;
    let candidates: Vec<(Uuid,)> =
        sqlx::query_as("SELECT DISTINCT org_id FROM events WHERE action = $2 AND at_us <= $1")
            .bind(cutoff)
            .bind(Action::OrgPurge.as_str())
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    let mut removed = 0;
    for (org,) in candidates {
        if retire(owner, org, cutoff).await? {
            tracing::info!(%org, "removed a purged org's audit log after its retention time");
            removed += 1;
        }
    }
    Ok(removed)
}

async fn retire(owner: &PgPool, org: Uuid, cutoff: i64) -> Result<bool, AuditError> {
    let mut tx = coffer_db::tenant_tx(owner, org).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))")
        .bind(org)
        .execute(&mut *tx)
        .await?;
    let head: Option<(i64, String, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, action, at_us, hash FROM events WHERE org_id = $1
             ORDER BY seq DESC LIMIT 1",
    )
    .bind(org)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((count, action, at_us, hash)) = head else {
        return Ok(false);
    };
    if Action::parse(&action) != Some(Action::OrgPurge) || at_us > cutoff {
        return Ok(false);
    }
    coffer_db::set_local(&mut tx, "coffer.retention_purge", &org.to_string()).await?;
    sqlx::query("INSERT INTO retired_chains (org_id, events, head_hash, purged_at_us) VALUES ($1, $2, $3, $4)")
        .bind(org)
        .bind(count)
        .bind(&hash)
        .bind(at_us)
        .execute(&mut *tx)
        .await?;
    // The org named as well as set: see `store` on the planner and the two policies.
    sqlx::query("DELETE FROM checkpoints WHERE org_id = $1")
        .bind(org)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM events WHERE org_id = $1")
        .bind(org)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use coffer_kit::audit::Action;

    /// Auth writes the kit's `OrgPurge`; the retention job looks for it through this policy. The
    /// policy is SQL, so it names the value: the two must stay the same string.
    #[test]
    fn the_retention_policy_looks_for_the_action_auth_writes() {
        let migration = include_str!("../migrations/0002_retention.sql");
        let policy = migration
            .split("CREATE POLICY retention_lookup")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .expect("the retention lookup policy");
        assert!(
            policy.contains(&format!("action = '{}'", Action::OrgPurge.as_str())),
            "{policy}"
        );
    }
}
