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
            stale_upload_secs: 24 * 3600,
            sweep_interval_secs: 600,
        }
    }
}
