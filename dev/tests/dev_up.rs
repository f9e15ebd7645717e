//! `coffer-dev up` on this machine: everything comes up, works, and is gone after SIGTERM.

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
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-dev"))
        // No throttling of the benchmark's short run below.
        .args(["up", "--gateway-rate", "100000", "--dir"])
        // Everything the services log, down to debug, is searched for file names below.
        .env("COFFER_TELEMETRY__LOG_FILTER", "debug")
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
    let s3_config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            ak, sk, None, None, "t",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config.clone())
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

    // Every service built next to `coffer-dev` runs as its own process and answers gRPC health over
    // mTLS; auth is built in this workspace, so it must be among them, with the demo account.
    let services = info["services"].as_object().unwrap().clone();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_coffer-dev"))
        .parent()
        .unwrap();
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
    let cookie = res.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = res.json::<serde_json::Value>().await?["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        coffer_auditlog::public_key_from_text(&std::fs::read_to_string(state.join("audit.pub"))?)
            .is_some(),
        "audit.pub holds the audit public key"
    );
    for svc in ["metadata", "storage-signer", "audit", "scan"] {
        assert!(
            services.contains_key(svc),
            "{svc} is not running: {services:?}"
        );
    }

    // A whole upload and download through the running mesh, with names no log may show.
    let name = format!("zq-name-{}.pdf", uuid::Uuid::new_v4().simple());
    let renamed = format!("zq-renamed-{}.pdf", uuid::Uuid::new_v4().simple());
    let folder_name = format!("zq-folder-{}", uuid::Uuid::new_v4().simple());
    let api = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{gateway_url}{path}"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
    };
    let folder: serde_json::Value = api(reqwest::Method::POST, "/v1/folders")
        .json(&serde_json::json!({"name": folder_name}))
        .send()
        .await?
        .json()
        .await?;
    let bytes = b"%PDF-1.7 dev up round trip".to_vec();
    let created: serde_json::Value = api(reqwest::Method::POST, "/v1/files")
        .json(&serde_json::json!({
            "name": name,
            "folder_id": folder["id"],
            "size": bytes.len(),
            "content_type": "application/pdf",
        }))
        .send()
        .await?
        .json()
        .await?;
    let file_id = created["file"]["id"]
        .as_str()
        .expect("file created")
        .to_owned();
    let mut put = reqwest::Client::new().put(created["upload"]["url"].as_str().unwrap());
    for (k, v) in created["upload"]["headers"].as_object().unwrap() {
        if k != "content-length" {
            put = put.header(k, v.as_str().unwrap());
        }
    }
    assert!(put.body(bytes.clone()).send().await?.status().is_success());
    let res = api(
        reqwest::Method::POST,
        &format!("/v1/files/{file_id}/complete"),
    )
    .send()
    .await?;
    assert_eq!(res.status(), 200);
    // The scan service of this dev mesh gives the verdict on its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let file: serde_json::Value = api(reqwest::Method::GET, &format!("/v1/files/{file_id}"))
            .send()
            .await?
            .json()
            .await?;
        if file["status"] == "available" {
            assert_eq!(file["verdict"], "clean");
            break;
        }
        assert_eq!(file["status"], "scanning", "{file}");
        assert!(
            std::time::Instant::now() < deadline,
            "no verdict within 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let grant: serde_json::Value = api(
        reqwest::Method::GET,
        &format!("/v1/files/{file_id}/download"),
    )
    .send()
    .await?
    .json()
    .await?;
    let got = reqwest::get(grant["url"].as_str().expect("a download url"))
        .await?
        .bytes()
        .await?;
    assert_eq!(got.as_ref(), bytes.as_slice());
    let res = api(reqwest::Method::PATCH, &format!("/v1/files/{file_id}"))
        .json(&serde_json::json!({"name": renamed}))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let share: serde_json::Value = api(
        reqwest::Method::POST,
        &format!("/v1/files/{file_id}/shares"),
    )
    .json(&serde_json::json!({"expires_in_seconds": 60}))
    .send()
    .await?
    .json()
    .await?;
    let res = http
        .get(share["url"].as_str().expect("a share url"))
        .send()
        .await?;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(res.bytes().await?.as_ref(), bytes.as_slice());

    // The load benchmark's short form runs against this mesh (the demo org), and its floor,
    // which runs the services' own statements and appends through audit's own appender, measures
    // a rate with no error; the export below then verifies with the floor's events in the chain.
    let bench = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-dev"))
        .args([
            "bench",
            "--clients",
            "1",
            "--seconds",
            "1",
            "--rss-gib",
            "0",
            "--dir",
        ])
        .arg(&state)
        .output()?;
    assert!(
        bench.status.success(),
        "coffer-dev bench failed: {}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let report = String::from_utf8(bench.stdout)?;
    for row in ["floor: download SQL", "floor: upload SQL"] {
        let line = report
            .lines()
            .find(|l| l.contains(row))
            .unwrap_or_else(|| panic!("no {row} row in:\n{report}"));
        // | what | clients | per second | p50 ms | p99 ms | errors |
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(cells[3].parse::<f64>()? > 0.0, "{line}");
        assert_eq!(cells[6], "0", "{line}");
    }

    // The org's audit export verifies offline with the public key dev up wrote (the key the
    // audit service really signs with).
    let export = api(reqwest::Method::GET, "/v1/audit/export")
        .send()
        .await?
        .bytes()
        .await?;
    let export_file = state.join("export.ndjson");
    std::fs::write(&export_file, &export)?;
    // The user's client, built beside it in this workspace.
    assert!(
        bin_dir.join("coffer").exists(),
        "build the workspace: coffer is missing"
    );
    let verified = std::process::Command::new(bin_dir.join("coffer"))
        .args(["audit", "verify"])
        .arg(&export_file)
        .arg("--public-key")
        .arg(state.join("audit.pub"))
        .output()?;
    assert!(
        verified.status.success(),
        "the export does not verify with audit.pub: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // No file or folder name in any service's log, metrics or trace spans (spans are in the
    // JSON log lines), nor in any object key.
    let mut metrics = String::new();
    for svc in ["auth", "metadata", "storage-signer", "scan", "gateway"] {
        let config: toml::Table = toml::from_str(&std::fs::read_to_string(
            state.join(format!("config/{svc}.toml")),
        )?)?;
        let admin = config["admin_listen"].as_str().unwrap();
        metrics += &reqwest::get(format!("http://{admin}/metrics"))
            .await?
            .text()
            .await?;
    }
    assert!(metrics.contains("grpc"), "metrics were scraped");
    // The services with a database report their pool (auth, metadata and scan among these).
    let pools = metrics
        .lines()
        .filter(|l| l.starts_with("coffer_db_pool_max_connections{role=\"runtime\"} "))
        .count();
    assert_eq!(pools, 3, "auth, metadata and scan report their pools");
    assert!(metrics.contains("coffer_db_pool_connections{role=\"runtime\",state=\"in_use\"}"));
    let mut logs = String::new();
    for entry in std::fs::read_dir(state.join("logs"))? {
        logs += &std::fs::read_to_string(entry?.path())?;
    }
    assert!(logs.contains("metadata serving"), "the logs were captured");
    assert!(
        logs.contains("scan job done"),
        "the scan service scanned the upload"
    );
    assert!(
        logs.contains("\"level\":\"DEBUG\""),
        "debug lines were logged"
    );
    for secret in [&name, &renamed, &folder_name] {
        assert!(!logs.contains(secret.as_str()), "a name is in the logs");
        assert!(
            !metrics.contains(secret.as_str()),
            "a name is in the metrics"
        );
    }
    let objects = aws_sdk_s3::Client::from_conf(s3_config.clone())
        .list_objects_v2()
        .bucket("coffer")
        .send()
        .await?;
    let keys: Vec<_> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.iter().any(|k| k.ends_with(&file_id)), "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains("zq-")), "{keys:?}");

    // SIGTERM: the launcher exits cleanly and leaves nothing running.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        assert!(Instant::now() < deadline, "coffer-dev up did not stop");
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
    // Every process it started is gone, clamd included when it ran.
    let pids = info["pids"].as_object().unwrap();
    assert!(pids.contains_key("scan"), "{pids:?}");
    for (name, pid) in pids {
        let pid = Pid::from_raw(pid.as_i64().unwrap() as i32);
        let deadline = Instant::now() + Duration::from_secs(10);
        while kill(pid, None).is_ok() {
            assert!(Instant::now() < deadline, "{name} still running");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let s3_addr = endpoint.trim_start_matches("http://").to_owned();
    assert!(
        std::net::TcpStream::connect(&s3_addr).is_err(),
        "s3 still listening"
    );
    Ok(())
}
