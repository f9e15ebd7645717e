//! What the request-side domain modules share: the pool, storage-signer, the config, the
//! workers' wake-up, the webhook secret sealer, the live-event bus and the NSFW model's version.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::ScanConfig;
use crate::error::ScanServiceError;
use crate::events::Bus;
use crate::peers::Signer;
use crate::webhook::SecretBox;

pub use coffer_db::TenantTx;

#[derive(Clone)]
pub struct Core {
    pub pool: PgPool,
    pub signer: Signer,
    pub config: Arc<ScanConfig>,
    pub wake: Arc<Notify>,
    pub secrets: SecretBox,
    pub bus: Bus,
    /// The NSFW model the workers run (`None`: none is loaded, nothing is classified).
    pub nsfw_model: Option<String>,
    /// The audit log, written as the caller (settings changes).
    pub audit: coffer_kit::audit::AuditLog,
}

impl Core {
    /// A transaction under row-level security for `org`.
    pub async fn tx(&self, org: Uuid) -> Result<TenantTx, ScanServiceError> {
        Ok(coffer_db::tenant_tx(&self.pool, org).await?)
    }

    /// Wakes this process's workers (other processes hear the NOTIFY).
    pub fn wake_workers(&self) {
        self.wake.notify_waiters();
        self.wake.notify_one();
    }
}
