//! The object store: presigned PUTs and GETs signed with `aws-sigv4` (the SDK's own signer), HEAD
//! and DELETE through `aws-sdk-s3`.
//!
//! Presigning calls `aws-sigv4` directly rather than through the SDK's operation pipeline: the
//! pipeline cost about 0.2 ms of CPU per URL (endpoint rules, interceptors), most of the
//! storage-signer's share of a download; and it drops `checksum_sha256` when presigning a PutObject
//! (awslabs/aws-sdk-rust#1103). Here the request carries exactly the headers to sign
//! (`content-length`, `content-type`, `x-amz-server-side-encryption`, `x-amz-checksum-sha256`) and
//! SigV4 signs every one of them, so the store refuses a PUT that changes any. Errors name no object
//! key and no file name.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::types::{ChecksumMode, Delete, ObjectIdentifier};
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::config::SignerConfig;
use crate::error::SignerError;

/// A request the client sends to the store, signed.
#[derive(Debug, Clone)]
pub struct Signed {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: SystemTime,
}

/// What HEAD found.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub exists: bool,
    pub size: u64,
    pub sse: String,
    pub sha256_hex: String,
    /// Without quotes.
    pub etag: String,
    /// Empty when the store does not version objects.
    pub version_id: String,
    pub content_type: String,
    /// Names of response headers the object carries that no presigned PUT of ours sets.
    pub foreign_headers: Vec<String>,
}

/// Which object a presigned GET may serve, and how its response presents it.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// The stored file name (response-content-disposition); empty for none.
    pub file_name: String,
    /// The version to serve; empty when unknown.
    pub version_id: String,
    /// The ETag the object must have, without quotes; empty when unknown.
    pub etag: String,
    /// response-content-type, with response-content-encoding identity; empty leaves the
    /// store's headers as they are.
    pub content_type: String,
    /// Sign `If-Match` as a header the reader sends (readers that can send headers).
    pub require_if_match: bool,
}

/// An ETag as S3 sends it (`"hex"`, or `W/"…"`), without the quotes.
fn bare_etag(raw: &str) -> String {
    raw.trim_start_matches("W/").trim_matches('"').to_owned()
}

/// The store, as the storage-signer reaches it (`internal`, for HEAD and DELETE) and as clients
/// reach it (`public`, the base of presigned URLs).
#[derive(Clone)]
pub struct Store {
    internal: aws_sdk_s3::Client,
    /// `scheme://host[:port]` and the path prefix objects live under (`/bucket` path-style).
    public_origin: String,
    public_prefix: String,
    region: String,
    bucket: String,
    identity: Identity,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("public_origin", &self.public_origin)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn client(
    endpoint: &str,
    config: &SignerConfig,
    access_key: &str,
    secret_key: &SecretString,
) -> Result<aws_sdk_s3::Client, SignerError> {
    let credentials = aws_credential_types::Credentials::new(
        access_key,
        secret_key.expose_secret(),
        None,
        None,
        "coffer-secrets",
    );
    let http = if endpoint.starts_with("https://") {
        aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https()
    } else if endpoint.starts_with("http://") {
        aws_smithy_http_client::Builder::new().build_http()
    } else {
        return Err(SignerError::Internal(
            "the object store endpoint must start with http:// or https://".into(),
        ));
    };
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .endpoint_url(endpoint)
        .force_path_style(config.path_style)
        .credentials_provider(credentials)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .http_client(http)
        .build();
    Ok(aws_sdk_s3::Client::from_conf(conf))
}

fn store_error<E: std::fmt::Debug>(e: aws_sdk_s3::error::SdkError<E>) -> SignerError {
    use aws_sdk_s3::error::SdkError;
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            SignerError::Unavailable(format!("{e:?}"))
        }
        other => SignerError::Internal(format!("{other:?}")),
    }
}

/// SigV4's query encoding: everything but the unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Lowercase hex SHA-256 → the base64 form S3 uses in `x-amz-checksum-sha256`.
pub fn sha256_base64(hex: &str) -> Result<String, SignerError> {
    let bad = || SignerError::invalid("sha256", "sha256 must be 64 lowercase hex characters");
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn base64_to_hex(b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (bytes.len() == 32).then(|| coffer_kit::hex::encode(&bytes))
}

/// The `Cache-Control` of every download: a file's bytes stay out of shared and browser caches.
pub const DOWNLOAD_CACHE_CONTROL: &str = "private, no-store";

/// `Content-Disposition: attachment` carrying `name` (RFC 6266): a plain-ASCII `filename` with
/// anything risky replaced, and `filename*` with the exact UTF-8 name percent-encoded.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // RFC 5987 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"; everything else is percent-encoded.
    const NOT_ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(name, NOT_ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

impl Store {
    pub fn new(
        config: &SignerConfig,
        access_key: &str,
        secret_key: &SecretString,
    ) -> Result<Self, SignerError> {
        let internal = client(&config.endpoint, config, access_key, secret_key)?;
        let (public_origin, public_prefix) = config
            .public_base()
            .map_err(|e| SignerError::Internal(e.to_string()))?;
        let identity = aws_credential_types::Credentials::new(
            access_key,
            secret_key.expose_secret(),
            None,
            None,
            "coffer-secrets",
        )
        .into();
        Ok(Store {
            internal,
            public_origin,
            public_prefix,
            region: config.region.clone(),
            bucket: config.bucket.clone(),
            identity,
        })
    }

    /// Signs `method` on `key` (with `query`, already encoded) for `secs` seconds, over exactly
    /// `headers`, and returns the URL with the signature in its query.
    fn presign(
        &self,
        method: &str,
        key: &str,
        query: &str,
        headers: Vec<(String, String)>,
        secs: u32,
    ) -> Result<Signed, SignerError> {
        let now = SystemTime::now();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(secs.into()));
        // S3's rules: no double encoding, no path normalisation.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| SignerError::Internal(format!("signing params: {e}")))?
            .into();
        // Keys are `<uuid>/<uuid>`: nothing in them needs encoding.
        let url = if query.is_empty() {
            format!("{}{}/{key}", self.public_origin, self.public_prefix)
        } else {
            format!("{}{}/{key}?{query}", self.public_origin, self.public_prefix)
        };
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| SignerError::Internal(format!("signable request: {e}")))?;
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .map_err(|e| SignerError::Internal(format!("signing: {e}")))?
            .into_parts();
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .body(())
            .map_err(|e| SignerError::Internal(format!("request: {e}")))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(Signed {
            url: request.uri().to_string(),
            method: method.to_owned(),
            headers,
            expires_at: now + Duration::from_secs(secs.into()),
        })
    }

    /// A PUT that signs content-length, content-type, SSE AES256, `If-None-Match: *` and the
    /// checksum when given.
    pub async fn presign_put(
        &self,
        key: &str,
        size: u64,
        content_type: &str,
        sha256_b64: Option<String>,
        secs: u32,
    ) -> Result<Signed, SignerError> {
        let mut headers = vec![
            ("content-length".to_owned(), size.to_string()),
            ("content-type".to_owned(), content_type.to_owned()),
            (
                "x-amz-server-side-encryption".to_owned(),
                "AES256".to_owned(),
            ),
        ];
        if let Some(checksum) = sha256_b64 {
            headers.push(("x-amz-checksum-sha256".to_owned(), checksum));
        }
        // The URL creates the object once: a second PUT (of other bytes, after the scan) is
        // refused by the store.
        headers.push(("if-none-match".to_owned(), "*".to_owned()));
        self.presign("PUT", key, "", headers, secs)
    }

    /// Creates the store's multipart upload for `key` (SSE AES256, `content_type`); its id.
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<String, SignerError> {
        let out = self
            .internal
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(store_error)?;
        out.upload_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| SignerError::Internal("the store gave no upload id".into()))
    }

    /// An UploadPart PUT of part `number` of `upload_id`, signing its exact length.
    pub fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        size: u64,
        secs: u32,
    ) -> Result<Signed, SignerError> {
        let query = format!(
            "partNumber={number}&uploadId={}",
            percent_encoding::utf8_percent_encode(upload_id, QUERY_VALUE)
        );
        let headers = vec![("content-length".to_owned(), size.to_string())];
        self.presign("PUT", key, &query, headers, secs)
    }

    /// Every part the store holds for `upload_id`: (number, size, ETag without quotes), by number.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<(u32, u64, String)>, SignerError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .internal
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await
                .map_err(|e| match e.raw_response().map(|r| r.status().as_u16()) {
                    Some(404) => SignerError::Refused("the multipart upload does not exist"),
                    _ => store_error(e),
                })?;
            for p in out.parts() {
                parts.push((
                    p.part_number().unwrap_or_default().max(0) as u32,
                    p.size().unwrap_or_default().max(0) as u64,
                    p.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
                ));
            }
            match (out.is_truncated(), out.next_part_number_marker()) {
                (Some(true), Some(next)) if Some(next) != marker.as_deref() => {
                    marker = Some(next.to_owned());
                }
                _ => break,
            }
            if parts.len() > 10_000 {
                return Err(SignerError::Internal(
                    "more than 10,000 parts listed".into(),
                ));
            }
        }
        parts.sort_by_key(|p| p.0);
        Ok(parts)
    }

    /// Completes `upload_id` from `parts` (number, ETag) if `key` holds no object yet.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(), SignerError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|(n, etag)| {
                        CompletedPart::builder()
                            .part_number(*n as i32)
                            .e_tag(format!("\"{etag}\""))
                            .build()
                    })
                    .collect(),
            ))
            .build();
        self.internal
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .if_none_match("*")
            .send()
            .await
            .map_err(|e| match e.raw_response().map(|r| r.status().as_u16()) {
                Some(412) => SignerError::Refused("an object already exists at the key"),
                Some(409) => {
                    SignerError::Refused("another completion of the upload is in progress")
                }
                Some(404) => SignerError::Refused("the multipart upload does not exist"),
                Some(400) => SignerError::Refused(
                    "the store refused the parts: a part is missing, too small or its ETag differs",
                ),
                _ => store_error(e),
            })?;
        Ok(())
    }

    /// Aborts `upload_id`, freeing its parts; an unknown or finished upload is fine.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), SignerError> {
        match self
            .internal
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// A GET of `key` as `options` say: the response names the file and, given a media type,
    /// declares it and no content encoding; with a version id it serves that version or nothing; with
    /// only an ETag the object is checked first (one HEAD with If-Match: the price of a store
    /// that does not version objects).
    pub async fn presign_get(
        &self,
        key: &str,
        options: &GetOptions,
        secs: u32,
    ) -> Result<Signed, SignerError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if !options.file_name.is_empty() {
            query.push((
                "response-content-disposition",
                content_disposition(&options.file_name),
            ));
        }
        if !options.content_type.is_empty() {
            // A download: whatever headers the object was stored with, a browser must not decode
            // it into other bytes than the scanner read. (The scanner asks without a type and
            // sees the stored headers, to refuse an encoded object.)
            query.push(("response-content-encoding", "identity".to_owned()));
            query.push(("response-content-type", options.content_type.clone()));
            // Never kept by a browser's or a proxy's cache, whatever the object says.
            query.push(("response-cache-control", DOWNLOAD_CACHE_CONTROL.to_owned()));
        }
        let mut headers = Vec::new();
        if !options.version_id.is_empty() {
            query.push(("versionId", options.version_id.clone()));
        }
        if !options.etag.is_empty() {
            if options.require_if_match {
                headers.push(("if-match".to_owned(), format!("\"{}\"", options.etag)));
            } else if options.version_id.is_empty() {
                self.check_etag(key, &options.etag).await?;
            }
        }
        let query = query
            .into_iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(&v, QUERY_VALUE)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        self.presign("GET", key, &query, headers, secs)
    }

    /// Refuses unless the object exists with `etag`.
    async fn check_etag(&self, key: &str, etag: &str) -> Result<(), SignerError> {
        let res = self
            .internal
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(format!("\"{etag}\""))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 404 | 412)) =>
            {
                Err(SignerError::Changed)
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// What the store reports of an object, with the response headers it would serve that its
    /// upload URL did not set (`foreign`). A stored `Cache-Control` is not one: browsers send
    /// their own on a PUT (`max-age=0` after a reload), and every GET signed here overrides it
    /// with [`DOWNLOAD_CACHE_CONTROL`].
    pub async fn head(&self, key: &str) -> Result<Head, SignerError> {
        let res = self
            .internal
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match res {
            Ok(out) => {
                let mut foreign: Vec<String> = [
                    ("content-encoding", out.content_encoding()),
                    ("content-disposition", out.content_disposition()),
                    ("content-language", out.content_language()),
                    ("expires", out.expires_string()),
                    (
                        "x-amz-website-redirect-location",
                        out.website_redirect_location(),
                    ),
                ]
                .into_iter()
                .filter(|(_, v)| v.is_some_and(|v| !v.is_empty()))
                .map(|(name, _)| name.to_owned())
                .collect();
                foreign.extend(
                    out.metadata()
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .map(|k| format!("x-amz-meta-{}", k.to_ascii_lowercase())),
                );
                foreign.sort();
                Ok(Head {
                    exists: true,
                    size: out.content_length().unwrap_or(0).max(0) as u64,
                    sse: out
                        .server_side_encryption()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    sha256_hex: out
                        .checksum_sha256()
                        .and_then(base64_to_hex)
                        .unwrap_or_default(),
                    etag: out.e_tag().map(bare_etag).unwrap_or_default(),
                    version_id: out
                        .version_id()
                        .filter(|v| *v != "null")
                        .unwrap_or_default()
                        .to_owned(),
                    content_type: out.content_type().unwrap_or_default().to_owned(),
                    foreign_headers: foreign,
                })
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(Head::default()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The versions (and delete markers) under `prefix`, at most `max`, and whether more are
    /// left. On a versioned bucket a DeleteObject without a version only hides the object behind
    /// a delete marker and keeps its bytes: every delete here is by version. A store that has no
    /// ListObjectVersions (a bucket that cannot version) gets its current objects, by key.
    async fn versions_under(
        &self,
        prefix: &str,
        max: i32,
    ) -> Result<(Vec<ObjectIdentifier>, bool), SignerError> {
        let listed = self
            .internal
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(max)
            .send()
            .await;
        let id = |key: &str, version: Option<&str>| {
            ObjectIdentifier::builder()
                .key(key)
                .set_version_id(version.map(str::to_owned))
                .build()
                .map_err(|e| SignerError::Internal(format!("object identifier: {e}")))
        };
        match listed {
            Ok(out) => {
                let mut ids = Vec::new();
                for v in out.versions() {
                    if let Some(key) = v.key() {
                        ids.push(id(key, v.version_id())?);
                    }
                }
                for m in out.delete_markers() {
                    if let Some(key) = m.key() {
                        ids.push(id(key, m.version_id())?);
                    }
                }
                Ok((ids, out.is_truncated().unwrap_or(false)))
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 501) => {
                let out = self
                    .internal
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .max_keys(max)
                    .send()
                    .await
                    .map_err(store_error)?;
                let ids = out
                    .contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .map(|k| id(k, None))
                    .collect::<Result<_, _>>()?;
                Ok((ids, out.is_truncated().unwrap_or(false)))
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// Deletes exactly these (versions of) objects in one DeleteObjects.
    async fn delete_ids(&self, ids: Vec<ObjectIdentifier>) -> Result<(), SignerError> {
        if ids.is_empty() {
            return Ok(());
        }
        let n = ids.len();
        let out = self
            .internal
            .delete_objects()
            .bucket(&self.bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()
                    .map_err(|e| SignerError::Internal(format!("delete request: {e}")))?,
            )
            .send()
            .await
            .map_err(store_error)?;
        if !out.errors().is_empty() {
            return Err(SignerError::Unavailable(format!(
                "the store refused {} of {n} deletes",
                out.errors().len()
            )));
        }
        Ok(())
    }

    /// Deletes up to 1,000 objects (every version of them) under `prefix`; returns how many
    /// versions went, and whether more are left.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(u32, bool), SignerError> {
        let (ids, more) = self.versions_under(prefix, 1000).await?;
        let n = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        self.delete_ids(ids).await?;
        Ok((n, more))
    }

    /// Deletes the object `key`, every version of it: a purged file leaves no bytes behind.
    pub async fn delete(&self, key: &str) -> Result<(), SignerError> {
        let (mut ids, _) = self.versions_under(key, 1000).await?;
        ids.retain(|id| id.key() == key);
        self.delete_ids(ids).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_carries_any_name_safely() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let d = content_disposition("Ünïcødé \"q\"\\;\r\n%.txt");
        assert!(d.is_ascii(), "{d}");
        assert!(!d.contains('\r') && !d.contains('\n'));
        assert!(
            d.contains("filename*=UTF-8''%C3%9Cn%C3%AFc%C3%B8d%C3%A9%20%22q%22%5C%3B%0D%0A%25.txt"),
            "{d}"
        );
        assert!(d.contains("filename=\"_n_c_d_ _q__;___.txt\""), "{d}");
        let fallback = d.split('"').nth(1).unwrap();
        assert!(!fallback.contains('"') && !fallback.contains('\\'), "{d}");
    }

    #[test]
    fn checksums_convert_both_ways() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let b64 = sha256_base64(hex).unwrap();
        assert_eq!(b64, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        assert_eq!(base64_to_hex(&b64).unwrap(), hex);
        assert!(sha256_base64(&hex.to_uppercase()).is_err());
        assert!(sha256_base64(&hex[1..]).is_err());
        assert!(sha256_base64("zz").is_err());
    }
}
