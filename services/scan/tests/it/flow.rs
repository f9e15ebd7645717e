//! Every upload is scanned: each engine's target gets its verdict through metadata, with the
//! result, versions and audit event recorded, and nothing of the file's name stored here.

use coffer_proto::v1::{self as pb};
use coffer_scan::engines::archive::build;
use coffer_scan::testing::ScanStack;

use crate::harness::{eicar, job_done, pe, scan_db, status_name, upload, verdict, verdict_name};

#[tokio::test]
async fn each_engine_target_gets_its_verdict_and_metadata_follows() -> anyhow::Result<()> {
    let stack = ScanStack::start(Default::default(), Default::default()).await?;
    let user = stack.user().await?;
    let mut key = b"config:\n".to_vec();
    key.extend_from_slice(
        b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n",
    );
    let bomb = build::nested_bomb(6, 2, 8 << 20);
    let ratio_bomb = build::zeros("zeros.bin", 256 << 20);
    // name, declared type, bytes, status, verdict, a signature expected in the engines
    type Case = (
        &'static str,
        &'static str,
        Vec<u8>,
        &'static str,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "minutes-zqxmark.txt",
            "text/plain",
            b"Board minutes: nothing to see.\n".to_vec(),
            "available",
            "clean",
            "",
        ),
        (
            "test-zqxmark.com",
            "application/octet-stream",
            eicar(),
            "quarantined",
            "infected",
            "eicar_test_file",
        ),
        (
            "invoice-zqxmark.pdf",
            "application/pdf",
            pe(),
            "quarantined",
            "suspicious",
            "hidden-executable:pe",
        ),
        (
            "bomb-zqxmark.zip",
            "application/zip",
            bomb,
            "quarantined",
            "suspicious",
            "archive-",
        ),
        (
            "zeros-zqxmark.zip",
            "application/zip",
            ratio_bomb,
            "quarantined",
            "suspicious",
            "archive-compression-ratio",
        ),
        (
            "deploy-zqxmark.yaml",
            "text/yaml",
            key,
            "quarantined",
            "sensitive",
            "pem-private-key",
        ),
    ];
    let mut ids = Vec::new();
    for (name, ct, bytes, ..) in &cases {
        ids.push(upload(&stack, &user, name, ct, bytes).await?);
    }
    let mut db = scan_db(&stack).await?;
    // Verdicts by kind are counted (this process's workers record them; other tests may add).
    let verdicts_counted = |verdict: &str| -> f64 {
        coffer_telemetry::metrics()
            .sample(&format!(
                "coffer_scan_verdicts_total{{verdict=\"{verdict}\"}}"
            ))
            .unwrap_or(0.0)
    };
    for ((name, _, _, status, verdict_want, signature), id) in cases.iter().zip(&ids) {
        let f = verdict(&stack, &user, id).await?;
        assert_eq!(
            (status_name(&f), verdict_name(f.verdict)),
            (*status, *verdict_want),
            "{name}"
        );
        let (verdict, engines, ruleset, versions): (String, serde_json::Value, String, serde_json::Value) =
            sqlx::query_as("SELECT verdict, engines, ruleset_version, versions FROM results WHERE subject_id = $1::uuid")
                .bind(id)
                .fetch_one(&mut db)
                .await?;
        assert_eq!(verdict, *verdict_want, "{name}");
        // Every engine's version decides re-scans: the rules, the NSFW model, ClamAV (none here).
        assert!(ruleset.starts_with("rules:2026."), "{ruleset}");
        assert!(
            ruleset.contains(";nsfw:nsfwjs@4.4.0/mobilenet_v2+sha256:"),
            "{ruleset}"
        );
        assert!(
            versions["nsfw"]
                .as_str()
                .is_some_and(|v| v.starts_with("nsfwjs@"))
        );
        assert!(versions["yara_x"].as_str().is_some_and(|v| !v.is_empty()));
        let engines = engines.as_array().unwrap();
        assert!(
            engines.iter().any(|e| e["engine"] == "yara-x"),
            "{engines:?}"
        );
        if signature.is_empty() {
            assert!(
                engines.iter().all(|e| e["clean"] == true),
                "{name}: {engines:?}"
            );
        } else {
            assert!(
                engines.iter().any(|e| e["signature"]
                    .as_str()
                    .is_some_and(|s| s.contains(signature))),
                "{name}: {engines:?}"
            );
        }
    }
    for (_, _, _, _, verdict, _) in &cases {
        let want = cases.iter().filter(|c| c.4 == *verdict).count() as f64;
        assert!(
            verdicts_counted(verdict) >= want,
            "{verdict}: counted {}",
            verdicts_counted(verdict)
        );
    }
    // And the work behind them: jobs claimed and done, the streaming pass timed for each file,
    // the archive walk for the archives, the bytes read.
    let m = coffer_telemetry::metrics();
    let n = cases.len() as f64;
    let at_least = |series: &str, want: f64| {
        let got = m.sample(series).unwrap_or(0.0);
        assert!(got >= want, "{series}: {got} < {want}");
    };
    at_least("coffer_scan_jobs_claimed_total", n);
    // A job's try is counted when the worker finishes it, just after metadata took the verdict
    // the loop above waited for: give the last one a moment.
    let done = "coffer_scan_job_tries_total{outcome=\"done\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while m.sample(done).unwrap_or(0.0) < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    at_least(done, n);
    at_least(
        "coffer_scan_engine_duration_seconds_count{engine=\"stream\"}",
        n,
    );
    at_least(
        "coffer_scan_engine_duration_seconds_count{engine=\"archive\"}",
        2.0,
    );
    let bytes: usize = cases.iter().map(|c| c.2.len()).sum();
    at_least("coffer_scan_bytes_total", bytes as f64);
    // The quarantined cannot be downloaded; the clean can.
    let md = stack.stack.metadata_as("gateway")?;
    user.call(md.clone().authorize_download(pb::FileRef {
        file_id: ids[0].clone(),
    }))
    .await?;
    let refused = user
        .call(md.clone().authorize_download(pb::FileRef {
            file_id: ids[1].clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // Nothing in the scan schema holds a name: not the jobs, not the results.
    let dump = stack.stack.pg.dump(&stack.setup.database)?;
    assert!(dump.contains("eicar_test_file"), "the dump has the results");
    assert!(
        !dump.contains("zqxmark"),
        "a file name is stored in the scan schema"
    );
    // Each verdict is audited once, as the scan service.
    let audit_db = &stack.stack.audit().database;
    let mut adb = sqlx::Connection::connect(&stack.stack.pg.superuser_url(audit_db))
        .await
        .map(|c: sqlx::PgConnection| c)?;
    for (i, id) in ids.iter().enumerate() {
        // The event is appended before the job is marked done.
        job_done(&mut db, id).await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT action, actor FROM audit.events
             WHERE target = $1 AND action IN ('file.scanned', 'file.quarantined')",
        )
        .bind(format!("file:{id}"))
        .fetch_all(&mut adb)
        .await?;
        let want = if i == 0 {
            "file.scanned"
        } else {
            "file.quarantined"
        };
        assert_eq!(
            rows,
            [(want.to_owned(), "service:scan".to_owned())],
            "{}",
            cases[i].0
        );
    }
    Ok(())
}

#[tokio::test]
async fn clamav_through_a_real_clamd_finds_its_signatures() -> anyhow::Result<()> {
    let clamd = coffer_testkit::Clamd::start(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/clamav"
    )))
    .await?;
    let config = coffer_scan::ScanConfig {
        clamd: Some(clamd.address()),
        ..Default::default()
    };
    let stack = ScanStack::start(Default::default(), config).await?;
    let user = stack.user().await?;
    let known_bad = "coffer known-bad sample for the hash database\n".repeat(3);
    // An ELF whose code holds the exit stub of coffer.ndb.
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    elf.resize(64, 0);
    elf.extend_from_slice(b"\x48\x31\xc0\x48\x89\xc7\xb0\x3c\x0f\x05");
    elf.resize(512, 0);
    let cases: Vec<(&str, Vec<u8>, &str, Option<&str>)> = vec![
        ("a.txt", b"plain words".to_vec(), "clean", None),
        ("b.com", eicar(), "infected", Some("Coffer.Test.EICAR")),
        (
            "c.bin",
            known_bad.into_bytes(),
            "infected",
            Some("Coffer.Test.KnownBad"),
        ),
        ("d", elf, "infected", Some("Coffer.Test.ExitStub")),
    ];
    let mut db = scan_db(&stack).await?;
    for (name, bytes, want, sig) in cases {
        let id = upload(&stack, &user, name, "application/octet-stream", &bytes).await?;
        let f = verdict(&stack, &user, &id).await?;
        assert_eq!(verdict_name(f.verdict), want, "{name}");
        let (engines, versions): (serde_json::Value, serde_json::Value) =
            sqlx::query_as("SELECT engines, versions FROM results WHERE subject_id = $1::uuid")
                .bind(&id)
                .fetch_one(&mut db)
                .await?;
        let clam = engines
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["engine"] == "clamav")
            .unwrap_or_else(|| panic!("{name}: clamav did not run: {engines}"));
        match sig {
            None => assert_eq!(clam["clean"], true, "{name}"),
            Some(s) => {
                assert_eq!(clam["clean"], false, "{name}");
                assert!(clam["signature"].as_str().unwrap().starts_with(s), "{clam}");
            }
        }
        assert!(
            versions["clamav"].as_str().unwrap().starts_with("ClamAV "),
            "{versions}"
        );
    }
    Ok(())
}
