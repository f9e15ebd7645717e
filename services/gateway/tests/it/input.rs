//! Bad input is 400/404/413 with the error shape: never a 500, a panic or a hang.

use serde_json::json;

use crate::harness::{Harness, PASSWORD, error_code};

#[tokio::test]
async fn bad_bodies_get_clear_errors() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let signup = h.url("/v1/auth/signup");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed json", b"{\"org_name\": ".to_vec(), 400, "invalid_argument"),
        ("empty body", Vec::new(), 400, "invalid_argument"),
        ("wrong type", br#"{"org_name": 5, "email": "a@b.example", "password": "x"}"#.to_vec(), 400, "invalid_argument"),
        ("unknown field", br#"{"org_name": "o", "email": "a@b.example", "password": "correct horse battery", "admin": true}"#.to_vec(), 400, "invalid_argument"),
        ("missing field", br#"{"org_name": "o"}"#.to_vec(), 400, "invalid_argument"),
        ("invalid utf-8", b"{\"org_name\": \"\xff\xfe\", \"email\": \"a@b.example\", \"password\": \"x\"}".to_vec(), 400, "invalid_argument"),
        ("not an object", b"[1, 2, 3]".to_vec(), 400, "invalid_argument"),
        ("10 MB", vec![b' '; 10 * 1024 * 1024], 413, "too_large"),
    ];
    for (what, body, status, code) in cases {
        let res = h
            .http
            .post(&signup)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        assert_eq!(error_code(res).await?, (status, code.into()), "{what}");
    }
    // The field at fault is named; the submitted value is never echoed.
    let res = h
        .http
        .post(&signup)
        .json(&json!({"org_name": "o", "email": "a@b.example", "password": 123456789}))
        .send()
        .await?;
    let text = res.text().await?;
    assert!(
        text.contains("password") && !text.contains("123456789"),
        "{text}"
    );
    let res = h
        .http
        .post(&signup)
        .json(&json!({"org_name": "x".repeat(201), "email": "a@b.example", "password": PASSWORD}))
        .send()
        .await?;
    let text = res.text().await?;
    assert!(text.contains("org_name"), "{text}");
    // No content type.
    let res = h.http.post(&signup).body("{}").send().await?;
    assert_eq!(error_code(res).await?, (400, "invalid_argument".into()));
    Ok(())
}

#[tokio::test]
async fn unknown_paths_and_methods_use_the_error_shape() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let res = h.http.get(h.url("/v1/nothing-here")).send().await?;
    assert_eq!(error_code(res).await?, (404, "not_found".into()));
    let res = h.http.put(h.url("/v1/me")).send().await?;
    assert_eq!(error_code(res).await?.0, 400);
    // A cookie that was not signed by us is 401, not a 500.
    let res = h
        .http
        .get(h.url("/v1/me"))
        .header("cookie", "coffer_session=forged.c1.AAAA")
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (401, "unauthenticated".into()));
    let res = h
        .http
        .get(h.url("/v1/me"))
        .header("authorization", "Basic abc")
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (401, "unauthenticated".into()));
    Ok(())
}
