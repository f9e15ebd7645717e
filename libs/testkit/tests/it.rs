//! The testkit's real components do what they claim.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use coffer_testkit::{Postgres, S3};
use sqlx::Connection as _;

#[tokio::test]
async fn postgres_runs_real_sql_with_a_non_superuser_runtime_role() -> anyhow::Result<()> {
    let pg = Postgres::shared().await?;
    let db = pg.create_database("testkit").await?;
    pg.create_role(&format!("{db}_rt"), "runtime-pw").await?;
    pg.execute_as_superuser(
        &db,
        &format!(
            "CREATE TABLE orgs (id uuid PRIMARY KEY, name text NOT NULL);
             CREATE TABLE docs (id serial PRIMARY KEY, org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE);
             ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
             ALTER TABLE docs FORCE ROW LEVEL SECURITY;
             CREATE POLICY tenant ON docs USING (org_id = NULLIF(current_setting('coffer.org_id', true), '')::uuid);
             GRANT SELECT, INSERT ON orgs, docs TO \"{db}_rt\";
             GRANT USAGE ON SEQUENCE docs_id_seq TO \"{db}_rt\";
             INSERT INTO orgs VALUES ('00000000-0000-0000-0000-00000000000a', 'a'), ('00000000-0000-0000-0000-00000000000b', 'b');
             INSERT INTO docs (org_id) VALUES ('00000000-0000-0000-0000-00000000000a'), ('00000000-0000-0000-0000-00000000000b');"
        ),
    )
    .await?;

    let mut rt =
        sqlx::PgConnection::connect(&pg.url(&format!("{db}_rt"), "runtime-pw", &db)).await?;
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut rt)
            .await?;
    assert!(!superuser && !bypass);
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('orgs','docs')",
    )
    .fetch_one(&mut rt)
    .await?;
    assert_eq!(tables, 2);
    // No tenant set: no rows, not everyone's.
    let unset: i64 = sqlx::query_scalar("SELECT count(*) FROM docs")
        .fetch_one(&mut rt)
        .await?;
    assert_eq!(unset, 0);
    let mut tx = rt.begin().await?;
    sqlx::query("SELECT set_config('coffer.org_id', '00000000-0000-0000-0000-00000000000a', true)")
        .execute(&mut *tx)
        .await?;
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM docs")
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(seen, 1);
    tx.commit().await?;
    // A wrong password is refused: the cluster really authenticates.
    assert!(
        sqlx::PgConnection::connect(&pg.url(&format!("{db}_rt"), "wrong", &db))
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn a_stopped_cluster_is_gone() -> anyhow::Result<()> {
    let mut pg = Postgres::start().await?;
    let url = pg.superuser_url("postgres");
    sqlx::PgConnection::connect(&url).await?.close().await?;
    pg.stop();
    assert!(sqlx::PgConnection::connect(&url).await.is_err());
    Ok(())
}

#[tokio::test]
async fn s3_speaks_sigv4_and_enforces_the_sse_policy() -> anyhow::Result<()> {
    let s3 = S3::start().await?;
    let client = s3.client();
    client.create_bucket().bucket("vault").send().await?;

    // Through aws-sdk-s3: SSE is required, and reported back.
    let refused = client
        .put_object()
        .bucket("vault")
        .key("org/plain")
        .body(ByteStream::from_static(b"no sse"))
        .send()
        .await;
    assert!(refused.is_err(), "a put without SSE must be refused");
    client
        .put_object()
        .bucket("vault")
        .key("org/obj")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from_static(b"hello vault"))
        .send()
        .await?;
    let head = client
        .head_object()
        .bucket("vault")
        .key("org/obj")
        .send()
        .await?;
    assert_eq!(head.content_length(), Some(11));
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );

    // Wrong credentials are refused.
    let mut bad = s3.credentials().clone();
    bad.secret_key.push('x');
    let impostor = aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .credentials_provider(aws_credential_types::Credentials::new(
                &bad.access_key,
                &bad.secret_key,
                None,
                None,
                "bad",
            ))
            .build(),
    );
    assert!(
        impostor
            .head_object()
            .bucket("vault")
            .key("org/obj")
            .send()
            .await
            .is_err()
    );

    // A presigned PUT, then a presigned GET, through a plain HTTP client.
    let body = b"presigned bytes".to_vec();
    let put = client
        .put_object()
        .bucket("vault")
        .key("org/presigned")
        .content_type("text/plain")
        .content_length(body.len() as i64)
        .server_side_encryption(ServerSideEncryption::Aes256)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300))?)
        .await?;
    let http = reqwest::Client::new();
    let send = |url: String, sse: bool| {
        let mut req = http
            .put(url)
            .header("content-type", "text/plain")
            .body(body.clone());
        if sse {
            req = req.header("x-amz-server-side-encryption", "AES256");
        }
        req.send()
    };
    // Without the signed SSE header the store refuses it.
    let res = send(put.uri().to_owned(), false).await?;
    assert_eq!(res.status(), 403, "missing SSE header must be refused");
    // One character of the signature changed: refused.
    let mut edited = put.uri().to_owned();
    let last = edited.pop().unwrap();
    edited.push(if last == '0' { '1' } else { '0' });
    assert_eq!(send(edited, true).await?.status(), 403);
    // As signed: accepted.
    let res = send(put.uri().to_owned(), true).await?;
    assert!(res.status().is_success(), "{}", res.text().await?);

    let get = client
        .get_object()
        .bucket("vault")
        .key("org/presigned")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300))?)
        .await?;
    let res = http.get(get.uri()).send().await?;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("x-amz-server-side-encryption")
            .map(|v| v.as_bytes()),
        Some(&b"AES256"[..])
    );
    assert_eq!(res.bytes().await?.as_ref(), body.as_slice());

    // Unsigned access to the same object is refused.
    let unsigned = format!("{}/vault/org/presigned", s3.endpoint());
    assert_eq!(http.get(unsigned).send().await?.status(), 403);
    Ok(())
}

#[tokio::test]
async fn an_expired_presigned_url_is_refused() -> anyhow::Result<()> {
    let s3 = S3::start().await?;
    let client = s3.client();
    client.create_bucket().bucket("vault").send().await?;
    client
        .put_object()
        .bucket("vault")
        .key("k")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    let get = client
        .get_object()
        .bucket("vault")
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(1))?)
        .await?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = reqwest::get(get.uri()).await?;
    assert_eq!(res.status(), 403);
    Ok(())
}
