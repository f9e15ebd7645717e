//! A service's token verifier, re-read when its key ring file changes (rotation without restart).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use coffer_token::{AudienceKeyRing, Claims, KeyRingError, TokenError, Verifier, VerifyOptions};

use crate::watch::{Watched, spawn_poller};

/// A shared, hot-reloadable [`Verifier`] for this service's audience.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    current: Arc<ArcSwap<Verifier>>,
    source: Option<Arc<(PathBuf, Mutex<Watched>)>>,
    options: VerifyOptions,
}

impl TokenVerifier {
    /// Wraps a verifier that never reloads (tests, benchmarks).
    pub fn fixed(verifier: Verifier) -> Self {
        TokenVerifier {
            current: Arc::new(ArcSwap::from_pointee(verifier)),
            source: None,
            options: VerifyOptions::default(),
        }
    }

    /// Reads the audience ring at `path`.
    pub fn from_file(path: &Path, options: VerifyOptions) -> Result<Self, KeyRingError> {
        let watched = Watched::new(vec![path.to_owned()]);
        let ring = AudienceKeyRing::from_file(path)?;
        Ok(TokenVerifier {
            current: Arc::new(ArcSwap::from_pointee(Verifier::new(&ring, options))),
            source: Some(Arc::new((path.to_owned(), Mutex::new(watched)))),
            options,
        })
    }

    /// Verifies a token now.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.current.load().verify(token, coffer_token::unix_now())
    }

    /// Re-reads the ring if its file changed; a bad file keeps the previous ring in service.
    pub fn reload_if_changed(&self) -> Result<bool, KeyRingError> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let mut watched = source.1.lock().unwrap_or_else(|p| p.into_inner());
        let Some(now) = watched.changed() else {
            return Ok(false);
        };
        let ring = AudienceKeyRing::from_file(&source.0)?;
        if ring.audience() != self.current.load().audience() {
            return Err(KeyRingError::Invalid {
                path: source.0.clone(),
                reason: "the ring's audience changed".into(),
            });
        }
        self.current
            .store(Arc::new(Verifier::new(&ring, self.options)));
        watched.accept(now);
        Ok(true)
    }

    /// Polls the ring file every `every`.
    pub fn spawn_watcher(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        spawn_poller(every, move || {
            match this.reload_if_changed() {
                Ok(true) => tracing::info!("token key ring reloaded"),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "token key ring reload failed; keeping the previous one")
                }
            }
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_token::{Audience, MasterKeyRing, Minter, Role, Scopes, Subject};

    fn mint(ring: &MasterKeyRing) -> String {
        let subject = Subject {
            user_id: uuid::Uuid::from_u128(1),
            org_id: uuid::Uuid::from_u128(2),
            role: Role::Member,
            scopes: Scopes::NONE,
            credential: coffer_token::Credential::Session,
            request_id: "r".into(),
        };
        Minter::new(ring)
            .mint(
                &subject,
                &[Audience::Metadata],
                coffer_token::unix_now(),
                30,
            )
            .unwrap()
    }

    #[test]
    fn a_ring_file_rotates_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-ring.toml");
        let write = |ring: &MasterKeyRing| {
            std::fs::write(
                &path,
                ring.derive_audience_ring(Audience::Metadata).to_toml(),
            )
            .unwrap()
        };
        let mut ring = MasterKeyRing::generate("k1");
        write(&ring);
        let verifier = TokenVerifier::from_file(&path, VerifyOptions::default()).unwrap();
        let old = mint(&ring);
        assert!(verifier.verify(&old).is_ok());
        assert!(
            !verifier.reload_if_changed().unwrap(),
            "nothing changed yet"
        );

        // Add and activate k2: the file changes, both tokens verify after the reload.
        ring.add_random_key("k2");
        ring.activate("k2");
        let new = mint(&ring);
        assert_eq!(verifier.verify(&new), Err(TokenError::UnknownKey));
        write(&ring);
        assert!(verifier.reload_if_changed().unwrap());
        assert!(verifier.verify(&old).is_ok() && verifier.verify(&new).is_ok());

        // Retire k1: its tokens stop verifying.
        ring.retire("k1");
        write(&ring);
        assert!(verifier.reload_if_changed().unwrap());
        assert_eq!(verifier.verify(&old), Err(TokenError::UnknownKey));

        // A broken file, or one for another audience, keeps the previous ring in service.
        std::fs::write(&path, "not a ring").unwrap();
        assert!(verifier.reload_if_changed().is_err());
        assert!(verifier.verify(&new).is_ok());
        std::fs::write(&path, ring.derive_audience_ring(Audience::Audit).to_toml()).unwrap();
        assert!(verifier.reload_if_changed().is_err());
        assert!(verifier.verify(&new).is_ok());
    }
}
