//! Row-level security of the metadata schema, read from the catalog, and what a pooled
//! connection that skipped the tenant setting sees.

use std::sync::Arc;

use coffer_mesh::CallContext;
use coffer_metadata::testing::{RUNTIME_PASSWORD, Stack};
use coffer_proto::v1::{self as pb};
use coffer_token::{Audience, Minter, Role, Scopes, Subject};
use sqlx::Connection as _;
use uuid::Uuid;

#[tokio::test]
async fn every_tenant_table_is_forced_and_a_connection_without_tenant_sees_nothing()
-> anyhow::Result<()> {
    let stack = Stack::start(Default::default()).await?;
    let db = &stack.metadata.database;

    // Some rows in every table, through the service.
    let org = Uuid::new_v4();
    let token = Minter::new(stack.ring()).mint(
        &Subject {
            user_id: Uuid::new_v4(),
            org_id: org,
            role: Role::Owner,
            scopes: Scopes::all(),
            credential: coffer_token::Credential::Session,
            request_id: "req-rls".into(),
        },
        &[Audience::Metadata, Audience::StorageSigner, Audience::Audit],
        coffer_token::unix_now(),
        60,
    )?;
    let mut md = stack.metadata_as("gateway")?;
    CallContext {
        token: Some(Arc::from(token.as_str())),
        request_id: "req-rls".into(),
        deadline: None,
    }
    .scope(async {
        md.create_folder(pb::CreateFolderRequest {
            name: "f".into(),
            parent_id: String::new(),
        })
        .await?;
        md.create_file(pb::CreateFileRequest {
            name: "x".into(),
            size: 1,
            content_type: "text/plain".into(),
            ..Default::default()
        })
        .await?;
        Ok::<_, tonic::Status>(())
    })
    .await?;

    // The catalog: every table with org_id has ENABLE and FORCE and a policy; the runtime role
    // owns nothing and bypasses nothing.
    let superuser = sqlx::PgPool::connect(&stack.pg.superuser_url(db)).await?;
    let violations = coffer_db::rls_audit(&superuser, "metadata", "metadata_runtime").await?;
    assert!(violations.is_empty(), "{violations:#?}");
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'metadata' AND c.relkind = 'r'
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id')",
    )
    .fetch_all(&superuser)
    .await?;
    let mut names: Vec<_> = tables.into_iter().map(|(t,)| t).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "files",
            "folders",
            "multipart_uploads",
            "object_deletions",
            "quotas",
            "shares"
        ]
    );
    // The superuser sees the rows that exist.
    let (files,): (i64,) = sqlx::query_as("SELECT count(*) FROM metadata.files")
        .fetch_one(&superuser)
        .await?;
    assert_eq!(files, 1);

    // The runtime role, on a connection that never set the tenant: no rows, in any table; and
    // a write without the tenant is refused.
    let url = format!(
        "postgres://metadata_runtime:{RUNTIME_PASSWORD}@127.0.0.1:{}/{db}?options=-csearch_path%3Dmetadata",
        stack.pg.port()
    );
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    for table in [
        "orgs",
        "quotas",
        "folders",
        "files",
        "shares",
        "object_deletions",
        "multipart_uploads",
    ] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(n, 0, "{table} is visible without a tenant");
    }
    let insert = sqlx::query(
        "INSERT INTO folders (id, org_id, name) VALUES (gen_random_uuid(), $1, 'sneak')",
    )
    .bind(org)
    .execute(&mut conn)
    .await;
    assert!(insert.is_err(), "a write without a tenant went through");
    // Another tenant's setting shows none of this org's rows either.
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('coffer.org_id', $1, true)")
        .bind(Uuid::new_v4().to_string())
        .execute(&mut *tx)
        .await?;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM files")
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(n, 0);
    tx.rollback().await?;
    // file_of, the download's read in one statement, sets the tenant it is given: the file shows
    // to its own org only, and the tenant ends with the call (inside a transaction, the next
    // statement sees no file).
    let file: Uuid = sqlx::query_scalar("SELECT id FROM metadata.files")
        .fetch_one(&superuser)
        .await?;
    let mut tx = conn.begin().await?;
    for (caller, want) in [(Uuid::new_v4(), None), (org, Some(file))] {
        let got: Option<Uuid> = sqlx::query_scalar("SELECT id FROM file_of($1, $2)")
            .bind(caller)
            .bind(file)
            .fetch_optional(&mut *tx)
            .await?;
        assert_eq!(got, want, "file_of as {caller}");
        let (n, tenant): (i64, Option<String>) =
            sqlx::query_as("SELECT count(*), current_setting('coffer.org_id', true) FROM files")
                .fetch_one(&mut *tx)
                .await?;
        assert_eq!(n, 0, "the tenant outlived file_of");
        assert_eq!(tenant.unwrap_or_default(), "");
    }
    tx.rollback().await?;
    // The deletion sweep's lookup: with coffer.lookup_deletions_due set, the runtime role sees the
    // entries due before then, of every org, and nothing else; it cannot change them.
    sqlx::raw_sql(&format!(
        "INSERT INTO metadata.object_deletions (object_key, org_id, size, delete_after) VALUES
           ('{org}/due', '{org}', 1, now() - interval '1 minute'),
           ('{org}/later', '{org}', 1, now() + interval '1 day')"
    ))
    .execute(&superuser)
    .await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('coffer.lookup_deletions_due', $1, true)")
        .bind(
            time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)?,
        )
        .execute(&mut *tx)
        .await?;
    let keys: Vec<String> = sqlx::query_scalar("SELECT object_key FROM object_deletions")
        .fetch_all(&mut *tx)
        .await?;
    assert_eq!(keys, [format!("{org}/due")]);
    let gone = sqlx::query("DELETE FROM object_deletions")
        .execute(&mut *tx)
        .await?;
    assert_eq!(gone.rows_affected(), 0, "the lookup deleted entries");
    tx.rollback().await?;
    // The trash retention's lookup: with coffer.lookup_trash_before set, the runtime role sees
    // the files trashed before then, of every org, and nothing else; it cannot change them.
    sqlx::raw_sql("UPDATE metadata.files SET trashed_at = now() - interval '1 minute'")
        .execute(&superuser)
        .await?;
    for (before, want) in [(0, 1), (120, 0)] {
        let mut tx = conn.begin().await?;
        let at = time::OffsetDateTime::now_utc() - time::Duration::seconds(before);
        sqlx::query("SELECT set_config('coffer.lookup_trash_before', $1, true)")
            .bind(at.format(&time::format_description::well_known::Rfc3339)?)
            .execute(&mut *tx)
            .await?;
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM files")
            .fetch_one(&mut *tx)
            .await?;
        assert_eq!(n, want, "trashed before now - {before} s");
        let changed = sqlx::query("UPDATE files SET name = 'x'")
            .execute(&mut *tx)
            .await?;
        assert_eq!(changed.rows_affected(), 0, "the lookup changed a file");
        tx.rollback().await?;
    }
    // DDL is not the runtime role's to do.
    assert!(
        sqlx::query("ALTER TABLE files DISABLE ROW LEVEL SECURITY")
            .execute(&mut conn)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("DROP TABLE shares")
            .execute(&mut conn)
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn listing_a_folder_touches_a_few_pages_whatever_the_tables_hold() -> anyhow::Result<()> {
    let stack = Stack::start(Default::default()).await?;
    let db = &stack.metadata.database;
    let (org, other) = (Uuid::new_v4(), Uuid::new_v4());
    let folder = Uuid::new_v4();
    // 5,000 files and 2,000 folders of another org, and 3,000 files in our root and as many in
    // a folder (straight into the tables: only the reads are measured).
    let superuser = sqlx::PgPool::connect(&stack.pg.superuser_url(db)).await?;
    sqlx::raw_sql(&format!(
        "SET search_path TO metadata;
         INSERT INTO orgs (id) VALUES ('{org}'), ('{other}');
         INSERT INTO folders (id, org_id, name)
             SELECT gen_random_uuid(), '{other}', 'folder ' || n FROM generate_series(1, 2000) n;
         INSERT INTO folders (id, org_id, name) VALUES ('{folder}', '{org}', 'inbox');
         INSERT INTO files (id, org_id, folder_id, name, object_key, size, content_type, state,
                            created_by)
             SELECT id, o, f, 'file ' || n, o::text || '/' || id::text, 1, 'text/plain',
                    'available', o
             FROM (SELECT gen_random_uuid() AS id, n, o, f
                   FROM generate_series(1, 5000) n,
                        (VALUES ('{other}'::uuid, NULL::uuid)) v(o, f)
                   UNION ALL
                   SELECT gen_random_uuid(), n, '{org}'::uuid, f
                   FROM generate_series(1, 3000) n,
                        (VALUES (NULL::uuid), ('{folder}'::uuid)) v(f)) t;
         ANALYZE files; ANALYZE folders;"
    ))
    .execute(&superuser)
    .await?;
    let url = format!(
        "postgres://metadata_runtime:{RUNTIME_PASSWORD}@127.0.0.1:{}/{db}?options=-csearch_path%3Dmetadata",
        stack.pg.port()
    );
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('coffer.org_id', $1, true)")
        .bind(org.to_string())
        .execute(&mut *tx)
        .await?;
    let cursor: Uuid = sqlx::query_scalar(
        "SELECT id FROM files WHERE folder_id IS NULL ORDER BY name OFFSET 1500 LIMIT 1",
    )
    .fetch_one(&mut *tx)
    .await?;
    use coffer_metadata::sql;
    let mut pages = Vec::new();
    for (what, sql, parent, after) in [
        ("root files", sql::ROOT_FILES, None, None),
        ("root files mid-way", sql::ROOT_FILES, None, Some(cursor)),
        ("folder files", sql::CHILD_FILES, Some(folder), None),
        ("root folders", sql::ROOT_FOLDERS, None, None),
        ("subfolders", sql::CHILD_FOLDERS, Some(folder), None),
    ] {
        let sql = format!("{}{sql}", coffer_db::EXPLAIN_PAGES);
        let row = sqlx::query(&sql)
            .bind(parent)
            .bind(after)
            .bind(11i64)
            .bind(org)
            .fetch_one(&mut *tx)
            .await?;
        pages.push((what, coffer_db::pages_read(&row)?));
    }
    // The rows fill hundreds of pages; a page of a listing is an index range of about its size.
    assert!(pages.iter().all(|(_, n)| *n <= 20), "{pages:?}");
    Ok(())
}
