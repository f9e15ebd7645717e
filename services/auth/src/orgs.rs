//! Org deletion: an owner asks for it (the org is disabled at once and purged after the
//! configured window, see `purge`), and an owner may restore it within the window.

use coffer_kit::audit::{Action, Target};
use coffer_mesh::Caller;
use coffer_token::Role;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::accounts::{self, Presented};
use crate::deps::Core;
use crate::error::AuthError;
use crate::store;

/// Disables the caller's org; returns when it will be purged.
pub async fn request_deletion(core: &Core, c: &Caller) -> Result<OffsetDateTime, AuthError> {
    if c.role != Role::Owner {
        return Err(AuthError::Forbidden("only owners delete an org"));
    }
    core.audit(Action::OrgDelete, Target::Org(c.org_id)).await?;
    let mut tx = core.tx(c.org_id).await?;
    let purge_after = store::request_org_deletion(&mut tx, core.config.org_purge_after_secs)
        .await
        .map_err(|e| match e {
            coffer_db::DbError::Conflict => AuthError::Conflict("deletion is already requested"),
            other => other.into(),
        })?;
    tx.commit().await?;
    Ok(purge_after)
}

/// Restores a disabled org, for its owner's credentials; returns the org's id.
pub async fn restore(core: &Core, p: Presented<'_>) -> Result<Uuid, AuthError> {
    let account = accounts::check_password(core, p, |a| a.role == Role::Owner).await?;
    core.audit_as_user(
        account.org_id,
        account.user_id,
        Action::OrgRestore,
        Target::Org(account.org_id),
    )
    .await?;
    // Not disabled, or already past its purge: nothing to restore, said the same way.
    let mut tx = core.tx(account.org_id).await?;
    store::restore_org(&mut tx)
        .await
        .map_err(|_| AuthError::BadCredentials)?;
    tx.commit().await?;
    Ok(account.org_id)
}
