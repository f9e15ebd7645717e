//! The `[scan]` section of the scan service's config file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engines::archive::ArchiveLimits;
use crate::engines::nsfw::NsfwConfig;
use crate::sandbox::SandboxConfig;
use crate::webhook::WebhookConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Jobs scanned at once by this process.
    pub workers: usize,
    /// How long a claimed job stays a worker's without a heartbeat, in seconds; a worker renews
    /// its lease every third of this while it scans.
    pub lease_secs: u64,
    /// Tries per job that fail on the file (an engine error); after the last, the verdict is
    /// `failed`. A try that fails on a dependency instead (the store, an unreachable clamd, a
    /// peer, the database) is a wait: it backs off the same way but is not counted.
    pub max_attempts: i32,
    /// How long a job may wait on its dependencies, in seconds from when it was queued; then its
    /// verdict is `failed`. A file stays `scanning` (not downloadable) meanwhile.
    pub max_wait_secs: u64,
    /// Retry delay after the first failure, doubled each time, capped at `backoff_max_secs`.
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    /// How often an idle worker looks for work, in milliseconds (new jobs also wake it at once).
    pub poll_interval_ms: u64,
    /// How often expired leases are returned to the queue, in seconds.
    pub reaper_interval_secs: u64,
    /// The largest object scanned; a larger one is `failed` without being downloaded.
    pub max_file_bytes: u64,
    /// Where objects are downloaded for scanning (one file per running job, removed after).
    pub temp_dir: Option<PathBuf>,
    /// A directory of the operator's own `.yar` rules, added to the shipped ones.
    pub rules_dir: Option<PathBuf>,
    /// clamd's address, `tcp://host:port` or `unix:///path`; none to run without ClamAV.
    pub clamd: Option<String>,
    pub clamd_timeout_secs: u64,
    pub archive: ArchiveLimits,
    /// The NSFW engine: its model, decoding limits and the policy of orgs that never chose.
    pub nsfw: NsfwConfig,
    /// Files scanned under other engine versions (rules, NSFW model, ClamAV signatures)
    /// re-queued per minute, in the background.
    pub rescan_per_minute: u32,
    /// Scan-only API: lifetime of the upload URL (at most 900), largest request, metadata size,
    /// and how long results are kept.
    pub scan_upload_expiry_secs: u32,
    pub max_scan_bytes: u64,
    pub max_metadata_bytes: usize,
    pub scan_retention_secs: u64,
    pub retention_interval_secs: u64,
    /// Scan-only bytes one org may submit per UTC day (429 beyond, until midnight UTC): the
    /// scan-only API stores nothing, so no storage quota holds it.
    pub scan_only_bytes_per_day: u64,
    /// After a scan-only upload URL expires, how long a PUT still arriving may take, in seconds;
    /// then the request's object is deleted and an unsubmitted request `expired`.
    pub scan_upload_grace_secs: u64,
    /// How often that sweep runs, in seconds.
    pub upload_sweep_interval_secs: u64,
    pub webhook: WebhookConfig,
    /// The engine children: the program, and each child's limits.
    pub sandbox: SandboxConfig,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            workers: 2,
            lease_secs: 30,
            max_attempts: 5,
            max_wait_secs: 24 * 3600,
            backoff_base_secs: 2,
            backoff_max_secs: 300,
            poll_interval_ms: 1000,
            reaper_interval_secs: 5,
            max_file_bytes: 5 * 1024 * 1024 * 1024,
            temp_dir: None,
            rules_dir: None,
            clamd: None,
            clamd_timeout_secs: 120,
            archive: ArchiveLimits::default(),
            nsfw: NsfwConfig::default(),
            rescan_per_minute: 60,
            scan_upload_expiry_secs: 900,
            max_scan_bytes: 1024 * 1024 * 1024,
            max_metadata_bytes: 4096,
            scan_retention_secs: 30 * 24 * 3600,
            retention_interval_secs: 3600,
            scan_only_bytes_per_day: 10 * 1024 * 1024 * 1024,
            scan_upload_grace_secs: 60,
            upload_sweep_interval_secs: 60,
            webhook: WebhookConfig::default(),
            sandbox: SandboxConfig::default(),
        }
    }
}

impl ScanConfig {
    pub fn temp_dir(&self) -> PathBuf {
        self.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// The delay before try `attempts + 1`.
    pub fn backoff(&self, attempts: i32) -> std::time::Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let secs = self
            .backoff_base_secs
            .saturating_mul(1u64 << exp)
            .min(self.backoff_max_secs);
        std::time::Duration::from_secs(secs)
    }
}

impl coffer_config::Validate for ScanConfig {
    const SECTION: &'static str = "scan";

    fn check(&self, c: &mut coffer_config::Check) {
        // 0 workers: this process serves the API and reaps leases, and scans nothing.
        c.between("workers", self.workers, 0, 64);
        c.at_least("lease_secs", self.lease_secs, 3);
        c.at_least("max_attempts", self.max_attempts, 1);
        c.at_least("max_wait_secs", self.max_wait_secs, 1);
        c.at_least("backoff_base_secs", self.backoff_base_secs, 1);
        c.at_least(
            "backoff_max_secs",
            self.backoff_max_secs,
            self.backoff_base_secs,
        );
        c.at_least("poll_interval_ms", self.poll_interval_ms, 10);
        c.at_least("reaper_interval_secs", self.reaper_interval_secs, 1);
        c.at_least("clamd_timeout_secs", self.clamd_timeout_secs, 1);
        c.at_least("sandbox.cpu_secs", self.sandbox.cpu_secs, 1);
        c.at_least(
            "sandbox.timeout_secs",
            self.sandbox.timeout_secs,
            self.sandbox.cpu_secs,
        );
        c.at_least("sandbox.memory_bytes", self.sandbox.memory_bytes, 256 << 20);
        c.at_least("sandbox.disk_bytes", self.sandbox.disk_bytes, 1 << 20);
        c.between("nsfw.max_side", self.nsfw.max_side, 1, 65_535);
        c.at_least("nsfw.max_pixels", self.nsfw.max_pixels, 1);
        c.at_least("nsfw.max_alloc_bytes", self.nsfw.max_alloc_bytes, 1 << 20);
        c.at_least("nsfw.max_image_bytes", self.nsfw.max_image_bytes, 1);
        c.at_least("nsfw.max_images_per_file", self.nsfw.max_images_per_file, 1);
        c.that(
            "nsfw.default_thresholds",
            self.nsfw.default_thresholds.check().is_ok(),
            "must each be in (0, 1]",
        );
        c.between(
            "scan_upload_expiry_secs",
            self.scan_upload_expiry_secs,
            1,
            900,
        );
        c.between("max_metadata_bytes", self.max_metadata_bytes, 0, 4096);
        c.at_least("retention_interval_secs", self.retention_interval_secs, 1);
        c.at_least(
            "upload_sweep_interval_secs",
            self.upload_sweep_interval_secs,
            1,
        );
        c.at_least(
            "webhook.retry_for_secs",
            self.webhook.retry_for_secs,
            24 * 3600,
        );
        c.at_least(
            "webhook.backoff_base_secs",
            self.webhook.backoff_base_secs,
            1,
        );
        c.at_least("webhook.timeout_secs", self.webhook.timeout_secs, 1);
        c.at_least(
            "webhook.poll_interval_ms",
            self.webhook.poll_interval_ms,
            10,
        );
    }
}

#[cfg(test)]
mod tests {
    use coffer_config::Validate as _;

    use super::*;

    /// The defaults are a configuration that starts.
    #[test]
    fn the_defaults_pass_validation() {
        ScanConfig::default().validate().unwrap();
    }
}
