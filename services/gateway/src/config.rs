//! The `[gateway]` section of the gateway's config file.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The public HTTPS address.
    pub public_listen: SocketAddr,
    /// Largest JSON body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Sustained requests per second allowed per client address.
    pub rate_per_second: u32,
    /// Burst allowed per client address.
    pub rate_burst: u32,
    /// The public base URL share links are built on (`https://vault.example.com`). Required: a
    /// link is never built from a request's `Host`, which a client chooses.
    pub public_url: Option<String>,
    /// Live event streams (`GET /v1/events`) one user may hold open at once.
    pub events_per_user: usize,
    /// Seconds between keep-alive comments on an idle event stream. A client that went away is
    /// noticed at the next write, so this is also how long its slot may stay taken. At least 1.
    pub events_keepalive_secs: u64,
    /// Seconds between re-checks of an open event stream's credential: once the session is
    /// logged out, the key revoked or the org disabled, the stream ends at the next re-check.
    /// 1 to 60 (a token's lifetime).
    pub events_recheck_secs: u64,
    /// The peers (CIDRs) whose `X-Forwarded-For` names the client: the ingress's range. From
    /// anyone else the TCP peer is the client. Empty (the default): nobody's header is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The object store's origin as browsers reach it (`https://s3.example.com`): the web app
    /// PUTs and GETs there with presigned URLs, so its Content-Security-Policy names it. Unset,
    /// the browser may reach only the gateway (uploads and downloads from the web app fail).
    pub store_origin: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            public_listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            max_body_bytes: 64 * 1024,
            rate_per_second: 20,
            rate_burst: 40,
            public_url: None,
            events_per_user: 3,
            events_keepalive_secs: 15,
            events_recheck_secs: 30,
            trusted_proxies: Vec::new(),
            store_origin: None,
        }
    }
}

impl GatewayConfig {
    /// The public URL without a trailing slash, or why it is missing or unusable.
    pub fn public_url(&self) -> anyhow::Result<String> {
        let raw = self.public_url.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "gateway.public_url is required: share links are built on it, never on a request's Host"
            )
        })?;
        let url =
            url::Url::parse(raw).map_err(|_| anyhow::anyhow!("gateway.public_url is not a URL"))?;
        anyhow::ensure!(
            url.scheme() == "https"
                && url.host_str().is_some_and(|h| !h.is_empty())
                && url.username().is_empty()
                && url.password().is_none()
                && url.query().is_none()
                && url.fragment().is_none(),
            "gateway.public_url must be https://host[:port][/path], without credentials, query or fragment"
        );
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }

    /// The store's origin (`scheme://host[:port]`), or why it is unusable.
    pub fn store_origin(&self) -> anyhow::Result<Option<String>> {
        let Some(raw) = self.store_origin.as_deref() else {
            return Ok(None);
        };
        let url = url::Url::parse(raw)
            .map_err(|_| anyhow::anyhow!("gateway.store_origin is not a URL"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "https" | "http")
                && url.host_str().is_some_and(|h| !h.is_empty())
                && url.username().is_empty()
                && url.password().is_none()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none(),
            "gateway.store_origin must be an origin: https://host[:port], nothing after it"
        );
        // A page served over https may not reach a plain-http store (mixed content), but for
        // a loopback one, which browsers trust (the local dev mesh).
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
            None => false,
        };
        anyhow::ensure!(
            url.scheme() == "https" || loopback,
            "gateway.store_origin must be https (browsers refuse plain http from an https page), but for a loopback store"
        );
        Ok(Some(url.origin().ascii_serialization()))
    }
}

impl coffer_config::Validate for GatewayConfig {
    const SECTION: &'static str = "gateway";

    fn check(&self, c: &mut coffer_config::Check) {
        c.at_least("max_body_bytes", self.max_body_bytes, 1024);
        c.at_least("rate_per_second", self.rate_per_second, 1);
        c.at_least("rate_burst", self.rate_burst, 1);
        c.at_least("events_per_user", self.events_per_user, 1);
        c.at_least("events_keepalive_secs", self.events_keepalive_secs, 1);
        c.between("events_recheck_secs", self.events_recheck_secs, 1, 60);
        if let Err(e) = self.public_url() {
            c.that("public_url", false, &format!("is unusable: {e}"));
        }
        if let Err(e) = self.store_origin() {
            c.that("store_origin", false, &format!("is unusable: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_config::Validate as _;

    #[test]
    fn the_store_origin_is_an_origin_only() {
        let with = |u: &str| GatewayConfig {
            public_url: Some("https://vault.example.com".into()),
            store_origin: Some(u.into()),
            ..GatewayConfig::default()
        };
        for bad in [
            "s3.example.com",
            "ftp://s3.example.com",
            "https://s3.example.com/bucket",
            "https://k:s@s3.example.com",
            "https://s3.example.com/?x",
            "https://s3.example.com 'unsafe-inline'",
            "http://s3.example.com",
        ] {
            assert!(with(bad).validate().is_err(), "{bad}");
        }
        assert_eq!(
            with("https://S3.Example.com:9000/").store_origin().unwrap(),
            Some("https://s3.example.com:9000".to_owned())
        );
        assert_eq!(
            with("http://127.0.0.1:9000").store_origin().unwrap(),
            Some("http://127.0.0.1:9000".to_owned())
        );
    }

    #[test]
    fn the_public_url_is_required_and_must_be_plain_https() {
        let with = |u: Option<&str>| GatewayConfig {
            public_url: u.map(Into::into),
            ..GatewayConfig::default()
        };
        assert!(with(None).validate().is_err());
        for bad in [
            "",
            "vault.example.com",
            "http://vault.example.com",
            "https://user:pw@vault.example.com",
            "https://vault.example.com/?x=1",
            "https://vault.example.com/#f",
            "javascript:alert(1)",
        ] {
            assert!(with(Some(bad)).validate().is_err(), "{bad}");
        }
        assert_eq!(
            with(Some("https://vault.example.com/"))
                .public_url()
                .unwrap(),
            "https://vault.example.com"
        );
        assert_eq!(
            with(Some("https://Vault.Example.com:8443/coffer"))
                .public_url()
                .unwrap(),
            "https://vault.example.com:8443/coffer"
        );
        let mut c = with(Some("https://vault.example.com"));
        c.events_recheck_secs = 61;
        assert!(c.validate().is_err());
    }
}
