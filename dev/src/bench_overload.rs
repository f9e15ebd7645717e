//! Overload (`coffer-dev bench --overload`, issue 19 item 2): each path's sustainable rate — its
//! closed-loop maximum — then open-loop arrivals at 2, 4 and 8 times it. What overload must
//! show: goodput (answers that succeeded, per second) stays near the peak, the refused requests
//! get 503 with `Retry-After` at once, the accepted ones' latency (from their intended start)
//! stays bounded, and no process's memory grows with the flood.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::bench_open::{Op, OpenRun, Shed, drive_open};
use crate::client::Client;
use crate::load::{drive, rss_kib};

/// `Err(Shed)` for a 503 with `Retry-After`, an error for anything else that did not succeed.
async fn answered(res: reqwest::Response, what: &str) -> anyhow::Result<()> {
    let status = res.status();
    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE
        && res.headers().contains_key("retry-after")
    {
        return Err(Shed.into());
    }
    let body = res.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "{what}: {status} ({} bytes)",
        body.len()
    );
    Ok(())
}

/// The download URL of `file`, as every load bench asks for it: 503 with `Retry-After` is
/// [`Shed`], anything else that is not a success an error.
pub(crate) fn download(client: &Client, file: &str) -> Op {
    let (cl, path) = (client.clone(), format!("/v1/files/{file}/download"));
    Arc::new(move || {
        let (cl, path) = (cl.clone(), path.clone());
        Box::pin(async move {
            let res = cl.req(reqwest::Method::GET, &path).send().await?;
            answered(res, "download").await
        })
    })
}

/// A login with the demo account's password: Argon2id in auth, behind its bounded queue.
fn login(client: &Client, email: &str, password: &str) -> Op {
    let (http, url) = (
        client.http.clone(),
        format!("{}/v1/auth/login", client.base),
    );
    let body = Arc::new(json!({"email": email, "password": password}));
    Arc::new(move || {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        Box::pin(async move {
            let res = http.post(url).json(&*body).send().await?;
            answered(res, "login").await
        })
    })
}

/// Every process's RSS, sampled every 200 ms while a run goes on: (start, peak, end) in KiB.
struct Memory {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<BTreeMap<String, (u64, u64, u64)>>,
}

impl Memory {
    fn watch(pids: &BTreeMap<String, u32>) -> Self {
        let pids = pids.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut seen: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
            loop {
                for (name, pid) in &pids {
                    if let Some(kib) = rss_kib(*pid) {
                        let e = seen.entry(name.clone()).or_insert((kib, kib, kib));
                        e.1 = e.1.max(kib);
                        e.2 = kib;
                    }
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            seen
        });
        Memory { stop, task }
    }

    async fn finish(self) -> BTreeMap<String, (u64, u64, u64)> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub async fn run(
    client: &Client,
    info: &Value,
    file: &str,
    (clients, secs): (usize, u64),
    push: &mut impl FnMut(String),
) -> anyhow::Result<()> {
    let pids = crate::load::pids(info)?;
    let email = info["demo"]["email"].as_str().context("demo email")?;
    let password = info["demo"]["password"].as_str().context("demo password")?;
    let paths: [(&str, Op); 2] = [
        ("download URL", download(client, file)),
        ("login (Argon2id)", login(client, email, password)),
    ];
    push(String::new());
    push("| what | arrivals per second | succeeded per second | % of peak | shed (503) | other errors | accepted p50 ms | p99 ms | p99.9 ms |".to_owned());
    push("|---|---|---|---|---|---|---|---|---|".to_owned());
    let mut memory_rows = Vec::new();
    for (what, op) in paths {
        let peak = drive(clients, secs, op.clone()).await;
        push(format!(
            "| {what}: sustainable, closed loop, {clients} clients | – | {:.0} | 100 | – | {} | {:.2} | {:.2} | – |",
            peak.rate(),
            peak.errors,
            peak.pct(0.5),
            peak.pct(0.99),
        ));
        let memory = Memory::watch(&pids);
        for times in [2.0, 4.0, 8.0] {
            // A moment for the last row's connections and queues to drain.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let r: OpenRun = drive_open(times * peak.rate(), secs, op.clone()).await;
            push(format!(
                "| {what}, {times:.0}× | {:.0} | {:.0} | {:.0} | {} | {}{} | {:.2} | {:.2} | {:.2} |",
                r.rate,
                r.goodput(),
                100.0 * r.goodput() / peak.rate(),
                r.shed,
                r.errors,
                if r.skipped > 0 {
                    format!(" (+{} not sent)", r.skipped)
                } else {
                    String::new()
                },
                r.pct(0.5),
                r.pct(0.99),
                r.pct(0.999),
            ));
        }
        memory_rows.push((what, memory.finish().await));
    }
    push(String::new());
    push(
        "RSS of each process over the 2×, 4× and 8× rows (MiB: at the start / peak / at the end):"
            .to_owned(),
    );
    push(String::new());
    let names: Vec<&String> = pids.keys().collect();
    push(format!(
        "| flood of | {} |",
        names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    push(format!("|---|{}", "---|".repeat(names.len())));
    for (what, seen) in memory_rows {
        let cells: Vec<String> = names
            .iter()
            .map(|n| {
                seen.get(*n).map_or("–".to_owned(), |(a, p, e)| {
                    format!("{:.0} / {:.0} / {:.0}", mib(*a), mib(*p), mib(*e))
                })
            })
            .collect();
        push(format!("| {what} | {} |", cells.join(" | ")));
    }
    Ok(())
}
