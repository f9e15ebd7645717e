//! Trace export: with an endpoint configured, spans reach a real OTLP/gRPC collector.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

/// A minimal collector: records every export request it receives.
#[derive(Clone, Default)]
struct Collector {
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.received.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn spans_reach_a_real_otlp_collector() -> anyhow::Result<()> {
    let collector = Collector::default();
    let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse()?)?;
    let addr = incoming.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(incoming),
    );

    // The child exports on the processor's schedule (every 200 ms here) and stays alive for
    // seconds after its span ends, so the span must arrive through a scheduled export, not only
    // through the flush at shutdown.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "otlp_child", "--nocapture", "--ignored"])
        .env("COFFER_OTLP_TEST_ENDPOINT", format!("http://{addr}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().unwrap();
    let (id_tx, id_rx) = std::sync::mpsc::channel();
    // Reads the child's output to the end (a dropped pipe would fail the child) and hands over
    // the trace id as soon as it is printed.
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(id) = line.strip_prefix("TRACE_ID=") {
                let _ = id_tx.send(id.to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let trace_id = tokio::task::spawn_blocking(move || id_rx.recv_timeout(Duration::from_secs(30)))
        .await?
        .expect("the child printed its trace id");
    let child_alive = |child: &mut std::process::Child| matches!(child.try_wait(), Ok(None));

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = collector.received.lock().unwrap().iter().any(|req| {
            req.resource_spans.iter().any(|rs| {
                let service_ok = rs.resource.as_ref().is_some_and(|r| {
                    r.attributes.iter().any(|a| {
                        a.key == "service.name" && format!("{:?}", a.value).contains("otlp-test")
                    })
                });
                service_ok
                    && rs.scope_spans.iter().any(|ss| {
                        ss.spans
                            .iter()
                            .any(|s| s.name == "unit-of-work" && hex(&s.trace_id) == trace_id)
                    })
            })
        });
        if found {
            assert!(
                child_alive(&mut child),
                "the span arrived only with the shutdown flush"
            );
            let status = child.wait()?;
            let output = reader.join().unwrap();
            assert!(status.success(), "{status:?}\n{output}");
            assert!(
                output.contains("1 passed"),
                "the child ran no test: {output}"
            );
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "no span with trace id {trace_id} reached the collector"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
#[ignore = "run by spans_reach_a_real_otlp_collector in a child process"]
#[allow(clippy::print_stdout)]
fn otlp_child() {
    let Ok(endpoint) = std::env::var("COFFER_OTLP_TEST_ENDPOINT") else {
        return;
    };
    let config = coffer_telemetry::TelemetryConfig {
        log_filter: "info".into(),
        json_logs: true,
        otlp_endpoint: Some(endpoint),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let guard = coffer_telemetry::init("otlp-test", &config).unwrap();
        {
            let span = tracing::info_span!("unit-of-work");
            let _entered = span.enter();
            let trace_id = coffer_telemetry::current_trace_id().unwrap();
            println!("TRACE_ID={trace_id}");
        }
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        // Dropping the guard flushes the exporter.
        drop(guard);
    });
}
