//! `coffer audit export` downloads the organisation's signed export; `coffer audit verify`
//! checks one — the hash chain, every checkpoint's signature and order, the signed trailer —
//! offline with the audit service's public key, or `--online`: it fetches the export and the
//! published key from the gateway itself (and compares that key with `--public-key` when given,
//! since a key fetched over the same connection is only as trusted as that connection).
//! Exit status 0 when sound, 1 when not (the reason is printed).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use crate::Ctx;
use crate::model::AuditPublicKey;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Where to write it (default standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The NDJSON export (`coffer audit export`); `-` reads standard input.
    #[arg(required_unless_present = "online", conflicts_with = "online")]
    export: Option<PathBuf>,
    /// The audit service's Ed25519 public key: a file holding it in base64.
    #[arg(long, required_unless_present = "online")]
    public_key: Option<PathBuf>,
    /// Fetches the export and the published public key from the gateway and verifies them.
    #[arg(long)]
    online: bool,
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
    say!("{}", signer.public_key_text());
    Ok(())
}

async fn fetch_export(ctx: &Ctx) -> anyhow::Result<String> {
    let api = ctx.api()?;
    let res = api
        .send::<()>(reqwest::Method::GET, "/v1/audit/export", None)
        .await?;
    res.text().await.context("the export broke off")
}

pub async fn export(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<i32> {
    let text = fetch_export(ctx).await?;
    let lines = text.lines().count();
    match &a.output {
        Some(p) => {
            // It names the organisation's people: readable by the user only.
            crate::profile::write_private(p, text.as_bytes())?;
            eprintln!(
                "wrote {} ({lines} lines); coffer audit verify {} --public-key KEY checks it",
                p.display(),
                p.display()
            );
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(0)
}

fn read_key(path: &PathBuf) -> anyhow::Result<[u8; 32]> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    key_of(&text).context("the public key file must hold 32 bytes in base64")
}

fn key_of(text: &str) -> Option<[u8; 32]> {
    coffer_auditlog::public_key_from_text(text)
}

/// Returns the exit status: 0 when the export verified.
pub async fn verify(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<i32> {
    let pinned = a.public_key.as_ref().map(read_key).transpose()?;
    let (export, key, source) = if a.online {
        let api = ctx.api()?;
        let published: AuditPublicKey = api.get("/v1/audit/public-key").await?;
        let key = key_of(&published.public_key)
            .context("the gateway's published key is not 32 bytes in base64")?;
        if let Some(p) = pinned {
            anyhow::ensure!(
                p == key,
                "the key the gateway publishes ({}) is not the one in --public-key: do not trust this export",
                published.public_key
            );
        }
        let export = fetch_export(ctx).await?;
        let how = if pinned.is_some() {
            "matches --public-key"
        } else {
            "fetched over the same connection; pin it with --public-key"
        };
        (
            export,
            key,
            format!(
                "online from {}: export and public key {} ({how})",
                api.base(),
                published.key_id
            ),
        )
    } else {
        let path = a.export.context("give the export file")?;
        let mut export = String::new();
        if path.as_os_str() == "-" {
            std::io::stdin().read_to_string(&mut export)?;
        } else {
            export = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        (
            export,
            pinned.context("give --public-key")?,
            format!("offline: {}", path.display()),
        )
    };
    match coffer_auditlog::verify_export(&export, &key) {
        Ok(s) => {
            let out = json!({"ok": true, "org_id": s.org_id, "events": s.events, "checkpoints": s.checkpoints, "head_hash": s.head_hash, "source": source});
            ctx.print(&out, || {
                say!(
                    "ok: org {}, {} events, {} checkpoints, head {}",
                    s.org_id,
                    s.events,
                    s.checkpoints,
                    s.head_hash
                );
                say!("verified {source}");
            })?;
            Ok(0)
        }
        Err(e) => {
            let out = json!({"ok": false, "error": e.to_string(), "source": source});
            ctx.print(&out, || say!("FAILED: {e}"))?;
            Ok(1)
        }
    }
}
