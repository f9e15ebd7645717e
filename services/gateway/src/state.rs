//! What every handler shares: the clients of the services behind the gateway, the cookie
//! signer, the public URL and the open event streams.

use std::sync::Arc;

use axum::extract::State;
use coffer_mesh::MeshChannel;
use coffer_proto::v1::auth_client::AuthClient;

use crate::cookies::CookieSigner;

/// What every handler shares.
pub struct Gateway {
    pub auth: AuthClient<MeshChannel>,
    pub metadata: coffer_proto::v1::metadata_client::MetadataClient<MeshChannel>,
    pub audit: coffer_proto::v1::audit_client::AuditClient<MeshChannel>,
    pub scan: coffer_proto::v1::scan_client::ScanClient<MeshChannel>,
    pub cookies: CookieSigner,
    /// The base of share links (`https://vault.example.com`, no trailing slash).
    pub public_url: String,
    /// Open event streams per user, capped at `events_per_user`.
    pub streams: crate::streams::Streams,
    /// The embedded web app.
    pub web: std::sync::Arc<crate::web::Web>,
}

pub type Shared = State<Arc<Gateway>>;
