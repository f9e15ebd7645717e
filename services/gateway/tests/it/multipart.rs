//! Large files in parts through the gateway: the plan, presigned parts that sign their length,
//! resuming from what the store holds, completing with every part, and the upload aborted when
//! the pending file goes to the trash.

use coffer_metadata::MetadataConfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::files::{User, put};
use crate::harness::{Harness, unthrottled};

const MIB: usize = 1024 * 1024;

/// Parts of 5 MiB above 6 MiB; the stale-upload sweep every `sweep_secs`.
async fn harness_sweeping(sweep_secs: u64) -> anyhow::Result<Harness> {
    Harness::start_full(
        unthrottled(),
        MetadataConfig {
            multipart_threshold_bytes: 6 * MIB as u64,
            multipart_part_bytes: 5 * MIB as u64,
            sweep_interval_secs: sweep_secs,
            ..MetadataConfig::default()
        },
    )
    .await
}

async fn harness() -> anyhow::Result<Harness> {
    harness_sweeping(MetadataConfig::default().sweep_interval_secs).await
}

/// A 7 MiB file in parts with its first part uploaded; its id.
async fn pending_in_parts(u: &User<'_>, name: &str) -> anyhow::Result<String> {
    let created = u
        .ok(
            Method::POST,
            "/v1/files",
            Some(
                json!({"name": name, "size": 7 * MIB, "content_type": "application/octet-stream"}),
            ),
            201,
        )
        .await?;
    let id = created["file"]["id"].as_str().unwrap().to_owned();
    let urls = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/parts"),
            Some(json!({"numbers": [1]})),
            200,
        )
        .await?;
    put(&urls["parts"][0], vec![7; 5 * MIB]).await?;
    Ok(id)
}

/// Open multipart uploads the embedded store holds.
fn open_uploads(h: &Harness) -> usize {
    std::fs::read_dir(h.stack.s3.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".upload-"))
        .count()
}

#[tokio::test]
async fn a_large_file_goes_up_in_parts_resumes_and_completes() -> anyhow::Result<()> {
    let h = harness().await?;
    let u = User::new(&h, "parts@example.com").await?;
    let body: Vec<u8> = (0..(2 * 5 * MIB + 3)).map(|i| (i % 251) as u8).collect();
    let created = u
        .ok(
            Method::POST,
            "/v1/files",
            Some(json!({"name": "big.bin", "size": body.len(), "content_type": "application/octet-stream"})),
            201,
        )
        .await?;
    let id = created["file"]["id"].as_str().unwrap().to_owned();
    let plan = &created["upload"];
    assert_eq!(plan["method"], "multipart");
    assert_eq!(plan["part_size"], 5 * MIB);
    assert_eq!(plan["part_count"], 3);
    assert!(plan.get("url").is_none());
    assert_eq!(open_uploads(&h), 1);

    let urls = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/parts"),
            Some(json!({"numbers": [1, 2, 3]})),
            200,
        )
        .await?;
    let part = |n: usize| -> (Value, Vec<u8>) {
        let url = urls["parts"][n - 1].clone();
        assert_eq!(url["number"], n);
        let start = (n - 1) * 5 * MIB;
        let end = (start + 5 * MIB).min(body.len());
        (url, body[start..end].to_vec())
    };
    // Each URL signs its part's length: the last part's URL takes 3 bytes only.
    assert_eq!(part(3).0["headers"]["content-length"], "3");
    for n in [1, 3] {
        let (url, bytes) = part(n);
        put(&url, bytes).await?;
    }
    // Resume: the store holds parts 1 and 3.
    let held = u
        .ok(Method::GET, &format!("/v1/files/{id}/parts"), None, 200)
        .await?;
    let numbers: Vec<u64> = held["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 3]);
    assert_eq!(held["parts"][1]["size"], 3);
    // Completing with parts missing is refused (the store would assemble them).
    let parts_of = |v: &Value| -> Value {
        Value::Array(
            v["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| json!({"number": p["number"], "etag": p["etag"]}))
                .collect(),
        )
    };
    let (status, code) = u
        .err(
            Method::POST,
            &format!("/v1/files/{id}/complete"),
            Some(json!({"parts": parts_of(&held)})),
        )
        .await?;
    assert_eq!((status, code.as_str()), (400, "invalid_argument"));
    // Without parts at all: refused too.
    let (status, _) = u
        .err(Method::POST, &format!("/v1/files/{id}/complete"), None)
        .await?;
    assert_eq!(status, 400);

    // Another org sees none of it.
    let other = User::new(&h, "parts-other@example.com").await?;
    for (method, path, body) in [
        (
            Method::POST,
            format!("/v1/files/{id}/parts"),
            Some(json!({"numbers": [2]})),
        ),
        (Method::GET, format!("/v1/files/{id}/parts"), None),
    ] {
        let (status, _) = other.err(method, &path, body).await?;
        assert_eq!(status, 404);
    }
    // Part numbers outside the plan, or too many at once: refused.
    for numbers in [json!([0]), json!([4]), json!((1..=101).collect::<Vec<_>>())] {
        let (status, _) = u
            .err(
                Method::POST,
                &format!("/v1/files/{id}/parts"),
                Some(json!({ "numbers": numbers })),
            )
            .await?;
        assert_eq!(status, 400, "{numbers}");
    }

    let (url, bytes) = part(2);
    put(&url, bytes).await?;
    let held = u
        .ok(Method::GET, &format!("/v1/files/{id}/parts"), None, 200)
        .await?;
    // An empty etag is a clear 400; etags quoted as S3 quotes them are fine.
    let mut bad = parts_of(&held);
    bad[1]["etag"] = json!("");
    let (status, _) = u
        .err(
            Method::POST,
            &format!("/v1/files/{id}/complete"),
            Some(json!({ "parts": bad })),
        )
        .await?;
    assert_eq!(status, 400);
    let mut quoted = parts_of(&held);
    for p in quoted.as_array_mut().unwrap() {
        p["etag"] = json!(format!("\"{}\"", p["etag"].as_str().unwrap()));
    }
    let file = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/complete"),
            Some(json!({ "parts": quoted })),
            200,
        )
        .await?;
    assert_eq!(file["status"], "scanning");
    assert_eq!(open_uploads(&h), 0);
    h.stack.verdict(&u.org, &id, "clean").await?;
    let grant = u
        .ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    let got = reqwest::get(grant["url"].as_str().unwrap())
        .await?
        .bytes()
        .await?;
    assert!(
        got[..] == body[..],
        "the downloaded bytes are the parts, in order"
    );
    // Done: no more parts to sign or list.
    let (status, _) = u
        .err(
            Method::POST,
            &format!("/v1/files/{id}/parts"),
            Some(json!({"numbers": [1]})),
        )
        .await?;
    assert_eq!(status, 409);
    Ok(())
}

/// A pending file in parts sent to the trash: its upload is aborted and its parts freed. A
/// file of one PUT takes no parts.
#[tokio::test]
async fn trashing_a_pending_file_in_parts_aborts_its_upload() -> anyhow::Result<()> {
    let h = harness().await?;
    let u = User::new(&h, "parts-trash@example.com").await?;
    let id = pending_in_parts(&u, "half.bin").await?;
    assert_eq!(open_uploads(&h), 1);
    u.ok(Method::DELETE, &format!("/v1/files/{id}"), None, 204)
        .await?;
    assert_eq!(open_uploads(&h), 0, "the upload was aborted");
    let leftovers = std::fs::read_dir(h.stack.s3.root())?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".part-"))
        .count();
    assert_eq!(leftovers, 0, "its parts were freed");
    // Its upload is gone: restoring it would leave a file that can never be completed.
    let (status, code) = u
        .err(Method::POST, &format!("/v1/files/{id}/restore"), None)
        .await?;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    u.ok(Method::DELETE, &format!("/v1/files/{id}/purge"), None, 204)
        .await?;

    // One PUT: no parts, and complete takes none.
    let small = u.upload("small.txt", None, b"small").await?;
    let (status, _) = u
        .err(
            Method::POST,
            &format!("/v1/files/{small}/parts"),
            Some(json!({"numbers": [1]})),
        )
        .await?;
    assert_eq!(status, 409);
    let (status, _) = u
        .err(
            Method::POST,
            &format!("/v1/files/{small}/complete"),
            Some(json!({"parts": [{"number": 1, "etag": "x"}]})),
        )
        .await?;
    assert_eq!(status, 400);
    u.ok(
        Method::POST,
        &format!("/v1/files/{small}/complete"),
        None,
        200,
    )
    .await?;
    // `null` and `{}` are no parts too, as a complete's body could be before parts existed.
    for (name, body) in [("null.txt", json!(null)), ("empty.txt", json!({}))] {
        let id = u.upload(name, None, b"x").await?;
        u.ok(
            Method::POST,
            &format!("/v1/files/{id}/complete"),
            Some(body),
            200,
        )
        .await?;
    }
    Ok(())
}

/// An upload in parts never completed is swept like any stale upload: the store's upload is
/// aborted (parts freed), the row removed.
#[tokio::test]
async fn a_stale_upload_in_parts_is_aborted_by_the_sweep() -> anyhow::Result<()> {
    let h = harness_sweeping(1).await?;
    let u = User::new(&h, "parts-stale@example.com").await?;
    let id = pending_in_parts(&u, "stale.bin").await?;
    assert_eq!(open_uploads(&h), 1);
    h.stack
        .pg
        .execute_as_superuser(
            &h.stack.metadata.database,
            "UPDATE metadata.files SET created_at = now() - interval '2 days'",
        )
        .await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while u
        .send(Method::GET, &format!("/v1/files/{id}"), None)
        .await?
        .status()
        != 404
    {
        assert!(std::time::Instant::now() < deadline, "not swept");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(open_uploads(&h), 0, "the store's upload was aborted");
    Ok(())
}

/// Creates a file of `body` in 5 MiB parts (declaring `sha256` when given), sends every part
/// and completes; returns the file id.
async fn upload_in_parts(
    u: &User<'_>,
    name: &str,
    body: &[u8],
    sha256: Option<&str>,
) -> anyhow::Result<String> {
    let mut create =
        json!({"name": name, "size": body.len(), "content_type": "application/octet-stream"});
    if let Some(h) = sha256 {
        create["sha256"] = json!(h);
    }
    let created = u.ok(Method::POST, "/v1/files", Some(create), 201).await?;
    assert_eq!(created["upload"]["method"], "multipart");
    let id = created["file"]["id"].as_str().unwrap().to_owned();
    let count = created["upload"]["part_count"].as_u64().unwrap() as usize;
    let urls = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/parts"),
            Some(json!({ "numbers": (1..=count).collect::<Vec<_>>() })),
            200,
        )
        .await?;
    for (i, chunk) in body.chunks(5 * MIB).enumerate() {
        put(&urls["parts"][i], chunk.to_vec()).await?;
    }
    let held = u
        .ok(Method::GET, &format!("/v1/files/{id}/parts"), None, 200)
        .await?;
    let parts: Vec<Value> = held["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"number": p["number"], "etag": p["etag"]}))
        .collect();
    u.ok(
        Method::POST,
        &format!("/v1/files/{id}/complete"),
        Some(json!({ "parts": parts })),
        200,
    )
    .await?;
    Ok(id)
}

/// A store cannot check a declared SHA-256 on parts: the scan does. Bytes that hash otherwise
/// end `failed` (quarantined, no download); bytes that match become available; and every
/// scanned file gets the SHA-256 of its bytes recorded, declared or not (what clients verify
/// downloads against).
#[tokio::test]
async fn a_declared_sha256_is_checked_by_the_scan_for_an_upload_in_parts() -> anyhow::Result<()> {
    use sha2::Digest as _;
    let h = Harness::start_scanning(
        unthrottled(),
        MetadataConfig {
            multipart_threshold_bytes: 6 * MIB as u64,
            multipart_part_bytes: 5 * MIB as u64,
            ..MetadataConfig::default()
        },
        coffer_scan::ScanConfig {
            poll_interval_ms: 100,
            ..Default::default()
        },
    )
    .await?;
    let u = User::new(&h, "hashed-parts@example.com").await?;
    let body: Vec<u8> = (0..(7 * MIB)).map(|i| (i % 253) as u8).collect();
    let real = format!("{:x}", sha2::Sha256::digest(&body));
    let mut other = body.clone();
    other[6 * MIB] ^= 1;

    let right = upload_in_parts(&u, "right.bin", &body, Some(&real)).await?;
    let wrong = upload_in_parts(&u, "wrong.bin", &other, Some(&real)).await?;
    let undeclared = upload_in_parts(&u, "undeclared.bin", &other, None).await?;
    let wait = |id: String| {
        let u = &u;
        async move { crate::scans::wait(u, &format!("/v1/files/{id}"), "status", &["scanning"]).await }
    };
    let f = wait(right.clone()).await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("available"), Some("clean"))
    );
    assert_eq!(f["sha256"], real);
    let f = wait(wrong.clone()).await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("quarantined"), Some("failed")),
        "other bytes than declared never become available"
    );
    let (status, code) = u
        .err(Method::GET, &format!("/v1/files/{wrong}/download"), None)
        .await?;
    assert_eq!((status, code.as_str()), (403, "quarantined"));
    let f = wait(undeclared).await?;
    assert_eq!(f["status"], "available");
    assert_eq!(f["sha256"], format!("{:x}", sha2::Sha256::digest(&other)));
    Ok(())
}

/// Metadata's own check of a declared SHA-256, behind the scan's: a clean verdict that says
/// nothing of the bytes' hash is refused (fail closed: a scan worker older than the check
/// retries); one whose hash differs is recorded `failed`, and the file's `sha256` becomes the
/// hash of the bytes (what a release would serve).
#[tokio::test]
async fn metadata_fails_closed_on_a_clean_verdict_without_the_bytes_hash() -> anyhow::Result<()> {
    let h = harness().await?;
    let u = User::new(&h, "verdict-hash@example.com").await?;
    let id = u.upload("declared.txt", None, b"declared bytes").await?;
    u.ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
        .await?;
    let mut scan = h.stack.metadata_as("scan")?;
    let verdict = |sha256: &str| coffer_proto::v1::RecordVerdictRequest {
        org_id: u.org.clone(),
        file_id: id.clone(),
        verdict: coffer_kit::vocab::Verdict::Clean.to_wire(),
        sha256: sha256.to_owned(),
        ..Default::default()
    };
    let refused = scan.record_verdict(verdict("")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let other = "ab".repeat(32);
    let file = scan.record_verdict(verdict(&other)).await?.into_inner();
    assert_eq!(
        coffer_kit::vocab::Verdict::from_wire(file.verdict),
        Some(coffer_kit::vocab::Verdict::Failed)
    );
    assert_eq!(file.sha256, other);
    let f = u
        .ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
        .await?;
    assert_eq!(
        (f["status"].as_str(), f["sha256"].as_str()),
        (Some("quarantined"), Some(other.as_str()))
    );
    Ok(())
}
