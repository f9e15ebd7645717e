//! `coffer-metadata [--config <file>]`: config → telemetry → build → serve until SIGTERM → drain.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coffer_mesh::app::main(
        "metadata",
        "metadata",
        |service, config: coffer_metadata::MetadataConfig| async move {
            coffer_metadata::build(&service, &config).await
        },
    )
    .await
}
