//! The `[storage_signer]` section of the storage-signer's config file. Credentials are not here:
//! they are read from the secret files `s3-access-key-id` and `s3-secret-access-key`.

use serde::{Deserialize, Serialize};

/// The longest a presigned URL may live, whatever the config says (DESIGN.md §5).
pub const MAX_EXPIRY_SECS: u32 = 15 * 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignerConfig {
    /// The object store's endpoint as this service reaches it (`http://` or `https://`).
    pub endpoint: String,
    /// The endpoint clients reach, when it differs (presigned URLs are signed for it).
    pub public_endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most self-hosted stores need.
    pub path_style: bool,
    /// Lifetime of presigned PUTs when the caller does not ask for one.
    pub put_expiry_secs: u32,
    /// Lifetime of presigned GETs when the caller does not ask for one.
    pub get_expiry_secs: u32,
    /// The longest lifetime a caller may ask for (at most 900).
    pub max_expiry_secs: u32,
}

impl Default for SignerConfig {
    fn default() -> Self {
        SignerConfig {
            endpoint: "http://127.0.0.1:9000".into(),
            public_endpoint: None,
            region: "us-east-1".into(),
            bucket: "coffer".into(),
            path_style: true,
            put_expiry_secs: 300,
            get_expiry_secs: 300,
            max_expiry_secs: MAX_EXPIRY_SECS,
        }
    }
}

impl SignerConfig {
    /// Where presigned URLs point: the origin browsers send them to (`scheme://host[:port]`,
    /// the bucket's own host unless path-style) and the path before each key. The gateway's
    /// `store_origin` must be this origin: its web app's policy allows it.
    pub fn public_base(&self) -> anyhow::Result<(String, String)> {
        let public = self
            .public_endpoint
            .as_deref()
            .unwrap_or(&self.endpoint)
            .trim_end_matches('/');
        let uri: http::Uri = public
            .parse()
            .map_err(|_| anyhow::anyhow!("the public endpoint is not a URL"))?;
        let (scheme, authority) = match (uri.scheme_str(), uri.authority()) {
            (Some(s @ ("http" | "https")), Some(a)) => (s, a.as_str()),
            _ => anyhow::bail!("the public endpoint must be http:// or https:// with a host"),
        };
        let base_path = uri.path().trim_end_matches('/');
        Ok(if self.path_style {
            (
                format!("{scheme}://{authority}"),
                format!("{base_path}/{}", self.bucket),
            )
        } else {
            (
                format!("{scheme}://{}.{authority}", self.bucket),
                base_path.to_owned(),
            )
        })
    }

    /// Returns the lifetime to sign for: `asked` (0 = `default`), never above the maximum.
    pub fn expiry(&self, asked: u32, default: u32) -> u32 {
        let asked = if asked == 0 { default } else { asked };
        asked.min(self.max_expiry_secs)
    }
}

impl coffer_config::Validate for SignerConfig {
    const SECTION: &'static str = "storage_signer";

    /// Lifetimes are between a second and 15 minutes, defaults within the maximum.
    fn check(&self, c: &mut coffer_config::Check) {
        c.between("max_expiry_secs", self.max_expiry_secs, 1, MAX_EXPIRY_SECS);
        c.between(
            "put_expiry_secs",
            self.put_expiry_secs,
            1,
            self.max_expiry_secs,
        );
        c.between(
            "get_expiry_secs",
            self.get_expiry_secs,
            1,
            self.max_expiry_secs,
        );
        c.that("bucket", !self.bucket.is_empty(), "must not be empty");
        c.that("endpoint", !self.endpoint.is_empty(), "must not be empty");
    }
}

#[cfg(test)]
mod tests {
    use coffer_config::Validate as _;

    use super::*;

    /// The defaults are a configuration that starts.
    #[test]
    fn presigned_urls_point_to_the_buckets_host_unless_path_style() {
        let with = |endpoint: &str, public: Option<&str>, path_style: bool| SignerConfig {
            endpoint: endpoint.into(),
            public_endpoint: public.map(Into::into),
            bucket: "vault".into(),
            path_style,
            ..SignerConfig::default()
        };
        assert_eq!(
            with("http://store:9000", Some("https://s3.example.com/"), false)
                .public_base()
                .unwrap(),
            ("https://vault.s3.example.com".to_owned(), String::new())
        );
        assert_eq!(
            with("http://127.0.0.1:9000", None, true)
                .public_base()
                .unwrap(),
            ("http://127.0.0.1:9000".to_owned(), "/vault".to_owned())
        );
        assert_eq!(
            with("http://x", Some("https://gw.example.com/s3"), true)
                .public_base()
                .unwrap(),
            ("https://gw.example.com".to_owned(), "/s3/vault".to_owned())
        );
        for bad in ["s3.example.com", "ftp://s3.example.com", ""] {
            assert!(with(bad, None, true).public_base().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_defaults_pass_validation() {
        SignerConfig::default().validate().unwrap();
    }
}
