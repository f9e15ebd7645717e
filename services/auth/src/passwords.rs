//! Password hashing (Argon2id) and the password policy.
//!
//! Parameters: Argon2id, 19 MiB, 2 passes, 1 lane — OWASP's recommended minimum. Verifying an
//! unknown email runs the same work against a fixed dummy hash, so timing does not reveal whether
//! an account exists. Hashing runs on the blocking pool, one hash per core at a time
//! (`coffer_mesh::cpu`): it takes tens of milliseconds of CPU and 19 MiB, and anyone can ask for it.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::AuthError;

/// The most common passwords (from public breach lists), refused whatever their length.
const COMMON: &str = include_str!("common-passwords.txt");
const MAX_BYTES: usize = 1024;

#[derive(Clone)]
pub struct Hasher {
    argon: Argon2<'static>,
    dummy: String,
    min_chars: usize,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

impl Hasher {
    pub fn new(min_chars: usize) -> Result<Self, AuthError> {
        let params =
            Params::new(19 * 1024, 2, 1, None).map_err(|e| AuthError::Internal(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Hasher {
            argon,
            dummy: String::new(),
            min_chars,
        };
        hasher.dummy = hasher.hash_now("dummy password for unknown accounts")?;
        Ok(hasher)
    }

    /// Returns a short description of the parameters, for the benchmark notes.
    pub fn parameters() -> &'static str {
        "Argon2id v0x13, m=19456 KiB, t=2, p=1"
    }

    /// Checks the password policy. `email` is used to refuse passwords made of it.
    pub fn check_policy(&self, password: &str, email: &str) -> Result<(), AuthError> {
        if password.len() > MAX_BYTES {
            return Err(AuthError::invalid(
                "password",
                format!("password is longer than {MAX_BYTES} bytes"),
            ));
        }
        if password.chars().count() < self.min_chars {
            return Err(AuthError::invalid(
                "password",
                format!("password must have at least {} characters", self.min_chars),
            ));
        }
        let lower = password.to_lowercase();
        if COMMON.lines().any(|common| common == lower) {
            return Err(AuthError::invalid("password", "password is too common"));
        }
        let local = email.split('@').next().unwrap_or_default();
        if local.len() >= 4 && lower.contains(local) {
            return Err(AuthError::invalid(
                "password",
                "password must not contain the email",
            ));
        }
        Ok(())
    }

    fn hash_now(&self, password: &str) -> Result<String, AuthError> {
        let mut salt_bytes = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt_bytes);
        let salt =
            SaltString::encode_b64(&salt_bytes).map_err(|e| AuthError::Internal(e.to_string()))?;
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    /// Hashes a password on the blocking pool, one hash per core at a time.
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        let this = self.clone();
        coffer_mesh::cpu::bounded(move || this.hash_now(&password)).await?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no account,
    /// so both paths cost the same. Returns true only for a real match; an error when the
    /// password could not be checked (too busy): never counted as a wrong password.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, AuthError> {
        let this = self.clone();
        coffer_mesh::cpu::bounded(move || {
            let real = stored.is_some();
            let phc = stored.unwrap_or_else(|| this.dummy.clone());
            let ok = PasswordHash::new(&phc)
                .map(|h| this.argon.verify_password(password.as_bytes(), &h).is_ok())
                .unwrap_or(false);
            ok && real
        })
        .await
        .map_err(AuthError::from)
    }
}
