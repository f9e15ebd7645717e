//! Mesh identities: the service name in a certificate's URI SAN
//! `spiffe://coffer.internal/svc/<name>`.

use x509_parser::extensions::GeneralName;

/// The URI prefix and DNS suffix of mesh identities (`coffer_token::identity`): DNS names let
/// clients check the server's name with standard WebPKI path validation as well as by identity.
pub use coffer_token::identity::{DNS_SUFFIX, SPIFFE_PREFIX};

/// A mesh service's name, for example `metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName(String);

impl ServiceName {
    /// Parses a service name: 1-63 characters of `[a-z0-9-]`, not starting or ending with `-`.
    pub fn new(name: &str) -> Option<Self> {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        ok.then(|| ServiceName(name.to_owned()))
    }

    /// Returns the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the SPIFFE URI of this service.
    pub fn spiffe_uri(&self) -> String {
        coffer_token::identity::spiffe_uri(&self.0)
    }

    /// Returns the DNS name this service's certificate carries.
    pub fn dns_name(&self) -> String {
        coffer_token::identity::dns_name(&self.0)
    }
}

impl From<coffer_token::Service> for ServiceName {
    fn from(s: coffer_token::Service) -> Self {
        ServiceName(s.name().to_owned())
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a certificate does not name a mesh service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("certificate cannot be parsed")]
    Unparsable,
    #[error("certificate has no mesh identity uri san")]
    Missing,
    #[error("certificate has more than one mesh identity")]
    Ambiguous,
}

/// Reads the mesh identity from a DER certificate: exactly one URI SAN of the mesh form.
/// The certificate's `not_after`, in unix seconds.
pub fn not_after(cert_der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

pub fn identity_of(cert_der: &[u8]) -> Result<ServiceName, IdentityError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|_| IdentityError::Unparsable)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::Unparsable)?
        .ok_or(IdentityError::Missing)?;
    let mut found = None;
    for name in &san.value.general_names {
        if let GeneralName::URI(uri) = name
            && let Some(svc) = uri.strip_prefix(SPIFFE_PREFIX)
        {
            let svc = ServiceName::new(svc).ok_or(IdentityError::Missing)?;
            if found.replace(svc).is_some() {
                return Err(IdentityError::Ambiguous);
            }
        }
    }
    found.ok_or(IdentityError::Missing)
}
