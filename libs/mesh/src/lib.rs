//! Everything a service needs to be a member of the Coffer mesh (DESIGN.md §2–§3):
//!
//! - [`tls`]: rustls configs — TLS 1.3 only, client certificates required, one CA, identities from
//!   the URI SAN `spiffe://coffer.internal/svc/<name>`, certificates reloaded when files change;
//! - [`policy`] and [`layers`]: per-RPC caller allow-lists and user-token verification as tower
//!   layers, request ids, trace context, RED metrics;
//! - [`server`]: the accept loop, health, reflection, deadlines and graceful shutdown;
//! - [`admission`]: bounded in-flight work and a bounded, deadline-limited queue; the rest is
//!   refused with a time to retry;
//! - [`cpu`]: CPU-heavy work (password hashing) bounded to one task per core, with a bounded queue;
//! - [`client`]: channels to other members that forward the call's token, request id, deadline
//!   and trace context.
//!
//! The mesh never logs a token, a certificate key or a request body.

pub mod admission;
pub mod app;
pub mod client;
pub mod context;
pub mod cpu;
#[cfg(feature = "testing")]
pub mod echo;
pub mod identity;
pub mod jobs;
pub mod layers;
pub mod policy;
pub mod server;
pub mod tls;
pub mod token;
mod watch;

pub use admission::{Admission, Shed};
pub use app::ServiceApp;
pub use client::{ClientError, ContextInterceptor, MeshChannel, MeshClient, Peers};
pub use context::{CallContext, Caller, PeerInfo, RequestId, caller, peer};
pub use identity::{ServiceName, identity_of};
pub use jobs::{Jobs, Stop};
pub use policy::{Policy, PolicyError, Token};
pub use server::{BoundServer, MeshServer, RunningServer, ServeError, shutdown_signal};
pub use tls::{CertStore, ServingCert, TlsError, TlsFiles};
pub use token::TokenVerifier;
