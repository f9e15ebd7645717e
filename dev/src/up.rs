//! `coffer-dev up`: the whole mesh on one machine, for development.
//!
//! Starts a throwaway PostgreSQL cluster (Debian's server binaries) with an owner and a runtime
//! role per service schema, the embedded S3 server with the `coffer` bucket, a dev CA with a
//! certificate per service, the token master ring (auth) and one audience ring per verifier, all in
//! a secrets layout like the one Kubernetes mounts: `<dir>/secrets/<service>/<file>`. Then it
//! writes `<dir>/dev.json` and runs until Ctrl-C or SIGTERM, when it stops everything it started.
//!
//! Every service in [`SERVICES`] gets its secrets here; those whose binary (`coffer-<name>`) is
//! built next to `coffer` are started as separate processes with `--config <file>`, and the
//! launcher waits until each answers gRPC health over mTLS before it writes `dev.json`.

pub(crate) mod health;
mod observability;
pub(crate) mod supervisor;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use coffer_config::{DatabaseConfig, SecretFile, SecretKind, ServiceConfig};
use coffer_mesh::{CertStore, MeshClient, TlsFiles};
use coffer_testkit::secrets::{Materials, provision as provision_secrets};
use coffer_testkit::{DevCa, ObjectStore, Postgres, S3, S3Credentials, SeaweedFs};
use coffer_token::MasterKeyRing;
use serde::Serialize;
use supervisor::Supervisor;

/// The bucket every object lives in.
pub const BUCKET: &str = "coffer";

/// Every mesh service, with what it needs from the launcher.
pub(crate) struct ServiceSpec {
    pub(crate) name: &'static str,
    /// What it reads from its secrets directory (its own description).
    pub(crate) secrets: &'static [SecretFile],
    /// Whether it serves mesh gRPC (all but the gateway, which serves public HTTPS).
    grpc: bool,
}

impl ServiceSpec {
    /// Whether the service owns a database schema of its own name.
    fn schema(&self) -> bool {
        self.secrets
            .iter()
            .any(|s| s.kind == SecretKind::DatabaseRoles)
    }
}

pub(crate) const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        name: "auth",
        secrets: coffer_auth::SECRETS,
        grpc: true,
    },
    ServiceSpec {
        name: "metadata",
        secrets: coffer_metadata::SECRETS,
        grpc: true,
    },
    ServiceSpec {
        name: "storage-signer",
        secrets: coffer_storage_signer::SECRETS,
        grpc: true,
    },
    ServiceSpec {
        name: "audit",
        secrets: coffer_audit::SECRETS,
        grpc: true,
    },
    ServiceSpec {
        name: "scan",
        secrets: coffer_scan::SECRETS,
        grpc: true,
    },
    ServiceSpec {
        name: "gateway",
        secrets: coffer_gateway::SECRETS,
        grpc: false,
    },
];

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Where to keep the run's state (secrets, dev.json); wiped at start.
    #[arg(long, default_value = ".coffer")]
    dir: PathBuf,
    /// Requests per second the gateway allows each client address (raise it for `coffer-dev bench`).
    #[arg(long, default_value_t = 20)]
    gateway_rate: u32,
    /// Run the embedded S3 server as a bucket without versioning: downloads are then checked with
    /// a HEAD If-Match before they are signed (to measure that path).
    #[arg(long)]
    unversioned_store: bool,
    /// The object store: the embedded server, or SeaweedFS (`weed server -s3`, from
    /// scripts/install-deps) as users run it. SeaweedFS lets any origin in (its default CORS).
    #[arg(long, value_enum, default_value = "embedded")]
    store: StoreKind,
    /// Also start Prometheus (the repo's scrape config and rules, every admin port) and
    /// Alertmanager on loopback, when Debian's packages are installed.
    #[arg(long)]
    observability: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Embedded,
    Seaweedfs,
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
    services: BTreeMap<String, String>,
    /// Every service process, name → process id (the gateway's too).
    pids: BTreeMap<String, u32>,
    /// A demo account, once auth runs.
    demo: Option<DemoAccount>,
    /// Prometheus and Alertmanager, with `--observability`.
    prometheus_url: Option<String>,
    alertmanager_url: Option<String>,
    pid: u32,
}

#[derive(Serialize)]
struct DemoAccount {
    org: String,
    email: String,
    password: String,
}

/// Signs up the demo org through auth, as the gateway would.
async fn create_demo_account(secrets: &Path, auth_addr: &str) -> anyhow::Result<DemoAccount> {
    use coffer_proto::v1::auth_client::AuthClient;
    let client = MeshClient::new(CertStore::load(TlsFiles::in_dir(&secrets.join("gateway")))?)?;
    let demo = DemoAccount {
        org: "Demo".into(),
        email: "demo@coffer.local".into(),
        password: coffer_testkit::random_secret(),
    };
    AuthClient::new(client.channel("auth", auth_addr)?)
        .signup(coffer_proto::v1::SignupRequest {
            org_name: demo.org.clone(),
            email: demo.email.clone(),
            password: demo.password.clone(),
        })
        .await
        .context("creating the demo account")?;
    Ok(demo)
}

fn write_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, value).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Writes every service's secrets directory; creates its database roles and schema.
pub(crate) async fn provision(
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
        let roles = if svc.schema() {
            let schema = svc.name;
            let owner_pw = coffer_testkit::random_secret();
            let runtime_pw = coffer_testkit::random_secret();
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
            Some((owner_pw, runtime_pw))
        } else {
            None
        };
        provision_secrets(
            &dir,
            svc.name,
            svc.secrets,
            &Materials {
                ca,
                ring,
                db: roles
                    .as_ref()
                    .map(|(o, r)| coffer_testkit::secrets::DbSecrets {
                        owner_password: o,
                        runtime_password: r,
                        ca_pem: pg.ca_pem(),
                    }),
                s3: Some(s3),
                signing_seed: None,
            },
        )?;
        // The audit signing key's public half, for `coffer audit verify`.
        if let Some(key) = svc
            .secrets
            .iter()
            .find(|s| s.kind == SecretKind::SigningKey)
        {
            let seed = std::fs::read_to_string(dir.join(key.files[0]))?;
            let signer = coffer_auditlog::Signer::from_text("audit-1", seed.trim())?;
            std::fs::write(
                secrets.parent().unwrap_or(secrets).join("audit.pub"),
                signer.public_key_text(),
            )?;
        }
    }
    Ok(())
}

/// Marks a directory as `coffer-dev up` state, the only kind it will clear.
const MARKER: &str = ".coffer-dev-state";

/// Clears the state of a previous run and marks `dir` as ours. Refuses a directory that holds
/// anything else, and one a running `coffer-dev up` still uses.
pub(crate) fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if let Ok(bytes) = std::fs::read(dir.join("dev.json"))
            && let Ok(info) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(pid) = info["pid"].as_i64()
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
        {
            anyhow::bail!(
                "{} is in use by a running coffer-dev up (pid {pid}); stop it first",
                dir.display()
            );
        }
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            anyhow::bail!(
                "{} is not a coffer dev state directory; refusing to clear it",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(MARKER),
        "state of coffer-dev up; cleared at every start\n",
    )?;
    Ok(())
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)?;
    prepare_dir(&dir)?;
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;

    println!("starting postgres ...");
    let pg = Postgres::start().await.context("starting postgres")?;
    let s3: Box<dyn ObjectStore> = match args.store {
        StoreKind::Embedded => {
            println!("starting the embedded s3 server ...");
            let s3 = if args.unversioned_store {
                S3::start_unversioned().await
            } else {
                S3::start().await
            }
            .context("starting the s3 server")?;
            s3.client()
                .create_bucket()
                .bucket(BUCKET)
                .send()
                .await
                .context("creating the bucket")?;
            Box::new(s3)
        }
        StoreKind::Seaweedfs => {
            anyhow::ensure!(
                !args.unversioned_store,
                "--unversioned-store is the embedded server's"
            );
            println!("starting seaweedfs ...");
            Box::new(
                SeaweedFs::start(BUCKET)
                    .await
                    .context("starting seaweedfs")?,
            )
        }
    };

    let ca = DevCa::new("Coffer dev CA")?;
    let ca_cert = dir.join("ca.crt");
    std::fs::write(&ca_cert, ca.ca_pem())?;
    let ring = MasterKeyRing::generate("dev-1");
    provision(&secrets, &ca, &ring, &pg, s3.credentials()).await?;
    let dev_secrets = secrets.join("dev");
    // The launcher's own mesh identity, for health checks.
    ca.write_service_dir(&dev_secrets, "coffer-dev")?;
    write_secret(
        &dev_secrets.join("postgres-superuser-url"),
        &pg.superuser_url("coffer"),
    )?;

    // ClamAV, when Debian's clamd is installed, with Coffer's own test signatures (the official
    // databases cannot be downloaded here).
    let signatures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/scan/clamav");
    let clamd = if signatures.is_dir() {
        println!("starting clamd ...");
        match coffer_testkit::Clamd::start(&signatures).await {
            Ok(c) => Some(c),
            Err(error) => {
                println!("  clamd not started ({error:#}); scanning without ClamAV");
                None
            }
        }
    } else {
        None
    };

    let mut supervisor = Supervisor::default();
    let (services, gateway_url, mut pids, admin) = start_services(
        &dir,
        &secrets,
        pg.port(),
        &*s3,
        &Tuning {
            gateway_rate: args.gateway_rate,
            clamd: clamd.as_ref().map(coffer_testkit::Clamd::address),
            ..Tuning::default()
        },
        &mut supervisor,
    )
    .await?;
    if let Some(pid) = clamd.as_ref().and_then(coffer_testkit::Clamd::pid) {
        pids.insert("clamd".into(), pid);
    }
    let observability = if args.observability {
        println!("starting prometheus and alertmanager ...");
        observability::start(&dir, &admin, &mut supervisor).await?
    } else {
        None
    };
    let demo = match services.get("auth") {
        Some(addr) => Some(create_demo_account(&secrets, addr).await?),
        None => None,
    };

    let info = DevJson {
        gateway_url,
        ca_cert,
        s3_endpoint: s3.endpoint(),
        s3_bucket: BUCKET,
        postgres_host: "127.0.0.1",
        postgres_port: pg.port(),
        postgres_database: "coffer",
        secrets_dir: secrets.clone(),
        services,
        pids,
        demo,
        prometheus_url: observability.as_ref().map(|o| o.prometheus.clone()),
        alertmanager_url: observability.as_ref().map(|o| o.alertmanager.clone()),
        pid: std::process::id(),
    };
    let dev_json = dir.join("dev.json");
    // Written last and atomically: its presence means everything is ready.
    let tmp = dir.join("dev.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?)?;
    std::fs::rename(&tmp, &dev_json)?;

    println!("coffer dev mesh is up");
    println!("  state       {}", dev_json.display());
    match &info.gateway_url {
        Some(url) => println!("  gateway     {url} (CA {})", info.ca_cert.display()),
        None => println!("  gateway     not built"),
    }
    println!("  s3          {} (bucket {BUCKET})", s3.endpoint());
    println!("  postgres    127.0.0.1:{} (database coffer)", pg.port());
    if let Some(o) = &observability {
        println!("  prometheus  {}", o.prometheus);
        println!("  alertmanager {}", o.alertmanager);
    }
    println!("  secrets     {}", secrets.display());
    if let Some(demo) = &info.demo {
        println!("  demo login  {} / {}", demo.email, demo.password);
    }
    for (name, addr) in &info.services {
        println!(
            "  {name:<15} {addr} (log {})",
            dir.join("logs").join(format!("{name}.log")).display()
        );
    }
    println!("press Ctrl-C to stop");

    let crashed = wait_for_stop(&mut supervisor).await;
    println!("stopping ...");
    let _ = std::fs::remove_file(&dev_json);
    supervisor.stop_all(Duration::from_secs(10));
    drop(s3);
    drop(pg);
    // Give the postgres stop a moment to be observed by callers polling the port.
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("stopped");
    match crashed {
        Some(name) => anyhow::bail!("{name} exited on its own; see its log"),
        None => Ok(()),
    }
}

/// What a launcher sets in the services' configuration beyond addresses and secrets.
#[derive(Debug, Default)]
pub(crate) struct Tuning {
    /// The gateway's rate limit per client address (per second; the burst is twice it).
    pub gateway_rate: u32,
    /// clamd's address (`unix://…`), when one runs.
    pub clamd: Option<String>,
    /// Settings put into a service's own section, by service name (`metadata`).
    pub sections: BTreeMap<&'static str, toml::Table>,
}

/// Starts every service whose binary exists, each on its own ports, and waits until all serve.
pub(crate) async fn start_services(
    dir: &Path,
    secrets: &Path,
    pg_port: u16,
    s3: &dyn ObjectStore,
    tuning: &Tuning,
    supervisor: &mut Supervisor,
) -> anyhow::Result<(
    BTreeMap<String, String>,
    Option<String>,
    BTreeMap<String, u32>,
    BTreeMap<String, String>,
)> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the coffer binary has no directory")?
        .to_owned();
    let present: Vec<&ServiceSpec> = SERVICES
        .iter()
        .filter(|s| bin_dir.join(format!("coffer-{}", s.name)).is_file())
        .collect();
    let mut peers = BTreeMap::new();
    for svc in &present {
        peers.insert(
            svc.name.to_owned(),
            format!("127.0.0.1:{}", coffer_testkit::free_port()?),
        );
    }
    let mut admin = BTreeMap::new();
    for svc in &present {
        admin.insert(
            svc.name,
            format!("127.0.0.1:{}", coffer_testkit::free_port()?),
        );
    }
    let gateway_public = format!("127.0.0.1:{}", coffer_testkit::free_port()?);
    let mut pids = BTreeMap::new();
    let config_dir = dir.join("config");
    let log_dir = dir.join("logs");
    std::fs::create_dir_all(&config_dir)?;
    std::fs::create_dir_all(&log_dir)?;
    for svc in &present {
        let config = ServiceConfig {
            listen: peers[svc.name].parse()?,
            admin_listen: admin[svc.name].parse()?,
            secrets_dir: secrets.join(svc.name),
            peers: peers.clone(),
            database: svc.schema().then(|| DatabaseConfig {
                port: pg_port,
                name: "coffer".into(),
                schema: svc.name.into(),
                owner_user: format!("{}_owner", svc.name),
                runtime_user: format!("{}_runtime", svc.name),
                ..DatabaseConfig::default()
            }),
            ..ServiceConfig::default()
        };
        let mut table = toml::Table::try_from(&config)?;
        if svc.name == "gateway" {
            let mut own = toml::Table::new();
            own.insert("public_listen".into(), gateway_public.clone().into());
            // Share links name the gateway as clients reach it (never a request's Host).
            let port = gateway_public.rsplit(':').next().unwrap_or_default();
            own.insert(
                "public_url".into(),
                format!("https://localhost:{port}").into(),
            );
            // The web app's browser PUTs and GETs straight to the store: its policy names the
            // store, and the store lets the app's origin in (CORS).
            own.insert("store_origin".into(), s3.endpoint().into());
            s3.allow_origin(&format!("https://localhost:{port}"));
            s3.allow_origin(&format!("https://127.0.0.1:{port}"));
            own.insert(
                "rate_per_second".into(),
                i64::from(tuning.gateway_rate).into(),
            );
            own.insert(
                "rate_burst".into(),
                i64::from(tuning.gateway_rate.saturating_mul(2)).into(),
            );
            table.insert("gateway".into(), own.into());
        }
        if svc.name == "scan" {
            let mut own = toml::Table::new();
            let tmp = dir.join("scan-tmp");
            std::fs::create_dir_all(&tmp)?;
            own.insert("temp_dir".into(), tmp.display().to_string().into());
            if let Some(addr) = &tuning.clamd {
                own.insert("clamd".into(), addr.clone().into());
            }
            // The NSFW engine, when scripts/install-deps has converted its model.
            let model = coffer_testkit::nsfw_model();
            if model.exists() {
                let mut nsfw = toml::Table::new();
                nsfw.insert("model".into(), model.display().to_string().into());
                own.insert("nsfw".into(), nsfw.into());
            } else {
                println!(
                    "  no NSFW model at {} (scripts/install-deps makes it); images are not classified",
                    model.display()
                );
            }
            table.insert("scan".into(), own.into());
        }
        if svc.name == "audit" {
            // Checkpoints soon after activity, so a short session (or test) sees them.
            let mut own = toml::Table::new();
            own.insert("checkpoint_interval_secs".into(), 5.into());
            table.insert("audit".into(), own.into());
        }
        if svc.name == "storage-signer" {
            let mut own = toml::Table::new();
            own.insert("endpoint".into(), s3.endpoint().into());
            own.insert("region".into(), s3.credentials().region.clone().into());
            own.insert("bucket".into(), BUCKET.into());
            own.insert("path_style".into(), true.into());
            table.insert("storage_signer".into(), own.into());
        }
        if let Some(extra) = tuning.sections.get(svc.name) {
            let section = table
                .entry(svc.name.replace('-', "_"))
                .or_insert_with(|| toml::Table::new().into());
            if let Some(section) = section.as_table_mut() {
                section.extend(extra.clone());
            }
        }
        let file = config_dir.join(format!("{}.toml", svc.name));
        std::fs::write(&file, toml::to_string(&table)?)?;
        let mut cmd = std::process::Command::new(bin_dir.join(format!("coffer-{}", svc.name)));
        cmd.arg("--config").arg(&file);
        let pid = supervisor.spawn(svc.name, cmd, &log_dir.join(format!("{}.log", svc.name)))?;
        pids.insert(svc.name.to_owned(), pid);
    }
    let client = MeshClient::new(CertStore::load(TlsFiles::in_dir(&secrets.join("dev")))?)?;
    for svc in &present {
        let log = log_dir.join(format!("{}.log", svc.name));
        if svc.grpc {
            health::wait_serving(&client, svc.name, &peers[svc.name], Duration::from_secs(60))
                .await
                .with_context(|| format!("see {}", log.display()))?;
        } else {
            health::wait_ready(&admin[svc.name], Duration::from_secs(60))
                .await
                .with_context(|| {
                    format!("{} never became ready; see {}", svc.name, log.display())
                })?;
        }
    }
    let gateway_url = present.iter().any(|s| s.name == "gateway").then(|| {
        let port = gateway_public.rsplit(':').next().unwrap_or_default();
        format!("https://localhost:{port}")
    });
    peers.retain(|name, _| present.iter().any(|s| s.name == name && s.grpc));
    let admin = admin
        .into_iter()
        .map(|(name, addr)| (name.to_owned(), addr))
        .collect();
    Ok((peers, gateway_url, pids, admin))
}

/// Waits for Ctrl-C or SIGTERM, or for a child to exit on its own (returned).
async fn wait_for_stop(supervisor: &mut Supervisor) -> Option<String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = term.recv() => return None,
            _ = int.recv() => return None,
            _ = tick.tick() => {
                if let Some(name) = supervisor.exited() {
                    eprintln!("{name} exited on its own");
                    return Some(name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's secrets table is what the services say they read (their `SECRETS`, the list
    /// this launcher and the tests provision from).
    #[test]
    fn the_readme_lists_each_services_secrets_as_the_service_describes_them() {
        let readme = include_str!("../../services/README.md");
        for svc in SERVICES {
            let files: Vec<_> = svc
                .secrets
                .iter()
                .filter(|s| s.kind != SecretKind::MeshIdentity)
                .copied()
                .collect();
            let row = format!(
                "| {} | {} |",
                svc.name,
                coffer_config::describe_secrets(&files)
            );
            assert!(
                readme.contains(&row),
                "services/README.md lacks the row {row}"
            );
        }
    }

    #[test]
    fn only_its_own_state_directory_is_cleared() {
        let root = tempfile::tempdir().unwrap();
        let foreign = root.path().join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("thesis.txt"), "keep me").unwrap();
        let err = prepare_dir(&foreign).unwrap_err().to_string();
        assert!(err.contains("refusing"), "{err}");
        assert!(foreign.join("thesis.txt").exists());

        let ours = root.path().join(".coffer");
        prepare_dir(&ours).unwrap();
        std::fs::write(ours.join("leftover"), "x").unwrap();
        prepare_dir(&ours).unwrap();
        assert!(!ours.join("leftover").exists());
        assert!(ours.join(MARKER).exists());

        // A live instance (this test process stands in for it) is not overwritten.
        let info = serde_json::json!({ "pid": std::process::id() });
        std::fs::write(ours.join("dev.json"), info.to_string()).unwrap();
        let err = prepare_dir(&ours).unwrap_err().to_string();
        assert!(err.contains("in use"), "{err}");
    }
}
