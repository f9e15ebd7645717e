//! The org purge. Once a deleted org's window has passed, everything of it goes, in an order
//! that never strands an object: `org.purge` into the org's audit log; then metadata (every
//! object under the org's prefix, then its rows) and scan (scan-only objects, then jobs, results,
//! webhook, deliveries), each called until it says done, with a service token auth mints for the
//! org; and only then auth's own rows. Auth forgets the org last because it is what makes the
//! credentials to delete the org's objects: a purge stopped half-way is taken up again on the
//! next run, and every step is safe to repeat. The audit log keeps the org's chain until its
//! retention (the audit service's own job).
//!
//! Without a metadata or a scan peer nothing is purged (the org stays disabled): deleting auth's
//! rows first would strand what the other service holds.

use std::sync::Arc;
use std::time::Duration;

use coffer_kit::audit::{Action, AuditLog, Outcome, Target};
use coffer_mesh::{CallContext, MeshChannel};
use coffer_proto::v1::metadata_client::MetadataClient;
use coffer_proto::v1::scan_client::ScanClient;
use coffer_proto::v1::{self as pb};
use coffer_token::{Audience, Credential, Minter, Role, Scopes, Subject};
use uuid::Uuid;

/// Calls per service and org in one run at most (each deletes up to 1,000 objects); an org with
/// more is taken up again on the next run.
const CALLS_PER_RUN: usize = 1000;

/// How long one purge call may take before it is given up (and tried again on the next run).
const CALL_DEADLINE: Duration = Duration::from_secs(60);

/// Why one org's purge stopped; it is tried again on the next run.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("the audit log did not take org.purge: {0:?}")]
    Audit(tonic::Code),
    #[error("{service} did not purge: {code:?}")]
    Peer {
        service: &'static str,
        code: tonic::Code,
    },
    #[error("{service} has more left after {CALLS_PER_RUN} calls")]
    Unfinished { service: &'static str },
    #[error("minting the purge token: {0}")]
    Token(coffer_token::TokenError),
    #[error(transparent)]
    Db(#[from] coffer_db::DbError),
}

/// What the purge job needs.
#[derive(Clone)]
pub struct Purger {
    pub pool: sqlx::PgPool,
    pub audit: AuditLog,
    pub metadata: Option<MetadataClient<MeshChannel>>,
    pub scan: Option<ScanClient<MeshChannel>>,
    pub minter: Arc<Minter>,
    pub token_ttl_secs: i64,
}

impl Purger {
    /// Runs every `every` among the service's background jobs.
    pub fn schedule(self, jobs: &mut coffer_mesh::Jobs, every: Duration) {
        if self.metadata.is_none() || self.scan.is_none() {
            tracing::error!(
                "no metadata or scan peer: deleted orgs are not purged (their data would be stranded)"
            );
        }
        jobs.every("org purge", every, move || {
            let purger = self.clone();
            async move { Ok::<_, std::convert::Infallible>(purger.run_once().await) }
        });
    }

    /// Purges every org that is due; returns how many were purged completely.
    pub async fn run_once(&self) -> usize {
        let due = match crate::store::due_orgs(&self.pool).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "org purge failed; will retry");
                return 0;
            }
        };
        let mut purged = 0;
        for (org, started) in due {
            match self.purge(org, started).await {
                Ok(true) => {
                    tracing::info!(%org, "purged a deleted org");
                    purged += 1;
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(%org, %error, "org purge stopped; will retry"),
            }
        }
        purged
    }

    async fn purge(&self, org: Uuid, started: bool) -> Result<bool, PurgeError> {
        let (Some(metadata), Some(scan)) = (&self.metadata, &self.scan) else {
            return Ok(false);
        };
        if !started {
            self.audit
                .record_system(org, Action::OrgPurge, Target::Org(org), Outcome::Success)
                .await
                .map_err(|refused| PurgeError::Audit(refused.0.code()))?;
            let mut tx = coffer_db::tenant_tx(&self.pool, org).await?;
            crate::store::purge_started(&mut tx).await?;
            tx.commit().await?;
        }
        self.until_done("metadata", org, |ctx| {
            let mut client = metadata.clone();
            ctx.scope(async move {
                client
                    .purge_org(pb::PurgeOrgRequest {})
                    .await
                    .map(|r| r.into_inner().done)
            })
        })
        .await?;
        self.until_done("scan", org, |ctx| {
            let mut client = scan.clone();
            ctx.scope(async move {
                client
                    .purge_org(pb::PurgeOrgRequest {})
                    .await
                    .map(|r| r.into_inner().done)
            })
        })
        .await?;
        Ok(crate::store::purge_org(&self.pool, org).await?)
    }

    /// Calls `call` (with a fresh purge token each time) until it says done.
    async fn until_done<F, Fut>(
        &self,
        service: &'static str,
        org: Uuid,
        call: F,
    ) -> Result<(), PurgeError>
    where
        F: Fn(CallContext) -> Fut,
        Fut: Future<Output = Result<bool, tonic::Status>>,
    {
        for _ in 0..CALLS_PER_RUN {
            let done = call(self.context(org)?)
                .await
                .map_err(|s| PurgeError::Peer {
                    service,
                    code: s.code(),
                })?;
            if done {
                return Ok(());
            }
        }
        Err(PurgeError::Unfinished { service })
    }

    /// A service token of `org` for metadata, scan and storage-signer (the nil user, no scopes):
    /// useless at any RPC that acts for a user.
    fn context(&self, org: Uuid) -> Result<CallContext, PurgeError> {
        let request_id = format!("purge-{}", Uuid::new_v4().simple());
        let token = self
            .minter
            .mint(
                &Subject {
                    user_id: Uuid::nil(),
                    org_id: org,
                    role: Role::Member,
                    scopes: Scopes::NONE,
                    credential: Credential::Service,
                    request_id: request_id.clone(),
                },
                &[Audience::Metadata, Audience::Scan, Audience::StorageSigner],
                coffer_token::unix_now(),
                self.token_ttl_secs,
            )
            .map_err(PurgeError::Token)?;
        Ok(CallContext {
            token: Some(token.into()),
            request_id: request_id.into(),
            deadline: std::time::Instant::now().checked_add(CALL_DEADLINE),
        })
    }
}
