//! The `coffer` command.
#![allow(clippy::print_stdout)]

mod bench;
mod dev;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "Coffer: a secure multi-tenant file vault"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load-tests a running `coffer dev up` mesh through its gateway (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Local development.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Starts the whole mesh locally and runs until Ctrl-C or SIGTERM.
    Up(dev::UpArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Dev {
            command: DevCommand::Up(args),
        } => dev::up(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}
