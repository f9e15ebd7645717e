//! Open-loop load (`coffer-dev bench --rate R`, `--open-loop`): requests start at a fixed
//! arrival rate whatever the answers do, and each one's latency is measured from the moment it
//! was meant to start — not from when a client got round to sending it — so a slow answer
//! cannot hide the requests queued behind it (no coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// One request of a load, as the benches drive it.
pub type Op = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send + Sync,
>;

/// Requests in flight beyond which the bench itself stops sending (counted, never silent): a
/// guard for the bench's own memory when the mesh falls far behind.
const MAX_IN_FLIGHT: u64 = 20_000;

/// A request the server refused as overloaded (503 with `Retry-After`): counted apart from
/// errors, since shedding is the answer overload should get.
#[derive(Debug)]
pub struct Shed;

impl std::fmt::Display for Shed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("shed: 503 with Retry-After")
    }
}

impl std::error::Error for Shed {}

pub struct OpenRun {
    pub rate: f64,
    pub errors: u64,
    /// Requests answered 503 with `Retry-After` ([`Shed`]).
    pub shed: u64,
    /// Arrivals not sent because `MAX_IN_FLIGHT` were still waiting.
    pub skipped: u64,
    pub elapsed: Duration,
    /// Of the successful requests, from their intended start; sorted.
    pub latencies: Vec<Duration>,
}

impl OpenRun {
    pub fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    /// Successful requests per second over the run (the last answers included).
    pub fn goodput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Starts `op` `rate` times a second for `secs` seconds, then waits for the last answers.
pub async fn drive_open(rate: f64, secs: u64, op: Op) -> OpenRun {
    let count = (rate * secs as f64).round() as u64;
    let start = Instant::now() + Duration::from_millis(20);
    let in_flight = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let shed = Arc::new(AtomicU64::new(0));
    let mut skipped = 0;
    let mut latencies = Vec::with_capacity(count as usize);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let intended = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(intended).await;
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            skipped += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (op, in_flight, errors, shed) =
            (op.clone(), in_flight.clone(), errors.clone(), shed.clone());
        tasks.spawn(async move {
            let got = op().await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            match got {
                Ok(()) => Some(intended.elapsed()),
                Err(e) if e.downcast_ref::<Shed>().is_some() => {
                    shed.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(e) => {
                    if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("bench: request failed: {e:#}");
                    }
                    None
                }
            }
        });
        // Answers are taken as they come, so the set stays small.
        while let Some(done) = tasks.try_join_next() {
            latencies.extend(done.ok().flatten());
        }
    }
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.ok().flatten());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    OpenRun {
        rate,
        errors: errors.load(Ordering::Relaxed),
        shed: shed.load(Ordering::Relaxed),
        skipped,
        elapsed,
        latencies,
    }
}

/// A Markdown row: what, arrival rate, goodput, p50 / p99 / p99.9 from the intended start,
/// errors (with the requests shed as overloaded, and arrivals the bench could not send).
pub fn row(what: &str, r: &OpenRun) -> String {
    format!(
        "| {what} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {}{}{} |",
        r.rate,
        r.goodput(),
        r.pct(0.5),
        r.pct(0.99),
        r.pct(0.999),
        r.errors,
        if r.shed > 0 {
            format!(" (+{} shed: 503 with Retry-After)", r.shed)
        } else {
            String::new()
        },
        if r.skipped > 0 {
            format!(" (+{} not sent)", r.skipped)
        } else {
            String::new()
        }
    )
}

pub const HEADER: [&str; 2] = [
    "| what | arrivals per second | answered per second | p50 ms | p99 ms | p99.9 ms | errors |",
    "|---|---|---|---|---|---|---|",
];
