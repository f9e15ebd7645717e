//! The audit endpoints and the audit trail of file actions, through the real gateway: every
//! action is in the log before the client sees success, the export verifies offline, and with
//! the audit service down nothing happens.

use reqwest::Method;
use serde_json::{Value, json};

use crate::files::User;
use crate::harness::{Harness, PASSWORD, error_code};

fn public_key() -> [u8; 32] {
    coffer_auditlog::Signer::from_text("audit-1", coffer_audit::testing::SIGNING_SEED)
        .unwrap()
        .public_key()
}

/// Shares the file for a minute and follows the link once, without a session; returns the token.
async fn share_and_redeem(h: &Harness, u: &User<'_>, id: &str) -> anyhow::Result<String> {
    let share = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(json!({"expires_in_seconds": 60})),
            201,
        )
        .await?;
    let token = share["token"].as_str().unwrap().to_owned();
    let res = crate::harness::client(&h.ca_pem, None)?
        .get(h.url(&format!("/s/{token}")))
        .send()
        .await?;
    assert_eq!(res.status(), 302);
    Ok(token)
}

#[tokio::test]
async fn file_actions_are_in_the_log_and_the_export_verifies() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "audited@example.com").await?;
    let id = u.available("audited.txt", None, b"bytes", "clean").await?;
    u.ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    u.ok(
        Method::PATCH,
        &format!("/v1/files/{id}"),
        Some(json!({"name": "renamed.txt"})),
        200,
    )
    .await?;
    share_and_redeem(&h, &u, &id).await?;
    u.ok(Method::DELETE, &format!("/v1/files/{id}"), None, 204)
        .await?;
    u.ok(Method::POST, &format!("/v1/files/{id}/restore"), None, 200)
        .await?;
    u.ok(Method::DELETE, &format!("/v1/files/{id}/purge"), None, 204)
        .await?;

    let log = u.ok(Method::GET, "/v1/audit?limit=50", None, 200).await?;
    let items = log["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "auth.login",
            "file.upload",
            "file.download",
            "file.rename",
            "share.create",
            "share.download",
            "file.delete",
            "file.restore",
            "file.purge"
        ]
    );
    let file_target = format!("file:{id}");
    assert!(
        items
            .iter()
            .filter(|e| e["target"] == file_target.as_str())
            .count()
            >= 6
    );
    for e in items {
        for key in [
            "seq",
            "at",
            "actor",
            "action",
            "target",
            "outcome",
            "request_id",
            "hash",
        ] {
            assert!(e.get(key).is_some(), "{key} missing: {e}");
        }
    }
    // The share download was a system action of metadata, for the org.
    let share_download = items
        .iter()
        .find(|e| e["action"] == "share.download")
        .unwrap();
    assert_eq!(share_download["actor"], "service:metadata");
    // No file name anywhere in the log.
    let text = log.to_string();
    assert!(!text.contains("audited.txt") && !text.contains("renamed.txt"));

    let v = u.ok(Method::GET, "/v1/audit/verify", None, 200).await?;
    assert_eq!(v["ok"], true);
    assert_eq!(v["count"], 9);
    let res = u.send(Method::GET, "/v1/audit/export", None).await?;
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let export = res.text().await?;
    let published = u.ok(Method::GET, "/v1/audit/public-key", None, 200).await?;
    let key =
        coffer_auditlog::public_key_from_text(published["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(key, public_key());
    let summary = coffer_auditlog::verify_export(&export, &key)?;
    assert_eq!(summary.events, 9);
    assert_eq!(summary.head_hash, v["head_hash"].as_str().unwrap());
    // The purged file's rows are still there, and still verify: done above, after the purge.
    Ok(())
}

#[tokio::test]
async fn folder_actions_are_in_the_log() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "folders-audited@example.com").await?;
    let parent = u
        .ok(
            Method::POST,
            "/v1/folders",
            Some(json!({"name": "Payroll"})),
            201,
        )
        .await?;
    let child = u
        .ok(
            Method::POST,
            "/v1/folders",
            Some(json!({"name": "2026"})),
            201,
        )
        .await?;
    let (parent, child) = (
        parent["id"].as_str().unwrap().to_owned(),
        child["id"].as_str().unwrap().to_owned(),
    );
    u.ok(
        Method::PATCH,
        &format!("/v1/folders/{child}"),
        Some(json!({"name": "2027"})),
        200,
    )
    .await?;
    u.ok(
        Method::PATCH,
        &format!("/v1/folders/{child}"),
        Some(json!({"parent_id": parent})),
        200,
    )
    .await?;
    u.ok(Method::DELETE, &format!("/v1/folders/{parent}"), None, 204)
        .await?;
    let log = u.ok(Method::GET, "/v1/audit?limit=50", None, 200).await?;
    let events: Vec<(String, String)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|e| e["action"] != "auth.login")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let (p, c) = (format!("folder:{parent}"), format!("folder:{child}"));
    assert_eq!(
        events,
        [
            ("folder.create".to_owned(), p.clone()),
            ("folder.create".to_owned(), c.clone()),
            ("folder.rename".to_owned(), c.clone()),
            ("folder.move".to_owned(), c),
            ("folder.delete".to_owned(), p),
        ]
    );
    // No folder name in the log: not as a value of any field (the hashes, ids and times are hex
    // and digits, so "2027" may well occur inside one of them by chance).
    let mut strings = Vec::new();
    fn collect<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            Value::Object(o) => o.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&log, &mut strings);
    for name in ["Payroll", "2026", "2027"] {
        assert!(
            strings.iter().all(|s| *s != name && !s.contains("Payroll")),
            "the folder name {name} is in the log"
        );
    }
    Ok(())
}

#[tokio::test]
async fn only_owners_and_admins_of_the_org_read_it() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let a = User::new(&h, "audit-a@example.com").await?;
    let b = User::new(&h, "audit-b@example.com").await?;
    let id = a.available("a.txt", None, b"a", "clean").await?;
    a.ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    // B's owner sees none of A's events: only B's own login.
    let log = b.ok(Method::GET, "/v1/audit", None, 200).await?;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["action"], "auth.login");
    assert!(!log.to_string().contains(&id));
    let v = b.ok(Method::GET, "/v1/audit/verify", None, 200).await?;
    assert_eq!(v["count"], 1);
    // A member of A is refused; so is an API key without audit:read; one with it reads.
    a.ok(
        Method::POST,
        "/v1/members",
        Some(json!({"email": "member-a@example.com", "password": PASSWORD, "role": "member"})),
        201,
    )
    .await?;
    let login = h
        .http
        .post(h.url("/v1/auth/login"))
        .json(&json!({"email": "member-a@example.com", "password": PASSWORD}))
        .send()
        .await?;
    let cookie = login.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let res = h
        .http
        .get(h.url("/v1/audit"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (403, "permission_denied".into()));
    for (scopes, status) in [(json!(["files:read"]), 403), (json!(["audit:read"]), 200)] {
        let key: Value = a
            .ok(
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "k", "scopes": scopes})),
                201,
            )
            .await?;
        let res = h
            .http
            .get(h.url("/v1/audit"))
            .bearer_auth(key["key"].as_str().unwrap())
            .send()
            .await?;
        assert_eq!(res.status().as_u16(), status, "{scopes}");
    }
    Ok(())
}

#[tokio::test]
async fn with_audit_down_actions_fail_closed() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "fail-closed@example.com").await?;
    let id = u.available("f.txt", None, b"f", "clean").await?;
    h.stack.audit().server.shutdown().await?;
    let res = u
        .send(Method::GET, &format!("/v1/files/{id}/download"), None)
        .await?;
    let body = res.text().await?;
    assert!(
        !body.contains("http://"),
        "a URL left without its audit row: {body}"
    );
    let parsed: Value = serde_json::from_str(&body)?;
    assert_eq!(parsed["error"]["code"], "unavailable");
    // A rename is not done either.
    let (status, code) = u
        .err(
            Method::PATCH,
            &format!("/v1/files/{id}"),
            Some(json!({"name": "other.txt"})),
        )
        .await?;
    assert_eq!((status, code.as_str()), (503, "unavailable"));
    let file = u
        .ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
        .await?;
    assert_eq!(file["name"], "f.txt");
    // Nor a purge: the object is still stored.
    assert_eq!(
        u.err(Method::DELETE, &format!("/v1/files/{id}/purge"), None)
            .await?
            .0,
        503
    );
    u.ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
        .await?;
    Ok(())
}

#[tokio::test]
async fn edge_metrics_name_route_templates_never_ids_or_tokens() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "metered@example.com").await?;
    let id = u
        .available("metered-zqx.txt", None, b"bytes", "clean")
        .await?;
    u.ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    let token = share_and_redeem(&h, &u, &id).await?;
    let public = crate::harness::client(&h.ca_pem, None)?;
    let res = public.get(h.url(&format!("/nope/{id}"))).send().await?;
    assert_eq!(res.status(), 404);
    // A made-up method is counted as `_OTHER`, never under its own name.
    let invented = reqwest::Method::from_bytes(b"ZQXMETHOD")?;
    let res = public.request(invented, h.url("/v1/me")).send().await?;
    assert!(res.status().is_client_error(), "{}", res.status());

    let text = reqwest::get(format!("http://{}/metrics", h.admin))
        .await?
        .text()
        .await?;
    for line in [
        r#"coffer_http_server_requests_total{route="/v1/files/{id}/download",method="GET",status="200"}"#,
        r#"coffer_http_server_requests_total{route="/s/{token}",method="GET",status="302"}"#,
        r#"coffer_http_server_requests_total{route="unmatched",method="GET",status="404"}"#,
        r#"coffer_http_server_duration_seconds_count{route="/v1/files/{id}/download",method="GET"}"#,
    ] {
        assert!(text.contains(line), "{line} missing");
    }
    assert!(
        text.contains(r#"method="_OTHER""#),
        "the made-up method is not counted"
    );
    for secret in [id.as_str(), token.as_str(), "metered-zqx", "ZQXMETHOD"] {
        assert!(!text.contains(secret), "the metrics hold {secret}");
    }
    Ok(())
}
