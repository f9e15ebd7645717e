//! metadata's own metrics, in the shared registry: presigned URLs handed out by kind (`upload`,
//! `download`, `share`), uploads refused for the org's quota, and stale uploads the sweep removed.
//! Nothing is labelled by org, file or name.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

pub struct MetadataMetrics {
    pub presigns: Family<Kind, Counter>,
    pub quota_refusals: Counter,
    pub sweep_removals: Counter,
    pub deferred_deletions: Counter,
}

static METRICS: LazyLock<MetadataMetrics> = LazyLock::new(|| {
    let r = coffer_telemetry::metrics();
    let m = MetadataMetrics {
        presigns: r.registered(
            "metadata_presigns",
            "presigned URLs handed out, by kind (upload, download, share)",
            Family::default(),
        ),
        quota_refusals: r.registered(
            "metadata_quota_refusals",
            "uploads refused because the org's quota was full",
            Counter::default(),
        ),
        sweep_removals: r.registered(
            "metadata_sweep_removals",
            "uploads never completed that the stale-upload sweep removed",
            Counter::default(),
        ),
        deferred_deletions: r.registered(
            "metadata_deferred_deletions",
            "purged files' objects deleted once their delay (the recovery window) was over",
            Counter::default(),
        ),
    };
    for kind in ["upload", "download", "share"] {
        drop(m.presigns.get_or_create(&Kind { kind }));
    }
    m
});

pub fn metrics() -> &'static MetadataMetrics {
    &METRICS
}

/// Counts one presigned URL of `kind`.
pub fn presigned(kind: &'static str) {
    metrics().presigns.get_or_create(&Kind { kind }).inc();
}
