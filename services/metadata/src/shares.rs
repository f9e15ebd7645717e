//! Share links: created for an available file (a secret token, an expiry, an optional download
//! cap and password), revoked, and redeemed by anyone holding the link for one short-lived URL.

use coffer_kit::audit::{Action, Target};
use coffer_mesh::Caller;
use coffer_proto::v1::{self as pb};
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization as _;
use uuid::Uuid;

use crate::deps::Core;
use crate::error::MetadataError;
use crate::files::check_downloadable;
use crate::share_secrets;
use crate::store;
use crate::validate;

/// What a caller asks of a new share. No `Debug`: it holds a password.
pub struct Asked<'a> {
    pub file: &'a str,
    pub expires_in_secs: u64,
    /// 0: no cap.
    pub max_downloads: u32,
    /// Empty: no password.
    pub password: &'a str,
}

/// A new share: its id, the token (shown once, stored only as its hash) and its expiry. No
/// `Debug`: it holds the token.
pub struct Created {
    pub id: Uuid,
    pub token: String,
    pub expires_at: OffsetDateTime,
}

/// Creates a share of an available file.
pub async fn create(core: &Core, c: &Caller, a: Asked<'_>) -> Result<Created, MetadataError> {
    let id = validate::target(a.file)?;
    let max_secs = core.config.max_share_secs;
    if a.expires_in_secs == 0 || a.expires_in_secs > max_secs {
        return Err(MetadataError::invalid(
            "expires_in_seconds",
            format!("expires_in_seconds must be between 1 and {max_secs}"),
        ));
    }
    let max_downloads =
        match a.max_downloads {
            0 => None,
            n => Some(i32::try_from(n).map_err(|_| {
                MetadataError::invalid("max_downloads", "max_downloads is too large")
            })?),
        };
    let min_chars = core.config.share_password_min_chars;
    // One spelling of a password (NFC, as redemption normalises what it is given), nothing that
    // does not show, and no space at either end (a header cannot carry it).
    let password: String = a.password.nfc().collect();
    let password_hash = match password.as_str() {
        "" => None,
        p if p.starts_with(char::is_whitespace) || p.ends_with(char::is_whitespace) => {
            return Err(MetadataError::invalid(
                "password",
                "password must not start or end with a space",
            ));
        }
        p if p.chars().any(coffer_kit::text::is_hidden) => {
            return Err(MetadataError::invalid(
                "password",
                "password must not contain control or invisible formatting characters",
            ));
        }
        p if p.chars().count() < min_chars => {
            return Err(MetadataError::invalid(
                "password",
                format!("password must be at least {min_chars} characters"),
            ));
        }
        p if p.len() > 1024 => {
            return Err(MetadataError::invalid("password", "password is too long"));
        }
        p => Some(share_secrets::hash_password(p.to_owned()).await?),
    };
    let mut tx = core.tx(c.org_id).await?;
    let file = store::file(&mut tx, id).await?;
    check_downloadable(&file)?;
    let (token, hash) = share_secrets::new_token();
    let (share_id, expires_at) = store::insert_share(
        &mut tx,
        &store::NewShare {
            file: id,
            token_hash: &hash,
            password_hash,
            max_downloads,
            expires_in_secs: a.expires_in_secs as i64,
            created_by: c.user_id,
        },
    )
    .await?;
    core.audit(Action::ShareCreate, Target::Share(share_id))
        .await?;
    tx.commit().await?;
    Ok(Created {
        id: share_id,
        token,
        expires_at,
    })
}

/// A file's live shares (another org's file is not found).
pub async fn list(
    core: &Core,
    c: &Caller,
    file: &str,
) -> Result<Vec<store::ShareRow>, MetadataError> {
    let file = validate::target(file)?;
    let mut tx = core.tx(c.org_id).await?;
    store::file(&mut tx, file).await?;
    let rows = store::live_shares(&mut tx, file).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Revokes a share: its link stops working at once.
pub async fn revoke(core: &Core, c: &Caller, id: &str) -> Result<(), MetadataError> {
    let id = validate::target(id)?;
    let mut tx = core.tx(c.org_id).await?;
    store::revoke_share(&mut tx, id).await?;
    core.audit(Action::ShareRevoke, Target::Share(id)).await?;
    tx.commit().await?;
    Ok(())
}

/// Checks a share link without redeeming it: `NotFound` as [`redeem`] says it, `Forbidden` when
/// it needs its password, else an empty grant. Nothing is counted, signed or audited, so a link
/// preview or a browser's first look does not spend a capped link. It tells no more than a
/// redemption without the password: a password share is `Forbidden` before anything about its
/// file or org is looked at; any other must lead to a downloadable file of a live org (auth
/// mints no token for a deleted or disabled one).
pub async fn check(
    core: &Core,
    token: &str,
    request_id: String,
) -> Result<pb::DownloadGrant, MetadataError> {
    if token.is_empty() || token.len() > 128 {
        return Err(MetadataError::NotFound);
    }
    let hash = share_secrets::hash(token);
    let mut tx = coffer_db::begin(&core.pool).await?;
    let share = store::find_share_by_token(&mut tx, &hash)
        .await?
        .ok_or(MetadataError::NotFound)?;
    if share.password_hash.is_some() {
        tx.commit().await?;
        return Err(MetadataError::Forbidden("this share needs its password"));
    }
    let mut tx = coffer_db::TenantTx::adopt(tx, share.org_id, Some("coffer.lookup_share")).await?;
    let file = store::file(&mut tx, share.file_id).await?;
    check_downloadable(&file).map_err(|_| MetadataError::NotFound)?;
    tx.commit().await?;
    core.peers
        .as_service(share.org_id, request_id, async { Ok(()) })
        .await?;
    Ok(pb::DownloadGrant::default())
}

/// Redeems a share link (no user: the token is the credential) for one short-lived URL. Any
/// link that does not lead to a downloadable file is `NotFound`, said the same way.
pub async fn redeem(
    core: &Core,
    token: &str,
    password: String,
    request_id: String,
) -> Result<pb::DownloadGrant, MetadataError> {
    if token.is_empty() || token.len() > 128 {
        return Err(MetadataError::NotFound);
    }
    let hash = share_secrets::hash(token);
    let mut tx = coffer_db::begin(&core.pool).await?;
    let mut share = store::find_share_by_token(&mut tx, &hash)
        .await?
        .ok_or(MetadataError::NotFound)?;
    if let Some(stored) = share.password_hash.clone() {
        // No connection is held while the password is hashed.
        tx.commit().await?;
        check_password(core, share.org_id, share.id, password, stored).await?;
        // The share may have been revoked or used up meanwhile.
        tx = coffer_db::begin(&core.pool).await?;
        share = store::find_share_by_token(&mut tx, &hash)
            .await?
            .filter(|again| again.id == share.id)
            .ok_or(MetadataError::NotFound)?;
    }
    let mut tx = coffer_db::TenantTx::adopt(tx, share.org_id, Some("coffer.lookup_share")).await?;
    let file = store::file(&mut tx, share.file_id).await?;
    // A share of a file that is no longer downloadable is as good as gone.
    check_downloadable(&file).map_err(|_| MetadataError::NotFound)?;
    if !store::count_share_download(&mut tx, share.id).await? {
        return Err(MetadataError::NotFound);
    }
    let grant = core
        .peers
        .as_service(share.org_id, request_id, async {
            // Side by side, as for a download (see `files::download`).
            // A short URL: one redemption is one download (the cap counts redemptions).
            let (grant, logged) = tokio::join!(
                core.peers.presign_get(&file, core.config.share_url_secs),
                core.audit(Action::ShareDownload, Target::Share(share.id))
            );
            logged?;
            grant
        })
        .await?;
    tx.commit().await?;
    crate::metrics::presigned("share");
    Ok(grant)
}

/// Checks a share's password. No password given is refused without hashing or counting (link
/// previews fetch links without one). Otherwise the attempt is counted first, in a short
/// transaction, so concurrent guesses each spend one, and a share locked by earlier failures
/// is refused (429) before any hashing; the hash then runs with no transaction open, one per
/// core; the right password clears the count.
async fn check_password(
    core: &Core,
    org: Uuid,
    share: Uuid,
    given: String,
    stored: String,
) -> Result<(), MetadataError> {
    if given.is_empty() {
        return Err(MetadataError::Forbidden("this share needs its password"));
    }
    let attempts = core.config.share_password_attempts;
    let mut tx = core.tx(org).await?;
    let counted = store::count_password_attempt(
        &mut tx,
        share,
        i64::from(attempts),
        core.config.share_lock_max_secs,
    )
    .await?;
    tx.commit().await?;
    let failures = match counted {
        store::Attempt::Counted(n) => n,
        store::Attempt::Locked(secs) => return Err(MetadataError::Locked(secs)),
    };
    let given: String = given.nfc().collect();
    if share_secrets::verify_password(given, stored).await? {
        let mut tx = core.tx(org).await?;
        store::share_password_ok(&mut tx, share).await?;
        tx.commit().await?;
        return Ok(());
    }
    if i64::from(failures) >= i64::from(attempts) {
        tracing::warn!(%share, failures, "share password locked after repeated failures");
    }
    Err(MetadataError::Forbidden(
        "this share needs its password, and the one given is wrong",
    ))
}
