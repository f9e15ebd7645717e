//! `coffer-dev drill restore`: the point-in-time restore drill, on this machine, end to end.
//!
//! It starts the mesh with its database archiving WAL, takes a base backup, works through the
//! gateway (two orgs sign up, upload, rename, create a folder), notes the time T, works on (a
//! rename, a new upload, a new folder, and the purge of a file that was available at T), then
//! stops the services, restores a new cluster to T from the base backup and the archive, points
//! the services at it and checks through the gateway: the files and names are those of T,
//! nothing after T exists, every org's audit chain verifies, the purged file's events up to T are
//! there (and its purge is not), and every file that was available at T downloads with the bytes
//! it had — the purged one too (its object outlives the row by `object_delete_delay_secs`).
//! It prints what it checked and the restore's times; any difference fails it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use coffer_testkit::{DevCa, Postgres, PostgresOptions, S3};
use coffer_token::MasterKeyRing;
use futures_util::StreamExt as _;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::client::Client;
use crate::up::supervisor::Supervisor;
use crate::up::{BUCKET, Tuning, prepare_dir, provision, start_services};

#[derive(clap::Args, Debug)]
pub struct DrillArgs {
    /// Where to keep the drill's state (secrets, WAL archive, base backup, logs); wiped at start.
    #[arg(long, default_value = ".coffer-drill")]
    dir: PathBuf,
    /// Also write the report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// More files per org before T (each checked after the restore): a larger database and
    /// archive to restore (BENCHMARKS.md's run uses 2000).
    #[arg(long, default_value_t = 0)]
    extra_files: usize,
}

#[derive(Serialize, Debug)]
struct Report {
    /// The moment restored to (the database's clock).
    target: String,
    orgs: usize,
    files_at_target: usize,
    files_downloaded_with_their_bytes: usize,
    audit_events_at_target: u64,
    base_backup_secs: f64,
    /// From the start of the restore to the restored cluster taking writes.
    restore_secs: f64,
    /// From the restored cluster taking writes to the gateway answering.
    services_secs: f64,
    checks: Vec<String>,
}

/// One user's view of what they did, to compare the restore with.
struct Org {
    client: Client,
    /// file id → (name at T, the bytes' SHA-256), for the files available at T.
    files_at_t: BTreeMap<String, (String, String)>,
    folders_at_t: Vec<String>,
    email: String,
    password: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn sign_up(base: &str, ca: &Path, org: &str) -> anyhow::Result<Org> {
    let email = format!("owner@{org}.example");
    let password = format!("drill {} password", coffer_testkit::random_secret());
    let (http, _) = crate::client::http_clients(ca)?;
    let res = http
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"org_name": org, "email": email, "password": password}))
        .send()
        .await?;
    ensure!(res.status().is_success(), "signup {org}: {}", res.status());
    Ok(Org {
        client: Client::login(base, ca, &email, &password).await?,
        files_at_t: BTreeMap::new(),
        folders_at_t: Vec::new(),
        email,
        password,
    })
}

/// Create, PUT, complete, and wait for the scan's clean verdict; returns the id.
async fn upload(c: &Client, name: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
    let created = c
        .json(
            Method::POST,
            "/v1/files",
            Some(json!({"name": name, "size": bytes.len(), "content_type": "application/octet-stream"})),
        )
        .await?;
    let id = created["file"]["id"]
        .as_str()
        .context("file id")?
        .to_owned();
    let upload = &created["upload"];
    let mut put = c.store.put(upload["url"].as_str().context("url")?);
    for (k, v) in upload["headers"].as_object().context("headers")? {
        if k != "content-length" {
            put = put.header(k, v.as_str().unwrap_or_default());
        }
    }
    let res = put.body(bytes).send().await?;
    ensure!(res.status().is_success(), "PUT {name}: {}", res.status());
    c.json(Method::POST, &format!("/v1/files/{id}/complete"), None)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let file = c
            .json(Method::GET, &format!("/v1/files/{id}"), None)
            .await?;
        match file["status"].as_str() {
            Some("available") => return Ok(id),
            Some("scanning") if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => anyhow::bail!("{name} ended {other:?}, not available"),
        }
    }
}

async fn rename(c: &Client, id: &str, name: &str) -> anyhow::Result<()> {
    c.json(
        Method::PATCH,
        &format!("/v1/files/{id}"),
        Some(json!({"name": name})),
    )
    .await
    .map(|_| ())
}

async fn folder(c: &Client, name: &str) -> anyhow::Result<()> {
    c.json(Method::POST, "/v1/folders", Some(json!({"name": name})))
        .await
        .map(|_| ())
}

/// The top level's folder and file names, and the files' ids (every page).
async fn top_level(c: &Client) -> anyhow::Result<(Vec<String>, BTreeMap<String, String>)> {
    let (mut folders, mut files) = (Vec::new(), BTreeMap::new());
    let mut cursor = String::new();
    loop {
        let page = c
            .json(
                Method::GET,
                &format!("/v1/folders/root/children?limit=1000&cursor={cursor}"),
                None,
            )
            .await?;
        for f in page["folders"].as_array().context("folders")? {
            folders.push(f["name"].as_str().context("name")?.to_owned());
        }
        for f in page["files"].as_array().context("files")? {
            files.insert(
                f["id"].as_str().context("id")?.to_owned(),
                f["name"].as_str().context("name")?.to_owned(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = next.to_owned(),
            _ => break,
        }
    }
    folders.sort();
    Ok((folders, files))
}

async fn download(c: &Client, id: &str) -> anyhow::Result<Vec<u8>> {
    let grant = c
        .json(Method::GET, &format!("/v1/files/{id}/download"), None)
        .await?;
    let res = c
        .store
        .get(grant["url"].as_str().context("url")?)
        .send()
        .await?;
    ensure!(res.status().is_success(), "GET {id}: {}", res.status());
    Ok(res.bytes().await?.to_vec())
}

/// Every audit event of the caller's org, oldest first.
async fn audit_events(c: &Client) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = c
            .json(
                Method::GET,
                &format!("/v1/audit?limit=1000&cursor={cursor}"),
                None,
            )
            .await?;
        out.extend(page["items"].as_array().context("items")?.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = next.to_owned(),
            _ => return Ok(out),
        }
    }
}

/// The database's clock, as `recovery_target_time` takes it and as a time.
async fn db_now(pg: &Postgres) -> anyhow::Result<(String, time::OffsetDateTime)> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&pg.superuser_url("coffer")).await?;
    let (text, rfc3339): (String, String) = sqlx::query_as(
        "SELECT t::text, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
         FROM (SELECT clock_timestamp() AS t) now",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    let at = time::OffsetDateTime::parse(&rfc3339, &time::format_description::well_known::Rfc3339)?;
    Ok((text, at))
}

/// Closes the current WAL segment and waits until the archive holds it.
async fn archive_now(pg: &Postgres) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&pg.superuser_url("coffer")).await?;
    let segment: String = sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())")
        .fetch_one(&mut conn)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (archived, failed): (Option<String>, i64) =
            sqlx::query_as("SELECT last_archived_wal, failed_count FROM pg_stat_archiver")
                .fetch_one(&mut conn)
                .await?;
        ensure!(failed == 0, "WAL archiving failed");
        if archived.is_some_and(|a| a >= segment) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{segment} was not archived in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.close().await?;
    Ok(())
}

pub async fn run(args: DrillArgs) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)?;
    prepare_dir(&dir)?;
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let archive = dir.join("wal-archive");
    let backup = dir.join("base-backup");
    let mut checks = Vec::new();
    let mut check = |what: String| {
        println!("  ok  {what}");
        checks.push(what);
    };

    println!("starting postgres with WAL archiving, the s3 server and the mesh ...");
    let mut pg = Postgres::start_with(PostgresOptions {
        wal_archive: Some(archive.clone()),
        ..PostgresOptions::default()
    })
    .await?;
    let s3 = S3::start().await?;
    s3.client().create_bucket().bucket(BUCKET).send().await?;
    let ca = DevCa::new("Coffer drill CA")?;
    let ca_cert = dir.join("ca.crt");
    std::fs::write(&ca_cert, ca.ca_pem())?;
    let ring = MasterKeyRing::generate("drill-1");
    provision(&secrets, &ca, &ring, &pg, s3.credentials()).await?;
    ca.write_service_dir(&secrets.join("dev"), "coffer-dev")?;
    let tuning = Tuning {
        gateway_rate: 1000,
        ..Tuning::default()
    };
    let mut supervisor = Supervisor::default();
    let (_, gateway, _, _) =
        start_services(&dir, &secrets, pg.port(), &s3, &tuning, &mut supervisor).await?;
    let base = gateway.context("the gateway is not built (cargo build --bins)")?;

    println!("taking a base backup ...");
    let started = Instant::now();
    pg.base_backup(&backup)?;
    let base_backup_secs = started.elapsed().as_secs_f64();

    println!("working through the gateway before T ...");
    let mut orgs = Vec::new();
    for name in ["drill-a", "drill-b"] {
        let mut org = sign_up(&base, &ca_cert, name).await?;
        let c = org.client.clone();
        let mut ids = Vec::new();
        for (i, n) in ["contract.pdf", "payroll.csv", "passport.png"]
            .iter()
            .enumerate()
        {
            let bytes: Vec<u8> = format!("{name} {n} ")
                .bytes()
                .cycle()
                .take(1000 + 4096 * i)
                .collect();
            let id = upload(&c, n, bytes.clone()).await?;
            org.files_at_t
                .insert(id.clone(), ((*n).to_owned(), sha256_hex(&bytes)));
            ids.push(id);
        }
        let extra = futures_util::stream::iter(0..args.extra_files)
            .map(|i| {
                let c = c.clone();
                async move {
                    let name = format!("bulk/{i:05}.txt");
                    let bytes = format!("{name} of {}", c.base).into_bytes();
                    let sha = sha256_hex(&bytes);
                    let id = upload(&c, &name.replace('/', "-"), bytes).await?;
                    anyhow::Ok((id, (name.replace('/', "-"), sha)))
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        for done in extra {
            let (id, file) = done?;
            org.files_at_t.insert(id, file);
        }
        rename(&c, &ids[1], "payroll-2026.csv").await?;
        org.files_at_t.get_mut(&ids[1]).context("payroll")?.0 = "payroll-2026.csv".into();
        folder(&c, "Contracts").await?;
        org.folders_at_t = vec!["Contracts".into()];
        orgs.push((org, ids));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (target, target_time) = db_now(&pg).await?;
    println!("T = {target}");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    println!("working on after T: a rename, an upload, a folder, a purge ...");
    for (org, ids) in &orgs {
        let c = &org.client;
        rename(c, &ids[0], "contract-signed.pdf").await?;
        upload(c, "after-t.txt", b"written after T".to_vec()).await?;
        folder(c, "Later").await?;
        c.json(Method::DELETE, &format!("/v1/files/{}/purge", ids[2]), None)
            .await?;
    }
    archive_now(&pg).await?;

    println!("stopping the services and the database; restoring to T ...");
    supervisor.stop_all(Duration::from_secs(10));
    pg.stop();
    let started = Instant::now();
    let restored = pg.restore(&backup, &archive, &target).await?;
    let restore_secs = started.elapsed().as_secs_f64();
    println!("  restored in {restore_secs:.1} s; starting the services on it ...");
    let started = Instant::now();
    // What the drill itself does from here on (logins, downloads) is audited too: every event
    // must be from before T or from after this moment, none from between.
    let restarted_at = time::OffsetDateTime::now_utc();
    let mut supervisor = Supervisor::default();
    let (_, gateway, _, _) = start_services(
        &dir,
        &secrets,
        restored.port(),
        &s3,
        &tuning,
        &mut supervisor,
    )
    .await?;
    let base = gateway.context("the gateway")?;
    let services_secs = started.elapsed().as_secs_f64();

    println!("checking the restored vault through the gateway ...");
    let mut files_at_target = 0;
    let mut downloaded = 0;
    let mut audit_events_at_target = 0;
    for (org, ids) in &orgs {
        let c = Client::login(&base, &ca_cert, &org.email, &org.password).await?;
        let (folders, files) = top_level(&c).await?;
        ensure!(
            folders == org.folders_at_t,
            "{}: folders {folders:?}, at T {:?}",
            org.email,
            org.folders_at_t
        );
        let want: BTreeMap<String, String> = org
            .files_at_t
            .iter()
            .map(|(id, (name, _))| (id.clone(), name.clone()))
            .collect();
        ensure!(
            files == want,
            "{}: files {files:?}, at T {want:?}",
            org.email
        );
        files_at_target += files.len();
        check(format!(
            "{}: the files and names of T ({} files, folder Contracts; no after-t.txt, no Later, contract.pdf not yet renamed)",
            org.email,
            files.len()
        ));
        for (id, (name, sha)) in &org.files_at_t {
            let bytes = download(&c, id).await?;
            ensure!(&sha256_hex(&bytes) == sha, "{name}: other bytes than at T");
            downloaded += 1;
        }
        check(format!(
            "{}: every file available at T downloads with its bytes, passport.png (purged after T) too",
            org.email
        ));
        let verify = c.json(Method::GET, "/v1/audit/verify", None).await?;
        ensure!(
            verify["ok"] == true,
            "{}: the audit chain does not verify: {verify}",
            org.email
        );
        let events = audit_events(&c).await?;
        ensure!(
            verify["count"].as_u64() == Some(events.len() as u64),
            "{}: verify counted {}, the log lists {}",
            org.email,
            verify["count"],
            events.len()
        );

        check(format!(
            "{}: the audit chain verifies ({} events)",
            org.email,
            events.len()
        ));
        let mut before_t = Vec::new();
        for e in &events {
            let at = time::OffsetDateTime::parse(
                e["at"].as_str().context("at")?,
                &time::format_description::well_known::Rfc3339,
            )?;
            if at <= target_time {
                before_t.push(e);
            } else {
                ensure!(
                    at >= restarted_at,
                    "{}: an event between T and the restore: {e}",
                    org.email
                );
            }
        }
        check(format!(
            "{}: no audit event after T ({} up to T; the drill's own checks since the restore)",
            org.email,
            before_t.len()
        ));
        audit_events_at_target += before_t.len() as u64;
        let purged = &ids[2];
        let of_purged: Vec<&str> = before_t
            .iter()
            .filter(|e| {
                e["target"]
                    .as_str()
                    .is_some_and(|t| t.contains(purged.as_str()))
            })
            .filter_map(|e| e["action"].as_str())
            .collect();
        ensure!(
            !of_purged.is_empty() && !of_purged.contains(&"file.purge"),
            "{}: the purged file's events {of_purged:?}",
            org.email
        );
        check(format!(
            "{}: the purged file's events up to T are there ({}), its purge is not",
            org.email,
            of_purged.join(", ")
        ));
    }
    supervisor.stop_all(Duration::from_secs(10));
    drop(restored);
    drop(s3);

    let report = Report {
        target,
        orgs: orgs.len(),
        files_at_target,
        files_downloaded_with_their_bytes: downloaded,
        audit_events_at_target,
        base_backup_secs,
        restore_secs,
        services_secs,
        checks,
    };
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(path) = &args.report {
        std::fs::write(path, &text)?;
    }
    println!(
        "restore drill passed: restored to T in {restore_secs:.1} s, services back in {services_secs:.1} s"
    );
    Ok(())
}
