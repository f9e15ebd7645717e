//! Overload at the edge: beyond `[limits]`, requests are refused at once with 503, the API.md
//! error shape and `Retry-After`; nothing else fails, and once the flood is over the gateway
//! serves again.

use coffer_config::LoadLimits;
use serde_json::json;

use crate::harness::{Harness, PASSWORD, error_code};

#[tokio::test]
async fn beyond_its_limits_the_gateway_answers_503_with_retry_after_and_recovers()
-> anyhow::Result<()> {
    let h = Harness::start_with_limits(LoadLimits {
        max_in_flight: 1,
        max_queued: 0,
        ..LoadLimits::default()
    })
    .await?;
    h.session("flood@example.com").await?;
    // Logins hold their slot while auth runs Argon2id: sixteen at once find it taken.
    let logins: Vec<_> = (0..16)
        .map(|_| {
            let req = h
                .http
                .post(h.url("/v1/auth/login"))
                .json(&json!({"email": "flood@example.com", "password": PASSWORD}));
            tokio::spawn(async move { req.send().await })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for login in logins {
        let res = login.await??;
        match res.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(res.headers()["retry-after"], "1");
                assert!(res.headers().contains_key("x-request-id"));
                let (_, code) = error_code(res).await?;
                assert_eq!(code, "unavailable");
                shed += 1;
            }
            other => panic!("neither served nor shed: {other} {}", res.text().await?),
        }
    }
    assert!(ok >= 1, "the admitted login was served");
    assert!(
        shed >= 1,
        "sixteen logins at once beyond one slot: some were shed"
    );
    // The flood is over: served again.
    h.login("flood@example.com").await?;
    let metrics = h
        .http
        .get(format!("http://{}/metrics", h.admin))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("coffer_load_shed_total{kind=\"requests\",reason=\"queue_full\"}"),
        "{metrics}"
    );
    Ok(())
}
