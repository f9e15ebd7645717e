//! Org purge: auth alone never forgets an org, because it would strand the org's files (auth
//! makes the credentials to delete them). The whole purge, through every service, is shown by the
//! gateway's tests (`security::a_purged_org_leaves_nothing_but_its_audit_chain`).

use std::time::Duration;

use coffer_errors::ErrorCode;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};

use crate::harness::{Harness, PASSWORD, code};

#[tokio::test]
async fn without_metadata_a_due_org_is_not_purged() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_auth::AuthConfig {
        org_purge_after_secs: 1,
        purge_interval_secs: 1,
        ..Default::default()
    })
    .await?;
    let (gone, session) = h.account("leaver@example.com").await?;
    let token = h.token(Credential::SessionId(session), &[]).await?;
    let mut gw = h.gateway()?;
    Harness::as_user(
        &token,
        gw.request_org_deletion(pb::RequestOrgDeletionRequest {}),
    )
    .await?;
    // Several purge runs past the window.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let admin = sqlx::PgPool::connect(&h.pg.superuser_url(&h.db)).await?;
    let org: uuid::Uuid = gone.parse()?;
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM auth.orgs WHERE id = $1)
              + (SELECT count(*) FROM auth.users WHERE org_id = $1)",
    )
    .bind(org)
    .fetch_one(&admin)
    .await?;
    assert_eq!(left, 2, "auth forgot an org whose files no one deleted");
    let audit_db = sqlx::PgPool::connect(&h.pg.superuser_url(&h.audit.database)).await?;
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit.events WHERE org_id = $1 ORDER BY seq")
            .bind(org)
            .fetch_all(&audit_db)
            .await?;
    assert_eq!(actions, ["auth.login", "org.delete"]);
    // Past its window the org cannot be restored, purged or not.
    let err = h
        .gateway()?
        .restore_org(pb::RestoreOrgRequest {
            email: "leaver@example.com".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::Unauthenticated);
    Ok(())
}
