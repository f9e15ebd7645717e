//! An embedded S3-compatible server: s3s (SigV4 and presigned-URL verification) over s3s-fs
//! (objects as files), wrapped to behave as the production store Coffer relies on (README,
//! "Object store"):
//!
//! - the bucket policy: a PutObject without `x-amz-server-side-encryption: AES256` is refused, and
//!   HEAD and GET report the encryption as S3 does;
//! - conditional writes: `If-None-Match: *` refuses a PUT to a key that exists (412), atomically
//!   (s3s-fs checks, then writes: two such PUTs at once could both pass), and a refused PUT leaves
//!   no object behind (s3s-fs writes the file before it checks a checksum);
//! - versions, as a versioned S3 bucket keeps them: every object has a version id
//!   (`x-amz-version-id`) that changes whenever its bytes are written; writing over an object or
//!   deleting it without a version keeps the old bytes as a noncurrent version, still served to a
//!   GET or HEAD naming its `versionId`, listed by ListObjectVersions, and gone only when deleted
//!   by version id (DeleteObject or DeleteObjects). (No delete markers: a deleted key is simply
//!   absent.) [`S3::start_unversioned`] keeps nothing and reports no version ids (ListObjectVersions
//!   says `null`), as a bucket without versioning does;
//! - `If-Match` on GET and HEAD (412 when the ETag differs), which s3s-fs ignores;
//! - the `response-*` overrides of a presigned GET (content type, encoding, disposition, cache
//!   control, language), which s3s-fs ignores;
//! - CORS as the bucket's CORS configuration gives it (k8s/object-store/cors.json): for the
//!   origins allowed with [`S3::allow_origin`] (the web app's), preflights of PUT and GET
//!   with [`CORS_ALLOWED_HEADERS`] are answered, and answers carry `Access-Control-Allow-Origin`
//!   and expose `ETag`; any other origin gets no CORS headers (the browser refuses), its
//!   preflight a 403;
//! - multipart uploads (create with the SSE the policy requires, parts, ListParts, complete under
//!   the key's lock with `If-None-Match`, abort), as s3s-fs keeps them.
//!
//! Other operations are not offered. s3s-fs keeps objects as plain files
//! under a temporary directory: the encryption reported here is the policy's, not real
//! encryption at rest. That is enough for a development store.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rand::Rng as _;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use sha2::Digest as _;
use tokio::net::TcpListener;

/// The request headers a browser may send to the store (the presigned PUT's signed headers;
/// `content-length` is the browser's own). k8s/object-store/cors.json allows the same.
pub const CORS_ALLOWED_HEADERS: &[&str] = &[
    "content-type",
    "x-amz-server-side-encryption",
    "x-amz-checksum-sha256",
    "x-amz-sdk-checksum-algorithm",
    "if-none-match",
];
/// The methods a browser may use on the store.
pub const CORS_ALLOWED_METHODS: &[&str] = &["PUT", "GET"];

/// The origins allowed to reach the store from a browser.
type Origins = Arc<std::sync::RwLock<Vec<String>>>;

/// The CORS answer to a preflight: allowed when the origin, the method and every header are.
fn preflight(origins: &Origins, headers: &http::HeaderMap) -> http::Response<s3s::Body> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let origin = text("origin");
    let method_ok = CORS_ALLOWED_METHODS.contains(&text("access-control-request-method"));
    let asked = text("access-control-request-headers").to_ascii_lowercase();
    let headers_ok = asked
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .all(|h| CORS_ALLOWED_HEADERS.contains(&h));
    let origin_ok = origins.read().is_ok_and(|o| o.iter().any(|a| a == origin));
    let mut res = http::Response::new(s3s::Body::empty());
    if !(origin_ok && method_ok && headers_ok) {
        *res.status_mut() = http::StatusCode::FORBIDDEN;
        return res;
    }
    let h = res.headers_mut();
    let value =
        |v: &str| http::HeaderValue::from_str(v).unwrap_or(http::HeaderValue::from_static(""));
    h.insert("access-control-allow-origin", value(origin));
    h.insert(
        "access-control-allow-methods",
        value(&CORS_ALLOWED_METHODS.join(", ")),
    );
    h.insert("access-control-allow-headers", value(&asked));
    h.insert("access-control-max-age", value("3600"));
    h.insert(
        "vary",
        value("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
    );
    res
}

/// Static credentials of the embedded server.
#[derive(Debug, Clone)]
pub struct S3Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl S3Credentials {
    /// Fresh random credentials.
    pub fn random() -> Self {
        let random = |n| {
            rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(n)
                .map(char::from)
                .collect::<String>()
        };
        S3Credentials {
            access_key: format!("COFFERDEV{}", random(11).to_uppercase()),
            secret_key: random(40),
            region: "us-east-1".into(),
        }
    }
}

fn aes256() -> Option<ServerSideEncryption> {
    Some(ServerSideEncryption::from_static(
        ServerSideEncryption::AES256,
    ))
}

/// s3s-fs behind the bucket policy, with the conditional requests and versions S3 offers.
struct PolicyFs {
    inner: s3s_fs::FileSystem,
    /// The canonical directory s3s-fs keeps buckets in.
    root: PathBuf,
    /// Noncurrent versions, as `<bucket>/<key>/<version id>` (outside `root`, where s3s-fs would
    /// take a directory for a bucket).
    noncurrent: PathBuf,
    /// Whether the bucket reports version ids (switchable in tests: [`S3::set_versioning`]).
    versioning: Arc<AtomicBool>,
    /// Keys with a PUT in progress: one writer per key at a time.
    writing: Arc<Mutex<HashSet<(String, String)>>>,
    /// The ETag of each part uploaded, by (upload id, part number): s3s-fs lists parts without
    /// them.
    part_etags: Arc<Mutex<std::collections::HashMap<(String, i32), String>>>,
    /// Open uploads in parts: upload id → (bucket, key). An id is good for its own key only
    /// (s3s-fs would take it for any), and ListMultipartUploads lists them.
    uploads: Arc<Mutex<std::collections::BTreeMap<String, (String, String)>>>,
}

/// S3's smallest part but for the last.
const MIN_PART: u64 = 5 * 1024 * 1024;

/// Holds a key against other writers until dropped.
struct Writing {
    key: (String, String),
    set: Arc<Mutex<HashSet<(String, String)>>>,
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// The bucket policy: a write must ask for SSE AES256.
fn require_sse(sse: Option<&ServerSideEncryption>) -> S3Result<()> {
    if sse.map(ServerSideEncryption::as_str) != Some(ServerSideEncryption::AES256) {
        return Err(s3_error!(
            AccessDenied,
            "bucket policy requires x-amz-server-side-encryption: AES256"
        ));
    }
    Ok(())
}

impl PolicyFs {
    /// Takes the key for a write (one writer at a time), refuses it if `If-None-Match: *` and
    /// the object exists, and keeps the current bytes as a version if it does. Returns the hold
    /// and whether the object existed.
    fn claim_write(
        &self,
        bucket: &str,
        key: &str,
        if_none_match: Option<&ETagCondition>,
    ) -> S3Result<(Writing, bool)> {
        let path = self.path(bucket, key)?;
        let writing = self.take_key(bucket, key)?;
        let existed = path.exists();
        if existed && if_none_match.is_some_and(ETagCondition::is_any) {
            return Err(s3_error!(PreconditionFailed, "the object already exists"));
        }
        if existed {
            self.keep_current(bucket, key)?;
        }
        Ok((writing, existed))
    }

    /// The parts held for `upload_id`: (number, size, ETag), by number; `NoSuchUpload` when the
    /// upload does not exist (never created, completed or aborted).
    fn parts_of(&self, upload_id: &str) -> S3Result<Vec<(i32, u64, String)>> {
        // s3s-fs's ids are UUIDs; anything else (a path, say) names no upload.
        let id = upload_id;
        if id.len() != 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(s3_error!(NoSuchUpload, "no such upload"));
        }
        if !self.root.join(format!(".upload-{id}.json")).exists() {
            return Err(s3_error!(NoSuchUpload, "no such upload"));
        }
        let prefix = format!(".upload_id-{id}.part-");
        let etags = self
            .part_etags
            .lock()
            .map_err(|_| s3_error!(InternalError))?
            .clone();
        let mut parts = Vec::new();
        let entries = std::fs::read_dir(&self.root).map_err(|_| s3_error!(InternalError))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(number) = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            // A part whose ETag was not seen (uploaded before a restart) is not listed: the
            // client uploads it again.
            if let Some(etag) = etags.get(&(upload_id.to_owned(), number)) {
                parts.push((number, size, etag.clone()));
            }
        }
        parts.sort_by_key(|p| p.0);
        Ok(parts)
    }

    fn forget_parts(&self, upload_id: &str) {
        if let Ok(mut etags) = self.part_etags.lock() {
            etags.retain(|(id, _), _| id != upload_id);
        }
        if let Ok(mut uploads) = self.uploads.lock() {
            uploads.remove(upload_id);
        }
    }

    /// An upload id is good only with the bucket and key it was created for.
    fn check_upload(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<()> {
        let uploads = self.uploads.lock().map_err(|_| s3_error!(InternalError))?;
        match uploads.get(upload_id) {
            Some((b, k)) if b == bucket && k == key => Ok(()),
            _ => Err(s3_error!(NoSuchUpload, "no such upload")),
        }
    }

    fn versioned(&self) -> bool {
        self.versioning.load(Ordering::Relaxed)
    }

    /// Where s3s-fs keeps `key`; keys that could climb out of the bucket are refused.
    fn path(&self, bucket: &str, key: &str) -> S3Result<PathBuf> {
        if key.starts_with('/') || key.split('/').any(|s| s == ".." || s == ".") {
            return Err(s3_error!(InvalidArgument, "unsupported object key"));
        }
        Ok(self.root.join(bucket).join(key))
    }

    /// The object's current version: it changes whenever its bytes are written (a write is a new
    /// file renamed into place: a new inode and modification time).
    fn version(&self, bucket: &str, key: &str) -> S3Result<Option<String>> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = match std::fs::metadata(self.path(bucket, key)?) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        };
        let stamp = format!(
            "{}:{}:{}:{}:{}",
            meta.dev(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.len()
        );
        let digest = sha2::Sha256::digest(stamp.as_bytes());
        Ok(Some(
            digest[..16].iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }

    /// Where a noncurrent version of `key` is kept.
    fn noncurrent_path(&self, bucket: &str, key: &str, version: &str) -> S3Result<PathBuf> {
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(s3_error!(NoSuchVersion, "no such version"));
        }
        self.path(bucket, key)?;
        Ok(self.noncurrent.join(bucket).join(key).join(version))
    }

    /// Keeps the object's current bytes as a noncurrent version (a hard link: the next write
    /// renames a new file over the key, the old inode stays here).
    fn keep_current(&self, bucket: &str, key: &str) -> S3Result<()> {
        if !self.versioned() {
            return Ok(());
        }
        let Some(version) = self.version(bucket, key)? else {
            return Ok(());
        };
        let kept = self.noncurrent_path(bucket, key, &version)?;
        if let Some(dir) = kept.parent() {
            std::fs::create_dir_all(dir).map_err(|e| s3_error!(e, InternalError))?;
        }
        match std::fs::hard_link(self.path(bucket, key)?, &kept) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(s3_error!(e, InternalError)),
        }
    }

    /// Which bytes a read naming `wanted` gets: the current object (None: read it as s3s-fs
    /// does), or a noncurrent version's file; a version the bucket never had is refused.
    fn resolve_version(
        &self,
        bucket: &str,
        key: &str,
        wanted: Option<&str>,
    ) -> S3Result<Option<PathBuf>> {
        let Some(wanted) = wanted else {
            return Ok(None);
        };
        if !self.versioned() {
            return if wanted == "null" {
                Ok(None)
            } else {
                Err(s3_error!(NoSuchVersion, "the bucket has no versions"))
            };
        }
        if self.version(bucket, key)?.as_deref() == Some(wanted) {
            return Ok(None);
        }
        let kept = self.noncurrent_path(bucket, key, wanted)?;
        if kept.exists() {
            Ok(Some(kept))
        } else {
            Err(s3_error!(NoSuchVersion, "no such version"))
        }
    }

    /// Deletes `key` (its current bytes kept as noncurrent when versioned), or exactly one of its
    /// versions.
    fn delete_one(&self, bucket: &str, key: &str, version: Option<&str>) -> S3Result<()> {
        let path = self.path(bucket, key)?;
        let remove = |p: &std::path::Path| match std::fs::remove_file(p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(s3_error!(e, InternalError)),
        };
        match version {
            None => {
                self.keep_current(bucket, key)?;
                remove(&path)
            }
            Some(v) => {
                let current = if self.versioned() {
                    self.version(bucket, key)?
                } else {
                    Some("null".to_owned())
                };
                if current.as_deref() == Some(v) {
                    remove(&path)
                } else if self.versioned() {
                    remove(&self.noncurrent_path(bucket, key, v)?)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Every noncurrent version kept under `prefix`: (key, version id, size).
    fn noncurrent_under(&self, bucket: &str, prefix: &str) -> Vec<(String, String, u64)> {
        let base = self.noncurrent.join(bucket);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                let (Some(key_dir), Some(version)) = (path.parent(), path.file_name()) else {
                    continue;
                };
                let Ok(key) = key_dir.strip_prefix(&base) else {
                    continue;
                };
                let key = key.to_string_lossy().into_owned();
                if key.starts_with(prefix) {
                    out.push((key, version.to_string_lossy().into_owned(), meta.len()));
                }
            }
        }
        out.sort();
        out
    }

    fn take_key(&self, bucket: &str, key: &str) -> S3Result<Writing> {
        let k = (bucket.to_owned(), key.to_owned());
        let mut set = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(k.clone()) {
            return Err(s3_error!(
                ConditionalRequestConflict,
                "another write to this key is in progress"
            ));
        }
        Ok(Writing {
            key: k,
            set: self.writing.clone(),
        })
    }
}

fn etag_matches(condition: &ETagCondition, actual: Option<&ETag>) -> bool {
    match (condition, actual) {
        (ETagCondition::Any, Some(_)) => true,
        (ETagCondition::ETag(want), Some(have)) => have.strong_cmp(want),
        (_, None) => false,
    }
}

#[async_trait::async_trait]
impl s3s::S3 for PolicyFs {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.inner.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.inner.delete_bucket(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        require_sse(req.input.server_side_encryption.as_ref())?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let path = self.path(&bucket, &key)?;
        let (_writing, existed) =
            self.claim_write(&bucket, &key, req.input.if_none_match.as_ref())?;
        match self.inner.put_object(req).await {
            Ok(mut res) => {
                res.output.server_side_encryption = aes256();
                if self.versioned() {
                    res.output.version_id = self.version(&bucket, &key)?;
                }
                Ok(res)
            }
            Err(e) => {
                // s3s-fs may have renamed the new file into place before it refused the PUT (a
                // checksum mismatch): a refused PUT of a new key leaves nothing.
                if !existed && path.exists() {
                    let _ = std::fs::remove_file(&path);
                }
                Err(e)
            }
        }
    }

    /// The bucket policy holds for multipart uploads too: the upload is created with SSE AES256.
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        require_sse(req.input.server_side_encryption.as_ref())?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let mut res = self.inner.create_multipart_upload(req).await?;
        res.output.server_side_encryption = aes256();
        if let Some(id) = &res.output.upload_id {
            self.uploads
                .lock()
                .map_err(|_| s3_error!(InternalError))?
                .insert(id.clone(), (bucket, key));
        }
        Ok(res)
    }

    /// The open uploads in parts of a bucket (under a prefix when given); one page.
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let uploads: Vec<MultipartUpload> = self
            .uploads
            .lock()
            .map_err(|_| s3_error!(InternalError))?
            .iter()
            .filter(|(_, (b, k))| *b == input.bucket && k.starts_with(&prefix))
            .map(|(id, (_, k))| MultipartUpload {
                key: Some(k.clone()),
                upload_id: Some(id.clone()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.check_upload(&req.input.upload_id, &req.input.bucket, &req.input.key)?;
        let id = (req.input.upload_id.clone(), req.input.part_number);
        let res = self.inner.upload_part(req).await?;
        if let Some(etag) = &res.output.e_tag
            && let Ok(mut etags) = self.part_etags.lock()
        {
            etags.insert(id, etag.value().to_owned());
        }
        Ok(res)
    }

    /// The parts of an upload with their sizes and ETags, by number, paged as S3 pages them
    /// (`max-parts`, `part-number-marker`); an unknown upload is `NoSuchUpload`.
    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        self.check_upload(&input.upload_id, &input.bucket, &input.key)?;
        let parts = self.parts_of(&input.upload_id)?;
        let after = input.part_number_marker.unwrap_or(0);
        let max = input.max_parts.unwrap_or(1000).clamp(1, 1000) as usize;
        let rest: Vec<_> = parts.into_iter().filter(|p| p.0 > after).collect();
        let truncated = rest.len() > max;
        let page: Vec<_> = rest.into_iter().take(max).collect();
        let next = page.last().map(|p| p.0);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            is_truncated: Some(truncated),
            next_part_number_marker: if truncated { next } else { None },
            max_parts: Some(max as i32),
            parts: Some(
                page.into_iter()
                    .map(|(number, size, etag)| Part {
                        part_number: Some(number),
                        size: Some(size as i64),
                        e_tag: Some(ETag::Strong(etag)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    /// Completes as a PUT writes: `If-None-Match: *` is checked and the object written under the
    /// key's lock (atomically), the replaced bytes kept as a version on a versioned bucket.
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.check_upload(&req.input.upload_id, &bucket, &key)?;
        // S3's rules, which s3s-fs does not hold: every part named was uploaded with that ETag,
        // and every part but the last is at least 5 MiB.
        let held = self.parts_of(&req.input.upload_id)?;
        let named: Vec<(i32, String)> = req
            .input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_ref())
            .map(|parts| {
                parts
                    .iter()
                    .map(|p| {
                        let etag = p.e_tag.as_ref().map(|e| e.value().to_owned());
                        (p.part_number.unwrap_or(0), etag.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (i, (number, etag)) in named.iter().enumerate() {
            let Some((_, size, have)) = held.iter().find(|p| p.0 == *number) else {
                return Err(s3_error!(InvalidPart, "a part named was not uploaded"));
            };
            if have != etag.trim_matches('"') {
                return Err(s3_error!(InvalidPart, "a part's ETag differs"));
            }
            if i + 1 < named.len() && *size < MIN_PART {
                return Err(s3_error!(
                    EntityTooSmall,
                    "a part but the last is below 5 MiB"
                ));
            }
        }
        let upload = req.input.upload_id.clone();
        let (_writing, _) = self.claim_write(&bucket, &key, req.input.if_none_match.as_ref())?;
        let mut res = self.inner.complete_multipart_upload(req).await?;
        self.forget_parts(&upload);
        res.output.server_side_encryption = aes256();
        if self.versioned() {
            res.output.version_id = self.version(&bucket, &key)?;
        }
        Ok(res)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let upload = req.input.upload_id.clone();
        // An unknown (or finished) upload is NoSuchUpload, as S3 says it.
        self.check_upload(&upload, &req.input.bucket, &req.input.key)?;
        self.parts_of(&upload)?;
        let res = self.inner.abort_multipart_upload(req).await;
        self.forget_parts(&upload);
        res
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = &req.input;
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let version = input.version_id.clone();
        let if_match = input.if_match.clone();
        let overrides = (
            input.response_content_type.clone(),
            input.response_content_encoding.clone(),
            input.response_content_disposition.clone(),
            input.response_cache_control.clone(),
            input.response_content_language.clone(),
        );
        let kept = self.resolve_version(&bucket, &key, version.as_deref())?;
        let mut res = match kept {
            Some(file) => {
                // A noncurrent version (read whole: only tests replace objects behind the mesh).
                let bytes = std::fs::read(&file).map_err(|e| s3_error!(e, InternalError))?;
                let len = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
                let body = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(
                    bytes::Bytes::from(bytes),
                )));
                S3Response::new(GetObjectOutput {
                    body: Some(StreamingBlob::wrap(body)),
                    content_length: Some(len),
                    version_id: version.clone(),
                    ..Default::default()
                })
            }
            None => {
                let res = self.inner.get_object(req).await?;
                // Checked once the file is open: what is served is what was open then, so a
                // version that was current after the open is the version served.
                if let Some(wanted) = &version
                    && self.versioned()
                    && self.version(&bucket, &key)?.as_deref() != Some(wanted.as_str())
                {
                    return Err(s3_error!(NoSuchVersion, "the version changed while read"));
                }
                res
            }
        };
        if let Some(condition) = &if_match
            && !etag_matches(condition, res.output.e_tag.as_ref())
        {
            return Err(s3_error!(PreconditionFailed, "the ETag does not match"));
        }
        let out = &mut res.output;
        out.server_side_encryption = aes256();
        if self.versioned() && out.version_id.is_none() {
            out.version_id = self.version(&bucket, &key)?;
        }
        let (content_type, encoding, disposition, cache_control, language) = overrides;
        if content_type.is_some() {
            out.content_type = content_type;
        }
        if encoding.is_some() {
            out.content_encoding = encoding;
        }
        if disposition.is_some() {
            out.content_disposition = disposition;
        }
        if cache_control.is_some() {
            out.cache_control = cache_control;
        }
        if language.is_some() {
            out.content_language = language;
        }
        Ok(res)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let version = req.input.version_id.clone();
        let if_match = req.input.if_match.clone();
        if let Some(file) = self.resolve_version(&bucket, &key, version.as_deref())? {
            let len = std::fs::metadata(&file)
                .map_err(|e| s3_error!(e, InternalError))?
                .len();
            return Ok(S3Response::new(HeadObjectOutput {
                content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
                version_id: version,
                server_side_encryption: aes256(),
                ..Default::default()
            }));
        }
        let mut res = self.inner.head_object(req).await?;
        if let Some(condition) = &if_match
            && !etag_matches(condition, res.output.e_tag.as_ref())
        {
            return Err(s3_error!(PreconditionFailed, "the ETag does not match"));
        }
        res.output.server_side_encryption = aes256();
        if self.versioned() {
            res.output.version_id = self.version(&bucket, &key)?;
        }
        Ok(res)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let _writing = self.take_key(&input.bucket, &input.key)?;
        self.delete_one(&input.bucket, &input.key, input.version_id.as_deref())?;
        Ok(S3Response::new(DeleteObjectOutput {
            version_id: input.version_id,
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let mut deleted = Vec::new();
        for object in input.delete.objects {
            let _writing = self.take_key(&input.bucket, &object.key)?;
            self.delete_one(&input.bucket, &object.key, object.version_id.as_deref())?;
            deleted.push(DeletedObject {
                key: Some(object.key),
                version_id: object.version_id,
                ..Default::default()
            });
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            ..Default::default()
        }))
    }

    /// Every version under the prefix, current and noncurrent, in one page.
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let bucket = req.input.bucket.clone();
        let prefix = req.input.prefix.clone().unwrap_or_default();
        let listed = self
            .inner
            .list_objects_v2(req.map_input(|i| ListObjectsV2Input {
                bucket: i.bucket,
                prefix: i.prefix,
                ..Default::default()
            }))
            .await?
            .output;
        let mut versions = Vec::new();
        for object in listed.contents.unwrap_or_default() {
            let Some(key) = object.key else { continue };
            let version_id = if self.versioned() {
                self.version(&bucket, &key)?
            } else {
                Some("null".to_owned())
            };
            versions.push(ObjectVersion {
                key: Some(key),
                version_id,
                is_latest: Some(true),
                size: object.size,
                e_tag: object.e_tag,
                ..Default::default()
            });
        }
        for (key, version, size) in self.noncurrent_under(&bucket, &prefix) {
            versions.push(ObjectVersion {
                key: Some(key),
                version_id: Some(version),
                is_latest: Some(false),
                size: Some(i64::try_from(size).unwrap_or(i64::MAX)),
                ..Default::default()
            });
        }
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(bucket),
            prefix: Some(prefix),
            versions: Some(versions),
            is_truncated: Some(false),
            ..Default::default()
        }))
    }
}

/// A running embedded S3 server. Dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct S3 {
    addr: SocketAddr,
    origins: Origins,
    credentials: S3Credentials,
    versioning: Arc<AtomicBool>,
    down: tokio::sync::watch::Sender<bool>,
    _noncurrent: tempfile::TempDir,
    _root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3 {
    /// Starts a server with random credentials on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?, S3Credentials::random()).await
    }

    /// Starts a server whose bucket reports no version ids, as a bucket without versioning.
    pub async fn start_unversioned() -> anyhow::Result<Self> {
        Self::start_with("127.0.0.1:0".parse()?, S3Credentials::random(), false).await
    }

    /// Starts a server on `addr` with `credentials`.
    pub async fn start_on(addr: SocketAddr, credentials: S3Credentials) -> anyhow::Result<Self> {
        Self::start_with(addr, credentials, true).await
    }

    async fn start_with(
        addr: SocketAddr,
        credentials: S3Credentials,
        versioning: bool,
    ) -> anyhow::Result<Self> {
        let root = tempfile::Builder::new().prefix("coffer-s3-").tempdir()?;
        let fs = s3s_fs::FileSystem::new(root.path())
            .map_err(|e| anyhow::anyhow!("s3s-fs root: {e:?}"))?;
        let versioning = Arc::new(AtomicBool::new(versioning));
        let noncurrent = tempfile::Builder::new()
            .prefix("coffer-s3-versions-")
            .tempdir()?;
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(PolicyFs {
                inner: fs,
                root: root.path().canonicalize()?,
                noncurrent: noncurrent.path().to_owned(),
                versioning: versioning.clone(),
                writing: Arc::default(),
                part_etags: Arc::default(),
                uploads: Arc::default(),
            });
            b.set_auth(s3s::auth::SimpleAuth::from_single(
                credentials.access_key.clone(),
                credentials.secret_key.clone(),
            ));
            b.build()
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind the s3 server to {addr}"))?;
        let addr = listener.local_addr()?;
        let origins = Origins::default();
        let service = {
            let origins = origins.clone();
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let service = service.clone();
                let origins = origins.clone();
                async move {
                    let preflight_asked = req.method() == http::Method::OPTIONS
                        && req.headers().contains_key("access-control-request-method");
                    if preflight_asked {
                        return Ok(preflight(&origins, req.headers()));
                    }
                    let origin = req.headers().get("origin").cloned().filter(|o| {
                        origins
                            .read()
                            .is_ok_and(|list| list.iter().any(|a| a.as_bytes() == o.as_bytes()))
                    });
                    // Each request runs to its end on its own task, as on a store whose writes
                    // are atomic: an outage ([`S3::set_down`]) that cuts the connection mid-way
                    // fails the request's body, or loses its answer, but never stops a write
                    // half done (an object stored without its metadata).
                    let call = {
                        let service = service.clone();
                        tokio::spawn(
                            async move { hyper::service::Service::call(&service, req).await },
                        )
                    };
                    let mut res = match call.await {
                        Ok(res) => res?,
                        Err(_) => {
                            let mut res = http::Response::new(s3s::Body::empty());
                            *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                            res
                        }
                    };
                    let h = res.headers_mut();
                    // Whatever the origin: a cache must not serve one origin's answer to another.
                    h.append("vary", http::HeaderValue::from_static("Origin"));
                    if let Some(origin) = origin {
                        h.insert("access-control-allow-origin", origin);
                        h.insert(
                            "access-control-expose-headers",
                            http::HeaderValue::from_static("ETag"),
                        );
                    }
                    Ok::<_, s3s::HttpError>(res)
                }
            })
        };
        let (down, mut down_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            let mut listener = Some(listener);
            loop {
                // An outage ([`S3::set_down`]): the port is closed until it ends.
                let Some(open) = listener.take() else {
                    if down_rx.wait_for(|down| !*down).await.is_err() {
                        return;
                    }
                    match TcpListener::bind(addr).await {
                        Ok(l) => listener = Some(l),
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                    }
                    continue;
                };
                let accepted = tokio::select! {
                    accepted = open.accept() => accepted,
                    _ = down_rx.wait_for(|down| *down) => continue,
                };
                listener = Some(open);
                let Ok((socket, _)) = accepted else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                let mut outage = down_rx.clone();
                tokio::spawn(async move {
                    // An outage cuts open connections too, mid-request.
                    tokio::select! {
                        _ = conn => {}
                        _ = outage.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Ok(S3 {
            addr,
            origins,
            credentials,
            versioning,
            down,
            _noncurrent: noncurrent,
            _root: root,
            task,
        })
    }

    /// Turns version ids on or off for every object from now on: off, the bucket answers as one
    /// without versioning does.
    pub fn set_versioning(&self, on: bool) {
        self.versioning.store(on, Ordering::Relaxed);
    }

    /// Starts (`true`) or ends an outage: while it lasts the port is closed (connections are
    /// refused) and every open connection is cut, mid-request; then the server listens on the
    /// same address again, with every object it held.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    /// Lets browsers of `origin` (`https://host:port`, the web app's) use the store, as the
    /// bucket's CORS configuration does.
    pub fn allow_origin(&self, origin: &str) {
        if let Ok(mut list) = self.origins.write() {
            list.push(origin.trim_end_matches('/').to_owned());
        }
    }

    /// Returns the server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the endpoint URL (`http://127.0.0.1:<port>`), path-style.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns the server's credentials.
    pub fn credentials(&self) -> &S3Credentials {
        &self.credentials
    }

    /// Returns where the objects are kept.
    pub fn root(&self) -> PathBuf {
        self._root.path().to_owned()
    }

    /// Returns an `aws-sdk-s3` client for this server (path-style, plain HTTP, SigV4).
    pub fn client(&self) -> aws_sdk_s3::Client {
        Self::client_for(&self.endpoint(), &self.credentials)
    }

    /// An `aws-sdk-s3` client for a server like this one at `endpoint` (path-style, plain HTTP,
    /// SigV4), with its credentials: for tools that find a running one (`coffer-dev bench`).
    pub fn client_for(endpoint: &str, credentials: &S3Credentials) -> aws_sdk_s3::Client {
        let creds = aws_credential_types::Credentials::new(
            &credentials.access_key,
            &credentials.secret_key,
            None,
            None,
            "coffer-testkit",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(credentials.region.clone()))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}
