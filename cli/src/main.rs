//! The `coffer` command: the user's client of a Coffer gateway. (Developer tooling is
//! `coffer-dev`.) The command line is declared here; each command lives in its module. Output
//! goes through `say!` (out.rs), never `println!` (clippy holds it).
#![allow(clippy::print_stderr)]

#[macro_use]
mod out;

mod account;
mod audit;
mod client;
mod download;
mod files;
mod model;
mod pace;
mod profile;
mod progress;
mod remote;
mod scan;
mod upload;

use clap::{CommandFactory as _, Parser, Subcommand};

/// Exit status when a file or scan ended quarantined (infected, suspicious or sensitive; or an
/// image `nsfw` where the org's policy quarantines it, and any `nsfw` scan-only result).
pub const EXIT_QUARANTINED: i32 = 3;
/// Exit status when a scan failed (no verdict could be reached).
pub const EXIT_SCAN_FAILED: i32 = 4;

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "Coffer: a secure multi-tenant file vault",
    after_help = "Exit status: 0 done (and clean); 1 an error; 2 a usage error; 3 a file or scan found infected, suspicious or sensitive (or not safe for work, where that quarantines); 4 a scan failed (no verdict); 130 interrupted."
)]
struct Cli {
    /// The profile to use (default: the one last logged in; env COFFER_PROFILE).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Machine-readable output: one JSON document on standard output, no progress bars.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Logs in: email, password and (when enabled) a TOTP code, or an API key.
    Login(account::LoginArgs),
    /// Logs out: revokes the session on the server and forgets the credential.
    Logout,
    /// Shows who and where the profile is logged in.
    Whoami,
    /// Lists a folder (default: the top), a file, or the trash.
    Ls(files::LsArgs),
    /// Creates a folder.
    Mkdir(files::MkdirArgs),
    /// Moves or renames a file or folder.
    Mv(files::MvArgs),
    /// Moves files or folders to the trash.
    Rm(files::RmArgs),
    /// Restores trashed files (by their former path or by id).
    Restore(files::TargetsArgs),
    /// Deletes files for good, with their bytes (trashed or not).
    Purge(files::TargetsArgs),
    /// Uploads files (large ones in parts, resumable); --wait for the verdicts.
    Put(files::PutArgs),
    /// Downloads a file and checks its SHA-256 against the server's record.
    Get(files::GetArgs),
    /// Creates a share link to a file.
    Share(files::ShareArgs),
    /// Scans files without keeping them (the scan-only API) and prints each engine's result.
    Scan(scan::ScanArgs),
    /// Audit log: export, verify.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Prints a shell completion script: coffer completions bash > /etc/bash_completion.d/coffer
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Downloads the organisation's signed audit export (NDJSON).
    Export(audit::ExportArgs),
    /// Verifies an audit export: chain, checkpoint signatures, no gaps (offline, or --online).
    Verify(audit::VerifyArgs),
    /// Prints the public key of the audit service's signing key file.
    PublicKey(audit::PublicKeyArgs),
}

/// What every command gets: the profile's name and its config, and the output mode.
pub struct Ctx {
    pub config: profile::Config,
    pub profile: String,
    pub json: bool,
}

impl Ctx {
    /// The signed-in client of the profile, or what to run first.
    pub fn api(&self) -> anyhow::Result<client::Api> {
        let p = self.config.profiles.get(&self.profile).ok_or_else(|| {
            anyhow::anyhow!(
                "no profile {:?}: run coffer login --gateway URL{}",
                self.profile,
                if self.profile == profile::DEFAULT {
                    String::new()
                } else {
                    format!(" --profile {}", self.profile)
                }
            )
        })?;
        anyhow::ensure!(p.credential.is_some(), client::ApiError::NotLoggedIn);
        client::Api::new(p)
    }

    /// Prints a result: JSON, or the human lines.
    pub fn print(&self, value: &impl serde::Serialize, human: impl FnOnce()) -> anyhow::Result<()> {
        if self.json {
            say!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human();
        }
        Ok(())
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "coffer", &mut script);
        out::bytes(&script);
        return Ok(0);
    }
    let config = profile::Config::load()?;
    let asked = cli.profile.or_else(|| std::env::var("COFFER_PROFILE").ok());
    let ctx = Ctx {
        profile: config.name(asked.as_deref())?,
        config,
        json: cli.json,
    };
    match cli.command {
        Command::Login(a) => account::login(ctx, a).await,
        Command::Logout => account::logout(ctx).await,
        Command::Whoami => account::whoami(&ctx).await,
        Command::Ls(a) => files::ls(&ctx, a).await,
        Command::Mkdir(a) => files::mkdir(&ctx, a).await,
        Command::Mv(a) => files::mv(&ctx, a).await,
        Command::Rm(a) => files::rm(&ctx, a).await,
        Command::Restore(a) => files::restore(&ctx, a).await,
        Command::Purge(a) => files::purge(&ctx, a).await,
        Command::Put(a) => files::put(&ctx, a).await,
        Command::Get(a) => files::get(&ctx, a).await,
        Command::Share(a) => files::share(&ctx, a).await,
        Command::Scan(a) => scan::scan(&ctx, a).await,
        Command::Audit { command } => match command {
            AuditCommand::Export(a) => audit::export(&ctx, a).await,
            AuditCommand::Verify(a) => audit::verify(&ctx, a).await,
            AuditCommand::PublicKey(a) => audit::public_key(a).map(|()| 0),
        },
        Command::Completions { .. } => Ok(0),
    }
}

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coffer: cannot start: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        tokio::select! {
            r = run(cli) => match r {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("coffer: {e:#}");
                    if json {
                        say!("{}", serde_json::json!({"ok": false, "error": format!("{e:#}")}));
                    }
                    1
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ncoffer: interrupted (an upload in parts resumes when the same coffer put runs again)");
                130
            }
        }
    });
    // Streams still in flight are dropped with the runtime.
    runtime.shutdown_background();
    std::process::exit(code);
}
