//! `coffer-dev`: the developer's tools, apart from the user's `coffer` client (which links
//! neither YARA-X nor the embedded S3 server).
#![allow(clippy::print_stdout)]

mod bench;
mod bench_open;
mod bench_overload;
mod bench_scan;
mod bench_soak;
mod bench_transfer;
mod client;
mod dashboards;
mod drill;
mod drill_faults;
mod keys;
mod load;
mod up;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "coffer-dev",
    version,
    about = "Coffer developer tools: a local mesh and its load benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts the whole mesh locally and runs until Ctrl-C or SIGTERM.
    Up(up::UpArgs),
    /// Load-tests a running `coffer-dev up` mesh through its gateway (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// The `coffer` client's put and get of a large file against the store's own raw PUT and GET
    /// (see BENCHMARKS.md).
    BenchTransfer(bench_transfer::TransferArgs),
    /// Writes the Grafana dashboards of observability/ (or checks that they are current).
    Dashboards(dashboards::DashboardsArgs),
    /// Secrets for a deployment (`new`) and token key rotation (`rotate`): k8s/README.md.
    Keys(keys::KeysArgs),
    /// Drills: `restore` restores the database to a point in time and checks the vault.
    #[command(subcommand)]
    Drill(DrillCommand),
}

#[derive(Subcommand)]
enum DrillCommand {
    /// The point-in-time restore drill, end to end on this machine (k8s/README.md, "Restoring").
    Restore(drill::DrillArgs),
    /// Faults injected into the mesh under load, and the invariants checked after them
    /// (BENCHMARKS.md, "Faults").
    Faults(drill_faults::FaultArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up(args) => up::up(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::BenchTransfer(args) => bench_transfer::run(args).await,
        Command::Dashboards(args) => dashboards::run(&args),
        Command::Drill(DrillCommand::Restore(args)) => drill::run(args).await,
        Command::Drill(DrillCommand::Faults(args)) => drill_faults::run(args).await,
        Command::Keys(args) => keys::run(args),
    }
}
