//! Login throttling per account and per client address (DESIGN.md).
//!
//! Each failure counts against both keys within a window. From the threshold on, the key is
//! locked for 1 s, then 2 s, 4 s, … doubling per further failure up to a maximum; a locked key is
//! refused before any password work, whatever the password. A success clears the account key
//! (not the address key, so one good account cannot launder an address's failures).

use std::time::Duration;

use sha2::{Digest as _, Sha256};
use sqlx::PgPool;

use coffer_db::DbError;

/// Thresholds and timing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub account_threshold: i32,
    pub address_threshold: i32,
    pub window_secs: u64,
    pub max_lock_secs: u64,
}

/// The throttling keys of one login attempt.
pub struct Keys {
    account: [u8; 32],
    address: Option<[u8; 32]>,
}

fn key(kind: &str, value: &str) -> [u8; 32] {
    Sha256::digest(format!("coffer.login-throttle:{kind}:{value}").as_bytes()).into()
}

impl Keys {
    /// Keys for a login with `email` (normalised or not) from `address` (may be empty).
    pub fn new(email: &str, address: &str) -> Self {
        Keys {
            account: key("account", &email.trim().to_lowercase()),
            address: (!address.is_empty()).then(|| key("address", address)),
        }
    }

    fn all(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.account)
            .chain(self.address)
            .map(|k| k.to_vec())
            .collect()
    }
}

/// Returns how long the attempt must wait, if any of its keys is locked.
pub async fn locked_for(pool: &PgPool, keys: &Keys) -> Result<Option<Duration>, DbError> {
    let secs: Option<f64> = sqlx::query_scalar(
        "SELECT max(extract(epoch FROM locked_until - now()))::float8 FROM login_throttle
         WHERE key_hash = ANY($1) AND locked_until > now()",
    )
    .bind(keys.all())
    .fetch_one(pool)
    .await?;
    Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// Records a failure against every key of the attempt.
pub async fn record_failure(pool: &PgPool, keys: &Keys, limits: &Limits) -> Result<(), DbError> {
    let pairs = std::iter::once((keys.account, limits.account_threshold))
        .chain(keys.address.map(|a| (a, limits.address_threshold)));
    for (key, threshold) in pairs {
        sqlx::query(
            "INSERT INTO login_throttle AS t (key_hash, failures, window_start) VALUES ($1, 1, now())
             ON CONFLICT (key_hash) DO UPDATE SET
               failures = CASE WHEN t.window_start < now() - make_interval(secs => $2)
                               THEN 1 ELSE t.failures + 1 END,
               window_start = CASE WHEN t.window_start < now() - make_interval(secs => $2)
                                   THEN now() ELSE t.window_start END",
        )
        .bind(&key[..])
        .bind(limits.window_secs as f64)
        .execute(pool)
        .await?;
        sqlx::query(
            "UPDATE login_throttle SET locked_until = now() + make_interval(
                 secs => least(power(2, failures - $2)::float8, $3))
             WHERE key_hash = $1 AND failures >= $2",
        )
        .bind(&key[..])
        .bind(threshold)
        .bind(limits.max_lock_secs as f64)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Clears the account key after a successful login.
pub async fn record_success(pool: &PgPool, keys: &Keys) -> Result<(), DbError> {
    sqlx::query("DELETE FROM login_throttle WHERE key_hash = $1")
        .bind(&keys.account[..])
        .execute(pool)
        .await?;
    Ok(())
}
