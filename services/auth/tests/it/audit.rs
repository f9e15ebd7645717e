//! Auth's own actions go to the audit log before they take effect; with the log down, a login
//! gets no session.

use coffer_mesh::{CertStore, MeshClient, TlsFiles};
use coffer_proto::v1::audit_client::AuditClient;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};
use coffer_token::{Audience, Minter, Role, Scopes, Subject};
use uuid::Uuid;

use crate::harness::{Harness, PASSWORD, code};

/// The org's log, newest last, read as the gateway with an owner token.
async fn actions(h: &Harness, org: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let dir =
        h.ca.write_service_dir(&h.dir.path().join("as-gateway-audit"), "gateway")?;
    let mut client = AuditClient::new(
        MeshClient::new(CertStore::load(TlsFiles::in_dir(&dir))?)?
            .channel("audit", &h.audit.server.addr().to_string())?,
    );
    let token = Minter::new(&h.ring).mint(
        &Subject {
            user_id: Uuid::new_v4(),
            org_id: org.parse()?,
            role: Role::Owner,
            scopes: Scopes::all(),
            credential: coffer_token::Credential::Session,
            request_id: "req-read".into(),
        },
        &[Audience::Audit],
        coffer_token::unix_now(),
        60,
    )?;
    let items = Harness::as_user(&token, client.list(pb::ListRequest::default()))
        .await?
        .into_inner()
        .items;
    Ok(items
        .into_iter()
        .rev()
        .map(|e| {
            let outcome = coffer_kit::audit::Outcome::from_wire(e.outcome)
                .map_or("", |o| o.as_str())
                .to_owned();
            (e.action, e.actor, outcome)
        })
        .collect())
}

#[tokio::test]
async fn logins_keys_and_members_are_audited_first() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (org, session) = h.account("audited-auth@example.com").await?;
    let mut gw = h.gateway()?;
    // A failed login of a known account.
    let err = gw
        .login(pb::LoginRequest {
            email: "audited-auth@example.com".into(),
            password: "wrong password, certainly".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let token = h.token(Credential::SessionId(session.clone()), &[]).await?;
    let key = Harness::as_user(
        &token,
        gw.create_api_key(pb::CreateApiKeyRequest {
            name: "k".into(),
            scopes: vec!["files:read".into()],
        }),
    )
    .await?
    .into_inner();
    Harness::as_user(
        &token,
        gw.revoke_api_key(pb::RevokeApiKeyRequest { id: key.id }),
    )
    .await?;
    Harness::as_user(
        &token,
        gw.add_member(pb::AddMemberRequest {
            email: "member-of-audited@example.com".into(),
            password: PASSWORD.into(),
            role: "member".into(),
        }),
    )
    .await?;
    let log = actions(&h, &org).await?;
    let names: Vec<&str> = log.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "auth.login",
            "auth.login_failed",
            "apikey.create",
            "apikey.revoke",
            "member.add"
        ]
    );
    assert!(log[0].1.starts_with("user:"), "{log:?}");
    assert_eq!(
        (log[1].1.as_str(), log[1].2.as_str()),
        ("service:auth", "failure")
    );
    Ok(())
}

#[tokio::test]
async fn with_the_log_down_a_login_gets_no_session() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, session) = h.account("no-audit@example.com").await?;
    let token = h.token(Credential::SessionId(session), &[]).await?;
    h.audit.server.shutdown().await?;
    let err = h
        .gateway()?
        .login(pb::LoginRequest {
            email: "no-audit@example.com".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, coffer_errors::ErrorCode::Unavailable);
    // Nor is a key created.
    let err = Harness::as_user(
        &token,
        h.gateway()?.create_api_key(pb::CreateApiKeyRequest {
            name: "k".into(),
            scopes: vec!["files:read".into()],
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err).0, coffer_errors::ErrorCode::Unavailable);
    let listed = Harness::as_user(
        &token,
        h.gateway()?.list_api_keys(pb::ListApiKeysRequest {}),
    )
    .await?
    .into_inner();
    assert!(listed.items.is_empty());
    Ok(())
}
