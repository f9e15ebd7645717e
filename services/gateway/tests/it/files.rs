//! Folders, files and shares through the real gateway, auth, metadata, storage-signer, Postgres
//! and the embedded S3 server, driven by a plain HTTP client: bytes go straight to the store.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::harness::{Harness, error_code, unthrottled};

/// A signed-in user of one org.
pub struct User<'h> {
    pub h: &'h Harness,
    pub org: String,
    pub cookie: String,
    pub csrf: String,
}

impl<'h> User<'h> {
    pub async fn new(h: &'h Harness, email: &str) -> anyhow::Result<Self> {
        let (org, cookie, csrf) = h.session(email).await?;
        Ok(User {
            h,
            org,
            cookie,
            csrf,
        })
    }

    /// Logs an existing account in.
    pub async fn login(h: &'h Harness, email: &str) -> anyhow::Result<Self> {
        let (org, cookie, csrf) = h.login(email).await?;
        Ok(User {
            h,
            org,
            cookie,
            csrf,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut req = self
            .h
            .http
            .request(method, self.h.url(path))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Ok(req.send().await?)
    }

    /// Sends and expects `status`; returns the JSON body (null for none).
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> anyhow::Result<Value> {
        let res = self.send(method.clone(), path, body).await?;
        let got = res.status().as_u16();
        let text = res.text().await?;
        assert_eq!(got, status, "{method} {path}: {text}");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        };
        // Every answer the tests see is what the OpenAPI document says it is.
        crate::harness::conforms(&method, path, status, &body).unwrap_or_else(|e| panic!("{e}"));
        Ok(body)
    }

    pub async fn err(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, String)> {
        error_code(self.send(method, path, body).await?).await
    }

    /// Creates a file and uploads `bytes` with the presigned PUT; returns the file id.
    pub async fn upload(
        &self,
        name: &str,
        folder: Option<&str>,
        bytes: &[u8],
    ) -> anyhow::Result<String> {
        let created = self
            .ok(
                Method::POST,
                "/v1/files",
                Some(json!({
                    "name": name,
                    "folder_id": folder,
                    "size": bytes.len(),
                    "content_type": "application/octet-stream",
                    "sha256": sha256_hex(bytes),
                })),
                201,
            )
            .await?;
        let id = created["file"]["id"].as_str().unwrap().to_owned();
        assert_eq!(created["file"]["status"], "pending_upload");
        put(&created["upload"], bytes.to_vec()).await?;
        Ok(id)
    }

    /// Uploads, completes and records `verdict` (as the scan service would).
    pub async fn available(
        &self,
        name: &str,
        folder: Option<&str>,
        bytes: &[u8],
        verdict: &str,
    ) -> anyhow::Result<String> {
        let id = self.upload(name, folder, bytes).await?;
        self.ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
            .await?;
        self.h.stack.verdict(&self.org, &id, verdict).await?;
        Ok(id)
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sends a presigned PUT exactly as the API told us to.
pub async fn put(upload: &Value, body: Vec<u8>) -> anyhow::Result<()> {
    let status = put_with(upload, body, &[]).await?;
    anyhow::ensure!((200..300).contains(&status), "PUT refused: {status}");
    Ok(())
}

/// Sends a presigned PUT with the headers the API gave and `extra` ones; returns the status.
pub async fn put_with(
    upload: &Value,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> anyhow::Result<u16> {
    // A part's URL has no method: it is a PUT too.
    assert!(upload.get("method").is_none_or(|m| m == "PUT"));
    let mut req = reqwest::Client::new().put(upload["url"].as_str().unwrap());
    for (k, v) in upload["headers"].as_object().unwrap() {
        if k != "content-length" {
            req = req.header(k, v.as_str().unwrap());
        }
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    Ok(req.body(body).send().await?.status().as_u16())
}

#[tokio::test]
async fn upload_complete_verdict_download_round_trip() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "files@example.com").await?;
    let folder = u
        .ok(
            Method::POST,
            "/v1/folders",
            Some(json!({"name": "Contracts 2026"})),
            201,
        )
        .await?;
    assert_eq!(folder["parent_id"], Value::Null);
    let folder_id = folder["id"].as_str().unwrap();
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();

    let id = u
        .upload("Vertrag Müller.pdf", Some(folder_id), &bytes)
        .await?;
    let file = u
        .ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
        .await?;
    assert_eq!(file["status"], "pending_upload");
    assert_eq!(
        u.err(Method::GET, &format!("/v1/files/{id}/download"), None)
            .await?,
        (409, "not_ready".into())
    );

    let done = u
        .ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
        .await?;
    assert_eq!(done["status"], "scanning");
    assert_eq!(done["size"], bytes.len());
    assert_eq!(done["sha256"], sha256_hex(&bytes));
    assert_eq!(done["folder_id"], folder_id);
    assert_eq!(
        u.err(Method::GET, &format!("/v1/files/{id}/download"), None)
            .await?,
        (409, "not_ready".into())
    );
    // Complete twice: a conflict, not a second scan.
    assert_eq!(
        u.err(Method::POST, &format!("/v1/files/{id}/complete"), None)
            .await?
            .0,
        409
    );

    h.stack.verdict(&u.org, &id, "clean").await?;
    let file = u
        .ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
        .await?;
    assert_eq!(file["status"], "available");
    assert_eq!(file["verdict"], "clean");
    for key in [
        "id",
        "name",
        "folder_id",
        "size",
        "content_type",
        "sha256",
        "status",
        "verdict",
        "created_at",
        "updated_at",
    ] {
        assert!(file.get(key).is_some(), "file lacks {key}: {file}");
    }

    let grant = u
        .ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    assert!(grant["expires_at"].is_string());
    let res = reqwest::get(grant["url"].as_str().unwrap()).await?;
    assert!(res.status().is_success());
    assert_eq!(
        res.headers()["content-disposition"].to_str()?,
        "attachment; filename=\"Vertrag M_ller.pdf\"; filename*=UTF-8''Vertrag%20M%C3%BCller.pdf"
    );
    assert_eq!(
        res.bytes().await?.to_vec(),
        bytes,
        "downloaded bytes differ"
    );

    // The stored object: under <org>/<file id>, encrypted, no name anywhere in its key.
    let key = format!("{}/{id}", u.org);
    let head = h
        .stack
        .s3
        .client()
        .head_object()
        .bucket(coffer_metadata::testing::BUCKET)
        .key(&key)
        .send()
        .await?;
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
    let listed = h
        .stack
        .s3
        .client()
        .list_objects_v2()
        .bucket(coffer_metadata::testing::BUCKET)
        .send()
        .await?;
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [key.as_str()]);

    // Listing shows the folder at the top and the file in it.
    let root = u
        .ok(Method::GET, "/v1/folders/root/children", None, 200)
        .await?;
    assert_eq!(root["folders"][0]["id"], folder_id);
    assert_eq!(root["next_cursor"], Value::Null);
    let inside = u
        .ok(
            Method::GET,
            &format!("/v1/folders/{folder_id}/children"),
            None,
            200,
        )
        .await?;
    assert_eq!(inside["files"][0]["id"], id.as_str());
    Ok(())
}

#[tokio::test]
async fn complete_checks_the_object_and_quarantine_blocks_downloads() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "complete@example.com").await?;
    // No object at all.
    let created = u
        .ok(
            Method::POST,
            "/v1/files",
            Some(json!({"name": "a.txt", "size": 10, "content_type": "text/plain"})),
            201,
        )
        .await?;
    let id = created["file"]["id"].as_str().unwrap();
    assert_eq!(
        u.err(Method::POST, &format!("/v1/files/{id}/complete"), None)
            .await?,
        (409, "conflict".into())
    );
    // An object of another size (put with the store's own credentials, around the URL).
    h.stack
        .s3
        .client()
        .put_object()
        .bucket(coffer_metadata::testing::BUCKET)
        .key(format!("{}/{id}", u.org))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .body(b"eleven byte".to_vec().into())
        .send()
        .await?;
    assert_eq!(
        u.err(Method::POST, &format!("/v1/files/{id}/complete"), None)
            .await?,
        (409, "conflict".into())
    );
    assert_eq!(
        u.ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
            .await?["status"],
        "pending_upload"
    );

    // Quarantined: no download, no share.
    let bad = u
        .available(
            "eicar.com",
            None,
            b"X5O!P%@AP[4\\PZX54(P^)7CC)7}",
            "infected",
        )
        .await?;
    let file = u
        .ok(Method::GET, &format!("/v1/files/{bad}"), None, 200)
        .await?;
    assert_eq!(file["status"], "quarantined");
    assert_eq!(file["verdict"], "infected");
    assert_eq!(
        u.err(Method::GET, &format!("/v1/files/{bad}/download"), None)
            .await?,
        (403, "quarantined".into())
    );
    assert_eq!(
        u.err(
            Method::POST,
            &format!("/v1/files/{bad}/shares"),
            Some(json!({"expires_in_seconds": 60}))
        )
        .await?,
        (403, "quarantined".into())
    );
    // A verdict on a file that is not being scanned is refused; the same verdict twice is one.
    h.stack.verdict(&u.org, &bad, "infected").await?;
    assert!(h.stack.verdict(&u.org, &bad, "clean").await.is_err());
    assert!(h.stack.verdict(&u.org, id, "clean").await.is_err());
    Ok(())
}

/// A file's shares as its owner lists them: the live ones only (not revoked, expired or used
/// up), each with its expiry, cap, downloads so far and whether it has a password — never its
/// token. Another org's file is not found.
#[tokio::test]
async fn a_files_live_shares_are_listed_without_their_tokens() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "share-list@example.com").await?;
    let id = u.available("plan.pdf", None, b"the plan", "clean").await?;
    let share = |body: Value| {
        let u = &u;
        let path = format!("/v1/files/{id}/shares");
        async move { u.ok(Method::POST, &path, Some(body), 201).await }
    };
    let capped =
        share(json!({"expires_in_seconds": 3600, "password": "open sesame", "max_downloads": 1}))
            .await?;
    let plain = share(json!({"expires_in_seconds": 3600})).await?;
    let revoked = share(json!({"expires_in_seconds": 3600})).await?;
    let short = share(json!({"expires_in_seconds": 1})).await?;
    let used = share(json!({"expires_in_seconds": 3600, "max_downloads": 1})).await?;
    u.ok(
        Method::DELETE,
        &format!("/v1/shares/{}", revoked["id"].as_str().unwrap()),
        None,
        204,
    )
    .await?;
    let public = crate::harness::client(&h.ca_pem, None)?;
    let res = public
        .get(h.url(&format!("/s/{}", used["token"].as_str().unwrap())))
        .send()
        .await?;
    assert_eq!(res.status(), 302);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let list = u
        .ok(Method::GET, &format!("/v1/files/{id}/shares"), None, 200)
        .await?;
    let items = list["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            capped["id"].as_str().unwrap(),
            plain["id"].as_str().unwrap()
        ]
    );
    assert_eq!(items[0]["has_password"], true);
    assert_eq!(items[0]["max_downloads"], 1);
    assert_eq!(items[0]["downloads"], 0);
    assert_eq!(items[1]["has_password"], false);
    assert_eq!(items[1]["max_downloads"], Value::Null);
    assert!(
        items
            .iter()
            .all(|s| s["expires_at"].is_string() && s["created_at"].is_string())
    );
    for created in [&capped, &plain, &revoked, &short, &used] {
        assert!(
            !list
                .to_string()
                .contains(created["token"].as_str().unwrap())
        );
    }
    let stranger = User::new(&h, "share-list-other@example.com").await?;
    assert_eq!(
        stranger
            .err(Method::GET, &format!("/v1/files/{id}/shares"), None)
            .await?,
        (404, "not_found".into())
    );
    Ok(())
}

#[tokio::test]
async fn shares_redirect_until_expired_revoked_or_used_up() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "shares@example.com").await?;
    let bytes = b"quarterly payroll".to_vec();
    let id = u.available("payroll.csv", None, &bytes, "clean").await?;
    let share = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(
                json!({"expires_in_seconds": 3600, "password": "open sesame", "max_downloads": 2}),
            ),
            201,
        )
        .await?;
    let token = share["token"].as_str().unwrap();
    assert!(token.len() >= 22, "a share token carries at least 128 bits");
    assert_eq!(
        share["url"].as_str().unwrap(),
        format!("{}/s/{token}", h.base)
    );
    let public = crate::harness::client(&h.ca_pem, None)?;
    let open = |q: &str| {
        let url = h.url(&format!("/s/{token}{q}"));
        let public = public.clone();
        async move { public.get(url).send().await }
    };
    assert_eq!(error_code(open("").await?).await?.0, 403);
    assert_eq!(error_code(open("?password=wrong").await?).await?.0, 403);
    for _ in 0..2 {
        let res = open("?password=open%20sesame").await?;
        assert_eq!(res.status(), 302);
        let location = res.headers()["location"].to_str()?.to_owned();
        assert_eq!(reqwest::get(location).await?.bytes().await?.to_vec(), bytes);
    }
    assert_eq!(
        error_code(open("?password=open%20sesame").await?).await?,
        (404, "not_found".into()),
        "used up"
    );

    // Revoked, expired and unknown shares are all 404.
    let revoked = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(json!({"expires_in_seconds": 3600})),
            201,
        )
        .await?;
    let res = public
        .get(h.url(&format!("/s/{}", revoked["token"].as_str().unwrap())))
        .send()
        .await?;
    assert_eq!(res.status(), 302);
    u.ok(
        Method::DELETE,
        &format!("/v1/shares/{}", revoked["id"].as_str().unwrap()),
        None,
        204,
    )
    .await?;
    let res = public
        .get(h.url(&format!("/s/{}", revoked["token"].as_str().unwrap())))
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (404, "not_found".into()));
    let short = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(json!({"expires_in_seconds": 1})),
            201,
        )
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let res = public
        .get(h.url(&format!("/s/{}", short["token"].as_str().unwrap())))
        .send()
        .await?;
    assert_eq!(error_code(res).await?, (404, "not_found".into()));
    for unknown in ["nope", &"A".repeat(43), &"x".repeat(5000)] {
        let res = public.get(h.url(&format!("/s/{unknown}"))).send().await?;
        assert_eq!(error_code(res).await?.0, 404, "{unknown}");
    }
    // A share of a trashed file stops working.
    let live = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(json!({"expires_in_seconds": 3600})),
            201,
        )
        .await?;
    u.ok(Method::DELETE, &format!("/v1/files/{id}"), None, 204)
        .await?;
    let res = public
        .get(h.url(&format!("/s/{}", live["token"].as_str().unwrap())))
        .send()
        .await?;
    assert_eq!(error_code(res).await?.0, 404);
    Ok(())
}

/// A folder with its path from the top (breadcrumbs), the folder itself last; a trashed folder
/// and another org's are not found.
#[tokio::test]
async fn a_folder_comes_with_its_path_from_the_top() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "crumbs@example.com").await?;
    let mk = |name: &str, parent: Option<String>| {
        let body = json!({"name": name, "parent_id": parent});
        let u = &u;
        async move {
            anyhow::Ok(
                u.ok(Method::POST, "/v1/folders", Some(body), 201).await?["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        }
    };
    let a = mk("Contracts", None).await?;
    let b = mk("2026", Some(a.clone())).await?;
    let c = mk("NDA", Some(b.clone())).await?;
    let got = u
        .ok(Method::GET, &format!("/v1/folders/{c}"), None, 200)
        .await?;
    assert_eq!(got["name"], "NDA");
    assert_eq!(got["parent_id"], b.as_str());
    let path: Vec<(&str, &str)> = got["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        path,
        [
            (a.as_str(), "Contracts"),
            (b.as_str(), "2026"),
            (c.as_str(), "NDA")
        ]
    );
    let top = u
        .ok(Method::GET, &format!("/v1/folders/{a}"), None, 200)
        .await?;
    assert_eq!(top["path"].as_array().unwrap().len(), 1);
    assert_eq!(top["parent_id"], Value::Null);
    let stranger = User::new(&h, "crumbs-other@example.com").await?;
    assert_eq!(
        stranger
            .err(Method::GET, &format!("/v1/folders/{c}"), None)
            .await?,
        (404, "not_found".into())
    );
    u.ok(Method::DELETE, &format!("/v1/folders/{b}"), None, 204)
        .await?;
    assert_eq!(
        u.err(Method::GET, &format!("/v1/folders/{b}"), None)
            .await?
            .0,
        404
    );
    Ok(())
}

/// The trash: the top-most trashed folders (a trashed folder's subfolders are inside it) and
/// every trashed file, by name, paged; another org's trash shows none of it; a restored file
/// leaves it.
#[tokio::test]
async fn the_trash_lists_what_was_trashed_paged() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "trash@example.com").await?;
    let folder = |name: &str, parent: Option<&str>| {
        let body = json!({"name": name, "parent_id": parent});
        let u = &u;
        async move {
            anyhow::Ok(
                u.ok(Method::POST, "/v1/folders", Some(body), 201).await?["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        }
    };
    let a = folder("Archive", None).await?;
    folder("Old", Some(&a)).await?;
    let inside = u
        .available("b-inside.txt", Some(&a), b"inside", "clean")
        .await?;
    let loose = u.available("c-loose.txt", None, b"loose", "clean").await?;
    u.available("kept.txt", None, b"kept", "clean").await?;
    u.ok(Method::DELETE, &format!("/v1/folders/{a}"), None, 204)
        .await?;
    u.ok(Method::DELETE, &format!("/v1/files/{loose}"), None, 204)
        .await?;

    let all = u.ok(Method::GET, "/v1/trash", None, 200).await?;
    let names = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&all, "folders"), ["Archive"]);
    assert_eq!(names(&all, "files"), ["b-inside.txt", "c-loose.txt"]);
    assert!(
        all["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "trashed")
    );
    // Each says when the retention (30 days by default) purges it; a live file says nothing.
    let in_30_days = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    for f in all["files"].as_array().unwrap() {
        let at = time::OffsetDateTime::parse(
            f["purge_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )?;
        assert!((at - in_30_days).abs() < time::Duration::minutes(5), "{at}");
    }
    let live = u
        .ok(Method::GET, "/v1/folders/root/children", None, 200)
        .await?;
    assert!(live["files"][0].get("purge_at").is_none());
    assert_eq!(all["next_cursor"], Value::Null);

    // One at a time: the folder, then each file, then no more.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = u
            .ok(
                Method::GET,
                &format!("/v1/trash?limit=1&cursor={cursor}"),
                None,
                200,
            )
            .await?;
        seen.extend(names(&page, "folders"));
        seen.extend(names(&page, "files"));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
        assert!(seen.len() <= 3, "paging does not end: {seen:?}");
    }
    assert_eq!(seen, ["Archive", "b-inside.txt", "c-loose.txt"]);

    let stranger = User::new(&h, "trash-other@example.com").await?;
    let theirs = stranger.ok(Method::GET, "/v1/trash", None, 200).await?;
    assert!(names(&theirs, "folders").is_empty() && names(&theirs, "files").is_empty());

    u.ok(
        Method::POST,
        &format!("/v1/files/{inside}/restore"),
        None,
        200,
    )
    .await?;
    let after = u.ok(Method::GET, "/v1/trash", None, 200).await?;
    assert_eq!(names(&after, "files"), ["c-loose.txt"]);
    Ok(())
}

/// The trash empties itself: a file in the trash longer than `trash_retention_days` is purged by
/// the retention job (row gone, quota back), audited as a purge; a live file is untouched.
#[tokio::test]
async fn the_trash_empties_itself_after_its_retention() -> anyhow::Result<()> {
    let h = Harness::start_full(
        unthrottled(),
        coffer_metadata::MetadataConfig {
            trash_retention_days: 0,
            sweep_interval_secs: 1,
            ..Default::default()
        },
    )
    .await?;
    let u = User::new(&h, "retention@example.com").await?;
    let old = u.available("old.txt", None, &[1u8; 300], "clean").await?;
    let kept = u.available("kept.txt", None, &[2u8; 200], "clean").await?;
    u.ok(Method::DELETE, &format!("/v1/files/{old}"), None, 204)
        .await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while u
        .send(Method::GET, &format!("/v1/files/{old}"), None)
        .await?
        .status()
        != 404
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the trash kept its file"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    u.ok(Method::GET, &format!("/v1/files/{kept}"), None, 200)
        .await?;
    let db = sqlx::PgPool::connect(&h.stack.pg.superuser_url(&h.stack.metadata.database)).await?;
    let used: i64 =
        sqlx::query_scalar("SELECT used_bytes FROM metadata.quotas WHERE org_id = $1::uuid")
            .bind(&u.org)
            .fetch_one(&db)
            .await?;
    assert_eq!(used, 200, "the purged file's bytes were not given back");
    let log = u.ok(Method::GET, "/v1/audit", None, 200).await?;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "file.purge" && e["target"] == format!("file:{old}").as_str()),
        "{log}"
    );
    Ok(())
}

#[tokio::test]
async fn folders_move_rename_trash_restore_purge_and_quota() -> anyhow::Result<()> {
    let h = Harness::start_full(
        unthrottled(),
        coffer_metadata::MetadataConfig {
            default_quota_bytes: 1000,
            // A purged object outlives its row by this (the recovery window), then is swept.
            object_delete_delay_secs: 3,
            sweep_interval_secs: 1,
            ..Default::default()
        },
    )
    .await?;
    let u = User::new(&h, "tree@example.com").await?;
    let mk = |name: &str, parent: Option<&str>| {
        let body = json!({"name": name, "parent_id": parent});
        let u = &u;
        async move {
            u.ok(Method::POST, "/v1/folders", Some(body), 201)
                .await
                .map(|f| f["id"].as_str().unwrap().to_owned())
        }
    };
    let a = mk("a", None).await?;
    let b = mk("b", Some(&a)).await?;
    let c = mk("c", Some(&b)).await?;
    // The same name twice in one place: a conflict.
    assert_eq!(
        u.err(
            Method::POST,
            "/v1/folders",
            Some(json!({"name": "b", "parent_id": a}))
        )
        .await?,
        (409, "already_exists".into())
    );
    // No cycles: a into c (below a), a into itself.
    for target in [&c, &a] {
        assert_eq!(
            u.err(
                Method::PATCH,
                &format!("/v1/folders/{a}"),
                Some(json!({"parent_id": target}))
            )
            .await?,
            (409, "conflict".into())
        );
    }
    // Move c to the top, rename it.
    let moved = u
        .ok(
            Method::PATCH,
            &format!("/v1/folders/{c}"),
            Some(json!({"parent_id": null, "name": "c2"})),
            200,
        )
        .await?;
    assert_eq!(moved["parent_id"], Value::Null);
    assert_eq!(moved["name"], "c2");

    // Files in b, then b trashed: its files are trashed with it.
    let f1 = u
        .available("one.txt", Some(&b), &[1u8; 400], "clean")
        .await?;
    let file = u
        .ok(
            Method::PATCH,
            &format!("/v1/files/{f1}"),
            Some(json!({"name": "uno.txt"})),
            200,
        )
        .await?;
    assert_eq!(file["name"], "uno.txt");
    assert_eq!(file["folder_id"], b.as_str());
    // Quota: 400 of 1000 used; 700 more does not fit.
    let over = u
        .send(
            Method::POST,
            "/v1/files",
            Some(
                json!({"name": "big.bin", "size": 700, "content_type": "application/octet-stream"}),
            ),
        )
        .await?;
    assert_eq!(over.status(), 409);
    let body: Value = over.json().await?;
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("quota"),
        "{body}"
    );
    // metadata (in this process) counted the refusal and the uploads it signed.
    let m = coffer_telemetry::metrics();
    let refusals = m.sample("coffer_metadata_quota_refusals_total");
    assert!(refusals.is_some_and(|n| n >= 1.0), "{refusals:?}");
    let uploads = m.sample("coffer_metadata_presigns_total{kind=\"upload\"}");
    assert!(uploads.is_some_and(|n| n >= 1.0), "{uploads:?}");

    u.ok(Method::DELETE, &format!("/v1/folders/{b}"), None, 204)
        .await?;
    let file = u
        .ok(Method::GET, &format!("/v1/files/{f1}"), None, 200)
        .await?;
    assert_eq!(file["status"], "trashed");
    assert_eq!(
        u.err(Method::GET, &format!("/v1/folders/{b}/children"), None)
            .await?,
        (404, "not_found".into())
    );
    let inside_a = u
        .ok(Method::GET, &format!("/v1/folders/{a}/children"), None, 200)
        .await?;
    assert_eq!(inside_a["folders"].as_array().unwrap().len(), 0);
    // Restored into the top level, since its folder is in the trash.
    let restored = u
        .ok(Method::POST, &format!("/v1/files/{f1}/restore"), None, 200)
        .await?;
    assert_eq!(restored["status"], "available");
    assert_eq!(restored["folder_id"], Value::Null);

    // Purge: the row is gone and the quota released at once; the object stays for the recovery
    // window (a point-in-time restore may bring the row back), then the sweep deletes it.
    u.ok(Method::DELETE, &format!("/v1/files/{f1}/purge"), None, 204)
        .await?;
    assert_eq!(
        u.err(Method::GET, &format!("/v1/files/{f1}"), None).await?,
        (404, "not_found".into())
    );
    let head = || {
        h.stack
            .s3
            .client()
            .head_object()
            .bucket(coffer_metadata::testing::BUCKET)
            .key(format!("{}/{f1}", u.org))
            .send()
    };
    assert!(head().await.is_ok(), "the object went before its delay");
    let purged_at = std::time::Instant::now();
    while head().await.is_ok() {
        assert!(
            purged_at.elapsed() < std::time::Duration::from_secs(20),
            "the object outlived its delay"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(purged_at.elapsed() >= std::time::Duration::from_secs(2));
    u.ok(
        Method::POST,
        "/v1/files",
        Some(json!({"name": "big.bin", "size": 700, "content_type": "application/octet-stream"})),
        201,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn listings_page_through_folders_then_files() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "pages@example.com").await?;
    let mut want = Vec::new();
    for i in 0..5 {
        let f = u
            .ok(
                Method::POST,
                "/v1/folders",
                Some(json!({"name": format!("dir {i}")})),
                201,
            )
            .await?;
        want.push(f["id"].as_str().unwrap().to_owned());
    }
    for i in 0..4 {
        let f = u
            .ok(
                Method::POST,
                "/v1/files",
                Some(json!({"name": format!("file {i}"), "size": 1, "content_type": "text/plain"})),
                201,
            )
            .await?;
        want.push(f["file"]["id"].as_str().unwrap().to_owned());
    }
    for limit in [1, 2, 3, 5, 9, 100] {
        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let q = match &cursor {
                Some(c) => format!("?limit={limit}&cursor={c}"),
                None => format!("?limit={limit}"),
            };
            let page = u
                .ok(
                    Method::GET,
                    &format!("/v1/folders/root/children{q}"),
                    None,
                    200,
                )
                .await?;
            let n =
                page["folders"].as_array().unwrap().len() + page["files"].as_array().unwrap().len();
            assert!(n <= limit);
            for kind in ["folders", "files"] {
                for item in page[kind].as_array().unwrap() {
                    got.push(item["id"].as_str().unwrap().to_owned());
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(got, want, "limit {limit}");
    }
    Ok(())
}

#[tokio::test]
async fn bad_file_and_folder_input_is_400_or_404_never_500() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let u = User::new(&h, "badinput@example.com").await?;
    let file = |name: Value, size: Value| json!({"name": name, "size": size, "content_type": "text/plain"});
    let long = "n".repeat(10 * 1024);
    let cases: Vec<(Method, String, Option<Value>, u16)> = vec![
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!("a/b"), json!(1))),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!("a\u{0}b"), json!(1))),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!(long), json!(1))),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!(".."), json!(1))),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!("..."), json!(1))),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!(""), json!(1))),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!("ok"), json!(-1))),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!("ok"), json!(1e30))),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!("ok"), json!("12"))),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(file(json!("ok"), json!(u64::MAX))),
            413,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(json!({"name": "ok", "size": 1, "content_type": "not a type"})),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(json!({"name": "ok", "size": 1, "content_type": "text/plain", "sha256": "xyz"})),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(
                json!({"name": "ok", "size": 1, "content_type": "text/plain", "folder_id": "not-a-uuid"}),
            ),
            400,
        ),
        (
            Method::POST,
            "/v1/files".into(),
            Some(
                json!({"name": "ok", "size": 1, "content_type": "text/plain", "folder_id": uuid::Uuid::new_v4()}),
            ),
            400,
        ),
        (
            Method::POST,
            "/v1/folders".into(),
            Some(json!({"name": "x/y"})),
            400,
        ),
        (
            Method::POST,
            "/v1/folders".into(),
            Some(json!({"name": "."})),
            400,
        ),
        (
            Method::POST,
            "/v1/folders".into(),
            Some(json!({"name": "ok", "parent_id": "zzz"})),
            400,
        ),
        (Method::GET, "/v1/files/not-a-uuid".into(), None, 404),
        (
            Method::GET,
            format!("/v1/files/{}", uuid::Uuid::new_v4()),
            None,
            404,
        ),
        (Method::GET, "/v1/files/../../etc/passwd".into(), None, 404),
        (
            Method::PATCH,
            format!("/v1/files/{}", uuid::Uuid::new_v4()),
            Some(json!({"name": "x"})),
            404,
        ),
        (Method::DELETE, "/v1/files/%00/purge".into(), None, 404),
        (
            Method::POST,
            format!("/v1/files/{}/complete", uuid::Uuid::new_v4()),
            None,
            404,
        ),
        (Method::GET, "/v1/folders/nope/children".into(), None, 404),
        (
            Method::GET,
            "/v1/folders/root/children?limit=abc".into(),
            None,
            400,
        ),
        (
            Method::GET,
            "/v1/folders/root/children?cursor=garbage".into(),
            None,
            400,
        ),
        (
            Method::GET,
            "/v1/folders/root/children?limit=-1".into(),
            None,
            400,
        ),
        (
            Method::PATCH,
            format!("/v1/folders/{}", uuid::Uuid::new_v4()),
            Some(json!({"name": "x"})),
            404,
        ),
        (
            Method::DELETE,
            format!("/v1/shares/{}", uuid::Uuid::new_v4()),
            None,
            404,
        ),
        (
            Method::POST,
            format!("/v1/files/{}/shares", uuid::Uuid::new_v4()),
            Some(json!({"expires_in_seconds": 60})),
            404,
        ),
    ];
    for (method, path, body, status) in cases {
        let res = u.send(method.clone(), &path, body.clone()).await?;
        let (got, code) = error_code(res).await?;
        assert_eq!(got, status, "{method} {path} {body:?}: {code}");
    }
    // Share settings on a real file.
    let id = u.available("s.txt", None, b"s", "clean").await?;
    for body in [
        json!({"expires_in_seconds": 0}),
        json!({"expires_in_seconds": 999_999_999}),
        json!({"expires_in_seconds": 60, "password": "short"}),
        json!({"expires_in_seconds": -5}),
        // Passwords that do not show, or that a header cannot carry whole.
        json!({"expires_in_seconds": 60, "password": "        "}),
        json!({"expires_in_seconds": 60, "password": "\u{200B}".repeat(8)}),
        json!({"expires_in_seconds": 60, "password": " open sesame"}),
        json!({"expires_in_seconds": 60, "password": "open sesame "}),
    ] {
        let (got, _) = u
            .err(
                Method::POST,
                &format!("/v1/files/{id}/shares"),
                Some(body.clone()),
            )
            .await?;
        assert_eq!(got, 400, "{body}");
    }
    // One spelling of a password: set composed, given decomposed (as some keyboards send it).
    let share = u
        .ok(
            Method::POST,
            &format!("/v1/files/{id}/shares"),
            Some(json!({"expires_in_seconds": 60, "password": "p\u{e4}sswort-gr\u{fc}n"})),
            201,
        )
        .await?;
    let public = crate::harness::client(&h.ca_pem, None)?;
    let res = public
        .post(h.url(&format!("/s/{}", share["token"].as_str().unwrap())))
        .form(&[("password", "pa\u{308}sswort-gru\u{308}n")])
        .send()
        .await?;
    // The form's answer: 303 to the presigned GET.
    assert_eq!(res.status(), 303, "the decomposed spelling of the password");
    Ok(())
}

#[tokio::test]
async fn another_orgs_ids_are_404_through_every_endpoint() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let a = User::new(&h, "tenant-a@example.com").await?;
    let b = User::new(&h, "tenant-b@example.com").await?;
    let folder = a
        .ok(
            Method::POST,
            "/v1/folders",
            Some(json!({"name": "A only"})),
            201,
        )
        .await?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = a
        .available("a-secret.txt", Some(&folder), b"A's bytes", "clean")
        .await?;
    let share = a
        .ok(
            Method::POST,
            &format!("/v1/files/{file}/shares"),
            Some(json!({"expires_in_seconds": 600})),
            201,
        )
        .await?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_file = b.available("b.txt", None, b"B", "clean").await?;
    let b_folder = b
        .ok(Method::POST, "/v1/folders", Some(json!({"name": "B"})), 201)
        .await?["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // (method, path template, body template); {} is A's id or an unknown one.
    let cases: Vec<(Method, &str, Option<&str>, &str)> = vec![
        (Method::GET, "/v1/files/{}", None, "file"),
        (
            Method::PATCH,
            "/v1/files/{}",
            Some(r#"{"name": "x"}"#),
            "file",
        ),
        (Method::DELETE, "/v1/files/{}", None, "file"),
        (Method::POST, "/v1/files/{}/restore", None, "file"),
        (Method::DELETE, "/v1/files/{}/purge", None, "file"),
        (Method::POST, "/v1/files/{}/complete", None, "file"),
        (Method::GET, "/v1/files/{}/download", None, "file"),
        (
            Method::POST,
            "/v1/files/{}/shares",
            Some(r#"{"expires_in_seconds": 60}"#),
            "file",
        ),
        (Method::DELETE, "/v1/shares/{}", None, "share"),
        (Method::GET, "/v1/folders/{}/children", None, "folder"),
        (
            Method::PATCH,
            "/v1/folders/{}",
            Some(r#"{"name": "x"}"#),
            "folder",
        ),
        (Method::DELETE, "/v1/folders/{}", None, "folder"),
        (
            Method::POST,
            "/v1/folders",
            Some(r#"{"name": "x", "parent_id": "{}"}"#),
            "folder",
        ),
        (
            Method::POST,
            "/v1/files",
            Some(r#"{"name": "x", "size": 1, "content_type": "text/plain", "folder_id": "{}"}"#),
            "folder",
        ),
        (
            Method::PATCH,
            "/v1/files/B_FILE",
            Some(r#"{"folder_id": "{}"}"#),
            "folder",
        ),
        (
            Method::PATCH,
            "/v1/folders/B_FOLDER",
            Some(r#"{"parent_id": "{}"}"#),
            "folder",
        ),
    ];
    for (method, path, body, kind) in cases {
        let real = match kind {
            "file" => &file,
            "share" => &share,
            _ => &folder,
        };
        let mut answers = Vec::new();
        for id in [real.clone(), uuid::Uuid::new_v4().to_string()] {
            let fill = |t: &str| {
                t.replace("{}", &id)
                    .replace("B_FILE", &b_file)
                    .replace("B_FOLDER", &b_folder)
            };
            let body = body.map(|b| serde_json::from_str::<Value>(&fill(b)).unwrap());
            let res = b.send(method.clone(), &fill(path), body).await?;
            let status = res.status().as_u16();
            let json: Value = res.json().await?;
            answers.push((
                status,
                json["error"]["code"].clone(),
                json["error"]["message"].clone(),
            ));
        }
        assert_eq!(
            answers[0], answers[1],
            "{method} {path}: A's id answers differently"
        );
        assert!(
            matches!(answers[0].0, 404 | 400),
            "{method} {path}: {:?}",
            answers[0]
        );
    }
    // A's things are intact and only A's.
    let f = a
        .ok(Method::GET, &format!("/v1/files/{file}"), None, 200)
        .await?;
    assert_eq!(f["name"], "a-secret.txt");
    assert_eq!(f["status"], "available");
    assert_eq!(f["folder_id"], folder.as_str());
    let grant = a
        .ok(
            Method::GET,
            &format!("/v1/files/{file}/download"),
            None,
            200,
        )
        .await?;
    assert_eq!(
        reqwest::get(grant["url"].as_str().unwrap())
            .await?
            .bytes()
            .await?
            .as_ref(),
        b"A's bytes"
    );
    let root_b = b
        .ok(Method::GET, "/v1/folders/root/children", None, 200)
        .await?;
    assert_eq!(root_b["folders"].as_array().unwrap().len(), 1);
    assert_eq!(root_b["files"].as_array().unwrap().len(), 1);
    Ok(())
}

#[tokio::test]
async fn concurrent_purges_release_the_quota_once() -> anyhow::Result<()> {
    let h = Harness::start_full(
        unthrottled(),
        coffer_metadata::MetadataConfig {
            default_quota_bytes: 1000,
            ..Default::default()
        },
    )
    .await?;
    let u = User::new(&h, "purge-race@example.com").await?;
    let keep = u.available("keep.bin", None, &[0u8; 300], "clean").await?;
    let gone = u.available("gone.bin", None, &[1u8; 300], "clean").await?;
    let path = format!("/v1/files/{gone}/purge");
    let (a, b) = tokio::join!(
        u.send(Method::DELETE, &path, None),
        u.send(Method::DELETE, &path, None)
    );
    let mut statuses = [a?.status().as_u16(), b?.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [204, 404]);
    // 300 bytes remain counted: 701 more do not fit, 700 do.
    let create = |size: u64| json!({"name": format!("n{size}"), "size": size, "content_type": "application/octet-stream"});
    assert_eq!(
        u.err(Method::POST, "/v1/files", Some(create(701))).await?,
        (409, "quota_exceeded".into())
    );
    u.ok(Method::POST, "/v1/files", Some(create(700)), 201)
        .await?;
    u.ok(Method::GET, &format!("/v1/files/{keep}"), None, 200)
        .await?;
    Ok(())
}

#[tokio::test]
async fn uploads_never_completed_are_swept_and_their_quota_returned() -> anyhow::Result<()> {
    let h = Harness::start_full(
        unthrottled(),
        coffer_metadata::MetadataConfig {
            default_quota_bytes: 1000,
            sweep_interval_secs: 1,
            ..Default::default()
        },
    )
    .await?;
    let u = User::new(&h, "sweep@example.com").await?;
    let create = |name: &str, size: u64| json!({"name": name, "size": size, "content_type": "application/octet-stream"});
    // Never uploaded; uploaded but never completed; completed long ago.
    let never = u
        .ok(
            Method::POST,
            "/v1/files",
            Some(create("never.bin", 400)),
            201,
        )
        .await?["file"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let abandoned = u.upload("abandoned.bin", None, &[7u8; 300]).await?;
    let kept = u.available("kept.bin", None, &[1u8; 200], "clean").await?;
    assert_eq!(
        u.err(Method::POST, "/v1/files", Some(create("more.bin", 200)))
            .await?,
        (409, "quota_exceeded".into())
    );
    // Recent pending uploads are left alone.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    u.ok(Method::GET, &format!("/v1/files/{never}"), None, 200)
        .await?;
    h.stack
        .pg
        .execute_as_superuser(
            &h.stack.metadata.database,
            "UPDATE metadata.files SET created_at = now() - interval '2 days'",
        )
        .await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let a = u
            .send(Method::GET, &format!("/v1/files/{never}"), None)
            .await?;
        let b = u
            .send(Method::GET, &format!("/v1/files/{abandoned}"), None)
            .await?;
        if a.status() == 404 && b.status() == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stale uploads were not swept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let object = h
        .stack
        .s3
        .client()
        .head_object()
        .bucket(coffer_metadata::testing::BUCKET)
        .key(format!("{}/{abandoned}", u.org))
        .send()
        .await;
    assert!(object.is_err(), "the abandoned object is still stored");
    // The completed file stays, and the 700 bytes are free again.
    let file = u
        .ok(Method::GET, &format!("/v1/files/{kept}"), None, 200)
        .await?;
    assert_eq!(file["status"], "available");
    u.ok(
        Method::POST,
        "/v1/files",
        Some(create("more.bin", 800)),
        201,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn owners_and_admins_release_quarantined_files_audited() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let owner = User::new(&h, "release-owner@example.com").await?;
    let other = User::new(&h, "release-other@example.com").await?;
    let id = owner
        .available("flagged.bin", None, b"false positive", "suspicious")
        .await?;
    let clean = owner.available("fine.txt", None, b"fine", "clean").await?;
    for (email, role) in [
        ("release-member@example.com", "member"),
        ("release-admin@example.com", "admin"),
    ] {
        owner
            .ok(
                Method::POST,
                "/v1/members",
                Some(json!({"email": email, "password": crate::harness::PASSWORD, "role": role})),
                201,
            )
            .await?;
    }
    let member = User::login(&h, "release-member@example.com").await?;
    let admin = User::login(&h, "release-admin@example.com").await?;
    let path = format!("/v1/files/{id}/release");
    assert_eq!(
        member.err(Method::POST, &path, None).await?,
        (403, "permission_denied".into())
    );
    assert_eq!(
        other.err(Method::POST, &path, None).await?,
        (404, "not_found".into())
    );
    assert_eq!(
        owner
            .err(Method::POST, &format!("/v1/files/{clean}/release"), None)
            .await?,
        (409, "conflict".into())
    );
    let file = admin.ok(Method::POST, &path, None, 200).await?;
    assert_eq!(file["status"], "available");
    assert_eq!(file["verdict"], "suspicious", "the finding stays on record");
    owner
        .ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    assert_eq!(
        owner.err(Method::POST, &path, None).await?,
        (409, "conflict".into())
    );
    let log = owner
        .ok(Method::GET, "/v1/audit?action=file.release", None, 200)
        .await?;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!(items[0]["target"], format!("file:{id}"));
    Ok(())
}

/// A purge frees the quota at once, but the bytes stay stored for the recovery window
/// (`object_delete_delay_secs`): they may take one more quota's worth, no more, so uploading and
/// purging in a loop cannot grow the bucket without bound. The sweep gives the room back.
#[tokio::test]
async fn purged_bytes_still_stored_are_bounded_by_a_second_quota() -> anyhow::Result<()> {
    let h = Harness::start_full(
        unthrottled(),
        coffer_metadata::MetadataConfig {
            default_quota_bytes: 1000,
            object_delete_delay_secs: 8,
            sweep_interval_secs: 1,
            ..Default::default()
        },
    )
    .await?;
    let u = User::new(&h, "purge-loop@example.com").await?;
    let create = |size: u64| json!({"name": format!("n{size}"), "size": size, "content_type": "application/octet-stream"});
    let started = std::time::Instant::now();
    for i in 0..2u8 {
        let id = u
            .available(&format!("f{i}.bin"), None, &[i; 1000], "clean")
            .await?;
        u.ok(Method::DELETE, &format!("/v1/files/{id}/purge"), None, 204)
            .await?;
    }
    // Nothing is live, but 2000 purged bytes are still stored: twice the quota. Not one more
    // byte fits until the sweep deletes them.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "too slow to test"
    );
    assert_eq!(
        u.err(Method::POST, "/v1/files", Some(create(1))).await?,
        (409, "quota_exceeded".into())
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let res = u
            .send(Method::POST, "/v1/files", Some(create(1000)))
            .await?;
        if res.status() == 201 {
            break;
        }
        assert_eq!(res.status(), 409);
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep never gave the room back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Ok(())
}
