//! The gateway's own metrics, in the shared registry: requests refused by the per-address rate
//! limit, and the event streams open now. (Its RED metrics per route are the shared ones.)

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

pub struct GatewayMetrics {
    pub rate_limited: Counter,
    pub open_streams: Gauge,
}

static METRICS: LazyLock<GatewayMetrics> = LazyLock::new(|| {
    let m = GatewayMetrics {
        rate_limited: Counter::default(),
        open_streams: Gauge::default(),
    };
    let r = coffer_telemetry::metrics();
    r.register(
        "gateway_rate_limited",
        "requests refused with 429 by the per-address rate limit",
        m.rate_limited.clone(),
    );
    r.register(
        "gateway_event_streams_open",
        "event streams open now",
        m.open_streams.clone(),
    );
    m
});

pub fn metrics() -> &'static GatewayMetrics {
    &METRICS
}
