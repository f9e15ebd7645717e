//! `coffer put`: create the file, send its bytes straight to the store through presigned URLs
//! (one PUT, or parts several at a time for large files), complete. Each upload's state (the
//! file id and its plan) is written next to the profile before the first byte is sent, so a
//! second `coffer put` of the same file after Ctrl-C, a crash or a dropped connection asks the
//! store which parts it holds and sends only the others.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::client::Api;
use crate::model::{
    File, FileCreated, PartUrl, PartUrls, Presigned, StoredPart, StoredParts, Upload,
};
use crate::progress::Meter;

/// Part URLs asked for at once: few enough that each is used well within its five minutes.
const URL_BATCH: usize = 8;
/// Tries of one part (or one PUT) before the upload gives up; each retry signs a fresh URL.
const TRIES: u32 = 3;
/// The chunk the file is read and sent in.
const CHUNK: usize = 256 * 1024;

/// What was uploaded and how.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    pub file: File,
    /// Parts (or the one PUT) sent by this run.
    pub parts_sent: u32,
    /// Parts the store already held from an earlier, interrupted run.
    pub parts_resumed: u32,
    pub resumed: bool,
}

/// The state of one upload, kept until it completes.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    file_id: String,
    multipart: Option<(u64, u32)>,
    /// The local file as it was when the upload began: another size or mtime is another file.
    size: u64,
    mtime_ns: String,
}

fn mtime_ns(meta: &std::fs::Metadata) -> String {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
        .to_string()
}

/// Where one upload's state lives: keyed by the gateway, the local path and the destination
/// (one pending file holds a name, so one state per destination name).
fn state_path(dir: &Path, gateway: &str, local: &Path, folder: &str, name: &str) -> PathBuf {
    let key = sha2::Sha256::digest(
        json!([gateway, local.to_string_lossy(), folder, name])
            .to_string()
            .as_bytes(),
    );
    dir.join(format!("{key:x}.json"))
}

/// What an earlier run left.
enum Earlier {
    /// Nothing to go on with.
    None,
    /// A multipart upload still pending: send the missing parts.
    Resume(File, (u64, u32)),
    /// It completed (the answer was lost, or the process died before forgetting it).
    Done(File),
}

/// One file to put.
pub struct Job<'a> {
    pub api: &'a Api,
    pub local: PathBuf,
    pub folder_ref: Option<String>,
    pub name: String,
    pub state_dir: PathBuf,
    pub parts_in_flight: usize,
    pub meter: Meter,
}

impl Job<'_> {
    pub async fn run(self) -> anyhow::Result<Uploaded> {
        let local = std::fs::canonicalize(&self.local)
            .with_context(|| format!("{}: cannot read it", self.local.display()))?;
        let meta = std::fs::metadata(&local)?;
        anyhow::ensure!(
            meta.is_file(),
            "{}: not a regular file",
            self.local.display()
        );
        let size = meta.len();
        crate::profile::create_private_dir(&self.state_dir)?;
        let state_file = state_path(
            &self.state_dir,
            self.api.base(),
            &local,
            self.folder_ref.as_deref().unwrap_or("root"),
            &self.name,
        );
        // One run at a time per file and destination: a second would send the same parts and
        // one of the two would fail at complete. The lock goes with the process, killed or not.
        let lock_path = state_file.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("writing {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "{}: another coffer put of this file to this place is running",
                self.local.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let (file, plan, resumed) = match self.earlier(&state_file, &meta).await? {
            Earlier::Done(file) => {
                let _ = std::fs::remove_file(&state_file);
                let _ = std::fs::remove_file(&lock_path);
                return Ok(Uploaded {
                    file,
                    parts_sent: 0,
                    parts_resumed: 0,
                    resumed: true,
                });
            }
            Earlier::Resume(file, plan) => (file, Some(plan), true),
            Earlier::None => {
                // The whole file's SHA-256, declared: a single PUT's store checks it, and for a
                // file in parts the scan does (other bytes, say a file that grew while it was
                // sent, end `failed`). It is also what `coffer get` verifies against.
                self.meter.file.set_message("hashing");
                let sha256 = hash_file(&local).await?;
                let created: FileCreated = self
                    .api
                    .post(
                        "/v1/files",
                        &json!({
                            "name": self.name,
                            "folder_id": self.folder_ref,
                            "size": size,
                            "content_type": content_type(&self.name),
                            "sha256": sha256,
                        }),
                    )
                    .await?;
                let plan = match &created.upload {
                    Upload::Put(_) => None,
                    Upload::Multipart {
                        part_size,
                        part_count,
                    } => Some((*part_size, *part_count)),
                };
                let state = State {
                    file_id: created.file.id.clone(),
                    multipart: plan,
                    size,
                    mtime_ns: mtime_ns(&meta),
                };
                crate::profile::write_private(&state_file, &serde_json::to_vec(&state)?)?;
                let file = created.file;
                if let Upload::Put(put) = created.upload {
                    self.meter.file.set_message("sending");
                    // A single PUT's URL cannot be signed again: retries reuse it (five minutes).
                    put_once(self.api, &local, size, &self.meter, put).await?;
                    let done = self.complete(&file.id, None).await?;
                    let _ = std::fs::remove_file(&state_file);
                    let _ = std::fs::remove_file(&lock_path);
                    return Ok(Uploaded {
                        file: done,
                        parts_sent: 1,
                        parts_resumed: 0,
                        resumed: false,
                    });
                }
                (file, plan, false)
            }
        };
        let (part_size, part_count) = plan.context("a resumed upload without parts")?;
        let (sent, kept) = self
            .send_parts(&local, &file.id, size, part_size, part_count, resumed)
            .await?;
        let _ = std::fs::remove_file(&state_file);
        let _ = std::fs::remove_file(&lock_path);
        Ok(Uploaded {
            file: sent,
            parts_sent: kept.0,
            parts_resumed: kept.1,
            resumed,
        })
    }

    /// What an earlier run of the same file to the same place left: a multipart upload still
    /// pending goes on; one that completed is the result. A pending single PUT cannot be signed
    /// again, and a pending upload of a file changed since cannot be finished: that pending file
    /// is trashed and purged (its name freed) and the upload starts over.
    async fn earlier(
        &self,
        state_file: &Path,
        meta: &std::fs::Metadata,
    ) -> anyhow::Result<Earlier> {
        let Ok(text) = std::fs::read(state_file) else {
            return Ok(Earlier::None);
        };
        let Ok(state) = serde_json::from_slice::<State>(&text) else {
            let _ = std::fs::remove_file(state_file);
            return Ok(Earlier::None);
        };
        let file = match self
            .api
            .get::<File>(&format!("/v1/files/{}", state.file_id))
            .await
        {
            Ok(f) => f,
            Err(e) if crate::remote::is_not_found(&e) => {
                let _ = std::fs::remove_file(state_file);
                return Ok(Earlier::None);
            }
            Err(e) => return Err(e),
        };
        let same = state.size == meta.len() && state.mtime_ns == mtime_ns(meta);
        match (file.status.as_str(), state.multipart) {
            ("pending_upload", Some(plan)) if same => return Ok(Earlier::Resume(file, plan)),
            ("pending_upload", _) => {
                self.api
                    .act(Method::DELETE, &format!("/v1/files/{}", file.id))
                    .await?;
                self.api
                    .act(Method::DELETE, &format!("/v1/files/{}/purge", file.id))
                    .await?;
            }
            ("scanning" | "available" | "quarantined", _) if same => {
                return Ok(Earlier::Done(file));
            }
            _ => {}
        }
        let _ = std::fs::remove_file(state_file);
        Ok(Earlier::None)
    }

    /// Sends the parts the store does not hold yet, several at a time, and completes. Returns
    /// the file and (parts sent, parts the store already held).
    async fn send_parts(
        &self,
        local: &Path,
        id: &str,
        size: u64,
        part_size: u64,
        part_count: u32,
        resumed: bool,
    ) -> anyhow::Result<(File, (u32, u32))> {
        let part_len = |n: u32| (size - u64::from(n - 1) * part_size).min(part_size);
        let mut have: Vec<StoredPart> = if resumed {
            let stored: StoredParts = self.api.get(&format!("/v1/files/{id}/parts")).await?;
            stored
                .parts
                .into_iter()
                .filter(|p| p.number >= 1 && p.number <= part_count && p.size == part_len(p.number))
                .collect()
        } else {
            Vec::new()
        };
        let kept = have.len() as u32;
        let kept_bytes: u64 = have.iter().map(|p| p.size).sum();
        self.meter.add(kept_bytes);
        let missing: Vec<u32> = (1..=part_count)
            .filter(|n| !have.iter().any(|p| p.number == *n))
            .collect();
        self.meter
            .file
            .set_message(if resumed { "resuming" } else { "sending" });
        let api = self.api;
        let batches = futures_util::stream::iter(missing.chunks(URL_BATCH).map(<[u32]>::to_vec))
            .then(move |numbers| async move { presign(api, id, &numbers).await })
            .map_ok(|urls| futures_util::stream::iter(urls.into_iter().map(Ok::<_, anyhow::Error>)))
            .try_flatten();
        let sent: Vec<StoredPart> = batches
            .map_ok(|part: PartUrl| {
                let number = part.number;
                let len = part_len(number);
                let offset = u64::from(number - 1) * part_size;
                let first = Presigned {
                    url: part.url,
                    headers: part.headers,
                };
                async move {
                    let etag = send_with_retries(
                        api,
                        local,
                        offset,
                        len,
                        &self.meter,
                        Some(first),
                        || async move {
                            let mut fresh = presign(api, id, &[number]).await?;
                            let p = fresh.pop().context("no URL for the part")?;
                            Ok(Presigned {
                                url: p.url,
                                headers: p.headers,
                            })
                        },
                    )
                    .await?;
                    Ok::<_, anyhow::Error>(StoredPart {
                        number,
                        size: len,
                        etag,
                    })
                }
            })
            .try_buffer_unordered(self.parts_in_flight.max(1))
            .try_collect()
            .await?;
        let sent_count = sent.len() as u32;
        have.extend(sent);
        have.sort_by_key(|p| p.number);
        let parts: Vec<_> = have
            .iter()
            .map(|p| json!({"number": p.number, "etag": p.etag}))
            .collect();
        let file = self.complete(id, Some(json!({ "parts": parts }))).await?;
        Ok((file, (sent_count, kept)))
    }

    async fn complete(&self, id: &str, body: Option<serde_json::Value>) -> anyhow::Result<File> {
        self.meter.file.set_message("completing");
        let path = format!("/v1/files/{id}/complete");
        match body {
            Some(b) => self.api.post(&path, &b).await,
            None => self.api.call::<(), File>(Method::POST, &path, None).await,
        }
    }
}

async fn presign(api: &Api, id: &str, numbers: &[u32]) -> anyhow::Result<Vec<PartUrl>> {
    let urls: PartUrls = api
        .post(
            &format!("/v1/files/{id}/parts"),
            &json!({ "numbers": numbers }),
        )
        .await?;
    anyhow::ensure!(
        urls.parts.len() == numbers.len(),
        "the gateway signed {} of {} parts",
        urls.parts.len(),
        numbers.len()
    );
    Ok(urls.parts)
}

/// Sends `len` bytes of the file from `offset` to a presigned URL, up to [`TRIES`] times (a
/// fresh URL from `again` for each retry); returns the store's ETag.
async fn send_with_retries<F, Fut>(
    api: &Api,
    local: &Path,
    offset: u64,
    len: u64,
    meter: &Meter,
    first: Option<Presigned>,
    again: F,
) -> anyhow::Result<String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Presigned>>,
{
    let mut target = first;
    let mut tries = 0;
    loop {
        tries += 1;
        let url = match target.take() {
            Some(u) => u,
            None => again().await?,
        };
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        match send_range(api, local, offset, len, meter, &sent, &url).await {
            Ok(etag) => return Ok(etag),
            // A whole-file URL writes once (`If-None-Match: *`): a retry refused because the
            // object exists finds the bytes of an earlier try that the store kept but whose
            // answer was lost (a connection cut after the last byte). That try succeeded;
            // complete checks the object's size and checksum.
            Err(e) if e.exists && tries > 1 => return Ok(String::new()),
            Err(e) => {
                meter.take_back(sent.load(std::sync::atomic::Ordering::Relaxed));
                if tries >= TRIES || !e.retryable {
                    return Err(e.error);
                }
                tokio::time::sleep(Duration::from_millis(500 * u64::from(tries))).await;
            }
        }
    }
}

struct SendError {
    error: anyhow::Error,
    retryable: bool,
    /// The store refused the write because the object exists (412 `PreconditionFailed`).
    exists: bool,
}

async fn send_range(
    api: &Api,
    local: &Path,
    offset: u64,
    len: u64,
    meter: &Meter,
    sent: &std::sync::Arc<std::sync::atomic::AtomicU64>,
    target: &Presigned,
) -> Result<String, SendError> {
    let fatal = |error: anyhow::Error| SendError {
        error,
        retryable: false,
        exists: false,
    };
    let mut f = tokio::fs::File::open(local)
        .await
        .with_context(|| format!("{}: cannot read it", local.display()))
        .map_err(fatal)?;
    f.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| fatal(e.into()))?;
    let meter2 = meter.clone();
    let sent2 = sent.clone();
    let body =
        tokio_util::io::ReaderStream::with_capacity(f.take(len), CHUNK).and_then(move |chunk| {
            let n = chunk.len() as u64;
            sent2.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            meter2.add(n);
            async move {
                crate::pace::wait(n).await;
                Ok(chunk)
            }
        });
    let mut req = api.store.put(&target.url);
    for (k, v) in &target.headers {
        req = req.header(k, v);
    }
    req = req.header("content-length", len.to_string());
    let res = req
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .map_err(|e| SendError {
            // Never the URL: it would let whoever reads the error write the part.
            error: anyhow::anyhow!("sending to the store failed: {}", e.without_url()),
            retryable: true,
            exists: false,
        })?;
    let status = res.status();
    if status.is_success() {
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        return Ok(etag);
    }
    let text = res.text().await.unwrap_or_default();
    let code = s3_code(&text);
    Err(SendError {
        error: anyhow::anyhow!("the store refused the bytes: HTTP {status} {code}"),
        // An expired URL (403) or a store hiccup (5xx) is worth a fresh URL; a 400 is not.
        retryable: status.is_server_error() || status.as_u16() == 403 || status.as_u16() == 408,
        exists: status.as_u16() == 412 && code == "PreconditionFailed",
    })
}

/// The SHA-256 of a local file, read on the blocking pool.
pub async fn hash_file(path: &Path) -> anyhow::Result<String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path)?;
        let mut h = sha2::Sha256::new();
        std::io::copy(&mut f, &mut h)?;
        anyhow::Ok(format!("{:x}", h.finalize()))
    })
    .await?
}

/// Sends a whole file with one presigned PUT (retried with the same URL).
pub async fn put_once(
    api: &Api,
    local: &Path,
    size: u64,
    meter: &Meter,
    put: Presigned,
) -> anyhow::Result<String> {
    let again = put.clone();
    send_with_retries(api, local, 0, size, meter, Some(put), || {
        let u = again.clone();
        async move { Ok(u) }
    })
    .await
}

/// The `<Code>` of an S3 error body (never its other text, which may echo the request).
pub fn s3_code(xml: &str) -> String {
    xml.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| {
            code.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(64)
                .collect()
        })
        .unwrap_or_default()
}

/// A content type from the name's extension (the scan finds the true type either way).
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" | "md" | "log" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// Waits for a file's verdict: until it leaves `scanning`.
pub async fn wait_verdict(api: &Api, id: &str, timeout: Duration) -> anyhow::Result<File> {
    api.poll(
        &format!("/v1/files/{id}"),
        timeout,
        |f: &File| f.status != "scanning" && f.status != "pending_upload",
        "verdict (the scan is still running; coffer ls shows it later)",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::presigning::PresigningConfig;

    /// A presigned PUT as the gateway gives one: written once, encrypted.
    async fn presigned_put(s3: &coffer_testkit::S3, key: &str, len: u64) -> Presigned {
        let put = s3
            .client()
            .put_object()
            .bucket("vault")
            .key(key)
            .content_length(len as i64)
            .if_none_match("*")
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
            .await
            .unwrap();
        Presigned {
            url: put.uri().to_owned(),
            headers: put
                .headers()
                .filter(|(k, _)| *k != "content-length")
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    #[tokio::test]
    async fn a_retry_that_finds_the_bytes_a_cut_try_stored_is_done_and_a_first_try_is_not() {
        let s3 = coffer_testkit::S3::start().await.unwrap();
        s3.client()
            .create_bucket()
            .bucket("vault")
            .send()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("payroll.csv");
        std::fs::write(&local, b"name,salary\n").unwrap();
        let len = 12;
        let api = Api::new(&crate::profile::Profile {
            gateway: "https://localhost:1".into(),
            ca_pem: None,
            credential: None,
        })
        .unwrap();
        let bars = crate::progress::Bars::new(true);
        let meter = Meter {
            file: bars.bytes("payroll.csv", len),
            total: None,
        };
        let url = presigned_put(&s3, "org/file", len).await;
        // The try whose answer was lost: the store kept its bytes.
        let mut first = api.store.put(&url.url).body(std::fs::read(&local).unwrap());
        for (k, v) in &url.headers {
            first = first.header(k, v);
        }
        assert!(first.send().await.unwrap().status().is_success());

        // The client's own first try never reached the store (a dead port); its retry is
        // refused as the object exists: that is the cut try's success, not a failure.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let cut = Presigned {
            url: format!("http://{dead}/vault/org/file"),
            headers: url.headers.clone(),
        };
        let again = url.clone();
        let sent = send_with_retries(&api, &local, 0, len, &meter, Some(cut), || {
            let u = again.clone();
            async move { Ok(u) }
        })
        .await;
        assert!(sent.is_ok(), "{sent:?}");

        // A first try that finds an object there did not write it: refused, as before.
        let again = url.clone();
        let refused = send_with_retries(&api, &local, 0, len, &meter, Some(url.clone()), || {
            let u = again.clone();
            async move { Ok(u) }
        })
        .await
        .unwrap_err();
        assert!(refused.to_string().contains("412"), "{refused}");
    }
}
