//! An embedded S3-compatible server: s3s (SigV4 and presigned-URL verification) over s3s-fs
//! (objects as files), wrapped to apply the bucket policy DESIGN.md recommends for production:
//! a PutObject without `x-amz-server-side-encryption: AES256` is refused, and HEAD and GET report
//! the encryption as S3 does. Multipart uploads and other operations are not offered.
//!
//! s3s-fs keeps objects as plain files under a temporary directory: the encryption reported here
//! is the policy's, not real encryption at rest. That is enough for a development store.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rand::Rng as _;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use tokio::net::TcpListener;

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

/// s3s-fs behind the SSE bucket policy.
struct PolicyFs {
    inner: s3s_fs::FileSystem,
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
        let sse = req
            .input
            .server_side_encryption
            .as_ref()
            .map(|s| s.as_str());
        if sse != Some(ServerSideEncryption::AES256) {
            return Err(s3_error!(
                AccessDenied,
                "bucket policy requires x-amz-server-side-encryption: AES256"
            ));
        }
        let mut res = self.inner.put_object(req).await?;
        res.output.server_side_encryption = aes256();
        Ok(res)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let mut res = self.inner.get_object(req).await?;
        // Every object got in through put_object, which refused anything but AES256.
        res.output.server_side_encryption = aes256();
        Ok(res)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let mut res = self.inner.head_object(req).await?;
        res.output.server_side_encryption = aes256();
        Ok(res)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }
}

/// A running embedded S3 server. Dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct S3 {
    addr: SocketAddr,
    credentials: S3Credentials,
    _root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3 {
    /// Starts a server with random credentials on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?, S3Credentials::random()).await
    }

    /// Starts a server on `addr` with `credentials`.
    pub async fn start_on(addr: SocketAddr, credentials: S3Credentials) -> anyhow::Result<Self> {
        let root = tempfile::Builder::new().prefix("coffer-s3-").tempdir()?;
        let fs = s3s_fs::FileSystem::new(root.path())
            .map_err(|e| anyhow::anyhow!("s3s-fs root: {e:?}"))?;
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(PolicyFs { inner: fs });
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
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(S3 {
            addr,
            credentials,
            _root: root,
            task,
        })
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
        let creds = aws_credential_types::Credentials::new(
            &self.credentials.access_key,
            &self.credentials.secret_key,
            None,
            None,
            "coffer-testkit",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.credentials.region.clone()))
            .endpoint_url(self.endpoint())
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
