//! The observability files against the live mesh: `coffer-dev up --observability` (every service
//! as its own process, a real Prometheus scraping them, Alertmanager) with OTLP export to a
//! collector in this test and every service logging at debug. Traffic exercises every panel
//! (uploads, a download, a share, a quarantined file, a quota refusal, refused credentials, a
//! forged token and a denied caller on the mesh, a broken TLS handshake, bad and throttled
//! logins, a rate-limited burst, a failing webhook, an open event stream); then:
//!
//! - every dashboard query runs through Prometheus's HTTP API: no parse error, no empty result,
//!   and not all zero unless the panel shows something this traffic must not cause (errors);
//! - every metric name in observability/ is one Prometheus scraped, and every label matcher
//!   there matches a label value some service emits;
//! - one download is one trace: spans of gateway, auth, metadata, storage-signer and audit with
//!   one trace id and parents inside it, and that trace id in each of those services' logs;
//! - no file name, password, session, CSRF token, API key or share token in any service's log
//!   lines, its metrics or its spans.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use coffer_testkit::{CollectedSpan as Span, OtlpCollector};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::metric_names;

mod support;
use serde_json::Value;

/// Panels whose every value may be zero (or no number at all) after this traffic: they show
/// failures, work that only time causes, or a queue that has drained. Every other panel must
/// show something the traffic caused.
const MAY_BE_ZERO: &[&str] = &[
    "Server errors (5xx) ratio",
    "Server-error ratio by service",
    "Answers other than Ok, by RPC and code",
    "Audit appends failing",
    "Audit chain verify failures",
    "Stale uploads swept, purged objects deleted after the recovery window",
    "Leases reaped (workers that died or hung)",
    "clamd errors",
    "Engine children without a report, by reason",
    "Jobs by state",
    "Oldest queued job",
    "Waiting for a connection",
    "Quota refusals",
    "Presigned URLs by kind",
    "Store calls by operation and outcome",
    "TLS handshake failures",
    "Caller denials (a service calling an RPC it may not)",
    "Token rejections by reason",
    "Refused credentials (sessions, API keys)",
    "Rate-limit refusals (429)",
    "Login failures and throttles by reason",
    "Quarantines by verdict",
    // Overload: the dev mesh's limits are far above what this traffic reaches, and a request
    // holds its slot only until its answer's head (the gateway's overload test provokes both).
    "Refused as overloaded (503 / UNAVAILABLE) by service and kind",
    "Work in flight and queued",
];

fn observability() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../observability")
}

fn wait_for(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The mesh's public API as one signed-in browser would use it.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
    email: String,
    password: String,
}

impl Browser {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let res = self.req(method, path).json(&body).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Uploads `bytes` as `name` and waits for the verdict; returns the file's id and status.
    async fn upload(&self, name: &str, content_type: &str, bytes: &[u8]) -> (String, String) {
        let (status, created) = self
            .json(
                reqwest::Method::POST,
                "/v1/files",
                serde_json::json!({"name": name, "size": bytes.len(), "content_type": content_type}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["file"]["id"].as_str().unwrap().to_owned();
        let mut put = reqwest::Client::new().put(created["upload"]["url"].as_str().unwrap());
        for (k, v) in created["upload"]["headers"].as_object().unwrap() {
            if k != "content-length" {
                put = put.header(k, v.as_str().unwrap());
            }
        }
        assert!(
            put.body(bytes.to_vec())
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
        let (status, _) = self
            .json(
                reqwest::Method::POST,
                &format!("/v1/files/{id}/complete"),
                Value::Null,
            )
            .await;
        assert_eq!(status, 200);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, file) = self
                .json(
                    reqwest::Method::GET,
                    &format!("/v1/files/{id}"),
                    Value::Null,
                )
                .await;
            let status = file["status"].as_str().unwrap_or_default().to_owned();
            if status != "scanning" {
                return (id, status);
            }
            assert!(Instant::now() < deadline, "no verdict within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn session_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .find(|c| c.starts_with("coffer_session="))
        .expect("a session cookie")
}

async fn login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    http.post(format!("{base}/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Runs an instant query; returns the result vector.
async fn query(prom: &str, expr: &str) -> Result<Vec<Value>, String> {
    let res = reqwest::Client::new()
        .post(format!("{prom}/api/v1/query"))
        .form(&[("query", expr)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = res.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{}: {}", body["errorType"], body["error"]));
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

fn sample_values(result: &[Value]) -> Vec<f64> {
    result
        .iter()
        .filter_map(|r| r["value"][1].as_str()?.parse().ok())
        .collect()
}

/// Every `label="value"` and `label=~"regex"` matcher of a PromQL expression (not the
/// dashboards' `$variables`).
fn matchers(expr: &str) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find('"') {
        let q = i + pos;
        let end = match expr[q + 1..].find('"') {
            Some(e) => q + 1 + e,
            None => break,
        };
        let value = &expr[q + 1..end];
        // What precedes the quote: `label=` or `label=~` (or `!=`, `!~`, skipped).
        let mut j = q;
        let regex = j >= 2 && &expr[j - 2..j] == "=~";
        let eq = j >= 1 && bytes[j - 1] == b'=' && !(j >= 2 && bytes[j - 2] == b'!');
        if regex || eq {
            j -= if regex { 2 } else { 1 };
            let label: String = expr[..j]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let in_function = expr[..j].ends_with(&format!("({label}"));
            if !label.is_empty() && !value.contains('$') && label != "__name__" && !in_function {
                out.push((label, regex, value.to_owned()));
            }
        }
        i = end + 1;
    }
    out
}

fn dashboard_targets() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let dir = observability().join("grafana/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for file in files {
        let d: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((
                    d["uid"].as_str().unwrap().to_owned(),
                    p["title"].as_str().unwrap().to_owned(),
                    t["expr"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

fn rule_exprs() -> Vec<String> {
    let text =
        std::fs::read_to_string(observability().join("prometheus/rules/coffer.rules.yml")).unwrap();
    let doc = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    let mut out = Vec::new();
    for group in doc["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            out.push(rule["expr"].as_str().unwrap().to_owned());
        }
    }
    out
}

/// A trace id a client offers (and the edge must not adopt).
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// What one round of traffic leaves that must not show up in logs, and the download to follow.
struct Round {
    names: Vec<String>,
    download_request: String,
    share_token: String,
    api_key: String,
}

/// One round of traffic that exercises every panel. Run twice: a series a round creates is
/// first scraped at its value then, and only what the second round adds is a rate.
async fn drive(
    b: &Browser,
    http: &reqwest::Client,
    base: &str,
    secrets: &Path,
    services: &serde_json::Map<String, Value>,
) -> anyhow::Result<Round> {
    // A webhook no delivery can reach (no such name): its deliveries fail.
    let (status, _) = b
        .json(
            reqwest::Method::PUT,
            "/v1/webhook",
            serde_json::json!({"url": "https://hooks.coffer-test.invalid/in"}),
        )
        .await;
    assert_eq!(status, 200);
    // A scan-only request (scan's own API).
    let (status, scan) = b
        .json(
            reqwest::Method::POST,
            "/v1/scans",
            serde_json::json!({"size": 10}),
        )
        .await;
    assert_eq!(status, 201, "{scan}");
    // A second session of the demo user, logged out, then presented: auth refuses it.
    let res = login(http, base, &b.email, &b.password).await;
    assert_eq!(res.status(), 200);
    let old_cookie = session_cookie(&res);
    let csrf: Value = res.json().await?;
    let res = http
        .post(format!("{base}/v1/auth/logout"))
        .header("cookie", &old_cookie)
        .header("x-csrf-token", csrf["csrf_token"].as_str().unwrap())
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    let res = http
        .get(format!("{base}/v1/me"))
        .header("cookie", &old_cookie)
        .send()
        .await?;
    assert_eq!(res.status(), 401);
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let clean_name = format!("zq-clean-{marker}.txt");
    let key_name = format!("zq-key-{marker}.pem");
    let (clean, status) = b
        .upload(
            &clean_name,
            "text/plain",
            b"quarterly figures, nothing to see",
        )
        .await;
    assert_eq!(status, "available");
    let (_, status) = b
        .upload(
            &key_name,
            "text/plain",
            b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n",
        )
        .await;
    assert_eq!(status, "quarantined");
    // The download whose trace is followed below; the trace the client claims to be in is not
    // continued.
    let res = b
        .req(reqwest::Method::GET, &format!("/v1/files/{clean}/download"))
        .header(
            "traceparent",
            format!("00-{CLIENT_TRACE}-00f067aa0ba902b7-01"),
        )
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let download_request = res.headers()["x-request-id"].to_str()?.to_owned();
    let grant: Value = res.json().await?;
    assert!(
        reqwest::get(grant["url"].as_str().unwrap())
            .await?
            .status()
            .is_success()
    );
    // A share, redeemed.
    let (status, share) = b
        .json(
            reqwest::Method::POST,
            &format!("/v1/files/{clean}/shares"),
            serde_json::json!({"expires_in_seconds": 600}),
        )
        .await;
    assert_eq!(status, 201, "{share}");
    let share_token = share["token"].as_str().unwrap().to_owned();
    let res = http.get(format!("{base}/s/{share_token}")).send().await?;
    assert_eq!(res.status(), 302);
    // Over the quota (lowered as the operator would, in the database).
    let superuser = std::fs::read_to_string(secrets.join("dev/postgres-superuser-url"))?
        .trim()
        .to_owned();
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&superuser).await?;
    let lowered = sqlx::query("UPDATE metadata.quotas SET limit_bytes = used_bytes + 1000")
        .execute(&mut db)
        .await?
        .rows_affected();
    assert_eq!(lowered, 1, "the demo org's quota");
    let (status, _) = b
        .json(
            reqwest::Method::POST,
            "/v1/files",
            serde_json::json!({"name": format!("zq-big-{marker}.bin"), "size": 2000, "content_type": "application/octet-stream"}),
        )
        .await;
    assert_eq!(status, 409, "over the quota");
    // An API key, used; a made-up one and a made-up session, refused.
    let (status, key) = b
        .json(
            reqwest::Method::POST,
            "/v1/api-keys",
            serde_json::json!({"name": "observability", "scopes": ["files:read"]}),
        )
        .await;
    assert_eq!(status, 201);
    let api_key = key["key"].as_str().unwrap().to_owned();
    let me = http
        .get(format!("{base}/v1/me"))
        .bearer_auth(&api_key)
        .send()
        .await?;
    assert_eq!(me.status(), 200);
    let made_up_key = format!("{}x", &api_key[..api_key.len() - 1]);
    for (name, value) in [
        ("authorization", format!("Bearer {made_up_key}")),
        ("cookie", format!("coffer_session={marker}")),
    ] {
        let res = http
            .get(format!("{base}/v1/me"))
            .header(name, value)
            .send()
            .await?;
        assert_eq!(res.status(), 401);
    }
    // Bad logins for an account until it is throttled.
    let victim = "nobody-here@coffer.local";
    let mut throttled = false;
    for _ in 0..12 {
        let res = login(http, base, victim, "not-the-password").await;
        assert!(
            matches!(res.status().as_u16(), 401 | 429),
            "{}",
            res.status()
        );
        let body: Value = res.json().await?;
        if body["error"]["code"] == "throttled" || body["error"]["code"] == "rate_limited" {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "the bad logins were never throttled");
    // On the mesh: a caller not on an RPC's list, a forged user token (presented with the
    // gateway's own certificate), a TLS handshake that is not one.
    let addr = |name: &str| services[name].as_str().unwrap().to_owned();
    let dev_identity = coffer_mesh::MeshClient::new(coffer_mesh::CertStore::load(
        coffer_mesh::TlsFiles::in_dir(&secrets.join("dev")),
    )?)?;
    let denied = coffer_proto::v1::auth_client::AuthClient::new(
        dev_identity.channel("auth", &addr("auth"))?,
    )
    .get_me(coffer_proto::v1::GetMeRequest {})
    .await
    .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let gateway_identity = coffer_mesh::MeshClient::new(coffer_mesh::CertStore::load(
        coffer_mesh::TlsFiles::in_dir(&secrets.join("gateway")),
    )?)?;
    let forged = coffer_mesh::CallContext {
        token: Some("v1.forged.token".into()),
        request_id: "req-forged".into(),
        deadline: None,
    }
    .scope(
        coffer_proto::v1::metadata_client::MetadataClient::new(
            gateway_identity.channel("metadata", &addr("metadata"))?,
        )
        .get_file(coffer_proto::v1::FileRef {
            file_id: clean.clone(),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(forged.code(), tonic::Code::Unauthenticated, "{forged:?}");
    {
        use tokio::io::AsyncWriteExt as _;
        let mut raw = tokio::net::TcpStream::connect(addr("storage-signer")).await?;
        raw.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await?;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            use tokio::io::AsyncReadExt as _;
            let mut buf = [0u8; 64];
            let _ = raw.read(&mut buf).await;
        })
        .await;
    }
    // A burst past the per-address limit.
    let mut limited = 0;
    for _ in 0..120 {
        let res = http.get(format!("{base}/v1/me")).send().await?;
        if res.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited > 0, "the burst was never rate-limited");
    Ok(Round {
        names: vec![clean_name, key_name],
        download_request,
        share_token,
        api_key,
    })
}

#[tokio::test]
async fn every_panel_metric_and_matcher_holds_against_the_live_mesh_and_a_download_is_one_trace()
-> anyhow::Result<()> {
    let collector = OtlpCollector::start().await?;
    let dir = tempfile::tempdir()?;
    let state = dir.path().join(".coffer");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-dev"))
        .args(["up", "--observability", "--dir"])
        .arg(&state)
        .env("COFFER_TELEMETRY__LOG_FILTER", "debug")
        .env("COFFER_TELEMETRY__OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "300")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    // Stops the launcher (and with it everything it started) however this test ends.
    struct Launcher(std::process::Child);
    impl Drop for Launcher {
        fn drop(&mut self) {
            if matches!(self.0.try_wait(), Ok(None)) {
                let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(30);
                while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    let child = Launcher(child);
    let dev_json = state.join("dev.json");
    assert!(
        wait_for(&dev_json, Duration::from_secs(120)),
        "dev.json never appeared"
    );
    let info: Value = serde_json::from_slice(&std::fs::read(&dev_json)?)?;
    let prom = info["prometheus_url"]
        .as_str()
        .expect("prometheus runs (scripts/install-deps installs it)")
        .to_owned();
    assert!(info["alertmanager_url"].is_string());
    let base = info["gateway_url"].as_str().unwrap().to_owned();
    let secrets = PathBuf::from(info["secrets_dir"].as_str().unwrap());
    let ca = reqwest::Certificate::from_pem(&std::fs::read(info["ca_cert"].as_str().unwrap())?)?;
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let email = info["demo"]["email"].as_str().unwrap().to_owned();
    let password = info["demo"]["password"].as_str().unwrap().to_owned();

    // --- traffic ---
    let res = login(&http, &base, &email, &password).await;
    assert_eq!(res.status(), 200);
    let cookie = session_cookie(&res);
    let csrf = res.json::<Value>().await?["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Browser {
        http: http.clone(),
        base: base.clone(),
        cookie: cookie.clone(),
        csrf: csrf.clone(),
        email: email.clone(),
        password: password.clone(),
    };
    // An event stream stays open while Prometheus scrapes.
    let stream = b.req(reqwest::Method::GET, "/v1/events").send().await?;
    assert_eq!(stream.status(), 200);
    let services = info["services"].as_object().unwrap().clone();
    // Prometheus has scraped every service once: what the first round counts is then a change
    // of a scraped value (a rate), not the first value of a new series.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample_values(&query(&prom, "count(up == 1)").await.unwrap_or_default()) != [6.0] {
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the six services"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let first = drive(&b, &http, &base, &secrets, &services).await?;
    // Past a scrape (every 5 s): the series the first round created are then scraped, and the
    // second round's traffic is a rate on them too.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let second = drive(&b, &http, &base, &secrets, &services).await?;

    // --- Prometheus has scraped all of it ---
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = query(&prom, "sum(coffer_gateway_rate_limited_total) > 0")
            .await
            .unwrap_or_default();
        let failed = query(
            &prom,
            r#"sum(coffer_scan_webhook_deliveries_total{outcome="failed"}) > 0"#,
        )
        .await
        .unwrap_or_default();
        if !seen.is_empty() && !failed.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw the traffic"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // One more scrape and a pool reading after the last request.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // --- every panel ---
    let mut failures = Vec::new();
    let targets = dashboard_targets();
    assert!(targets.len() > 60, "read the dashboards: {}", targets.len());
    // A panel (some have two queries) must show a number other than zero somewhere.
    let mut panels: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for (uid, title, expr) in &targets {
        let concrete = expr
            .replace("$__rate_interval", "5m")
            .replace("$namespace", ".+")
            .replace("$instance", ".+");
        let values = panels.entry((uid.clone(), title.clone())).or_default();
        match query(&prom, &concrete).await {
            Err(e) => failures.push(format!("{uid} / {title}: {e}\n  {concrete}")),
            Ok(r) if r.is_empty() => {
                failures.push(format!("{uid} / {title}: no data\n  {concrete}"))
            }
            Ok(r) => values.extend(sample_values(&r)),
        }
    }
    for ((uid, title), values) in &panels {
        let some = values.iter().any(|v| v.is_finite() && *v != 0.0);
        if !some && !MAY_BE_ZERO.contains(&title.as_str()) {
            failures.push(format!("{uid} / {title}: all zero or NaN: {values:?}"));
        }
    }
    // The panels that show the traffic's refusals and failures, by what caused them.
    for (expr, what) in [
        (
            r#"sum(coffer_caller_denials_total{job="coffer-auth"})"#,
            "the denied caller",
        ),
        (
            r#"sum(coffer_token_rejections_total{job="coffer-metadata"})"#,
            "the forged token",
        ),
        (
            r#"sum(coffer_tls_handshake_failures_total{job="coffer-storage-signer"})"#,
            "the broken handshake",
        ),
        (
            r#"sum(coffer_auth_login_failures_total{reason="throttled"})"#,
            "the throttled login",
        ),
        (
            r#"sum(coffer_auth_login_failures_total{reason="bad_credentials"})"#,
            "the bad logins",
        ),
        (
            r#"sum(coffer_auth_authentications_total{credential="api_key", outcome="refused"})"#,
            "the made-up key",
        ),
        (
            r#"sum(coffer_auth_authentications_total{credential="session", outcome="refused"})"#,
            "the made-up session",
        ),
        (
            r#"sum(coffer_metadata_quota_refusals_total)"#,
            "the upload over quota",
        ),
        (
            r#"sum(coffer_scan_verdicts_total{verdict="sensitive"})"#,
            "the quarantined key",
        ),
        (
            r#"sum(coffer_metadata_presigns_total{kind="share"})"#,
            "the redeemed share",
        ),
        (
            r#"sum(coffer_signer_store_calls_total{outcome="ok"})"#,
            "the store calls",
        ),
        (
            r#"sum(coffer_gateway_event_streams_open)"#,
            "the open event stream",
        ),
    ] {
        let values = sample_values(&query(&prom, expr).await.unwrap_or_default());
        if !values.iter().any(|v| *v > 0.0) {
            failures.push(format!("{what} is not counted: {expr} = {values:?}"));
        }
    }

    // --- every metric name and label matcher of observability/ ---
    let scraped: BTreeSet<String> =
        query(&prom, r#"group by (__name__) ({__name__=~"coffer_.+"})"#)
            .await
            .unwrap()
            .iter()
            .filter_map(|r| r["metric"]["__name__"].as_str().map(str::to_owned))
            .collect();
    let mut used = BTreeSet::new();
    for file in [
        "prometheus/rules/coffer.rules.yml",
        "README.md",
        "runbooks.md",
    ] {
        used.extend(metric_names(&std::fs::read_to_string(
            observability().join(file),
        )?));
    }
    for (_, _, expr) in &targets {
        used.extend(metric_names(expr));
    }
    for name in &used {
        let exposed = scraped.contains(name)
            || scraped.contains(&format!("{name}_bucket"))
            || scraped.contains(&format!("{name}_total"));
        if !exposed {
            failures.push(format!("{name} is named in observability/ but not exposed"));
        }
    }
    // And the README lists every metric the services expose (the table cannot fall behind).
    let readme = std::fs::read_to_string(observability().join("README.md"))?;
    let documented = metric_names(&readme);
    for name in &scraped {
        let base = ["_bucket", "_count", "_sum", "_created"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        if !documented.contains(base) && !documented.contains(name.as_str()) {
            failures.push(format!(
                "{name} is exposed but observability/README.md does not list it"
            ));
        }
    }
    let exprs: Vec<String> = rule_exprs()
        .into_iter()
        .chain(targets.iter().map(|t| t.2.clone()))
        .collect();
    let mut checked = BTreeSet::new();
    for expr in &exprs {
        for (label, regex, value) in matchers(expr) {
            if !checked.insert((label.clone(), regex, value.clone())) {
                continue;
            }
            let alternatives: Vec<&str> = if regex
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'|' || b == b'-')
            {
                value.split('|').collect()
            } else {
                vec![value.as_str()]
            };
            for alt in alternatives {
                let op = if regex { "=~" } else { "=" };
                let q = format!(r#"count({{__name__=~"coffer_.+|up", {label}{op}"{alt}"}})"#);
                if query(&prom, &q).await.map(|r| r.is_empty()).unwrap_or(true) {
                    failures.push(format!("no series has {label}{op}\"{alt}\" ({expr})"));
                }
            }
        }
    }
    assert!(checked.len() > 12, "read the matchers: {checked:?}");

    // --- one trace per download ---
    let deadline = Instant::now() + Duration::from_secs(30);
    let (trace_id, trace) = loop {
        let spans = collector.spans();
        let root = spans.iter().find(|s| {
            s.service == "gateway"
                && s.attributes.get("request_id") == Some(&second.download_request)
        });
        if let Some(root) = root {
            let trace: Vec<Span> = spans
                .iter()
                .filter(|s| s.trace_id == root.trace_id)
                .cloned()
                .collect();
            let services: BTreeSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
            if ["gateway", "auth", "metadata", "storage-signer", "audit"]
                .iter()
                .all(|s| services.contains(s))
            {
                break (root.trace_id.clone(), trace);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no whole trace of the download ({} spans; http.server ones: {:?}): {:?}",
            spans.len(),
            spans
                .iter()
                .filter(|s| s.service == "gateway")
                .take(3)
                .collect::<Vec<_>>(),
            root.map(|r| spans
                .iter()
                .filter(|s| s.trace_id == r.trace_id)
                .map(|s| (s.service.clone(), s.name.clone()))
                .collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_ne!(
        trace_id, CLIENT_TRACE,
        "the edge continued the client's trace"
    );
    let ids: BTreeSet<&str> = trace.iter().map(|s| s.span_id.as_str()).collect();
    for s in &trace {
        if s.service == "gateway"
            && s.attributes.get("request_id") == Some(&second.download_request)
        {
            assert!(
                s.parent.is_empty() || s.parent == "0000000000000000",
                "the edge starts the trace: {s:?}"
            );
        } else {
            assert!(
                ids.contains(s.parent.as_str()),
                "{} {}'s parent is not in the trace: {s:?}",
                s.service,
                s.name
            );
        }
    }
    // The latency histograms carry traces as exemplars, and Prometheus stored them: the edge's
    // name traces the collector received.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let exemplars: Value = reqwest::Client::new()
        .post(format!("{prom}/api/v1/query_exemplars"))
        .form(&[
            ("query", "coffer_http_server_duration_seconds_bucket"),
            ("start", &(now - 600).to_string()),
            ("end", &now.to_string()),
        ])
        .send()
        .await?
        .json()
        .await?;
    let exemplar_traces: BTreeSet<String> = exemplars["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
        .collect();
    let collected: BTreeSet<String> = collector
        .spans()
        .into_iter()
        .filter(|s| s.service == "gateway")
        .map(|s| s.trace_id)
        .collect();
    assert!(
        exemplar_traces.iter().any(|t| collected.contains(t)),
        "no exemplar names a trace of the gateway: {exemplars}"
    );
    // Each service logged lines of that request with its trace id.
    let logs = state.join("logs");
    for service in ["gateway", "auth", "metadata", "storage-signer", "audit"] {
        let text = std::fs::read_to_string(logs.join(format!("{service}.log")))?;
        assert!(
            text.contains(&format!("\"trace_id\":\"{trace_id}\"")),
            "{service}'s log has no line of trace {trace_id}"
        );
    }
    // Grafana's derived field finds that trace id in a gateway line as the services write it.
    let provisioning = std::fs::read_to_string(
        observability().join("grafana/provisioning/datasources/coffer.yaml"),
    )?;
    let regex_src = provisioning
        .lines()
        .find_map(|l| l.trim().strip_prefix("matcherRegex: "))
        .expect("a derived field")
        .trim_matches('\'');
    let gateway_log = std::fs::read_to_string(logs.join("gateway.log"))?;
    let line = gateway_log.lines().find(|l| l.contains(&trace_id)).unwrap();
    let prefix = regex_src.split('(').next().unwrap();
    let at = line
        .find(prefix)
        .expect("the derived field's prefix is in the line")
        + prefix.len();
    assert_eq!(&line[at..at + 32], trace_id);

    // --- no secret anywhere ---
    let mut everything = String::new();
    for entry in std::fs::read_dir(&logs)? {
        everything += &std::fs::read_to_string(entry?.path())?;
    }
    assert!(
        everything.contains("\"level\":\"DEBUG\""),
        "debug lines were logged"
    );
    for admin in std::fs::read_dir(state.join("config"))? {
        let config: toml::Table = toml::from_str(&std::fs::read_to_string(admin?.path())?)?;
        let admin = config["admin_listen"].as_str().unwrap();
        everything += &reqwest::get(format!("http://{admin}/metrics"))
            .await?
            .text()
            .await?;
    }
    everything += &format!("{:?}", collector.spans());
    let session_id = cookie.trim_start_matches("coffer_session=");
    for (what, secret) in [
        ("the demo email", email.as_str()),
        ("the throttled email", "nobody-here@coffer.local"),
        ("the password", password.as_str()),
        ("the session id", session_id),
        ("the CSRF token", csrf.as_str()),
    ]
    .into_iter()
    .chain([&first, &second].into_iter().flat_map(|r| {
        r.names.iter().map(|n| ("a file name", n.as_str())).chain([
            ("the API key", r.api_key.as_str()),
            ("the share token", r.share_token.as_str()),
        ])
    })) {
        assert!(secret.len() >= 16, "{what} is too short to search for");
        if everything.contains(secret) {
            failures.push(format!("{what} is in a log, a metric or a span"));
        }
    }

    // For looking into a failing panel by hand: the mesh and Prometheus stay up five minutes.
    if std::env::var_os("KEEP_MESH").is_some() {
        eprintln!("prometheus {prom} state {}", state.display());
        tokio::time::sleep(Duration::from_secs(300)).await;
    }
    // SIGTERM stops everything promptly, with the event stream still open and a webhook try
    // waiting on a name that does not resolve (each held its service for the whole grace).
    let stopping = Instant::now();
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGTERM)?;
    let mut child = child;
    while child.0.try_wait()?.is_none() {
        assert!(
            stopping.elapsed() < Duration::from_secs(30),
            "coffer-dev up did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if stopping.elapsed() > Duration::from_secs(8) {
        failures.push(format!(
            "stopping took {:?}: something waited for its grace period",
            stopping.elapsed()
        ));
    }
    drop(stream);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
