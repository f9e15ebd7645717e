//! Accounts: sign-up (a new org and its owner), the password check every login goes through
//! (throttled, with the second factor), who the caller is, and TOTP enrolment.

use coffer_kit::audit::{Action, Target};
use coffer_mesh::Caller;
use uuid::Uuid;

use crate::credentials;
use crate::deps::Core;
use crate::error::AuthError;
use crate::store::{self, LoginAccount, MeRow};
use crate::throttle;
use crate::totp;

/// Normalises and checks an email address: trimmed, lowercase, one `@`, a dotted domain, no
/// spaces or control characters, at most 254 bytes.
pub fn normalize_email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim().to_lowercase();
    let invalid = || AuthError::invalid("email", "email is not a valid address");
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(invalid());
    }
    Ok(email)
}

/// A required one-line text of at most `max_chars`, trimmed.
pub fn check_text(field: &'static str, value: &str, max_chars: usize) -> Result<String, AuthError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AuthError::invalid(field, format!("{field} is required")));
    }
    if v.chars().count() > max_chars {
        return Err(AuthError::invalid(
            field,
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    // As file names: nothing that hides, or shows as nothing (`invoice\u{202E}` in an org name).
    if let Some(why) = coffer_kit::text::unfit_name(v) {
        return Err(AuthError::invalid(field, format!("{field} {why}")));
    }
    Ok(v.to_owned())
}

/// Creates an org and its owner; returns `(user_id, org_id)`.
pub async fn signup(
    core: &Core,
    org_name: &str,
    email: &str,
    password: String,
) -> Result<(Uuid, Uuid), AuthError> {
    let org_name = check_text("org_name", org_name, 200)?;
    let email = normalize_email(email)?;
    core.hasher.check_policy(&password, &email)?;
    let hash = core.hasher.hash(password).await?;
    store::signup(&core.pool, &org_name, &email, &hash)
        .await
        .map_err(|e| match e {
            coffer_db::DbError::AlreadyExists => {
                AuthError::AlreadyExists("an account with this email")
            }
            other => other.into(),
        })
}

/// What a login (or an owner's restore) presents.
/// No `Debug`: it holds a password.
pub struct Presented<'a> {
    pub email: &'a str,
    pub password: String,
    pub totp_code: &'a str,
    pub client_addr: &'a str,
}

/// The login throttle's limits, from `[auth]`.
fn throttle_limits(core: &Core) -> throttle::Limits {
    throttle::Limits {
        account_threshold: core.config.login_account_threshold,
        address_threshold: core.config.login_address_threshold,
        window_secs: core.config.login_window_secs,
        max_lock_secs: core.config.login_max_lock_secs,
    }
}

/// Changes the caller's own password: the current one must match (failures count against the
/// account's login throttle, so a stolen session cannot guess it at leisure), the new one must
/// pass the policy; every other session of the user is revoked, `session_id`'s stays.
pub async fn change_password(
    core: &Core,
    c: &Caller,
    session_id: &str,
    current: String,
    new: String,
) -> Result<(), AuthError> {
    let mut tx = core.tx(c.org_id).await?;
    let (email, stored) = store::password_of(&mut tx, c.user_id).await?;
    tx.commit().await?;
    let keys = throttle::Keys::new(&email, "");
    let limits = throttle_limits(core);
    if let Some(wait) = throttle::locked_for(&core.pool, &keys).await? {
        return Err(AuthError::Throttled(wait.as_secs_f64().ceil() as u64));
    }
    if !core.hasher.verify(current, Some(stored)).await? {
        throttle::record_failure(&core.pool, &keys, &limits).await?;
        return Err(AuthError::invalid(
            "current_password",
            "the current password is not right",
        ));
    }
    core.hasher.check_policy(&new, &email)?;
    let hash = core.hasher.hash(new).await?;
    let keep = credentials::session_hash(session_id);
    let mut tx = core.tx(c.org_id).await?;
    store::set_password(&mut tx, c.user_id, &hash).await?;
    store::revoke_other_sessions(&mut tx, c.user_id, keep.as_ref()).await?;
    core.audit(Action::AuthPasswordChange, Target::User(c.user_id))
        .await?;
    tx.commit().await?;
    throttle::record_success(&core.pool, &keys).await?;
    Ok(())
}

/// Checks email, password and (when on) TOTP code, with throttling: a locked account or
/// address is refused before any password work; every failure is counted against both keys;
/// a success clears the account key. `accept` decides, after the password matched, whether
/// the account may go on (an active org for login, an owner for restore); a refusal there is
/// the same error as a wrong password.
pub async fn check_password(
    core: &Core,
    p: Presented<'_>,
    accept: impl FnOnce(&LoginAccount) -> bool,
) -> Result<LoginAccount, AuthError> {
    let keys = throttle::Keys::new(p.email, p.client_addr);
    let limits = throttle_limits(core);
    if let Some(wait) = throttle::locked_for(&core.pool, &keys).await? {
        crate::metrics::login_refused("throttled");
        return Err(AuthError::Throttled(wait.as_secs_f64().ceil() as u64));
    }
    // A malformed email is an unknown account: same work, same answer.
    let account = match normalize_email(p.email) {
        Ok(email) => store::find_login(&core.pool, &email).await?,
        Err(_) => None,
    };
    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let ok = core.hasher.verify(p.password, stored).await?;
    let account = match account {
        Some(a) if ok && accept(&a) => a,
        known => {
            if let Some(a) = &known {
                core.audit_login_failed(a.org_id, a.user_id).await;
            }
            crate::metrics::login_refused("bad_credentials");
            throttle::record_failure(&core.pool, &keys, &limits).await?;
            return Err(AuthError::BadCredentials);
        }
    };
    match check_totp(core, &account, p.totp_code).await {
        Ok(()) => {}
        // The password was right: say so only by asking for the code.
        Err(AuthError::TotpRequired) => {
            crate::metrics::login_refused("totp_required");
            return Err(AuthError::TotpRequired);
        }
        Err(e) => {
            crate::metrics::login_refused("bad_totp");
            throttle::record_failure(&core.pool, &keys, &limits).await?;
            return Err(e);
        }
    }
    throttle::record_success(&core.pool, &keys).await?;
    Ok(account)
}

/// Checks the second factor of a login whose password was right.
async fn check_totp(core: &Core, account: &LoginAccount, code: &str) -> Result<(), AuthError> {
    let Some(stored) = &account.totp_secret else {
        return Ok(());
    };
    if code.trim().is_empty() {
        return Err(AuthError::TotpRequired);
    }
    let seed = core.seeds.open(account.user_id, stored)?;
    let totp = totp::totp(&seed, "login")?;
    let step = totp::check(&totp, code).ok_or(AuthError::BadCredentials)?;
    // A code is good once: a replay within its window is refused.
    let mut tx = core.tx(account.org_id).await?;
    if !store::claim_totp_step(&mut tx, account.user_id, step).await? {
        return Err(AuthError::BadCredentials);
    }
    Ok(tx.commit().await?)
}

/// The caller's own account.
pub async fn me(core: &Core, c: &Caller) -> Result<MeRow, AuthError> {
    let mut tx = core.tx(c.org_id).await?;
    let me = store::get_me(&mut tx, c.user_id).await?;
    tx.commit().await?;
    Ok(me)
}

/// A TOTP enrolment waiting for its first code: the secret (base32) and the `otpauth` URI.
/// No `Debug`: it holds a secret.
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

/// Starts a TOTP enrolment (a new seed, sealed, pending until confirmed).
pub async fn totp_enroll(core: &Core, c: &Caller) -> Result<Enrolment, AuthError> {
    let seed = totp::new_seed();
    let mut tx = core.tx(c.org_id).await?;
    let (_, email) = store::totp_pending(&mut tx, c.user_id).await?;
    let totp = totp::totp(&seed, &email)?;
    let sealed = core.seeds.seal(c.user_id, &seed)?;
    store::set_totp_pending(&mut tx, c.user_id, &sealed)
        .await
        .map_err(|e| match e {
            coffer_db::DbError::Conflict => {
                AuthError::Conflict("two-factor authentication is already on")
            }
            other => other.into(),
        })?;
    tx.commit().await?;
    Ok(Enrolment {
        secret: totp_rs::Secret::from(seed).to_base32(),
        otpauth_uri: totp
            .to_url()
            .map_err(|e| AuthError::Internal(e.to_string()))?,
    })
}

/// Turns TOTP on with the first code of the pending enrolment.
pub async fn totp_confirm(core: &Core, c: &Caller, code: &str) -> Result<(), AuthError> {
    let mut tx = core.tx(c.org_id).await?;
    let (pending, email) = store::totp_pending(&mut tx, c.user_id).await?;
    let pending = pending.ok_or(AuthError::Conflict("no enrolment is pending"))?;
    let seed = core.seeds.open(c.user_id, &pending)?;
    let step = totp::check(&totp::totp(&seed, &email)?, code)
        .ok_or_else(|| AuthError::invalid("code", "the code does not match"))?;
    store::confirm_totp(&mut tx, c.user_id, step)
        .await
        .map_err(|e| match e {
            coffer_db::DbError::Conflict => AuthError::Conflict("no enrolment is pending"),
            other => other.into(),
        })?;
    core.audit(Action::AuthTotpEnable, Target::User(c.user_id))
        .await?;
    Ok(tx.commit().await?)
}
