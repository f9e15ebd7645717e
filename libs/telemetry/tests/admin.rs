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
