//! The public gateway (API.md): the only service reachable from outside. It authenticates every
//! request through auth (session cookie or API key), forwards the user token auth minted on each
//! downstream call, and answers in API.md's JSON shapes. It never logs a body, a cookie, a key or a
//! token.

mod app;
mod audit;
mod body;
pub mod config;
mod cookies;
mod error;
mod events;
mod files;
mod routes;
mod scans;
mod server;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::App;
pub use config::GatewayConfig;
