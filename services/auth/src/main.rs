//! `coffer-auth --config <file>`: config → telemetry → build → serve until SIGTERM → drain.

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
        coffer_config::load_service::<coffer_auth::AuthConfig>(args.config.as_deref(), "auth")?;
    let _telemetry = coffer_telemetry::init("auth", &service.telemetry)?;
    let app = coffer_auth::build(&service, &config)
        .await
        .context("starting auth")?;
    tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "auth serving");
    app.run(coffer_mesh::shutdown_signal()).await
}
