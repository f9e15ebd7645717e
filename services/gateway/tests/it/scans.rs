//! Scanning through the public API, with the real scan service (YARA-X; no clamd here): uploads
//! get verdicts on their own; the scan-only API round-trips with an API key; another org's scans
//! are 404; the scope and size rules hold.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::files::{User, put};
use crate::harness::{Harness, error_code, unthrottled};

pub async fn scanning() -> anyhow::Result<Harness> {
    scanning_with(unthrottled()).await
}

/// [`scanning`] with the gateway configured by `gateway`.
async fn scanning_with(gateway: coffer_gateway::GatewayConfig) -> anyhow::Result<Harness> {
    Harness::start_scanning(
        gateway,
        Default::default(),
        coffer_scan::ScanConfig {
            poll_interval_ms: 100,
            ..Default::default()
        },
    )
    .await
}

pub fn eicar() -> Vec<u8> {
    let mut v = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$".to_vec();
    v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-");
    v.extend_from_slice(b"TEST-FILE!$H+H*");
    v
}

/// Polls `path` until `field` leaves the `waiting` values.
pub async fn wait(
    u: &User<'_>,
    path: &str,
    field: &str,
    waiting: &[&str],
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = u.ok(Method::GET, path, None, 200).await?;
        if !waiting.contains(&v[field].as_str().unwrap_or_default()) {
            return Ok(v);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{path} still {}",
            v[field]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn uploads_are_scanned_and_only_clean_ones_download() -> anyhow::Result<()> {
    let h = scanning().await?;
    let u = User::new(&h, "scanned@example.com").await?;
    let clean = u
        .upload("Quartalsbericht.txt", None, b"Umsatz stabil.\n")
        .await?;
    let bad = u.upload("readme.txt", None, &eicar()).await?;
    for id in [&clean, &bad] {
        let f = u
            .ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
            .await?;
        assert_eq!(f["status"], "scanning");
    }
    let f = wait(&u, &format!("/v1/files/{clean}"), "status", &["scanning"]).await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("available"), Some("clean"))
    );
    let f = wait(&u, &format!("/v1/files/{bad}"), "status", &["scanning"]).await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("quarantined"), Some("infected"))
    );
    u.ok(
        Method::GET,
        &format!("/v1/files/{clean}/download"),
        None,
        200,
    )
    .await?;
    assert_eq!(
        u.err(Method::GET, &format!("/v1/files/{bad}/download"), None)
            .await?,
        (403, "quarantined".into())
    );
    // A purged file's scan report goes with it: 404 like any file that does not exist.
    let report = u
        .ok(Method::GET, &format!("/v1/files/{bad}/scan"), None, 200)
        .await?;
    assert_eq!(report["verdict"], "infected");
    u.ok(Method::DELETE, &format!("/v1/files/{bad}/purge"), None, 204)
        .await?;
    for path in [
        format!("/v1/files/{bad}/scan"),
        "/v1/files/not-a-uuid/scan".into(),
    ] {
        assert_eq!(
            u.err(Method::GET, &path, None).await?,
            (404, "not_found".into()),
            "{path}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn scan_only_api_with_an_api_key() -> anyhow::Result<()> {
    let h = scanning().await?;
    let a = User::new(&h, "scanner-a@example.com").await?;
    let b = User::new(&h, "scanner-b@example.com").await?;
    let key = a
        .ok(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "mail gateway", "scopes": ["scans:write"]})),
            201,
        )
        .await?["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let files_only = a
        .ok(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["files:read"]})),
            201,
        )
        .await?["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = |k: &str, m: Method, path: &str, body: Option<Value>| {
        let mut req = h.http.request(m, h.url(path)).bearer_auth(k);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };

    let body = eicar();
    let res = call(
        &key,
        Method::POST,
        "/v1/scans",
        Some(json!({"size": body.len(), "metadata": {"ticket": "T-9"}})),
    )
    .await?;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await?;
    let id = created["scan_id"].as_str().unwrap().to_owned();
    put(&created["upload"], body).await?;
    let res = call(&key, Method::POST, &format!("/v1/scans/{id}/submit"), None).await?;
    assert_eq!(res.status(), 202);
    let submitted: Value = res.json().await?;
    assert_eq!(submitted["scan_id"], id.as_str());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let done = loop {
        let v: Value = call(&key, Method::GET, &format!("/v1/scans/{id}"), None)
            .await?
            .json()
            .await?;
        if v["status"] == "done" {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["verdict"], "infected");
    assert_eq!(done["metadata"]["ticket"], "T-9");
    assert_eq!(done["sha256"].as_str().unwrap().len(), 64);
    assert!(done["completed_at"].is_string());
    assert!(
        done["engines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["engine"] == "yara-x"
                && e["clean"] == false
                && e["signature"] == "eicar_test_file"),
        "{done}"
    );

    // Neither the client's address nor anything but ids and digests is kept.
    let dump = h.stack.pg.dump(&h.scan.setup.database)?;
    assert!(dump.contains("T-9"), "the caller's metadata is kept");
    assert!(!dump.contains("127.0.0.1"), "a client address is stored");

    // Another org, an unknown id and a malformed one: the same 404.
    for path in [
        format!("/v1/scans/{id}"),
        format!("/v1/scans/{}", uuid::Uuid::new_v4()),
        "/v1/scans/not-a-uuid".into(),
    ] {
        assert_eq!(
            b.err(Method::GET, &path, None).await?,
            (404, "not_found".into()),
            "{path}"
        );
    }
    assert_eq!(
        b.err(Method::POST, &format!("/v1/scans/{id}/submit"), None)
            .await?,
        (404, "not_found".into())
    );
    // Scope: a files-only key cannot scan.
    let res = call(
        &files_only,
        Method::POST,
        "/v1/scans",
        Some(json!({"size": 1})),
    )
    .await?;
    assert_eq!(error_code(res).await?, (403, "permission_denied".into()));
    // Metadata over 4 KB: 413; not an object: 400.
    let big = json!({"size": 1, "metadata": {"p": "x".repeat(4096)}});
    let res = call(&key, Method::POST, "/v1/scans", Some(big)).await?;
    assert_eq!(error_code(res).await?, (413, "too_large".into()));
    let res = call(
        &key,
        Method::POST,
        "/v1/scans",
        Some(json!({"size": 1, "metadata": [1]})),
    )
    .await?;
    assert_eq!(error_code(res).await?.0, 400);
    let res = call(&key, Method::POST, "/v1/scans", Some(json!({"size": -1}))).await?;
    assert_eq!(error_code(res).await?.0, 400);
    // U+0000 in a metadata key or string (Postgres's jsonb cannot hold it): 400, not a 500.
    for metadata in [
        json!({"a": "x\u{0}"}),
        json!({"a\u{0}": 1}),
        json!({"a": [{"b": "\u{0}"}]}),
    ] {
        let res = call(
            &key,
            Method::POST,
            "/v1/scans",
            Some(json!({"size": 1, "metadata": metadata})),
        )
        .await?;
        assert_eq!(
            error_code(res).await?,
            (400, "invalid_argument".into()),
            "{metadata}"
        );
    }

    // DELETE: not by another org or a key without scans:write; then its verdict, hash and
    // metadata are gone (404 after), and the audit keeps that it happened.
    let path = format!("/v1/scans/{id}");
    assert_eq!(
        b.err(Method::DELETE, &path, None).await?,
        (404, "not_found".into())
    );
    let res = call(&files_only, Method::DELETE, &path, None).await?;
    assert_eq!(error_code(res).await?, (403, "permission_denied".into()));
    let res = call(&key, Method::DELETE, &path, None).await?;
    assert_eq!(res.status(), 204);
    for m in [Method::GET, Method::DELETE] {
        let res = call(&key, m.clone(), &path, None).await?;
        assert_eq!(error_code(res).await?, (404, "not_found".into()), "{m}");
    }
    let dump = h.stack.pg.dump(&h.scan.setup.database)?;
    assert!(!dump.contains("T-9"), "a deleted scan's metadata is kept");
    assert!(
        !dump.contains(done["sha256"].as_str().unwrap()),
        "a deleted scan's hash is kept"
    );
    let audit = a
        .ok(Method::GET, "/v1/audit?action=scan.delete", None, 200)
        .await?;
    assert_eq!(audit["items"][0]["target"], format!("scan:{id}"), "{audit}");
    Ok(())
}

#[tokio::test]
async fn webhook_endpoint_is_set_over_https_only_to_public_targets() -> anyhow::Result<()> {
    let h = scanning().await?;
    let u = User::new(&h, "hooks@example.com").await?;
    let set = u
        .ok(
            Method::PUT,
            "/v1/webhook",
            Some(json!({"url": "https://hooks.example.com/coffer"})),
            200,
        )
        .await?;
    assert_eq!(set["url"], "https://hooks.example.com/coffer");
    assert!(set["secret"].as_str().unwrap().starts_with("whsec_"));
    // A new secret each time it is set.
    let again = u
        .ok(
            Method::PUT,
            "/v1/webhook",
            Some(json!({"url": "https://hooks.example.com/coffer"})),
            200,
        )
        .await?;
    assert_ne!(again["secret"], set["secret"]);
    for bad in [
        "https://127.1/",
        "https://2130706433/",
        "https://[::ffff:127.0.0.1]/",
        "https://169.254.169.254/",
        "http://hooks.example.com/",
        "nope",
    ] {
        assert_eq!(
            u.err(Method::PUT, "/v1/webhook", Some(json!({"url": bad})))
                .await?
                .0,
            400,
            "{bad}"
        );
    }
    Ok(())
}

/// The webhook as an admin sees it: the URL and when it was set, never the secret; a member sees
/// nothing; another org sees none of it; deleting it leaves none (and deleting none is no error).
#[tokio::test]
async fn the_webhook_is_shown_without_its_secret_and_deleted() -> anyhow::Result<()> {
    let h = scanning().await?;
    let u = User::new(&h, "hooks-get@example.com").await?;
    assert_eq!(
        u.err(Method::GET, "/v1/webhook", None).await?,
        (404, "not_found".into())
    );
    let set = u
        .ok(
            Method::PUT,
            "/v1/webhook",
            Some(json!({"url": "https://hooks.example.com/get"})),
            200,
        )
        .await?;
    let shown = u.ok(Method::GET, "/v1/webhook", None, 200).await?;
    assert_eq!(shown["url"], "https://hooks.example.com/get");
    assert!(shown["created_at"].as_str().unwrap().ends_with('Z'));
    let secret = set["secret"].as_str().unwrap();
    assert!(!shown.to_string().contains(secret) && shown.get("secret").is_none());
    // Another org has no webhook of this one's; a member of this org may not look.
    let other = User::new(&h, "hooks-other@example.com").await?;
    assert_eq!(other.err(Method::GET, "/v1/webhook", None).await?.0, 404);
    other.ok(Method::DELETE, "/v1/webhook", None, 204).await?;
    assert_eq!(
        u.ok(Method::GET, "/v1/webhook", None, 200).await?["url"],
        shown["url"]
    );
    u.ok(
        Method::POST,
        "/v1/members",
        Some(json!({"email": "hooks-member@example.com", "password": crate::harness::PASSWORD, "role": "member"})),
        201,
    )
    .await?;
    let member = User::login(&h, "hooks-member@example.com").await?;
    assert_eq!(member.err(Method::GET, "/v1/webhook", None).await?.0, 403);
    assert_eq!(
        member.err(Method::DELETE, "/v1/webhook", None).await?.0,
        403
    );

    // A scanned upload queues a delivery to the endpoint (hooks.example.com takes none); the
    // deletion drops it with the endpoint.
    let id = u.upload("hooked.txt", None, b"a delivery\n").await?;
    u.ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
        .await?;
    wait(&u, &format!("/v1/files/{id}"), "status", &["scanning"]).await?;
    let db = sqlx::PgPool::connect(&h.stack.pg.superuser_url(&h.scan.setup.database)).await?;
    let pending = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM scan.deliveries WHERE org_id = $1::uuid AND delivered_at IS NULL",
        )
        .bind(&u.org)
        .fetch_one(&db)
    };
    // The verdict reaches metadata just before the job that queues the delivery ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pending().await? < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery was queued"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    u.ok(Method::DELETE, "/v1/webhook", None, 204).await?;
    assert_eq!(u.err(Method::GET, "/v1/webhook", None).await?.0, 404);
    assert_eq!(
        pending().await?,
        0,
        "deliveries to a removed endpoint stayed queued"
    );
    u.ok(Method::DELETE, "/v1/webhook", None, 204).await?;
    // Setting and removing where the org's verdicts go is audited (deleting none is not), and
    // the target is the org.
    let audit = u.ok(Method::GET, "/v1/audit", None, 200).await?;
    let hooks: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("webhook."))
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    let org = format!("org:{}", u.org);
    assert_eq!(
        hooks,
        [
            ("webhook.delete", org.as_str()),
            ("webhook.set", org.as_str())
        ],
        "newest first"
    );
    Ok(())
}

/// Reads server-sent events from a response until `until` says stop or `secs` pass.
async fn read_events(
    res: reqwest::Response,
    secs: u64,
    until: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    Events::new(res).read(secs, until).await
}

/// An open `/v1/events` stream, read in turns.
struct Events {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    text: String,
    /// The server ended the stream (or it broke).
    ended: bool,
}

impl Events {
    fn new(res: reqwest::Response) -> Self {
        use futures_util::StreamExt as _;
        Events {
            body: res.bytes_stream().map(|c| c.map(|b| b.to_vec())).boxed(),
            text: String::new(),
            ended: false,
        }
    }

    /// The events that arrive until `until` says stop (given those of this turn) or `secs` pass.
    async fn read(&mut self, secs: u64, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        use futures_util::StreamExt as _;
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while let Ok(next) = tokio::time::timeout_at(deadline, self.body.next()).await {
            let Some(Ok(chunk)) = next else {
                self.ended = true;
                break;
            };
            self.text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    events.push(serde_json::from_str(data).unwrap());
                }
            }
            if until(&events) {
                break;
            }
        }
        events
    }
}

/// Postgres crashes and comes back (`pg_ctl restart -m immediate`), and with it the scan
/// service's LISTEN connection, which carries the verdicts' events to the streams: without a
/// restart of any service, a stream opened before the crash and one opened after it both carry
/// the next verdicts' events. (Events are live: one sent while no listener was connected is not
/// replayed; hence new uploads until one arrives.)
#[tokio::test]
async fn live_events_flow_again_after_postgres_restarts() -> anyhow::Result<()> {
    let h = scanning_with(coffer_gateway::GatewayConfig {
        // No credential re-check in the window (auth fails closed while Postgres is down).
        events_recheck_secs: 60,
        ..unthrottled()
    })
    .await?;
    let a = User::new(&h, "crash@example.com").await?;
    let res = a.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(res.status(), 200);
    let mut before = Events::new(res);
    let first = scanned_upload(&a, 1).await?;
    let got = before.read(30, |e| has_file(e, &first)).await;
    assert!(has_file(&got, &first), "before the crash: {got:?}");

    let pg = h.stack.pg;
    let started = || async {
        let url = pg.superuser_url(&h.stack.metadata.database);
        let mut c: sqlx::PgConnection = sqlx::Connection::connect(&url).await?;
        let at: time::OffsetDateTime = sqlx::query_scalar("SELECT pg_postmaster_start_time()")
            .fetch_one(&mut c)
            .await?;
        anyhow::Ok(at)
    };
    let first_start = started().await?;
    tokio::task::spawn_blocking(move || pg.restart_immediate()).await??;
    assert!(started().await? > first_start, "Postgres did not restart");
    let restarted = tokio::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    let mut sent = Vec::new();
    loop {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no event within 45 s of the restart; uploaded {sent:?}"
        );
        match scanned_upload(&a, sent.len() + 2).await {
            Ok(id) => sent.push(id),
            Err(e) => {
                // Retryable while the services find Postgres again.
                tracing::info!("upload after the restart: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        }
        let got = before
            .read(5, |e| sent.iter().any(|id| has_file(e, id)))
            .await;
        if sent.iter().any(|id| has_file(&got, id)) {
            break;
        }
        anyhow::ensure!(!before.ended, "the stream opened before the crash ended");
    }
    eprintln!(
        "events flowed again {:?} after the restart, after {} uploads",
        restarted.elapsed(),
        sent.len()
    );
    // A stream opened now carries the next verdict too.
    let res = a.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(res.status(), 200);
    let mut after = Events::new(res);
    let last = scanned_upload(&a, 99).await?;
    let got = after.read(30, |e| has_file(e, &last)).await;
    assert!(
        has_file(&got, &last),
        "a stream opened after the crash: {got:?}"
    );
    Ok(())
}

/// The credential is confirmed before each event: once an API key is revoked, the next event is
/// not sent on its stream, which ends then, long before the periodic re-check (60 s here).
#[tokio::test]
async fn no_event_reaches_a_stream_whose_credential_went() -> anyhow::Result<()> {
    let h = scanning_with(coffer_gateway::GatewayConfig {
        events_recheck_secs: 60,
        ..unthrottled()
    })
    .await?;
    let a = User::new(&h, "revoked-stream@example.com").await?;
    let created = a
        .ok(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "reader", "scopes": ["files:read"]})),
            201,
        )
        .await?;
    let (key_id, key) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let res = h
        .http
        .get(h.url("/v1/events"))
        .bearer_auth(&key)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let mut keyed = Events::new(res);
    let first = scanned_upload(&a, 1).await?;
    let got = keyed.read(30, |e| has_file(e, &first)).await;
    assert!(has_file(&got, &first), "a live key's stream: {got:?}");

    // The owner's own stream shows when the next event is sent.
    let res = a.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(res.status(), 200);
    let mut witness = Events::new(res);
    a.ok(Method::DELETE, &format!("/v1/api-keys/{key_id}"), None, 204)
        .await?;
    let second = scanned_upload(&a, 2).await?;
    let seen = witness.read(30, |e| has_file(e, &second)).await;
    assert!(has_file(&seen, &second), "the witness stream: {seen:?}");
    let got = keyed.read(5, |_| false).await;
    assert!(
        !has_file(&got, &second),
        "an event reached the stream of a revoked key: {got:?}"
    );
    assert!(keyed.ended, "the revoked key's stream stayed open");
    Ok(())
}

fn has_file(events: &[Value], id: &str) -> bool {
    events.iter().any(|e| e["data"]["file_id"] == id)
}

/// Uploads and completes file `n` (its scan then runs); any refusal is an error, not a panic.
async fn scanned_upload(u: &User<'_>, n: usize) -> anyhow::Result<String> {
    let bytes = format!("file {n} of the crash test").into_bytes();
    let res = u
        .send(
            Method::POST,
            "/v1/files",
            Some(json!({
                "name": format!("crash {n}.txt"),
                "size": bytes.len(),
                "content_type": "text/plain",
            })),
        )
        .await?;
    anyhow::ensure!(res.status() == 201, "create: {}", res.status());
    let created: Value = res.json().await?;
    let id = created["file"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    put(&created["upload"], bytes).await?;
    let res = u
        .send(Method::POST, &format!("/v1/files/{id}/complete"), None)
        .await?;
    anyhow::ensure!(res.status() == 200, "complete: {}", res.status());
    Ok(id)
}

#[tokio::test]
async fn live_events_reach_only_their_org_and_streams_are_capped() -> anyhow::Result<()> {
    let h = scanning_with(coffer_gateway::GatewayConfig {
        events_per_user: 2,
        ..unthrottled()
    })
    .await?;
    let a = User::new(&h, "live-a@example.com").await?;
    let b = User::new(&h, "live-b@example.com").await?;
    let a_stream = a.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(a_stream.status(), 200);
    assert!(
        a_stream.headers()["content-type"]
            .to_str()?
            .starts_with("text/event-stream")
    );
    let b_stream = b.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(b_stream.status(), 200);
    // The cap: a second stream is fine, a third is 429 with Retry-After.
    let a_second = a.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(a_second.status(), 200);
    let third = a.send(Method::GET, "/v1/events", None).await?;
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(error_code(third).await?, (429, "rate_limited".into()));

    let a_file = a.upload("A only.txt", None, b"for org A").await?;
    a.ok(
        Method::POST,
        &format!("/v1/files/{a_file}/complete"),
        None,
        200,
    )
    .await?;
    let got = read_events(a_stream, 30, |e| !e.is_empty()).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "file.scanned");
    assert_eq!(got[0]["data"]["file_id"], a_file.as_str());
    assert_eq!(got[0]["data"]["verdict"], "clean");

    // B sees its own event, and never A's.
    let b_file = b.upload("B only.txt", None, b"for org B").await?;
    b.ok(
        Method::POST,
        &format!("/v1/files/{b_file}/complete"),
        None,
        200,
    )
    .await?;
    let got = read_events(b_stream, 30, |e| {
        e.iter().any(|e| e["data"]["file_id"] == b_file.as_str())
    })
    .await;
    assert!(
        got.iter().any(|e| e["data"]["file_id"] == b_file.as_str()),
        "{got:?}"
    );
    assert!(
        got.iter().all(|e| e["data"]["file_id"] != a_file.as_str()),
        "B saw A's event: {got:?}"
    );
    drop(a_second);
    Ok(())
}

#[tokio::test]
async fn a_closed_event_stream_gives_its_slot_back() -> anyhow::Result<()> {
    let h = Harness::start_scanning(
        coffer_gateway::GatewayConfig {
            events_per_user: 1,
            events_keepalive_secs: 1,
            ..unthrottled()
        },
        Default::default(),
        Default::default(),
    )
    .await?;
    let a = User::new(&h, "slot@example.com").await?;
    let open = a.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(open.status(), 200);
    let open_now = coffer_telemetry::metrics().sample("coffer_gateway_event_streams_open");
    assert!(open_now.is_some_and(|n| n >= 1.0), "{open_now:?}");
    let refused = a.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(error_code(refused).await?, (429, "rate_limited".into()));
    // The client goes away; the gateway notices at its next keep-alive (1 s here).
    drop(open);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let again = a.send(Method::GET, "/v1/events", None).await?;
        if again.status() == 200 {
            break;
        }
        assert_eq!(error_code(again).await?, (429, "rate_limited".into()));
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not given back within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}
