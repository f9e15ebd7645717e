//! storage-signer's own metrics, in the shared registry: calls to the object store by operation
//! and outcome, with their latency. Signing a URL is counted too (it calls the store only on a
//! bucket without versions, for the HEAD `If-Match` of a download). No key or org in a label.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// The operations counted.
pub const OPERATIONS: [&str; 10] = [
    "presign_put",
    "presign_get",
    "head",
    "delete",
    "delete_prefix",
    "create_multipart",
    "presign_parts",
    "list_parts",
    "complete_multipart",
    "abort_multipart",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: &'static str,
}

struct SignerMetrics {
    calls: Family<Call, Counter>,
    seconds: Family<Operation, Histogram>,
}

static METRICS: LazyLock<SignerMetrics> = LazyLock::new(|| {
    let r = coffer_telemetry::metrics();
    let m = SignerMetrics {
        calls: r.registered(
            "signer_store_calls",
            "object store operations, by operation and outcome",
            Family::default(),
        ),
        seconds: r.registered(
            "signer_store_call_duration_seconds",
            "object store operation latency, by operation",
            Family::new_with_constructor(|| {
                Histogram::new([
                    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
                ])
            }),
        ),
    };
    for operation in OPERATIONS {
        for outcome in ["ok", "error"] {
            drop(m.calls.get_or_create(&Call { operation, outcome }));
        }
        drop(m.seconds.get_or_create(&Operation { operation }));
    }
    m
});

/// Registers the metrics (every operation and outcome at zero).
pub fn register() {
    LazyLock::force(&METRICS);
}

/// Runs one store operation and counts it.
pub async fn timed<T, E>(
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let result = call.await;
    let m = &*METRICS;
    m.seconds
        .get_or_create(&Operation { operation })
        .observe(started.elapsed().as_secs_f64());
    let outcome = if result.is_ok() { "ok" } else { "error" };
    m.calls.get_or_create(&Call { operation, outcome }).inc();
    result
}
