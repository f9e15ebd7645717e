//! The storage-signer over real mTLS, signing for the embedded S3 server (SigV4): what the store
//! accepts and refuses with its presigned requests, and whom the signer refuses.

use std::sync::Arc;
use std::time::Duration;

use coffer_config::Validate as _;
use coffer_mesh::{CallContext, CertStore, MeshChannel, MeshClient, RunningServer, TlsFiles};
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use coffer_proto::v1::{self as pb};
use coffer_storage_signer::SignerConfig;
use coffer_testkit::{DevCa, ObjectStore, S3};
use coffer_token::{Audience, MasterKeyRing, Minter, Role, Scopes, Subject};
use sha2::Digest as _;
use uuid::Uuid;

struct Fixture {
    dir: tempfile::TempDir,
    ca: DevCa,
    ring: MasterKeyRing,
    s3: Box<dyn ObjectStore>,
    server: RunningServer,
}

/// The S3 implementation a test runs against: each test that says what a store does runs on
/// both (the `embedded` and `seaweedfs` modules at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    /// The embedded server (s3s-fs and Coffer's wrapper): SSE bucket policy, conditional
    /// writes, versions, as DESIGN.md asks of the production store.
    Embedded,
    /// SeaweedFS 4.48's own S3 gateway, as users run it.
    Seaweed,
}

impl Store {
    async fn start(self) -> anyhow::Result<Box<dyn ObjectStore>> {
        Ok(match self {
            Store::Embedded => Box::new(S3::start().await?),
            Store::Seaweed => Box::new(coffer_testkit::SeaweedFs::start("coffer").await?),
        })
    }
}

impl Fixture {
    async fn start(config: SignerConfig, store: Store) -> anyhow::Result<Self> {
        Self::start_on(config, store.start().await?).await
    }

    async fn start_on(config: SignerConfig, s3: Box<dyn ObjectStore>) -> anyhow::Result<Self> {
        coffer_telemetry::init_for_tests();
        let dir = tempfile::tempdir()?;
        let ca = DevCa::new("signer test CA")?;
        let ring = MasterKeyRing::generate("k1");
        let server =
            coffer_storage_signer::testing::start(&ca, dir.path(), &ring, &*s3, "coffer", config)
                .await?;
        Ok(Fixture {
            dir,
            ca,
            ring,
            s3,
            server,
        })
    }

    fn client_as(&self, service: &str) -> anyhow::Result<StorageSignerClient<MeshChannel>> {
        let dir = self
            .ca
            .write_service_dir(&self.dir.path().join(format!("as-{service}")), service)?;
        let client = MeshClient::new(CertStore::load(TlsFiles::in_dir(&dir))?)?;
        Ok(StorageSignerClient::new(client.channel(
            "storage-signer",
            &self.server.addr().to_string(),
        )?))
    }

    fn token(&self, org: Uuid) -> String {
        Minter::new(&self.ring)
            .mint(
                &Subject {
                    user_id: Uuid::new_v4(),
                    org_id: org,
                    role: Role::Member,
                    scopes: Scopes::all(),
                    credential: coffer_token::Credential::Session,
                    request_id: "req-test".into(),
                },
                &[Audience::StorageSigner],
                coffer_token::unix_now(),
                60,
            )
            .unwrap()
    }
}

async fn as_user<F: Future>(token: &str, f: F) -> F::Output {
    CallContext {
        token: Some(Arc::from(token)),
        request_id: "req-test".into(),
        deadline: None,
    }
    .scope(f)
    .await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sends a presigned PUT with `body` and the signed headers, each possibly changed by `edit`.
async fn put(
    req: &pb::PresignedRequest,
    url: &str,
    body: Vec<u8>,
    edit: impl Fn(&str, &str) -> Option<String>,
) -> reqwest::StatusCode {
    let mut r = http().put(url);
    for (k, v) in &req.headers {
        if k == "content-length" {
            continue; // reqwest sets it from the body
        }
        if let Some(v) = edit(k, v) {
            r = r.header(k, v);
        }
    }
    r.body(body).send().await.unwrap().status()
}

fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn presigned_put_is_refused_unless_every_signed_property_holds(
    store: Store,
) -> anyhow::Result<()> {
    let f = Fixture::start(SignerConfig::default(), store).await?;
    let mut signer = f.client_as("metadata")?;
    let org = Uuid::new_v4();
    let token = f.token(org);
    let body = b"%PDF-1.7 contract of employment".to_vec();
    let sign = |key: String, sha256: String| {
        let mut signer = signer.clone();
        let body_len = body.len() as u64;
        let token = token.clone();
        async move {
            as_user(
                &token,
                signer.presign_put(pb::PresignPutRequest {
                    key,
                    size: body_len,
                    content_type: "application/pdf".into(),
                    sha256,
                    expires_in_seconds: 0,
                }),
            )
            .await
            .unwrap()
            .into_inner()
        }
    };

    let key = format!("{org}/{}", Uuid::new_v4());
    let req = sign(key.clone(), String::new()).await;
    assert_eq!(req.method, "PUT");
    for h in [
        "content-type",
        "x-amz-server-side-encryption",
        "content-length",
    ] {
        assert!(
            req.headers.contains_key(h),
            "{h} not signed: {:?}",
            req.headers
        );
    }
    let signed_headers = req
        .url
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
        .unwrap()
        .to_owned();
    for h in [
        "content-length",
        "content-type",
        "if-none-match",
        "x-amz-server-side-encryption",
    ] {
        assert!(signed_headers.contains(h), "{h} not in {signed_headers}");
    }
    // Expiry: five minutes by default, and never more than fifteen.
    let left = req.expires_at.unwrap().seconds - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((295..=301).contains(&left), "{left}");

    // Refusals: no SSE header, another content type, one byte more, a changed signature.
    let no_sse = put(&req, &req.url, body.clone(), |k, v| {
        (k != "x-amz-server-side-encryption").then(|| v.to_owned())
    })
    .await;
    assert!(no_sse.is_client_error(), "no SSE: {no_sse}");
    let other_type = put(&req, &req.url, body.clone(), |k, v| {
        Some(if k == "content-type" {
            "text/html".into()
        } else {
            v.to_owned()
        })
    })
    .await;
    assert!(other_type.is_client_error(), "content type: {other_type}");
    let mut longer = body.clone();
    longer.push(b'!');
    let longer = put(&req, &req.url, longer, |_, v| Some(v.to_owned())).await;
    assert!(longer.is_client_error(), "longer body: {longer}");
    let tampered = {
        let at = req.url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
        let mut url = req.url.clone().into_bytes();
        url[at] = if url[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(url).unwrap()
    };
    let tampered = put(&req, &tampered, body.clone(), |_, v| Some(v.to_owned())).await;
    assert!(tampered.is_client_error(), "tampered signature: {tampered}");
    // None of them stored anything.
    let mut head = signer.clone();
    let info = as_user(&token, head.head_object(pb::ObjectRef { key: key.clone() }))
        .await?
        .into_inner();
    assert!(!info.exists);

    // The exact request succeeds, and the object is stored with SSE AES256.
    let ok = put(&req, &req.url, body.clone(), |_, v| Some(v.to_owned())).await;
    assert!(ok.is_success(), "{ok}");
    let info = as_user(&token, head.head_object(pb::ObjectRef { key: key.clone() }))
        .await?
        .into_inner();
    assert!(info.exists);
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.server_side_encryption, "AES256");

    // With a checksum: the header is signed, a body with another hash is refused.
    let key2 = format!("{org}/{}", Uuid::new_v4());
    let req = sign(key2.clone(), sha256_hex(&body)).await;
    assert!(
        req.headers.contains_key("x-amz-checksum-sha256"),
        "{:?}",
        req.headers
    );
    let mut other = body.clone();
    other[0] = b'#';
    let bad = put(&req, &req.url, other, |_, v| Some(v.to_owned())).await;
    assert!(bad.is_client_error(), "other content, same length: {bad}");
    let dropped = put(&req, &req.url, body.clone(), |k, v| {
        (k != "x-amz-checksum-sha256").then(|| v.to_owned())
    })
    .await;
    assert!(
        dropped.is_client_error(),
        "checksum header dropped: {dropped}"
    );
    let ok = put(&req, &req.url, body.clone(), |_, v| Some(v.to_owned())).await;
    assert!(ok.is_success(), "{ok}");
    let info = as_user(&token, head.head_object(pb::ObjectRef { key: key2 }))
        .await?
        .into_inner();
    assert_eq!(info.sha256, sha256_hex(&body));

    // Delete, then the object is gone; deleting again succeeds.
    for _ in 0..2 {
        as_user(
            &token,
            signer.delete_object(pb::ObjectRef { key: key.clone() }),
        )
        .await?;
    }
    let info = as_user(&token, head.head_object(pb::ObjectRef { key }))
        .await?
        .into_inner();
    assert!(!info.exists);
    drop(f.s3);
    Ok(())
}

async fn presigned_urls_expire(store: Store) -> anyhow::Result<()> {
    let f = Fixture::start(SignerConfig::default(), store).await?;
    let mut signer = f.client_as("scan")?;
    let org = Uuid::new_v4();
    let token = f.token(org);
    let req = as_user(
        &token,
        signer.presign_put(pb::PresignPutRequest {
            key: format!("{org}/{}", Uuid::new_v4()),
            size: 3,
            content_type: "text/plain".into(),
            sha256: String::new(),
            expires_in_seconds: 1,
        }),
    )
    .await?
    .into_inner();
    // SigV4 dates have one-second resolution: wait past the second after expiry.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let status = put(&req, &req.url, b"abc".to_vec(), |_, v| Some(v.to_owned())).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);

    // Asking for more than the maximum gets the maximum.
    let req = as_user(
        &token,
        signer.presign_get(pb::PresignGetRequest {
            key: format!("{org}/{}", Uuid::new_v4()),
            expires_in_seconds: 86_400,
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    let left = req.expires_at.unwrap().seconds - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((895..=901).contains(&left), "{left}");
    Ok(())
}

async fn presigned_get_names_the_file_and_returns_the_bytes(store: Store) -> anyhow::Result<()> {
    let f = Fixture::start(SignerConfig::default(), store).await?;
    let mut signer = f.client_as("metadata")?;
    let org = Uuid::new_v4();
    let token = f.token(org);
    let key = format!("{org}/{}", Uuid::new_v4());
    let body = "Grüße, payroll 2026".as_bytes().to_vec();
    let up = as_user(
        &token,
        signer.presign_put(pb::PresignPutRequest {
            key: key.clone(),
            size: body.len() as u64,
            content_type: "text/plain".into(),
            sha256: String::new(),
            expires_in_seconds: 0,
        }),
    )
    .await?
    .into_inner();
    assert!(
        put(&up, &up.url, body.clone(), |_, v| Some(v.to_owned()))
            .await
            .is_success()
    );
    let down = as_user(
        &token,
        signer.presign_get(pb::PresignGetRequest {
            key,
            file_name: "Gehälter März.txt".into(),
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    let res = http().get(&down.url).send().await?;
    assert!(res.status().is_success(), "{}", res.status());
    let disposition = res.headers()["content-disposition"].to_str()?.to_owned();
    assert_eq!(
        disposition,
        "attachment; filename=\"Geh_lter M_rz.txt\"; filename*=UTF-8''Geh%C3%A4lter%20M%C3%A4rz.txt"
    );
    assert_eq!(res.bytes().await?.to_vec(), body);
    // Both signings were counted by operation and outcome, with their latency; no key, name or
    // org is in any label.
    let metrics = coffer_telemetry::metrics().encode();
    for operation in ["presign_put", "presign_get"] {
        let series =
            format!("coffer_signer_store_calls_total{{operation=\"{operation}\",outcome=\"ok\"}}");
        let n = coffer_telemetry::metrics().sample(&series);
        assert!(n.is_some_and(|n| n >= 1.0), "{series}: {n:?}");
        assert!(metrics.contains(&format!(
            "coffer_signer_store_call_duration_seconds_count{{operation=\"{operation}\"}}"
        )));
    }
    assert!(!metrics.contains(&org.to_string()) && !metrics.contains("Geh"));
    Ok(())
}

#[tokio::test]
async fn the_signer_refuses_other_orgs_keys_other_callers_and_no_token() -> anyhow::Result<()> {
    let f = Fixture::start(SignerConfig::default(), Store::Embedded).await?;
    let mut signer = f.client_as("metadata")?;
    let org_a = Uuid::new_v4();
    let org_b = Uuid::new_v4();
    let token_b = f.token(org_b);
    let key_a = format!("{org_a}/{}", Uuid::new_v4());

    // B's token against A's key: refused before anything is signed, for every RPC.
    let mut codes = Vec::new();
    codes.push(
        as_user(
            &token_b,
            signer.presign_put(pb::PresignPutRequest {
                key: key_a.clone(),
                size: 1,
                content_type: "text/plain".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err()
        .code(),
    );
    codes.push(
        as_user(
            &token_b,
            signer.presign_get(pb::PresignGetRequest {
                key: key_a.clone(),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err()
        .code(),
    );
    codes.push(
        as_user(
            &token_b,
            signer.head_object(pb::ObjectRef { key: key_a.clone() }),
        )
        .await
        .unwrap_err()
        .code(),
    );
    codes.push(
        as_user(
            &token_b,
            signer.delete_object(pb::ObjectRef { key: key_a.clone() }),
        )
        .await
        .unwrap_err()
        .code(),
    );
    assert!(
        codes.iter().all(|c| *c == tonic::Code::PermissionDenied),
        "{codes:?}"
    );

    // Keys that are not <org>/<uuid>: invalid, whoever asks.
    for key in [
        format!("{org_b}/../{org_a}/x"),
        format!("{org_b}/report.pdf"),
        format!("{org_b}"),
        String::new(),
    ] {
        let err = as_user(
            &token_b,
            signer.head_object(pb::ObjectRef { key: key.clone() }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{key}");
    }

    // No token: refused.
    let err = signer
        .head_object(pb::ObjectRef { key: key_a.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // The gateway, auth or audit may not call the signer at all.
    for caller in ["gateway", "auth", "audit"] {
        let mut other = f.client_as(caller)?;
        let err = as_user(
            &token_b,
            other.head_object(pb::ObjectRef {
                key: format!("{org_b}/{}", Uuid::new_v4()),
            }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{caller}");
    }
    Ok(())
}

#[test]
fn expiry_settings_above_fifteen_minutes_are_refused() {
    let too_long = SignerConfig {
        put_expiry_secs: 901,
        ..SignerConfig::default()
    };
    assert!(too_long.validate().is_err());
    let max_too_long = SignerConfig {
        max_expiry_secs: 3600,
        ..SignerConfig::default()
    };
    assert!(max_too_long.validate().is_err());
    assert!(SignerConfig::default().validate().is_ok());
}

/// Signs a PUT of `body` to a new key of `org` and sends it, with `extra` unsigned headers.
async fn upload(
    f: &Fixture,
    org: Uuid,
    body: &[u8],
    extra: &[(&str, &str)],
) -> anyhow::Result<(String, pb::PresignedRequest)> {
    let key = format!("{org}/{}", Uuid::new_v4());
    let up = as_user(
        &f.token(org),
        f.client_as("metadata")?.presign_put(pb::PresignPutRequest {
            key: key.clone(),
            size: body.len() as u64,
            content_type: "text/plain".into(),
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    let mut r = http().put(&up.url);
    for (k, v) in &up.headers {
        if k != "content-length" {
            r = r.header(k, v);
        }
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let status = r.body(body.to_vec()).send().await?.status();
    anyhow::ensure!(status.is_success(), "PUT refused: {status}");
    Ok((key, up))
}

/// Overwrites `key` with the store's own credentials, as someone holding them could.
async fn overwrite(f: &Fixture, key: &str, body: &[u8]) -> anyhow::Result<()> {
    f.s3.client()
        .put_object()
        .bucket("coffer")
        .key(key)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .body(body.to_vec().into())
        .send()
        .await?;
    Ok(())
}

async fn a_put_url_writes_once_and_reads_are_pinned_to_the_object_checked(
    store: Store,
) -> anyhow::Result<()> {
    let f = Fixture::start(SignerConfig::default(), store).await?;
    let org = Uuid::new_v4();
    let token = f.token(org);
    let mut signer = f.client_as("scan")?;
    let (key, up) = upload(&f, org, b"harmless", &[]).await?;

    // The same URL cannot write again, even with bytes of the same size.
    let again = put(&up, &up.url, b"EICAR!!!".to_vec(), |_, v| {
        Some(v.to_owned())
    })
    .await;
    assert_eq!(again, reqwest::StatusCode::PRECONDITION_FAILED);
    let info = as_user(
        &token,
        signer.head_object(pb::ObjectRef { key: key.clone() }),
    )
    .await?
    .into_inner();
    assert_eq!(info.content_type, "text/plain");
    assert!(
        info.foreign_headers.is_empty(),
        "{:?}",
        info.foreign_headers
    );
    assert_eq!(
        info.etag.len(),
        32,
        "the MD5 ETag, without quotes: {}",
        info.etag
    );
    assert!(!info.version_id.is_empty());

    // Pinned reads serve the checked object: by version, and by a signed If-Match the reader sends.
    let pinned = as_user(
        &token,
        signer.presign_get(pb::PresignGetRequest {
            key: key.clone(),
            version_id: info.version_id.clone(),
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    assert_eq!(
        http()
            .get(&pinned.url)
            .send()
            .await?
            .bytes()
            .await?
            .as_ref(),
        b"harmless"
    );
    let matched = as_user(
        &token,
        signer.presign_get(pb::PresignGetRequest {
            key: key.clone(),
            etag: info.etag.clone(),
            require_if_match: true,
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    assert_eq!(matched.headers["if-match"], format!("\"{}\"", info.etag));
    let get = |req: &pb::PresignedRequest, with_headers: bool| {
        let mut r = http().get(&req.url);
        if with_headers {
            for (k, v) in &req.headers {
                r = r.header(k, v);
            }
        }
        r.send()
    };
    assert!(get(&matched, true).await?.status().is_success());
    // The header is signed: a reader that drops it is refused.
    assert!(get(&matched, false).await?.status().is_client_error());

    // Replaced behind the mesh's back with the store's own credentials: the version-pinned URL
    // still serves the checked bytes (the old version), the If-Match one refuses.
    overwrite(&f, &key, b"EICAR!!!").await?;
    let res = get(&pinned, false).await?;
    assert!(res.status().is_success());
    assert_eq!(res.bytes().await?.as_ref(), b"harmless");
    assert_eq!(
        get(&matched, true).await?.status(),
        reqwest::StatusCode::PRECONDITION_FAILED
    );

    // Deleting the object deletes every version of it: nothing of it is left in the store.
    let versions = |f: &Fixture, key: String| {
        let client = f.s3.client();
        async move {
            let listed = client
                .list_object_versions()
                .bucket("coffer")
                .prefix(key)
                .send()
                .await?;
            anyhow::Ok(listed.versions().len() + listed.delete_markers().len())
        }
    };
    assert_eq!(
        versions(&f, key.clone()).await?,
        2,
        "current and noncurrent"
    );
    as_user(
        &token,
        signer.delete_object(pb::ObjectRef { key: key.clone() }),
    )
    .await?;
    assert_eq!(versions(&f, key.clone()).await?, 0);
    assert_eq!(
        get(&pinned, false).await?.status(),
        reqwest::StatusCode::NOT_FOUND
    );
    Ok(())
}

#[tokio::test]
async fn without_versions_a_changed_object_gets_no_url() -> anyhow::Result<()> {
    let f = Fixture::start_on(
        SignerConfig::default(),
        Box::new(S3::start_unversioned().await?),
    )
    .await?;
    let org = Uuid::new_v4();
    let token = f.token(org);
    let mut signer = f.client_as("metadata")?;
    let (key, _) = upload(&f, org, b"harmless", &[]).await?;
    let info = as_user(
        &token,
        signer.head_object(pb::ObjectRef { key: key.clone() }),
    )
    .await?
    .into_inner();
    assert_eq!(
        info.version_id, "",
        "an unversioned bucket has no version ids"
    );
    let ask = || pb::PresignGetRequest {
        key: key.clone(),
        etag: info.etag.clone(),
        ..Default::default()
    };
    let url = as_user(&token, signer.presign_get(ask()))
        .await?
        .into_inner()
        .url;
    assert_eq!(
        http().get(&url).send().await?.bytes().await?.as_ref(),
        b"harmless"
    );
    overwrite(&f, &key, b"EICAR!!!").await?;
    let err = as_user(&token, signer.presign_get(ask()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    Ok(())
}

async fn unsigned_headers_are_reported_and_never_reach_a_reader(
    store: Store,
) -> anyhow::Result<()> {
    let f = Fixture::start(SignerConfig::default(), store).await?;
    let org = Uuid::new_v4();
    let token = f.token(org);
    let mut signer = f.client_as("metadata")?;
    let mut extra = vec![
        ("content-encoding", "gzip"),
        ("content-disposition", "inline"),
        ("cache-control", "public, max-age=31536000"),
    ];
    let mut foreign = vec!["content-disposition", "content-encoding"];
    match store {
        // The embedded server, like S3, stores unsigned user metadata sent with a presigned PUT.
        Store::Embedded => {
            extra.push(("x-amz-meta-origin", "elsewhere"));
            foreign.push("x-amz-meta-origin");
        }
        // SeaweedFS refuses an x-amz-* header the URL does not sign: no foreign metadata at all.
        Store::Seaweed => {
            let refused = upload(&f, org, b"x", &[("x-amz-meta-origin", "elsewhere")]).await;
            assert!(
                refused.is_err_and(|e| e.to_string().contains("403")),
                "SeaweedFS stores no unsigned x-amz-meta-*"
            );
        }
    }
    let (key, _) = upload(&f, org, b"\x1f\x8b not really gzip", &extra).await?;
    let info = as_user(
        &token,
        signer.head_object(pb::ObjectRef { key: key.clone() }),
    )
    .await?
    .into_inner();
    assert_eq!(
        info.foreign_headers, foreign,
        "a stored cache-control is overridden on every GET, so it is not refused"
    );
    // A GET the signer signs overrides what the object says.
    let down = as_user(
        &token,
        signer.presign_get(pb::PresignGetRequest {
            key,
            file_name: "notes.txt".into(),
            content_type: "text/plain".into(),
            version_id: info.version_id,
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    let res = http().get(&down.url).send().await?;
    assert!(res.status().is_success());
    assert_eq!(res.headers()["content-encoding"], "identity");
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(res.headers()["cache-control"], "private, no-store");
    assert!(
        res.headers()["content-disposition"]
            .to_str()?
            .starts_with("attachment;")
    );
    Ok(())
}

/// A large file in parts: the upload is created under the caller's org with SSE, each part's URL
/// signs its exact length, ListParts shows what the store holds (to resume), completion needs
/// every part's ETag and writes the key once; an abort frees the parts. Another org, or scan,
/// gets nothing.
async fn a_multipart_upload_goes_in_signed_parts_and_resumes_from_the_store(
    store: Store,
) -> anyhow::Result<()> {
    let f = Fixture::start(SignerConfig::default(), store).await?;
    let org = Uuid::new_v4();
    let token = f.token(org);
    let mut signer = f.client_as("metadata")?;
    let key = format!("{org}/{}", Uuid::new_v4());
    let upload_id = as_user(
        &token,
        signer.create_multipart_upload(pb::CreateMultipartUploadRequest {
            key: key.clone(),
            content_type: "application/octet-stream".into(),
        }),
    )
    .await?
    .into_inner()
    .upload_id;
    assert!(!upload_id.is_empty());

    // Three parts: 5 MiB, 5 MiB, 3 bytes (S3 wants 5 MiB but for the last).
    let mib5 = 5 * 1024 * 1024;
    let bodies: Vec<Vec<u8>> = vec![vec![b'a'; mib5], vec![b'b'; mib5], b"end".to_vec()];
    let signed = as_user(
        &token,
        signer.presign_upload_parts(pb::PresignUploadPartsRequest {
            key: key.clone(),
            upload_id: upload_id.clone(),
            parts: bodies
                .iter()
                .enumerate()
                .map(|(i, b)| pb::PartSpec {
                    number: i as u32 + 1,
                    size: b.len() as u64,
                })
                .collect(),
            expires_in_seconds: 0,
        }),
    )
    .await?
    .into_inner()
    .parts;
    assert_eq!(signed.len(), 3);
    let request = |n: usize| signed[n].request.clone().unwrap();
    // A part of another length than signed is refused by the store.
    assert_eq!(
        put(&request(2), &request(2).url, b"longer".to_vec(), |_, v| {
            Some(v.into())
        })
        .await,
        reqwest::StatusCode::FORBIDDEN
    );
    // Without its signed length (sent chunked, no Content-Length): refused too.
    let chunked = http()
        .put(&request(2).url)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter([
            Ok::<_, std::io::Error>(bodies[2].clone()),
        ])))
        .send()
        .await?
        .status();
    assert!(
        chunked.is_client_error(),
        "a part without its signed length: {chunked}"
    );
    // Parts 1 and 3 now; the store lists them (a client resumes from this).
    for n in [0, 2] {
        let status = put(&request(n), &request(n).url, bodies[n].clone(), |_, v| {
            Some(v.into())
        })
        .await;
        assert!(status.is_success(), "part {}: {status}", n + 1);
    }
    let listed = |signer: &mut StorageSignerClient<MeshChannel>| {
        let (key, upload_id, token) = (key.clone(), upload_id.clone(), token.clone());
        let mut signer = signer.clone();
        async move {
            anyhow::Ok(
                as_user(
                    &token,
                    signer.list_parts(pb::MultipartRef { key, upload_id }),
                )
                .await?
                .into_inner()
                .parts,
            )
        }
    };
    let held = listed(&mut signer).await?;
    assert_eq!(
        held.iter().map(|p| (p.number, p.size)).collect::<Vec<_>>(),
        [(1, mib5 as u64), (3, 3)]
    );
    let completer = signer.clone();
    let complete = |parts: Vec<pb::CompletedPart>| {
        let mut signer = completer.clone();
        let (key, upload_id, token) = (key.clone(), upload_id.clone(), token.clone());
        async move {
            as_user(
                &token,
                signer.complete_multipart_upload(pb::CompleteMultipartUploadRequest {
                    key,
                    upload_id,
                    parts,
                }),
            )
            .await
        }
    };
    // (S3 would complete from parts 1 and 3 alone: which parts make the file is the caller's
    // to check, by the size it declared.) A part named with another ETag is refused.
    let forged = vec![
        pb::CompletedPart {
            number: 1,
            etag: held[0].etag.clone(),
        },
        pb::CompletedPart {
            number: 3,
            etag: "0123456789abcdef0123456789abcdef".into(),
        },
    ];
    let err = complete(forged).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    // Part 2, then completion with every part: the object is the three parts, encrypted.
    let status = put(&request(1), &request(1).url, bodies[1].clone(), |_, v| {
        Some(v.into())
    })
    .await;
    assert!(status.is_success());
    let all: Vec<_> = listed(&mut signer)
        .await?
        .iter()
        .map(|p| pb::CompletedPart {
            number: p.number,
            etag: p.etag.clone(),
        })
        .collect();
    assert_eq!(all.len(), 3);
    let info = complete(all.clone()).await?.into_inner();
    assert!(info.exists);
    assert_eq!(info.size, (2 * mib5 + 3) as u64);
    assert_eq!(info.server_side_encryption, "AES256");
    let stored =
        f.s3.client()
            .get_object()
            .bucket("coffer")
            .key(&key)
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes();
    assert_eq!(stored.to_vec(), bodies.concat());

    // A second upload to the same key cannot complete over the object: the key is written once.
    let again = as_user(
        &token,
        signer.create_multipart_upload(pb::CreateMultipartUploadRequest {
            key: key.clone(),
            content_type: "application/octet-stream".into(),
        }),
    )
    .await?
    .into_inner()
    .upload_id;
    let one = as_user(
        &token,
        signer.presign_upload_parts(pb::PresignUploadPartsRequest {
            key: key.clone(),
            upload_id: again.clone(),
            parts: vec![pb::PartSpec { number: 1, size: 5 }],
            expires_in_seconds: 0,
        }),
    )
    .await?
    .into_inner()
    .parts
    .remove(0)
    .request
    .unwrap();
    assert!(
        put(&one, &one.url, b"evil!".to_vec(), |_, v| Some(v.into()))
            .await
            .is_success()
    );
    let etag = as_user(
        &token,
        signer.list_parts(pb::MultipartRef {
            key: key.clone(),
            upload_id: again.clone(),
        }),
    )
    .await?
    .into_inner()
    .parts[0]
        .etag
        .clone();
    let err = as_user(
        &token,
        signer.complete_multipart_upload(pb::CompleteMultipartUploadRequest {
            key: key.clone(),
            upload_id: again.clone(),
            parts: vec![pb::CompletedPart { number: 1, etag }],
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    // Aborted, its parts are gone (and aborting again is fine).
    for _ in 0..2 {
        as_user(
            &token,
            signer.abort_multipart_upload(pb::MultipartRef {
                key: key.clone(),
                upload_id: again.clone(),
            }),
        )
        .await?;
    }
    let gone = as_user(
        &token,
        signer.list_parts(pb::MultipartRef {
            key: key.clone(),
            upload_id: again.clone(),
        }),
    )
    .await;
    assert!(gone.is_err_and(|e| e.code() == tonic::Code::FailedPrecondition));
    // And the store holds no upload in parts under the key any more.
    let open =
        f.s3.client()
            .list_multipart_uploads()
            .bucket("coffer")
            .prefix(&key)
            .send()
            .await?;
    assert!(open.uploads().is_empty(), "{:?}", open.uploads());

    // Bad asks: no parts, too many, number 0 or above 10,000, an empty part, parts out of order.
    for parts in [
        vec![],
        (1..=101)
            .map(|n| pb::PartSpec { number: n, size: 1 })
            .collect(),
        vec![pb::PartSpec { number: 0, size: 1 }],
        vec![pb::PartSpec {
            number: 10_001,
            size: 1,
        }],
        vec![pb::PartSpec { number: 1, size: 0 }],
    ] {
        let err = as_user(
            &token,
            signer.presign_upload_parts(pb::PresignUploadPartsRequest {
                key: key.clone(),
                upload_id: upload_id.clone(),
                parts,
                expires_in_seconds: 0,
            }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
    let mut backwards = all.clone();
    backwards.reverse();
    assert_eq!(
        complete(backwards).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );

    // Another org's token, on every multipart RPC: refused before the store is asked.
    let other = f.token(Uuid::new_v4());
    let r = pb::MultipartRef {
        key: key.clone(),
        upload_id: upload_id.clone(),
    };
    let codes = [
        as_user(
            &other,
            signer.create_multipart_upload(pb::CreateMultipartUploadRequest {
                key: key.clone(),
                content_type: "text/plain".into(),
            }),
        )
        .await
        .map(|_| ())
        .unwrap_err()
        .code(),
        as_user(
            &other,
            signer.presign_upload_parts(pb::PresignUploadPartsRequest {
                key: key.clone(),
                upload_id: upload_id.clone(),
                parts: vec![pb::PartSpec { number: 1, size: 1 }],
                expires_in_seconds: 0,
            }),
        )
        .await
        .map(|_| ())
        .unwrap_err()
        .code(),
        as_user(&other, signer.list_parts(r.clone()))
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
        as_user(
            &other,
            signer.complete_multipart_upload(pb::CompleteMultipartUploadRequest {
                key: key.clone(),
                upload_id: upload_id.clone(),
                parts: vec![pb::CompletedPart {
                    number: 1,
                    etag: "x".into(),
                }],
            }),
        )
        .await
        .map(|_| ())
        .unwrap_err()
        .code(),
        as_user(&other, signer.abort_multipart_upload(r.clone()))
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
    ];
    assert!(
        codes.iter().all(|c| *c == tonic::Code::PermissionDenied),
        "{codes:?}"
    );
    // Scan reads objects; it never writes them: no multipart RPC for it.
    let mut scan = f.client_as("scan")?;
    let err = as_user(&token, scan.list_parts(r)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    Ok(())
}

/// Runs each test on both stores.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $name() -> anyhow::Result<()> {
                super::$name(super::Store::Embedded).await
            })*
        }
        mod seaweedfs {
            $(#[tokio::test]
            async fn $name() -> anyhow::Result<()> {
                super::$name(super::Store::Seaweed).await
            })*
        }
    };
}

on_both_stores!(
    presigned_put_is_refused_unless_every_signed_property_holds,
    presigned_urls_expire,
    presigned_get_names_the_file_and_returns_the_bytes,
    a_put_url_writes_once_and_reads_are_pinned_to_the_object_checked,
    unsigned_headers_are_reported_and_never_reach_a_reader,
    a_multipart_upload_goes_in_signed_parts_and_resumes_from_the_store,
);

/// What SeaweedFS lacks, said by a test: the design enforces SSE with the bucket policy of
/// `k8s/object-store/bucket-policy.json`. SeaweedFS 4.48 applies that policy to PUTs, but it
/// authorises ListParts and AbortMultipartUpload as `s3:PutObject` too, so the same policy also
/// refuses resuming and aborting uploads in parts. On SeaweedFS, SSE is enforced instead by
/// default bucket encryption with a key-encryption key in `security.toml` (`[s3.sse] kek`):
/// what `SeaweedFs::start` configures, and every object is stored encrypted, sent with the
/// header or not.
#[tokio::test]
async fn seaweedfs_enforces_sse_by_default_encryption_as_its_bucket_policy_blocks_parts()
-> anyhow::Result<()> {
    use aws_sdk_s3::types::ServerSideEncryption;
    let store = coffer_testkit::SeaweedFs::start("coffer").await?;
    let s3 = store.client();
    s3.put_object()
        .bucket("coffer")
        .key("plain")
        .body(b"no header".to_vec().into())
        .send()
        .await?;
    let head = s3
        .head_object()
        .bucket("coffer")
        .key("plain")
        .send()
        .await?;
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256),
        "default encryption encrypts what came without the header"
    );

    // The design's SSE statements (the TLS ones need TLS, which this loopback store has not).
    let policy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../k8s/object-store/bucket-policy.json"
    ))?)?;
    let statements: Vec<serde_json::Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Sid"].as_str().unwrap().contains("SSE"))
        .cloned()
        .collect();
    assert_eq!(statements.len(), 2);
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": statements})
        .to_string()
        .replace("coffer-prod", "coffer");
    s3.put_bucket_policy()
        .bucket("coffer")
        .policy(policy)
        .send()
        .await?;
    let refused = s3
        .put_object()
        .bucket("coffer")
        .key("refused")
        .body(b"no header".to_vec().into())
        .send()
        .await;
    let refused = refused.expect_err("the policy refuses a PUT without SSE");
    assert_eq!(
        refused.as_service_error().and_then(|e| e.meta().code()),
        Some("AccessDenied"),
        "{refused:?}"
    );
    let upload = s3
        .create_multipart_upload()
        .bucket("coffer")
        .key("parts")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await?;
    let listed = s3
        .list_parts()
        .bucket("coffer")
        .key("parts")
        .upload_id(upload.upload_id().unwrap())
        .send()
        .await;
    let err = listed.expect_err("SeaweedFS refuses ListParts under the SSE policy");
    assert_eq!(
        err.as_service_error().and_then(|e| e.meta().code()),
        Some("AccessDenied"),
        "{err:?}"
    );
    Ok(())
}
