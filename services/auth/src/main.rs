//! `coffer-auth [--config <file>]`: config → telemetry → build → serve until SIGTERM → drain.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coffer_mesh::app::main(
        "auth",
        "auth",
        |service, config: coffer_auth::AuthConfig| async move {
            coffer_auth::build(&service, &config).await
        },
    )
    .await
}
