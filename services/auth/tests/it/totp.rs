//! TOTP: enrolment, confirmation, the login requirement, wrong and replayed codes, seeds at rest.

use coffer_errors::ErrorCode;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};

use crate::harness::{Harness, PASSWORD, code};

fn totp_of(base32: &str) -> totp_rs::Totp {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(base32).unwrap())
        .with_account_name("test")
        .build()
        .unwrap()
}

fn code_at(totp: &totp_rs::Totp, offset_secs: i64) -> String {
    totp.generate((coffer_token::unix_now() + offset_secs) as u64)
        .to_string()
}

async fn login(h: &Harness, code: &str) -> Result<pb::LoginResponse, tonic::Status> {
    h.gateway()
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .login(pb::LoginRequest {
            email: "twofa@example.com".into(),
            password: PASSWORD.into(),
            totp_code: code.into(),
            client_addr: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn enrol_confirm_then_codes_are_required_once_each() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, session) = h.account("twofa@example.com").await?;
    let token = h.token(Credential::SessionId(session), &[]).await?;
    let mut gw = h.gateway()?;

    let enrol = Harness::as_user(&token, gw.totp_enroll(pb::TotpEnrollRequest {}))
        .await?
        .into_inner();
    assert!(
        enrol
            .otpauth_uri
            .starts_with("otpauth://totp/Coffer:twofa%40example.com?"),
        "{}",
        enrol.otpauth_uri
    );
    assert!(enrol.otpauth_uri.contains("issuer=Coffer"));
    let totp = totp_of(&enrol.secret);
    // Until confirmed, login needs no code.
    login(&h, "").await?;

    let wrong = if code_at(&totp, 0) == "123456" {
        "654321"
    } else {
        "123456"
    };
    let err = Harness::as_user(
        &token,
        gw.totp_confirm(pb::TotpConfirmRequest { code: wrong.into() }),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), (ErrorCode::InvalidArgument, "code".into()));
    Harness::as_user(
        &token,
        gw.totp_confirm(pb::TotpConfirmRequest {
            code: code_at(&totp, 0),
        }),
    )
    .await?;
    let again = Harness::as_user(&token, gw.totp_enroll(pb::TotpEnrollRequest {}))
        .await
        .unwrap_err();
    assert_eq!(code(&again).0, ErrorCode::Conflict);
    let me = Harness::as_user(&token, gw.get_me(pb::GetMeRequest {}))
        .await?
        .into_inner();
    assert!(me.totp_enabled);

    // Now the code is required; a wrong one is refused; the confirming code is already used.
    assert_eq!(
        code(&login(&h, "").await.unwrap_err()).0,
        ErrorCode::TotpRequired
    );
    assert_eq!(
        code(&login(&h, wrong).await.unwrap_err()).0,
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        code(&login(&h, &code_at(&totp, 0)).await.unwrap_err()).0,
        ErrorCode::Unauthenticated,
        "replayed"
    );
    // The next step's code (within the ±1 skew) works once, then is a replay.
    let next = code_at(&totp, 30);
    login(&h, &next).await?;
    assert_eq!(
        code(&login(&h, &next).await.unwrap_err()).0,
        ErrorCode::Unauthenticated,
        "replayed"
    );

    // The seed is not in the database in the clear.
    let seed = totp_rs::Secret::try_from_base32(&enrol.secret).unwrap();
    let seed_hex: String = seed.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let admin = sqlx::PgPool::connect(&h.pg.superuser_url(&h.db)).await?;
    let dump: Vec<String> = sqlx::query_scalar("SELECT row_to_json(t)::text FROM auth.users t")
        .fetch_all(&admin)
        .await?;
    let dump = dump.join("\n");
    assert!(dump.contains("totp_secret"));
    assert!(
        !dump.contains(&seed_hex) && !dump.contains(&enrol.secret),
        "seed stored in the clear"
    );
    Ok(())
}
