//! `coffer-dev bench`: drives a running `coffer-dev up` mesh through its public gateway, as outside
//! clients would, and measures (a) authorised download URLs (gateway → auth → metadata →
//! storage-signer), (b) whole uploads (create + PUT of the bytes to the store + complete), each
//! at several client counts; (c) in the same run, the rate at which the same SQL statements run
//! straight against Postgres from this one process (the floor of the work); and (d) the gateway
//! process's RSS while many bytes are uploaded. Prints a Markdown report for BENCHMARKS.md.
//!
//! Start the mesh with a gateway rate limit that will not throttle the load:
//! `coffer-dev up --gateway-rate 1000000`, then `coffer-dev bench`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, PgPool};
use tokio::sync::Mutex;

use crate::client::Client;
use crate::load::{Run, drive, purge_all, rss_kib};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The state directory of the running `coffer-dev up`.
    #[arg(long, default_value = ".coffer")]
    dir: PathBuf,
    /// Concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    clients: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Size of each uploaded file, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    file_bytes: usize,
    /// GiB uploaded (and purged) at the largest client count while the gateway's RSS is sampled;
    /// 0 skips it.
    #[arg(long, default_value_t = 10)]
    rss_gib: u64,
    /// Only the audit appends (e): into one org's chain and across 16 orgs, then every chain
    /// verified.
    #[arg(long)]
    audit_only: bool,
    /// Only the scan service: (f) complete → verdict latency for 1 and 10 MiB files, and (g) its
    /// RSS while scanning one `--scan-gib` GiB upload (0 skips it).
    #[arg(long)]
    scan_only: bool,
    /// Files of each size for (f).
    #[arg(long, default_value_t = 40)]
    scan_files: usize,
    #[arg(long, default_value_t = 2)]
    scan_gib: u64,
    /// Only (h), offline (no mesh needed): YARA-X against the `yara` command on a generated
    /// corpus of this many MiB.
    #[arg(long)]
    engines_mib: Option<usize>,
    /// Only (i), offline: each file kind scanned this many times in this process and in a
    /// contained engine child (the `coffer-scan` binary beside this one), and the difference.
    #[arg(long)]
    sandbox_runs: Option<usize>,
    /// Open loop (j): downloads (and the download floor) arrive at this fixed rate per second
    /// instead of from closed-loop clients, each timed from its intended start.
    #[arg(long)]
    rate: Option<f64>,
    /// With `--rate`: uploads (and the upload floor) at this rate per second too.
    #[arg(long)]
    upload_rate: Option<f64>,
    /// Open loop (j): seconds each row first runs at its rate untimed, so that what it measures
    /// is the steady state, not this process opening its connections and pools (the floor's
    /// pools of 10 start empty in every bench process).
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Open loop (j) at 25, 50 and 75 % of each path's maximum (measured first, closed loop at
    /// the largest client count), next to the floor measured the same way.
    #[arg(long)]
    open_loop: bool,
    /// Overload (k): each path's sustainable rate (closed loop at the largest client count),
    /// then arrivals at 2, 4 and 8 times it: goodput, refusals (503) and the accepted requests'
    /// latency, with every service's RSS.
    #[arg(long)]
    overload: bool,
    /// Soak (l): mixed load at half the mix's maximum for this many seconds (600 for the
    /// recorded run): error rate, every process's RSS and open fds, Postgres connections, and
    /// the scan queue drained at the end.
    #[arg(long)]
    soak: Option<u64>,
}

pub use crate::bench_open::Op;

/// The floor: the statements of one download (auth's session lookup, metadata's file read, the
/// audit append) and of one upload (two session lookups, create, complete, the audit append),
/// run from this process through the services' own store functions (`coffer_auth::floor`,
/// `coffer_metadata::floor`, `coffer_audit::floor`: the very SQL, not copies), as the services'
/// runtime roles, with a pool of each service's default size (10) for auth and metadata. The
/// audit append goes through audit's own group-committing appender (one connection per org at a
/// time, as in the service), so concurrent appends share transactions as they do there; its events
/// are real ones in the bench org's chain (the dev-up test verifies the chain after them). What the floor leaves out: the scan job an upload's complete queues (a queued job
/// sets the workers going on an object that does not exist), and every network hop, TLS, token
/// and presigning step.
struct Floor {
    auth: PgPool,
    metadata: PgPool,
    audit: coffer_audit::floor::Appender,
    id_hash: [u8; 32],
    /// Auth's idle limit, as the service passes it.
    idle_secs: u64,
    org: uuid::Uuid,
    user: uuid::Uuid,
    file: uuid::Uuid,
}

async fn runtime_pool(
    info: &Value,
    secrets: &std::path::Path,
    svc: &str,
) -> anyhow::Result<PgPool> {
    let password = std::fs::read_to_string(secrets.join(svc).join("db-runtime-password"))?;
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(info["postgres_port"].as_u64().context("postgres_port")? as u16)
        .database("coffer")
        .username(&format!("{svc}_runtime"))
        .password(password.trim())
        .options([("search_path", svc)])
        .disable_statement_logging();
    Ok(PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options)
        .await?)
}

/// The audit service's signing key, as the running mesh's audit has it.
fn audit_signer(secrets: &std::path::Path) -> anyhow::Result<coffer_auditlog::Signer> {
    let config = coffer_audit::AuditConfig::default();
    let key = std::fs::read_to_string(secrets.join("audit").join("audit-signing-key"))
        .context("the audit signing key of the running mesh")?;
    Ok(coffer_auditlog::Signer::from_text(
        &config.signing_key_id,
        key.trim(),
    )?)
}

impl Floor {
    /// Auth's session lookup, as every authenticated request runs it.
    async fn authenticate(&self) -> anyhow::Result<()> {
        let found =
            coffer_auth::floor::resolve_session(&self.auth, &self.id_hash, self.idle_secs, true)
                .await?;
        anyhow::ensure!(found.is_some(), "the floor's session is not live");
        Ok(())
    }

    async fn tenant_tx(&self) -> anyhow::Result<coffer_db::TenantTx> {
        Ok(coffer_db::tenant_tx(&self.metadata, self.org).await?)
    }

    /// Appends one event through audit's appender, as the service does for `action`.
    async fn audit(
        &self,
        action: coffer_kit::audit::Action,
        file: uuid::Uuid,
    ) -> anyhow::Result<()> {
        self.audit
            .append(coffer_audit::floor::NewEvent {
                org_id: self.org,
                at_us: coffer_kit::timestamp::now_micros(),
                actor: format!("user:{}", self.user),
                action: action.as_str().to_owned(),
                target: coffer_kit::audit::Target::File(file).to_string(),
                outcome: coffer_kit::audit::Outcome::Success.as_str().to_owned(),
                request_id: format!("floor-{}", uuid::Uuid::new_v4().simple()),
                trace_id: String::new(),
            })
            .await?;
        Ok(())
    }

    async fn download(&self) -> anyhow::Result<()> {
        use coffer_metadata::floor as m;
        self.authenticate().await?;
        m::file_alone(&self.metadata, self.org, self.file).await?;
        self.audit(coffer_kit::audit::Action::FileDownload, self.file)
            .await
    }

    async fn upload(&self, size: i64) -> anyhow::Result<uuid::Uuid> {
        use coffer_kit::vocab::FileStatus;
        use coffer_metadata::floor as m;
        // create
        self.authenticate().await?;
        let id = uuid::Uuid::new_v4();
        let mut tx = self.tenant_tx().await?;
        m::ensure_org(&mut tx, i64::MAX).await?;
        m::reserve_quota(&mut tx, size).await?;
        m::insert_file(
            &mut tx,
            &m::NewFile {
                id,
                folder: None,
                name: &format!("floor-{id}"),
                size,
                content_type: "application/octet-stream",
                sha256: None,
                created_by: self.user,
            },
        )
        .await?;
        tx.commit().await?;
        // complete
        self.authenticate().await?;
        let mut tx = self.tenant_tx().await?;
        m::file(&mut tx, id).await?;
        m::set_object(&mut tx, id, "\"floor\"", None).await?;
        m::transition(
            &mut tx,
            id,
            FileStatus::PendingUpload,
            FileStatus::Scanning,
            None,
            m::Trashed::Skip,
        )
        .await?
        .context("the floor's file left pending_upload")?;
        self.audit(coffer_kit::audit::Action::FileUpload, id)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Removes the rows the upload floor inserted and gives their quota back, each with its
    /// `file.purge` event, so the org's log holds no upload of a file that silently vanished
    /// (no object was ever put for them). Untimed.
    async fn clean(&self, ids: &[uuid::Uuid]) -> anyhow::Result<()> {
        for id in ids {
            let mut tx = self.tenant_tx().await?;
            coffer_metadata::floor::delete_file(&mut tx, *id).await?;
            self.audit(coffer_kit::audit::Action::FilePurge, *id)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

fn row(what: &str, clients: usize, r: &Run) -> String {
    format!(
        "| {what} | {clients} | {:.0} | {:.2} | {:.2} | {} |",
        r.rate(),
        r.pct(0.5),
        r.pct(0.99),
        r.errors
    )
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(runs) = args.sandbox_runs {
        return crate::bench_scan::sandbox(runs, &mut |l: String| println!("{l}")).await;
    }
    if let Some(mib) = args.engines_mib {
        let mut lines = Vec::new();
        crate::bench_scan::engines(mib, &mut |l: String| {
            println!("{l}");
            lines.push(l);
        })?;
        return Ok(());
    }
    let info: Value = serde_json::from_slice(
        &std::fs::read(args.dir.join("dev.json"))
            .context("no dev.json: start `coffer-dev up --gateway-rate 1000000` first")?,
    )?;
    let secrets = PathBuf::from(info["secrets_dir"].as_str().context("secrets_dir")?);
    let base = info["gateway_url"]
        .as_str()
        .context("the gateway is not running")?
        .to_owned();
    let ca = std::fs::read(info["ca_cert"].as_str().context("ca_cert")?)?;
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        // Every connection opened is kept for reuse: under overload (more requests in flight
        // than any cap) a capped pool would drop connections and open new ones, turning the
        // bench into a TLS handshake flood that measures handshakes, not requests.
        .pool_max_idle_per_host(usize::MAX)
        .build()?;
    let store = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let login = http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": info["demo"]["email"], "password": info["demo"]["password"]}))
        .send()
        .await?;
    anyhow::ensure!(
        login.status().is_success(),
        "demo login: {}",
        login.status()
    );
    let cookie = login.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let csrf = login.json::<Value>().await?["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let client = Client {
        http,
        store,
        base,
        cookie,
        csrf,
        run: uuid::Uuid::new_v4().simple().to_string(),
    };
    let me = client.json(reqwest::Method::GET, "/v1/me", None).await?;
    let org = me["org_id"].as_str().context("org_id")?.to_owned();

    // The scan service of the dev mesh gives verdicts; without one, the bench records a clean
    // verdict with the scan identity itself.
    let scanning = info["services"]["scan"].is_string();
    let scan = coffer_mesh::MeshClient::new(coffer_mesh::CertStore::load(
        coffer_mesh::TlsFiles::in_dir(&secrets.join("scan")),
    )?)?;
    let mut verdicts = coffer_proto::v1::metadata_client::MetadataClient::new(scan.channel(
        "metadata",
        info["services"]["metadata"].as_str().context("metadata")?,
    )?);
    let payload: &'static [u8] = Box::leak(
        (0..args.file_bytes)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let file = client.upload(0, &payload[..1024]).await?;
    if scanning {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while client
            .json(reqwest::Method::GET, &format!("/v1/files/{file}"), None)
            .await?["status"]
            != "available"
        {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the bench file was not scanned clean"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    } else {
        verdicts
            .record_verdict(coffer_proto::v1::RecordVerdictRequest {
                org_id: org.clone(),
                file_id: file.clone(),
                verdict: coffer_kit::vocab::Verdict::Clean.to_wire(),
                rescan: false,
                ..Default::default()
            })
            .await?;
    }

    let mut report = vec![
        format!(
            "Run {}: {} s per row, files of {} bytes.",
            time_now(),
            args.seconds,
            args.file_bytes
        ),
        String::new(),
        "| what | clients | per second | p50 ms | p99 ms | errors |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    let print = |line: &str| println!("{line}");
    for line in &report {
        print(line);
    }
    let mut push = |line: String| {
        print(&line);
        report.push(line);
    };

    if args.audit_only {
        return audit_appends(&info, &secrets, args.seconds, &mut push).await;
    }
    if args.scan_only {
        crate::bench_scan::latency(&client, args.scan_files, &mut push).await?;
        if args.scan_gib > 0 {
            crate::bench_scan::rss(&client, &info, args.scan_gib, &mut push).await?;
        }
        return Ok(());
    }

    if let Some(secs) = args.soak {
        let c = *args.clients.iter().max().unwrap_or(&64);
        return crate::bench_soak::run(&client, &info, &file, (c, secs), &mut push).await;
    }
    if args.overload {
        let c = *args.clients.iter().max().unwrap_or(&64);
        return crate::bench_overload::run(&client, &info, &file, (c, args.seconds), &mut push)
            .await;
    }
    let counter = Arc::new(AtomicU64::new(1));
    if args.open_loop || args.rate.is_some() || args.upload_rate.is_some() {
        let floor = Arc::new(make_floor(&info, &secrets, &org, &file).await?);
        return open_loop(&args, &client, &file, payload, &counter, &floor, &mut push).await;
    }

    // (a) authorised download URLs.
    let mut download_rates = Vec::new();
    for &c in &args.clients {
        let r = drive(
            c,
            args.seconds,
            crate::bench_overload::download(&client, &file),
        )
        .await;
        push(row(
            "download URL (gateway → auth → metadata → storage-signer)",
            c,
            &r,
        ));
        download_rates.push((c, r));
    }

    // (b) whole uploads; what each phase created is purged afterwards, untimed.
    for &c in &args.clients {
        let created = Arc::new(Mutex::new(Vec::new()));
        let op = upload_op(&client, &counter, &created, payload);
        let r = drive(c, args.seconds, op).await;
        push(row("upload: create + PUT + complete", c, &r));
        let ids = std::mem::take(&mut *created.lock().await);
        purge_all(&client, ids).await?;
    }

    // The store alone: the same PUT (SSE, content type, If-None-Match: *), each to a new key
    // under `bench-store/` (a presigned URL writes its key once), with the store's own
    // credentials: the embedded S3 server's own ceiling for the bytes of (b).
    let store = {
        let read = |name: &str| -> anyhow::Result<String> {
            Ok(
                std::fs::read_to_string(secrets.join("storage-signer").join(name))?
                    .trim()
                    .to_owned(),
            )
        };
        Arc::new(coffer_testkit::S3::client_for(
            info["s3_endpoint"].as_str().context("s3_endpoint")?,
            &coffer_testkit::S3Credentials {
                access_key: read("s3-access-key-id")?,
                secret_key: read("s3-secret-access-key")?,
                region: "us-east-1".into(),
            },
        ))
    };
    let prefix = format!("bench-store/{}/", client.run);
    for &c in &args.clients {
        let (store, prefix) = (store.clone(), prefix.clone());
        let op: Op = Arc::new(move || {
            let (store, key) = (store.clone(), format!("{prefix}{}", uuid::Uuid::new_v4()));
            Box::pin(async move {
                store
                    .put_object()
                    .bucket("coffer")
                    .key(key)
                    .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
                    .content_type("application/octet-stream")
                    .if_none_match("*")
                    .body(aws_sdk_s3::primitives::ByteStream::from_static(payload))
                    .send()
                    .await?;
                Ok(())
            })
        });
        let r = drive(c, args.seconds, op).await;
        push(row("store alone: the PUT of (b), a new key each", c, &r));
    }
    // Untimed: the bench's objects go, every version of them.
    loop {
        let listed = store
            .list_object_versions()
            .bucket("coffer")
            .prefix(&prefix)
            .send()
            .await?;
        if listed.versions().is_empty() {
            break;
        }
        for v in listed.versions() {
            store
                .delete_object()
                .bucket("coffer")
                .key(v.key().unwrap_or_default())
                .set_version_id(v.version_id().map(str::to_owned))
                .send()
                .await?;
        }
    }

    // (c) the floor: the same SQL, straight to Postgres, from this process.
    let floor = Arc::new(make_floor(&info, &secrets, &org, &file).await?);
    let c = *args.clients.iter().max().unwrap_or(&64);
    let floor_download = drive(c, args.seconds, floor_download_op(&floor)).await;
    push(row(
        "floor: download SQL (session lookup, file read, audit append), pools of 10",
        c,
        &floor_download,
    ));
    let inserted = Arc::new(Mutex::new(Vec::new()));
    let op = floor_upload_op(&floor, &inserted, args.file_bytes as i64);
    let floor_upload = drive(c, args.seconds, op).await;
    push(row(
        "floor: upload SQL (2 session lookups, create, complete, audit append), pools of 10",
        c,
        &floor_upload,
    ));
    let ids = std::mem::take(&mut *inserted.lock().await);
    floor.clean(&ids).await?;
    if let Some((_, top)) = download_rates.iter().find(|(n, _)| *n == c) {
        push(String::new());
        push(format!(
            "Download at {c} clients: {:.0} % of the floor.",
            100.0 * top.rate() / floor_download.rate()
        ));
    }

    // (d) the gateway's memory while the bytes flow (they never pass through it).
    if args.rss_gib > 0 {
        let pid = info["pids"]["gateway"].as_u64().context("no gateway pid")? as u32;
        let before = rss_kib(pid).context("cannot read the gateway's RSS")?;
        let peak = Arc::new(AtomicU64::new(before));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    if let Some(kib) = rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let target = args.rss_gib << 30;
        let sent = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..c)
            .map(|_| {
                let (cl, sent, counter) = (client.clone(), sent.clone(), counter.clone());
                tokio::spawn(async move {
                    while sent.fetch_add(payload.len() as u64, Ordering::Relaxed) < target {
                        let id = cl
                            .upload(counter.fetch_add(1, Ordering::Relaxed), payload)
                            .await?;
                        cl.purge(&id).await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for t in tasks {
            t.await??;
        }
        let elapsed = start.elapsed();
        done.store(true, Ordering::Relaxed);
        sampler.await?;
        let after = rss_kib(pid).unwrap_or(0);
        push(String::new());
        push(format!(
            "Gateway RSS while {} GiB were uploaded (and purged) by {c} clients in {:.0} s ({:.0} MiB/s): {:.1} MiB before, {:.1} MiB peak, {:.1} MiB after.",
            args.rss_gib,
            elapsed.as_secs_f64(),
            (target >> 20) as f64 / elapsed.as_secs_f64(),
            before as f64 / 1024.0,
            peak.load(Ordering::Relaxed) as f64 / 1024.0,
            after as f64 / 1024.0,
        ));
    }
    Ok(())
}

fn time_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("at unix time {secs}")
}

/// (e) Appends straight to the audit service, as the scan service appends its system events (its
/// mesh identity, no user token): 16 writers into one org's chain, then 2 writers into each of 16
/// orgs; then every chain is verified by the service (as the gateway, with an admin token minted
/// from this dev mesh's master ring).
async fn audit_appends(
    info: &Value,
    secrets: &std::path::Path,
    secs: u64,
    push: &mut impl FnMut(String),
) -> anyhow::Result<()> {
    use coffer_proto::v1 as pb;
    let addr = info["services"]["audit"]
        .as_str()
        .context("the audit service is not running")?
        .to_owned();
    let as_scan = coffer_mesh::MeshClient::new(coffer_mesh::CertStore::load(
        coffer_mesh::TlsFiles::in_dir(&secrets.join("scan")),
    )?)?;
    let writer = coffer_kit::audit::AuditLog::new(as_scan.channel("audit", &addr)?);
    let one = vec![uuid::Uuid::new_v4()];
    let many: Vec<uuid::Uuid> = (0..16).map(|_| uuid::Uuid::new_v4()).collect();
    let mut counts = std::collections::HashMap::<uuid::Uuid, u64>::new();
    for (label, orgs, per_org) in [("one org", &one, 16usize), ("16 orgs", &many, 2)] {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for org in orgs.iter().flat_map(|o| std::iter::repeat_n(*o, per_org)) {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                use coffer_kit::audit::{Action, Outcome, Target};
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    w.record_system(
                        org,
                        Action::FileDownload,
                        Target::File(uuid::Uuid::new_v4()),
                        Outcome::Success,
                    )
                    .await?;
                    lat.push(t.elapsed());
                }
                anyhow::Ok((org, lat))
            }));
        }
        let mut latencies = Vec::new();
        for t in tasks {
            let (org, lat) = t.await??;
            *counts.entry(org).or_default() += lat.len() as u64;
            latencies.extend(lat);
        }
        latencies.sort();
        let run = Run {
            ops: latencies.len(),
            errors: 0,
            elapsed: start.elapsed(),
            latencies,
        };
        push(row(
            &format!("audit append, {label}"),
            orgs.len() * per_org,
            &run,
        ));
    }
    // Every chain verifies, with exactly the appends that succeeded.
    let ring = coffer_token::MasterKeyRing::from_file(&secrets.join("auth/token-master.toml"))?;
    let minter = coffer_token::Minter::new(&ring);
    let as_gateway = coffer_mesh::MeshClient::new(coffer_mesh::CertStore::load(
        coffer_mesh::TlsFiles::in_dir(&secrets.join("gateway")),
    )?)?;
    let mut reader =
        coffer_proto::v1::audit_client::AuditClient::new(as_gateway.channel("audit", &addr)?);
    let started = Instant::now();
    let mut total = 0;
    for (org, n) in &counts {
        let token = minter.mint(
            &coffer_token::Subject {
                user_id: uuid::Uuid::new_v4(),
                org_id: *org,
                role: coffer_token::Role::Admin,
                scopes: coffer_token::Scopes::all(),
                credential: coffer_token::Credential::Session,
                request_id: "bench-verify".into(),
            },
            &[coffer_token::Audience::Audit],
            coffer_token::unix_now(),
            60,
        )?;
        let v = coffer_mesh::CallContext {
            token: Some(token.into()),
            request_id: "bench-verify".into(),
            deadline: None,
        }
        .scope(reader.verify(pb::VerifyRequest {}))
        .await?
        .into_inner();
        anyhow::ensure!(
            v.ok && v.count == *n,
            "org {org}: verify {v:?}, appended {n}"
        );
        total += n;
    }
    push(format!(
        "Every chain verified ({} orgs, {total} events) in {:.2} s: no gap, no loss.",
        counts.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The floor's pools, appender and the bench org's session, user and file.
async fn make_floor(
    info: &Value,
    secrets: &std::path::Path,
    org: &str,
    file: &str,
) -> anyhow::Result<Floor> {
    let superuser = std::fs::read_to_string(secrets.join("dev/postgres-superuser-url"))?;
    let su = PgPool::connect(superuser.trim()).await?;
    let (id_hash, user): (Vec<u8>, uuid::Uuid) = sqlx::query_as(
        "SELECT id_hash, user_id FROM auth.sessions WHERE org_id = $1 AND revoked_at IS NULL
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(uuid::Uuid::parse_str(org)?)
    .fetch_one(&su)
    .await?;
    let audit = coffer_audit::floor::Appender::new(
        runtime_pool(info, secrets, "audit").await?,
        Arc::new(audit_signer(secrets)?),
        coffer_audit::AuditConfig::default().checkpoint_every,
        Duration::from_secs(coffer_audit::AuditConfig::default().checkpoint_interval_secs),
    );
    Ok(Floor {
        auth: runtime_pool(info, secrets, "auth").await?,
        metadata: runtime_pool(info, secrets, "metadata").await?,
        audit,
        id_hash: id_hash
            .try_into()
            .map_err(|_| anyhow::anyhow!("a session hash is not 32 bytes"))?,
        idle_secs: coffer_auth::AuthConfig::default().session_idle_secs,
        org: org.parse()?,
        user,
        file: file.parse()?,
    })
}

fn upload_op(
    client: &Client,
    counter: &Arc<AtomicU64>,
    created: &Arc<Mutex<Vec<String>>>,
    payload: &'static [u8],
) -> Op {
    let (cl, counter, created) = (client.clone(), counter.clone(), created.clone());
    Arc::new(move || {
        let (cl, counter, created) = (cl.clone(), counter.clone(), created.clone());
        Box::pin(async move {
            let id = cl
                .upload(counter.fetch_add(1, Ordering::Relaxed), payload)
                .await?;
            created.lock().await.push(id);
            Ok(())
        })
    })
}

fn floor_download_op(floor: &Arc<Floor>) -> Op {
    let f = floor.clone();
    Arc::new(move || {
        let f = f.clone();
        Box::pin(async move { f.download().await })
    })
}

fn floor_upload_op(floor: &Arc<Floor>, inserted: &Arc<Mutex<Vec<uuid::Uuid>>>, size: i64) -> Op {
    let (f, ins) = (floor.clone(), inserted.clone());
    Arc::new(move || {
        let (f, ins) = (f.clone(), ins.clone());
        Box::pin(async move {
            let id = f.upload(size).await?;
            ins.lock().await.push(id);
            Ok(())
        })
    })
}

/// (j) Open loop: each path's maximum (closed loop at the largest client count), then arrivals
/// at 25, 50 and 75 % of it (or at `--rate`), each timed from its intended start; the floor the
/// same way. Everything the uploads created is purged afterwards, untimed.
#[allow(clippy::too_many_arguments)]
async fn open_loop(
    args: &BenchArgs,
    client: &Client,
    file: &str,
    payload: &'static [u8],
    counter: &Arc<AtomicU64>,
    floor: &Arc<Floor>,
    push: &mut impl FnMut(String),
) -> anyhow::Result<()> {
    use crate::bench_open::{HEADER, drive_open, row as open_row};
    let c = *args.clients.iter().max().unwrap_or(&64);
    let created = Arc::new(Mutex::new(Vec::new()));
    let inserted = Arc::new(Mutex::new(Vec::new()));
    // (what, op, the fixed rate asked for this path)
    let paths: [(&str, Op, Option<f64>); 4] = [
        (
            "download URL",
            crate::bench_overload::download(client, file),
            args.rate,
        ),
        (
            "upload: create + PUT + complete",
            upload_op(client, counter, &created, payload),
            args.upload_rate,
        ),
        ("floor: download SQL", floor_download_op(floor), args.rate),
        (
            "floor: upload SQL",
            floor_upload_op(floor, &inserted, args.file_bytes as i64),
            args.upload_rate,
        ),
    ];
    push(String::new());
    for line in HEADER {
        push(line.to_owned());
    }
    let fixed = args.rate.is_some() || args.upload_rate.is_some();
    for (what, op, rate) in paths {
        let rates: Vec<(String, f64)> = match (fixed, rate) {
            (true, None) => continue,
            (true, Some(rate)) => vec![(format!("{what}, fixed rate"), rate)],
            (false, _) => {
                let max = drive(c, args.seconds, op.clone()).await;
                push(format!(
                    "| {what}: maximum, closed loop, {c} clients | – | {:.0} | {:.2} | {:.2} | – | {} |",
                    max.rate(),
                    max.pct(0.5),
                    max.pct(0.99),
                    max.errors
                ));
                [0.25, 0.5, 0.75]
                    .into_iter()
                    .map(|share| {
                        (
                            format!("{what}, {:.0} % of max", share * 100.0),
                            share * max.rate(),
                        )
                    })
                    .collect()
            }
        };
        for (label, rate) in rates {
            // What the last run created goes first (untimed): the store and the quota stay
            // as they were.
            let ids = std::mem::take(&mut *created.lock().await);
            purge_all(client, ids).await?;
            let ids = std::mem::take(&mut *inserted.lock().await);
            floor.clean(&ids).await?;
            // A moment for what the last run left behind (connections, queued appends) to settle,
            // then the same rate untimed until this process's connections and pools are open.
            tokio::time::sleep(Duration::from_secs(2)).await;
            if args.warmup > 0 {
                let warm = drive_open(rate, args.warmup, op.clone()).await;
                if warm.errors + warm.shed > 0 {
                    eprintln!(
                        "bench: {label}: {} errors and {} shed while warming up (not counted)",
                        warm.errors, warm.shed
                    );
                }
            }
            let r = drive_open(rate, args.seconds, op.clone()).await;
            push(open_row(&label, &r));
        }
    }
    let ids = std::mem::take(&mut *created.lock().await);
    purge_all(client, ids).await?;
    let ids = std::mem::take(&mut *inserted.lock().await);
    floor.clean(&ids).await?;
    Ok(())
}
