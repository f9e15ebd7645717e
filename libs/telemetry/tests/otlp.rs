//! Trace export: with an endpoint configured, spans reach a real OTLP/gRPC collector.

use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test]
async fn spans_reach_a_real_otlp_collector() -> anyhow::Result<()> {
    let collector = coffer_testkit::OtlpCollector::start().await?;

    // The child exports on the processor's schedule (every 200 ms here) and stays alive for
    // seconds after its span ends, so the span must arrive through a scheduled export, not only
    // through the flush at shutdown.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "otlp_child", "--nocapture", "--ignored"])
        .env("COFFER_OTLP_TEST_ENDPOINT", collector.endpoint())
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
        let found = collector.spans().iter().any(|s| {
            s.service == "otlp-test" && s.name == "unit-of-work" && s.trace_id == trace_id
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
