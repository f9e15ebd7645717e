//! `coffer-audit [--config <file>]`: config → telemetry → build → serve until SIGTERM → drain.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coffer_mesh::app::main(
        "audit",
        "audit",
        |service, config: coffer_audit::AuditConfig| async move {
            coffer_audit::build(&service, &config).await
        },
    )
    .await
}
