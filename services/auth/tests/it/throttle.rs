//! Login throttling per account and per address.

use std::time::Duration;

use coffer_errors::ErrorCode;
use coffer_proto::v1 as pb;

use crate::harness::{Harness, PASSWORD, code};

async fn login(h: &Harness, email: &str, password: &str, addr: &str) -> Result<(), tonic::Status> {
    h.gateway()
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .login(pb::LoginRequest {
            email: email.into(),
            password: password.into(),
            client_addr: addr.into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn twenty_wrong_passwords_lock_the_account() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.account("target@example.com").await?;
    let mut codes = Vec::new();
    for i in 0..20 {
        // Spread over addresses, so only the account key can be what locks.
        let err = login(
            &h,
            "target@example.com",
            "wrong password!!",
            &format!("198.51.100.{i}"),
        )
        .await
        .unwrap_err();
        codes.push(code(&err).0);
        if code(&err).0 == ErrorCode::RateLimited {
            assert!(coffer_errors::retry_after(&err).is_some_and(|s| s >= 1));
        }
    }
    assert!(
        codes[..5].iter().all(|c| *c == ErrorCode::Unauthenticated),
        "{codes:?}"
    );
    assert!(
        codes[5..].iter().all(|c| *c == ErrorCode::RateLimited),
        "{codes:?}"
    );
    // While locked, even the right password is refused.
    let err = login(&h, "target@example.com", PASSWORD, "198.51.100.200")
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::RateLimited);
    // Another account is unaffected.
    h.account("bystander@example.com").await?;
    login(&h, "bystander@example.com", PASSWORD, "198.51.100.201").await?;
    let metrics = coffer_telemetry::metrics().encode();
    assert!(
        metrics.contains("coffer_auth_login_failures_total{reason=\"throttled\"}"),
        "{metrics}"
    );
    // The bystander's login was counted, and so were the refusals before the lock.
    let sample = |name: &str| coffer_telemetry::metrics().sample(name).unwrap_or(0.0);
    assert!(sample("coffer_auth_logins_total") >= 1.0);
    assert!(sample("coffer_auth_login_failures_total{reason=\"bad_credentials\"}") >= 1.0);
    assert!(sample("coffer_auth_login_failures_total{reason=\"throttled\"}") >= 1.0);
    Ok(())
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_locked() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.account("real@example.com").await?;
    let addr = "203.0.113.9";
    let mut limited = false;
    for i in 0..24 {
        let err = login(
            &h,
            &format!("guess{i}@example.com"),
            "whatever password",
            addr,
        )
        .await
        .unwrap_err();
        limited |= code(&err).0 == ErrorCode::RateLimited;
    }
    assert!(limited, "20 failures from one address must lock it");
    let err = login(&h, "real@example.com", PASSWORD, addr)
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::RateLimited);
    login(&h, "real@example.com", PASSWORD, "203.0.113.10").await?;
    Ok(())
}

#[tokio::test]
async fn locks_expire_and_success_clears_the_account() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_auth::AuthConfig {
        login_account_threshold: 2,
        login_max_lock_secs: 1,
        ..Default::default()
    })
    .await?;
    h.account("blink@example.com").await?;
    for _ in 0..2 {
        login(&h, "blink@example.com", "bad password 1", "")
            .await
            .unwrap_err();
    }
    let err = login(&h, "blink@example.com", PASSWORD, "")
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::RateLimited);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    login(&h, "blink@example.com", PASSWORD, "").await?;
    // The success cleared the count: one more failure does not lock.
    login(&h, "blink@example.com", "bad password 2", "")
        .await
        .unwrap_err();
    login(&h, "blink@example.com", PASSWORD, "").await?;
    Ok(())
}
