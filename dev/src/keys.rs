//! `coffer-dev keys`: the secrets Coffer's services need that no one else makes (cert-manager makes
//! the certificates, CloudNativePG the database's CA, the object store its credentials), written
//! as one directory per Kubernetes Secret, and the token key ring's rotation steps.
//!
//! The services say what they read (`coffer_<service>::SECRETS`); this writes exactly that, named
//! as k8s/base's projected volumes mount it (dev/tests/k8s.rs checks the two agree).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use coffer_config::{SecretFile, SecretKind};
use coffer_token::{Audience, MasterKeyRing};
use rand::RngCore as _;

use crate::up::SERVICES;

#[derive(clap::Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KeysCommand {
    /// Writes a fresh set: token rings, column keys, the audit signing key, the cookie ring and
    /// the database roles' passwords, under OUT/<secret name>/<key> (mode 0600). Create each
    /// Secret with `kubectl create secret generic <name> --from-file=OUT/<name>` (the role
    /// secrets with `--type=kubernetes.io/basic-auth`).
    New {
        #[arg(long)]
        out: PathBuf,
        /// The token rings' first key id.
        #[arg(long, default_value = "k1")]
        key_id: String,
    },
    /// One step of a token key rotation: reads auth's master ring, applies the step, and writes
    /// the master ring and every audience ring derived from it under OUT (as `new` names them).
    /// The steps, each rolled out before the next: `add` a key id, `activate` it, `retire` the old
    /// one a minute later (tokens live at most 60 s).
    Rotate {
        /// auth's current `token-master.toml`.
        #[arg(long)]
        master: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(value_enum)]
        step: Step,
        key_id: String,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Step {
    Add,
    Activate,
    Retire,
}

/// Where a service's secret file lives in Kubernetes: the Secret's name and the key in it.
/// `None` for what another system makes (cert-manager, CloudNativePG, the object store).
fn k8s_secret(service: &str, secret: &SecretFile, file: &str) -> Option<(String, String)> {
    match secret.kind {
        SecretKind::AudienceRing => Some((format!("{service}-token-ring"), file.to_owned())),
        SecretKind::TokenMasterRing => Some(("token-master".into(), file.to_owned())),
        SecretKind::ColumnKey => Some((format!("{service}-{file}"), file.to_owned())),
        SecretKind::SigningKey => Some((file.to_owned(), file.to_owned())),
        SecretKind::CookieRing => Some((
            format!("{service}-{}", file.trim_end_matches(".toml")),
            file.to_owned(),
        )),
        SecretKind::DatabaseRoles => match file {
            "db-owner-password" => Some((format!("{service}-owner-role"), "password".into())),
            "db-runtime-password" => Some((format!("{service}-runtime-role"), "password".into())),
            _ => None, // db-ca.crt: CloudNativePG's
        },
        SecretKind::MeshIdentity | SecretKind::PublicTls | SecretKind::StoreCredentials => None,
    }
}

fn write(out: &Path, secret: &str, key: &str, value: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let dir = out.join(secret);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let path = dir.join(key);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut f, value.as_bytes())?;
    Ok(())
}

fn random_base64(len: usize) -> String {
    let mut key = vec![0u8; len];
    rand::rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// The master ring and every service's audience ring derived from it.
fn write_rings(out: &Path, master: &MasterKeyRing) -> anyhow::Result<()> {
    for svc in SERVICES {
        for secret in svc.secrets {
            for file in secret.files {
                let value = match secret.kind {
                    SecretKind::TokenMasterRing => master.to_toml(),
                    SecretKind::AudienceRing => {
                        let audience = Audience::from_name(svc.name)
                            .with_context(|| format!("{} is no token audience", svc.name))?;
                        master.derive_audience_ring(audience).to_toml()
                    }
                    _ => continue,
                };
                let (name, key) = k8s_secret(svc.name, secret, file).context("a ring")?;
                write(out, &name, &key, &value)?;
            }
        }
    }
    Ok(())
}

pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    match args.command {
        KeysCommand::New { out, key_id } => {
            ensure!(
                coffer_token::is_valid_key_id(&key_id),
                "invalid key id {key_id:?}"
            );
            ensure!(
                !out.exists() || std::fs::read_dir(&out)?.next().is_none(),
                "{} is not empty: new keys go to a new directory",
                out.display()
            );
            let master = MasterKeyRing::generate(&key_id);
            write_rings(&out, &master)?;
            for svc in SERVICES {
                for secret in svc.secrets {
                    for file in secret.files {
                        let value = match secret.kind {
                            SecretKind::ColumnKey | SecretKind::SigningKey => random_base64(32),
                            SecretKind::CookieRing => MasterKeyRing::generate(&key_id).to_toml(),
                            SecretKind::DatabaseRoles if *file != "db-ca.crt" => {
                                coffer_testkit::random_secret()
                            }
                            _ => continue,
                        };
                        let (name, key) = k8s_secret(svc.name, secret, file).context("a secret")?;
                        write(&out, &name, &key, &value)?;
                        if secret.kind == SecretKind::DatabaseRoles {
                            let role = if file.contains("owner") {
                                "owner"
                            } else {
                                "runtime"
                            };
                            let role = format!("{}_{role}", svc.name.replace('-', "_"));
                            write(&out, &name, "username", &role)?;
                        }
                    }
                }
            }
            println!("wrote {} (one directory per Secret):", out.display());
            let mut names: Vec<_> = std::fs::read_dir(&out)?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                let kind = if name.ends_with("-role") {
                    " --type=kubernetes.io/basic-auth"
                } else {
                    ""
                };
                println!(
                    "  kubectl -n coffer create secret generic {name}{kind} --from-file={}",
                    out.join(&name).display()
                );
            }
            println!(
                "not written here: the object store's credentials (storage-signer-s3, db-backup-s3)"
            );
            Ok(())
        }
        KeysCommand::Rotate {
            master,
            out,
            step,
            key_id,
        } => {
            ensure!(
                coffer_token::is_valid_key_id(&key_id),
                "invalid key id {key_id:?}"
            );
            let mut ring = MasterKeyRing::from_file(&master)
                .with_context(|| format!("reading {}", master.display()))?;
            match step {
                Step::Add => {
                    ensure!(
                        !ring.key_ids().any(|k| k == key_id),
                        "{key_id} is in the ring already"
                    );
                    ring.add_random_key(&key_id);
                }
                Step::Activate => {
                    ensure!(
                        ring.activate(&key_id),
                        "{key_id} is not in the ring: add it first"
                    );
                }
                Step::Retire => {
                    ensure!(
                        ring.active_key_id() != key_id,
                        "{key_id} is the active key: activate another first"
                    );
                    ensure!(
                        ring.key_ids().any(|k| k == key_id),
                        "{key_id} is not in the ring"
                    );
                    ring.retire(&key_id);
                }
            }
            write_rings(&out, &ring)?;
            println!(
                "wrote the master ring and every audience ring under {} (active: {}; keys: {})",
                out.display(),
                ring.active_key_id(),
                ring.key_ids().collect::<Vec<_>>().join(", ")
            );
            Ok(())
        }
    }
}
