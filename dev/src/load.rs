//! What the load benches share: the closed-loop driver, the processes of the running mesh and
//! their memory, and purging what a bench uploaded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::bench_open::Op;
use crate::client::Client;

/// The running mesh's processes (`dev.json`'s `pids`): name → pid.
pub(crate) fn pids(info: &Value) -> anyhow::Result<BTreeMap<String, u32>> {
    Ok(info["pids"]
        .as_object()
        .context("no pids in dev.json")?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), u32::try_from(v.as_u64()?).ok()?)))
        .collect())
}

pub(crate) struct Run {
    pub(crate) ops: usize,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
}

impl Run {
    pub(crate) fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    pub(crate) fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }
}

/// Runs `op` from `clients` tasks for `secs` seconds.
pub(crate) async fn drive(clients: usize, secs: u64, op: Op) -> Run {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let op = op.clone();
            let errors = errors.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match op().await {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("bench: request failed: {e:#}");
                            }
                        }
                    }
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Run {
        ops: latencies.len(),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        latencies,
    }
}

pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub(crate) async fn purge_all(client: &Client, ids: Vec<String>) -> anyhow::Result<()> {
    let queue = Arc::new(Mutex::new(ids));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (cl, queue) = (client.clone(), queue.clone());
            tokio::spawn(async move {
                while let Some(id) = { queue.lock().await.pop() } {
                    cl.purge(&id).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(())
}
