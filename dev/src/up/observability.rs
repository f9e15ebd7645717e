//! `coffer-dev up --observability`: Prometheus with the repo's scrape config and rules, scraping
//! every service's admin port, and Alertmanager with the repo's routing, both on loopback and
//! supervised like the services (Debian's `prometheus` and `prometheus-alertmanager`, which
//! `scripts/install-deps` installs). Their state and logs live under `<dir>/observability/`,
//! apart from the services' logs (which a log agent tails by file name).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::supervisor::Supervisor;

/// The repo's observability files (this tool runs from a checkout).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../observability")
}

/// Where Prometheus and Alertmanager answer.
pub struct Urls {
    pub prometheus: String,
    pub alertmanager: String,
}

/// The binary `name` on the `PATH`, if any.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// The scrape targets: one group per service, labelled as the rules and dashboards expect.
fn targets(admin: &BTreeMap<String, String>) -> serde_json::Value {
    admin
        .iter()
        .map(|(name, addr)| {
            serde_json::json!({
                "targets": [addr],
                "labels": {"job": format!("coffer-{name}"), "namespace": "coffer-dev"},
            })
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path, ext: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == ext) {
            std::fs::copy(&path, to.join(path.file_name().unwrap_or_default()))?;
        }
    }
    Ok(())
}

/// Starts Prometheus and Alertmanager for the services' admin ports `admin` (name → address), or
/// returns `None` after saying how to install them when they are not installed.
pub async fn start(
    dir: &Path,
    admin: &BTreeMap<String, String>,
    supervisor: &mut Supervisor,
) -> anyhow::Result<Option<Urls>> {
    let (Some(prometheus), Some(alertmanager)) =
        (on_path("prometheus"), on_path("prometheus-alertmanager"))
    else {
        println!(
            "  --observability: prometheus and prometheus-alertmanager are not installed; \
             run scripts/install-deps (or: sudo apt-get install prometheus prometheus-alertmanager)"
        );
        return Ok(None);
    };
    let root = dir.join("observability");
    let prom_dir = root.join("prometheus");
    copy_dir(
        &repo().join("prometheus/rules"),
        &prom_dir.join("rules"),
        "yml",
    )?;
    std::fs::copy(
        repo().join("prometheus/prometheus.yml"),
        prom_dir.join("prometheus.yml"),
    )?;
    std::fs::create_dir_all(prom_dir.join("targets"))?;
    std::fs::write(
        prom_dir.join("targets/coffer.json"),
        serde_json::to_vec_pretty(&targets(admin))?,
    )?;
    let am_port = coffer_testkit::free_port()?;
    let am_addr = format!("127.0.0.1:{am_port}");
    std::fs::create_dir_all(prom_dir.join("alertmanagers"))?;
    std::fs::write(
        prom_dir.join("alertmanagers/local.json"),
        serde_json::to_vec(&serde_json::json!([{"targets": [am_addr]}]))?,
    )?;

    let mut am = std::process::Command::new(alertmanager);
    am.arg(format!(
        "--config.file={}",
        repo().join("alertmanager/alertmanager.yml").display()
    ))
    .arg(format!(
        "--storage.path={}",
        root.join("alertmanager-data").display()
    ))
    .arg(format!("--web.listen-address={am_addr}"))
    // No cluster: it would listen on every interface's 9094.
    .arg("--cluster.listen-address=");
    supervisor.spawn("alertmanager", am, &root.join("alertmanager.log"))?;

    let prom_addr = format!("127.0.0.1:{}", coffer_testkit::free_port()?);
    let mut prom = std::process::Command::new(prometheus);
    prom.arg(format!(
        "--config.file={}",
        prom_dir.join("prometheus.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        prom_dir.join("data").display()
    ))
    .arg("--storage.tsdb.retention.time=2d")
    // The latency histograms carry their traces as exemplars.
    .arg("--enable-feature=exemplar-storage")
    .arg(format!("--web.listen-address={prom_addr}"));
    supervisor.spawn("prometheus", prom, &root.join("prometheus.log"))?;

    let urls = Urls {
        prometheus: format!("http://{prom_addr}"),
        alertmanager: format!("http://{am_addr}"),
    };
    for (name, url) in [
        ("prometheus", &urls.prometheus),
        ("alertmanager", &urls.alertmanager),
    ] {
        wait_ready(&format!("{url}/-/ready"), Duration::from_secs(60))
            .await
            .with_context(|| format!("{name} never became ready; see {}", root.display()))?;
    }
    Ok(Some(urls))
}

async fn wait_ready(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(res) = http.get(url).send().await
            && res.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("{url} is not ready after {timeout:?}")
}
