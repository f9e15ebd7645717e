//! The `[audit]` section of the audit service's config file. The signing key is the secret file
//! `audit-signing-key` (a 32-byte Ed25519 seed, base64).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// A checkpoint signs the chain head every this many events of an org.
    pub checkpoint_every: u64,
    /// And at most this many seconds after an org's last event, if it has events no checkpoint
    /// covers yet.
    pub checkpoint_interval_secs: u64,
    /// How long a purged org's log is kept after its `org.purge` event, in seconds.
    pub retention_secs: u64,
    /// How often the retention job runs, in seconds.
    pub retention_interval_secs: u64,
    /// The id of the signing key (recorded in every checkpoint and export).
    pub signing_key_id: String,
    /// Page size of listings when the client gives none, and the largest it may ask for.
    pub default_page: u32,
    pub max_page: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_every: 1000,
            checkpoint_interval_secs: 60,
            signing_key_id: "audit-1".into(),
            retention_secs: 365 * 24 * 3600,
            retention_interval_secs: 3600,
            default_page: 100,
            max_page: 1000,
        }
    }
}

impl coffer_config::Validate for AuditConfig {
    const SECTION: &'static str = "audit";

    fn check(&self, c: &mut coffer_config::Check) {
        c.at_least("checkpoint_every", self.checkpoint_every, 1);
        c.at_least("checkpoint_interval_secs", self.checkpoint_interval_secs, 1);
        c.at_least("retention_interval_secs", self.retention_interval_secs, 1);
        c.that(
            "signing_key_id",
            !self.signing_key_id.is_empty(),
            "must not be empty",
        );
        c.at_least("max_page", self.max_page, 1);
        c.between("default_page", self.default_page, 1, self.max_page.max(1));
    }
}

#[cfg(test)]
mod tests {
    use coffer_config::Validate as _;

    use super::*;

    /// The defaults are a configuration that starts.
    #[test]
    fn the_defaults_pass_validation() {
        AuditConfig::default().validate().unwrap();
    }
}
