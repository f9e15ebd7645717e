//! The `[metadata]` section of the metadata service's config file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// The largest file that may be declared, in bytes (at most 5 TiB, S3's largest object).
    pub max_file_bytes: u64,
    /// Files larger than this (bytes) are uploaded in parts (at most 5 GiB: one PUT's limit).
    pub multipart_threshold_bytes: u64,
    /// The part size of a multipart upload (5 MiB to 5 GiB), grown for a file that would need
    /// more than 10,000 parts.
    pub multipart_part_bytes: u64,
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
    /// How long a purged file's object is kept after its row is gone, in seconds: at least the
    /// database's point-in-time recovery window (the backups' retention, plus the interval of base
    /// backups: the retention keeps the newest one older than the window), so a restore to any
    /// moment it can reach finds the object of every file it brings back. Default 36 days. The sweep deletes due objects
    /// every `sweep_interval_secs`. 0 deletes the object with the purge (no restore can then
    /// bring a purged file's bytes back).
    pub object_delete_delay_secs: u64,
    /// Files in the trash longer than this many days are purged (object, row, quota) by the
    /// trash's retention job, audited like a user's purge. 0 purges at the next sweep.
    pub trash_retention_days: u32,
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            max_file_bytes: 5 * TIB,
            multipart_threshold_bytes: 64 * MIB,
            multipart_part_bytes: 16 * MIB,
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
            object_delete_delay_secs: 36 * 24 * 3600,
            trash_retention_days: 30,
        }
    }
}

impl MetadataConfig {
    /// How a file of `size` bytes is cut: (part size, part count), at most 10,000 parts, every
    /// part but the last of the part size (a whole MiB). `None` below the threshold (one PUT).
    pub fn multipart_plan(&self, size: u64) -> Option<(u64, u32)> {
        if size <= self.multipart_threshold_bytes {
            return None;
        }
        let needed = size.div_ceil(10_000).div_ceil(MIB) * MIB;
        let part = self.multipart_part_bytes.max(needed);
        Some((part, size.div_ceil(part) as u32))
    }
}

impl coffer_config::Validate for MetadataConfig {
    const SECTION: &'static str = "metadata";

    fn check(&self, c: &mut coffer_config::Check) {
        c.between("max_file_bytes", self.max_file_bytes, 1, 5 * TIB);
        c.between(
            "multipart_threshold_bytes",
            self.multipart_threshold_bytes,
            1,
            5 * GIB,
        );
        c.between(
            "multipart_part_bytes",
            self.multipart_part_bytes,
            5 * MIB,
            5 * GIB,
        );
        c.at_least("max_share_secs", self.max_share_secs, 60);
        c.at_least("max_page", self.max_page, 1);
        c.between("default_page", self.default_page, 1, self.max_page.max(1));
        c.at_least("share_password_min_chars", self.share_password_min_chars, 1);
        c.between("share_url_secs", self.share_url_secs, 1, 60);
        c.at_least("share_password_attempts", self.share_password_attempts, 1);
        c.at_least("share_lock_max_secs", self.share_lock_max_secs, 1);
        // A presigned PUT lives at most 15 minutes, and a large upload started just before that
        // may still be arriving: an hour at least.
        c.at_least("stale_upload_secs", self.stale_upload_secs, 3600);
        c.at_least("sweep_interval_secs", self.sweep_interval_secs, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_config::Validate as _;

    #[test]
    fn large_files_are_cut_into_at_most_ten_thousand_parts() {
        let c = MetadataConfig::default();
        assert_eq!(c.multipart_plan(64 * MIB), None);
        assert_eq!(c.multipart_plan(64 * MIB + 1), Some((16 * MIB, 5)));
        // 5 TiB: parts grow to keep within 10,000 (and stay whole MiB, below 5 GiB).
        let (part, count) = c.multipart_plan(5 * TIB).unwrap();
        assert!(count <= 10_000 && part % MIB == 0 && part <= 5 * GIB);
        assert!(part * u64::from(count) >= 5 * TIB);
        assert!(part * u64::from(count - 1) < 5 * TIB);
    }

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
