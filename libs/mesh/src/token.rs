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
