//! Signup, login, sessions, tokens, and what the gateway alone may do.

use std::time::Duration;

use coffer_errors::ErrorCode;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};
use coffer_token::{Audience, Role, Scopes};

use crate::harness::{Harness, PASSWORD, code};

#[tokio::test]
async fn signup_login_authenticate_me_logout() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (org, session) = h.account("Alice@Example.COM").await?;

    let token = h
        .token(Credential::SessionId(session.clone()), &["metadata"])
        .await?;
    let claims = h
        .verifier(Audience::Metadata)
        .verify(&token, coffer_token::unix_now())?;
    assert_eq!(claims.org_id.to_string(), org);
    assert_eq!(claims.role, Role::Owner);
    assert_eq!(claims.scopes, Scopes::all());
    assert_eq!(claims.request_id, "req-test");
    assert!(claims.expires_at - claims.issued_at <= 60);
    // Only the requested audiences are tagged (auth, audit and metadata here; not scan).
    assert!(
        h.verifier(Audience::Scan)
            .verify(&token, coffer_token::unix_now())
            .is_err()
    );

    let mut gw = h.gateway()?;
    let me = Harness::as_user(&token, gw.get_me(pb::GetMeRequest {}))
        .await?
        .into_inner();
    assert_eq!(me.email, "alice@example.com", "emails are normalised");
    assert_eq!(me.org_id, org);
    assert_eq!(me.role, pb::Role::Owner as i32);

    Harness::as_user(
        &token,
        gw.logout(pb::LogoutRequest {
            session_id: session.clone(),
        }),
    )
    .await?;
    let err = h
        .token(Credential::SessionId(session), &[])
        .await
        .unwrap_err();
    assert_eq!(
        code(&err).0,
        ErrorCode::Unauthenticated,
        "a logged-out session is refused at once"
    );
    Ok(())
}

#[tokio::test]
async fn login_failures_are_indistinguishable() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.account("bob@example.com").await?;
    let mut gw = h.gateway()?;
    let mut messages = Vec::new();
    for (email, password) in [
        ("bob@example.com", "wrong password entirely"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
        ("", ""),
    ] {
        let err = gw
            .login(pb::LoginRequest {
                email: email.into(),
                password: password.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(code(&err).0, ErrorCode::Unauthenticated);
        messages.push(err.message().to_owned());
    }
    messages.dedup();
    assert_eq!(
        messages.len(),
        1,
        "failures must not say which part was wrong"
    );
    Ok(())
}

#[tokio::test]
async fn signup_refuses_bad_input_naming_the_field() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut gw = h.gateway()?;
    let cases = [
        ("org", "a@example.com", "short", "password"),
        ("org", "a@example.com", "passwordpassword", "password"),
        (
            "org",
            "carol@example.com",
            "carol-is-my-password",
            "password",
        ),
        ("org", "not-an-email", PASSWORD, "email"),
        ("org", "a b@example.com", PASSWORD, "email"),
        ("", "a@example.com", PASSWORD, "org_name"),
        ("bad\u{0}org", "a@example.com", PASSWORD, "org_name"),
    ];
    for (org_name, email, password, field) in cases {
        let err = gw
            .signup(pb::SignupRequest {
                org_name: org_name.into(),
                email: email.into(),
                password: password.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            code(&err),
            (ErrorCode::InvalidArgument, field.to_owned()),
            "{org_name:?} {email:?}"
        );
    }
    let long = "x".repeat(201);
    let err = gw
        .signup(pb::SignupRequest {
            org_name: long,
            email: "a@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err).1, "org_name");

    h.account("dave@example.com").await?;
    let err = gw
        .signup(pb::SignupRequest {
            org_name: "again".into(),
            email: "DAVE@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::AlreadyExists);
    Ok(())
}

#[tokio::test]
async fn only_the_gateway_may_call_and_user_rpcs_need_a_token() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    for service in ["metadata", "audit", "scan", "storage-signer"] {
        let mut other = h.client_as(service)?;
        let err = other
            .authenticate(pb::AuthenticateRequest {
                credential: Some(Credential::SessionId("x".repeat(43))),
                audiences: vec!["auth".into()],
                request_id: "r".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{service}");
        let err = other
            .change_password(pb::ChangePasswordRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{service}");
        let err = other
            .remove_member(pb::RemoveMemberRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{service}");
    }
    let mut gw = h.gateway()?;
    let err = gw.get_me(pb::GetMeRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    // A token without the auth tag is not accepted by auth.
    let (_, session) = h.account("erin@example.com").await?;
    let mut gw2 = h.gateway()?;
    let only_metadata = gw2
        .authenticate(pb::AuthenticateRequest {
            credential: Some(Credential::SessionId(session)),
            audiences: vec!["metadata".into()],
            request_id: "r".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .token;
    let err = Harness::as_user(&only_metadata, gw.get_me(pb::GetMeRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    // An unknown session is refused; both answers were counted by credential and outcome.
    gw2.authenticate(pb::AuthenticateRequest {
        credential: Some(Credential::SessionId("y".repeat(43))),
        audiences: vec!["auth".into()],
        request_id: "r".into(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    for outcome in ["ok", "refused"] {
        let series = format!(
            "coffer_auth_authentications_total{{credential=\"session\",outcome=\"{outcome}\"}}"
        );
        let n = coffer_telemetry::metrics().sample(&series);
        assert!(n.is_some_and(|n| n >= 1.0), "{series}: {n:?}");
    }
    Ok(())
}

#[tokio::test]
async fn idle_sessions_expire() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_auth::AuthConfig {
        session_idle_secs: 1,
        ..Default::default()
    })
    .await?;
    let (_, session) = h.account("frank@example.com").await?;
    h.token(Credential::SessionId(session.clone()), &[]).await?;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let err = h
        .token(Credential::SessionId(session), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::Unauthenticated);
    Ok(())
}

#[tokio::test]
async fn a_recheck_does_not_keep_an_idle_session_alive() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_auth::AuthConfig {
        session_idle_secs: 2,
        ..Default::default()
    })
    .await?;
    let (_, session) = h.account("idle@example.com").await?;
    let gw = h.gateway()?;
    let recheck = || {
        let mut gw = gw.clone();
        let session = session.clone();
        async move {
            gw.authenticate(pb::AuthenticateRequest {
                credential: Some(Credential::SessionId(session)),
                audiences: vec!["auth".into()],
                request_id: "r".into(),
                recheck: true,
            })
            .await
        }
    };
    // Re-checked (as an open event stream does) every 0.5 s for 3 s: accepted while the session
    // lives, and not counted as use, so it goes idle all the same.
    let started = tokio::time::Instant::now();
    let mut refused = None;
    while started.elapsed() < Duration::from_secs(3) {
        if recheck().await.is_err() {
            refused = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(refused.is_some(), "re-checks kept an idle session alive");
    let err = h
        .token(Credential::SessionId(session.clone()), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::Unauthenticated);
    Ok(())
}

#[tokio::test]
async fn authenticate_refuses_unknown_audiences_and_bad_request_ids() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, session) = h.account("gina@example.com").await?;
    let mut gw = h.gateway()?;
    for (audiences, request_id, field) in [
        (vec!["nobody".to_owned()], "r", "audiences"),
        (vec![], "r", "audiences"),
        (vec!["auth".to_owned()], "bad id with spaces", "request_id"),
    ] {
        let err = gw
            .authenticate(pb::AuthenticateRequest {
                credential: Some(Credential::SessionId(session.clone())),
                audiences,
                request_id: request_id.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(code(&err), (ErrorCode::InvalidArgument, field.to_owned()));
    }
    Ok(())
}

#[tokio::test]
async fn the_readme_promotion_sql_works_and_needs_the_org() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (org, session) = h.account("boss@promo.example").await?;
    let token = h.token(Credential::SessionId(session), &[]).await?;
    let mut gw = h.gateway()?;
    Harness::as_user(
        &token,
        gw.add_member(pb::AddMemberRequest {
            email: "worker@promo.example".into(),
            password: PASSWORD.into(),
            role: "member".into(),
        }),
    )
    .await?;
    let owner = sqlx::PgPool::connect(&h.pg.url("auth_owner", "owner-pw", &h.db)).await?;
    let promote = |org: String| {
        let owner = owner.clone();
        async move {
            let mut tx = owner.begin().await?;
            if !org.is_empty() {
                sqlx::query("SELECT set_config('coffer.org_id', $1, true)")
                    .bind(org)
                    .execute(&mut *tx)
                    .await?;
            }
            let done = sqlx::query(
                "UPDATE auth.memberships SET role = 'admin'
                  WHERE user_id = (SELECT id FROM auth.users WHERE email = 'worker@promo.example')",
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            anyhow::Ok(done)
        }
    };
    assert_eq!(
        promote(String::new()).await?,
        0,
        "without the org, forced RLS matches nothing"
    );
    assert_eq!(promote(org).await?, 1);
    let login = gw
        .login(pb::LoginRequest {
            email: "worker@promo.example".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(login.caller.unwrap().role, pb::Role::Admin as i32);
    Ok(())
}

#[tokio::test]
async fn sessions_expire_at_their_absolute_limit_however_busy() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_auth::AuthConfig {
        session_absolute_secs: 2,
        ..Default::default()
    })
    .await?;
    let (_, session) = h.account("busy@example.com").await?;
    // Used every half second, so never idle, yet gone after its absolute lifetime.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        h.token(Credential::SessionId(session.clone()), &[]).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let err = h
        .token(Credential::SessionId(session), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::Unauthenticated);
    Ok(())
}

#[tokio::test]
async fn login_time_does_not_reveal_whether_the_email_exists() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_auth::AuthConfig {
        login_account_threshold: 1000,
        login_address_threshold: 1000,
        ..Default::default()
    })
    .await?;
    h.account("exists@example.com").await?;
    let gw = h.gateway()?;
    let timed = |email: String| {
        let mut gw = gw.clone();
        async move {
            let start = std::time::Instant::now();
            let res = gw
                .login(pb::LoginRequest {
                    email,
                    password: "wrong password!!".into(),
                    ..Default::default()
                })
                .await;
            assert!(res.is_err());
            start.elapsed()
        }
    };
    let (mut known, mut unknown) = (Duration::ZERO, Duration::ZERO);
    for i in 0..8 {
        known += timed("exists@example.com".into()).await;
        unknown += timed(format!("ghost{i}@example.com")).await;
    }
    let ratio = known.as_secs_f64() / unknown.as_secs_f64();
    // Both paths run one full Argon2id verification; the database lookups differ by far less.
    // Without the dummy verification the unknown path would be 10x or more faster.
    assert!(
        (0.5..2.0).contains(&ratio),
        "known {known:?} vs unknown {unknown:?}"
    );
    Ok(())
}

#[tokio::test]
async fn active_sessions_are_counted_across_orgs_without_showing_a_row() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let runtime = sqlx::PgPool::connect(&h.pg.url(
        "auth_runtime",
        coffer_auth::testing::RUNTIME_PASSWORD,
        &h.db,
    ))
    .await?;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT auth.active_session_count(1800)")
            .fetch_one(&runtime)
            .await
    };
    let (_, first) = h.account("one@count.example").await?;
    let (other_org, _) = h.account("two@other-count.example").await?;
    h.account("three@other-count.example").await?;
    assert_eq!(count().await?, 3, "every org's sessions");
    // Idle longer than the limit: not active (the owner ages one, in its org).
    let owner = sqlx::PgPool::connect(&h.pg.url("auth_owner", "owner-pw", &h.db)).await?;
    let mut tx = owner.begin().await?;
    sqlx::query("SELECT set_config('coffer.org_id', $1, true)")
        .bind(&other_org)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE auth.sessions SET last_seen_at = now() - interval '1 hour'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    assert_eq!(count().await?, 2, "an idle session is not active");
    // A temporary `sessions` of the caller's does not stand in for the table (nothing of the
    // caller's runs as the owner): the count is the same.
    let mut conn = runtime.acquire().await?;
    sqlx::query("CREATE TEMP VIEW sessions AS SELECT g FROM generate_series(1, 1000) g")
        .execute(&mut *conn)
        .await?;
    let through_view: i64 = sqlx::query_scalar("SELECT auth.active_session_count(1800)")
        .fetch_one(&mut *conn)
        .await?;
    assert_eq!(through_view, 2);
    sqlx::query("DROP VIEW pg_temp.sessions")
        .execute(&mut *conn)
        .await?;
    drop(conn);
    let token = h.token(Credential::SessionId(first.clone()), &[]).await?;
    Harness::as_user(
        &token,
        h.gateway()?.logout(pb::LogoutRequest { session_id: first }),
    )
    .await?;
    assert_eq!(count().await?, 1, "a logged-out session is not active");
    // The function's capability opens nothing to the runtime role when it sets it itself.
    let mut tx = runtime.begin().await?;
    sqlx::query("SELECT set_config('coffer.lookup_session_count', '1', true)")
        .execute(&mut *tx)
        .await?;
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.sessions")
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(seen, 0, "the runtime role reads no session row");
    tx.rollback().await?;
    // The service keeps the gauge (every harness of this process sets it from its own database).
    coffer_auth::register_metrics();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while coffer_telemetry::metrics()
        .sample("coffer_auth_active_sessions")
        .is_none_or(|n| n < 1.0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the gauge was never set"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
