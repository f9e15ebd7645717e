//! The org's scan settings: the NSFW policy and thresholds. Any member may read them (they decide
//! what happens to the member's uploads); owners and admins change them.

use coffer_kit::audit::{Action, AuditRefused, Target};
use coffer_mesh::Caller;
use coffer_token::Role;

use crate::deps::Core;
use crate::engines::nsfw::{NsfwPolicy, NsfwSettings, Thresholds};
use crate::error::ScanServiceError;
use crate::store;

/// The org's settings, or the service's defaults when it never chose.
pub async fn get(core: &Core, c: &Caller) -> Result<NsfwSettings, ScanServiceError> {
    let mut tx = core.tx(c.org_id).await?;
    let set = store::nsfw_settings(&mut tx).await?;
    tx.commit().await?;
    Ok(set.unwrap_or_else(|| core.config.nsfw.defaults()))
}

/// Sets the org's settings (owners and admins), audited (`org.settings_update`) before it is
/// committed: a change the log cannot take does not happen. A policy change applies to the scans
/// that follow (and to an `nsfw` verdict not yet recorded); files already decided keep their
/// state.
pub async fn set(
    core: &Core,
    c: &Caller,
    policy: &str,
    thresholds: Thresholds,
) -> Result<NsfwSettings, ScanServiceError> {
    if !matches!(c.role, Role::Owner | Role::Admin) {
        return Err(ScanServiceError::Forbidden(
            "only owners and admins change the org's settings",
        ));
    }
    let policy = NsfwPolicy::parse(policy).ok_or_else(|| {
        ScanServiceError::invalid("nsfw_policy", "nsfw_policy must be off, flag or quarantine")
    })?;
    thresholds.check().map_err(|class| {
        ScanServiceError::invalid(
            "nsfw_thresholds",
            format!("nsfw_thresholds.{class} must be a number above 0 and at most 1"),
        )
    })?;
    let settings = NsfwSettings { policy, thresholds };
    let mut tx = core.tx(c.org_id).await?;
    store::set_nsfw_settings(&mut tx, &settings).await?;
    core.audit
        .record(Action::OrgSettingsUpdate, Target::Org(c.org_id))
        .await
        .map_err(|AuditRefused(s)| ScanServiceError::Downstream(s))?;
    tx.commit().await?;
    Ok(settings)
}
