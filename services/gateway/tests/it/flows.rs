//! The API.md auth flow end to end, cookies and CSRF, API keys, tenancy, TLS and rate limits.

use serde_json::{Value, json};

use crate::harness::{Harness, PASSWORD, client, error_code};

#[tokio::test]
async fn the_whole_auth_flow_from_a_plain_http_client() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let res = h
        .http
        .post(h.url("/v1/auth/signup"))
        .json(&json!({"org_name": "Acme", "email": "owner@acme.example", "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let created: Value = res.json().await?;

    let res = h
        .http
        .post(h.url("/v1/auth/login"))
        .json(&json!({"email": "owner@acme.example", "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"].to_str()?.to_owned();
    let mut attrs: Vec<&str> = set_cookie.split("; ").collect();
    let cookie = attrs.remove(0).to_owned();
    assert!(cookie.starts_with("coffer_session="));
    attrs.sort();
    assert_eq!(
        attrs,
        ["HttpOnly", "Path=/", "SameSite=Lax", "Secure"],
        "cookie attributes"
    );
    let login: Value = res.json().await?;
    assert_eq!(login["org_id"], created["org_id"]);
    assert_eq!(login["role"], "owner");
    let csrf = login["csrf_token"].as_str().unwrap().to_owned();

    let me: Value = h
        .http
        .get(h.url("/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(me["email"], "owner@acme.example");
    assert_eq!(me["totp_enabled"], false);
    assert_eq!(me["csrf_token"], csrf.as_str());

    // An unsafe request with the cookie and no (or a wrong) CSRF header is 403.
    for token in [None, Some("c1.AAAA")] {
        let mut req = h
            .http
            .post(h.url("/v1/api-keys"))
            .header("cookie", &cookie)
            .json(&json!({"name": "ci", "scopes": ["files:read"]}));
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        assert_eq!(
            error_code(req.send().await?).await?,
            (403, "csrf_failed".into())
        );
    }
    let res = h
        .http
        .post(h.url("/v1/api-keys"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "ci", "scopes": ["files:read"]}))
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    let key: Value = res.json().await?;
    let bearer = format!("Bearer {}", key["key"].as_str().unwrap());

    // The key authenticates without CSRF; the listing (a session's) never shows the secret.
    let me_by_key: Value = h
        .http
        .get(h.url("/v1/me"))
        .header("authorization", &bearer)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(me_by_key["email"], "owner@acme.example");
    let list = h
        .http
        .get(h.url("/v1/api-keys"))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    let listed: Value = serde_json::from_str(&list)?;
    assert_eq!(listed["items"][0]["id"], key["id"]);
    assert!(
        listed["items"][0]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        !list.contains(&key["key"].as_str().unwrap()[16..]),
        "secret listed"
    );

    // Revocation takes effect on the very next request.
    let res = h
        .http
        .delete(h.url(&format!("/v1/api-keys/{}", key["id"].as_str().unwrap())))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    let res = h
        .http
        .get(h.url("/v1/me"))
        .header("authorization", &bearer)
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (401, "unauthenticated".into()));

    // Logout revokes the session server-side and clears the cookie.
    let res = h
        .http
        .post(h.url("/v1/auth/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    assert!(res.headers()["set-cookie"].to_str()?.contains("Max-Age=0"));
    let res = h
        .http
        .get(h.url("/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (401, "unauthenticated".into()));

    // Wrong passwords are 401 with the error shape.
    let res = h
        .http
        .post(h.url("/v1/auth/login"))
        .json(&json!({"email": "owner@acme.example", "password": "not the password"}))
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (401, "unauthenticated".into()));
    Ok(())
}

#[tokio::test]
async fn another_org_gets_404_for_every_key_endpoint() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, cookie_a, csrf_a) = h.session("a@alpha.example").await?;
    let (_, cookie_b, csrf_b) = h.session("b@beta.example").await?;
    let key_a: Value = h
        .http
        .post(h.url("/v1/api-keys"))
        .header("cookie", &cookie_a)
        .header("x-csrf-token", &csrf_a)
        .json(&json!({"name": "a", "scopes": ["files:read"]}))
        .send()
        .await?
        .json()
        .await?;
    let listed: Value = h
        .http
        .get(h.url("/v1/api-keys"))
        .header("cookie", &cookie_b)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(listed["items"], json!([]));
    for id in [
        key_a["id"].as_str().unwrap().to_owned(),
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".into(),
    ] {
        let res = h
            .http
            .delete(h.url(&format!("/v1/api-keys/{id}")))
            .header("cookie", &cookie_b)
            .header("x-csrf-token", &csrf_b)
            .send()
            .await?;
        assert_eq!(error_code(res).await?, (404, "not_found".into()), "{id}");
    }
    // B's CSRF token does not work with A's cookie.
    let res = h
        .http
        .post(h.url("/v1/api-keys"))
        .header("cookie", &cookie_a)
        .header("x-csrf-token", &csrf_b)
        .json(&json!({"name": "x", "scopes": ["files:read"]}))
        .send()
        .await?;
    assert_eq!(error_code(res).await?.0, 403);
    Ok(())
}

#[tokio::test]
async fn tls_12_and_13_are_served_plain_http_is_not() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    for v in [
        reqwest::tls::Version::TLS_1_2,
        reqwest::tls::Version::TLS_1_3,
    ] {
        let c = client(&h.ca_pem, Some(v))?;
        let res = c.get(h.url("/v1/me")).send().await?;
        assert_eq!(res.status(), 401, "{v:?}");
    }
    let plain = h.base.replace("https://", "http://");
    // A TLS port answers plain HTTP with a closed connection, never with a served response.
    assert!(reqwest::get(format!("{plain}/v1/me")).await.is_err());
    let ready = reqwest::get(format!("http://{}/readyz", h.admin)).await?;
    assert_eq!(ready.status(), 200, "ready while auth answers");
    Ok(())
}

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_gateway::GatewayConfig {
        public_listen: "127.0.0.1:0".parse()?,
        rate_per_second: 1,
        rate_burst: 3,
        ..Default::default()
    })
    .await?;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let res = h.http.get(h.url("/v1/me")).send().await?;
        if res.status() == 429 {
            retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            assert_eq!(error_code(res).await?.1, "rate_limited");
            statuses.push(429);
        } else {
            statuses.push(res.status().as_u16());
        }
    }
    assert_eq!(&statuses[..3], &[401, 401, 401]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s >= 1));
    let refused = statuses.iter().filter(|s| **s == 429).count() as f64;
    let counted = coffer_telemetry::metrics().sample("coffer_gateway_rate_limited_total");
    assert!(counted.is_some_and(|n| n >= refused), "{counted:?}");
    Ok(())
}

#[tokio::test]
async fn repeated_wrong_passwords_get_429_with_retry_after() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.session("locked@example.com").await?;
    let mut last = None;
    for _ in 0..20 {
        let res = h
            .http
            .post(h.url("/v1/auth/login"))
            .json(&json!({"email": "locked@example.com", "password": "wrong password!!"}))
            .send()
            .await?;
        let retry = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        last = Some((error_code(res).await?, retry));
    }
    let ((status, code), retry) = last.unwrap();
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    Ok(())
}

#[tokio::test]
async fn owners_and_admins_add_members_into_their_own_org_only() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (org_a, cookie, csrf) = h.session("boss@alpha.example").await?;
    let add = |cookie: String, csrf: String, body: Value| {
        h.http
            .post(h.url("/v1/members"))
            .header("cookie", cookie)
            .header("x-csrf-token", csrf)
            .json(&body)
            .send()
    };
    let res = add(
        cookie.clone(),
        csrf.clone(),
        json!({"email": "adm@alpha.example", "password": PASSWORD, "role": "admin"}),
    )
    .await?;
    assert_eq!(res.status(), 201);
    let res = add(
        cookie.clone(),
        csrf.clone(),
        json!({"email": "mem@alpha.example", "password": PASSWORD, "role": "member"}),
    )
    .await?;
    assert_eq!(res.status(), 201);
    // No endpoint makes an owner.
    let res = add(
        cookie.clone(),
        csrf.clone(),
        json!({"email": "o2@alpha.example", "password": PASSWORD, "role": "owner"}),
    )
    .await?;
    assert_eq!(error_code(res).await?, (400, "invalid_argument".into()));

    // The new member logs in into the owner's org, as a member, and may not add anyone.
    let login = h
        .http
        .post(h.url("/v1/auth/login"))
        .json(&json!({"email": "mem@alpha.example", "password": PASSWORD}))
        .send()
        .await?;
    let member_cookie = login.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let member: Value = login.json().await?;
    assert_eq!(member["org_id"], org_a.as_str());
    assert_eq!(member["role"], "member");
    let res = add(
        member_cookie,
        member["csrf_token"].as_str().unwrap().to_owned(),
        json!({"email": "x@alpha.example", "password": PASSWORD, "role": "member"}),
    )
    .await?;
    assert_eq!(error_code(res).await?, (403, "permission_denied".into()));

    // Another org's owner adds into their own org, never A's.
    let (org_b, cookie_b, csrf_b) = h.session("boss@beta.example").await?;
    let res = add(
        cookie_b,
        csrf_b,
        json!({"email": "new@beta.example", "password": PASSWORD, "role": "member"}),
    )
    .await?;
    assert_eq!(res.status(), 201);
    let login: Value = h
        .http
        .post(h.url("/v1/auth/login"))
        .json(&json!({"email": "new@beta.example", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(login["org_id"], org_b.as_str());
    // An email already taken anywhere is a conflict.
    let res = add(
        cookie,
        csrf,
        json!({"email": "new@beta.example", "password": PASSWORD, "role": "member"}),
    )
    .await?;
    assert_eq!(error_code(res).await?.0, 409);
    Ok(())
}

#[tokio::test]
async fn totp_through_the_gateway() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, cookie, csrf) = h.session("mfa@example.com").await?;
    let res = h
        .http
        .post(h.url("/v1/auth/totp/enroll"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let enrol: Value = res.json().await?;
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(enrol["secret"].as_str().unwrap()).unwrap())
        .with_account_name("t")
        .build()?;
    let now = coffer_token::unix_now() as u64;
    let res = h
        .http
        .post(h.url("/v1/auth/totp/confirm"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"code": totp.generate(now).to_string()}))
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    let login = |code: Option<String>| {
        let mut body = json!({"email": "mfa@example.com", "password": PASSWORD});
        if let Some(c) = code {
            body["totp_code"] = c.into();
        }
        h.http.post(h.url("/v1/auth/login")).json(&body).send()
    };
    assert_eq!(
        error_code(login(None).await?).await?,
        (401, "totp_required".into())
    );
    assert_eq!(
        login(Some(totp.generate(now + 30).to_string()))
            .await?
            .status(),
        200
    );
    // Turning two-factor authentication on is in the audit log.
    let res = h
        .http
        .get(h.url("/v1/audit?action=auth.totp_enable"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let audit: Value = res.json().await?;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert!(
        items[0]["target"].as_str().unwrap().starts_with("user:"),
        "{audit}"
    );
    Ok(())
}

#[tokio::test]
async fn with_auth_down_requests_get_503_and_the_gateway_is_not_ready() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, cookie, _) = h.session("down@example.com").await?;
    h.stack.auth.server.shutdown().await?;
    let base = h.base.clone();
    let res = h
        .http
        .get(format!("{base}/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await?;
    // A 503 is an answer to retry, and says when.
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    assert_eq!(error_code(res).await?, (503, "unavailable".into()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ready = reqwest::get(format!("http://{}/readyz", h.admin))
            .await?
            .status();
        if ready == 503 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still ready with auth down"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn deleting_an_org_disables_it_at_once_and_an_owner_can_restore_it() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (org, cookie, csrf) = h.session("owner@gone.example").await?;
    let key: Value = h
        .http
        .post(h.url("/v1/api-keys"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "k", "scopes": ["files:read"]}))
        .send()
        .await?
        .json()
        .await?;
    let bearer = format!("Bearer {}", key["key"].as_str().unwrap());
    h.http
        .post(h.url("/v1/members"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"email": "admin@gone.example", "password": PASSWORD, "role": "admin"}))
        .send()
        .await?;
    // An admin may not delete the org.
    let admin = h
        .http
        .post(h.url("/v1/auth/login"))
        .json(&json!({"email": "admin@gone.example", "password": PASSWORD}))
        .send()
        .await?;
    let admin_cookie = admin.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let admin_csrf = admin.json::<Value>().await?["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = h
        .http
        .delete(h.url("/v1/org"))
        .header("cookie", &admin_cookie)
        .header("x-csrf-token", &admin_csrf)
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (403, "permission_denied".into()));

    let res = h
        .http
        .delete(h.url("/v1/org"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await?;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await?;
    assert!(body["purge_after"].as_str().unwrap().ends_with('Z'));
    // Disabled at once: the session, the API key and new logins are all refused.
    for res in [
        h.http
            .get(h.url("/v1/me"))
            .header("cookie", &cookie)
            .send()
            .await?,
        h.http
            .get(h.url("/v1/me"))
            .header("authorization", &bearer)
            .send()
            .await?,
        h.http
            .post(h.url("/v1/auth/login"))
            .json(&json!({"email": "owner@gone.example", "password": PASSWORD}))
            .send()
            .await?,
    ] {
        assert_eq!(error_code(res).await?.0, 401);
    }
    // Only an owner's password restores it.
    let res = h
        .http
        .post(h.url("/v1/org/restore"))
        .json(&json!({"email": "admin@gone.example", "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(error_code(res).await?.0, 401);
    let res = h
        .http
        .post(h.url("/v1/org/restore"))
        .json(&json!({"email": "owner@gone.example", "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await?["org_id"], org.as_str());
    let res = h
        .http
        .get(h.url("/v1/me"))
        .header("authorization", &bearer)
        .send()
        .await?;
    assert_eq!(
        res.status(),
        200,
        "the API key works again after the restore"
    );
    Ok(())
}

/// Behind an ingress every connection comes from the ingress: only from a trusted proxy is
/// `X-Forwarded-For` believed (the rightmost untrusted hop is the client, each with its own
/// budget); from any other peer the header is ignored, so a client cannot mint addresses.
#[tokio::test]
async fn forwarded_clients_are_believed_only_from_trusted_proxies() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_gateway::GatewayConfig {
        public_listen: "127.0.0.1:0".parse()?,
        rate_per_second: 1,
        rate_burst: 3,
        trusted_proxies: vec!["127.0.0.1/32".parse()?],
        ..Default::default()
    })
    .await?;
    let statuses = |client: reqwest::Client, xff: Vec<&'static str>| {
        let url = h.url("/v1/me");
        async move {
            let mut out = Vec::new();
            for v in xff {
                out.push(
                    client
                        .get(&url)
                        .header("x-forwarded-for", v)
                        .send()
                        .await?
                        .status()
                        .as_u16(),
                );
            }
            anyhow::Ok(out)
        }
    };
    // From the trusted proxy (127.0.0.1): one client's budget runs out, the next one's is whole,
    // and a forged entry to the left of the proxy's own changes nothing.
    let proxy = client(&h.ca_pem, None)?;
    let one = vec!["203.0.113.1"; 4];
    assert_eq!(statuses(proxy.clone(), one).await?, [401, 401, 401, 429]);
    let forged = vec!["198.51.100.9, 203.0.113.1"];
    assert_eq!(statuses(proxy.clone(), forged).await?, [429]);
    let two = vec!["203.0.113.2"; 3];
    assert_eq!(statuses(proxy.clone(), two).await?, [401, 401, 401]);

    // From an untrusted peer (127.0.0.2): a fresh address in the header each time does not
    // buy a fresh budget.
    let outsider = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(h.ca_pem.as_bytes())?)
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .resolve("localhost", h.base_addr())
        .build()?;
    let spoofed = vec![
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
        "192.0.2.4",
        "192.0.2.5",
    ];
    let got = statuses(outsider, spoofed).await?;
    assert_eq!(&got[..3], &[401, 401, 401]);
    assert!(got[3..].iter().all(|s| *s == 429), "{got:?}");
    Ok(())
}

/// A renewed public certificate (cert-manager rewrites the secret's files) is served to new
/// connections within seconds, without a restart; a half-written pair never is.
#[tokio::test]
async fn a_renewed_public_certificate_is_served_without_a_restart() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let renewal = coffer_testkit::DevCa::new("the renewal's CA")?;
    let trusts_renewal = || client(&renewal.ca_pem(), None);
    assert!(
        trusts_renewal()?.get(h.url("/v1/me")).send().await.is_err(),
        "the renewal's CA already verifies the gateway"
    );
    let mut spec = coffer_testkit::CertSpec::service("gateway");
    spec.dns.push("localhost".into());
    spec.ips.push("127.0.0.1".parse()?);
    let renewed = renewal.issue_spec(&spec)?;
    let dir = h.stack.dir.path().join("gateway");
    // The certificate first: for a moment the pair does not match, and the old one stays.
    std::fs::write(dir.join("public-tls.crt"), &renewed.cert_pem)?;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // A fresh client (a new handshake) still gets the old certificate.
    let old = client(&h.ca_pem, None)?;
    assert_eq!(old.get(h.url("/v1/me")).send().await?.status(), 401);
    std::fs::write(dir.join("public-tls.key"), &renewed.key_pem)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match trusts_renewal()?.get(h.url("/v1/me")).send().await {
            Ok(res) => {
                assert_eq!(res.status(), 401);
                break;
            }
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "the renewed certificate is not served: {e}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // New connections no longer get the old certificate.
    assert!(
        client(&h.ca_pem, None)?
            .get(h.url("/v1/me"))
            .send()
            .await
            .is_err()
    );
    Ok(())
}
