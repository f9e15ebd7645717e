//! `coffer-storage-signer --config <file>`: config → telemetry → build → serve until SIGTERM.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The TOML config file; `COFFER_*` environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (service, config) = coffer_config::load_service::<coffer_storage_signer::SignerConfig>(
        args.config.as_deref(),
        "storage_signer",
    )?;
    let _telemetry = coffer_telemetry::init("storage-signer", &service.telemetry)?;
    let app = coffer_storage_signer::build(&service, &config)
        .await
        .context("starting storage-signer")?;
    tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "storage-signer serving");
    app.run(coffer_mesh::shutdown_signal()).await
}
