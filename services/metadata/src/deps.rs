//! What the domain modules share: the pool, the peers, the audit log and the config, with the
//! three helpers every action uses (a tenant transaction, its audit event, the org's quota).

use coffer_kit::audit::{Action, AuditLog, AuditRefused, Target};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::MetadataConfig;
use crate::error::MetadataError;
use crate::peers::Peers;

pub use coffer_db::TenantTx;

#[derive(Clone)]
pub struct Core {
    pub pool: PgPool,
    pub peers: Peers,
    pub audit: AuditLog,
    pub config: MetadataConfig,
}

impl Core {
    /// A transaction under row-level security for `org`.
    pub async fn tx(&self, org: Uuid) -> Result<TenantTx, MetadataError> {
        Ok(coffer_db::tenant_tx(&self.pool, org).await?)
    }

    /// Writes the audit event of an action, as the current caller, before the action's success
    /// is committed or returned: if the log cannot take it, the action fails (503) and its
    /// transaction rolls back, so nothing happens unaudited.
    pub async fn audit(&self, action: Action, target: Target) -> Result<(), MetadataError> {
        self.audit
            .record(action, target)
            .await
            .map_err(|AuditRefused(s)| MetadataError::AuditUnavailable(s))
    }

    /// The quota a new org starts with.
    pub fn quota(&self) -> i64 {
        i64::try_from(self.config.default_quota_bytes).unwrap_or(i64::MAX)
    }
}
