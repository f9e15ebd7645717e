//! The shared database helpers against a real Postgres cluster.

use coffer_db::{
    DbError, TENANT_SETTING, TenantTx, begin_with_setting, migrate, rls_audit, runtime_pool,
    set_local, tenant_tx,
};
use coffer_testkit::Postgres;
use sqlx::Connection as _;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

const ORG_A: Uuid = Uuid::from_u128(0xa);
const ORG_B: Uuid = Uuid::from_u128(0xb);

fn opts(url: &str) -> PgConnectOptions {
    url.parse().unwrap()
}

/// A database with schema `docs`, its owner and runtime roles, and migrations applied.
struct Schema {
    pg: &'static Postgres,
    db: String,
    owner_url: String,
    runtime_url: String,
    runtime_role: String,
}

async fn schema() -> anyhow::Result<Schema> {
    let pg = Postgres::shared().await?;
    let db = pg.create_database("dbkit").await?;
    let owner = format!("{db}_owner");
    let runtime = format!("{db}_rt");
    pg.create_role(&owner, "owner-pw").await?;
    pg.create_role(&runtime, "runtime-pw").await?;
    pg.execute_as_superuser(
        &db,
        &format!(
            "CREATE SCHEMA docs AUTHORIZATION \"{owner}\";
             GRANT USAGE ON SCHEMA docs TO \"{runtime}\";"
        ),
    )
    .await?;
    let migrations = tempfile::tempdir()?;
    std::fs::write(
        migrations.path().join("0001_docs.sql"),
        format!(
            "CREATE TABLE orgs (id uuid PRIMARY KEY);
             CREATE TABLE docs (
                 id uuid PRIMARY KEY,
                 org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
                 title text NOT NULL,
                 UNIQUE (org_id, title));
             ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
             ALTER TABLE docs FORCE ROW LEVEL SECURITY;
             CREATE POLICY tenant ON docs
                 USING (org_id = NULLIF(current_setting('coffer.org_id', true), '')::uuid)
                 WITH CHECK (org_id = NULLIF(current_setting('coffer.org_id', true), '')::uuid);
             DO $$ BEGIN
               EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO %I',
                              current_setting('coffer.runtime_role'));
               EXECUTE format('GRANT SELECT ON orgs TO %I', current_setting('coffer.runtime_role'));
             END $$;
             INSERT INTO orgs VALUES ('{ORG_A}'), ('{ORG_B}');"
        ),
    )?;
    let migrator = sqlx::migrate::Migrator::new(migrations.path()).await?;
    let owner_url = pg.url(&owner, "owner-pw", &db);
    migrate(opts(&owner_url), "docs", &runtime, &migrator).await?;
    // Applying again is a no-op, and the bookkeeping table lives in the schema.
    migrate(opts(&owner_url), "docs", &runtime, &migrator).await?;
    let bookkeeping: Vec<String> = sqlx::query_scalar(
        "SELECT schemaname::text FROM pg_tables WHERE tablename = '_sqlx_migrations'",
    )
    .fetch_all(&sqlx::PgPool::connect(&pg.superuser_url(&db)).await?)
    .await?;
    assert_eq!(bookkeeping, ["docs"]);
    Ok(Schema {
        pg,
        runtime_url: pg.url(&runtime, "runtime-pw", &db),
        owner_url,
        db,
        runtime_role: runtime,
    })
}

#[tokio::test]
async fn tenant_transactions_see_only_their_org() -> anyhow::Result<()> {
    let s = schema().await?;
    let pool = runtime_pool(opts(&s.runtime_url), "docs", 4).await?;
    for (org, title) in [(ORG_A, "a1"), (ORG_A, "a2"), (ORG_B, "b1")] {
        let mut tx = tenant_tx(&pool, org).await?;
        sqlx::query("INSERT INTO docs (id, org_id, title) VALUES ($1, $2, $3)")
            .bind(Uuid::new_v4())
            .bind(org)
            .bind(title)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let mut tx = tenant_tx(&pool, ORG_A).await?;
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM docs ORDER BY title")
        .fetch_all(&mut *tx)
        .await?;
    assert_eq!(titles, ["a1", "a2"]);
    // Writing another org's row from A's transaction is refused by the policy.
    let err = sqlx::query("INSERT INTO docs (id, org_id, title) VALUES ($1, $2, 'x')")
        .bind(Uuid::new_v4())
        .bind(ORG_B)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(matches!(DbError::from(err), DbError::NotFound));
    assert_eq!(
        tx.org(),
        ORG_A,
        "the transaction names the org its rows are filtered by"
    );
    drop(tx);

    // A transaction begun with a lookup capability and adopted for B sees B's rows only, says
    // so, and holds the capability no more.
    let lookup = begin_with_setting(&pool, "coffer.lookup_doc", "ab").await?;
    let mut tx = TenantTx::adopt(lookup, ORG_B, Some("coffer.lookup_doc")).await?;
    assert_eq!(tx.org(), ORG_B);
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM docs ORDER BY title")
        .fetch_all(&mut *tx)
        .await?;
    assert_eq!(titles, ["b1"]);
    let left: String = sqlx::query_scalar("SELECT current_setting('coffer.lookup_doc', true)")
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(
        left, "",
        "the lookup capability ended when the tenant was set"
    );
    tx.rollback().await?;

    // Only `tenant_tx` and `adopt` set the tenant.
    let org = ORG_A.to_string();
    assert!(
        begin_with_setting(&pool, TENANT_SETTING, &org)
            .await
            .is_err()
    );
    let mut plain = pool.begin().await?;
    assert!(set_local(&mut plain, TENANT_SETTING, &org).await.is_err());
    assert!(
        TenantTx::adopt(plain, ORG_A, Some(TENANT_SETTING))
            .await
            .is_err()
    );

    // The setting is transaction-scoped: the same pooled connections, used without it, see nothing.
    for _ in 0..8 {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM docs")
            .fetch_one(&pool)
            .await?;
        assert_eq!(n, 0);
    }
    Ok(())
}

#[tokio::test]
async fn settings_inlined_into_begin_are_checked_and_transaction_scoped() -> anyhow::Result<()> {
    let s = schema().await?;
    let pool = runtime_pool(opts(&s.runtime_url), "docs", 1).await?;
    for (name, value) in [
        ("coffer.org_id", "x'); DROP TABLE docs; --"),
        ("coffer.org_id", ""),
        ("coffer.org_id", "ab cd"),
        ("search_path", "abc"),
        ("coffer.Org", "abc"),
        ("coffer.", "abc"),
        ("coffer.a'b", "abc"),
    ] {
        assert!(
            begin_with_setting(&pool, name, value).await.is_err(),
            "{name:?} = {value:?} was accepted"
        );
    }
    let mut tx = begin_with_setting(&pool, "coffer.lookup_x", "00ff-aa").await?;
    let v: String = sqlx::query_scalar("SELECT current_setting('coffer.lookup_x')")
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(v, "00ff-aa");
    tx.commit().await?;
    // The one pooled connection no longer carries it.
    let v: Option<String> =
        sqlx::query_scalar("SELECT NULLIF(current_setting('coffer.lookup_x', true), '')")
            .fetch_one(&pool)
            .await?;
    assert_eq!(v, None);
    Ok(())
}

#[tokio::test]
async fn postgres_errors_map_to_domain_errors() -> anyhow::Result<()> {
    let s = schema().await?;
    let pool = runtime_pool(opts(&s.runtime_url), "docs", 2).await?;
    let mut tx = tenant_tx(&pool, ORG_A).await?;
    let insert = "INSERT INTO docs (id, org_id, title) VALUES ($1, $2, 'same')";
    sqlx::query(insert)
        .bind(Uuid::new_v4())
        .bind(ORG_A)
        .execute(&mut *tx)
        .await?;
    let dup = sqlx::query(insert)
        .bind(Uuid::new_v4())
        .bind(ORG_A)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(matches!(DbError::from(dup), DbError::AlreadyExists));
    drop(tx);

    let ghost = Uuid::from_u128(0xdead);
    let mut tx = tenant_tx(&pool, ghost).await?;
    let fk = sqlx::query("INSERT INTO docs (id, org_id, title) VALUES ($1, $2, 't')")
        .bind(Uuid::new_v4())
        .bind(ghost)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(matches!(DbError::from(fk), DbError::NotFound));
    drop(tx);

    // What services log of an internal database error names no value Postgres quoted.
    let bad = sqlx::query("SELECT $1::text::uuid")
        .bind("Gehaltsliste-2026.xlsx")
        .fetch_one(&pool)
        .await
        .unwrap_err();
    assert!(
        bad.to_string().contains("Gehaltsliste"),
        "Postgres quotes the value: {bad}"
    );
    let logged = format!("{:?}", DbError::from(bad));
    assert!(!logged.contains("Gehaltsliste"), "{logged}");
    assert!(logged.contains("22P02"), "{logged}");

    let missing = sqlx::query("SELECT 1 FROM docs WHERE false")
        .fetch_one(&pool)
        .await
        .unwrap_err();
    assert_eq!(
        DbError::from(missing).code(),
        coffer_errors::ErrorCode::NotFound
    );
    Ok(())
}

#[tokio::test]
async fn a_server_going_away_is_unavailable_not_internal() -> anyhow::Result<()> {
    let s = schema().await?;
    let pool = runtime_pool(opts(&s.runtime_url), "docs", 2).await?;
    let mut tx = tenant_tx(&pool, ORG_A).await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await?;
    // As a restart or a crash ends every session: the server sends 57P01 and closes.
    let mut admin = sqlx::PgConnection::connect(&s.pg.superuser_url(&s.db)).await?;
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await?;
    assert!(ended);
    let cut = sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap_err();
    let mapped = DbError::from(cut);
    assert_eq!(
        mapped.code(),
        coffer_errors::ErrorCode::Unavailable,
        "{mapped:?}"
    );
    drop(tx);
    // The pool drops the dead connection: the next transaction works.
    let mut tx = tenant_tx(&pool, ORG_A).await?;
    sqlx::query("SELECT 1").execute(&mut *tx).await?;
    Ok(())
}

#[tokio::test]
async fn unsafe_roles_are_refused_and_the_audit_finds_every_gap() -> anyhow::Result<()> {
    let s = schema().await?;
    // The superuser would bypass every policy: the pool refuses it.
    let err = runtime_pool(opts(&s.pg.superuser_url(&s.db)), "docs", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::UnsafeRole(_)), "{err}");

    let pool = runtime_pool(opts(&s.runtime_url), "docs", 2).await?;
    assert_eq!(
        rls_audit(&pool, "docs", &s.runtime_role).await?,
        Vec::<String>::new()
    );

    // Break it three ways as the owner, and see each reported.
    let owner = sqlx::PgPool::connect(&s.owner_url).await?;
    sqlx::raw_sql(
        "ALTER TABLE docs.docs NO FORCE ROW LEVEL SECURITY;
         CREATE TABLE docs.notes (id int PRIMARY KEY, org_id uuid NOT NULL);",
    )
    .execute(&owner)
    .await?;
    s.pg.execute_as_superuser(
        &s.db,
        &format!(
            "CREATE TABLE docs.mine (id int); ALTER TABLE docs.mine OWNER TO \"{}\";",
            s.runtime_role
        ),
    )
    .await?;
    let found = rls_audit(&pool, "docs", &s.runtime_role).await?;
    // A service starting now would refuse the schema, naming what is wrong.
    let err = runtime_pool(opts(&s.runtime_url), "docs", 1)
        .await
        .unwrap_err();
    match &err {
        DbError::UnsafeSchema(named) => assert_eq!(named, &found),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains("docs.notes: no row-level security policy"),
        "{err}"
    );
    let expect = [
        "docs.docs: row-level security not forced",
        "docs.notes: row-level security not enabled",
        "docs.notes: row-level security not forced",
        "docs.notes: no row-level security policy",
        "docs.mine: owned by the runtime role",
    ];
    for e in expect {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "{e:?} not in {found:?}"
        );
    }
    owner.close().await;
    Ok(())
}

#[tokio::test]
async fn the_audit_finds_functions_and_schema_grants_that_open_a_way_around_it()
-> anyhow::Result<()> {
    let s = schema().await?;
    let pool = runtime_pool(opts(&s.runtime_url), "docs", 2).await?;
    let owner = sqlx::PgPool::connect(&s.owner_url).await?;
    let rt = &s.runtime_role;
    // Sound: an invoker function anyone may call, and a definer function with a fixed path
    // ending in pg_temp that only the runtime role may call.
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION docs.invoker() RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE FUNCTION docs.sound() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             SET search_path = docs, pg_temp AS 'SELECT count(*) FROM docs';
         REVOKE ALL ON FUNCTION docs.sound() FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION docs.sound() TO \"{rt}\";"
    ))
    .execute(&owner)
    .await?;
    assert_eq!(rls_audit(&pool, "docs", rt).await?, Vec::<String>::new());

    // Neither a missing schema nor a missing role audits as sound.
    assert_eq!(
        rls_audit(&pool, "nope", rt).await?,
        ["schema nope does not exist"]
    );
    assert_eq!(
        rls_audit(&pool, "docs", "nobody").await?,
        ["runtime role nobody does not exist"]
    );

    // Unsound twelve ways. Definer paths that are not exactly `docs, pg_temp`: none, pg_temp first,
    // one quoted name (a single schema called "docs, pg_temp": pg_temp is searched first), and
    // pg_temp named twice (its first place counts).
    sqlx::raw_sql(
        "CREATE FUNCTION docs.no_path() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             AS 'SELECT count(*) FROM docs.docs';
         CREATE FUNCTION docs.temp_first() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             SET search_path = pg_temp, docs AS 'SELECT count(*) FROM docs';
         CREATE FUNCTION docs.quoted() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             SET search_path = 'docs, pg_temp' AS 'SELECT count(*) FROM docs.docs';
         CREATE FUNCTION docs.twice() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             SET search_path = pg_temp, docs, pg_temp AS 'SELECT count(*) FROM docs';
         REVOKE ALL ON FUNCTION docs.no_path(), docs.temp_first(), docs.quoted(), docs.twice()
             FROM PUBLIC;
         CREATE FUNCTION docs.for_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             SET search_path = docs, pg_temp AS 'SELECT count(*) FROM docs';",
    )
    .execute(&owner)
    .await?;
    // A definer owned by a superuser (row-level security does not apply to it), a function the
    // runtime role owns, and rights on the schema for everyone (the runtime role included).
    s.pg.execute_as_superuser(
        &s.db,
        &format!(
            "CREATE FUNCTION docs.as_super() RETURNS bigint LANGUAGE sql SECURITY DEFINER
                 SET search_path = docs, pg_temp AS 'SELECT count(*) FROM docs';
             REVOKE ALL ON FUNCTION docs.as_super() FROM PUBLIC;
             ALTER FUNCTION docs.invoker() OWNER TO \"{rt}\";
             GRANT USAGE, CREATE ON SCHEMA docs TO PUBLIC;
             GRANT TRUNCATE ON docs.docs TO \"{rt}\";
             CREATE VIEW docs.as_owner AS SELECT id, title FROM docs.docs;
             CREATE VIEW docs.as_caller WITH (security_invoker = true)
                 AS SELECT id, org_id FROM docs.docs;
             GRANT SELECT ON docs.as_owner, docs.as_caller TO \"{rt}\";"
        ),
    )
    .await?;
    let found = rls_audit(&pool, "docs", rt).await?;
    let expect = [
        "docs.invoker(): owned by the runtime role".to_string(),
        "docs.no_path(): SECURITY DEFINER without the search path `docs, pg_temp`".into(),
        "docs.temp_first(): SECURITY DEFINER without the search path".into(),
        "docs.quoted(): SECURITY DEFINER without the search path".into(),
        "docs.twice(): SECURITY DEFINER without the search path".into(),
        "docs.for_all(): SECURITY DEFINER and PUBLIC may execute it".into(),
        "docs.as_super(): SECURITY DEFINER, owned by a role that bypasses row-level security"
            .into(),
        format!("docs.docs: the runtime role {rt} may TRUNCATE it"),
        "docs.as_owner: a view the runtime role reads past the tables' policies".into(),
        "schema docs: PUBLIC has USAGE".into(),
        "schema docs: PUBLIC has CREATE".into(),
        format!("schema docs: the runtime role {rt} may create objects"),
    ];
    for e in &expect {
        assert!(
            found.iter().any(|f| f.starts_with(e.as_str())),
            "{e:?} not in {found:?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{found:?}");

    // A runtime role that is a member of the owner role could change everything it owns, even
    // without inheriting its rights (SET ROLE).
    s.pg.execute_as_superuser(
        &s.db,
        &format!(
            "ALTER ROLE \"{rt}\" NOINHERIT; GRANT \"{}_owner\" TO \"{rt}\"",
            s.db
        ),
    )
    .await?;
    let found = rls_audit(&pool, "docs", rt).await?;
    for e in [
        "docs.docs: owned by the runtime role",
        "docs.sound(): owned by the runtime role",
        "schema docs: owned by the runtime role",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "{e:?} not in {found:?}"
        );
    }
    // A member of a role that bypasses row-level security is refused like the role itself.
    s.pg.execute_as_superuser(
        &s.db,
        &format!(
            "CREATE ROLE \"{db}_bypass\" NOLOGIN BYPASSRLS; GRANT \"{db}_bypass\" TO \"{rt}\"",
            db = s.db
        ),
    )
    .await?;
    assert_eq!(
        rls_audit(&pool, "docs", rt).await?,
        [format!(
            "runtime role {rt} has BYPASSRLS or is a member of a role that has it"
        )]
    );
    let err = runtime_pool(opts(&s.runtime_url), "docs", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::UnsafeRole(_)), "{err}");
    owner.close().await;
    Ok(())
}

#[tokio::test]
async fn pages_read_shows_a_policy_or_that_hides_the_index() -> anyhow::Result<()> {
    let s = schema().await?;
    // A second permissive policy, as the services' lookup capabilities add, and 5,000 rows of
    // another org.
    s.pg.execute_as_superuser(
        &s.db,
        &format!(
            "CREATE POLICY lookup ON docs.docs
                 USING (title = NULLIF(current_setting('coffer.lookup_title', true), ''));
             INSERT INTO docs.docs (id, org_id, title)
                 SELECT gen_random_uuid(), '{ORG_B}', 'doc ' || n FROM generate_series(1, 5000) n;
             INSERT INTO docs.docs (id, org_id, title) VALUES (gen_random_uuid(), '{ORG_A}', 'a');
             ANALYZE docs.docs"
        ),
    )
    .await?;
    let pool = runtime_pool(opts(&s.runtime_url), "docs", 1).await?;
    let mut tx = tenant_tx(&pool, ORG_A).await?;
    let mut pages = Vec::new();
    for (sql, org) in [
        ("SELECT title FROM docs ORDER BY title DESC LIMIT 1", None),
        (
            "SELECT title FROM docs WHERE org_id = $1 ORDER BY title DESC LIMIT 1",
            Some(ORG_A),
        ),
    ] {
        let sql = format!("{}{sql}", coffer_db::EXPLAIN_PAGES);
        let mut q = sqlx::query(&sql);
        if let Some(org) = org {
            q = q.bind(org);
        }
        pages.push(coffer_db::pages_read(&q.fetch_one(&mut *tx).await?)?);
    }
    // Relying on the policy reads every page of the table; naming the org reads an index path.
    assert!(pages[0] >= 30, "{pages:?}");
    assert!(pages[1] <= 4, "{pages:?}");
    Ok(())
}

/// Writes the secrets `coffer_db::open` reads: both role passwords and `ca_pem` as the CA.
fn db_secrets(ca_pem: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("db-owner-password"), "owner-pw")?;
    std::fs::write(dir.path().join("db-runtime-password"), "runtime-pw")?;
    std::fs::write(dir.path().join("db-ca.crt"), ca_pem)?;
    Ok(dir)
}

/// Every service connection speaks TLS and checks the server as `verify-full` does: the
/// certificate must chain to the mounted CA and name the host dialled. The test cluster, like
/// production's, takes TCP connections over TLS only.
#[tokio::test]
async fn services_reach_postgres_over_tls_checking_the_ca_and_the_host() -> anyhow::Result<()> {
    let s = schema().await?;
    let config = coffer_config::DatabaseConfig {
        host: "127.0.0.1".into(),
        port: s.pg.port(),
        name: s.db.clone(),
        schema: "docs".into(),
        owner_user: format!("{}_owner", s.db),
        runtime_user: s.runtime_role.clone(),
        pool_size: 2,
    };
    let none = tempfile::tempdir()?;
    let mut migrator = sqlx::migrate::Migrator::new(none.path()).await?;
    // The schema is migrated already (by `schema`): nothing more to apply.
    migrator.set_ignore_missing(true);

    let good = db_secrets(s.pg.ca_pem())?;
    let secrets = coffer_config::Secrets::new(good.path());
    let pool = coffer_db::open(&config, &secrets, &migrator).await?;
    let (ssl, version): (bool, Option<String>) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await?;
    assert!(ssl, "the runtime pool's connection is not TLS");
    assert!(version.is_some_and(|v| v.starts_with("TLSv1.")));
    pool.close().await;
    let owner = coffer_db::owner_pool(&config, &secrets, 1).await?;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&owner)
        .await?;
    assert!(ssl, "the owner pool's connection is not TLS");
    owner.close().await;

    // A server whose certificate does not chain to the mounted CA is refused…
    let other_ca = coffer_testkit::DevCa::new("another CA")?;
    let wrong = db_secrets(&other_ca.ca_pem())?;
    let err = coffer_db::open(
        &config,
        &coffer_config::Secrets::new(wrong.path()),
        &migrator,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::Unavailable(_)), "{err}");
    // …and so is one that does not name the host dialled (it names 127.0.0.1 only).
    let by_name = coffer_config::DatabaseConfig {
        host: "localhost".into(),
        ..config.clone()
    };
    let err = coffer_db::open(&by_name, &secrets, &migrator)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Unavailable(_)), "{err}");
    // Without the CA file, nothing connects at all.
    std::fs::remove_file(good.path().join("db-ca.crt"))?;
    let err = coffer_db::open(&config, &secrets, &migrator)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("db-ca.crt"), "{err}");

    // The server takes no plaintext TCP connection (pg_hba: hostssl only).
    let plain = opts(&s.runtime_url).ssl_mode(sqlx::postgres::PgSslMode::Disable);
    let err = sqlx::PgConnection::connect_with(&plain).await.unwrap_err();
    assert!(err.to_string().contains("no encryption"), "{err}");
    Ok(())
}
