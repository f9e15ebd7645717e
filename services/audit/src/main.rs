//! `coffer-audit --config <file>`: config → telemetry → build → serve until SIGTERM.

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
    let (service, config) =
        coffer_config::load_service::<coffer_audit::AuditConfig>(args.config.as_deref(), "audit")?;
    let _telemetry = coffer_telemetry::init("audit", &service.telemetry)?;
    let app = coffer_audit::build(&service, &config)
        .await
        .context("starting audit")?;
    tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "audit serving");
    app.run(coffer_mesh::shutdown_signal()).await
}
