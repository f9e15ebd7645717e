//! The queue: a worker killed with SIGKILL mid-scan loses its job to another after the lease,
//! and the job ends with exactly one verdict; failed tries are retried, then `failed`.

use std::time::Duration;

use coffer_scan::ScanConfig;
use coffer_scan::testing::ScanStack;

use crate::harness::{job_done, scan_db, status_name, upload, verdict, verdict_name, worker};

/// A clamd that accepts connections and never answers: a scan waits on it until killed.
async fn silent_clamd() -> anyhow::Result<(String, tokio::sync::mpsc::Receiver<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = format!("tcp://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
            let _ = tx.send(()).await;
        }
    });
    Ok((addr, rx))
}

/// A stack whose in-process scan service runs no workers: tests start worker processes.
async fn api_only() -> anyhow::Result<ScanStack> {
    ScanStack::start(
        Default::default(),
        ScanConfig {
            workers: 0,
            ..ScanConfig::default()
        },
    )
    .await
}

#[tokio::test]
async fn a_killed_worker_job_is_reclaimed_after_its_lease_with_one_verdict() -> anyhow::Result<()> {
    // The in-process service scans nothing: it serves the API and reaps expired leases.
    let api_only = ScanConfig {
        workers: 0,
        reaper_interval_secs: 1,
        ..ScanConfig::default()
    };
    let stack = ScanStack::start(Default::default(), api_only).await?;
    let user = stack.user().await?;
    let id = upload(&stack, &user, "ledger.csv", "text/csv", b"a,b\n1,2\n").await?;

    // Worker process A claims the job and hangs in clamd.
    let (clamd, mut connected) = silent_clamd().await?;
    let hanging = ScanConfig {
        workers: 1,
        lease_secs: 3,
        poll_interval_ms: 100,
        clamd: Some(clamd),
        clamd_timeout_secs: 600,
        ..ScanConfig::default()
    };
    let mut a = worker(&stack, "scan-a", &hanging)?;
    let mut db = scan_db(&stack).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (state, attempts): (String, i32) =
            sqlx::query_as("SELECT state, attempts FROM jobs WHERE subject_id = $1::uuid")
                .bind(&id)
                .fetch_one(&mut db)
                .await?;
        if state == "running" {
            assert_eq!(attempts, 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker A never claimed the job"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It is inside the scan, waiting on clamd (its start-up probe connected too).
    tokio::time::timeout(Duration::from_secs(30), connected.recv())
        .await?
        .expect("worker A reached clamd");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The in-process service, which reads the shared queue every reaper interval (1 s here),
    // reports the running job.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while coffer_telemetry::metrics()
        .sample("coffer_scan_jobs{state=\"running\"}")
        .unwrap_or(0.0)
        < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue metrics never showed the running job"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGKILL: no clean-up, no release of the lease.
    a.start_kill()?;
    a.wait().await?;

    // Worker process B (no clamd) picks it up once the lease has expired and the reaper ran.
    let normal = ScanConfig {
        workers: 1,
        lease_secs: 3,
        poll_interval_ms: 100,
        ..ScanConfig::default()
    };
    let mut b = worker(&stack, "scan-b", &normal)?;
    let f = verdict(&stack, &user, &id).await?;
    assert_eq!(
        (status_name(&f), verdict_name(f.verdict)),
        ("available", "clean")
    );
    let (attempts, last_error) = job_done(&mut db, &id).await?;
    assert_eq!(attempts, 2, "{last_error:?}");
    let results: i64 =
        sqlx::query_scalar("SELECT count(*) FROM results WHERE subject_id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut db)
            .await?;
    assert_eq!(results, 1);
    let mut adb: sqlx::PgConnection =
        sqlx::Connection::connect(&stack.stack.pg.superuser_url(&stack.stack.audit().database))
            .await?;
    let verdicts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit.events WHERE target = $1 AND action = 'file.scanned'",
    )
    .bind(format!("file:{id}"))
    .fetch_one(&mut adb)
    .await?;
    assert_eq!(verdicts, 1, "one verdict, audited once");
    // The reaper's taking back of A's lease was counted.
    let reaped = coffer_telemetry::metrics().sample("coffer_scan_leases_reaped_total");
    assert!(reaped.is_some_and(|n| n >= 1.0), "{reaped:?}");
    b.start_kill()?;
    Ok(())
}

/// A "clamd" that takes every connection and hangs up on it: an engine that fails on every
/// file it is given (as clamd does when a file crashes it).
fn clamd_that_hangs_up() -> anyhow::Result<std::net::SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    std::thread::spawn(move || {
        for conn in l.incoming() {
            drop(conn);
        }
    });
    Ok(addr)
}

#[tokio::test]
async fn failing_tries_back_off_and_the_last_one_is_a_failed_verdict() -> anyhow::Result<()> {
    // clamd fails on every file: each try fails, and counts.
    let broken = clamd_that_hangs_up()?;
    let config = ScanConfig {
        clamd: Some(format!("tcp://{broken}")),
        max_attempts: 3,
        backoff_base_secs: 1,
        poll_interval_ms: 100,
        ..ScanConfig::default()
    };
    let stack = ScanStack::start(Default::default(), config).await?;
    let user = stack.user().await?;
    let started = std::time::Instant::now();
    let id = upload(&stack, &user, "notes.txt", "text/plain", b"hello").await?;
    let f = verdict(&stack, &user, &id).await?;
    assert_eq!(
        (status_name(&f), verdict_name(f.verdict)),
        ("quarantined", "failed")
    );
    // Backoff between the tries: 1 s, then 2 s.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let mut db = scan_db(&stack).await?;
    let (attempts, last_error) = job_done(&mut db, &id).await?;
    assert_eq!(attempts, 3);
    assert!(
        last_error.is_none(),
        "done jobs keep no error: {last_error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_clamd_makes_files_wait_not_fail() -> anyhow::Result<()> {
    let mut clamd = coffer_testkit::Clamd::start(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/clamav"
    )))
    .await?;
    let config = ScanConfig {
        clamd: Some(clamd.address()),
        max_attempts: 2,
        backoff_base_secs: 1,
        poll_interval_ms: 100,
        ..ScanConfig::default()
    };
    let stack = ScanStack::start(Default::default(), config).await?;
    let user = stack.user().await?;
    clamd.kill().await?;
    let id = upload(&stack, &user, "payroll.txt", "text/plain", b"hello").await?;
    // More tries than max_attempts fail on the unreachable clamd (1 s, 2 s, 4 s apart): each
    // gives its attempt back, so the file waits, `scanning`, instead of ending `failed`.
    let mut db = scan_db(&stack).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (state, attempts, waits): (String, i32, i32) =
            sqlx::query_as("SELECT state, attempts, waits FROM jobs WHERE subject_id = $1::uuid")
                .bind(&id)
                .fetch_one(&mut db)
                .await?;
        assert_ne!(state, "done", "the job ended while clamd was away");
        if waits >= 3 && state == "queued" {
            assert_eq!(attempts, 0, "a wait spent a try");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "waits: {waits}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tries = coffer_telemetry::metrics().sample("coffer_scan_job_tries_total{outcome=\"wait\"}");
    assert!(tries.is_some_and(|n| n >= 3.0), "{tries:?}");
    // clamd is back: the next try scans the file, clean.
    clamd.start_again().await?;
    let f = verdict(&stack, &user, &id).await?;
    assert_eq!(
        (status_name(&f), verdict_name(f.verdict)),
        ("available", "clean")
    );
    assert_eq!(job_done(&mut db, &id).await?.0, 1);
    Ok(())
}

#[tokio::test]
async fn a_job_that_waits_past_max_wait_secs_ends_failed() -> anyhow::Result<()> {
    // clamd on a port nobody listens on, for good.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let config = ScanConfig {
        clamd: Some(format!("tcp://{closed}")),
        max_wait_secs: 2,
        backoff_base_secs: 1,
        poll_interval_ms: 100,
        ..ScanConfig::default()
    };
    let stack = ScanStack::start(Default::default(), config).await?;
    let user = stack.user().await?;
    let started = std::time::Instant::now();
    let id = upload(&stack, &user, "notes.txt", "text/plain", b"hello").await?;
    let f = verdict(&stack, &user, &id).await?;
    assert_eq!(
        (status_name(&f), verdict_name(f.verdict)),
        ("quarantined", "failed")
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    let mut db = scan_db(&stack).await?;
    job_done(&mut db, &id).await?;
    let waits: i32 = sqlx::query_scalar("SELECT waits FROM jobs WHERE subject_id = $1::uuid")
        .bind(&id)
        .fetch_one(&mut db)
        .await?;
    assert!(waits >= 1, "{waits}");
    Ok(())
}

#[tokio::test]
async fn a_new_ruleset_rescans_older_results_and_metadata_follows() -> anyhow::Result<()> {
    let stack = api_only().await?;
    let user = stack.user().await?;
    let dir = stack.stack.dir.path();
    let fast = ScanConfig {
        workers: 1,
        poll_interval_ms: 100,
        ..ScanConfig::default()
    };
    // Scanned clean under the shipped rules.
    let mut first = worker(&stack, "scan-1", &fast)?;
    let id = upload(
        &stack,
        &user,
        "memo.txt",
        "text/plain",
        b"quarterly zqxcanary memo",
    )
    .await?;
    let f = verdict(&stack, &user, &id).await?;
    assert_eq!(verdict_name(f.verdict), "clean");
    // Stop it only once its job is done (the verdict reaches metadata just before).
    let mut db = scan_db(&stack).await?;
    job_done(&mut db, &id).await?;
    first.start_kill()?;
    first.wait().await?;
    let old: String =
        sqlx::query_scalar("SELECT ruleset_version FROM results WHERE subject_id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut db)
            .await?;

    // A local rule that matches it: the ruleset version changes, the file is re-queued, re-scanned
    // and quarantined.
    let rules = dir.join("local-rules");
    std::fs::create_dir_all(&rules)?;
    std::fs::write(
        rules.join("canary.yar"),
        "rule canary { meta: verdict = \"suspicious\" strings: $a = \"zqxcanary\" condition: $a }",
    )?;
    let with_rule = ScanConfig {
        rules_dir: Some(rules),
        ..fast.clone()
    };
    let mut second = worker(&stack, "scan-2", &with_rule)?;
    let md = stack.stack.metadata_as("gateway")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let f = user
            .call(md.clone().get_file(coffer_proto::v1::FileRef {
                file_id: id.clone(),
            }))
            .await?
            .into_inner();
        if status_name(&f) == "quarantined" {
            assert_eq!(verdict_name(f.verdict), "suspicious");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not re-scanned within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (new, engines): (String, serde_json::Value) =
        sqlx::query_as("SELECT ruleset_version, engines FROM results WHERE subject_id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut db)
            .await?;
    assert_ne!(new, old);
    assert!(engines.to_string().contains("canary"), "{engines}");
    second.start_kill()?;
    Ok(())
}

#[tokio::test]
async fn a_purged_file_is_not_retried_and_a_lost_object_fails_at_once() -> anyhow::Result<()> {
    let stack = api_only().await?;
    let user = stack.user().await?;
    // Both queued while no worker runs: one file purged, the other's object deleted behind
    // metadata's back.
    let purged = upload(&stack, &user, "draft.txt", "text/plain", b"draft").await?;
    let lost = upload(&stack, &user, "lost.txt", "text/plain", b"lost").await?;
    let md = stack.stack.metadata_as("gateway")?;
    user.call(md.clone().purge_file(coffer_proto::v1::FileRef {
        file_id: purged.clone(),
    }))
    .await?;
    let mut db = scan_db(&stack).await?;
    let key: String = sqlx::query_scalar("SELECT object_key FROM jobs WHERE subject_id = $1::uuid")
        .bind(&lost)
        .fetch_one(&mut db)
        .await?;
    user.call(
        stack
            .stack
            .signer_as("metadata")?
            .delete_object(coffer_proto::v1::ObjectRef { key }),
    )
    .await?;

    // Retries would be 1 s, 2 s, 4 s apart: a single try each shows there were none.
    let config = ScanConfig {
        workers: 1,
        poll_interval_ms: 100,
        max_attempts: 3,
        backoff_base_secs: 1,
        ..ScanConfig::default()
    };
    let mut worker = worker(&stack, "scan-w", &config)?;
    let f = verdict(&stack, &user, &lost).await?;
    assert_eq!(
        (status_name(&f), verdict_name(f.verdict)),
        ("quarantined", "failed")
    );
    assert_eq!(job_done(&mut db, &lost).await?.0, 1);
    assert_eq!(job_done(&mut db, &purged).await?.0, 1);

    // The purged file left no result, and neither a verdict nor a scan in the audit log.
    let results: i64 =
        sqlx::query_scalar("SELECT count(*) FROM results WHERE subject_id = $1::uuid")
            .bind(&purged)
            .fetch_one(&mut db)
            .await?;
    assert_eq!(results, 0);
    let mut adb: sqlx::PgConnection =
        sqlx::Connection::connect(&stack.stack.pg.superuser_url(&stack.stack.audit().database))
            .await?;
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit.events WHERE target = $1 ORDER BY seq")
            .bind(format!("file:{purged}"))
            .fetch_all(&mut adb)
            .await?;
    assert_eq!(actions, ["file.upload", "file.purge"]);
    worker.start_kill()?;
    Ok(())
}

#[tokio::test]
async fn a_rule_that_does_not_compile_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yar"),
        "rule fine { meta: verdict = \"suspicious\" strings: $a = \"x\" condition: $a }\n\
         rule broken_lookup { meta: verdict = \"suspicious\" condition: $nope }\n",
    )
    .unwrap();
    let err = coffer_scan::engines(&ScanConfig {
        rules_dir: Some(dir.path().to_owned()),
        ..ScanConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("broken_lookup"), "{err}");
}

#[tokio::test]
async fn the_scan_schema_passes_the_rls_audit() -> anyhow::Result<()> {
    // Every table with org_id forced under a policy; nothing owned by the runtime role; no
    // schema right for PUBLIC; no SECURITY DEFINER function open to all or with a loose path.
    let stack = api_only().await?;
    let su = sqlx::PgPool::connect(&stack.stack.pg.superuser_url(&stack.setup.database)).await?;
    let violations = coffer_db::rls_audit(&su, "scan", "scan_runtime").await?;
    assert!(violations.is_empty(), "{violations:#?}");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'scan' AND c.relkind = 'r' AND c.relforcerowsecurity",
    )
    .fetch_one(&su)
    .await?;
    assert!(tables > 0, "the audit looked at an empty schema");
    su.close().await;
    Ok(())
}
