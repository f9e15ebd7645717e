//! Soak (`coffer-dev bench --soak SECS`, issue 19 item 4): mixed load at half the mix's maximum
//! rate for SECS seconds (600 for the recorded run), open loop. What must hold: an error rate
//! under 0.1 %, every process's RSS and open file descriptors flat (start, peak and end
//! reported), no growth in Postgres connections, and the scan queue drained at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::bench_open::{Op, drive_open};
use crate::client::Client;
use crate::load::{drive, rss_kib};

/// Open file descriptors of `pid`.
fn fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Client connections to the cluster (every role, every database), the bench's own included.
async fn pg_connections(su: &PgPool) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
    )
    .fetch_one(su)
    .await?;
    Ok(n as u64)
}

/// (start, peak, end) of a series of samples.
#[derive(Default, Clone, Copy)]
struct Span {
    start: Option<u64>,
    peak: u64,
    end: u64,
}

impl Span {
    fn add(&mut self, v: u64) {
        self.start.get_or_insert(v);
        self.peak = self.peak.max(v);
        self.end = v;
    }
}

#[derive(Default)]
struct Samples {
    rss: BTreeMap<String, Span>,
    fds: BTreeMap<String, Span>,
    pg: Span,
}

/// The mix: 80 % download URLs, 10 % file reads, 5 % audit pages, 5 % uploads of 4 KiB (each
/// scanned by the real scan service).
fn mixed(client: &Client, file: &str, uploaded: &Arc<Mutex<Vec<String>>>) -> Op {
    let (cl, file, uploaded) = (client.clone(), file.to_owned(), uploaded.clone());
    let n = Arc::new(AtomicU64::new(0));
    static PAYLOAD: [u8; 4096] = [b'x'; 4096];
    Arc::new(move || {
        let (cl, file, uploaded) = (cl.clone(), file.clone(), uploaded.clone());
        let i = n.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            match i % 20 {
                0 => {
                    // Names 1, 2, …: the bench's setup file is 0.
                    let id = cl.upload(i + 1, &PAYLOAD).await?;
                    uploaded.lock().await.push(id);
                }
                1 => {
                    cl.json(reqwest::Method::GET, "/v1/audit?limit=20", None)
                        .await?;
                }
                2 | 3 => {
                    cl.json(reqwest::Method::GET, &format!("/v1/files/{file}"), None)
                        .await?;
                }
                _ => {
                    cl.json(
                        reqwest::Method::GET,
                        &format!("/v1/files/{file}/download"),
                        None,
                    )
                    .await?;
                }
            }
            Ok(())
        })
    })
}

pub async fn run(
    client: &Client,
    info: &Value,
    file: &str,
    (clients, secs): (usize, u64),
    push: &mut impl FnMut(String),
) -> anyhow::Result<()> {
    let pids = crate::load::pids(info)?;
    let secrets = std::path::PathBuf::from(info["secrets_dir"].as_str().context("secrets_dir")?);
    let superuser = std::fs::read_to_string(secrets.join("dev/postgres-superuser-url"))?;
    let su = PgPool::connect(superuser.trim()).await?;
    let uploaded = Arc::new(Mutex::new(Vec::new()));
    let op = mixed(client, file, &uploaded);

    let max = drive(clients, 10, op.clone()).await;
    let rate = max.rate() / 2.0;
    push(String::new());
    push(format!(
        "Soak: the mix's maximum {:.0}/s (closed loop, {clients} clients, 10 s); {secs} s at {rate:.0}/s.",
        max.rate()
    ));
    // Settle, then sample every 5 s while the load runs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let samples = Arc::new(Mutex::new(Samples::default()));
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = {
        let (samples, pids, su) = (samples.clone(), pids.clone(), su.clone());
        tokio::spawn(async move {
            loop {
                {
                    let mut s = samples.lock().await;
                    for (name, pid) in &pids {
                        if let Some(kib) = rss_kib(*pid) {
                            s.rss.entry(name.clone()).or_default().add(kib);
                        }
                        if let Some(n) = fds(*pid) {
                            s.fds.entry(name.clone()).or_default().add(n);
                        }
                    }
                    if let Ok(n) = pg_connections(&su).await {
                        s.pg.add(n);
                    }
                }
                tokio::select! {
                    _ = &mut stop_rx => break,
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        })
    };
    let r = drive_open(rate, secs, op).await;
    // The scan queue: every file the soak uploaded leaves `scanning`.
    let drain_started = Instant::now();
    let ids = std::mem::take(&mut *uploaded.lock().await);
    let mut pending = ids.clone();
    while !pending.is_empty() && drain_started.elapsed() < Duration::from_secs(300) {
        let mut still = Vec::new();
        for id in pending {
            let f = client
                .json(reqwest::Method::GET, &format!("/v1/files/{id}"), None)
                .await?;
            if f["status"] == "scanning" || f["status"] == "uploading" {
                still.push(id);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let drained = drain_started.elapsed();
    let _ = stop_tx.send(());
    let _ = sampler.await;
    let total = r.latencies.len() as u64 + r.errors + r.shed;
    push(String::new());
    push("| arrivals per second | requests | succeeded per second | errors | shed (503) | error rate | p50 ms | p99 ms | p99.9 ms | uploads | scan queue drained after |".to_owned());
    push("|---|---|---|---|---|---|---|---|---|---|---|".to_owned());
    push(format!(
        "| {:.0} | {total} | {:.0} | {} | {} | {:.3} % | {:.2} | {:.2} | {:.2} | {} | {:.1} s{} |",
        r.rate,
        r.goodput(),
        r.errors,
        r.shed,
        100.0 * (r.errors + r.shed) as f64 / total.max(1) as f64,
        r.pct(0.5),
        r.pct(0.99),
        r.pct(0.999),
        ids.len(),
        drained.as_secs_f64(),
        if pending.is_empty() {
            String::new()
        } else {
            format!(" ({} still scanning)", pending.len())
        },
    ));
    let s = samples.lock().await;
    push(String::new());
    push("| process | RSS MiB: start / peak / end | open fds: start / peak / end |".to_owned());
    push("|---|---|---|".to_owned());
    for name in pids.keys() {
        let (rss, fd) = (
            s.rss.get(name).copied().unwrap_or_default(),
            s.fds.get(name).copied().unwrap_or_default(),
        );
        push(format!(
            "| {name} | {:.0} / {:.0} / {:.0} | {} / {} / {} |",
            rss.start.unwrap_or(0) as f64 / 1024.0,
            rss.peak as f64 / 1024.0,
            rss.end as f64 / 1024.0,
            fd.start.unwrap_or(0),
            fd.peak,
            fd.end
        ));
    }
    push(format!(
        "| Postgres client connections | – | {} / {} / {} |",
        s.pg.start.unwrap_or(0),
        s.pg.peak,
        s.pg.end
    ));
    drop(s);
    crate::load::purge_all(client, ids).await?;
    Ok(())
}
