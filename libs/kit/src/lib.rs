//! The service kit: what every Coffer service needs above the mesh, written once.
//!
//! - [`audit`]: the audit vocabulary ([`audit::Action`], [`audit::Target`], [`audit::Outcome`])
//!   that producers write and the audit service checks, and [`audit::AuditLog`], the one client
//!   producers append with;
//! - [`media_type`]: the one check of a declared `content_type`;
//! - [`text`]: the one check of a name others will see (hidden and blank characters);
//! - [`seal`]: AES-256-GCM sealing of a column value, bound to the row's org or user id;
//! - [`vocab`]: verdicts, file statuses and scan states, typed once for code, wire and columns;
//! - [`hex`] and [`timestamp`]: the conversions every boundary needs.
//!
//! Errors at the gRPC boundary are `coffer_errors::ServiceError`; background jobs are
//! `coffer_mesh::Jobs`, owned by the service app.

pub mod audit;
pub mod media_type;
/// The one hex helper lives with the chain format (the lowest crate that needs it, and the
/// one the user's client links), re-exported here for the services.
pub use coffer_auditlog::hex;
pub mod seal;
pub mod text;
pub mod timestamp;
pub mod vocab;
