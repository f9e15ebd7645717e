//! The audit service over real mTLS against a real Postgres cluster: the chain, the export and
//! its offline verification, append-only storage, isolation, concurrency.

use std::sync::Arc;

use coffer_audit::testing::{OWNER_PASSWORD, RUNTIME_PASSWORD, SIGNING_SEED, TestAudit};
use coffer_auditlog::Signer;
use coffer_mesh::{CallContext, CertStore, MeshChannel, MeshClient};
use coffer_proto::v1::audit_client::AuditClient;
use coffer_proto::v1::{self as pb};
use coffer_testkit::{DevCa, Postgres};
use coffer_token::{Audience, MasterKeyRing, Minter, Role, Scope, Scopes, Subject};
use sqlx::Connection as _;
use tonic::Code;
use uuid::Uuid;

struct Fixture {
    dir: tempfile::TempDir,
    ca: DevCa,
    ring: MasterKeyRing,
    pg: &'static Postgres,
    audit: TestAudit,
}

impl Fixture {
    async fn start(checkpoint_every: u64) -> anyhow::Result<Self> {
        Self::start_with(coffer_audit::AuditConfig {
            checkpoint_every,
            ..Default::default()
        })
        .await
    }

    async fn start_with(config: coffer_audit::AuditConfig) -> anyhow::Result<Self> {
        coffer_telemetry::init_for_tests();
        let pg = Postgres::shared().await?;
        let dir = tempfile::tempdir()?;
        let ca = DevCa::new("audit test CA")?;
        let ring = MasterKeyRing::generate("k1");
        let audit = coffer_audit::testing::start(pg, &ca, dir.path(), &ring, config).await?;
        Ok(Fixture {
            dir,
            ca,
            ring,
            pg,
            audit,
        })
    }

    fn client(&self, service: &str) -> anyhow::Result<AuditClient<MeshChannel>> {
        let dir = self
            .ca
            .write_service_dir(&self.dir.path().join(format!("as-{service}")), service)?;
        let client = MeshClient::new(CertStore::load(coffer_mesh::TlsFiles::in_dir(&dir))?)?;
        Ok(AuditClient::new(
            client.channel("audit", &self.audit.server.addr().to_string())?,
        ))
    }

    fn token(&self, org: Uuid, role: Role, scopes: Scopes) -> String {
        Minter::new(&self.ring)
            .mint(
                &Subject {
                    user_id: Uuid::new_v4(),
                    org_id: org,
                    role,
                    scopes,
                    credential: coffer_token::Credential::Session,
                    request_id: "req-audit".into(),
                },
                &[Audience::Audit],
                coffer_token::unix_now(),
                60,
            )
            .unwrap()
    }

    fn url(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{}?options=-csearch_path%3Daudit",
            self.pg.port(),
            self.audit.database
        )
    }
}

async fn as_user<F: Future>(token: &str, f: F) -> F::Output {
    CallContext {
        token: Some(Arc::from(token)),
        request_id: "req-audit".into(),
        deadline: None,
    }
    .scope(f)
    .await
}

/// Appends `n` events of `action` (each on a new file) as `token`'s caller, one after another.
async fn append_n(
    writer: &mut AuditClient<MeshChannel>,
    token: &str,
    action: &str,
    n: usize,
) -> anyhow::Result<()> {
    for _ in 0..n {
        as_user(
            token,
            writer.append(append(action, format!("file:{}", Uuid::new_v4()))),
        )
        .await?;
    }
    Ok(())
}

fn append(action: &str, target: String) -> pb::AppendRequest {
    pb::AppendRequest {
        action: action.into(),
        target,
        outcome: coffer_proto::v1::Outcome::Success as i32,
        org_id: String::new(),
    }
}

async fn export_of(client: &mut AuditClient<MeshChannel>, token: &str) -> anyhow::Result<String> {
    let mut stream = as_user(token, client.export(pb::ExportRequest {}))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await? {
        out.extend(chunk.ndjson);
    }
    Ok(String::from_utf8(out)?)
}

fn public_key() -> [u8; 32] {
    Signer::from_text("audit-1", SIGNING_SEED)
        .unwrap()
        .public_key()
}

#[tokio::test]
async fn appends_chain_list_verify_and_export_verifies_offline() -> anyhow::Result<()> {
    let f = Fixture::start(10).await?;
    let org = Uuid::new_v4();
    let user = f.token(org, Role::Member, Scopes::all());
    let admin = f.token(org, Role::Admin, Scopes::all());
    let mut writer = f.client("metadata")?;
    for i in 0..25u32 {
        let action = if i % 2 == 0 {
            "file.upload"
        } else {
            "file.download"
        };
        let res = as_user(
            &user,
            writer.append(append(action, format!("file:{}", Uuid::new_v4()))),
        )
        .await?
        .into_inner();
        assert_eq!(res.seq, u64::from(i) + 1);
        assert_eq!(res.hash.len(), 64);
    }
    // A system event: the scan service, no user token, naming the org.
    let res = f
        .client("scan")?
        .append(pb::AppendRequest {
            org_id: org.to_string(),
            ..append("file.scanned", format!("file:{}", Uuid::new_v4()))
        })
        .await?
        .into_inner();
    assert_eq!(res.seq, 26);

    let mut reader = f.client("gateway")?;
    // Newest first, in pages.
    let mut seqs = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = as_user(
            &admin,
            reader.list(pb::ListRequest {
                page: Some(pb::PageRequest {
                    cursor: cursor.clone(),
                    limit: 7,
                }),
                ..Default::default()
            }),
        )
        .await?
        .into_inner();
        seqs.extend(page.items.iter().map(|e| e.seq));
        cursor = page.page.unwrap_or_default().next_cursor;
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(seqs, (1..=26).rev().collect::<Vec<u64>>());
    let downloads = as_user(
        &admin,
        reader.list(pb::ListRequest {
            action: "file.download".into(),
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    assert_eq!(downloads.items.len(), 12);
    let newest = as_user(&admin, reader.list(pb::ListRequest::default()))
        .await?
        .into_inner()
        .items
        .remove(0);
    assert_eq!(newest.actor, "service:scan");

    let verified = as_user(&admin, reader.verify(pb::VerifyRequest {}))
        .await?
        .into_inner();
    assert!(verified.ok);
    assert_eq!(verified.count, 26);
    assert_eq!(verified.head_hash, newest.hash);

    // The export verifies offline with the published key, and every tampering is caught.
    let published = as_user(&admin, reader.public_key(pb::PublicKeyRequest {}))
        .await?
        .into_inner();
    let key = coffer_auditlog::public_key_from_text(&published.public_key).unwrap();
    assert_eq!(key, public_key());
    let export = export_of(&mut reader, &admin).await?;
    let summary = coffer_auditlog::verify_export(&export, &key)?;
    assert_eq!((summary.events, summary.checkpoints), (26, 2));
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(26);
    let mut tampered = 0;
    while tampered < 1000 {
        if let Some((bad, kind)) = coffer_auditlog::tamper::tamper(&export, &mut rng) {
            tampered += 1;
            assert!(
                coffer_auditlog::verify_export(&bad, &key).is_err(),
                "not detected: {kind}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_log_is_append_only_for_the_runtime_role_and_the_owner() -> anyhow::Result<()> {
    // A checkpoint per event, so both tables have a row for the row triggers to refuse.
    let f = Fixture::start(1).await?;
    let org = Uuid::new_v4();
    let user = f.token(org, Role::Member, Scopes::all());
    as_user(
        &user,
        f.client("metadata")?
            .append(append("file.purge", format!("file:{}", Uuid::new_v4()))),
    )
    .await?;
    for (role, password) in [
        ("audit_runtime", RUNTIME_PASSWORD),
        ("audit_owner", OWNER_PASSWORD),
    ] {
        let mut conn = sqlx::PgConnection::connect(&f.url(role, password)).await?;
        for sql in [
            "UPDATE events SET outcome = 'failure'",
            "DELETE FROM events",
            "TRUNCATE events",
            "UPDATE checkpoints SET key_id = 'x'",
            "DELETE FROM checkpoints",
            "TRUNCATE checkpoints",
        ] {
            let mut tx = conn.begin().await?;
            sqlx::query("SELECT set_config('coffer.org_id', $1, true)")
                .bind(org.to_string())
                .execute(&mut *tx)
                .await?;
            let res = sqlx::query(sql).execute(&mut *tx).await;
            assert!(res.is_err(), "{role}: {sql} went through");
            tx.rollback().await?;
        }
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT set_config('coffer.org_id', $1, true)")
            .bind(org.to_string())
            .execute(&mut *tx)
            .await?;
        let (n, c): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM checkpoints)",
        )
        .fetch_one(&mut *tx)
        .await?;
        assert_eq!((n, c), (1, 1), "{role}");
        tx.rollback().await?;
    }
    // The runtime role's grants are SELECT and INSERT only, and the tables are forced RLS.
    let su = sqlx::PgPool::connect(&f.pg.superuser_url(&f.audit.database)).await?;
    let violations = coffer_db::rls_audit(&su, "audit", "audit_runtime").await?;
    assert!(violations.is_empty(), "{violations:?}");
    let grants: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT privilege_type::text FROM information_schema.role_table_grants
         WHERE grantee = 'audit_runtime' AND table_schema = 'audit' ORDER BY 1",
    )
    .fetch_all(&su)
    .await?;
    let grants: Vec<_> = grants.into_iter().map(|(g,)| g).collect();
    assert_eq!(grants, ["INSERT", "SELECT"]);
    Ok(())
}

#[tokio::test]
async fn orgs_roles_scopes_and_callers_are_checked() -> anyhow::Result<()> {
    let f = Fixture::start(1000).await?;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut writer = f.client("metadata")?;
    for _ in 0..3 {
        as_user(
            &f.token(a, Role::Member, Scopes::all()),
            writer.append(append("file.download", format!("file:{}", Uuid::new_v4()))),
        )
        .await?;
    }
    let mut reader = f.client("gateway")?;
    // B's admin sees nothing of A's, in every read.
    let b_admin = f.token(b, Role::Owner, Scopes::all());
    let listed = as_user(&b_admin, reader.list(pb::ListRequest::default()))
        .await?
        .into_inner();
    assert!(listed.items.is_empty());
    let verified = as_user(&b_admin, reader.verify(pb::VerifyRequest {}))
        .await?
        .into_inner();
    assert_eq!((verified.ok, verified.count), (true, 0));
    let export = export_of(&mut reader, &b_admin).await?;
    let summary = coffer_auditlog::verify_export(&export, &public_key())?;
    assert_eq!((summary.org_id, summary.events), (b, 0));
    // B cannot write into A's chain by naming it.
    let err = as_user(
        &f.token(b, Role::Owner, Scopes::all()),
        writer.append(pb::AppendRequest {
            org_id: a.to_string(),
            ..append("file.upload", String::new())
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Members, and API keys without audit:read, may not read.
    for token in [
        f.token(a, Role::Member, Scopes::all()),
        f.token(a, Role::Admin, Scopes::NONE.with(Scope::FilesRead)),
    ] {
        let err = as_user(&token, reader.list(pb::ListRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    // Only the gateway reads; unknown identities do not write.
    let err = as_user(
        &f.token(a, Role::Admin, Scopes::all()),
        f.client("metadata")?.list(pb::ListRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = f
        .client("coffer-dev")?
        .append(pb::AppendRequest {
            org_id: a.to_string(),
            ..append("file.upload", String::new())
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // The gateway and storage-signer never write the log, with a user's token or without one.
    for service in ["gateway", "storage-signer"] {
        let mut client = f.client(service)?;
        let with_token = as_user(
            &f.token(a, Role::Owner, Scopes::all()),
            client.append(append("file.upload", String::new())),
        )
        .await
        .unwrap_err();
        let system = client
            .append(pb::AppendRequest {
                org_id: a.to_string(),
                ..append("file.scanned", String::new())
            })
            .await
            .unwrap_err();
        for err in [with_token, system] {
            assert_eq!(err.code(), Code::PermissionDenied, "{service}");
        }
    }
    // Names never get in: targets are ids.
    let err = as_user(
        &f.token(a, Role::Member, Scopes::all()),
        writer.append(append("file.upload", "file:Gehälter März.xlsx".into())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A system event without an org is refused.
    let err = f
        .client("scan")?
        .append(append("file.scanned", String::new()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    Ok(())
}

#[tokio::test]
async fn concurrent_writers_leave_every_chain_whole() -> anyhow::Result<()> {
    let f = Fixture::start(50).await?;
    let before = audit_metrics();
    let shared = Uuid::new_v4();
    let others: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut tasks = Vec::new();
    for org in std::iter::repeat_n(shared, 8).chain(others.iter().copied()) {
        let token = f.token(org, Role::Member, Scopes::all());
        let mut writer = f.client("metadata")?;
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while std::time::Instant::now() < deadline {
                as_user(
                    &token,
                    writer.append(append("file.download", format!("file:{}", Uuid::new_v4()))),
                )
                .await
                .expect("append");
                n += 1;
            }
            (org, n)
        }));
    }
    let (mut appended, mut signed) = (0u64, 0u64);
    let mut counts = std::collections::HashMap::<Uuid, u64>::new();
    for t in tasks {
        let (org, n) = t.await?;
        *counts.entry(org).or_default() += n;
    }
    let mut reader = f.client("gateway")?;
    for (org, n) in counts {
        let admin = f.token(org, Role::Admin, Scopes::all());
        let v = as_user(&admin, reader.verify(pb::VerifyRequest {}))
            .await?
            .into_inner();
        assert!(v.ok, "{org}");
        assert_eq!(v.count, n, "{org}: a gap or a lost append");
        let export = export_of(&mut reader, &admin).await?;
        let s = coffer_auditlog::verify_export(&export, &public_key())?;
        assert_eq!(s.events, n);
        assert_eq!(s.checkpoints, n / 50);
        appended += n;
        signed += n / 50;
    }
    // The metrics saw it: every event counted once as appended and once in a batch, the
    // checkpoints counted, the newest one's time set (other tests of this process may add to
    // the counters when they share it, hence at least).
    let after = audit_metrics();
    let delta = |name: &str| after[name] - before.get(name).copied().unwrap_or(0.0);
    assert!(delta("coffer_audit_appends_total{outcome=\"ok\"}") >= appended as f64);
    assert!(delta("coffer_audit_append_batch_size_sum") >= appended as f64);
    assert!(delta("coffer_audit_append_duration_seconds_count") >= appended as f64);
    assert!(delta("coffer_audit_checkpoints_total") >= signed as f64);
    assert!(after["coffer_audit_newest_checkpoint_timestamp_seconds"] > 1.7e9);
    assert!(
        after["coffer_audit_append_batch_size_count"] < after["coffer_audit_append_batch_size_sum"],
        "group commit put several events in some transaction"
    );
    Ok(())
}

/// Two appenders of one chain, as two audit replicas are: each appends after the head it last
/// wrote without the lock while that head is still the head, so each must find out when the
/// other went first (the seq taken) and append again under the lock. The chain stays whole and
/// every checkpoint verifies.
#[tokio::test]
async fn a_second_appender_on_the_same_chain_leaves_it_whole() -> anyhow::Result<()> {
    let f = Fixture::start(50).await?;
    let org = Uuid::new_v4();
    let other = coffer_audit::floor::Appender::new(
        sqlx::PgPool::connect(&f.url("audit_runtime", RUNTIME_PASSWORD)).await?,
        Arc::new(Signer::from_text("audit-1", SIGNING_SEED)?),
        50,
        std::time::Duration::from_secs(3600),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let token = f.token(org, Role::Member, Scopes::all());
        let mut writer = f.client("metadata")?;
        let other = other.clone();
        tasks.spawn(async move {
            let mut n = 0u64;
            while std::time::Instant::now() < deadline {
                let target = format!("file:{}", Uuid::new_v4());
                if i % 2 == 0 {
                    as_user(&token, writer.append(append("file.download", target)))
                        .await
                        .expect("append through the service");
                } else {
                    other
                        .append(coffer_audit::floor::NewEvent {
                            org_id: org,
                            at_us: coffer_kit::timestamp::now_micros(),
                            actor: "user:x".into(),
                            action: "file.download".into(),
                            target,
                            outcome: "success".into(),
                            request_id: "req-other".into(),
                            trace_id: String::new(),
                        })
                        .await
                        .expect("append through the second appender");
                }
                n += 1;
            }
            n
        });
    }
    let mut appended = 0;
    while let Some(n) = tasks.join_next().await {
        appended += n?;
    }
    let admin = f.token(org, Role::Admin, Scopes::all());
    let mut reader = f.client("gateway")?;
    let v = as_user(&admin, reader.verify(pb::VerifyRequest {}))
        .await?
        .into_inner();
    assert!(v.ok);
    assert_eq!(v.count, appended, "a gap or a lost append");
    let export = export_of(&mut reader, &admin).await?;
    let s = coffer_auditlog::verify_export(&export, &public_key())?;
    assert_eq!((s.events, s.checkpoints), (appended, appended / 50));
    Ok(())
}

/// An append after the head its writer wrote that has to wait for the chain lock while retention
/// removes the chain must see the chain gone once it gets the lock, and start a new one from seq 1,
/// not continue the removed one: its check runs in a snapshot taken after the lock.
#[tokio::test]
async fn an_append_that_waits_for_a_retirement_starts_a_new_chain() -> anyhow::Result<()> {
    let f = Fixture::start(1000).await?;
    let before = audit_metrics();
    let org = Uuid::new_v4();
    let user = f.token(org, Role::Member, Scopes::all());
    let mut writer = f.client("metadata")?;
    append_n(&mut writer, &user, "file.download", 3).await?;
    // Retention's work by hand, as the owner, held open under the exclusive chain lock.
    let owner = sqlx::PgPool::connect(&f.url("audit_owner", OWNER_PASSWORD)).await?;
    let mut retire = coffer_db::tenant_tx(&owner, org).await?;
    coffer_db::set_local(&mut retire, "coffer.retention_purge", &org.to_string()).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))")
        .bind(org)
        .execute(&mut *retire)
        .await?;
    let removed = sqlx::query("DELETE FROM events WHERE org_id = $1")
        .bind(org)
        .execute(&mut *retire)
        .await?
        .rows_affected();
    assert_eq!(removed, 3);
    let late = tokio::spawn({
        let (user, mut writer) = (user.clone(), writer.clone());
        async move {
            as_user(
                &user,
                writer.append(append("file.download", format!("file:{}", Uuid::new_v4()))),
            )
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !late.is_finished(),
        "the append did not wait for the chain lock"
    );
    retire.commit().await?;
    let appended = late.await??.into_inner();
    assert_eq!(
        appended.seq, 1,
        "the late append continued the removed chain"
    );
    let admin = f.token(org, Role::Admin, Scopes::all());
    let v = as_user(&admin, f.client("gateway")?.verify(pb::VerifyRequest {}))
        .await?
        .into_inner();
    assert!(v.ok && v.count == 1, "{v:?}");
    // The first append read the head under the lock, the next two went lock-free, the late one
    // tried lock-free, was refused (the chain it knew was gone) and went locked.
    let after = audit_metrics();
    let batches = |outcome: &str| {
        let name = format!("coffer_audit_append_batches_total{{outcome=\"{outcome}\"}}");
        after[&name] - before.get(&name).copied().unwrap_or(0.0)
    };
    assert_eq!(
        (batches("locked"), batches("lock_free"), batches("refused")),
        (2.0, 2.0, 1.0)
    );
    // append_after, as the runtime role: after a head that is not in the chain it inserts
    // nothing, and the tenant it sets ends with the call (in the same transaction, the next
    // statement sees no event).
    let runtime = sqlx::PgPool::connect(&f.url("audit_runtime", RUNTIME_PASSWORD)).await?;
    let mut tx = runtime.begin().await?;
    let empty: Vec<String> = Vec::new();
    let inserted: i64 = sqlx::query_scalar(
        "SELECT append_after($1, ARRAY[2]::bigint[], ARRAY[0]::bigint[], $2, $2, $2, $2, $2, $2,
                             ARRAY[$3]::bytea[], ARRAY[$3]::bytea[], 1, $3)",
    )
    .bind(org)
    .bind(&empty)
    .bind(&[0u8; 32][..])
    .fetch_one(&mut *tx)
    .await?;
    assert_eq!(inserted, 0, "an append after a head not in the chain");
    let (n, tenant): (i64, Option<String>) =
        sqlx::query_as("SELECT count(*), current_setting('coffer.org_id', true) FROM events")
            .fetch_one(&mut *tx)
            .await?;
    assert_eq!(n, 0, "the tenant outlived append_after");
    assert_eq!(tenant.unwrap_or_default(), "");
    tx.rollback().await?;
    // A batch that does not start right after the head it names is refused outright.
    let gap = sqlx::query_scalar::<_, i64>(
        "SELECT append_after($1, ARRAY[3]::bigint[], ARRAY[0]::bigint[], $2, $2, $2, $2, $2, $2,
                             ARRAY[$3]::bytea[], ARRAY[$3]::bytea[], 1, $3)",
    )
    .bind(org)
    .bind(["x"])
    .bind(&[0u8; 32][..])
    .fetch_one(&runtime)
    .await;
    let refused = gap.expect_err("a batch after a gap was taken").to_string();
    assert!(
        refused.contains("does not continue the head it names"),
        "{refused}"
    );
    Ok(())
}

/// The audit metrics' samples, by name with labels.
fn audit_metrics() -> std::collections::HashMap<String, f64> {
    coffer_telemetry::metrics()
        .encode()
        .lines()
        .filter(|l| l.starts_with("coffer_audit_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn a_quiet_org_gets_its_head_signed_after_the_interval() -> anyhow::Result<()> {
    let f = Fixture::start_with(coffer_audit::AuditConfig {
        checkpoint_every: 1000,
        checkpoint_interval_secs: 1,
        ..Default::default()
    })
    .await?;
    let org = Uuid::new_v4();
    let user = f.token(org, Role::Member, Scopes::all());
    let mut writer = f.client("metadata")?;
    for _ in 0..3 {
        as_user(
            &user,
            writer.append(append("file.upload", format!("file:{}", Uuid::new_v4()))),
        )
        .await?;
    }
    let admin = f.token(org, Role::Admin, Scopes::all());
    let mut reader = f.client("gateway")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let signed = loop {
        let export = export_of(&mut reader, &admin).await?;
        let s = coffer_auditlog::verify_export(&export, &public_key())?;
        let last_checkpoint = export.lines().rev().nth(1).unwrap_or_default().to_owned();
        if s.checkpoints >= 1 && last_checkpoint.contains("\"seq\":3,") {
            break s.checkpoints;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the head was never signed: {last_checkpoint}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // No new events: no further checkpoint.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let export = export_of(&mut reader, &admin).await?;
    assert_eq!(
        coffer_auditlog::verify_export(&export, &public_key())?.checkpoints,
        signed
    );
    Ok(())
}

#[tokio::test]
async fn a_purged_orgs_log_goes_after_its_retention_leaving_a_tombstone() -> anyhow::Result<()> {
    let f = Fixture::start_with(coffer_audit::AuditConfig {
        retention_secs: 0,
        retention_interval_secs: 1,
        ..Default::default()
    })
    .await?;
    let (purged, restored, live) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut writer = f.client("metadata")?;
    for org in [purged, restored, live] {
        let user = f.token(org, Role::Member, Scopes::all());
        for _ in 0..3 {
            as_user(
                &user,
                writer.append(append("file.upload", format!("file:{}", Uuid::new_v4()))),
            )
            .await?;
        }
    }
    let mut as_auth = f.client("auth")?;
    for org in [purged, restored] {
        as_auth
            .append(pb::AppendRequest {
                org_id: org.to_string(),
                ..append("org.purge", format!("org:{org}"))
            })
            .await?;
    }
    // An org restored after its purge event keeps its log.
    as_auth
        .append(pb::AppendRequest {
            org_id: restored.to_string(),
            ..append("org.restore", format!("org:{restored}"))
        })
        .await?;
    let reader = f.client("gateway")?;
    let count = |org: Uuid| {
        let token = f.token(org, Role::Owner, Scopes::all());
        let mut reader = reader.clone();
        async move {
            as_user(&token, reader.verify(pb::VerifyRequest {}))
                .await
                .map(|v| v.into_inner())
        }
    };
    let head_before = count(purged).await?.head_hash;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(purged).await?.count != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the purged org's log stayed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(count(restored).await?.count, 5);
    assert_eq!(count(live).await?.count, 3);
    let su = sqlx::PgPool::connect(&f.pg.superuser_url(&f.audit.database)).await?;
    let (events, head): (i64, Vec<u8>) =
        sqlx::query_as("SELECT events, head_hash FROM audit.retired_chains WHERE org_id = $1")
            .bind(purged)
            .fetch_one(&su)
            .await?;
    assert_eq!(events, 4);
    assert_eq!(coffer_auditlog::hex(&head), head_before);
    // The trigger's one exception is narrow: the owner naming another org, and the runtime role
    // naming this one, are both refused.
    for (role, password, named) in [
        ("audit_owner", OWNER_PASSWORD, purged),
        ("audit_runtime", RUNTIME_PASSWORD, live),
    ] {
        let mut conn = sqlx::PgConnection::connect(&f.url(role, password)).await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT set_config('coffer.org_id', $1, true)")
            .bind(live.to_string())
            .execute(&mut *tx)
            .await?;
        coffer_db::set_local(&mut tx, "coffer.retention_purge", &named.to_string()).await?;
        assert!(
            sqlx::query("DELETE FROM events")
                .execute(&mut *tx)
                .await
                .is_err(),
            "{role} deleted a live org's events"
        );
        tx.rollback().await?;
    }
    assert_eq!(count(live).await?.count, 3);
    Ok(())
}

#[tokio::test]
async fn the_chain_reads_touch_a_few_pages_whatever_the_other_orgs_hold() -> anyhow::Result<()> {
    let f = Fixture::start(10).await?;
    let (org, other) = (Uuid::new_v4(), Uuid::new_v4());
    // 5,000 events of another org (straight into the table: their chain is not the point).
    let su = sqlx::PgPool::connect(&f.pg.superuser_url(&f.audit.database)).await?;
    sqlx::query(
        "INSERT INTO audit.events (org_id, seq, at_us, actor, action, target, outcome,
                                   request_id, trace_id, prev_hash, hash)
         SELECT $1, n, n, 'user:x', 'file.upload', 'file:x', 'success', 'r', 't',
                sha256(n::text::bytea), sha256(n::text::bytea)
         FROM generate_series(1, 5000) n",
    )
    .bind(other)
    .execute(&su)
    .await?;
    sqlx::query("ANALYZE audit.events").execute(&su).await?;
    let user = f.token(org, Role::Member, Scopes::all());
    let mut writer = f.client("metadata")?;
    append_n(&mut writer, &user, "file.upload", 25).await?;
    let mut conn = sqlx::PgConnection::connect(&f.url("audit_runtime", RUNTIME_PASSWORD)).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('coffer.org_id', $1, true)")
        .bind(org.to_string())
        .execute(&mut *tx)
        .await?;
    let explain = |sql: &str| format!("{}{sql}", coffer_db::EXPLAIN_PAGES);
    use coffer_audit::sql;
    let mut pages = Vec::new();
    for (name, sql) in [
        ("head", sql::HEAD),
        ("last checkpoint", sql::LAST_CHECKPOINT),
        ("checkpoints", sql::CHECKPOINTS),
    ] {
        let row = sqlx::query(&explain(sql))
            .bind(org)
            .fetch_one(&mut *tx)
            .await?;
        pages.push((name, coffer_db::pages_read(&row)?));
    }
    let row = sqlx::query(&explain(sql::EVENTS_AFTER))
        .bind(org)
        .bind(20i64)
        .bind(10i64)
        .fetch_one(&mut *tx)
        .await?;
    pages.push(("events after", coffer_db::pages_read(&row)?));
    let row = sqlx::query(&explain(sql::LIST))
        .bind(org)
        .bind(None::<i64>)
        .bind(None::<String>)
        .bind(None::<i64>)
        .bind(10i64)
        .fetch_one(&mut *tx)
        .await?;
    pages.push(("list", coffer_db::pages_read(&row)?));
    // The other org's events fill about a hundred pages; each read stays on an index path.
    assert!(pages.iter().all(|(_, n)| *n <= 8), "{pages:?}");
    Ok(())
}

/// The pages of the events table and its indexes that each lookup of an append touches, in a
/// transaction of `conn` of its own: the head read of the locked path (`sql::HEAD`) and the check
/// of the lock-free one (`append_after` after a head that is not in the chain: it inserts nothing,
/// but looks).
async fn pages_an_append_reads(
    conn: &mut sqlx::PgConnection,
    org: Uuid,
) -> anyhow::Result<(i64, i64)> {
    const PAGES: &str = "SELECT sum(pg_stat_get_xact_blocks_fetched(oid))::bigint FROM pg_class
         WHERE oid = 'events'::regclass
            OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'events'::regclass)";
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('coffer.org_id', $1, true)")
        .bind(org.to_string())
        .execute(&mut *tx)
        .await?;
    let before: i64 = sqlx::query_scalar(PAGES).fetch_one(&mut *tx).await?;
    sqlx::query(coffer_audit::sql::HEAD)
        .bind(org)
        .fetch_optional(&mut *tx)
        .await?;
    let head: i64 = sqlx::query_scalar(PAGES).fetch_one(&mut *tx).await?;
    let inserted: i64 = sqlx::query_scalar(
        "SELECT append_after($1, ARRAY[2]::bigint[], ARRAY[0]::bigint[], $3, $3, $3, $3, $3, $3,
                             ARRAY[$2]::bytea[], ARRAY[$2]::bytea[], 1, $2)",
    )
    .bind(org)
    .bind(&[0u8; 32][..])
    .bind(["x"])
    .fetch_one(&mut *tx)
    .await?;
    assert_eq!(inserted, 0);
    let check: i64 = sqlx::query_scalar(PAGES).fetch_one(&mut *tx).await?;
    tx.rollback().await?;
    Ok((head - before, check - head))
}

/// A pooled connection keeps the plans of its statements, made when the chain was short; an
/// append's lookups must still touch a few pages once the chain is long, whichever index the
/// planner found as cheap on a nearly empty table (reading every event of the org per append made
/// appends slower as the log grew: 9,000 index entries per batch in a benchmark).
#[tokio::test]
async fn an_appends_lookups_read_a_few_pages_however_long_the_chain_grew() -> anyhow::Result<()> {
    let f = Fixture::start(1_000_000).await?;
    let org = Uuid::new_v4();
    let user = f.token(org, Role::Member, Scopes::all());
    append_n(&mut f.client("metadata")?, &user, "file.download", 2).await?;
    let mut conn = sqlx::PgConnection::connect(&f.url("audit_runtime", RUNTIME_PASSWORD)).await?;
    for _ in 0..10 {
        pages_an_append_reads(&mut conn, org).await?;
    }
    // The chain grows by 5,000 events (their hashes do not chain: only the lookups matter here).
    let owner = sqlx::PgPool::connect(&f.url("audit_owner", OWNER_PASSWORD)).await?;
    insert_by_hand(&owner, org, 3..=5002, "file.download").await?;
    // The first read after the growth plans again (the planner looks at the table's new size);
    // what each append then pays is the second.
    // A new connection plans them on the long chain (with the statistics of the short one).
    let mut fresh = sqlx::PgConnection::connect(&f.url("audit_runtime", RUNTIME_PASSWORD)).await?;
    for (what, conn) in [("kept plans", &mut conn), ("new plans", &mut fresh)] {
        pages_an_append_reads(conn, org).await?;
        let (head, check) = pages_an_append_reads(conn, org).await?;
        assert!(
            head <= 6 && check <= 6,
            "{what}: an append's lookups touched {head} and {check} pages"
        );
    }
    Ok(())
}

/// Retention finds purged orgs through a lookup capability that shows `org.purge` events of every
/// org. It is the owner's (retention runs in the owner's pool): the runtime role that sets it sees
/// no event.
#[tokio::test]
async fn only_the_owner_finds_purged_orgs_through_the_retention_lookup() -> anyhow::Result<()> {
    let f = Fixture::start(1000).await?;
    let org = Uuid::new_v4();
    let owner = sqlx::PgPool::connect(&f.url("audit_owner", OWNER_PASSWORD)).await?;
    insert_by_hand(&owner, org, 1..=1, "org.purge").await?;
    let runtime = sqlx::PgPool::connect(&f.url("audit_runtime", RUNTIME_PASSWORD)).await?;
    for (role, pool, want) in [("owner", &owner, 1), ("runtime", &runtime, 0)] {
        let mut tx = coffer_db::begin_with_setting(pool, "coffer.lookup_retention", "1").await?;
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        assert_eq!(seen, want, "{role}");
    }
    Ok(())
}

/// Writes events `seqs` of `org` with `action` by hand, as the owner (their hashes do not chain:
/// for tests of lookups, not of the chain).
async fn insert_by_hand(
    owner: &sqlx::PgPool,
    org: Uuid,
    seqs: std::ops::RangeInclusive<i64>,
    action: &str,
) -> anyhow::Result<()> {
    let mut tx = coffer_db::tenant_tx(owner, org).await?;
    sqlx::query(
        "INSERT INTO events (org_id, seq, at_us, actor, action, target, outcome, request_id,
                             trace_id, prev_hash, hash)
         SELECT $1, g, 0, 'user:x', $4, 'file:x', 'success', 'r', '', $5, $5
         FROM generate_series($2::bigint, $3::bigint) g",
    )
    .bind(org)
    .bind(seqs.start())
    .bind(seqs.end())
    .bind(action)
    .bind(&[0u8; 32][..])
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
