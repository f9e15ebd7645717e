//! Starting a real storage-signer for other crates' tests (feature `testing`): certificates from
//! `ca`, the audience ring derived from `ring`, credentials of the embedded S3 server, loopback.

use coffer_testkit::secrets::{Materials, provision};
use std::path::Path;

use coffer_config::ServiceConfig;
use coffer_mesh::RunningServer;
use coffer_testkit::{DevCa, ObjectStore};
use coffer_token::MasterKeyRing;

use crate::{SignerConfig, build};

/// Starts storage-signer for `s3`'s bucket `bucket` (created here) under `dir/storage-signer`.
pub async fn start(
    ca: &DevCa,
    dir: &Path,
    ring: &MasterKeyRing,
    s3: &dyn ObjectStore,
    bucket: &str,
    mut config: SignerConfig,
) -> anyhow::Result<RunningServer> {
    let _ = s3.client().create_bucket().bucket(bucket).send().await;
    let secrets = provision(
        &dir.join("storage-signer"),
        "storage-signer",
        crate::SECRETS,
        &Materials {
            ca,
            ring,
            db: None,
            s3: Some(s3.credentials()),
            signing_seed: None,
        },
    )?;
    config.endpoint = s3.endpoint();
    config.region = s3.credentials().region.clone();
    config.bucket = bucket.to_owned();
    config.path_style = true;
    let service = ServiceConfig {
        listen: "127.0.0.1:0".parse()?,
        admin_listen: "127.0.0.1:0".parse()?,
        secrets_dir: secrets,
        ..ServiceConfig::default()
    };
    Ok(build(&service, &config).await?.spawn())
}
