//! The object store, through `aws-sdk-s3`: presigned PUTs and GETs, HEAD and DELETE.
//!
//! `aws-sdk-s3` drops `checksum_sha256` when presigning a PutObject (awslabs/aws-sdk-rust#1103),
//! so the `x-amz-checksum-sha256` header is added to the request before it is signed: SigV4
//! signs every header the request carries, so the store refuses a PUT whose body has another
//! hash. Errors name no object key and no file name.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::{ChecksumMode, ServerSideEncryption};
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
}

/// The store, as the storage-signer reaches it (`internal`) and as clients reach it (`public`).
#[derive(Debug, Clone)]
pub struct Store {
    internal: aws_sdk_s3::Client,
    public: aws_sdk_s3::Client,
    bucket: String,
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
    (bytes.len() == 32).then(|| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn signed(req: &PresignedRequest, expires_at: SystemTime) -> Signed {
    Signed {
        url: req.uri().to_owned(),
        method: req.method().to_owned(),
        headers: req
            .headers()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect(),
        expires_at,
    }
}

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
        let public = match &config.public_endpoint {
            Some(endpoint) => client(endpoint, config, access_key, secret_key)?,
            None => internal.clone(),
        };
        Ok(Store {
            internal,
            public,
            bucket: config.bucket.clone(),
        })
    }

    fn presigning(secs: u32) -> Result<(PresigningConfig, SystemTime), SignerError> {
        let now = SystemTime::now();
        let config = PresigningConfig::builder()
            .start_time(now)
            .expires_in(Duration::from_secs(secs.into()))
            .build()
            .map_err(|e| SignerError::Internal(format!("presigning config: {e}")))?;
        Ok((config, now + Duration::from_secs(secs.into())))
    }

    /// A PUT that signs content-length, content-type, SSE AES256 and the checksum when given.
    pub async fn presign_put(
        &self,
        key: &str,
        size: u64,
        content_type: &str,
        sha256_b64: Option<String>,
        secs: u32,
    ) -> Result<Signed, SignerError> {
        let size = i64::try_from(size).map_err(|_| SignerError::invalid("size", "too large"))?;
        let (presigning, expires_at) = Self::presigning(secs)?;
        let op = self
            .public
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(size)
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256);
        let req = match sha256_b64 {
            Some(checksum) => {
                op.customize()
                    .mutate_request(move |r| {
                        r.headers_mut()
                            .insert("x-amz-checksum-sha256", checksum.clone());
                    })
                    .presigned(presigning)
                    .await
            }
            None => op.presigned(presigning).await,
        }
        .map_err(store_error)?;
        Ok(signed(&req, expires_at))
    }

    /// A GET whose response names the file `file_name`.
    pub async fn presign_get(
        &self,
        key: &str,
        file_name: &str,
        secs: u32,
    ) -> Result<Signed, SignerError> {
        let (presigning, expires_at) = Self::presigning(secs)?;
        let mut op = self.public.get_object().bucket(&self.bucket).key(key);
        if !file_name.is_empty() {
            op = op.response_content_disposition(content_disposition(file_name));
        }
        let req = op.presigned(presigning).await.map_err(store_error)?;
        Ok(signed(&req, expires_at))
    }

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
            Ok(out) => Ok(Head {
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
            }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(Head::default()),
            Err(e) => Err(store_error(e)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), SignerError> {
        self.internal
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
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
