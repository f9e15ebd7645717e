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
    /// The public base URL share links are built on (`https://vault.example.com`); when unset,
    /// the request's `Host`.
    pub public_url: Option<String>,
    /// Live event streams (`GET /v1/events`) one user may hold open at once.
    pub events_per_user: usize,
    /// Seconds between keep-alive comments on an idle event stream. A client that went away is
    /// noticed at the next write, so this is also how long its slot may stay taken. At least 1.
    pub events_keepalive_secs: u64,
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
        }
    }
}
