//! What the domain modules share: the pool, the audit log, the password hasher, the token minter,
//! the TOTP seed sealer and the config, with the helpers every action uses.

use std::sync::Arc;

use coffer_kit::audit::{Action, AuditLog, Outcome, Target};
use coffer_kit::seal::Sealer;
use coffer_mesh::CallContext;
use coffer_token::{Audience, Minter, Role, Scopes, Subject};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::AuthConfig;
use crate::error::AuthError;
use crate::passwords::Hasher;

pub use coffer_db::TenantTx;

#[derive(Clone)]
pub struct Core {
    pub pool: PgPool,
    pub audit: AuditLog,
    pub hasher: Hasher,
    pub minter: Arc<Minter>,
    pub seeds: Sealer,
    pub config: AuthConfig,
}

impl Core {
    /// A transaction under row-level security for `org`.
    pub async fn tx(&self, org: Uuid) -> Result<TenantTx, AuthError> {
        Ok(coffer_db::tenant_tx(&self.pool, org).await?)
    }

    /// Mints a token for `subject` with a tag per audience, for the configured lifetime.
    pub fn mint(&self, subject: &Subject, audiences: &[Audience]) -> Result<String, AuthError> {
        self.minter
            .mint(
                subject,
                audiences,
                coffer_token::unix_now(),
                self.config.token_ttl_secs,
            )
            .map_err(|_| {
                AuthError::invalid(
                    "request_id",
                    "request id must be 1-64 characters of [A-Za-z0-9._-]",
                )
            })
    }

    /// Appends an audit event as the current caller (the user token the gateway forwarded),
    /// before the action's transaction commits: if the log cannot take it, the action fails
    /// with 503.
    pub async fn audit(&self, action: Action, target: Target) -> Result<(), AuthError> {
        self.audit.record(action, target).await.map_err(|refused| {
            tracing::warn!(%refused, "an action was refused: the audit log did not take it");
            AuthError::AuditUnavailable
        })
    }

    /// Appends an event for a user no request token speaks for yet (a login): auth mints the
    /// user a token with only the audit tag and appends with it.
    pub async fn audit_as_user(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        action: Action,
        target: Target,
    ) -> Result<(), AuthError> {
        let request_id = CallContext::current()
            .map(|c| c.request_id.to_string())
            .filter(|r| !r.is_empty() && r.len() <= 64)
            .unwrap_or_else(|| format!("auth-{}", Uuid::new_v4().simple()));
        let token = self.mint(
            &Subject {
                user_id,
                org_id,
                role: Role::Member,
                scopes: Scopes::NONE,
                credential: coffer_token::Credential::Session,
                request_id: request_id.clone(),
            },
            &[Audience::Audit],
        )?;
        CallContext {
            token: Some(token.into()),
            request_id: request_id.into(),
            deadline: None,
        }
        .scope(self.audit(action, target))
        .await
    }

    /// A failed login of a known account: a system event of auth's, best effort (the login
    /// fails either way).
    pub async fn audit_login_failed(&self, org_id: Uuid, user_id: Uuid) {
        let res = CallContext {
            token: None,
            request_id: "auth-login-failed".into(),
            deadline: None,
        }
        .scope(self.audit.record_system(
            org_id,
            Action::AuthLoginFailed,
            Target::User(user_id),
            Outcome::Failure,
        ))
        .await;
        if let Err(refused) = res {
            tracing::warn!(%refused, "a failed login could not be audited");
        }
    }
}
