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
    let r = coffer_telemetry::metrics();
    GatewayMetrics {
        rate_limited: r.registered(
            "gateway_rate_limited",
            "requests refused with 429 by the per-address rate limit",
            Counter::default(),
        ),
        open_streams: r.registered(
            "gateway_event_streams_open",
            "event streams open now",
            Gauge::default(),
        ),
    }
});

pub fn metrics() -> &'static GatewayMetrics {
    &METRICS
}
