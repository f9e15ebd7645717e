//! Retention after an org purge: an org whose last event is `org.purge`, older than the
//! retention time, loses its chain — deleted as the schema owner, which the append-only trigger
//! allows only for the org named in `coffer.retention_purge` — and leaves a tombstone (event
//! count, head hash, purge time) in `retired_chains`. An org with events after its `org.purge`
//! (restored, say) is left alone. See migration 0002.

use sqlx::PgPool;

use crate::error::AuditError;
use crate::store;

/// Removes the chains that are due; returns how many orgs' logs were removed.
pub async fn sweep(owner: &PgPool, retention_secs: u64, now_us: i64) -> Result<usize, AuditError> {
    let retention_us = i64::try_from(retention_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000);
    let cutoff = now_us.saturating_sub(retention_us);
    let mut tx = coffer_db::begin_with_setting(owner, "coffer.lookup_retention", "1").await?;
    let candidates = store::retention_candidates(&mut tx, cutoff).await?;
    tx.commit().await?;
    let mut removed = 0;
    for org in candidates {
        let mut tx = coffer_db::tenant_tx(owner, org).await?;
        if store::retire_chain(&mut tx, cutoff).await? {
            tx.commit().await?;
            tracing::info!(%org, "removed a purged org's audit log after its retention time");
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use coffer_kit::audit::Action;

    /// Auth writes the kit's `OrgPurge`; the retention job looks for it through this policy. The
    /// policy is SQL, so it names the value: the two must stay the same string.
    #[test]
    fn the_retention_policy_looks_for_the_action_auth_writes() {
        // 0005 made the policy of 0002 the owner's, with the same condition, in a string of a
        // `format` (so its quotes are doubled).
        let migration = include_str!("../migrations/0005_lookups_that_stay_short.sql");
        let policy = migration
            .split("CREATE POLICY retention_lookup")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .expect("the retention lookup policy");
        assert!(
            policy.contains(&format!("action = ''{}''", Action::OrgPurge.as_str())),
            "{policy}"
        );
    }
}
