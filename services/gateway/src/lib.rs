//! The public gateway (API.md): the only service reachable from outside. It authenticates every
//! request through auth (session cookie or API key), forwards the user token auth minted on each
//! downstream call, and answers in API.md's JSON shapes. It never logs a body, a cookie, a key or a
//! token.

mod account;
pub mod api;
mod app;
mod audit;
mod authn;
mod body;
mod client_addr;
pub mod config;
mod cookies;
mod edge;
mod error;
mod events;
mod files;
#[doc(hidden)]
pub mod fuzzing;
mod metrics;
pub mod openapi;
mod scans;
mod server;
mod state;
mod streams;
#[cfg(feature = "testing")]
pub mod testing;
mod web;
mod wire;

pub use app::{App, PEERS, SECRETS};
pub use config::GatewayConfig;
