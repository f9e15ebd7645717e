//! An OTLP/gRPC trace collector for tests: a real tonic `TraceService` on loopback that keeps
//! every span it is sent, for tests that follow a trace across processes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// A span as it arrived, with ids in lowercase hex (`parent` empty for a root).
#[derive(Debug, Clone)]
pub struct CollectedSpan {
    /// The resource's `service.name`.
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent: String,
    /// Attributes, strings as they are and other values in their debug form.
    pub attributes: BTreeMap<String, String>,
}

/// The collector; clones share what it received.
#[derive(Clone, Default)]
pub struct OtlpCollector {
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    addr: Option<SocketAddr>,
}

#[tonic::async_trait]
impl TraceService for OtlpCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

impl OtlpCollector {
    /// Serves on a free loopback port until the test process ends.
    pub async fn start() -> anyhow::Result<Self> {
        let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse()?)?;
        let collector = OtlpCollector {
            addr: Some(incoming.local_addr()?),
            ..OtlpCollector::default()
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .serve_with_incoming(incoming),
        );
        Ok(collector)
    }

    /// The endpoint to export to (`http://127.0.0.1:<port>`).
    pub fn endpoint(&self) -> String {
        self.addr.map(|a| format!("http://{a}")).unwrap_or_default()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<CollectedSpan> {
        let received = self.received.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for rs in received.iter().flat_map(|r| &r.resource_spans) {
            let service = text(
                rs.resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .and_then(|a| a.value.as_ref()),
            );
            for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                out.push(CollectedSpan {
                    service: service.clone(),
                    name: s.name.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    attributes: s
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(a.value.as_ref())))
                        .collect(),
                });
            }
        }
        out
    }
}
