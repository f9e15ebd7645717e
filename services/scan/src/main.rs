//! `coffer-scan [--config <file>]`: config → telemetry → build → serve until SIGTERM → drain.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coffer_mesh::app::main(
        "scan",
        "scan",
        |service, config: coffer_scan::ScanConfig| async move {
            coffer_scan::build(&service, &config).await
        },
    )
    .await
}
