//! Uploading through metadata as the gateway does, and waiting for verdicts.

use std::time::Duration;

use coffer_proto::v1::{self as pb};
use coffer_scan::testing::{ScanStack, TestUser};
use sqlx::Connection as _;

/// Creates a file, PUTs `bytes` to its presigned URL and completes the upload. Returns its id.
/// A file's status as API.md names it.
pub fn status_name(f: &pb::File) -> &'static str {
    coffer_kit::vocab::FileStatus::from_wire(f.status).map_or("", |s| s.as_str())
}

/// A verdict as API.md names it; empty when unspecified.
pub fn verdict_name(v: i32) -> &'static str {
    coffer_kit::vocab::Verdict::from_wire(v).map_or("", |v| v.as_str())
}

/// A scan-only request's status as API.md names it.
pub fn scan_state(s: &pb::ScanStatus) -> &'static str {
    coffer_kit::vocab::ScanState::from_wire(s.status).map_or("", |s| s.as_str())
}

pub async fn upload(
    stack: &ScanStack,
    user: &TestUser,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> anyhow::Result<String> {
    let md = stack.stack.metadata_as("gateway")?;
    let created = user
        .call(md.clone().create_file(pb::CreateFileRequest {
            name: name.into(),
            size: bytes.len() as u64,
            content_type: content_type.into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let id = created.file.unwrap().id;
    put(&created.upload.unwrap(), bytes.to_vec()).await?;
    user.call(md.clone().complete_upload(pb::CompleteUploadRequest {
        file_id: id.clone(),
        parts: vec![],
    }))
    .await?;
    Ok(id)
}

/// PUTs `body` with the exact headers a presigned request asks for.
pub async fn put(upload: &pb::PresignedRequest, body: Vec<u8>) -> anyhow::Result<()> {
    let mut req = reqwest::Client::new().put(&upload.url).body(body);
    for (k, v) in &upload.headers {
        req = req.header(k, v);
    }
    let res = req.send().await?;
    anyhow::ensure!(res.status().is_success(), "PUT refused: {}", res.status());
    Ok(())
}

/// Waits until the file leaves `scanning` and returns it.
pub async fn verdict(stack: &ScanStack, user: &TestUser, id: &str) -> anyhow::Result<pb::File> {
    let md = stack.stack.metadata_as("gateway")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let f = user
            .call(md.clone().get_file(pb::FileRef { file_id: id.into() }))
            .await?
            .into_inner();
        if status_name(&f) != "scanning" && status_name(&f) != "pending_upload" {
            return Ok(f);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no verdict within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A superuser connection to the scan database, to look at what was stored.
pub async fn scan_db(stack: &ScanStack) -> anyhow::Result<sqlx::PgConnection> {
    let mut c =
        sqlx::PgConnection::connect(&stack.stack.pg.superuser_url(&stack.setup.database)).await?;
    sqlx::query("SET search_path TO scan")
        .execute(&mut c)
        .await?;
    Ok(c)
}

/// The EICAR test string, assembled so no source file holds it in one piece.
pub fn eicar() -> Vec<u8> {
    let mut v = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$".to_vec();
    v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-");
    v.extend_from_slice(b"TEST-FILE!$H+H*");
    v
}

/// A minimal PE header: enough for the magic checks.
pub fn pe() -> Vec<u8> {
    let mut v = b"MZ".to_vec();
    v.resize(0x3c, 0);
    v.extend_from_slice(&0x80u32.to_le_bytes());
    v.resize(0x80, 0);
    v.extend_from_slice(b"PE\0\0\x64\x86");
    v.resize(4096, 0x90);
    v
}

/// Waits until the subject's job is marked done (just after metadata took the verdict) and
/// returns its tries and last error.
pub async fn job_done(
    db: &mut sqlx::PgConnection,
    subject: &str,
) -> anyhow::Result<(i32, Option<String>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (state, attempts, last_error): (String, i32, Option<String>) = sqlx::query_as(
            "SELECT state, attempts, last_error FROM jobs WHERE subject_id = $1::uuid",
        )
        .bind(subject)
        .fetch_one(&mut *db)
        .await?;
        if state == "done" {
            return Ok((attempts, last_error));
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "job not done: {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a `coffer-scan` process of the stack with `config`, written to `<name>.toml`; killed
/// when dropped.
pub fn worker(
    stack: &ScanStack,
    name: &str,
    config: &coffer_scan::ScanConfig,
) -> anyhow::Result<tokio::process::Child> {
    let path = stack
        .setup
        .write_config(&stack.stack.dir.path().join(format!("{name}.toml")), config)?;
    Ok(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_coffer-scan"))
            .arg("--config")
            .arg(path)
            .kill_on_drop(true)
            .spawn()?,
    )
}
