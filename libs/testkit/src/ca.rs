//! A development CA. Production certificates come from the cluster's issuer (cert-manager); the
//! shapes are the same: URI SAN `spiffe://coffer.internal/svc/<name>`, DNS SAN
//! `<name>.coffer.internal`, both server and client auth.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// A certificate and its private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What to put in a certificate; the defaults make a valid mesh certificate for `service`.
#[derive(Debug, Clone)]
pub struct CertSpec {
    pub common_name: String,
    pub uris: Vec<String>,
    pub dns: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl CertSpec {
    /// A valid mesh certificate for `service`, good for 30 days.
    pub fn service(service: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        CertSpec {
            common_name: service.to_owned(),
            uris: vec![coffer_token::identity::spiffe_uri(service)],
            dns: vec![coffer_token::identity::dns_name(service)],
            ips: vec![],
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(30),
        }
    }

    /// The same certificate, expired an hour ago.
    #[must_use]
    pub fn expired(mut self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now - Duration::days(2);
        self.not_after = now - Duration::hours(1);
        self
    }
}

/// A development certificate authority.
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

impl DevCa {
    /// Creates a CA with a fresh ECDSA P-256 key, valid for a year.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "Coffer development");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(365);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(DevCa { issuer })
    }

    /// Returns the CA certificate in PEM.
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues a certificate from `spec`.
    pub fn issue_spec(&self, spec: &CertSpec) -> anyhow::Result<IssuedCert> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.as_str());
        params.distinguished_name = dn;
        let mut sans = Vec::new();
        for uri in &spec.uris {
            sans.push(SanType::URI(uri.as_str().try_into()?));
        }
        for dns in &spec.dns {
            sans.push(SanType::DnsName(dns.as_str().try_into()?));
        }
        for ip in &spec.ips {
            sans.push(SanType::IpAddress(*ip));
        }
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a valid mesh certificate for `service`.
    pub fn issue(&self, service: &str) -> anyhow::Result<IssuedCert> {
        self.issue_spec(&CertSpec::service(service))
    }

    /// Writes `tls.crt`, `tls.key` (mode 0600) and `ca.crt` for `cert` into `dir`.
    pub fn write_dir(&self, dir: &Path, cert: &IssuedCert) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        write_atomic(&dir.join("ca.crt"), self.ca_pem().as_bytes(), 0o644)?;
        write_atomic(&dir.join("tls.crt"), cert.cert_pem.as_bytes(), 0o644)?;
        write_atomic(&dir.join("tls.key"), cert.key_pem.as_bytes(), 0o600)?;
        Ok(dir.to_owned())
    }

    /// Issues a certificate for `service` and writes it into `dir`.
    pub fn write_service_dir(&self, dir: &Path, service: &str) -> anyhow::Result<PathBuf> {
        let cert = self.issue(service)?;
        self.write_dir(dir, &cert)
    }
}

/// Writes a file by renaming a complete temporary file over it, as a secret mount would.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path)
}
