//! `coffer-scan [--config <file>]`: config → telemetry → build → serve until SIGTERM → drain.
//! `coffer-scan engine-child`: one file's engines, contained (src/sandbox/child.rs).

fn main() -> anyhow::Result<()> {
    // Before any runtime or thread: the child contains itself, and may start no thread.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "engine-child")
    {
        std::process::exit(coffer_scan::sandbox::child::main());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(coffer_mesh::app::main(
            "scan",
            "scan",
            |service, config: coffer_scan::ScanConfig| async move {
                coffer_scan::build(&service, &config).await
            },
        ))
}
