//! Sessions and tokens: a login opens a session; every request's session or API key is
//! resolved to a short-lived user token for the audiences it needs; services get service tokens
//! for system work; a logout ends a session.

use coffer_kit::audit::{Action, Target};
use coffer_mesh::Caller;
use coffer_token::{Audience, Role, Scope, Scopes, Subject};
use uuid::Uuid;

use crate::accounts::{self, Presented};
use crate::credentials;
use crate::deps::Core;
use crate::error::AuthError;
use crate::store::{self, Principal};

/// A new session: its id (the cookie's value, never stored) and who it is for.
/// No `Debug`: it holds a secret.
pub struct Session {
    pub id: String,
    pub principal: Principal,
}

/// Checks the credentials and opens a session; the login is in the audit log before the
/// session exists.
pub async fn login(core: &Core, p: Presented<'_>) -> Result<Session, AuthError> {
    let account = accounts::check_password(core, p, |a| !a.org_disabled).await?;
    crate::metrics::metrics().logins.inc();
    let (session_id, hash) = credentials::new_session();
    let mut tx = core.tx(account.org_id).await?;
    store::create_session(
        &mut tx,
        account.user_id,
        &hash,
        core.config.session_absolute_secs,
    )
    .await?;
    core.audit_as_user(
        account.org_id,
        account.user_id,
        Action::AuthLogin,
        Target::User(account.user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(Session {
        id: session_id,
        principal: Principal {
            user_id: account.user_id,
            org_id: account.org_id,
            role: account.role,
            scopes: None,
            api_key_id: None,
        },
    })
}

/// The credential a request presents. No `Debug`: it holds a secret.
pub enum Credential<'a> {
    Session(&'a str),
    ApiKey(&'a str),
    Missing,
}

/// A verified request: the token for its audiences, who it is and what it may do.
/// No `Debug`: it holds a secret.
pub struct Authenticated {
    pub token: String,
    pub principal: Principal,
    pub scopes: Scopes,
}

fn audiences(names: &[String]) -> Result<Vec<Audience>, AuthError> {
    let audiences = names
        .iter()
        .map(|a| {
            Audience::from_name(a)
                .ok_or_else(|| AuthError::invalid("audiences", "unknown audience"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if audiences.is_empty() {
        return Err(AuthError::invalid(
            "audiences",
            "at least one audience is required",
        ));
    }
    Ok(audiences)
}

/// Resolves a session or API key to a user token for `audience_names`. A `recheck` (of a
/// long-lived stream) does not count as activity for the idle timeout.
pub async fn authenticate(
    core: &Core,
    credential: Credential<'_>,
    audience_names: &[String],
    request_id: &str,
    recheck: bool,
) -> Result<Authenticated, AuthError> {
    let audiences = audiences(audience_names)?;
    let kind = match credential {
        Credential::Session(_) => "session",
        Credential::ApiKey(_) => "api_key",
        Credential::Missing => "missing",
    };
    let principal = match credential {
        Credential::Session(id) => match credentials::session_hash(id) {
            Some(hash) => {
                store::resolve_session(&core.pool, &hash, core.config.session_idle_secs, !recheck)
                    .await?
            }
            None => None,
        },
        Credential::ApiKey(key) => match credentials::parse_api_key(key) {
            Some((prefix, hash)) => store::resolve_api_key(&core.pool, &prefix, &hash).await?,
            None => None,
        },
        Credential::Missing => None,
    };
    crate::metrics::metrics()
        .authentications
        .get_or_create(&crate::metrics::Authentication {
            credential: kind,
            outcome: if principal.is_some() { "ok" } else { "refused" },
        })
        .inc();
    let principal = principal.ok_or(AuthError::BadCredentials)?;
    let scopes = match &principal.scopes {
        None => Scopes::all(),
        Some(names) => names.iter().filter_map(|n| Scope::from_name(n)).collect(),
    };
    let subject = Subject {
        user_id: principal.user_id,
        org_id: principal.org_id,
        role: principal.role,
        scopes,
        credential: match principal.api_key_id {
            Some(id) => coffer_token::Credential::ApiKey(id),
            None => coffer_token::Credential::Session,
        },
        request_id: request_id.to_owned(),
    };
    let token = core.mint(&subject, &audiences)?;
    Ok(Authenticated {
        token,
        principal,
        scopes,
    })
}

/// A service token of an active org for system work (storage-signer and audit only).
pub async fn service_token(
    core: &Core,
    org: &str,
    audience_names: &[String],
    request_id: &str,
) -> Result<String, AuthError> {
    let org_id =
        Uuid::try_parse(org).map_err(|_| AuthError::invalid("org_id", "org_id must be a UUID"))?;
    // Only the audiences that serve system work: never a user-facing one.
    let audiences = audience_names
        .iter()
        .map(|a| match Audience::from_name(a) {
            Some(a @ (Audience::StorageSigner | Audience::Audit)) => Ok(a),
            _ => Err(AuthError::invalid(
                "audiences",
                "service tokens are for storage-signer and audit only",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if audiences.is_empty() {
        return Err(AuthError::invalid(
            "audiences",
            "at least one audience is required",
        ));
    }
    let mut tx = core.tx(org_id).await?;
    if !store::org_active(&mut tx).await? {
        return Err(AuthError::NotFound);
    }
    tx.commit().await?;
    let subject = Subject {
        user_id: Uuid::nil(),
        org_id,
        role: Role::Member,
        scopes: Scopes::NONE,
        credential: coffer_token::Credential::Service,
        request_id: request_id.to_owned(),
    };
    core.mint(&subject, &audiences)
}

/// Ends the caller's session `session_id` (another user's is left alone).
pub async fn logout(core: &Core, c: &Caller, session_id: &str) -> Result<(), AuthError> {
    if let Some(hash) = credentials::session_hash(session_id) {
        let mut tx = core.tx(c.org_id).await?;
        store::revoke_session(&mut tx, c.user_id, &hash).await?;
        tx.commit().await?;
    }
    Ok(())
}
