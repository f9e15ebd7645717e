//! The gateway over real HTTPS, in front of the real auth service over mTLS and real Postgres,
//! driven by a plain HTTP client as outside clients would.

mod audit;
mod files;
mod flows;
mod harness;
mod input;
mod openapi;
mod scans;
mod security;

/// A sample of this test process's metrics, the in-process gateway's among them (0 when absent;
/// other tests of the process may add to counters, so compare with at least).
fn metric(name: &str) -> f64 {
    coffer_telemetry::metrics()
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}
