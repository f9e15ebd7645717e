//! Members of an org: owners and admins add them (as members or admins), in the caller's org.

use coffer_kit::audit::{Action, Target};
use coffer_mesh::Caller;
use coffer_token::Role;
use uuid::Uuid;

use crate::accounts::normalize_email;
use crate::deps::Core;
use crate::error::AuthError;
use crate::store;

/// Adds a member with a first password; returns the new user's id.
pub async fn add(
    core: &Core,
    c: &Caller,
    email: &str,
    password: String,
    role: &str,
) -> Result<Uuid, AuthError> {
    if !c.role.is_admin() {
        return Err(AuthError::Forbidden("only owners and admins add members"));
    }
    let role = match role {
        "member" => Role::Member,
        "admin" => Role::Admin,
        _ => return Err(AuthError::invalid("role", "role must be member or admin")),
    };
    let email = normalize_email(email)?;
    core.hasher.check_policy(&password, &email)?;
    let hash = core.hasher.hash(password).await?;
    // The org is the caller's, from the verified token: never from the request.
    let mut tx = core.tx(c.org_id).await?;
    let user_id = store::add_member(&mut tx, &email, &hash, role)
        .await
        .map_err(|e| match e {
            coffer_db::DbError::AlreadyExists => {
                AuthError::AlreadyExists("an account with this email")
            }
            other => other.into(),
        })?;
    core.audit(Action::MemberAdd, Target::User(user_id)).await?;
    tx.commit().await?;
    Ok(user_id)
}
