//! Members of an org: owners and admins add them (as members or admins), list and remove them, in
//! the caller's org.

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

/// The caller's org's members (owners and admins only).
pub async fn list(core: &Core, c: &Caller) -> Result<Vec<store::MemberRow>, AuthError> {
    if !c.role.is_admin() {
        return Err(AuthError::Forbidden(
            "only owners and admins see the members",
        ));
    }
    let mut tx = core.tx(c.org_id).await?;
    let rows = store::list_members(&mut tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Removes a member of the caller's org: the account goes, and with it every session and API key
/// (refused on their next request). Owners remove anyone but the last owner; admins remove
/// members and admins. Another org's user is not found.
pub async fn remove(core: &Core, c: &Caller, user_id: &str) -> Result<(), AuthError> {
    if !c.role.is_admin() {
        return Err(AuthError::Forbidden(
            "only owners and admins remove members",
        ));
    }
    let user_id = Uuid::try_parse(user_id).map_err(|_| AuthError::NotFound)?;
    let mut tx = core.tx(c.org_id).await?;
    // Locked first: two owners removing each other at once cannot leave the org without one.
    let owners = store::lock_owners(&mut tx).await?;
    let role = store::role_of(&mut tx, user_id)
        .await?
        .ok_or(AuthError::NotFound)?;
    if role == Role::Owner {
        if c.role != Role::Owner {
            return Err(AuthError::Forbidden("only owners remove an owner"));
        }
        if owners.len() <= 1 {
            return Err(AuthError::Conflict("the last owner cannot be removed"));
        }
    }
    if !store::delete_user(&mut tx, user_id).await? {
        return Err(AuthError::NotFound);
    }
    core.audit(Action::MemberRemove, Target::User(user_id))
        .await?;
    tx.commit().await?;
    Ok(())
}
