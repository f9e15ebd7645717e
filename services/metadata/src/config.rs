//! The `[metadata]` section of the metadata service's config file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// The largest file that may be declared, in bytes (one presigned PUT: at most 5 GiB).
    pub max_file_bytes: u64,
    /// Every org's storage quota until an operator sets another, in bytes.
    pub default_quota_bytes: u64,
    /// The longest a share link may live, in seconds.
    pub max_share_secs: u64,
    /// Page size of listings when the client gives none, and the largest it may ask for.
    pub default_page: u32,
    pub max_page: u32,
    /// Shortest share password accepted.
    pub share_password_min_chars: usize,
    /// Attempts at a share's password (counted before the check, cleared by the right one) from
    /// which each further one locks the share (429, `Retry-After`): 1 s at this many, doubling per
    /// further attempt up to `share_lock_max_secs`.
    pub share_password_attempts: u32,
    pub share_lock_max_secs: u64,
    /// How long the presigned GET a share link redirects to lives, in seconds (1–60): one
    /// redemption is one download, so its URL must not outlive the fetch by much.
    pub share_url_secs: u32,
    /// A file still in `pending_upload` this long after its creation is removed (object and row)
    /// and its bytes are given back to the quota. At least 3600: a presigned PUT lives at most
    /// 15 minutes, and a large upload started just before that may still be arriving.
    pub stale_upload_secs: u64,
    /// How often the stale-upload sweep runs, in seconds.
    pub sweep_interval_secs: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            max_file_bytes: 5 * 1024 * 1024 * 1024,
            default_quota_bytes: 10 * 1024 * 1024 * 1024,
            max_share_secs: 30 * 24 * 3600,
            default_page: 100,
            max_page: 1000,
            share_password_min_chars: 8,
            share_password_attempts: 5,
            share_lock_max_secs: 900,
            share_url_secs: 60,
            stale_upload_secs: 24 * 3600,
            sweep_interval_secs: 600,
        }
    }
}

impl MetadataConfig {
    /// Refuses settings that cannot work, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=60).contains(&self.share_url_secs),
            "metadata.share_url_secs must be between 1 and 60"
        );
        anyhow::ensure!(
            self.share_password_attempts >= 1,
            "metadata.share_password_attempts must be at least 1"
        );
        anyhow::ensure!(
            self.share_lock_max_secs >= 1,
            "metadata.share_lock_max_secs must be at least 1"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_urls_live_a_minute_at_most() {
        assert!(MetadataConfig::default().validate().is_ok());
        let bad = MetadataConfig {
            share_url_secs: 61,
            ..MetadataConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
