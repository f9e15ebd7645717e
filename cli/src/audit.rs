//! `coffer audit verify EXPORT --public-key KEY`: checks an audit export offline — the hash
//! chain, every checkpoint's signature and order, and the signed trailer — with nothing but the
//! audit service's public key. Exit status 0 when sound, 1 when not (the reason is printed).

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The NDJSON export (`GET /v1/audit/export`); `-` reads standard input.
    export: PathBuf,
    /// The audit service's Ed25519 public key: a file holding it in base64.
    #[arg(long)]
    public_key: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct PublicKeyArgs {
    /// The audit service's signing key file (`audit-signing-key`: a 32-byte seed in base64).
    #[arg(long)]
    signing_key: PathBuf,
}

/// Prints the public key of a signing key file, in the form `--public-key` reads.
pub fn public_key(args: PublicKeyArgs) -> anyhow::Result<()> {
    let seed = std::fs::read_to_string(&args.signing_key)
        .with_context(|| format!("reading {}", args.signing_key.display()))?;
    let signer = coffer_auditlog::Signer::from_text("audit", &seed)
        .context("the signing key file must hold a 32-byte seed in base64")?;
    println!("{}", signer.public_key_text());
    Ok(())
}

/// Returns whether the export verified.
pub fn verify(args: VerifyArgs) -> anyhow::Result<bool> {
    let key_text = std::fs::read_to_string(&args.public_key)
        .with_context(|| format!("reading {}", args.public_key.display()))?;
    let key = coffer_auditlog::public_key_from_text(&key_text)
        .context("the public key file must hold 32 bytes in base64")?;
    let mut export = String::new();
    if args.export.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut export)?;
    } else {
        export = std::fs::read_to_string(&args.export)
            .with_context(|| format!("reading {}", args.export.display()))?;
    }
    match coffer_auditlog::verify_export(&export, &key) {
        Ok(s) => {
            println!(
                "ok: org {}, {} events, {} checkpoints, head {}",
                s.org_id, s.events, s.checkpoints, s.head_hash
            );
            Ok(true)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(false)
        }
    }
}
