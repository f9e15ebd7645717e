//! Logging and tracing initialisation.

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Telemetry settings, part of every binary's config file (section `[telemetry]`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `tracing` filter directives, for example `info,coffer_mesh=debug`.
    pub log_filter: String,
    /// JSON lines (for Loki) when true; human-readable otherwise.
    pub json_logs: bool,
    /// OTLP/gRPC collector endpoint, for example `http://otel-collector:4317`; no export when unset.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_filter: "info".into(),
            json_logs: true,
            otlp_endpoint: None,
        }
    }
}

/// Flushes and stops trace export when dropped.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

fn provider(service: &'static str, endpoint: Option<&str>) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder().with_service_name(service).build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = endpoint {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// Installs logging and tracing for a service binary. Call once, first thing in `main`.
pub fn init(service: &'static str, config: &TelemetryConfig) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    crate::metrics().set_build_info(service);
    let provider = provider(service, config.otlp_endpoint.as_deref())?;
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
    let filter = EnvFilter::try_new(&config.log_filter)?;
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    if config.json_logs {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .flatten_event(true),
            )
            .try_init()?;
    } else {
        registry.with(tracing_subscriber::fmt::layer()).try_init()?;
    }
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard { provider })
}

/// Installs tracing for a test process: trace ids always, log output only when `TEST_LOG` is set.
/// Safe to call from every test.
pub fn init_for_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let Ok(provider) = provider("test", None) else {
            return;
        };
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let registry = tracing_subscriber::registry().with(otel);
        // The filter is the log output's alone: spans stay on for the trace ids whatever it says.
        let _ = if std::env::var_os("TEST_LOG").is_some() {
            use tracing_subscriber::Layer as _;
            let filter = EnvFilter::new(std::env::var("TEST_LOG").unwrap_or_default());
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_test_writer()
                        .with_filter(filter),
                )
                .try_init()
        } else {
            registry.try_init()
        };
        opentelemetry::global::set_tracer_provider(provider);
    });
}

/// Returns the W3C trace id of the current span, or `None` outside a traced request.
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}
