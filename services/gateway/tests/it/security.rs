//! What a leaked credential, a replaced object, an unsigned header or a guessed password could
//! try, each through the public gateway with a plain HTTP client against the real mesh, and
//! refused.

use reqwest::Method;
use serde_json::{Value, json};

use crate::files::{User, put_with};
use crate::harness::{Harness, PASSWORD, error_code, unthrottled};
use crate::scans::{eicar, scanning, wait};

/// Creates an API key with `scopes` from `u`'s session; returns (id, `Bearer …` header value).
pub async fn api_key(u: &User<'_>, scopes: &[&str]) -> anyhow::Result<(String, String)> {
    let key = u
        .ok(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": format!("key {}", scopes.join(" ")), "scopes": scopes})),
            201,
        )
        .await?;
    Ok((
        key["id"].as_str().unwrap().to_owned(),
        format!("Bearer {}", key["key"].as_str().unwrap()),
    ))
}

/// Sends with an API key only.
pub async fn with_key(
    h: &Harness,
    bearer: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<reqwest::Response> {
    let mut req = h
        .http
        .request(method, h.url(path))
        .header("authorization", bearer);
    if let Some(body) = body {
        req = req.json(&body);
    }
    Ok(req.send().await?)
}

#[tokio::test]
async fn a_leaked_read_key_cannot_manage_the_account_or_the_org() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let owner = User::new(&h, "owner@leak.example").await?;
    let (_, leaked) = api_key(&owner, &["files:read"]).await?;
    let (other_id, _) = api_key(&owner, &["files:write"]).await?;

    let attempts = [
        (
            Method::POST,
            "/v1/api-keys".to_owned(),
            Some(
                json!({"name": "all", "scopes": ["files:read", "files:write", "audit:read", "scans:write"]}),
            ),
        ),
        (Method::GET, "/v1/api-keys".to_owned(), None),
        (Method::DELETE, format!("/v1/api-keys/{other_id}"), None),
        (
            Method::POST,
            "/v1/members".to_owned(),
            Some(json!({"email": "mallory@leak.example", "password": PASSWORD, "role": "admin"})),
        ),
        (Method::POST, "/v1/auth/totp/enroll".to_owned(), None),
        (
            Method::POST,
            "/v1/auth/totp/confirm".to_owned(),
            Some(json!({"code": "123456"})),
        ),
        (Method::DELETE, "/v1/org".to_owned(), None),
        (Method::GET, "/v1/members".to_owned(), None),
        (Method::GET, "/v1/webhook".to_owned(), None),
        (Method::DELETE, "/v1/webhook".to_owned(), None),
        (
            Method::DELETE,
            format!("/v1/members/{}", uuid::Uuid::new_v4()),
            None,
        ),
        (
            Method::POST,
            "/v1/auth/password".to_owned(),
            Some(json!({"current_password": PASSWORD, "new_password": "a brand new passphrase 7"})),
        ),
        (
            Method::PUT,
            "/v1/webhook".to_owned(),
            Some(json!({"url": "https://hooks.attacker.example/x"})),
        ),
    ];
    for (method, path, body) in attempts {
        let res = with_key(&h, &leaked, method.clone(), &path, body).await?;
        assert_eq!(
            error_code(res).await?,
            (403, "session_required".into()),
            "{method} {path}"
        );
    }

    // Nothing happened: both keys are live, no member was added, the owner's next login needs
    // no TOTP code, the org is active.
    let keys = owner.ok(Method::GET, "/v1/api-keys", None, 200).await?;
    assert_eq!(keys["items"].as_array().unwrap().len(), 2);
    let res = h
        .http
        .post(h.url("/v1/auth/login"))
        .json(&json!({"email": "mallory@leak.example", "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(res.status(), 401);
    User::login(&h, "owner@leak.example").await?;
    let me = owner.ok(Method::GET, "/v1/me", None, 200).await?;
    assert_eq!(me["totp_enabled"], false);

    // The key still does what it is for.
    let res = with_key(&h, &leaked, Method::GET, "/v1/folders/root/children", None).await?;
    assert_eq!(res.status(), 200);
    Ok(())
}

#[tokio::test]
async fn the_event_stream_needs_files_read() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let owner = User::new(&h, "events@leak.example").await?;
    let (_, scans_only) = api_key(&owner, &["scans:write"]).await?;
    let res = with_key(&h, &scans_only, Method::GET, "/v1/events", None).await?;
    // The status first: an open stream (200) has no end to read an error body from.
    assert_eq!(res.status(), 403);
    assert_eq!(error_code(res).await?, (403, "permission_denied".into()));
    let (_, reader) = api_key(&owner, &["files:read"]).await?;
    let res = with_key(&h, &reader, Method::GET, "/v1/events", None).await?;
    assert_eq!(res.status(), 200);
    Ok(())
}

#[tokio::test]
async fn the_audit_log_names_the_api_key_an_action_came_through() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let owner = User::new(&h, "actor@leak.example").await?;
    let me = owner.ok(Method::GET, "/v1/me", None, 200).await?;
    let user = me["user_id"].as_str().unwrap();
    let id = owner.available("a.txt", None, b"bytes", "clean").await?;
    let (key_id, key) = api_key(&owner, &["files:read"]).await?;
    let res = with_key(
        &h,
        &key,
        Method::GET,
        &format!("/v1/files/{id}/download"),
        None,
    )
    .await?;
    assert_eq!(res.status(), 200);
    owner
        .ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;

    let log = owner
        .ok(Method::GET, "/v1/audit?action=file.download", None, 200)
        .await?;
    let actors: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    // Newest first: the session's download, then the key's.
    assert_eq!(
        actors,
        [
            format!("user:{user}"),
            format!("user:{user}/apikey:{key_id}")
        ]
    );
    Ok(())
}

#[tokio::test]
async fn members_list_and_revoke_only_their_own_keys() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let owner = User::new(&h, "owner@keys.example").await?;
    owner
        .ok(
            Method::POST,
            "/v1/members",
            Some(json!({"email": "member@keys.example", "password": PASSWORD, "role": "member"})),
            201,
        )
        .await?;
    let member = User::login(&h, "member@keys.example").await?;
    let (owners_key, owners_bearer) = api_key(&owner, &["files:read"]).await?;
    let (members_key, _) = api_key(&member, &["files:read"]).await?;

    let listed = member.ok(Method::GET, "/v1/api-keys", None, 200).await?;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [members_key.as_str()]);
    assert_eq!(
        member
            .err(Method::DELETE, &format!("/v1/api-keys/{owners_key}"), None)
            .await?,
        (404, "not_found".into())
    );
    let res = with_key(&h, &owners_bearer, Method::GET, "/v1/me", None).await?;
    assert_eq!(res.status(), 200, "the owner's key survived");

    let listed = owner.ok(Method::GET, "/v1/api-keys", None, 200).await?;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    owner
        .ok(
            Method::DELETE,
            &format!("/v1/api-keys/{members_key}"),
            None,
            204,
        )
        .await?;
    Ok(())
}

/// Reads an SSE response until it ends; returns how long that took (None: still open at `limit`).
async fn ends_within(
    res: reqwest::Response,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    let mut body = res.bytes_stream();
    use futures_util::StreamExt as _;
    let ended = tokio::time::timeout(limit, async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    ended.ok().map(|()| started.elapsed())
}

#[tokio::test]
async fn an_event_stream_ends_when_its_credential_goes() -> anyhow::Result<()> {
    let h = Harness::start_with(coffer_gateway::GatewayConfig {
        events_keepalive_secs: 1,
        events_recheck_secs: 1,
        ..unthrottled()
    })
    .await?;
    let owner = User::new(&h, "streams@leak.example").await?;
    let (key_id, key) = api_key(&owner, &["files:read"]).await?;
    let limit = std::time::Duration::from_secs(10);

    // A live credential keeps its stream open past several re-checks.
    let res = with_key(&h, &key, Method::GET, "/v1/events", None).await?;
    assert_eq!(res.status(), 200);
    assert_eq!(
        ends_within(res, std::time::Duration::from_secs(3)).await,
        None,
        "a stream with a live key ended"
    );

    // Revoking the key ends its stream at the next re-check.
    let res = with_key(&h, &key, Method::GET, "/v1/events", None).await?;
    assert_eq!(res.status(), 200);
    owner
        .ok(Method::DELETE, &format!("/v1/api-keys/{key_id}"), None, 204)
        .await?;
    let took = ends_within(res, limit).await;
    assert!(took.is_some(), "the stream outlived its revoked key");

    // Logging out ends the session's stream.
    let res = owner.send(Method::GET, "/v1/events", None).await?;
    assert_eq!(res.status(), 200);
    owner.ok(Method::POST, "/v1/auth/logout", None, 204).await?;
    assert!(
        ends_within(res, limit).await.is_some(),
        "the stream outlived its logged-out session"
    );
    Ok(())
}

#[tokio::test]
async fn share_links_are_built_on_the_public_url_never_the_host_header() -> anyhow::Result<()> {
    // The harness starts the gateway with its public URL (`https://localhost:<port>`), as every
    // gateway must be started now; a client's Host header names another domain.
    let h = Harness::start().await?;
    let owner = User::new(&h, "links@leak.example").await?;
    let id = owner.available("a.txt", None, b"bytes", "clean").await?;
    let res = h
        .http
        .post(h.url(&format!("/v1/files/{id}/shares")))
        .header("cookie", &owner.cookie)
        .header("x-csrf-token", &owner.csrf)
        .header("host", "attacker.example")
        .json(&json!({"expires_in_seconds": 60}))
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    let share: Value = res.json().await?;
    let token = share["token"].as_str().unwrap();
    assert_eq!(share["url"], format!("{}/s/{token}", h.base));
    Ok(())
}

#[tokio::test]
async fn a_verdict_reaches_a_trashed_file_so_restoring_it_keeps_the_newest() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "rescan@leak.example").await?;
    let id = u.available("memo.txt", None, b"memo", "clean").await?;
    u.ok(Method::DELETE, &format!("/v1/files/{id}"), None, 204)
        .await?;
    // A re-scan under a newer ruleset finds it infected while it is in the trash.
    h.stack
        .metadata_as("scan")?
        .record_verdict(coffer_proto::v1::RecordVerdictRequest {
            org_id: u.org.clone(),
            file_id: id.clone(),
            verdict: coffer_proto::v1::Verdict::Infected as i32,
            rescan: true,
            ..Default::default()
        })
        .await?;
    let f = u
        .ok(Method::POST, &format!("/v1/files/{id}/restore"), None, 200)
        .await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("quarantined"), Some("infected"))
    );
    assert_eq!(
        u.err(Method::GET, &format!("/v1/files/{id}/download"), None)
            .await?,
        (403, "quarantined".into())
    );
    Ok(())
}

#[tokio::test]
async fn a_verdict_before_complete_commits_is_for_later_not_a_conflict() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "early@leak.example").await?;
    // Created, never completed: as a file whose complete queued its scan, then failed.
    let created = u
        .ok(
            Method::POST,
            "/v1/files",
            Some(json!({"name": "payroll.csv", "size": 4, "content_type": "text/csv"})),
            201,
        )
        .await?;
    let id = created["file"]["id"].as_str().unwrap().to_owned();
    let err = h
        .stack
        .metadata_as("scan")?
        .record_verdict(coffer_proto::v1::RecordVerdictRequest {
            org_id: u.org.clone(),
            file_id: id.clone(),
            verdict: coffer_proto::v1::Verdict::Clean as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    // Unavailable with a time to retry: the scan waits and offers it again (a conflict would
    // end its job, and the complete's retry would find it done).
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(coffer_errors::retry_after(&err).is_some());
    let f = u
        .ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
        .await?;
    assert_eq!(f["status"], "pending_upload");
    Ok(())
}

#[tokio::test]
async fn names_are_normalised_and_invisible_formatting_is_refused() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "names@leak.example").await?;
    let create = |name: &str| json!({"name": name, "size": 1, "content_type": "text/plain"});
    for bad in [
        "invoice\u{202E}txt.exe",
        "report\u{200B}.pdf",
        "\u{2066}x\u{2069}.pdf",
        "a\u{FEFF}.txt",
    ] {
        assert_eq!(
            u.err(Method::POST, "/v1/files", Some(create(bad))).await?,
            (400, "invalid_argument".into()),
            "{bad:?}"
        );
        assert_eq!(
            u.err(Method::POST, "/v1/folders", Some(json!({"name": bad})))
                .await?,
            (400, "invalid_argument".into()),
            "{bad:?}"
        );
    }
    // One name, one spelling: NFD and NFC collide, surrounding spaces go.
    let nfc = "R\u{e9}sum\u{e9}.pdf";
    let created = u
        .ok(
            Method::POST,
            "/v1/files",
            Some(create("  Re\u{301}sume\u{301}.pdf ")),
            201,
        )
        .await?;
    assert_eq!(created["file"]["name"], nfc);
    assert_eq!(
        u.err(Method::POST, "/v1/files", Some(create(nfc))).await?,
        (409, "already_exists".into())
    );
    let id = created["file"]["id"].as_str().unwrap();
    assert_eq!(
        u.err(
            Method::PATCH,
            &format!("/v1/files/{id}"),
            Some(json!({"name": "x\u{202E}gpj.exe"}))
        )
        .await?,
        (400, "invalid_argument".into())
    );
    Ok(())
}

/// Follows a share link; returns the status and the `Location` (for a redirect).
async fn open_share(
    h: &Harness,
    token: &str,
    password: Option<&str>,
) -> anyhow::Result<(u16, Option<String>, Option<String>)> {
    let mut req = crate::harness::client(&h.ca_pem, None)?.get(h.url(&format!("/s/{token}")));
    if let Some(p) = password {
        req = req.header("x-share-password", p);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    Ok((status, location, retry))
}

#[tokio::test]
async fn share_passwords_lock_after_a_few_wrong_guesses() -> anyhow::Result<()> {
    let h = Harness::start_full(
        unthrottled(),
        coffer_metadata::MetadataConfig {
            share_password_attempts: 3,
            ..Default::default()
        },
    )
    .await?;
    let u = User::new(&h, "guess@leak.example").await?;
    let id = u
        .available("payroll.csv", None, b"payroll", "clean")
        .await?;
    let share = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(json!({"expires_in_seconds": 3600, "password": "open sesame 42"})),
            201,
        )
        .await?;
    let token = share["token"].as_str().unwrap();

    // The password in a header (or a POST body) works, not only in the query string.
    let (status, location, _) = open_share(&h, token, Some("open sesame 42")).await?;
    assert_eq!(status, 302);
    assert!(location.is_some());
    let res = crate::harness::client(&h.ca_pem, None)?
        .post(h.url(&format!("/s/{token}")))
        .json(&json!({"password": "open sesame 42"}))
        .send()
        .await?;
    assert_eq!(res.status(), 303);

    // Without a password (as link previews fetch): 403, and not counted.
    for _ in 0..5 {
        assert_eq!(open_share(&h, token, None).await?.0, 403);
    }
    // Wrong guesses: 403 until the threshold; from there on the share is locked (429 with
    // Retry-After), even for the right password, without any hashing.
    for _ in 0..2 {
        assert_eq!(open_share(&h, token, Some("guess")).await?.0, 403);
    }
    assert_eq!(open_share(&h, token, Some("guess")).await?.0, 403);
    let (status, _, retry) = open_share(&h, token, Some("open sesame 42")).await?;
    assert_eq!(status, 429);
    assert!(retry.unwrap().parse::<u64>()? >= 1);
    // Once the lock passes, the right password works and clears the count.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(open_share(&h, token, Some("open sesame 42")).await?.0, 302);
    assert_eq!(open_share(&h, token, Some("guess")).await?.0, 403);
    assert_eq!(open_share(&h, token, Some("open sesame 42")).await?.0, 302);
    Ok(())
}

#[tokio::test]
async fn a_share_redemption_gets_a_short_lived_url() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "short@leak.example").await?;
    let id = u.available("a.txt", None, b"bytes", "clean").await?;
    let share = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(json!({"expires_in_seconds": 3600, "max_downloads": 1})),
            201,
        )
        .await?;
    let (status, location, _) = open_share(&h, share["token"].as_str().unwrap(), None).await?;
    assert_eq!(status, 302);
    let location = url::Url::parse(&location.unwrap())?;
    let expires: u64 = location
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-Expires")
        .unwrap()
        .1
        .parse()?;
    assert!(expires <= 60, "a redemption's URL lives {expires} s");
    // A download by the owner keeps the configured five minutes.
    let grant = u
        .ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    let url = url::Url::parse(grant["url"].as_str().unwrap())?;
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "X-Amz-Expires" && v == "300")
    );
    Ok(())
}

/// Polls a file until it leaves `scanning`.
async fn scanned(u: &User<'_>, id: &str) -> anyhow::Result<Value> {
    wait(u, &format!("/v1/files/{id}"), "status", &["scanning"]).await
}

/// Creates a text file of `bytes.len()` bytes; returns its id and upload instructions.
async fn create(u: &User<'_>, name: &str, size: usize) -> anyhow::Result<(String, Value)> {
    let created = u
        .ok(
            Method::POST,
            "/v1/files",
            Some(json!({"name": name, "size": size, "content_type": "text/plain"})),
            201,
        )
        .await?;
    Ok((
        created["file"]["id"].as_str().unwrap().to_owned(),
        created["upload"].clone(),
    ))
}

/// Replaces an object behind the mesh's back, with the store's own credentials.
async fn overwrite(h: &Harness, org: &str, id: &str, body: Vec<u8>) -> anyhow::Result<()> {
    h.stack
        .s3
        .client()
        .put_object()
        .bucket(coffer_metadata::testing::BUCKET)
        .key(format!("{org}/{id}"))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .body(body.into())
        .send()
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_download_serves_the_scanned_bytes_even_after_the_object_is_replaced()
-> anyhow::Result<()> {
    let h = scanning().await?;
    let u = User::new(&h, "pinned@leak.example").await?;
    let bad = eicar();
    let harmless = vec![b'a'; bad.len()];
    let (id, upload) = create(&u, "report.txt", harmless.len()).await?;
    assert_eq!(put_with(&upload, harmless.clone(), &[]).await?, 200);
    u.ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
        .await?;
    let f = scanned(&u, &id).await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("available"), Some("clean"))
    );

    // The upload URL is still valid, but writes once: malware of the same size is refused.
    assert_eq!(put_with(&upload, bad.clone(), &[]).await?, 412);
    let grant = u
        .ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    let got = reqwest::get(grant["url"].as_str().unwrap()).await?;
    assert_eq!(got.bytes().await?.as_ref(), harmless.as_slice());

    // Replaced with the store's own credentials: the download and a share link are signed for
    // the scanned version, so they still serve the scanned bytes.
    overwrite(&h, &u.org, &id, bad.clone()).await?;
    let grant = u
        .ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    let got = reqwest::get(grant["url"].as_str().unwrap()).await?;
    assert_eq!(got.bytes().await?.as_ref(), harmless.as_slice());
    let share = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(json!({"expires_in_seconds": 60})),
            201,
        )
        .await?;
    let (status, location, _) = open_share(&h, share["token"].as_str().unwrap(), None).await?;
    assert_eq!(status, 302);
    let got = reqwest::get(location.unwrap()).await?;
    assert_eq!(got.bytes().await?.as_ref(), harmless.as_slice());
    Ok(())
}

#[tokio::test]
async fn without_store_versions_a_replaced_object_gets_no_download_url() -> anyhow::Result<()> {
    let h = scanning().await?;
    let u = User::new(&h, "unversioned@leak.example").await?;
    let bad = eicar();
    let harmless = vec![b'a'; bad.len()];
    // A store without versions: the URL is refused before it is signed (one HEAD with If-Match).
    h.stack.s3.set_versioning(false);
    let (id, upload) = create(&u, "unversioned.txt", harmless.len()).await?;
    assert_eq!(put_with(&upload, harmless.clone(), &[]).await?, 200);
    u.ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
        .await?;
    assert_eq!(scanned(&u, &id).await?["verdict"], "clean");
    let grant = u
        .ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    let got = reqwest::get(grant["url"].as_str().unwrap()).await?;
    assert_eq!(got.bytes().await?.as_ref(), harmless.as_slice());
    overwrite(&h, &u.org, &id, bad).await?;
    assert_eq!(
        u.err(Method::GET, &format!("/v1/files/{id}/download"), None)
            .await?,
        (409, "conflict".into())
    );
    Ok(())
}

#[tokio::test]
async fn a_gzip_encoded_private_key_never_becomes_downloadable() -> anyhow::Result<()> {
    let h = scanning().await?;
    let u = User::new(&h, "encoded@leak.example").await?;
    let key = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n";
    let gz = {
        use std::io::Write as _;
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(key)?;
        w.finish()?
    };
    let (id, upload) = create(&u, "notes.txt", gz.len()).await?;
    // The store keeps headers the URL did not sign: every browser would decode this on download.
    assert_eq!(
        put_with(&upload, gz.clone(), &[("content-encoding", "gzip")]).await?,
        200
    );
    let (status, code) = u
        .err(Method::POST, &format!("/v1/files/{id}/complete"), None)
        .await?;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    let f = u
        .ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
        .await?;
    assert_eq!(f["status"], "pending_upload");
    assert_eq!(
        u.err(Method::GET, &format!("/v1/files/{id}/download"), None)
            .await?,
        (409, "not_ready".into())
    );

    // The refused object was removed: the same URL takes a plain upload of the same bytes, and
    // the scanner opens the gzip and finds the key inside.
    assert_eq!(put_with(&upload, gz, &[]).await?, 200);
    u.ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
        .await?;
    let f = scanned(&u, &id).await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("quarantined"), Some("sensitive"))
    );
    assert_eq!(
        u.err(Method::GET, &format!("/v1/files/{id}/download"), None)
            .await?,
        (403, "quarantined".into())
    );
    Ok(())
}

/// The keys the store holds any version of under `prefix` (a versioned bucket keeps the bytes of
/// an object deleted without a version).
async fn keys_under(h: &Harness, prefix: &str) -> anyhow::Result<Vec<String>> {
    let listed = h
        .stack
        .s3
        .client()
        .list_object_versions()
        .bucket(coffer_metadata::testing::BUCKET)
        .prefix(prefix)
        .send()
        .await?;
    Ok(listed
        .versions()
        .iter()
        .filter_map(|v| v.key().map(str::to_owned))
        .chain(
            listed
                .delete_markers()
                .iter()
                .filter_map(|m| m.key().map(str::to_owned)),
        )
        .collect())
}

#[tokio::test]
async fn scan_only_uploads_have_a_daily_budget_and_never_outlive_their_url() -> anyhow::Result<()> {
    let h = Harness::start_scanning(
        unthrottled(),
        Default::default(),
        coffer_scan::ScanConfig {
            poll_interval_ms: 100,
            scan_only_bytes_per_day: 130,
            scan_upload_expiry_secs: 4,
            scan_upload_grace_secs: 0,
            upload_sweep_interval_secs: 1,
            ..Default::default()
        },
    )
    .await?;
    let u = User::new(&h, "scanonly@leak.example").await?;
    let bytes = vec![b'x'; 60];
    let submitted = u
        .ok(Method::POST, "/v1/scans", Some(json!({"size": 60})), 201)
        .await?;
    let unsubmitted = u
        .ok(Method::POST, "/v1/scans", Some(json!({"size": 60})), 201)
        .await?;
    // 120 of 130 bytes used today: a third request is refused until midnight UTC.
    let res = u
        .send(Method::POST, "/v1/scans", Some(json!({"size": 60})))
        .await?;
    let retry: u64 = res.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=86_400).contains(&retry));
    assert_eq!(error_code(res).await?, (429, "rate_limited".into()));

    // One PUT per URL.
    let id = submitted["scan_id"].as_str().unwrap();
    assert_eq!(
        put_with(&submitted["upload"], bytes.clone(), &[]).await?,
        200
    );
    assert_eq!(
        put_with(&submitted["upload"], bytes.clone(), &[]).await?,
        412
    );
    assert_eq!(
        put_with(&unsubmitted["upload"], bytes.clone(), &[]).await?,
        200
    );
    u.ok(Method::POST, &format!("/v1/scans/{id}/submit"), None, 202)
        .await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while u
        .ok(Method::GET, &format!("/v1/scans/{id}"), None, 200)
        .await?["status"]
        != "done"
    {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never scanned");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The object went with the verdict; while the URL lives it can write the key once more...
    assert_eq!(
        put_with(&submitted["upload"], bytes.clone(), &[]).await?,
        200
    );

    // ...but once the URL has expired, nothing of either request is left in the store, and the
    // unsubmitted one can no longer be submitted.
    let prefix = format!("scans/{}/", u.org);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = keys_under(&h, &prefix).await?;
        if left.is_empty() {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "still in the store: {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let unsubmitted = unsubmitted["scan_id"].as_str().unwrap();
    let status = u
        .ok(Method::GET, &format!("/v1/scans/{unsubmitted}"), None, 200)
        .await?;
    assert_eq!(status["status"], "expired");
    assert_eq!(
        u.err(
            Method::POST,
            &format!("/v1/scans/{unsubmitted}/submit"),
            None
        )
        .await?,
        (409, "conflict".into())
    );
    Ok(())
}

/// Gives `u`'s org a bit of everything: a folder with a scanned file, a trashed file, an upload
/// never completed, a password share, a scan-only request, a webhook (whose deliveries queue up)
/// and an API key. Returns the name its files carry.
async fn fill(u: &User<'_>, tag: &str) -> anyhow::Result<String> {
    let name = format!("Gehaltsliste {tag}.csv");
    let folder = u
        .ok(
            Method::POST,
            "/v1/folders",
            Some(json!({"name": format!("Personal {tag}")})),
            201,
        )
        .await?;
    u.ok(
        Method::PUT,
        "/v1/webhook",
        Some(json!({"url": "https://hooks.example.com/coffer"})),
        200,
    )
    .await?;
    let (id, upload) = create(u, &name, 5).await?;
    assert_eq!(put_with(&upload, b"12345".to_vec(), &[]).await?, 200);
    u.ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
        .await?;
    assert_eq!(scanned(u, &id).await?["status"], "available");
    u.ok(
        Method::PATCH,
        &format!("/v1/files/{id}"),
        Some(json!({"folder_id": folder["id"]})),
        200,
    )
    .await?;
    u.ok(
        Method::POST,
        &format!("/v1/files/{id}/shares"),
        Some(json!({"expires_in_seconds": 3600, "password": "open sesame 42"})),
        201,
    )
    .await?;
    let (trashed, upload) = create(u, &format!("old {name}"), 3).await?;
    assert_eq!(put_with(&upload, b"old".to_vec(), &[]).await?, 200);
    u.ok(Method::DELETE, &format!("/v1/files/{trashed}"), None, 204)
        .await?;
    let (_, upload) = create(u, &format!("draft {name}"), 5).await?;
    assert_eq!(put_with(&upload, b"draft".to_vec(), &[]).await?, 200);
    let scan = u
        .ok(Method::POST, "/v1/scans", Some(json!({"size": 4})), 201)
        .await?;
    assert_eq!(put_with(&scan["upload"], b"scan".to_vec(), &[]).await?, 200);
    api_key(u, &["files:read"]).await?;
    Ok(name)
}

#[tokio::test]
async fn a_purged_org_leaves_nothing_but_its_audit_chain() -> anyhow::Result<()> {
    let h = Harness::start_all(
        unthrottled(),
        Default::default(),
        coffer_metadata::testing::AuthConfig {
            org_purge_after_secs: 1,
            purge_interval_secs: 1,
            ..Default::default()
        },
        coffer_scan::ScanConfig {
            poll_interval_ms: 100,
            ..Default::default()
        },
    )
    .await?;
    let leaver = User::new(&h, "leaver@purge.example").await?;
    let stayer = User::new(&h, "stayer@purge.example").await?;
    let gone_name = fill(&leaver, "leaver").await?;
    let kept_name = fill(&stayer, "stayer").await?;
    let org = leaver.org.clone();
    // An object of the org written again behind the mesh's back: its old bytes stay in the
    // versioned bucket as a noncurrent version, which the purge must delete too.
    let listed = keys_under(&h, &format!("{org}/")).await?;
    let (_, some_file) = listed[0].split_once('/').unwrap();
    overwrite(&h, &org, some_file, b"other".to_vec()).await?;
    assert!(!keys_under(&h, &format!("{org}/")).await?.is_empty());
    assert!(!keys_under(&h, &format!("scans/{org}/")).await?.is_empty());

    leaver.ok(Method::DELETE, "/v1/org", None, 202).await?;
    let auth_db = sqlx::PgPool::connect(&h.stack.pg.superuser_url(&h.stack.auth.database)).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.orgs WHERE id = $1::uuid")
            .bind(&org)
            .fetch_one(&auth_db)
            .await?;
        if n == 0 {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the org was not purged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A dump of every schema: nothing of the org but its audit chain; the other org untouched.
    let pg = h.stack.pg;
    let dump = |db: &str| pg.dump(db);
    let auth = dump(&h.stack.auth.database)?;
    let metadata = dump(&h.stack.metadata.database)?;
    let scan = dump(&h.scan.setup.database)?;
    let audit = dump(&h.stack.audit().database)?;
    for (schema, text) in [("auth", &auth), ("metadata", &metadata), ("scan", &scan)] {
        assert!(!text.contains(&org), "{schema} still holds the purged org");
        assert!(text.contains(&stayer.org), "{schema} lost the other org");
    }
    assert!(!metadata.contains(&gone_name) && metadata.contains(&kept_name));
    assert!(
        audit.contains(&org),
        "the audit chain stays until its retention"
    );
    let log: Vec<String> = {
        let audit_db = sqlx::PgPool::connect(&pg.superuser_url(&h.stack.audit().database)).await?;
        sqlx::query_scalar("SELECT action FROM audit.events WHERE org_id = $1::uuid ORDER BY seq")
            .bind(&org)
            .fetch_all(&audit_db)
            .await?
    };
    assert_eq!(log.last().map(String::as_str), Some("org.purge"));

    // The bucket: nothing under either of the org's prefixes; the other org's objects are there.
    assert_eq!(
        keys_under(&h, &format!("{org}/")).await?,
        Vec::<String>::new()
    );
    assert_eq!(
        keys_under(&h, &format!("scans/{org}/")).await?,
        Vec::<String>::new()
    );
    assert!(
        !keys_under(&h, &format!("{}/", stayer.org))
            .await?
            .is_empty()
    );
    assert!(
        !keys_under(&h, &format!("scans/{}/", stayer.org))
            .await?
            .is_empty()
    );
    Ok(())
}

/// A deleted org cannot act, so the deletion sweep cannot delete its purged files' objects yet:
/// their entries are put off, never dropped (were the org restored, its purged bytes would
/// otherwise stay in the bucket for good); the org's own purge takes them later.
#[tokio::test]
async fn a_deleted_orgs_pending_deletions_wait_and_are_not_forgotten() -> anyhow::Result<()> {
    let h = Harness::start_full(
        unthrottled(),
        coffer_metadata::MetadataConfig {
            object_delete_delay_secs: 1,
            sweep_interval_secs: 1,
            ..Default::default()
        },
    )
    .await?;
    let u = User::new(&h, "pending@deleted.example").await?;
    let id = u
        .available("kept.bin", None, b"kept a while", "clean")
        .await?;
    u.ok(Method::DELETE, &format!("/v1/files/{id}/purge"), None, 204)
        .await?;
    u.ok(Method::DELETE, "/v1/org", None, 202).await?;
    let db = sqlx::PgPool::connect(&h.stack.pg.superuser_url(&h.stack.metadata.database)).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let after: Option<bool> = sqlx::query_scalar(
            "SELECT delete_after > now() + interval '23 hours'
             FROM metadata.object_deletions WHERE org_id = $1::uuid",
        )
        .bind(&u.org)
        .fetch_optional(&db)
        .await?;
        match after {
            Some(true) => break,
            Some(false) => {}
            None => anyhow::bail!("the entry was dropped"),
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the entry was never put off"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(keys_under(&h, &format!("{}/", u.org)).await?.len(), 1);
    Ok(())
}

/// A password change needs the current password and the policy's new one; it revokes every other
/// session of the user at once (the one it was made from stays), and only the new password logs
/// in afterwards. Another user's sessions are untouched.
#[tokio::test]
async fn a_password_change_revokes_the_users_other_sessions() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let email = "changer@password.example";
    let here = User::new(&h, email).await?;
    let elsewhere = User::login(&h, email).await?;
    let neighbour = User::new(&h, "neighbour@password.example").await?;
    let new = "correct horse battery staple 43";
    // The current password must be right (and wrong guesses are throttled like logins).
    assert_eq!(
        here.err(
            Method::POST,
            "/v1/auth/password",
            Some(json!({"current_password": "not my password at all", "new_password": new})),
        )
        .await?,
        (400, "invalid_argument".into())
    );
    // The new one must pass the policy.
    assert_eq!(
        here.err(
            Method::POST,
            "/v1/auth/password",
            Some(json!({"current_password": PASSWORD, "new_password": "short"})),
        )
        .await?
        .0,
        400
    );
    // Nothing changed by those: the other session still works.
    elsewhere.ok(Method::GET, "/v1/me", None, 200).await?;

    here.ok(
        Method::POST,
        "/v1/auth/password",
        Some(json!({"current_password": PASSWORD, "new_password": new})),
        204,
    )
    .await?;
    // The session it was made from stays; the other one is refused on its very next request.
    here.ok(Method::GET, "/v1/me", None, 200).await?;
    assert_eq!(
        elsewhere.err(Method::GET, "/v1/me", None).await?.0,
        401,
        "the other session survived the password change"
    );
    neighbour.ok(Method::GET, "/v1/me", None, 200).await?;
    // Only the new password logs in.
    let login = |password: &str| {
        h.http
            .post(h.url("/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    assert_eq!(login(PASSWORD).await?.status(), 401);
    assert_eq!(login(new).await?.status(), 200);
    // The change is in the org's audit log.
    let log = here.ok(Method::GET, "/v1/audit", None, 200).await?;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "auth.password_change"),
        "{log}"
    );
    Ok(())
}

/// Members: owners and admins list them and remove them; a removed member's session and API key
/// are refused on their very next request; admins cannot remove an owner; the last owner cannot
/// be removed; members see no list; another org's user is not found (and keeps working).
#[tokio::test]
async fn removing_a_member_stops_their_sessions_and_keys_at_once() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let owner = User::new(&h, "owner@members.example").await?;
    let add = |email: &str, role: &str| json!({"email": email, "password": PASSWORD, "role": role});
    let admin_id = owner
        .ok(
            Method::POST,
            "/v1/members",
            Some(add("admin@members.example", "admin")),
            201,
        )
        .await?["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let member_id = owner
        .ok(
            Method::POST,
            "/v1/members",
            Some(add("member@members.example", "member")),
            201,
        )
        .await?["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = User::login(&h, "admin@members.example").await?;
    let member = User::login(&h, "member@members.example").await?;
    let (_, member_key) = api_key(&member, &["files:read"]).await?;

    // The list: every member with their role, owners and admins only.
    let list = admin.ok(Method::GET, "/v1/members", None, 200).await?;
    let items = list["items"].as_array().unwrap();
    let roles: Vec<(&str, &str)> = items
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("owner@members.example", "owner"),
            ("admin@members.example", "admin"),
            ("member@members.example", "member"),
        ]
    );
    assert!(
        items
            .iter()
            .all(|m| m["totp_enabled"] == false && m["created_at"].is_string())
    );
    assert_eq!(
        member.err(Method::GET, "/v1/members", None).await?,
        (403, "permission_denied".into())
    );
    assert_eq!(
        member
            .err(Method::DELETE, &format!("/v1/members/{admin_id}"), None)
            .await?,
        (403, "permission_denied".into())
    );

    // Another org's owner cannot see or remove this org's member: not found, nothing happens.
    let stranger = User::new(&h, "owner@elsewhere.example").await?;
    assert_eq!(
        stranger
            .err(Method::DELETE, &format!("/v1/members/{member_id}"), None)
            .await?,
        (404, "not_found".into())
    );
    member.ok(Method::GET, "/v1/me", None, 200).await?;

    // The admin removes the member: their session and their key stop at once.
    let res = with_key(
        &h,
        &member_key,
        Method::GET,
        "/v1/folders/root/children",
        None,
    )
    .await?;
    assert_eq!(res.status(), 200);
    admin
        .ok(
            Method::DELETE,
            &format!("/v1/members/{member_id}"),
            None,
            204,
        )
        .await?;
    assert_eq!(member.err(Method::GET, "/v1/me", None).await?.0, 401);
    let res = with_key(
        &h,
        &member_key,
        Method::GET,
        "/v1/folders/root/children",
        None,
    )
    .await?;
    assert_eq!(res.status(), 401);
    let res = h
        .http
        .post(h.url("/v1/auth/login"))
        .json(&json!({"email": "member@members.example", "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(res.status(), 401);

    // An admin does not remove an owner; the last owner cannot be removed, even by themself.
    let owner_id = owner.ok(Method::GET, "/v1/me", None, 200).await?["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        admin
            .err(Method::DELETE, &format!("/v1/members/{owner_id}"), None)
            .await?,
        (403, "permission_denied".into())
    );
    assert_eq!(
        owner
            .err(Method::DELETE, &format!("/v1/members/{owner_id}"), None)
            .await?,
        (409, "conflict".into())
    );
    owner.ok(Method::GET, "/v1/me", None, 200).await?;
    // The removal is in the log, naming the user, not their email.
    let log = owner.ok(Method::GET, "/v1/audit", None, 200).await?;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "member.remove"
                && e["target"] == format!("user:{member_id}").as_str()),
        "{log}"
    );
    assert!(!log.to_string().contains("member@members.example"));
    Ok(())
}

/// U+0000, which Postgres text cannot hold, in a media type or an audit filter is bad input that
/// names its field, never a 500; so is a filter on an action the log does not have.
#[tokio::test]
async fn nul_characters_and_unknown_audit_filters_are_bad_input() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "nul@leak.example").await?;
    let res = u
        .send(
            Method::POST,
            "/v1/files",
            Some(json!({"name": "a.txt", "size": 3, "content_type": "text/plain\u{0}"})),
        )
        .await?;
    assert_eq!(error_code(res).await?, (400, "invalid_argument".into()));
    for action in ["%00", "file.nonsense", "x"] {
        assert_eq!(
            u.err(Method::GET, &format!("/v1/audit?action={action}"), None)
                .await?,
            (400, "invalid_argument".into()),
            "{action}"
        );
    }
    let known = u
        .ok(Method::GET, "/v1/audit?action=auth.login", None, 200)
        .await?;
    assert!(
        known["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] == "auth.login"),
        "{known}"
    );
    Ok(())
}

/// Names others will see may neither hide characters nor show as nothing: an org name with a
/// bidi override at sign-up, and file and folder names made only of blank-looking characters.
#[tokio::test]
async fn names_that_hide_or_show_nothing_are_refused() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let res = h
        .http
        .post(h.url("/v1/auth/signup"))
        .json(&json!({
            "org_name": "Acme\u{202E}gnp.exe",
            "email": "bidi@leak.example",
            "password": PASSWORD,
        }))
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (400, "invalid_argument".into()));
    let u = User::new(&h, "blank@leak.example").await?;
    for blank in ["\u{3164}", "\u{2800}\u{2800}", " \u{FFA0} "] {
        let res = u
            .send(
                Method::POST,
                "/v1/files",
                Some(json!({"name": blank, "size": 1, "content_type": "text/plain"})),
            )
            .await?;
        assert_eq!(
            error_code(res).await?,
            (400, "invalid_argument".into()),
            "{blank:?}"
        );
        let res = u
            .send(Method::POST, "/v1/folders", Some(json!({"name": blank})))
            .await?;
        assert_eq!(
            error_code(res).await?,
            (400, "invalid_argument".into()),
            "{blank:?}"
        );
    }
    Ok(())
}
