//! `coffer scan FILE…`: the scan-only API. Each file is uploaded to a scan slot, submitted and
//! waited for; each engine's result is printed, and the exit status is the worst verdict. The
//! bytes are not kept as a file (the scan's record holds verdict and hash until deleted).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::json;

use crate::model::{ScanCreated, ScanStatus};
use crate::progress::{Bars, Meter};
use crate::{Ctx, EXIT_QUARANTINED, EXIT_SCAN_FAILED};

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Local files to scan.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// How long to wait for each verdict, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
}

pub async fn scan(ctx: &Ctx, a: ScanArgs) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    let bars = Bars::new(ctx.json);
    let mut results = Vec::new();
    let mut worst = 0;
    for local in &a.files {
        let size = std::fs::metadata(local)
            .with_context(|| format!("{}: cannot read it", local.display()))?
            .len();
        let label = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meter = Meter {
            file: bars.bytes(&label, size),
            total: None,
        };
        let created: ScanCreated = api.post("/v1/scans", &json!({ "size": size })).await?;
        crate::upload::put_once(&api, local, size, &meter, created.upload).await?;
        api.act(
            Method::POST,
            &format!("/v1/scans/{}/submit", created.scan_id),
        )
        .await?;
        meter.file.set_message("scanning");
        let status = wait(&api, &created.scan_id, Duration::from_secs(a.timeout)).await?;
        meter
            .file
            .finish(status.verdict.as_deref().unwrap_or(&status.status));
        let code = match status.verdict.as_deref() {
            Some("clean") => 0,
            Some("failed") | None => EXIT_SCAN_FAILED,
            Some(_) => EXIT_QUARANTINED,
        };
        // Quarantined (3) is the worse news than failed (4).
        worst = match (worst, code) {
            (EXIT_QUARANTINED, _) | (_, EXIT_QUARANTINED) => EXIT_QUARANTINED,
            (w, c) => w.max(c),
        };
        if !ctx.json {
            bars.say(&format!(
                "{}: {} (scan {})",
                local.display(),
                status.verdict.as_deref().unwrap_or(&status.status),
                status.scan_id
            ));
            for e in &status.engines {
                let scores = e
                    .scores
                    .iter()
                    .flatten()
                    .map(|(class, v)| format!("{class} {v:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                bars.say(&format!(
                    "  {:<15} {}{}{}",
                    e.engine,
                    if e.clean { "clean" } else { "found" },
                    e.signature
                        .as_deref()
                        .map(|s| format!(": {s}"))
                        .unwrap_or_default(),
                    if scores.is_empty() {
                        String::new()
                    } else {
                        format!(" ({scores})")
                    }
                ));
            }
        }
        results.push(json!({"local": local.display().to_string(), "scan": status}));
    }
    if ctx.json {
        ctx.print(&json!({ "scans": results }), || {})?;
    }
    Ok(worst)
}

async fn wait(api: &crate::client::Api, id: &str, timeout: Duration) -> anyhow::Result<ScanStatus> {
    api.poll(
        &format!("/v1/scans/{id}"),
        timeout,
        |s: &ScanStatus| s.status == "done" || s.status == "expired",
        &format!("verdict for scan {id}"),
    )
    .await
}
