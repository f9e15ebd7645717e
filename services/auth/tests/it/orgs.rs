//! Org purge: after the window the org and every row of it are gone, and it cannot be restored.

use std::time::Duration;

use coffer_errors::ErrorCode;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};

use crate::harness::{Harness, PASSWORD, code};

#[tokio::test]
async fn deleted_orgs_are_purged_after_the_window_and_others_are_untouched() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_auth::AuthConfig {
        org_purge_after_secs: 1,
        purge_interval_secs: 1,
        ..Default::default()
    })
    .await?;
    let (gone, session) = h.account("leaver@example.com").await?;
    let (kept, _) = h.account("stayer@example.com").await?;
    let token = h.token(Credential::SessionId(session), &[]).await?;
    let mut gw = h.gateway()?;
    Harness::as_user(
        &token,
        gw.request_org_deletion(pb::RequestOrgDeletionRequest {}),
    )
    .await?;

    let admin = sqlx::PgPool::connect(&h.pg.superuser_url(&h.db)).await?;
    let count = |org: String| {
        let admin = admin.clone();
        async move {
            let org: uuid::Uuid = org.parse()?;
            let n: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM auth.orgs WHERE id = $1)
                      + (SELECT count(*) FROM auth.users WHERE org_id = $1)
                      + (SELECT count(*) FROM auth.sessions WHERE org_id = $1)
                      + (SELECT count(*) FROM auth.memberships WHERE org_id = $1)",
            )
            .bind(org)
            .fetch_one(&admin)
            .await?;
            anyhow::Ok(n)
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(gone.clone()).await? > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the org was not purged"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(count(kept).await? >= 4, "another org's rows were touched");
    // The deletion and the purge are in the org's audit log, which outlives the org.
    let audit_db = sqlx::PgPool::connect(&h.pg.superuser_url(&h.audit.database)).await?;
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit.events WHERE org_id = $1 ORDER BY seq")
            .bind(gone.parse::<uuid::Uuid>()?)
            .fetch_all(&audit_db)
            .await?;
    assert_eq!(actions, ["auth.login", "org.delete", "org.purge"]);
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
