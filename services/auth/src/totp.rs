//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps, ±1 step) through `totp-rs`. Seeds are sealed
//! at rest with the kit's column sealer (`coffer_kit::seal`), the user id as associated data so a
//! sealed seed cannot be moved to another user.

use rand::RngCore as _;
use totp_rs::{Algorithm, Builder, Totp};

use crate::error::AuthError;

pub const SEED_BYTES: usize = 20;

/// Returns a fresh random seed.
pub fn new_seed() -> Vec<u8> {
    let mut seed = vec![0u8; SEED_BYTES];
    rand::rng().fill_bytes(&mut seed);
    seed
}

/// Builds the TOTP of a seed for `account` (the email, shown in authenticator apps).
pub fn totp(seed: &[u8], account: &str) -> Result<Totp, AuthError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(seed.to_vec())
        .with_issuer(Some("Coffer"))
        .with_account_name(account)
        .build()
        .map_err(|e| AuthError::Internal(format!("totp: {e}")))
}

/// Returns the step a code matches now (±1 step), if any.
pub fn check(totp: &Totp, code: &str) -> Option<i64> {
    let now = u64::try_from(coffer_token::unix_now()).ok()?;
    totp.check(code.trim(), now)
        .and_then(|s| i64::try_from(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_current_step_only() {
        let t = totp(&new_seed(), "a@b.example").unwrap();
        let now = coffer_token::unix_now() as u64;
        let code = t.generate(now).to_string();
        assert!(check(&t, &code).is_some());
        assert!(check(&t, "000000").is_none() || t.generate(now).to_string() == "000000");
        let stale = t.generate(now - 300).to_string();
        assert!(check(&t, &stale).is_none() || stale == code);
        assert!(t.to_url().unwrap().starts_with("otpauth://totp/Coffer:"));
    }
}
