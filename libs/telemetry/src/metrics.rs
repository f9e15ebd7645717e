//! The process-wide Prometheus registry and the metrics every member of the mesh records.

use std::sync::{LazyLock, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the per-RPC RED metrics. `rpc` is the gRPC path (`/coffer.v1.Metadata/GetFile`),
/// `code` the gRPC status code name. Nothing tenant-specific may ever be added here.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub rpc: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcOnly {
    pub rpc: String,
}

/// Labels of the gateway's per-route RED metrics. `route` is the route's template
/// (`/v1/files/{id}/download`, `unmatched` for none), never the path itself: paths carry ids and
/// share tokens.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRoute {
    pub route: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

/// The `outcome` label of the services' counters (`ok`/`failed`, `delivered`/`failed`, …): a
/// fixed word of the service's own, never a value from a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

/// What a binary is: its service name, the workspace version and the git commit it was built from
/// (`COFFER_GIT_SHA` at build time; `unknown` without it).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildInfo {
    pub service: String,
    pub version: String,
    pub git_sha: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Shed {
    pub kind: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Denial {
    pub rpc: String,
    pub peer: String,
}

/// Every metric the shared libraries record. Services register their own with
/// [`Metrics::register`].
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// gRPC calls served, by RPC and status code.
    pub rpc_requests: Family<RpcLabels, Counter>,
    /// gRPC call latency in seconds, by RPC, with the trace of an observation as its bucket's
    /// exemplar.
    pub rpc_duration: Family<RpcOnly, HistogramWithExemplars<TraceExemplar>>,
    /// HTTP requests answered by the public edge, by route template, method and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP latency to the response head in seconds, by route template and method, with
    /// exemplars like `rpc_duration`.
    pub http_duration: Family<HttpRoute, HistogramWithExemplars<TraceExemplar>>,
    /// User tokens refused, by reason.
    pub token_rejections: Family<Reason, Counter>,
    /// Calls refused by a caller allow-list, by RPC and calling service.
    pub caller_denials: Family<Denial, Counter>,
    /// TLS handshakes that failed on a mesh server port.
    pub tls_handshake_failures: Counter,
    /// Work refused because the process was full, by kind (`requests`, `cpu`) and reason
    /// (`queue_full`, `deadline`).
    load_shed: Family<Shed, Counter>,
    /// Work being done now (admitted, not yet answered), by kind.
    in_flight: Family<Kind, Gauge>,
    /// Work waiting for a slot, by kind.
    queued: Family<Kind, Gauge>,
    /// 1, labelled with what the binary is.
    pub build_info: Family<BuildInfo, Gauge>,
    /// The `not_after` of the mesh certificate in use (unix seconds), so expiry can alert.
    pub certificate_not_after: Gauge,
}

/// The exemplar of a latency observation: the W3C trace id of the request it timed (a random
/// id, already in every log line of that request), which Grafana opens in Tempo. Exposed in the
/// OpenMetrics text only, and stored by Prometheus with `--enable-feature=exemplar-storage`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
}

fn exemplar() -> Option<TraceExemplar> {
    crate::current_trace_id().map(|trace_id| TraceExemplar { trace_id })
}

/// The gRPC codes the rules count as the server's failures (observability/prometheus/rules).
pub const SERVER_ERROR_CODES: [&str; 5] = [
    "Unknown",
    "Internal",
    "Unavailable",
    "DataLoss",
    "DeadlineExceeded",
];

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        2.5, 5.0, 10.0,
    ]
    .into_iter()
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("coffer");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        let rpc_duration =
            Family::<RpcOnly, HistogramWithExemplars<TraceExemplar>>::new_with_constructor(|| {
                HistogramWithExemplars::new(latency_buckets())
            });
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<HttpRoute, HistogramWithExemplars<TraceExemplar>>::new_with_constructor(
                || HistogramWithExemplars::new(latency_buckets()),
            );
        let token_rejections = Family::<Reason, Counter>::default();
        let caller_denials = Family::<Denial, Counter>::default();
        let tls_handshake_failures = Counter::default();
        let load_shed = Family::<Shed, Counter>::default();
        let in_flight = Family::<Kind, Gauge>::default();
        let queued = Family::<Kind, Gauge>::default();
        for kind in ["requests", "cpu"] {
            for reason in ["queue_full", "deadline"] {
                drop(load_shed.get_or_create(&Shed {
                    kind: kind.to_owned(),
                    reason: reason.to_owned(),
                }));
            }
            drop(in_flight.get_or_create(&Kind {
                kind: kind.to_owned(),
            }));
            drop(queued.get_or_create(&Kind {
                kind: kind.to_owned(),
            }));
        }
        registry.register(
            "load_shed",
            "work refused because the process was full (503 / UNAVAILABLE), by kind and reason",
            load_shed.clone(),
        );
        registry.register(
            "in_flight",
            "work being done now (requests handled, password hashes running), by kind",
            in_flight.clone(),
        );
        registry.register("queued", "work waiting for a slot, by kind", queued.clone());
        let build_info = Family::<BuildInfo, Gauge>::default();
        let certificate_not_after = Gauge::default();
        registry.register(
            "build_info",
            "1, labelled with the service, the version and the git commit of the binary",
            build_info.clone(),
        );
        registry.register(
            "tls_certificate_not_after_seconds",
            "the not-after time of the mesh certificate in use, unix seconds",
            certificate_not_after.clone(),
        );
        registry.register_collector(Box::new(crate::process::Process::new()));
        registry.register(
            "grpc_server_requests",
            "gRPC calls served, by rpc and status code",
            rpc_requests.clone(),
        );
        registry.register(
            "grpc_server_duration_seconds",
            "gRPC call latency",
            rpc_duration.clone(),
        );
        registry.register(
            "http_server_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_server_duration_seconds",
            "HTTP latency to the response head, by route template and method",
            http_duration.clone(),
        );
        registry.register(
            "token_rejections",
            "user tokens refused, by reason",
            token_rejections.clone(),
        );
        registry.register(
            "caller_denials",
            "calls refused by a caller allow-list",
            caller_denials.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "failed mesh tls handshakes",
            tls_handshake_failures.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            rpc_requests,
            rpc_duration,
            http_requests,
            http_duration,
            token_rejections,
            caller_denials,
            tls_handshake_failures,
            load_shed,
            in_flight,
            queued,
            build_info,
            certificate_not_after,
        }
    }

    /// Says which service this process is (`coffer_build_info`), once at start-up.
    pub fn set_build_info(&self, service: &str) {
        self.build_info
            .get_or_create(&BuildInfo {
                service: service.to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                git_sha: option_env!("COFFER_GIT_SHA")
                    .unwrap_or("unknown")
                    .to_owned(),
            })
            .set(1);
    }

    /// Records one finished RPC (inside its span: the trace becomes the exemplar).
    pub fn record_rpc(&self, rpc: &str, code: &str, seconds: f64) {
        self.rpc_requests
            .get_or_create(&RpcLabels {
                rpc: rpc.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.rpc_duration
            .get_or_create(&RpcOnly {
                rpc: rpc.to_owned(),
            })
            .observe(seconds, exemplar(), None);
    }

    /// Creates an RPC's series at zero: its call counter for `Ok` and for every code the rules
    /// count as a server error (the numerators of the error ratio), and its latency histogram, so
    /// that "no failure yet" reads 0 rather than nothing.
    pub fn init_rpc(&self, rpc: &str) {
        for code in SERVER_ERROR_CODES.iter().chain(["Ok"].iter()) {
            drop(self.rpc_requests.get_or_create(&RpcLabels {
                rpc: rpc.to_owned(),
                code: (*code).to_owned(),
            }));
        }
        drop(self.rpc_duration.get_or_create(&RpcOnly {
            rpc: rpc.to_owned(),
        }));
    }

    /// Creates a route's series at zero: its `500` counter (the numerator of the edge's error
    /// ratio) and its latency histogram.
    pub fn init_http(&self, route: &str, method: &str) {
        drop(self.http_requests.get_or_create(&HttpLabels {
            route: route.to_owned(),
            method: method.to_owned(),
            status: "500".to_owned(),
        }));
        drop(self.http_duration.get_or_create(&HttpRoute {
            route: route.to_owned(),
            method: method.to_owned(),
        }));
    }

    /// Records one answered HTTP request (`route`: the template, see [`HttpLabels`]; inside the
    /// request's span: the trace becomes the exemplar).
    pub fn record_http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&HttpRoute {
                route: route.to_owned(),
                method: method.to_owned(),
            })
            .observe(seconds, exemplar(), None);
    }

    /// Counts a refused token.
    pub fn token_rejected(&self, reason: &str) {
        self.token_rejections
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts work refused because the process was full.
    pub fn shed(&self, kind: &str, reason: &str) {
        self.load_shed
            .get_or_create(&Shed {
                kind: kind.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The gauge of `kind` work being done now.
    pub fn in_flight(&self, kind: &str) -> Gauge {
        self.in_flight
            .get_or_create(&Kind {
                kind: kind.to_owned(),
            })
            .clone()
    }

    /// The gauge of `kind` work waiting for a slot.
    pub fn queued(&self, kind: &str) -> Gauge {
        self.queued
            .get_or_create(&Kind {
                kind: kind.to_owned(),
            })
            .clone()
    }

    /// Counts a call refused by an allow-list.
    pub fn caller_denied(&self, rpc: &str, peer: &str) {
        self.caller_denials
            .get_or_create(&Denial {
                rpc: rpc.to_owned(),
                peer: peer.to_owned(),
            })
            .inc();
    }

    /// Registers a service's own metric in the shared registry and returns it (a handle to the
    /// same series), so a service declares each of its metrics in one expression.
    pub fn registered<M>(&self, name: &str, help: &str, metric: M) -> M
    where
        M: prometheus_client::registry::Metric + Clone,
    {
        self.register(name, help, metric.clone());
        metric
    }

    /// Registers a service's own metric in the shared registry.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register(name, help, metric);
    }

    /// The value of one series as it would be scraped now, named with its labels exactly as
    /// exposed (`coffer_x_total{a="b"}`); `None` when the process does not have it (tests read
    /// their in-process services' metrics with this).
    pub fn sample(&self, series: &str) -> Option<f64> {
        self.encode()
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Renders the registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Returns the process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}
