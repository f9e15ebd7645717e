//! JSON logs: every line of a request carries its trace id; no token or tenant id is ever logged.

use std::process::Command;

use coffer_proto::testing::v1::EchoRequest;
use tracing::Instrument as _;

use crate::fixture::Fixture;

#[test]
fn json_logs_carry_trace_ids_and_never_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let facts = dir.path().join("facts.json");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "logs::log_child", "--nocapture", "--ignored"])
        .env("COFFER_LOG_TEST_FACTS", &facts)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
    let facts: serde_json::Value = serde_json::from_slice(&std::fs::read(&facts).unwrap()).unwrap();
    let trace_id = facts["trace_id"].as_str().unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    for needle in ["user token refused", "caller not allowed"] {
        let line = lines
            .iter()
            .find(|l| l["message"] == needle)
            .unwrap_or_else(|| panic!("no {needle:?} line in {stdout}"));
        let spans = line["spans"].as_array().expect("span list");
        assert!(
            spans.iter().any(|s| s["trace_id"] == trace_id),
            "{needle:?} line lacks the caller's trace id: {line}"
        );
        assert!(spans.iter().any(|s| s["request_id"].is_string()));
    }
    // The served RPC's span ends with its code, and only the server's own failure marks it as
    // an error (the collector's tail sampling keeps those traces); refusals do not.
    let done: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "rpc done")
        .collect();
    let status_of = |code: &str| {
        let line = done
            .iter()
            .find(|l| l["code"] == code)
            .unwrap_or_else(|| panic!("no rpc done line with {code}: {stdout}"));
        line["span"]["otel.status_code"].clone()
    };
    assert_eq!(status_of("Internal"), "ERROR");
    assert_eq!(status_of("PermissionDenied"), serde_json::Value::Null);
    assert_eq!(status_of("Unauthenticated"), serde_json::Value::Null);
    for secret in ["token", "org_id", "user_id"] {
        let value = facts[secret].as_str().unwrap();
        assert!(!stdout.contains(value), "{secret} leaked into the logs");
    }
}

#[test]
#[ignore = "run by json_logs_carry_trace_ids_and_never_tokens in a child process"]
fn log_child() {
    let Some(facts) = std::env::var_os("COFFER_LOG_TEST_FACTS") else {
        return;
    };
    let config = coffer_telemetry::TelemetryConfig {
        log_filter: "info,coffer_mesh=debug".into(),
        json_logs: true,
        otlp_endpoint: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _guard = coffer_telemetry::init("log-test", &config).unwrap();
        let fx = Fixture::start().await.unwrap();
        // A valid token presented by a caller off the list, and an expired one by an allowed
        // caller: both refusals are logged, neither token may be.
        let valid = fx.valid_token();
        let now = coffer_token::unix_now();
        let expired = fx.token(&[coffer_token::Audience::Metadata], now - 300, 30);
        let span = tracing::info_span!("client");
        let trace_id = span.in_scope(coffer_telemetry::current_trace_id).unwrap();
        async {
            let mut md = fx.client_as("metadata").unwrap();
            let mut req = tonic::Request::new(EchoRequest {
                message: "x".into(),
            });
            req.metadata_mut()
                .insert(coffer_token::METADATA_KEY, valid.parse().unwrap());
            let ctx = coffer_mesh::CallContext {
                token: None,
                request_id: "log-test-1".into(),
                deadline: None,
            };
            assert!(ctx.clone().scope(md.echo(req)).await.is_err());
            let mut gw = fx.client_as("gateway").unwrap();
            let mut req = tonic::Request::new(EchoRequest {
                message: "x".into(),
            });
            req.metadata_mut()
                .insert(coffer_token::METADATA_KEY, expired.parse().unwrap());
            assert!(ctx.clone().scope(gw.echo(req)).await.is_err());
            // A server-side failure of an allowed, authenticated call.
            let mut req = tonic::Request::new(EchoRequest {
                message: "fail:internal".into(),
            });
            req.metadata_mut()
                .insert(coffer_token::METADATA_KEY, valid.parse().unwrap());
            let failed = ctx.scope(gw.echo(req)).await.unwrap_err();
            assert_eq!(failed.code(), tonic::Code::Internal);
        }
        .instrument(span)
        .await;
        let subject = Fixture::subject();
        std::fs::write(
            facts,
            serde_json::json!({
                "trace_id": trace_id,
                "token": valid,
                "org_id": subject.org_id.to_string(),
                "user_id": subject.user_id.to_string(),
            })
            .to_string(),
        )
        .unwrap();
    });
}
