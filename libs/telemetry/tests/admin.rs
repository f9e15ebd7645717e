//! The admin port answers health, readiness and metrics over real HTTP.

use coffer_telemetry::{Readiness, metrics, serve_admin};

#[tokio::test]
async fn health_readiness_and_metrics() -> anyhow::Result<()> {
    let readiness = Readiness::default();
    let admin = serve_admin("127.0.0.1:0".parse()?, readiness.clone()).await?;
    let base = format!("http://{}", admin.addr);
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/healthz")).send().await?;
    assert_eq!(health.status(), 200);

    // Not ready until the service says so, and not ready again when it says so.
    assert_eq!(
        http.get(format!("{base}/readyz")).send().await?.status(),
        503
    );
    readiness.set(true);
    assert_eq!(
        http.get(format!("{base}/readyz")).send().await?.status(),
        200
    );
    readiness.set(false);
    assert_eq!(
        http.get(format!("{base}/readyz")).send().await?.status(),
        503
    );

    metrics().record_rpc("/coffer.v1.Test/Call", "Ok", 0.002);
    metrics().token_rejected("expired");
    let res = http.get(format!("{base}/metrics")).send().await?;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()?
            .starts_with("application/openmetrics-text")
    );
    let text = res.text().await?;
    assert!(
        text.contains(
            "coffer_grpc_server_requests_total{rpc=\"/coffer.v1.Test/Call\",code=\"Ok\"} 1"
        )
    );
    assert!(
        text.contains("coffer_grpc_server_duration_seconds_count{rpc=\"/coffer.v1.Test/Call\"} 1")
    );
    assert!(text.contains("coffer_token_rejections_total{reason=\"expired\"} 1"));
    // Every process says what it is, and how it is doing.
    metrics().set_build_info("test-service");
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        text.contains("coffer_build_info{service=\"test-service\",version=\"0.1.0\",git_sha=\""),
        "{text}"
    );
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(value("coffer_process_resident_memory_bytes") > 1e6);
    assert!(value("coffer_process_open_fds") >= 3.0);
    assert!(value("coffer_process_max_fds") >= value("coffer_process_open_fds"));
    assert!(value("coffer_process_cpu_seconds_total") > 0.0);
    let started = value("coffer_process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    assert!(
        started > now - 600.0 && started <= now,
        "{started} vs {now}"
    );
    assert!(text.trim_end().ends_with("# EOF"));

    assert_eq!(
        http.get(format!("{base}/v1/anything"))
            .send()
            .await?
            .status(),
        404
    );
    Ok(())
}
