//! The `[auth]` section of the auth service's config file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A session unused this long expires.
    pub session_idle_secs: u64,
    /// A session expires this long after login, however busy.
    pub session_absolute_secs: u64,
    /// Lifetime of minted user tokens (at most 60).
    pub token_ttl_secs: i64,
    /// Shortest password accepted at signup.
    pub password_min_chars: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            token_ttl_secs: 60,
            password_min_chars: 12,
        }
    }
}
