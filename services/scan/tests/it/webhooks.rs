//! Webhooks: deliveries verify with the independent `standardwebhooks` package from PyPI (and
//! fail there when tampered with or too old); failed deliveries are retried; internal targets in
//! every spelling, names resolving to loopback and redirects are refused, and a sink on loopback
//! sees no connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_proto::v1::{self as pb};
use coffer_scan::ScanConfig;
use coffer_scan::testing::{ScanStack, TestUser};
use coffer_scan::webhook::WebhookConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

use crate::harness::{scan_db, upload, verdict, verdict_name};

/// One request a sink received.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// A plain HTTP/1.1 receiver on loopback: counts connections, keeps requests, and answers with
/// the next status of `answers` (the last one repeats); 302 answers redirect to `location`.
struct Sink {
    port: u16,
    connections: Arc<Mutex<usize>>,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn sink(answers: Vec<u16>, location: Option<String>) -> anyhow::Result<Sink> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let connections = Arc::new(Mutex::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (c, r) = (connections.clone(), received.clone());
    tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok((mut s, _)) = listener.accept().await {
            *c.lock().unwrap() += 1;
            let status = *answers.get(n).or(answers.last()).unwrap_or(&204);
            n += 1;
            let (r, location) = (r.clone(), location.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let k = s.read(&mut chunk).await.unwrap_or(0);
                    if k == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..k]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let headers: Vec<(String, String)> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let k = s.read(&mut chunk).await.unwrap_or(0);
                    if k == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..k]);
                }
                r.lock().unwrap().push(Received {
                    headers,
                    body: buf[head_end..].to_vec(),
                });
                let extra = match (&location, status) {
                    (Some(l), 302) => format!("location: {l}\r\n"),
                    _ => String::new(),
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {status} X\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n").as_bytes())
                    .await;
            });
        }
    });
    Ok(Sink {
        port,
        connections,
        received,
    })
}

async fn set(
    stack: &ScanStack,
    user: &TestUser,
    url: &str,
) -> Result<pb::SetWebhookResponse, tonic::Status> {
    user.call(
        stack
            .scan_as("gateway")
            .unwrap()
            .set_webhook(pb::SetWebhookRequest { url: url.into() }),
    )
    .await
    .map(|r| r.into_inner())
}

/// Runs the `standardwebhooks` package's verifier on a delivery; true if it accepts it.
fn python_verifies(
    secret: &str,
    id: &str,
    ts: &str,
    sig: &str,
    body: &[u8],
) -> anyhow::Result<bool> {
    let script = r#"
import sys, standardwebhooks
secret, msg_id, ts, sig, body = sys.argv[1:6]
try:
    standardwebhooks.Webhook(secret).verify(body.encode(), {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
    print("ok")
except Exception as e:
    print("refused", type(e).__name__)
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            secret,
            id,
            ts,
            sig,
            std::str::from_utf8(body)?,
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "ok")
}

async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn deliveries_are_signed_retried_and_verify_with_standardwebhooks() -> anyhow::Result<()> {
    let config = ScanConfig {
        webhook: WebhookConfig {
            allow_loopback_for_tests: true,
            backoff_base_secs: 1,
            poll_interval_ms: 100,
            ..WebhookConfig::default()
        },
        ..ScanConfig::default()
    };
    let stack = ScanStack::start(Default::default(), config).await?;
    let user = stack.user().await?;
    // Fails once (500), then takes deliveries.
    let s = sink(vec![500, 204], None).await?;
    let hook = set(
        &stack,
        &user,
        &format!("http://127.0.0.1:{}/coffer", s.port),
    )
    .await?;
    assert!(hook.secret.starts_with("whsec_"));

    let id = upload(&stack, &user, "q3.txt", "text/plain", b"quarter three").await?;
    assert_eq!(
        verdict_name(verdict(&stack, &user, &id).await?.verdict),
        "clean"
    );
    let got = wait_for(|| {
        let r = s.received.lock().unwrap();
        (r.len() >= 2).then(|| r.clone())
    })
    .await?;
    // The retry is the same message: same id, same body, a fresh signature.
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body);
    let d = &got[1];
    let event: serde_json::Value = serde_json::from_slice(&d.body)?;
    assert_eq!(event["type"], "file.scanned");
    assert_eq!(event["data"]["file_id"], id.as_str());
    assert_eq!(event["data"]["verdict"], "clean");
    assert!(
        !String::from_utf8_lossy(&d.body).contains("q3"),
        "a file name in a webhook"
    );
    let (msg, ts, sig) = (
        d.header("webhook-id"),
        d.header("webhook-timestamp"),
        d.header("webhook-signature"),
    );
    assert!(msg.starts_with("msg_") && sig.starts_with("v1,"));

    // An independent verifier accepts it; a tampered body, another id, or a timestamp moved by
    // more than five minutes (re-signed, so only the age is wrong) are refused there.
    assert!(python_verifies(&hook.secret, &msg, &ts, &sig, &d.body)?);
    let mut tampered = d.body.clone();
    tampered[10] ^= 1;
    assert!(!python_verifies(&hook.secret, &msg, &ts, &sig, &tampered)?);
    assert!(!python_verifies(
        &hook.secret,
        "msg_other",
        &ts,
        &sig,
        &d.body
    )?);
    let old: i64 = ts.parse::<i64>()? - 301;
    let old_sig = coffer_scan::webhook::sign(&hook.secret, &msg, old, &d.body).unwrap();
    assert!(!python_verifies(
        &hook.secret,
        &msg,
        &old.to_string(),
        &old_sig,
        &d.body
    )?);
    // Ours agrees, and never takes an empty signature.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(coffer_scan::webhook::verify(&hook.secret, &msg, &ts, &sig, &d.body, now).is_ok());
    assert!(coffer_scan::webhook::verify(&hook.secret, &msg, &ts, "v1,", &d.body, now).is_err());

    // The sender records the try once the receiver's answer is in: a moment after the receiver
    // saw the request (reading the row at once raced that: seen failing as (2, "500", false)).
    let mut db = scan_db(&stack).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (attempts, status, delivered) = loop {
        let row: (i32, String, bool) = sqlx::query_as(
            "SELECT attempts, last_status, delivered_at IS NOT NULL FROM deliveries",
        )
        .fetch_one(&mut db)
        .await?;
        if row.2 || tokio::time::Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((attempts, status.as_str(), delivered), (2, "204", true));
    // Both tries are counted by outcome (the row's update precedes the count by a moment).
    let m = coffer_telemetry::metrics();
    wait_for(|| {
        let n = |o: &str| {
            m.sample(&format!(
                "coffer_scan_webhook_deliveries_total{{outcome=\"{o}\"}}"
            ))
            .unwrap_or(0.0)
        };
        (n("failed") >= 1.0 && n("delivered") >= 1.0).then_some(())
    })
    .await?;
    // The secret is stored sealed, not in clear: the stored bytes hold neither the secret's
    // text nor its key bytes, and are longer than the text (nonce and tag).
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret_sealed FROM webhooks")
        .fetch_one(&mut db)
        .await?;
    let key = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        hook.secret.trim_start_matches("whsec_"),
    )?;
    for needle in [hook.secret.as_bytes(), &key[..16]] {
        assert!(
            !sealed.windows(needle.len()).any(|w| w == needle),
            "secret in clear"
        );
    }
    assert!(sealed.len() >= hook.secret.len() + 28);

    // Members cannot set the webhook; owners and admins can.
    let member = coffer_token::Minter::new(stack.stack.ring()).mint(
        &coffer_token::Subject {
            user_id: uuid::Uuid::new_v4(),
            org_id: user.org,
            role: coffer_token::Role::Member,
            scopes: coffer_token::Scopes::all(),
            credential: coffer_token::Credential::Session,
            request_id: "req-member".into(),
        },
        &[coffer_token::Audience::Scan],
        coffer_token::unix_now(),
        60,
    )?;
    let member = TestUser {
        org: user.org,
        token: member,
    };
    let e = set(&stack, &member, "https://hooks.example.com/x")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Nor can an owner's API key, whatever its scopes: the webhook is org management, for a
    // browser session only, refused here over mTLS before the handler runs.
    let key = coffer_token::Minter::new(stack.stack.ring()).mint(
        &coffer_token::Subject {
            user_id: uuid::Uuid::new_v4(),
            org_id: user.org,
            role: coffer_token::Role::Owner,
            scopes: coffer_token::Scopes::all(),
            credential: coffer_token::Credential::ApiKey(uuid::Uuid::new_v4()),
            request_id: "req-key".into(),
        },
        &[coffer_token::Audience::Scan],
        coffer_token::unix_now(),
        60,
    )?;
    let key = TestUser {
        org: user.org,
        token: key,
    };
    let e = set(&stack, &key, "https://hooks.attacker.example/x")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(
        coffer_errors::from_status(&e).0,
        coffer_errors::ErrorCode::SessionRequired
    );
    Ok(())
}

#[tokio::test]
async fn internal_targets_and_redirects_are_refused() -> anyhow::Result<()> {
    let config = ScanConfig {
        webhook: WebhookConfig {
            poll_interval_ms: 100,
            ..WebhookConfig::default()
        },
        ..ScanConfig::default()
    };
    let stack = ScanStack::start(Default::default(), config).await?;
    let user = stack.user().await?;
    let inner = sink(vec![204], None).await?;
    let p = inner.port;
    for url in [
        format!("https://127.1:{p}/"),
        format!("https://0x7f000001:{p}/"),
        format!("https://2130706433:{p}/"),
        format!("https://[::ffff:127.0.0.1]:{p}/"),
        format!("https://[::1]:{p}/"),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://10.0.0.7/hook".into(),
        format!("http://127.0.0.1:{p}/"),
        "ftp://example.com/".into(),
    ] {
        let e = set(&stack, &user, &url).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{url}: {e:?}");
    }
    // A name is checked when it is resolved, at delivery: localhost resolves to loopback.
    set(&stack, &user, &format!("https://localhost:{p}/hook")).await?;
    let id = upload(&stack, &user, "x.txt", "text/plain", b"x").await?;
    verdict(&stack, &user, &id).await?;
    let mut db = scan_db(&stack).await?;
    let status: String = wait_for_status(&mut db).await?;
    assert!(status.contains("loopback"), "{status}");
    assert_eq!(
        *inner.connections.lock().unwrap(),
        0,
        "the loopback sink was reached"
    );
    Ok(())
}

async fn wait_for_status(db: &mut sqlx::PgConnection) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s: Option<String> = sqlx::query_scalar("SELECT last_status FROM deliveries LIMIT 1")
            .fetch_optional(&mut *db)
            .await?
            .flatten();
        if let Some(s) = s {
            return Ok(s);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no delivery tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn redirects_are_never_followed() -> anyhow::Result<()> {
    // Loopback allowed (both sinks live here), so only the redirect rule stands in the way.
    let config = ScanConfig {
        webhook: WebhookConfig {
            allow_loopback_for_tests: true,
            poll_interval_ms: 100,
            ..WebhookConfig::default()
        },
        ..ScanConfig::default()
    };
    let stack = ScanStack::start(Default::default(), config).await?;
    let user = stack.user().await?;
    let internal = sink(vec![204], None).await?;
    let redirect = sink(
        vec![302],
        Some(format!("http://127.0.0.1:{}/internal", internal.port)),
    )
    .await?;
    set(
        &stack,
        &user,
        &format!("http://127.0.0.1:{}/hook", redirect.port),
    )
    .await?;
    let id = upload(&stack, &user, "y.txt", "text/plain", b"y").await?;
    verdict(&stack, &user, &id).await?;
    let mut db = scan_db(&stack).await?;
    assert_eq!(wait_for_status(&mut db).await?, "302");
    assert_eq!(*redirect.connections.lock().unwrap(), 1);
    assert_eq!(
        *internal.connections.lock().unwrap(),
        0,
        "the redirect was followed"
    );
    let delivered: bool = sqlx::query_scalar("SELECT delivered_at IS NOT NULL FROM deliveries")
        .fetch_one(&mut db)
        .await?;
    assert!(!delivered);
    Ok(())
}
