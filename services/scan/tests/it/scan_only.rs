//! The scan-only API over gRPC (the gateway's calls): upload, submit, poll; the object is gone
//! after the verdict; metadata is bounded; another org sees nothing; callers are allow-listed.

use std::time::Duration;

use coffer_proto::v1::{self as pb};
use coffer_scan::testing::{ScanStack, TestUser};
use tonic::Code;

use crate::harness::{eicar, put, scan_db, scan_state, verdict_name};

async fn wait_done(stack: &ScanStack, user: &TestUser, id: &str) -> anyhow::Result<pb::ScanStatus> {
    let scan = stack.scan_as("gateway")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = user
            .call(scan.clone().get_scan(pb::ScanRef { scan_id: id.into() }))
            .await?
            .into_inner();
        if scan_state(&s) == "done" {
            return Ok(s);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not done within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A scan-only request of five bytes with `metadata_json`, its bytes put; its id.
async fn put_request(
    stack: &ScanStack,
    user: &TestUser,
    metadata_json: &str,
) -> anyhow::Result<String> {
    let created = user
        .call(
            stack
                .scan_as("gateway")?
                .create_scan(pb::CreateScanRequest {
                    size: 5,
                    metadata_json: metadata_json.into(),
                }),
        )
        .await?
        .into_inner();
    put(&created.upload.unwrap(), b"hello".to_vec()).await?;
    Ok(created.scan_id)
}

/// A request ([`put_request`]) submitted; its id once its verdict is in.
async fn done_request(
    stack: &ScanStack,
    user: &TestUser,
    metadata_json: &str,
) -> anyhow::Result<String> {
    let id = put_request(stack, user, metadata_json).await?;
    user.call(stack.scan_as("gateway")?.submit_scan(pb::ScanRef {
        scan_id: id.clone(),
    }))
    .await?;
    wait_done(stack, user, &id).await?;
    Ok(id)
}

#[tokio::test]
async fn scan_only_round_trip_deletes_the_object_and_keeps_no_name_or_address() -> anyhow::Result<()>
{
    let stack = ScanStack::start(Default::default(), Default::default()).await?;
    let a = stack.user().await?;
    let b = stack.user().await?;
    let scan = stack.scan_as("gateway")?;

    let body = eicar();
    let created = a
        .call(scan.clone().create_scan(pb::CreateScanRequest {
            size: body.len() as u64,
            metadata_json: r#"{"ticket":"T-1","source":"mail-gw"}"#.into(),
        }))
        .await?
        .into_inner();
    let id = created.scan_id.clone();
    let upload = created.upload.unwrap();
    assert_eq!(upload.method, "PUT");
    let expires =
        upload.expires_at.unwrap().seconds - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (880..=900).contains(&expires),
        "upload URL lives 15 minutes, not {expires} s"
    );

    // Submitting before the upload is a conflict, not a queued scan.
    let early = a
        .call(scan.clone().submit_scan(pb::ScanRef {
            scan_id: id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");

    put(&upload, body).await?;
    let queued = a
        .call(scan.clone().submit_scan(pb::ScanRef {
            scan_id: id.clone(),
        }))
        .await?
        .into_inner();
    assert!(
        matches!(scan_state(&queued), "queued" | "done"),
        "{queued:?}"
    );
    let done = wait_done(&stack, &a, &id).await?;
    assert_eq!(verdict_name(done.verdict), "infected");
    assert!(
        done.engines
            .iter()
            .any(|e| e.engine == "yara-x" && e.signature == "eicar_test_file")
    );
    assert_eq!(done.sha256.len(), 64);
    assert!(done.completed_at.is_some());
    let meta: serde_json::Value = serde_json::from_str(&done.metadata_json)?;
    assert_eq!(meta["ticket"], "T-1");

    // The object is gone from the S3 server.
    let key = coffer_scan::scan_key(a.org, id.parse()?);
    let head = stack
        .stack
        .s3
        .client()
        .head_object()
        .bucket(coffer_metadata::testing::BUCKET)
        .key(&key)
        .send()
        .await;
    assert!(head.is_err(), "the scanned object is still stored");

    // Another org: the same answer as for an id that does not exist.
    let fresh = uuid::Uuid::new_v4().to_string();
    for sid in [&id, &fresh] {
        let e = b
            .call(scan.clone().get_scan(pb::ScanRef {
                scan_id: sid.clone(),
            }))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::NotFound, "not found"));
        let e = b
            .call(scan.clone().submit_scan(pb::ScanRef {
                scan_id: sid.clone(),
            }))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::NotFound, "not found"));
    }

    // Metadata: 4 KB is fine, 4 KB + 1 is too large; not JSON is invalid.
    let pad = |n: usize| format!(r#"{{"p":"{}"}}"#, "x".repeat(n - 8));
    assert_eq!(pad(4096).len(), 4096);
    a.call(scan.clone().create_scan(pb::CreateScanRequest {
        size: 1,
        metadata_json: pad(4096),
    }))
    .await?;
    let big = a
        .call(scan.clone().create_scan(pb::CreateScanRequest {
            size: 1,
            metadata_json: pad(4097),
        }))
        .await
        .unwrap_err();
    assert_eq!(big.code(), Code::OutOfRange, "{big:?}");
    for bad in ["not json", "[1,2]", "\"s\""] {
        let e = a
            .call(scan.clone().create_scan(pb::CreateScanRequest {
                size: 1,
                metadata_json: bad.into(),
            }))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}");
    }

    // What is stored has no column for a name or an address, and no row holds either.
    let mut db = scan_db(&stack).await?;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = 'scan' AND table_name IN ('scans', 'results', 'jobs')",
    )
    .fetch_all(&mut db)
    .await?;
    for c in &columns {
        assert!(
            ![
                "name",
                "file_name",
                "filename",
                "client_addr",
                "ip",
                "address",
                "remote_addr"
            ]
            .contains(&c.as_str()),
            "{c}"
        );
    }
    let dump = stack.stack.pg.dump(&stack.setup.database)?;
    assert!(!dump.contains("127.0.0.1"), "a client address is stored");
    Ok(())
}

#[tokio::test]
async fn callers_and_org_keys_are_checked() -> anyhow::Result<()> {
    let stack = ScanStack::start(Default::default(), Default::default()).await?;
    let a = stack.user().await?;
    let file = uuid::Uuid::new_v4();
    let enqueue = |org: uuid::Uuid| pb::EnqueueScanRequest {
        file_id: file.to_string(),
        object_key: format!("{org}/{file}"),
        size: 1,
        content_type: "text/plain".into(),
        extension: "txt".into(),
        ..Default::default()
    };
    // Only metadata queues file scans; only the gateway uses the scan-only API.
    for svc in ["gateway", "auth", "audit", "storage-signer"] {
        let e = a
            .call(stack.scan_as(svc)?.enqueue_scan(enqueue(a.org)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{svc}");
    }
    for svc in ["metadata", "auth", "audit", "storage-signer", "scan"] {
        let c = stack.scan_as(svc)?;
        let scan_ref = || pb::ScanRef {
            scan_id: uuid::Uuid::new_v4().to_string(),
        };
        let codes = [
            a.call(c.clone().create_scan(pb::CreateScanRequest {
                size: 1,
                metadata_json: String::new(),
            }))
            .await
            .unwrap_err()
            .code(),
            a.call(c.clone().submit_scan(scan_ref()))
                .await
                .unwrap_err()
                .code(),
            a.call(c.clone().get_scan(scan_ref()))
                .await
                .unwrap_err()
                .code(),
            a.call(c.clone().set_webhook(pb::SetWebhookRequest {
                url: "https://hooks.example.com/".into(),
            }))
            .await
            .unwrap_err()
            .code(),
            a.call(c.clone().subscribe(pb::SubscribeRequest {}))
                .await
                .unwrap_err()
                .code(),
            a.call(c.clone().get_webhook(pb::GetWebhookRequest {}))
                .await
                .unwrap_err()
                .code(),
            a.call(c.clone().delete_webhook(pb::DeleteWebhookRequest {}))
                .await
                .unwrap_err()
                .code(),
        ];
        assert_eq!(codes, [Code::PermissionDenied; 7], "{svc}");
    }
    // No token: refused.
    let e = stack
        .scan_as("metadata")?
        .enqueue_scan(enqueue(a.org))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // A key of another org is refused before anything is queued.
    let e = a
        .call(
            stack
                .scan_as("metadata")?
                .enqueue_scan(enqueue(uuid::Uuid::new_v4())),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut db = scan_db(&stack).await?;
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&mut db)
        .await?;
    assert_eq!(jobs, 0);
    Ok(())
}

#[tokio::test]
async fn scan_only_results_are_removed_after_their_retention() -> anyhow::Result<()> {
    let config = coffer_scan::ScanConfig {
        retention_interval_secs: 1,
        upload_sweep_interval_secs: 1,
        ..Default::default()
    };
    let stack = ScanStack::start(Default::default(), config).await?;
    let a = stack.user().await?;
    let scan = stack.scan_as("gateway")?;
    let ids = [
        done_request(&stack, &a, "").await?,
        done_request(&stack, &a, "").await?,
    ];
    // The first one is 31 days old (its upload URL long expired: the sweep deletes its object
    // once more, then retention removes its rows).
    let mut db = scan_db(&stack).await?;
    sqlx::query(
        "UPDATE scans SET created_at = now() - interval '31 days',
                          upload_expires_at = now() - interval '31 days'
         WHERE id = $1::uuid",
    )
    .bind(&ids[0])
    .execute(&mut db)
    .await?;
    // Webhook deliveries: one finished long ago goes; one still being retried and a recent one
    // stay.
    for (kind, created, delivered, give_up) in [
        ("old-delivered", "31 days", Some("31 days"), "30 days"),
        ("old-retrying", "31 days", None, "-1 hour"),
        ("recent", "1 day", Some("1 day"), "1 hour"),
    ] {
        sqlx::query(
            "INSERT INTO deliveries (id, org_id, event_type, payload, created_at, delivered_at,
                                     give_up_at)
             VALUES (gen_random_uuid(), $1, 'scan.completed', jsonb_build_object('kind', $2::text),
                     now() - $3::interval, now() - $4::interval, now() - $5::interval)",
        )
        .bind(a.org)
        .bind(kind)
        .bind(created)
        .bind(delivered)
        .bind(give_up)
        .execute(&mut db)
        .await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM scans WHERE id = $1::uuid)
                  + (SELECT count(*) FROM results WHERE subject_id = $1::uuid)
                  + (SELECT count(*) FROM jobs WHERE subject_id = $1::uuid)",
        )
        .bind(&ids[0])
        .fetch_one(&mut db)
        .await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "not removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Retention runs its statements in one transaction: the deliveries went with the request.
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT payload ->> 'kind' FROM deliveries ORDER BY 1")
            .fetch_all(&mut db)
            .await?;
    assert_eq!(kinds, ["old-retrying", "recent"]);
    // The recent one stays, and is still readable.
    let kept = a
        .call(scan.clone().get_scan(pb::ScanRef {
            scan_id: ids[1].clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(verdict_name(kept.verdict), "clean");
    let gone = a
        .call(scan.clone().get_scan(pb::ScanRef {
            scan_id: ids[0].clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    Ok(())
}

#[tokio::test]
async fn only_auths_purge_token_purges_an_orgs_scans() -> anyhow::Result<()> {
    let stack = ScanStack::start(Default::default(), Default::default()).await?;
    let a = stack.user().await?;
    let b = stack.user().await?;
    let scan = stack.scan_as("gateway")?;
    for user in [&a, &b] {
        put_request(&stack, user, "").await?;
    }
    // The gateway may not purge; nor may auth with a user's token.
    let err = a
        .call(scan.clone().purge_org(pb::PurgeOrgRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let as_auth = stack.scan_as("auth")?;
    let err = a
        .call(as_auth.clone().purge_org(pb::PurgeOrgRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Auth's purge token for A: A's objects and rows go, B's stay.
    let token = coffer_token::Minter::new(stack.stack.ring()).mint(
        &coffer_token::Subject {
            user_id: uuid::Uuid::nil(),
            org_id: a.org,
            role: coffer_token::Role::Member,
            scopes: coffer_token::Scopes::NONE,
            credential: coffer_token::Credential::Service,
            request_id: "purge-test".into(),
        },
        &[
            coffer_token::Audience::Scan,
            coffer_token::Audience::StorageSigner,
        ],
        coffer_token::unix_now(),
        60,
    )?;
    let purger = TestUser { org: a.org, token };
    let done = purger
        .call(as_auth.clone().purge_org(pb::PurgeOrgRequest {}))
        .await?
        .into_inner();
    assert!(done.done);
    assert_eq!(done.objects_deleted, 1);
    let mut db = scan_db(&stack).await?;
    let count = |org: uuid::Uuid| {
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT count(*) FROM scans WHERE org_id = $1)
                  + (SELECT count(*) FROM usage WHERE org_id = $1)",
        )
        .bind(org)
    };
    assert_eq!(count(a.org).fetch_one(&mut db).await?, 0);
    assert_eq!(count(b.org).fetch_one(&mut db).await?, 2);
    Ok(())
}

#[tokio::test]
async fn a_deleted_scan_keeps_only_its_audit_row_and_another_org_cannot_delete_it()
-> anyhow::Result<()> {
    let stack = ScanStack::start(Default::default(), Default::default()).await?;
    let a = stack.user().await?;
    let b = stack.user().await?;
    let scan = stack.scan_as("gateway")?;
    let scan_ref = |id: &str| pb::ScanRef {
        scan_id: id.to_owned(),
    };
    let ticket = r#"{"ticket":"T-9"}"#;
    let ids = [
        done_request(&stack, &a, ticket).await?,
        done_request(&stack, &a, ticket).await?,
    ];
    let (gone, kept) = (&ids[0], &ids[1]);
    // A webhook delivery of each result (as the outbox holds them, verdict and hash inside).
    let mut db = scan_db(&stack).await?;
    for id in &ids {
        sqlx::query(
            "INSERT INTO deliveries (id, org_id, event_type, payload, give_up_at)
             VALUES (gen_random_uuid(), $1, 'scan.completed',
                     jsonb_build_object('data', jsonb_build_object('scan_id', $2::text)),
                     now() + interval '1 hour')",
        )
        .bind(a.org)
        .bind(id)
        .execute(&mut db)
        .await?;
    }

    // Another org cannot delete it (nor learn that it exists), and it stays whole.
    let e = b
        .call(scan.clone().delete_scan(scan_ref(gone)))
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::NotFound, "not found"));
    let still = a
        .call(scan.clone().get_scan(scan_ref(gone)))
        .await?
        .into_inner();
    assert_eq!(still.sha256.len(), 64);
    // Only the gateway calls it.
    let e = a
        .call(stack.scan_as("metadata")?.delete_scan(scan_ref(gone)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    a.call(scan.clone().delete_scan(scan_ref(gone))).await?;
    for call in [
        a.call(scan.clone().get_scan(scan_ref(gone))).await.err(),
        a.call(scan.clone().submit_scan(scan_ref(gone))).await.err(),
        a.call(scan.clone().delete_scan(scan_ref(gone))).await.err(),
    ] {
        let e = call.expect("a deleted scan is not found");
        assert_eq!((e.code(), e.message()), (Code::NotFound, "not found"));
    }
    let row: (Option<serde_json::Value>, bool) =
        sqlx::query_as("SELECT metadata, deleted_at IS NOT NULL FROM scans WHERE id = $1::uuid")
            .bind(gone)
            .fetch_one(&mut db)
            .await?;
    assert_eq!(row, (None, true), "the metadata is gone, the row marked");
    let left =
        |table: &'static str| format!("SELECT count(*) FROM {table} WHERE subject_id = $1::uuid");
    for q in [
        left("results"),
        left("jobs"),
        "SELECT count(*) FROM deliveries WHERE payload -> 'data' ->> 'scan_id' = $1".into(),
    ] {
        for (id, want) in [(gone, 0), (kept, 1)] {
            let n: i64 = sqlx::query_scalar(&q).bind(id).fetch_one(&mut db).await?;
            assert_eq!(
                n,
                want,
                "{q} for {}",
                if want == 0 {
                    "the deleted scan"
                } else {
                    "the kept one"
                }
            );
        }
    }
    let kept_scan = a
        .call(scan.clone().get_scan(scan_ref(kept)))
        .await?
        .into_inner();
    assert_eq!(kept_scan.metadata_json, r#"{"ticket":"T-9"}"#);

    // The audit keeps that it happened, as the caller.
    let mut adb: sqlx::PgConnection =
        sqlx::Connection::connect(&stack.stack.pg.superuser_url(&stack.stack.audit().database))
            .await?;
    let deleted: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT org_id, actor FROM audit.events WHERE action = 'scan.delete' AND target = $1",
    )
    .bind(format!("scan:{gone}"))
    .fetch_all(&mut adb)
    .await?;
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0].0, a.org);
    assert!(deleted[0].1.starts_with("user:"), "{deleted:?}");
    Ok(())
}

/// A scan-only request with its bytes put and its job queued (the stack runs no worker).
async fn queued_request(stack: &ScanStack, user: &TestUser) -> anyhow::Result<pb::ScanRef> {
    let scan_ref = pb::ScanRef {
        scan_id: put_request(stack, user, "").await?,
    };
    user.call(stack.scan_as("gateway")?.submit_scan(scan_ref.clone()))
        .await?;
    Ok(scan_ref)
}

/// A worker whose lease was taken back (reaped, or claimed by another) records no result, so a
/// result cannot come back after the request was deleted meanwhile; and a request whose scan is
/// running is not deleted (a conflict: delete it once it is done).
#[tokio::test]
async fn a_lost_lease_records_nothing_and_a_running_scan_is_not_deleted() -> anyhow::Result<()> {
    let stack = ScanStack::start(
        Default::default(),
        coffer_scan::ScanConfig {
            workers: 0,
            ..Default::default()
        },
    )
    .await?;
    let a = stack.user().await?;
    let scan = stack.scan_as("gateway")?;
    let scan_ref = queued_request(&stack, &a).await?;
    let options: sqlx::postgres::PgConnectOptions = stack
        .stack
        .pg
        .superuser_url(&stack.setup.database)
        .parse()?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.options([("search_path", "scan")]))
        .await?;
    let (owner, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let job = coffer_scan::store::claim(&mut *pool.acquire().await?, owner, 60)
        .await?
        .expect("the request's queued job");

    let e = a
        .call(scan.clone().delete_scan(scan_ref.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    let report = coffer_scan::store::failed_report(coffer_scan::scanner::Versions {
        ruleset: "test".into(),
        yara_x: "test".into(),
        clamav: None,
        nsfw: None,
    });
    let record = |owner: uuid::Uuid| {
        let (pool, job, report) = (&pool, &job, &report);
        async move {
            let mut tx = coffer_db::tenant_tx(pool, a.org).await?;
            let r = coffer_scan::store::record_result(&mut tx, job, owner, report).await?;
            tx.commit().await?;
            anyhow::Ok(r.is_some())
        }
    };
    assert!(!record(other).await?, "a worker that does not hold the job");
    assert!(record(owner).await?, "the worker that holds it");
    // The reaper takes the lease back; the request is deleted; the old worker then finishes.
    sqlx::query(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE id = $1",
    )
    .bind(job.id)
    .execute(&pool)
    .await?;
    a.call(scan.clone().delete_scan(scan_ref.clone())).await?;
    assert!(!record(owner).await?, "a worker whose lease was reaped");
    let results: i64 =
        sqlx::query_scalar("SELECT count(*) FROM results WHERE subject_id = $1::uuid")
            .bind(&scan_ref.scan_id)
            .fetch_one(&pool)
            .await?;
    assert_eq!(results, 0, "a deleted request's result came back");
    Ok(())
}

/// A request deleted before its URL's window closed keeps its row (marked, without metadata)
/// until the upload sweep has deleted whatever the URL wrote.
#[tokio::test]
async fn a_deleted_requests_object_is_still_swept() -> anyhow::Result<()> {
    let stack = ScanStack::start(
        Default::default(),
        coffer_scan::ScanConfig {
            upload_sweep_interval_secs: 1,
            ..Default::default()
        },
    )
    .await?;
    let a = stack.user().await?;
    let scan = stack.scan_as("gateway")?;
    let id = put_request(&stack, &a, r#"{"ticket":"T-3"}"#).await?;
    a.call(scan.clone().delete_scan(pb::ScanRef {
        scan_id: id.clone(),
    }))
    .await?;
    let key = coffer_scan::scan_key(a.org, id.parse()?);
    let stored = || {
        stack
            .stack
            .s3
            .client()
            .head_object()
            .bucket(coffer_metadata::testing::BUCKET)
            .key(&key)
            .send()
    };
    assert!(stored().await.is_ok(), "the URL's window is still open");
    let mut db = scan_db(&stack).await?;
    sqlx::query(
        "UPDATE scans SET upload_expires_at = now() - interval '1 hour' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&mut db)
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let swept: bool =
            sqlx::query_scalar("SELECT object_swept_at IS NOT NULL FROM scans WHERE id = $1::uuid")
                .bind(&id)
                .fetch_one(&mut db)
                .await?;
        if swept {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not swept within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stored().await.is_err(),
        "a deleted request's object is still stored"
    );
    Ok(())
}
