//! `coffer-dev drill faults`: faults injected into the real mesh under load, and what must hold
//! afterwards (issue 19, item 1).
//!
//! It starts its own mesh (Postgres, the embedded store, clamd when installed, every service as
//! its own process) and keeps `--clients` signed-in clients of two orgs uploading, downloading,
//! renaming and sharing through the gateway for the whole drill. Meanwhile it injects, one after
//! the other: a Postgres crash and restart (`pg_ctl restart -m immediate`); SIGKILL and restart
//! of each service in turn; the store down for `--outage-secs` in the middle of a PUT and again in
//! the middle of a scan; clamd killed for as long; audit stopped for as long. After each fault it
//! times how long until a full probe (upload, scan, download of the same bytes) works again,
//! with no survivor restarted; the bound is `--recovery-secs`.
//!
//! Every answer a client gets is sorted: a success; a retryable answer (503 with `Retry-After`,
//! 429 with `Retry-After`, the store failing a PUT or GET, or the gateway's connection failing
//! while the gateway itself is the one killed); or anything else (a 500, a 503 that does not say
//! when to come back, a refusal that should not be), which fails the drill. A client retries a
//! failed PUT and complete as a real one would, so a success hidden behind a retryable answer
//! (the complete that committed before its answer was lost) shows up as the retry's `409` and is
//! counted, not mistaken for a failure.
//!
//! Once the load stops and the scan queue has drained, it runs the stale-upload sweep and checks
//! the invariants on the database and the store themselves: every `available`/`quarantined`
//! file has its object and exactly one verdict (the file's and the scan's result agree); no
//! object is left without its row; every org's quota is the sum of its files' sizes; every org's
//! audit chain verifies, and every success in the clients' journal has its audit event; no scan
//! job is `running` past its lease. Any difference fails it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use coffer_testkit::{Clamd, DevCa, Postgres, PostgresOptions, S3};
use coffer_token::MasterKeyRing;
use nix::sys::signal::Signal;
use rand::Rng as _;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::up::supervisor::Supervisor;
use crate::up::{BUCKET, Tuning, health, prepare_dir, provision, start_services};

#[derive(clap::Args, Debug)]
pub struct FaultArgs {
    /// Where to keep the drill's state (secrets, configuration, logs); wiped at start.
    #[arg(long, default_value = ".coffer-faults")]
    dir: PathBuf,
    /// Also write the report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Clients working through the gateway for the whole drill (half in each of two orgs).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// How long the store, clamd and audit stay down, in seconds.
    #[arg(long, default_value_t = 10)]
    outage_secs: u64,
    /// Load without a fault before the first one and after each recovery, in seconds.
    #[arg(long, default_value_t = 3)]
    calm_secs: u64,
    /// The bound: after a fault ends, a full upload-scan-download works within this many seconds.
    #[arg(long, default_value_t = 30)]
    recovery_secs: u64,
}

/// The services in the order they are killed.
const SERVICES: [&str; 6] = [
    "auth",
    "metadata",
    "storage-signer",
    "audit",
    "scan",
    "gateway",
];

#[derive(Serialize, Debug, Default, Clone)]
struct Counts {
    requests: u64,
    retryable: u64,
    /// Answers that are neither a success nor retryable: the drill's failures.
    other: u64,
}

#[derive(Serialize, Debug)]
struct FaultReport {
    fault: String,
    /// From the fault's start to its end (the service started again, the outage over).
    down_secs: f64,
    /// From the fault's end to the first full probe that worked.
    recovered_after_secs: f64,
    /// The clients' requests from the fault's start until the probe worked.
    during: Counts,
}

#[derive(Serialize, Debug, Default)]
struct Report {
    clients: usize,
    faults_injected: usize,
    faults: Vec<FaultReport>,
    recovery_bound_secs: u64,
    requests: u64,
    requests_during_faults: u64,
    retryable_during_faults: u64,
    retryable_outside_faults: u64,
    /// Answers neither successful nor retryable (goal 0), with the first few described.
    non_retryable: u64,
    non_retryable_examples: Vec<String>,
    /// Successes found by a retry after a retryable answer (a complete that had committed).
    hidden_successes_found: u64,
    /// Why the store failed the clients' PUTs and GETs (retryable), with how often.
    store_failures: BTreeMap<String, u64>,
    /// The clients' successful actions, by audit action.
    successes: BTreeMap<String, u64>,
    files_checked: u64,
    /// The decided files' verdicts, counted.
    verdicts: BTreeMap<String, u64>,
    objects_checked: u64,
    audit_events_checked: u64,
    /// Lost or inconsistent items found by the checks (goal 0), each described.
    lost_or_inconsistent: u64,
    problems: Vec<String>,
    checks: Vec<String>,
    total_secs: f64,
}

/// Who is counting: which fault's window is open, and every answer so far.
#[derive(Default)]
struct Tally {
    /// The index of the fault whose window is open, and whether it is the gateway's kill (its
    /// clients' connections then fail, as they must).
    window: Option<(usize, bool)>,
    per_fault: Vec<Counts>,
    outside: Counts,
    examples: Vec<String>,
    hidden: u64,
    /// Why the store failed calls, with how often.
    store_failures: BTreeMap<String, u64>,
    /// (org index, audit action, target) of every success.
    journal: Vec<(usize, &'static str, String)>,
}

type Shared = Arc<Mutex<Tally>>;

/// What came of a PUT.
enum Put {
    Stored,
    /// Retryable (the store was away or failed).
    Failed,
    /// Refused for good (counted as a failure of the drill).
    Refused,
}

/// How an answer counts.
enum Answer {
    Ok(Value),
    Retry,
    /// A refusal the caller may expect in its situation (a 409 on a retried complete).
    Refused(StatusCode, String),
}

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn record(t: &Shared, retryable: bool, other: Option<String>) {
    let mut t = lock(t);
    let window = t.window.map(|(i, _)| i);
    let counts = match window {
        Some(i) => &mut t.per_fault[i],
        None => &mut t.outside,
    };
    counts.requests += 1;
    if retryable {
        counts.retryable += 1;
    }
    if let Some(what) = other {
        counts.other += 1;
        if t.examples.len() < 20 {
            let when = match window {
                Some(i) => format!("during fault {i}"),
                None => "outside faults".to_owned(),
            };
            let line = format!("{what} ({when})");
            println!("    not retryable: {line}");
            t.examples.push(line);
        }
    }
}

/// A signed-in client of one org, counting its answers.
#[derive(Clone)]
struct Client {
    inner: crate::client::Client,
    tally: Shared,
}

impl Client {
    async fn login(
        base: &str,
        ca: &Path,
        email: &str,
        password: &str,
        tally: Shared,
    ) -> anyhow::Result<Client> {
        let inner = crate::client::Client::login(base, ca, email, password).await?;
        Ok(Client { inner, tally })
    }

    /// One gateway call, counted; any refusal is one of the drill's failures.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_inner(method, path, body, false).await
    }

    /// One gateway call, counted, whose 409 is for the caller to judge (uncounted).
    async fn call_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        conflict_expected: bool,
    ) -> Answer {
        let mut req = self.inner.req(method.clone(), path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let what = format!("{method} {}", redact(path));
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => {
                // The gateway's own kill closes its clients' connections: that is its outage.
                let gateway_down = lock(&self.tally).window.is_some_and(|(_, gw)| gw);
                let other = (!gateway_down).then(|| format!("{what}: connection failed: {e}"));
                let retry = other.is_none();
                record(&self.tally, retry, other);
                return Answer::Retry;
            }
        };
        let status = res.status();
        let retry_after = res.headers().contains_key("retry-after");
        let text = res.text().await.unwrap_or_default();
        if status.is_success() {
            record(&self.tally, false, None);
            let value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Answer::Ok(value);
        }
        if matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) && retry_after
        {
            record(&self.tally, true, None);
            return Answer::Retry;
        }
        if status == StatusCode::CONFLICT && conflict_expected {
            return Answer::Refused(status, text);
        }
        record(&self.tally, false, Some(format!("{what}: {status} {text}")));
        Answer::Refused(status, text)
    }

    /// A PUT or GET of the store, counted: any failure of the store is retryable.
    async fn store_call(&self, req: reqwest::RequestBuilder) -> Option<bytes::Bytes> {
        let ok = match req.send().await {
            Ok(res) if res.status().is_success() => match res.bytes().await {
                Ok(b) => Some(b),
                Err(e) => {
                    self.store_failed(format!("body: {}", e.without_url()));
                    None
                }
            },
            Ok(res) if res.status().is_server_error() => {
                self.store_failed(format!("{}", res.status()));
                None
            }
            Ok(res) => {
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                record(
                    &self.tally,
                    false,
                    Some(format!(
                        "store: {status} {}",
                        text.chars().take(200).collect::<String>()
                    )),
                );
                return None;
            }
            Err(e) => {
                self.store_failed(reason(e));
                None
            }
        };
        record(&self.tally, ok.is_none(), None);
        ok
    }

    /// A presigned PUT, counted. The URL writes once (`If-None-Match: *`): a retry the store
    /// refuses with 412 finds the bytes of an earlier try that was cut off after the store kept
    /// them, which is that try's hidden success (complete then checks size and checksum).
    async fn store_put(&self, req: reqwest::RequestBuilder, retried: bool) -> Put {
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => {
                self.store_failed(format!("PUT: {}", reason(e)));
                record(&self.tally, true, None);
                return Put::Failed;
            }
        };
        let status = res.status();
        if status.is_success() {
            record(&self.tally, false, None);
            return Put::Stored;
        }
        if status.is_server_error() {
            self.store_failed(format!("PUT: {status}"));
            record(&self.tally, true, None);
            return Put::Failed;
        }
        if status == StatusCode::PRECONDITION_FAILED && retried {
            record(&self.tally, false, None);
            lock(&self.tally).hidden += 1;
            return Put::Stored;
        }
        let text = res.text().await.unwrap_or_default();
        record(
            &self.tally,
            false,
            Some(format!(
                "PUT: {status} {}",
                text.chars().take(200).collect::<String>()
            )),
        );
        Put::Refused
    }

    /// Notes why the store failed a call (the report counts each reason).
    fn store_failed(&self, why: String) {
        let window = lock(&self.tally).window.map(|(i, _)| i);
        let why = match window {
            Some(i) => format!("fault {i}: {why}"),
            None => format!("outside faults: {why}"),
        };
        *lock(&self.tally).store_failures.entry(why).or_default() += 1;
    }

    fn succeeded(&self, org: usize, action: &'static str, target: String) {
        lock(&self.tally).journal.push((org, action, target));
    }
}

/// Why a call to the store failed, with its causes, and never the URL (it names the object and
/// carries a signature).
fn reason(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut why = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    why
}

/// A path as the report may show it (ids only: the drill's names are its own, but a report
/// shows no name).
fn redact(path: &str) -> String {
    path.split('?').next().unwrap_or_default().to_owned()
}

/// Retries `f` while it answers `Retry`, waiting `pause` between tries, until `until`.
async fn retrying<F, Fut>(until: Instant, pause: Duration, mut f: F) -> Answer
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    loop {
        match f().await {
            Answer::Retry if Instant::now() < until => tokio::time::sleep(pause).await,
            other => return other,
        }
    }
}

/// Creates a file and PUTs `bytes` (retrying the PUT through a store outage, as long as its
/// URL lives); returns the id, or `None` when the create itself got a retryable answer.
async fn create_and_put(
    c: &Client,
    name: &str,
    bytes: &[u8],
    until: Instant,
) -> anyhow::Result<Option<String>> {
    let created = match c
        .call(
            Method::POST,
            "/v1/files",
            Some(json!({"name": name, "size": bytes.len(), "content_type": "application/octet-stream"})),
        )
        .await
    {
        Answer::Ok(v) => v,
        Answer::Retry => return Ok(None),
        Answer::Refused(status, text) => {
            record(&c.tally, false, Some(format!("create: {status} {text}")));
            return Ok(None);
        }
    };
    let id = created["file"]["id"]
        .as_str()
        .context("file id")?
        .to_owned();
    let upload = created["upload"].clone();
    let url = upload["url"].as_str().context("upload url")?.to_owned();
    let body = bytes::Bytes::copy_from_slice(bytes);
    let mut retried = false;
    loop {
        let mut put = c.inner.store.put(&url);
        for (k, v) in upload["headers"].as_object().context("upload headers")? {
            if k != "content-length" {
                put = put.header(k, v.as_str().unwrap_or_default());
            }
        }
        match c.store_put(put.body(body.clone()), retried).await {
            Put::Stored => return Ok(Some(id)),
            Put::Failed => {}
            Put::Refused => return Ok(None),
        }
        retried = true;
        if Instant::now() >= until {
            // Left pending: the stale-upload sweep must clean it up.
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Completes `id`, retrying retryable answers; a 409 after a retry is the earlier try's hidden
/// success when the file has left `pending_upload`. Returns whether the upload is complete.
async fn complete(c: &Client, id: &str, until: Instant) -> bool {
    let path = format!("/v1/files/{id}/complete");
    let mut retried = false;
    loop {
        match c.call_inner(Method::POST, &path, None, true).await {
            Answer::Ok(_) => return true,
            Answer::Retry if Instant::now() < until => {
                retried = true;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Answer::Retry => return false,
            Answer::Refused(status, text) => {
                let file_path = format!("/v1/files/{id}");
                let file = retrying(until, Duration::from_millis(500), || {
                    c.call(Method::GET, &file_path, None)
                })
                .await;
                let left_pending =
                    matches!(&file, Answer::Ok(f) if f["status"] != "pending_upload");
                if retried && status == StatusCode::CONFLICT && left_pending {
                    record(&c.tally, false, None);
                    lock(&c.tally).hidden += 1;
                    return true;
                }
                if status == StatusCode::CONFLICT {
                    // Any other refusal was counted by the call.
                    record(&c.tally, false, Some(format!("complete: {status} {text}")));
                }
                return false;
            }
        }
    }
}

/// Waits until `id` is decided; returns its status.
async fn decided(c: &Client, id: &str, within: Duration) -> anyhow::Result<String> {
    let until = Instant::now() + within;
    loop {
        if let Answer::Ok(f) = c.call(Method::GET, &format!("/v1/files/{id}"), None).await {
            let status = f["status"].as_str().unwrap_or_default().to_owned();
            if status == "available" || status == "quarantined" {
                return Ok(status);
            }
        }
        ensure!(Instant::now() < until, "{id} not decided within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The org's files a client may download, rename and share (seeded, all available).
type Files = Arc<Vec<String>>;

/// One client's work until `stop`: uploads, downloads, renames and shares, at random.
async fn work(c: Client, org: usize, me: usize, files: Files, stop: Arc<AtomicBool>) {
    let mut n = 0u64;
    // As a person waits for one upload's verdict before the next, each client has at most one
    // upload in the scan queue: the queue stays short, and a probe's scan is not stuck behind
    // a backlog of the load's own.
    let mut scanning: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (mut pick, file, size) = {
            let mut rng = rand::rng();
            (
                rng.random_range(0..100u32),
                files[rng.random_range(0..files.len())].clone(),
                rng.random_range(1024..64 * 1024usize),
            )
        };
        if pick < 25
            && let Some(id) = &scanning
        {
            match c.call(Method::GET, &format!("/v1/files/{id}"), None).await {
                Answer::Ok(f) if f["status"] == "available" || f["status"] == "quarantined" => {
                    scanning = None;
                }
                _ => pick = 50,
            }
        }
        let until = Instant::now() + Duration::from_secs(60);
        match pick {
            0..25 => {
                let mut bytes = vec![0u8; size];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
                let name = format!("load-{me}-{n}.bin");
                if let Ok(Some(id)) = create_and_put(&c, &name, &bytes, until).await
                    && complete(&c, &id, until).await
                {
                    c.succeeded(org, "file.upload", format!("file:{id}"));
                    scanning = Some(id);
                }
            }
            25..65 => {
                if let Answer::Ok(grant) = c
                    .call(Method::GET, &format!("/v1/files/{file}/download"), None)
                    .await
                {
                    c.succeeded(org, "file.download", format!("file:{file}"));
                    if let Some(url) = grant["url"].as_str() {
                        let _ = c.store_call(c.inner.store.get(url)).await;
                    }
                }
            }
            65..85 => {
                let body = json!({"name": format!("renamed-{me}-{n}.txt")});
                if let Answer::Ok(_) = c
                    .call(Method::PATCH, &format!("/v1/files/{file}"), Some(body))
                    .await
                {
                    c.succeeded(org, "file.rename", format!("file:{file}"));
                }
            }
            _ => {
                let body = json!({"expires_in_seconds": 3600});
                if let Answer::Ok(share) = c
                    .call(
                        Method::POST,
                        &format!("/v1/files/{file}/shares"),
                        Some(body),
                    )
                    .await
                    && let Some(id) = share["id"].as_str()
                {
                    c.succeeded(org, "share.create", format!("share:{id}"));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Upload, scan, download of the same bytes: the mesh works end to end.
async fn probe(c: &Client, n: u64) -> anyhow::Result<()> {
    let bytes = format!("probe {n} {}\n", coffer_testkit::random_secret()).into_bytes();
    let until = Instant::now() + Duration::from_secs(10);
    let id = create_and_put(c, &format!("probe-{n}.txt"), &bytes, until)
        .await?
        .context("create or PUT failed")?;
    ensure!(complete(c, &id, until).await, "complete failed");
    ensure!(
        decided(c, &id, Duration::from_secs(30)).await? == "available",
        "the probe was not found clean"
    );
    let Answer::Ok(grant) = c
        .call(Method::GET, &format!("/v1/files/{id}/download"), None)
        .await
    else {
        anyhow::bail!("no download grant");
    };
    let got = c
        .store_call(c.inner.store.get(grant["url"].as_str().context("url")?))
        .await
        .context("the GET failed")?;
    ensure!(got.as_ref() == bytes.as_slice(), "the bytes differ");
    Ok(())
}

/// The mesh under test: what the drill needs to break and mend it.
struct Mesh {
    pg: Postgres,
    s3: S3,
    clamd: Option<Clamd>,
    supervisor: Supervisor,
    admin: BTreeMap<String, String>,
}

impl Mesh {
    async fn restart_service(&mut self, name: &str) -> anyhow::Result<()> {
        self.supervisor.respawn(name)?;
        health::wait_ready(&self.admin[name], Duration::from_secs(60))
            .await
            .with_context(|| format!("{name} did not come back"))
    }

    async fn db(&self) -> anyhow::Result<sqlx::PgConnection> {
        Ok(sqlx::PgConnection::connect(&self.pg.superuser_url("coffer")).await?)
    }
}

/// A PUT that trickles its body, so that it is still sending when the store goes down.
async fn slow_put(c: Client, until: Instant) -> anyhow::Result<bool> {
    let size = 4 << 20;
    let created = match c
        .call(
            Method::POST,
            "/v1/files",
            Some(json!({"name": "slow-put.bin", "size": size, "content_type": "application/octet-stream"})),
        )
        .await
    {
        Answer::Ok(v) => v,
        _ => anyhow::bail!("the slow PUT's create failed"),
    };
    let id = created["file"]["id"].as_str().context("id")?.to_owned();
    let upload = created["upload"].clone();
    let mut cut = false;
    loop {
        let chunks = futures_util::stream::unfold(0usize, move |sent| async move {
            (sent < size).then_some(())?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let n = (size - sent).min(64 << 10);
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; n])),
                sent + n,
            ))
        });
        let mut put = c.inner.store.put(upload["url"].as_str().context("url")?);
        for (k, v) in upload["headers"].as_object().context("headers")? {
            put = put.header(k, v.as_str().unwrap_or_default());
        }
        let body = reqwest::Body::wrap_stream(chunks);
        match c.store_put(put.body(body), cut).await {
            Put::Stored => break,
            Put::Failed => {}
            Put::Refused => anyhow::bail!("the store refused the slow PUT's retry"),
        }
        cut = true;
        ensure!(Instant::now() < until, "the slow PUT never went through");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(
        complete(&c, &id, until).await,
        "the slow PUT's complete failed"
    );
    c.succeeded(0, "file.upload", format!("file:{id}"));
    Ok(cut)
}

pub async fn run(args: FaultArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = std::path::absolute(&args.dir)?;
    prepare_dir(&dir)?;
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    ensure!(args.clients >= 2, "--clients must be at least 2");

    println!("starting postgres, the store, clamd and the mesh ...");
    // Durable, as in production: a crash must lose no commit the services were told of.
    let pg = Postgres::start_with(PostgresOptions {
        durable: true,
        ..PostgresOptions::default()
    })
    .await?;
    let s3 = S3::start().await?;
    s3.client().create_bucket().bucket(BUCKET).send().await?;
    let signatures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/scan/clamav");
    let clamd = match Clamd::start(&signatures).await {
        Ok(c) => Some(c),
        Err(e) => {
            println!("  no clamd ({e:#}): its fault is skipped");
            None
        }
    };
    let ca = DevCa::new("Coffer fault drill CA")?;
    let ca_cert = dir.join("ca.crt");
    std::fs::write(&ca_cert, ca.ca_pem())?;
    let ring = MasterKeyRing::generate("faults-1");
    provision(&secrets, &ca, &ring, &pg, s3.credentials()).await?;
    ca.write_service_dir(&secrets.join("dev"), "coffer-dev")?;
    let mut supervisor = Supervisor::default();
    let mut sections = BTreeMap::new();
    // The sweep runs often and takes uploads left pending an hour (the least it allows): the
    // drill ages what its clients left pending, then waits for one sweep.
    let mut metadata = toml::Table::new();
    metadata.insert("stale_upload_secs".into(), 3600.into());
    metadata.insert("sweep_interval_secs".into(), 2.into());
    metadata.insert("object_delete_delay_secs".into(), 0.into());
    sections.insert("metadata", metadata);
    let tuning = Tuning {
        gateway_rate: 1_000_000,
        clamd: clamd.as_ref().map(Clamd::address),
        sections,
    };
    let (_, gateway, _, admin) =
        start_services(&dir, &secrets, pg.port(), &s3, &tuning, &mut supervisor).await?;
    let base = gateway.context("the gateway is not built (cargo build --bins)")?;
    let mut mesh = Mesh {
        pg,
        s3,
        clamd,
        supervisor,
        admin,
    };

    let tally: Shared = Arc::default();
    // Two orgs; each client its own session.
    let (http, _) = crate::client::http_clients(&ca_cert)?;
    let mut orgs = Vec::new();
    for org in ["faults-a", "faults-b"] {
        let email = format!("owner@{org}.example");
        let password = format!("drill {} password", coffer_testkit::random_secret());
        let res = http
            .post(format!("{base}/v1/auth/signup"))
            .json(&json!({"org_name": org, "email": email, "password": password}))
            .send()
            .await?;
        ensure!(res.status().is_success(), "signup {org}: {}", res.status());
        let org_id = res.json::<Value>().await?["org_id"]
            .as_str()
            .context("org_id")?
            .to_owned();
        orgs.push((email, password, org_id));
    }
    let mut clients = Vec::new();
    for i in 0..args.clients {
        let (email, password, _) = &orgs[i % 2];
        clients.push((
            i % 2,
            Client::login(&base, &ca_cert, email, password, tally.clone()).await?,
        ));
    }
    // Each org's files the clients download, rename and share: uploaded and scanned first.
    let mut seeded = Vec::new();
    for (org, (_, c)) in clients.iter().take(2).enumerate() {
        let mut ids = Vec::new();
        for n in 0..4 {
            let until = Instant::now() + Duration::from_secs(30);
            let bytes = format!("seed {n} of org {org}\n").into_bytes();
            let id = create_and_put(c, &format!("seed-{n}.txt"), &bytes, until)
                .await?
                .context("seeding")?;
            ensure!(complete(c, &id, until).await, "seeding: complete failed");
            ensure!(decided(c, &id, Duration::from_secs(60)).await? == "available");
            c.succeeded(org, "file.upload", format!("file:{id}"));
            ids.push(id);
        }
        seeded.push(Arc::new(ids));
    }

    println!("{} clients at work; injecting faults ...", args.clients);
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (me, (org, c)) in clients.iter().enumerate() {
        workers.push(tokio::spawn(work(
            c.clone(),
            *org,
            me,
            seeded[*org].clone(),
            stop.clone(),
        )));
    }
    let prober = clients[0].1.clone();
    let mut faults = Vec::new();
    let outage = Duration::from_secs(args.outage_secs);
    let mut plan: Vec<String> = vec!["postgres restart (immediate)".into()];
    plan.extend(SERVICES.iter().map(|s| format!("{s} killed (SIGKILL)")));
    plan.push("store down mid-PUT".into());
    plan.push("store down mid-scan".into());
    if mesh.clamd.is_some() {
        plan.push("clamd killed".into());
    }
    plan.push("audit stopped (SIGTERM)".into());

    for (i, fault) in plan.iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(args.calm_secs)).await;
        println!(
            "  fault {i} at {}: {fault} ...",
            time::OffsetDateTime::now_utc().time()
        );
        let gateway_kill = fault.starts_with("gateway");
        {
            let mut t = lock(&tally);
            t.per_fault.push(Counts::default());
            t.window = Some((i, gateway_kill));
        }
        let mut begun = Instant::now();
        let mut side = None;
        if fault.starts_with("postgres") {
            tokio::task::block_in_place(|| mesh.pg.restart_immediate())?;
        } else if let Some(svc) = SERVICES
            .iter()
            .find(|s| fault.starts_with(&format!("{s} killed")))
        {
            mesh.supervisor.signal(svc, Signal::SIGKILL)?;
            mesh.restart_service(svc).await?;
        } else if fault == "store down mid-PUT" {
            side = Some(tokio::spawn(slow_put(
                clients[0].1.clone(),
                Instant::now() + Duration::from_secs(120),
            )));
            tokio::time::sleep(Duration::from_millis(500)).await;
            begun = Instant::now();
            mesh.s3.set_down(true);
            tokio::time::sleep(outage).await;
            mesh.s3.set_down(false);
        } else if fault == "store down mid-scan" {
            begun = mid_scan(&mesh, &clients[1].1, outage).await?;
        } else if fault == "clamd killed" {
            if let Some(clamd) = mesh.clamd.as_mut() {
                clamd.kill().await?;
                tokio::time::sleep(outage).await;
                clamd.start_again().await?;
            }
        } else if fault.starts_with("audit stopped") {
            mesh.supervisor.signal("audit", Signal::SIGTERM)?;
            tokio::time::sleep(outage).await;
            mesh.restart_service("audit").await?;
        }
        let down_secs = begun.elapsed().as_secs_f64();
        let mended = Instant::now();
        let mut n = 0;
        loop {
            n += 1;
            match probe(&prober, (i * 1000 + n) as u64).await {
                Ok(()) => break,
                Err(_) if mended.elapsed() < Duration::from_secs(args.recovery_secs) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => anyhow::bail!(
                    "after {fault}, the mesh did not work again within {} s: {e:#}",
                    args.recovery_secs
                ),
            }
        }
        let recovered_after_secs = mended.elapsed().as_secs_f64();
        if let Some(side) = side {
            ensure!(
                side.await??,
                "the store outage did not cut the PUT in flight"
            );
        }
        let during = {
            let mut t = lock(&tally);
            t.window = None;
            t.per_fault[i].clone()
        };
        println!(
            "    down {down_secs:.1} s, working again {recovered_after_secs:.1} s later; \
             {} requests, {} retryable, {} other",
            during.requests, during.retryable, during.other
        );
        faults.push(FaultReport {
            fault: fault.clone(),
            down_secs,
            recovered_after_secs,
            during,
        });
    }
    tokio::time::sleep(Duration::from_secs(args.calm_secs)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }

    println!("load stopped; checking ...");
    let mut report = check(&mesh, &clients, &orgs, &tally).await?;
    let t = lock(&tally);
    report.clients = args.clients;
    report.faults_injected = faults.len();
    report.recovery_bound_secs = args.recovery_secs;
    report.requests_during_faults = t.per_fault.iter().map(|c| c.requests).sum();
    report.retryable_during_faults = t.per_fault.iter().map(|c| c.retryable).sum();
    report.retryable_outside_faults = t.outside.retryable;
    report.requests = report.requests_during_faults + t.outside.requests;
    report.non_retryable = t.per_fault.iter().map(|c| c.other).sum::<u64>() + t.outside.other;
    report.non_retryable_examples = t.examples.clone();
    report.hidden_successes_found = t.hidden;
    report.store_failures = t.store_failures.clone();
    for (_, action, _) in &t.journal {
        *report.successes.entry((*action).to_owned()).or_default() += 1;
    }
    drop(t);
    report.faults = faults;
    report.total_secs = started.elapsed().as_secs_f64();
    println!(
        "{} faults; {} requests ({} during faults, {} retryable); {} non-retryable; \
         {} lost or inconsistent; {:.0} s",
        report.faults_injected,
        report.requests,
        report.requests_during_faults,
        report.retryable_during_faults,
        report.non_retryable,
        report.lost_or_inconsistent,
        report.total_secs
    );
    for p in &report.problems {
        println!("  PROBLEM {p}");
    }
    for e in &report.non_retryable_examples {
        println!("  NOT RETRYABLE {e}");
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    mesh.supervisor.stop_all(Duration::from_secs(10));
    ensure!(
        report.non_retryable == 0 && report.lost_or_inconsistent == 0,
        "the drill failed: {} non-retryable answers, {} lost or inconsistent items",
        report.non_retryable,
        report.lost_or_inconsistent
    );
    Ok(())
}

/// Completes an upload large enough to take a while to scan, waits until a worker runs its
/// job, and takes the store down for `outage`; returns when the store went down.
async fn mid_scan(mesh: &Mesh, c: &Client, outage: Duration) -> anyhow::Result<Instant> {
    let mut bytes = vec![0u8; 8 << 20];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let until = Instant::now() + Duration::from_secs(60);
    let id = create_and_put(c, "mid-scan.bin", &bytes, until)
        .await?
        .context("the mid-scan upload's create or PUT failed")?;
    ensure!(
        complete(c, &id, until).await,
        "the mid-scan upload's complete failed"
    );
    c.succeeded(1, "file.upload", format!("file:{id}"));
    let mut db = mesh.db().await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let running: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM scan.jobs WHERE subject_id = $1::uuid AND state = 'running')",
        )
        .bind(&id)
        .fetch_one(&mut db)
        .await?;
        if running {
            break;
        }
        ensure!(Instant::now() < deadline, "the mid-scan job never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let down = Instant::now();
    mesh.s3.set_down(true);
    tokio::time::sleep(outage).await;
    mesh.s3.set_down(false);
    Ok(down)
}

fn problem(report: &mut Report, what: String) {
    report.lost_or_inconsistent += 1;
    if report.problems.len() < 50 {
        report.problems.push(what);
    }
}

/// Waits for `query` (one count) to reach 0, for up to `within`.
async fn until_zero(
    db: &mut sqlx::PgConnection,
    query: &str,
    within: Duration,
) -> anyhow::Result<i64> {
    let deadline = Instant::now() + within;
    loop {
        let n: i64 = sqlx::query_scalar(query).fetch_one(&mut *db).await?;
        if n == 0 || Instant::now() >= deadline {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A decided file: id, object key, state, verdict, object version, the scan's verdict.
type DecidedFile = (
    uuid::Uuid,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The invariants, on the database and the store themselves.
async fn check(
    mesh: &Mesh,
    clients: &[(usize, Client)],
    orgs: &[(String, String, String)],
    tally: &Shared,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut db = mesh.db().await?;

    // The scan queue drains: every completed upload gets its verdict (retries back off up to
    // 16 s after a store outage; a killed worker's lease is 30 s).
    let scanning = until_zero(
        &mut db,
        "SELECT count(*) FROM metadata.files WHERE state = 'scanning'",
        Duration::from_secs(180),
    )
    .await?;
    if scanning > 0 {
        let stuck: Vec<String> = sqlx::query_scalar(
            "SELECT format('file %s still scanning after 180 s: job %s, %s tries, %s waits, \
                            last error %s', f.id, j.state, j.attempts, j.waits, j.last_error)
             FROM metadata.files f LEFT JOIN scan.jobs j ON j.subject_id = f.id
             WHERE f.state = 'scanning' LIMIT 10",
        )
        .fetch_all(&mut db)
        .await?;
        for what in stuck {
            problem(&mut report, what);
        }
    } else {
        report.checks.push("the scan queue drained".into());
    }
    // The stale-upload sweep: what the clients left pending (a PUT or complete cut short) is
    // aged past the sweep's hour, then removed with its object and its quota.
    sqlx::query(
        "UPDATE metadata.files SET created_at = created_at - interval '2 hours'
         WHERE state = 'pending_upload'",
    )
    .execute(&mut db)
    .await?;
    let pending = until_zero(
        &mut db,
        "SELECT count(*) FROM metadata.files WHERE state = 'pending_upload'",
        Duration::from_secs(60),
    )
    .await?;
    if pending > 0 {
        problem(
            &mut report,
            format!("{pending} stale uploads not swept within 60 s"),
        );
    } else {
        report
            .checks
            .push("the stale-upload sweep removed every pending upload".into());
    }
    let due = until_zero(
        &mut db,
        "SELECT count(*) FROM metadata.object_deletions",
        Duration::from_secs(60),
    )
    .await?;
    if due > 0 {
        problem(
            &mut report,
            format!("{due} object deletions still queued after 60 s"),
        );
    }

    // Every decided file: its object, one verdict, the scan's result agreeing.
    let files: Vec<DecidedFile> = sqlx::query_as(
        "SELECT f.id, f.object_key, f.state, f.verdict, f.object_version, r.verdict
             FROM metadata.files f
             LEFT JOIN scan.results r
               ON r.org_id = f.org_id AND r.subject = 'file' AND r.subject_id = f.id
             WHERE f.state IN ('available', 'quarantined')",
    )
    .fetch_all(&mut db)
    .await?;
    let store = mesh.s3.client();
    for (id, key, state, verdict, version, result) in &files {
        report.files_checked += 1;
        match (verdict, result) {
            (Some(v), Some(r)) if v == r => {}
            _ => problem(
                &mut report,
                format!("file {id} ({state}): verdict {verdict:?}, scan result {result:?}"),
            ),
        }
        let head = store
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .set_version_id(version.clone())
            .send()
            .await;
        if head.is_err() {
            problem(
                &mut report,
                format!("file {id} ({state}): its object is missing"),
            );
        }
    }
    report.checks.push(format!(
        "{} decided files: object and one verdict each",
        files.len()
    ));
    // The drill's bytes are clean: a `failed` verdict would be a fault deciding a file.
    for (_, _, _, verdict, _, _) in &files {
        let v = verdict.clone().unwrap_or_else(|| "none".into());
        *report.verdicts.entry(v).or_default() += 1;
    }
    let failed = report.verdicts.get("failed").copied().unwrap_or_default();
    if failed > 0 {
        problem(
            &mut report,
            format!("{failed} files ended `failed`: a fault decided their verdict"),
        );
    }

    // No object without its row.
    let keys: BTreeSet<String> = sqlx::query_scalar("SELECT object_key FROM metadata.files")
        .fetch_all(&mut db)
        .await?
        .into_iter()
        .collect();
    let mut pages = store
        .list_objects_v2()
        .bucket(BUCKET)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page?.contents() {
            let key = object.key().unwrap_or_default();
            report.objects_checked += 1;
            if !key.starts_with("scans/") && !keys.contains(key) {
                problem(&mut report, format!("object {key} has no file row"));
            }
        }
    }
    report.checks.push(format!(
        "{} objects: each has its row",
        report.objects_checked
    ));

    // Quotas.
    let quotas: Vec<(uuid::Uuid, i64, i64)> = sqlx::query_as(
        "SELECT q.org_id, q.used_bytes,
                COALESCE((SELECT sum(size) FROM metadata.files f WHERE f.org_id = q.org_id), 0)::bigint
         FROM metadata.quotas q",
    )
    .fetch_all(&mut db)
    .await?;
    for (org, used, sum) in &quotas {
        if used != sum {
            problem(
                &mut report,
                format!("org {org}: quota used {used} ≠ its files' {sum} bytes"),
            );
        }
    }
    report.checks.push(format!(
        "{} orgs: quota = the sum of its files",
        quotas.len()
    ));

    // Audit: each org's chain verifies through the API, and every success has its event.
    let journal = lock(tally).journal.clone();
    for (i, (_, _, org_id)) in orgs.iter().enumerate() {
        let c = &clients
            .iter()
            .find(|(o, _)| *o == i)
            .context("a client per org")?
            .1;
        match c.call(Method::GET, "/v1/audit/verify", None).await {
            Answer::Ok(v) if v["ok"] == true => {
                report.audit_events_checked += v["count"].as_u64().unwrap_or_default();
            }
            _ => problem(
                &mut report,
                format!("org {i}: its audit chain does not verify"),
            ),
        }
        let events: BTreeSet<(String, String)> = sqlx::query_as(
            "SELECT action, target FROM audit.events WHERE org_id = $1::uuid AND outcome = 'success'",
        )
        .bind(org_id)
        .fetch_all(&mut db)
        .await?
        .into_iter()
        .collect();
        for (_, action, target) in journal.iter().filter(|(o, ..)| *o == i) {
            if !events.contains(&((*action).to_owned(), target.clone())) {
                problem(
                    &mut report,
                    format!("org {i}: {action} {target} succeeded without its audit event"),
                );
            }
        }
    }
    report.checks.push(format!(
        "{} successes: each has its audit event; both chains verify",
        journal.len()
    ));

    let stuck: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM scan.jobs WHERE state = 'running' AND lease_until < now()",
    )
    .fetch_one(&mut db)
    .await?;
    if stuck > 0 {
        problem(
            &mut report,
            format!("{stuck} scan jobs running past their lease"),
        );
    } else {
        report
            .checks
            .push("no scan job running past its lease".into());
    }
    db.close().await?;
    Ok(report)
}
