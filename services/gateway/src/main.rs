//! `coffer-gateway --config <file>`: config → telemetry → build → serve until SIGTERM → drain.

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
    let (service, config) = coffer_config::load_service::<coffer_gateway::GatewayConfig>(
        args.config.as_deref(),
        "gateway",
    )?;
    let _telemetry = coffer_telemetry::init("gateway", &service.telemetry)?;
    let app = coffer_gateway::App::build(&service, &config)
        .await
        .context("starting gateway")?;
    tracing::info!(public = %app.public_addr(), admin = %app.admin_addr(), "gateway serving");
    app.run(coffer_mesh::shutdown_signal()).await
}
