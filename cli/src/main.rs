//! The `coffer` command: the user's client. (Developer tooling is `coffer-dev`.)
#![allow(clippy::print_stdout)]

mod audit;

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
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verifies an audit export offline: chain, checkpoint signatures, no gaps.
    Verify(audit::VerifyArgs),
    /// Prints the public key of the audit service's signing key file.
    PublicKey(audit::PublicKeyArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
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
