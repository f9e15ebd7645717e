//! One telemetry set-up for every Coffer binary.
//!
//! - JSON logs on stdout through `tracing-subscriber`, each line with the trace and span ids of the
//!   request it belongs to (Loki derives links to Tempo from them);
//! - OpenTelemetry traces, exported over OTLP/gRPC when an endpoint is configured (ids are
//!   generated and propagated either way, so logs always carry them);
//! - Prometheus metrics in one registry, served with `/healthz` and `/readyz` on an admin port
//!   separate from the service port.
//!
//! Never put an org id, user id, file id or file name in a metric label or a log field: labels here
//! are RPC names, gRPC codes, service names and fixed reasons only.

mod admin;
mod metrics;
mod process;
mod tracing_init;

pub use admin::{AdminServer, Readiness, serve_admin};
pub use metrics::{Metrics, Outcome, Reason, RpcLabels, SERVER_ERROR_CODES, metrics};
/// The gauge type the shared metrics hand out (`Metrics::in_flight`, `Metrics::queued`).
pub use prometheus_client::metrics::gauge::Gauge;
pub use tracing_init::{TelemetryConfig, TelemetryGuard, current_trace_id, init, init_for_tests};
