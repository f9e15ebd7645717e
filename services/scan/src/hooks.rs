//! The org's webhook endpoint: set by an owner or admin (an https URL that resolves to public
//! addresses only); its signing secret is shown once and kept sealed. Deliveries: `webhook`.

use coffer_kit::audit::{Action, AuditRefused, Target};
use coffer_mesh::Caller;
use coffer_token::Role;

use crate::deps::Core;
use crate::error::ScanServiceError;
use crate::store;
use crate::webhook::{check_url, new_secret};

/// The endpoint set and its new secret (shown once). No `Debug`: it holds the secret.
pub struct Endpoint {
    pub url: String,
    pub secret: String,
}

/// Sets (or replaces) the org's endpoint with a new secret.
pub async fn set(core: &Core, c: &Caller, url: &str) -> Result<Endpoint, ScanServiceError> {
    if !matches!(c.role, Role::Owner | Role::Admin) {
        return Err(ScanServiceError::Forbidden(
            "only owners and admins set the webhook",
        ));
    }
    let url = check_url(url.trim(), core.config.webhook.allow_loopback_for_tests)
        .map_err(|e| ScanServiceError::invalid("url", e.to_string()))?;
    let secret = new_secret();
    let sealed = core.secrets.seal(c.org_id, secret.as_bytes())?;
    let mut tx = core.tx(c.org_id).await?;
    store::set_webhook(&mut tx, url.as_str(), &sealed).await?;
    // Where the org's verdicts and hashes go is audited before it changes (never the URL).
    audit(core, Action::WebhookSet, c).await?;
    tx.commit().await?;
    Ok(Endpoint {
        url: url.to_string(),
        secret,
    })
}

fn admins_only(c: &Caller) -> Result<(), ScanServiceError> {
    if matches!(c.role, Role::Owner | Role::Admin) {
        Ok(())
    } else {
        Err(ScanServiceError::Forbidden(
            "only owners and admins manage the webhook",
        ))
    }
}

/// The org's endpoint and when it was set (never its secret); NotFound when none.
pub async fn get(
    core: &Core,
    c: &Caller,
) -> Result<(String, time::OffsetDateTime), ScanServiceError> {
    admins_only(c)?;
    let mut tx = core.tx(c.org_id).await?;
    let found = store::webhook_info(&mut tx).await?;
    tx.commit().await?;
    found.ok_or(ScanServiceError::NotFound)
}

/// Removes the org's endpoint; the deliveries not yet made to it are dropped with it.
pub async fn delete(core: &Core, c: &Caller) -> Result<(), ScanServiceError> {
    admins_only(c)?;
    let mut tx = core.tx(c.org_id).await?;
    if store::delete_webhook(&mut tx).await? {
        audit(core, Action::WebhookDelete, c).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Appends `action` on the caller's org to the audit log, as the caller.
async fn audit(core: &Core, action: Action, c: &Caller) -> Result<(), ScanServiceError> {
    core.audit
        .record(action, Target::Org(c.org_id))
        .await
        .map_err(|AuditRefused(s)| ScanServiceError::Downstream(s))
}
