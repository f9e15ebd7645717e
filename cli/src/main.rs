//! The `coffer` command.
#![allow(clippy::print_stdout)]

mod audit;
mod bench;
mod bench_scan;
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
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Load-tests a running `coffer dev up` mesh through its gateway (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Local development.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verifies an audit export offline: chain, checkpoint signatures, no gaps.
    Verify(audit::VerifyArgs),
    /// Prints the public key of the audit service's signing key file.
    PublicKey(audit::PublicKeyArgs),
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
        Command::Audit {
            command: AuditCommand::PublicKey(args),
        } => audit::public_key(args),
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => {
            if audit::verify(args)? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
    }
}
