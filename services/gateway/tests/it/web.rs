//! The web app as the gateway serves it: the shell, its assets and the share page, with their
//! security headers; and the store's CORS for the app's origin, with the very headers the
//! gateway signs into an upload.

use reqwest::Method;
use serde_json::json;

use crate::files::User;
use crate::harness::{Harness, unthrottled};

const STORE: &str = "https://store.example.com:9000";

async fn harness() -> anyhow::Result<Harness> {
    Harness::start_with(coffer_gateway::GatewayConfig {
        store_origin: Some(format!("{STORE}/")),
        ..unthrottled()
    })
    .await
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Sends `GET path` over TLS exactly as written (no normalisation); returns the status.
async fn raw_get(h: &Harness, path: &str) -> anyhow::Result<u16> {
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(h.ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(h.base_addr()).await?;
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect("localhost".try_into()?, tcp)
        .await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut head = vec![0; 12];
    tls.read_exact(&mut head).await?;
    Ok(std::str::from_utf8(&head[9..12])?.parse()?)
}

/// Shares file `id` as `body` says; returns the link's path (`/s/<token>`).
async fn share_path(u: &User<'_>, id: &str, body: serde_json::Value) -> anyhow::Result<String> {
    let share = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(body),
            201,
        )
        .await?;
    Ok(format!("/s/{}", share["token"].as_str().unwrap()))
}

/// The asset paths a page names (`href="/assets/…"`, `src="/assets/…"`).
fn asset_paths(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_shell_and_its_assets_carry_a_strict_policy_and_the_right_caching() -> anyhow::Result<()>
{
    let h = harness().await?;
    let res = h.http.get(h.url("/")).send().await?;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&res, "cache-control"), "no-cache");
    assert_eq!(header(&res, "x-frame-options"), "DENY");
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    let csp = header(&res, "content-security-policy").to_owned();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        &format!("connect-src 'self' {STORE};"),
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-"), "{csp}");
    let html = res.text().await?;
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" style="));
    let assets = asset_paths(&html);
    assert!(
        assets.iter().any(|a| a.ends_with("/js/main.js")),
        "{assets:?}"
    );
    assert!(assets.iter().any(|a| a.ends_with("/app.css")), "{assets:?}");

    // Assets: long-cached under the build's hash, typed, compressed when asked, same policy.
    let build = assets[0].split('/').nth(2).unwrap().to_owned();
    for path in &assets {
        let res = h.http.get(h.url(path)).send().await?;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            header(&res, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&res, "content-security-policy"), csp);
        assert_eq!(header(&res, "x-frame-options"), "DENY");
        let kind = header(&res, "content-type");
        if path.ends_with(".js") {
            assert_eq!(kind, "text/javascript; charset=utf-8");
        } else if path.ends_with(".css") {
            assert_eq!(kind, "text/css; charset=utf-8");
        }
    }
    let gz = h
        .http
        .get(h.url(&format!("/assets/{build}/js/files.js")))
        .header("accept-encoding", "gzip")
        .send()
        .await?;
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    let packed = gz.bytes().await?.len();
    let plain = h
        .http
        .get(h.url(&format!("/assets/{build}/js/files.js")))
        .send()
        .await?;
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(packed * 2 < plain.bytes().await?.len());

    // Another build's path, or a file that is not there: 404, never cached.
    for path in [
        "/assets/0000000000000000/js/main.js".to_owned(),
        format!("/assets/{build}/js/nope.js"),
    ] {
        let res = h.http.get(h.url(&path)).send().await?;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(header(&res, "cache-control"), "no-store");
    }
    // Paths that climb out, sent as they are (an HTTP client would normalise them first).
    for path in [
        format!("/assets/{build}/../Cargo.toml"),
        format!("/assets/{build}/%2e%2e/Cargo.toml"),
        format!("/assets/{build}/js/../../web.rs"),
        format!("/assets/{build}//etc/passwd"),
    ] {
        assert_eq!(raw_get(&h, &path).await?, 404, "{path}");
    }
    // The API's answers can neither run anything nor be framed.
    let api = h.http.get(h.url("/v1/me")).send().await?;
    assert_eq!(
        header(&api, "content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(header(&api, "x-frame-options"), "DENY");
    Ok(())
}

/// A browser opening a share link that needs its password gets a form (no script) that POSTs
/// it; a wrong one says so; the right one is the redirect to the bytes; a dead link is a page
/// that says why. API clients get the JSON answers as before.
#[tokio::test]
async fn the_share_page_asks_for_the_password_in_a_form() -> anyhow::Result<()> {
    let h = harness().await?;
    let u = User::new(&h, "share-page@example.com").await?;
    let id = u.available("deal.pdf", None, b"the deal", "clean").await?;
    let path = share_path(
        &u,
        &id,
        json!({"expires_in_seconds": 3600, "password": "open sesame 7"}),
    )
    .await?;
    let browser = |method: Method| {
        h.http
            .request(method, h.url(&path))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
    };

    let page = browser(Method::GET).send().await?;
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-store");
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    let csp = header(&page, "content-security-policy").to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert!(
        csp.contains(&format!("form-action 'self' {STORE};")),
        "{csp}"
    );
    let html = page.text().await?;
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(html.contains("type=\"password\""));
    assert!(!html.contains("<script"));
    assert!(
        !html.contains(path.trim_start_matches("/s/")),
        "the token is not echoed"
    );

    let wrong = browser(Method::POST)
        .form(&[("password", "guess")])
        .send()
        .await?;
    assert_eq!(wrong.status(), 403);
    assert!(wrong.text().await?.contains("That password is not right"));

    let right = browser(Method::POST)
        .form(&[("password", "open sesame 7")])
        .send()
        .await?;
    assert_eq!(right.status(), 303);
    let location = header(&right, "location").to_owned();
    let bytes = reqwest::get(&location).await?.bytes().await?;
    assert_eq!(&bytes[..], b"the deal");

    // A stray field is refused, the password is not read from it; the browser gets a page.
    let odd = browser(Method::POST)
        .form(&[("password", "open sesame 7"), ("x", "1")])
        .send()
        .await?;
    assert_eq!(odd.status(), 400);
    assert_eq!(header(&odd, "content-type"), "text/html; charset=utf-8");
    assert!(odd.text().await?.contains("The form could not be read"));

    let dead = h
        .http
        .get(h.url("/s/not-a-real-token"))
        .header("accept", "text/html")
        .send()
        .await?;
    assert_eq!(dead.status(), 404);
    assert!(dead.text().await?.contains("This link does not work"));

    // API clients: JSON as before.
    let (status, code) = crate::harness::error_code(h.http.get(h.url(&path)).send().await?).await?;
    assert_eq!((status, code.as_str()), (403, "permission_denied"));

    // A link without a password: the browser's GET (or a link preview's) shows a button and
    // spends nothing; the button's POST redeems.
    let open_path = share_path(
        &u,
        &id,
        json!({"expires_in_seconds": 3600, "max_downloads": 1}),
    )
    .await?;
    let look = || {
        h.http
            .get(h.url(&open_path))
            .header("accept", "text/html")
            .send()
    };
    for _ in 0..3 {
        let page = look().await?;
        assert_eq!(page.status(), 200);
        let html = page.text().await?;
        assert!(html.contains("<button type=\"submit\">Download</button>"));
        assert!(!html.contains("type=\"password\""));
    }
    let listed = u
        .ok(Method::GET, &format!("/v1/files/{id}/shares"), None, 200)
        .await?;
    let downloads: Vec<u64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["downloads"].as_u64().unwrap())
        .collect();
    assert!(
        downloads.iter().all(|d| *d == 1 || *d == 0),
        "{downloads:?}"
    );
    assert_eq!(
        downloads.iter().sum::<u64>(),
        1,
        "only the password share's download counted"
    );
    let button = h
        .http
        .post(h.url(&open_path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .send()
        .await?;
    assert_eq!(button.status(), 303);
    let used_up = look().await?;
    assert_eq!(used_up.status(), 404);

    // A HEAD (a link checker) spends nothing either, and learns only whether the link works.
    let capped_path = share_path(
        &u,
        &id,
        json!({"expires_in_seconds": 3600, "max_downloads": 1}),
    )
    .await?;
    for _ in 0..3 {
        let head = h.http.head(h.url(&capped_path)).send().await?;
        assert_eq!(head.status(), 200);
        assert!(head.headers().get("location").is_none());
    }
    let redirected = h.http.get(h.url(&capped_path)).send().await?;
    assert_eq!(redirected.status(), 302, "still unspent after the HEADs");
    Ok(())
}

/// Wrong passwords lock the share: the page says when to try again, with `Retry-After`.
#[tokio::test]
async fn a_locked_share_page_says_when_to_try_again() -> anyhow::Result<()> {
    let h = harness().await?;
    let u = User::new(&h, "share-locked@example.com").await?;
    let id = u.available("x.pdf", None, b"x", "clean").await?;
    let path = share_path(
        &u,
        &id,
        json!({"expires_in_seconds": 3600, "password": "the right one 42"}),
    )
    .await?;
    let mut locked = None;
    for _ in 0..20 {
        let res = h
            .http
            .post(h.url(&path))
            .header("accept", "text/html")
            .form(&[("password", "a wrong one")])
            .send()
            .await?;
        if res.status() == 429 {
            locked = Some(res);
            break;
        }
        assert_eq!(res.status(), 403);
    }
    let locked = locked.expect("the share locks after repeated wrong passwords");
    assert!(header(&locked, "retry-after").parse::<u64>()? > 0);
    assert_eq!(header(&locked, "content-type"), "text/html; charset=utf-8");
    let html = locked.text().await?;
    assert!(
        html.contains("Too many wrong passwords. Try again in"),
        "{html}"
    );
    assert!(!html.contains("<form"));
    Ok(())
}

/// Once the org is deleted, its links' pages say they do not work (no button, no form).
#[tokio::test]
async fn a_deleted_orgs_share_page_says_the_link_does_not_work() -> anyhow::Result<()> {
    let h = harness().await?;
    let u = User::new(&h, "share-gone@example.com").await?;
    let id = u.available("y.pdf", None, b"y", "clean").await?;
    let path = share_path(&u, &id, json!({"expires_in_seconds": 3600})).await?;
    let page = || {
        h.http
            .get(h.url(&path))
            .header("accept", "text/html")
            .send()
    };
    assert_eq!(page().await?.status(), 200);
    u.ok(Method::DELETE, "/v1/org", None, 202).await?;
    let gone = page().await?;
    assert_eq!(gone.status(), 404);
    let html = gone.text().await?;
    assert!(html.contains("This link does not work") && !html.contains("<form"));
    assert_eq!(h.http.head(h.url(&path)).send().await?.status(), 404);
    Ok(())
}

/// The live events are kept by no cache.
#[tokio::test]
async fn the_event_stream_is_not_stored() -> anyhow::Result<()> {
    let h = harness().await?;
    let u = User::new(&h, "events-cache@example.com").await?;
    let res = u.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "cache-control"), "no-store");
    assert_eq!(header(&res, "content-type"), "text/event-stream");
    Ok(())
}

/// The embedded store lets the app's origin PUT with exactly the headers the gateway signs, and
/// GET; another origin gets nothing it could use.
#[tokio::test]
async fn the_store_answers_the_apps_cors_preflight_for_the_signed_headers() -> anyhow::Result<()> {
    let h = harness().await?;
    let app = h.base.clone();
    h.stack.s3.allow_origin(&app);
    let u = User::new(&h, "cors@example.com").await?;
    let created = u
        .ok(
            Method::POST,
            "/v1/files",
            Some(json!({"name": "a.txt", "size": 5, "content_type": "text/plain"})),
            201,
        )
        .await?;
    let upload = &created["upload"];
    let url = upload["url"].as_str().unwrap();
    let signed: Vec<String> = upload["headers"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.to_ascii_lowercase())
        .filter(|k| k != "content-length")
        .collect();
    assert!(!signed.is_empty());
    let plain = reqwest::Client::new();
    let preflight = |origin: &str| {
        plain
            .request(Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", signed.join(","))
            .send()
    };
    let ok = preflight(&app).await?;
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, "access-control-allow-origin"), app);
    assert!(header(&ok, "access-control-allow-methods").contains("PUT"));
    let allowed = header(&ok, "access-control-allow-headers").to_owned();
    for name in &signed {
        assert!(
            allowed.contains(name.as_str()),
            "{name} not allowed: {allowed}"
        );
    }
    let other = preflight("https://evil.example").await?;
    assert_eq!(other.status(), 403);
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // The PUT itself, as the browser sends it, and the answer it may read.
    let mut put = plain.put(url).header("origin", &app).body("hello");
    for (k, v) in upload["headers"].as_object().unwrap() {
        put = put.header(k, v.as_str().unwrap());
    }
    let res = put.send().await?;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), app);
    assert_eq!(header(&res, "access-control-expose-headers"), "ETag");
    Ok(())
}
