//! API keys: created with scopes (never more than their creator holds; the key is shown once),
//! listed (members their own, owners and admins the org's), revoked.

use coffer_kit::audit::{Action, Target};
use coffer_mesh::Caller;
use coffer_token::Scope;
use uuid::Uuid;

use crate::accounts::check_text;
use crate::credentials;
use crate::deps::Core;
use crate::error::AuthError;
use crate::store::{self, ApiKeyRow};

/// A new key: its id and the key itself (shown once, stored only as its hash).
/// No `Debug`: it holds a secret.
pub struct Created {
    pub id: Uuid,
    pub key: String,
}

pub async fn create(
    core: &Core,
    c: &Caller,
    name: &str,
    scope_names: &[String],
) -> Result<Created, AuthError> {
    let name = check_text("name", name, 100)?;
    if scope_names.is_empty() || scope_names.len() > Scope::ALL.len() {
        return Err(AuthError::invalid(
            "scopes",
            "give one or more of files:read, files:write, audit:read, scans:write",
        ));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in scope_names {
        let scope =
            Scope::from_name(s).ok_or_else(|| AuthError::invalid("scopes", "unknown scope"))?;
        // Never more than the caller holds (a session holds every scope; the policy keeps
        // API keys out of here, and this holds whatever the policy becomes).
        if !c.has_scope(scope) {
            return Err(AuthError::Forbidden(
                "a key cannot get a scope its creator lacks",
            ));
        }
        if scopes.iter().any(|x| x == scope.name()) {
            return Err(AuthError::invalid("scopes", "a scope is listed twice"));
        }
        scopes.push(scope.name().to_owned());
    }
    let new = credentials::new_api_key();
    let mut tx = core.tx(c.org_id).await?;
    let id = store::create_api_key(
        &mut tx,
        c.user_id,
        &name,
        &new.prefix,
        &new.secret_hash,
        &scopes,
    )
    .await?;
    core.audit(Action::ApikeyCreate, Target::ApiKey(id)).await?;
    tx.commit().await?;
    Ok(Created { id, key: new.key })
}

/// Members see their own keys; owners and admins every key of the org.
pub async fn list(core: &Core, c: &Caller) -> Result<Vec<ApiKeyRow>, AuthError> {
    let only = (!c.role.is_admin()).then_some(c.user_id);
    let mut tx = core.tx(c.org_id).await?;
    let keys = store::list_api_keys(&mut tx, only).await?;
    tx.commit().await?;
    Ok(keys)
}

/// Revokes a key. Members revoke their own; another member's, another org's or a malformed id
/// are all as absent.
pub async fn revoke(core: &Core, c: &Caller, id: &str) -> Result<(), AuthError> {
    let id = Uuid::parse_str(id).map_err(|_| AuthError::NotFound)?;
    let mut tx = core.tx(c.org_id).await?;
    let only = (!c.role.is_admin()).then_some(c.user_id);
    store::revoke_api_key(&mut tx, id, only).await?;
    core.audit(Action::ApikeyRevoke, Target::ApiKey(id)).await?;
    tx.commit().await?;
    Ok(())
}
