//! `coffer dev up`: the whole mesh on one machine, for development.
//!
//! Starts a throwaway PostgreSQL cluster (Debian's server binaries) with an owner and a runtime
//! role per service schema, the embedded S3 server with the `coffer` bucket, a dev CA with a
//! certificate per service, the token master ring (auth) and one audience ring per verifier, all in
//! a secrets layout like the one Kubernetes mounts: `<dir>/secrets/<service>/<file>`. Then it
//! writes `<dir>/dev.json` and runs until Ctrl-C or SIGTERM, when it stops everything it started.
//!
//! Services are added to [`SERVICES`] by the issues that build them; each gets its secrets here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use coffer_testkit::{DevCa, Postgres, S3, S3Credentials};
use coffer_token::{Audience, MasterKeyRing};
use rand::Rng as _;
use serde::Serialize;

/// The bucket every object lives in.
pub const BUCKET: &str = "coffer";

/// Every mesh service, with what it needs from the launcher.
struct ServiceSpec {
    name: &'static str,
    /// The token audience the service verifies as; `None` for auth, which mints.
    audience: Option<Audience>,
    /// Whether the service owns a database schema of its own name.
    schema: bool,
}

const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        name: "auth",
        audience: None,
        schema: true,
    },
    ServiceSpec {
        name: "metadata",
        audience: Some(Audience::Metadata),
        schema: true,
    },
    ServiceSpec {
        name: "storage-signer",
        audience: Some(Audience::StorageSigner),
        schema: false,
    },
    ServiceSpec {
        name: "audit",
        audience: Some(Audience::Audit),
        schema: true,
    },
    ServiceSpec {
        name: "scan",
        audience: Some(Audience::Scan),
        schema: true,
    },
    ServiceSpec {
        name: "gateway",
        audience: Some(Audience::Gateway),
        schema: false,
    },
];

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Where to keep the run's state (secrets, dev.json); wiped at start.
    #[arg(long, default_value = ".coffer")]
    dir: PathBuf,
}

#[derive(Serialize)]
struct DevJson {
    /// The public gateway; null until the gateway service exists.
    gateway_url: Option<String>,
    ca_cert: PathBuf,
    s3_endpoint: String,
    s3_bucket: &'static str,
    postgres_host: &'static str,
    postgres_port: u16,
    postgres_database: &'static str,
    secrets_dir: PathBuf,
    /// Mesh services running as processes, name → gRPC address.
    services: std::collections::BTreeMap<String, String>,
    pid: u32,
}

fn random_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn write_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, value).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Writes every service's secrets directory; creates its database roles and schema.
async fn provision(
    secrets: &Path,
    ca: &DevCa,
    ring: &MasterKeyRing,
    pg: &Postgres,
    s3: &S3Credentials,
) -> anyhow::Result<()> {
    pg.execute_as_superuser("postgres", "CREATE DATABASE coffer")
        .await?;
    for svc in SERVICES {
        let dir = secrets.join(svc.name);
        ca.write_service_dir(&dir, svc.name)?;
        match svc.audience {
            None => write_secret(&dir.join("token-master.toml"), &ring.to_toml())?,
            Some(a) => write_secret(
                &dir.join("token-ring.toml"),
                &ring.derive_audience_ring(a).to_toml(),
            )?,
        }
        if svc.schema {
            let schema = svc.name;
            let owner_pw = random_password();
            let runtime_pw = random_password();
            // The owner runs migrations at start-up; the runtime role gets DML grants from
            // those migrations. Neither is a superuser or bypasses row-level security.
            pg.execute_as_superuser(
                "coffer",
                &format!(
                    "CREATE ROLE {schema}_owner LOGIN PASSWORD '{owner_pw}' NOSUPERUSER NOBYPASSRLS;
                     CREATE ROLE {schema}_runtime LOGIN PASSWORD '{runtime_pw}' NOSUPERUSER NOBYPASSRLS;
                     CREATE SCHEMA {schema} AUTHORIZATION {schema}_owner;
                     GRANT CONNECT ON DATABASE coffer TO {schema}_owner, {schema}_runtime;
                     GRANT USAGE ON SCHEMA {schema} TO {schema}_runtime;"
                ),
            )
            .await?;
            write_secret(&dir.join("db-owner-password"), &owner_pw)?;
            write_secret(&dir.join("db-runtime-password"), &runtime_pw)?;
        }
        if svc.name == "storage-signer" {
            write_secret(&dir.join("s3-access-key"), &s3.access_key)?;
            write_secret(&dir.join("s3-secret-key"), &s3.secret_key)?;
        }
    }
    Ok(())
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;

    println!("starting postgres ...");
    let pg = Postgres::start().await.context("starting postgres")?;
    println!("starting the embedded s3 server ...");
    let s3 = S3::start().await.context("starting the s3 server")?;
    s3.client()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .context("creating the bucket")?;

    let ca = DevCa::new("Coffer dev CA")?;
    let ca_cert = dir.join("ca.crt");
    std::fs::write(&ca_cert, ca.ca_pem())?;
    let ring = MasterKeyRing::generate("dev-1");
    provision(&secrets, &ca, &ring, &pg, s3.credentials()).await?;
    let dev_secrets = secrets.join("dev");
    std::fs::create_dir_all(&dev_secrets)?;
    write_secret(
        &dev_secrets.join("postgres-superuser-url"),
        &pg.superuser_url("coffer"),
    )?;

    let info = DevJson {
        gateway_url: None,
        ca_cert,
        s3_endpoint: s3.endpoint(),
        s3_bucket: BUCKET,
        postgres_host: "127.0.0.1",
        postgres_port: pg.port(),
        postgres_database: "coffer",
        secrets_dir: secrets.clone(),
        services: Default::default(),
        pid: std::process::id(),
    };
    let dev_json = dir.join("dev.json");
    // Written last and atomically: its presence means everything is ready.
    let tmp = dir.join("dev.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?)?;
    std::fs::rename(&tmp, &dev_json)?;

    println!("coffer dev mesh is up");
    println!("  state       {}", dev_json.display());
    println!("  gateway     not built yet (the auth and gateway issue adds it)");
    println!("  s3          {} (bucket {BUCKET})", s3.endpoint());
    println!("  postgres    127.0.0.1:{} (database coffer)", pg.port());
    println!("  secrets     {}", secrets.display());
    println!("press Ctrl-C to stop");

    wait_for_stop().await;
    println!("stopping ...");
    let _ = std::fs::remove_file(&dev_json);
    drop(s3);
    drop(pg);
    // Give the postgres stop a moment to be observed by callers polling the port.
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("stopped");
    Ok(())
}

async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
