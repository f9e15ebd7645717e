//! Every SQL statement of the auth service. Tenant reads and writes take a [`TenantTx`] and read
//! the org from it; the pre-tenant lookups set their `coffer.lookup_*` capability first and turn
//! the transaction into the found org's (`TenantTx::adopt`).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use coffer_db::{DbError, TenantTx, set_local, tenant_tx};
use coffer_token::Role;

use crate::credentials::hashes_equal;

fn role_from(s: &str) -> Result<Role, DbError> {
    match s {
        "owner" => Ok(Role::Owner),
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        _ => Err(DbError::Conflict),
    }
}

/// An account found by email at login.
pub struct LoginAccount {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    pub password_hash: String,
    pub org_disabled: bool,
    /// The encrypted TOTP seed, when 2FA is on.
    pub totp_secret: Option<Vec<u8>>,
}

/// Who a session or API key speaks for.
pub struct Principal {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    /// Scope names, for API keys; `None` for sessions (all scopes the role allows).
    pub scopes: Option<Vec<String>>,
    pub api_key_id: Option<Uuid>,
}

pub async fn signup(
    pool: &PgPool,
    org_name: &str,
    email: &str,
    password_hash: &str,
) -> Result<(Uuid, Uuid), DbError> {
    let org_id = Uuid::new_v4();
    let user_id = Uuid::new_v4();
    let mut tx = tenant_tx(pool, org_id).await?;
    sqlx::query("INSERT INTO orgs (id, name) VALUES ($1, $2)")
        .bind(org_id)
        .bind(org_name)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO users (id, org_id, email, password_hash) VALUES ($1, $2, $3, $4)")
        .bind(user_id)
        .bind(org_id)
        .bind(email)
        .bind(password_hash)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((user_id, org_id))
}

/// Adds a user to the transaction's org with `role` (`member` or `admin`).
pub async fn add_member(
    tx: &mut TenantTx,
    email: &str,
    password_hash: &str,
    role: Role,
) -> Result<Uuid, DbError> {
    let user_id = Uuid::new_v4();
    sqlx::query("INSERT INTO users (id, org_id, email, password_hash) VALUES ($1, $2, $3, $4)")
        .bind(user_id)
        .bind(tx.org())
        .bind(email)
        .bind(password_hash)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)")
        .bind(tx.org())
        .bind(user_id)
        .bind(role.name())
        .execute(&mut **tx)
        .await?;
    Ok(user_id)
}

pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub totp_enabled: bool,
    pub created_at: time::OffsetDateTime,
}

/// The members of the transaction's org, oldest first.
pub async fn list_members(tx: &mut TenantTx) -> Result<Vec<MemberRow>, DbError> {
    let rows: Vec<(Uuid, String, String, bool, time::OffsetDateTime)> = sqlx::query_as(
        "SELECT u.id, u.email, m.role, u.totp_enabled, u.created_at FROM users u
         JOIN memberships m ON m.user_id = u.id AND m.org_id = u.org_id
         WHERE u.org_id = $1 ORDER BY u.created_at, u.id",
    )
    .bind(tx.org())
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(user_id, email, role, totp_enabled, created_at)| {
            Ok(MemberRow {
                user_id,
                email,
                role: role_from(&role)?,
                totp_enabled,
                created_at,
            })
        })
        .collect()
}

/// The org's owners, locked: removals that could leave none run one after the other.
pub async fn lock_owners(tx: &mut TenantTx) -> Result<Vec<Uuid>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'owner' FOR UPDATE",
    )
    .bind(tx.org())
    .fetch_all(&mut **tx)
    .await?)
}

/// The role of `user_id` in the transaction's org, if a member.
pub async fn role_of(tx: &mut TenantTx, user_id: Uuid) -> Result<Option<Role>, DbError> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(tx.org())
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
    role.as_deref().map(role_from).transpose()
}

/// Deletes the account of `user_id` in the transaction's org: its membership, sessions and API
/// keys go with it (foreign keys). False if there was none.
pub async fn delete_user(tx: &mut TenantTx, user_id: Uuid) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM users WHERE org_id = $1 AND id = $2")
        .bind(tx.org())
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find_login(pool: &PgPool, email: &str) -> Result<Option<LoginAccount>, DbError> {
    let mut tx = coffer_db::begin(pool).await?;
    set_local(&mut tx, "coffer.lookup_email", email).await?;
    let row: Option<(Uuid, Uuid, String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT id, org_id, password_hash, CASE WHEN totp_enabled THEN totp_secret END
         FROM users WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user_id, org_id, password_hash, totp_secret)) = row else {
        return Ok(None);
    };
    let mut tx = TenantTx::adopt(tx, org_id, Some("coffer.lookup_email")).await?;
    let (role, disabled): (String, bool) = sqlx::query_as(
        "SELECT m.role, o.disabled_at IS NOT NULL FROM memberships m JOIN orgs o ON o.id = m.org_id
         WHERE m.org_id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(LoginAccount {
        user_id,
        org_id,
        role: role_from(&role)?,
        password_hash,
        org_disabled: disabled,
        totp_secret,
    }))
}

pub async fn create_session(
    tx: &mut TenantTx,
    user_id: Uuid,
    id_hash: &[u8; 32],
    absolute_secs: u64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, org_id, user_id, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(&id_hash[..])
    .bind(tx.org())
    .bind(user_id)
    .bind(absolute_secs as f64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Resolves a live session (not revoked, within its absolute and idle limits) and, when `used`,
/// marks it used (a re-check of an open event stream is not use: it must not keep an idle
/// session alive). One statement, one round trip: the schema's `resolve_session` (migration
/// 0008) sets the session lookup capability, reads the session with its membership and org (the
/// capability shows exactly those rows) and writes `last_seen_at` when it is due, at most every
/// tenth of the idle limit (30 s at most), not on every request: a write per authenticated
/// request was most of its cost.
pub async fn resolve_session(
    pool: &PgPool,
    id_hash: &[u8; 32],
    idle_secs: u64,
    used: bool,
) -> Result<Option<Principal>, DbError> {
    let mut conn = coffer_db::connection(pool).await?;
    let row: Option<(Uuid, Uuid, String)> =
        sqlx::query_as("SELECT o_org_id, o_user_id, o_role FROM resolve_session($1, $2, $3, $4)")
            .bind(&id_hash[..])
            .bind(idle_secs as f64)
            .bind((idle_secs as f64 / 10.0).min(30.0))
            .bind(used)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((org_id, user_id, role)) = row else {
        return Ok(None);
    };
    Ok(Some(Principal {
        user_id,
        org_id,
        role: role_from(&role)?,
        scopes: None,
        api_key_id: None,
    }))
}

/// Revokes a session of `user_id` in the transaction's org. Revoking an unknown or foreign session
/// is a no-op.
pub async fn revoke_session(
    tx: &mut TenantTx,
    user_id: Uuid,
    id_hash: &[u8; 32],
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = now()
         WHERE id_hash = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(&id_hash[..])
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The email and password hash of `user_id` in the transaction's org.
pub async fn password_of(tx: &mut TenantTx, user_id: Uuid) -> Result<(String, String), DbError> {
    Ok(
        sqlx::query_as("SELECT email, password_hash FROM users WHERE org_id = $1 AND id = $2")
            .bind(tx.org())
            .bind(user_id)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Sets the password hash of `user_id` in the transaction's org.
pub async fn set_password(tx: &mut TenantTx, user_id: Uuid, hash: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET password_hash = $3 WHERE org_id = $1 AND id = $2")
        .bind(tx.org())
        .bind(user_id)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Revokes every live session of `user_id` in the transaction's org but `keep` (if any).
pub async fn revoke_other_sessions(
    tx: &mut TenantTx,
    user_id: Uuid,
    keep: Option<&[u8; 32]>,
) -> Result<u64, DbError> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = now()
         WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL
           AND ($3::bytea IS NULL OR id_hash <> $3)",
    )
    .bind(tx.org())
    .bind(user_id)
    .bind(keep.map(|k| &k[..]))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

pub struct MeRow {
    pub email: String,
    pub role: Role,
    pub totp_enabled: bool,
}

pub async fn get_me(tx: &mut TenantTx, user_id: Uuid) -> Result<MeRow, DbError> {
    let (email, role, totp_enabled): (String, String, bool) = sqlx::query_as(
        "SELECT u.email, m.role, u.totp_enabled FROM users u
         JOIN memberships m ON m.user_id = u.id AND m.org_id = u.org_id
         WHERE u.id = $1",
    )
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(MeRow {
        email,
        role: role_from(&role)?,
        totp_enabled,
    })
}

/// Returns true if the transaction's org exists and is not disabled (for service tokens).
pub async fn org_active(tx: &mut TenantTx) -> Result<bool, DbError> {
    let active: Option<(bool,)> =
        sqlx::query_as("SELECT disabled_at IS NULL FROM orgs WHERE id = $1")
            .bind(tx.org())
            .fetch_optional(&mut **tx)
            .await?;
    Ok(active.is_some_and(|(a,)| a))
}

pub async fn create_api_key(
    tx: &mut TenantTx,
    user_id: Uuid,
    name: &str,
    prefix: &str,
    secret_hash: &[u8; 32],
    scopes: &[String],
) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, user_id, name, prefix, secret_hash, scopes)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(tx.org())
    .bind(user_id)
    .bind(name)
    .bind(prefix)
    .bind(&secret_hash[..])
    .bind(scopes)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

#[derive(sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub prefix: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// Lists the org's live (not revoked) API keys, oldest first; only `user`'s when given.
pub async fn list_api_keys(
    tx: &mut TenantTx,
    user: Option<Uuid>,
) -> Result<Vec<ApiKeyRow>, DbError> {
    let rows: Vec<ApiKeyRow> = sqlx::query_as(
        "SELECT id, name, scopes, prefix, created_at, last_used_at FROM api_keys
         WHERE org_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR user_id = $2)
         ORDER BY created_at, id LIMIT 1000",
    )
    .bind(tx.org())
    .bind(user)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows)
}

/// Revokes an API key of the org (only `user`'s when given); `NotFound` when there is no such
/// live key.
pub async fn revoke_api_key(
    tx: &mut TenantTx,
    id: Uuid,
    user: Option<Uuid>,
) -> Result<(), DbError> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = now()
         WHERE id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR user_id = $2)",
    )
    .bind(id)
    .bind(user)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// A live key's row, its user's role in its org, and whether its use is due to be recorded.
#[derive(sqlx::FromRow)]
struct KeyLookup {
    o_id: Uuid,
    o_org_id: Uuid,
    o_user_id: Uuid,
    o_secret_hash: Vec<u8>,
    o_scopes: Vec<String>,
    o_role: String,
    o_due: bool,
}

/// Resolves a live API key by prefix and secret hash, and records its use: the first at once,
/// later ones at most every 30 s (one write per request was most of the cost of a
/// key-authenticated call). One statement finds the key with its user's role (the schema's
/// `resolve_api_key`, migration 0009); the secret hash is compared here, in constant time, and
/// only a key that matches is touched, in a transaction of its org (four more round trips, for
/// at most one request per key in 30 s).
pub async fn resolve_api_key(
    pool: &PgPool,
    prefix: &str,
    secret_hash: &[u8; 32],
) -> Result<Option<Principal>, DbError> {
    let mut conn = coffer_db::connection(pool).await?;
    let row: Option<KeyLookup> = sqlx::query_as(
        "SELECT o_id, o_org_id, o_user_id, o_secret_hash, o_scopes, o_role, o_due
         FROM resolve_api_key($1)",
    )
    .bind(prefix)
    .fetch_optional(&mut *conn)
    .await?;
    drop(conn);
    let Some(key) = row else {
        return Ok(None);
    };
    if !hashes_equal(&key.o_secret_hash, secret_hash) {
        return Ok(None);
    }
    let role = role_from(&key.o_role)?;
    if key.o_due {
        let mut tx = coffer_db::tenant_tx(pool, key.o_org_id).await?;
        sqlx::query(
            "UPDATE api_keys SET last_used_at = now()
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '30 seconds')",
        )
        .bind(key.o_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(Some(Principal {
        user_id: key.o_user_id,
        org_id: key.o_org_id,
        role,
        scopes: Some(key.o_scopes),
        api_key_id: Some(key.o_id),
    }))
}

/// Accepts a TOTP step at most once: true if `step` is newer than any accepted before.
pub async fn claim_totp_step(tx: &mut TenantTx, user_id: Uuid, step: i64) -> Result<bool, DbError> {
    let done =
        sqlx::query("UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2")
            .bind(user_id)
            .bind(step)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    Ok(done == 1)
}

/// Stores a pending seed; refused (Conflict) when 2FA is already on.
pub async fn set_totp_pending(
    tx: &mut TenantTx,
    user_id: Uuid,
    encrypted: &[u8],
) -> Result<(), DbError> {
    let done = sqlx::query("UPDATE users SET totp_pending = $2 WHERE id = $1 AND NOT totp_enabled")
        .bind(user_id)
        .bind(encrypted)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if done == 0 {
        return Err(DbError::Conflict);
    }
    Ok(())
}

/// Returns the pending (encrypted) seed and the email of a user.
pub async fn totp_pending(
    tx: &mut TenantTx,
    user_id: Uuid,
) -> Result<(Option<Vec<u8>>, String), DbError> {
    let row: (Option<Vec<u8>>, String) = sqlx::query_as(
        "SELECT CASE WHEN NOT totp_enabled THEN totp_pending END, email FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row)
}

/// Turns 2FA on with the pending seed, recording the step of the confirming code as used.
pub async fn confirm_totp(tx: &mut TenantTx, user_id: Uuid, step: i64) -> Result<(), DbError> {
    let done = sqlx::query(
        "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_enabled = true,
                          totp_last_step = $2
         WHERE id = $1 AND totp_pending IS NOT NULL AND NOT totp_enabled",
    )
    .bind(user_id)
    .bind(step)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if done == 0 {
        return Err(DbError::Conflict);
    }
    Ok(())
}

/// Disables the org now and schedules its purge; returns when it will be purged.
pub async fn request_org_deletion(
    tx: &mut TenantTx,
    after_secs: u64,
) -> Result<OffsetDateTime, DbError> {
    let purge_after: OffsetDateTime = sqlx::query_scalar(
        "UPDATE orgs SET disabled_at = now(), purge_after = now() + make_interval(secs => $2)
         WHERE id = $1 AND disabled_at IS NULL RETURNING purge_after",
    )
    .bind(tx.org())
    .bind(after_secs as f64)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(DbError::Conflict)?;
    Ok(purge_after)
}

/// Re-enables a disabled org whose purge time has not come.
pub async fn restore_org(tx: &mut TenantTx) -> Result<(), DbError> {
    let done = sqlx::query(
        "UPDATE orgs SET disabled_at = NULL, purge_after = NULL
         WHERE id = $1 AND disabled_at IS NOT NULL AND purge_after > now()",
    )
    .bind(tx.org())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if done == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// The orgs whose deletion window has passed, and whether their purge has started.
pub async fn due_orgs(pool: &PgPool) -> Result<Vec<(Uuid, bool)>, DbError> {
    let mut tx = coffer_db::begin(pool).await?;
    set_local(&mut tx, "coffer.lookup_purge", "due").await?;
    let due: Vec<(Uuid, bool)> = sqlx::query_as(
        "SELECT id, purge_started_at IS NOT NULL FROM orgs WHERE purge_after < now()",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(due)
}

/// Records that an org's purge started (its `org.purge` event is in the log).
pub async fn purge_started(tx: &mut TenantTx) -> Result<(), DbError> {
    sqlx::query("UPDATE orgs SET purge_started_at = now() WHERE id = $1")
        .bind(tx.org())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes one org (and, by cascade, every row of it here) if it is still due.
pub async fn purge_org(pool: &PgPool, id: Uuid) -> Result<bool, DbError> {
    let mut tx = coffer_db::begin(pool).await?;
    set_local(&mut tx, "coffer.lookup_purge", "due").await?;
    let purged = sqlx::query("DELETE FROM orgs WHERE id = $1 AND purge_after < now()")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(purged == 1)
}
