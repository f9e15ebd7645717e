//! `coffer-storage-signer [--config <file>]`: config → telemetry → build → serve until SIGTERM → drain.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coffer_mesh::app::main(
        "storage-signer",
        "storage_signer",
        |service, config: coffer_storage_signer::SignerConfig| async move {
            coffer_storage_signer::build(&service, &config).await
        },
    )
    .await
}
