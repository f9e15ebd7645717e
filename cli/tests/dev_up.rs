//! `coffer dev up` on this machine: everything comes up, works, and is gone after SIGTERM.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::Connection as _;

fn wait_for(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[tokio::test]
async fn dev_up_starts_everything_and_sigterm_stops_everything() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join(".coffer");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["dev", "up", "--dir"])
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let dev_json = state.join("dev.json");
    assert!(
        wait_for(&dev_json, Duration::from_secs(90)),
        "dev.json never appeared"
    );
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&dev_json)?)?;
    for key in ["gateway_url", "ca_cert", "s3_endpoint"] {
        assert!(info.get(key).is_some(), "dev.json lacks {key}");
    }

    // Postgres: the per-service runtime role logs in with its secret, is no superuser, and
    // can use its schema.
    let secrets = state.join("secrets");
    let port = info["postgres_port"].as_u64().unwrap();
    let pw = std::fs::read_to_string(secrets.join("metadata/db-runtime-password"))?;
    let mut conn = sqlx::PgConnection::connect(&format!(
        "postgres://metadata_runtime:{pw}@127.0.0.1:{port}/coffer"
    ))
    .await?;
    let (is_super, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await?;
    assert!(!is_super && !bypass);
    conn.close().await?;

    // S3: signed requests with the storage-signer's credentials work; unsigned ones do not.
    let endpoint = info["s3_endpoint"].as_str().unwrap().to_owned();
    let ak = std::fs::read_to_string(secrets.join("storage-signer/s3-access-key-id"))?;
    let sk = std::fs::read_to_string(secrets.join("storage-signer/s3-secret-access-key"))?;
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            ak, sk, None, None, "t",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_s3::Client::from_conf(config)
        .head_bucket()
        .bucket("coffer")
        .send()
        .await?;

    // Certificates and key rings load as the services will load them.
    for svc in [
        "auth",
        "metadata",
        "storage-signer",
        "audit",
        "scan",
        "gateway",
    ] {
        let store =
            coffer_mesh::CertStore::load(coffer_mesh::TlsFiles::in_dir(&secrets.join(svc)))?;
        assert_eq!(store.identity().as_str(), svc);
    }
    coffer_token::MasterKeyRing::from_file(&secrets.join("auth/token-master.toml"))?;
    let ring = coffer_token::AudienceKeyRing::from_file(&secrets.join("metadata/token-ring.toml"))?;
    assert_eq!(ring.audience(), coffer_token::Audience::Metadata);
    // A verifier's directory holds no master key.
    assert!(!secrets.join("metadata/token-master.toml").exists());

    // Every service built next to `coffer` runs as its own process and answers gRPC health over
    // mTLS; auth is built in this workspace, so it must be among them, with the demo account.
    let services = info["services"].as_object().unwrap().clone();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_coffer")).parent().unwrap();
    assert!(
        bin_dir.join("coffer-auth").exists(),
        "build the workspace: coffer-auth is missing"
    );
    assert!(services.contains_key("auth"), "{services:?}");
    let dev = coffer_mesh::MeshClient::new(coffer_mesh::CertStore::load(
        coffer_mesh::TlsFiles::in_dir(&secrets.join("dev")),
    )?)?;
    for (name, addr) in &services {
        let mut health = tonic_health::pb::health_client::HealthClient::new(
            dev.channel(name, addr.as_str().unwrap())?,
        );
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await?
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{name}"
        );
    }
    assert_eq!(info["demo"]["email"], "demo@coffer.local");

    // The gateway serves the public API over HTTPS with the dev CA; the demo login works.
    let gateway_url = info["gateway_url"]
        .as_str()
        .expect("the gateway runs")
        .to_owned();
    let ca = std::fs::read(info["ca_cert"].as_str().unwrap())?;
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .build()?;
    let res = http
        .post(format!("{gateway_url}/v1/auth/login"))
        .json(&serde_json::json!({
            "email": info["demo"]["email"],
            "password": info["demo"]["password"],
        }))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("set-cookie"));

    // SIGTERM: the launcher exits cleanly and leaves nothing running.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        assert!(Instant::now() < deadline, "coffer dev up did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert!(!dev_json.exists());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port as u16)).is_err(),
        "postgres still listening"
    );
    for (name, addr) in &services {
        assert!(
            std::net::TcpStream::connect(addr.as_str().unwrap()).is_err(),
            "{name} still listening"
        );
    }
    let gateway_addr = gateway_url.replace("https://localhost", "127.0.0.1");
    assert!(
        std::net::TcpStream::connect(&gateway_addr).is_err(),
        "gateway still listening"
    );
    let s3_addr = endpoint.trim_start_matches("http://").to_owned();
    assert!(
        std::net::TcpStream::connect(&s3_addr).is_err(),
        "s3 still listening"
    );
    Ok(())
}
