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
    /// Failed logins for one account, within the window, before it is locked.
    pub login_account_threshold: i32,
    /// Failed logins from one client address, within the window, before it is locked.
    pub login_address_threshold: i32,
    /// The window failures are counted in, in seconds.
    pub login_window_secs: u64,
    /// The longest lock, in seconds (locks double from 1 s per failure past the threshold).
    pub login_max_lock_secs: u64,
    /// How long a deleted org can be restored before it is purged, in seconds.
    pub org_purge_after_secs: u64,
    /// How often the purge job runs, in seconds.
    pub purge_interval_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            token_ttl_secs: 60,
            password_min_chars: 12,
            login_account_threshold: 5,
            login_address_threshold: 20,
            login_window_secs: 15 * 60,
            login_max_lock_secs: 15 * 60,
            org_purge_after_secs: 30 * 24 * 3600,
            purge_interval_secs: 3600,
        }
    }
}

impl coffer_config::Validate for AuthConfig {
    const SECTION: &'static str = "auth";

    fn check(&self, c: &mut coffer_config::Check) {
        c.at_least("session_idle_secs", self.session_idle_secs, 1);
        c.at_least("session_absolute_secs", self.session_absolute_secs, 1);
        // Verifiers refuse tokens that live longer than a minute.
        c.between("token_ttl_secs", self.token_ttl_secs, 1, 60);
        c.between("password_min_chars", self.password_min_chars, 8, 1024);
        c.at_least("login_account_threshold", self.login_account_threshold, 1);
        c.at_least("login_address_threshold", self.login_address_threshold, 1);
        c.at_least("login_window_secs", self.login_window_secs, 1);
        c.at_least("login_max_lock_secs", self.login_max_lock_secs, 1);
        c.at_least("purge_interval_secs", self.purge_interval_secs, 1);
    }
}

#[cfg(test)]
mod tests {
    use coffer_config::Validate as _;

    use super::*;

    /// The defaults are a configuration that starts.
    #[test]
    fn the_defaults_pass_validation() {
        AuthConfig::default().validate().unwrap();
    }
}
