//! The claims a token carries and the small closed sets they draw from.

use uuid::Uuid;

/// A Coffer service: one type for its mesh identity (the certificate's SPIFFE URI and DNS name),
/// its token audience (each has its own derived key and its own tag), the callers a policy
/// allows and the peers a service calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Gateway,
    Metadata,
    StorageSigner,
    Audit,
    Scan,
    /// Auth verifies the tokens it minted when the gateway calls it on a user's behalf.
    Auth,
}

impl Service {
    /// Every audience, in wire order.
    pub const ALL: [Service; 6] = [
        Service::Gateway,
        Service::Metadata,
        Service::StorageSigner,
        Service::Audit,
        Service::Scan,
        Service::Auth,
    ];

    /// Returns the audience's stable name, which is also its mesh service name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Metadata => "metadata",
            Service::StorageSigner => "storage-signer",
            Service::Audit => "audit",
            Service::Scan => "scan",
            Service::Auth => "auth",
        }
    }

    pub(crate) fn wire_id(self) -> u8 {
        match self {
            Service::Gateway => 1,
            Service::Metadata => 2,
            Service::StorageSigner => 3,
            Service::Audit => 4,
            Service::Scan => 5,
            Service::Auth => 6,
        }
    }

    pub(crate) fn from_wire_id(id: u8) -> Option<Self> {
        Service::ALL.into_iter().find(|a| a.wire_id() == id)
    }

    /// The URI SAN of the service's certificate.
    pub fn spiffe_uri(self) -> String {
        identity::spiffe_uri(self.name())
    }

    /// The DNS SAN of the service's certificate.
    pub fn dns_name(self) -> String {
        identity::dns_name(self.name())
    }

    /// Parses an audience from its name.
    pub fn from_name(name: &str) -> Option<Self> {
        Service::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A token audience is a service (the tag each service checks is its own).
pub type Audience = Service;

/// The form of mesh identities, in one place: certificates carry the URI SAN
/// `spiffe://coffer.internal/svc/<name>` and the DNS SAN `<name>.coffer.internal`.
pub mod identity {
    /// The URI prefix every mesh identity starts with.
    pub const SPIFFE_PREFIX: &str = "spiffe://coffer.internal/svc/";

    /// The DNS suffix service certificates carry next to their URI SAN.
    pub const DNS_SUFFIX: &str = ".coffer.internal";

    /// The URI SAN of the identity `name`.
    pub fn spiffe_uri(name: &str) -> String {
        format!("{SPIFFE_PREFIX}{name}")
    }

    /// The DNS SAN of the identity `name`.
    pub fn dns_name(name: &str) -> String {
        format!("{name}{DNS_SUFFIX}")
    }
}

/// A user's role in their organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub(crate) fn wire_id(self) -> u8 {
        match self {
            Role::Owner => 1,
            Role::Admin => 2,
            Role::Member => 3,
        }
    }

    pub(crate) fn from_wire_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Role::Owner),
            2 => Some(Role::Admin),
            3 => Some(Role::Member),
            _ => None,
        }
    }

    /// Returns the role's name as API.md spells it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Returns true for owners and admins.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// One permission an API key (or a session) may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    FilesRead,
    FilesWrite,
    AuditRead,
    ScansWrite,
}

impl Scope {
    /// Every scope API.md defines.
    pub const ALL: [Scope; 4] = [
        Scope::FilesRead,
        Scope::FilesWrite,
        Scope::AuditRead,
        Scope::ScansWrite,
    ];

    fn bit(self) -> u16 {
        match self {
            Scope::FilesRead => 1 << 0,
            Scope::FilesWrite => 1 << 1,
            Scope::AuditRead => 1 << 2,
            Scope::ScansWrite => 1 << 3,
        }
    }

    /// Returns the scope's name as API.md spells it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::FilesRead => "files:read",
            Scope::FilesWrite => "files:write",
            Scope::AuditRead => "audit:read",
            Scope::ScansWrite => "scans:write",
        }
    }

    /// Parses a scope from its API.md name.
    pub fn from_name(name: &str) -> Option<Self> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A set of scopes, carried as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u16);

impl Scopes {
    const KNOWN: u16 = 0b1111;

    /// The empty set.
    pub const NONE: Scopes = Scopes(0);

    /// Returns the set of every scope.
    pub fn all() -> Self {
        Scopes(Self::KNOWN)
    }

    /// Returns this set with `scope` added.
    #[must_use]
    pub fn with(self, scope: Scope) -> Self {
        Scopes(self.0 | scope.bit())
    }

    /// Returns true if the set holds `scope`.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Iterates the scopes in the set.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub(crate) fn bits(self) -> u16 {
        self.0
    }

    pub(crate) fn from_bits(bits: u16) -> Option<Self> {
        (bits & !Self::KNOWN == 0).then_some(Scopes(bits))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Scopes::NONE, Scopes::with)
    }
}

/// How the caller behind a token proved who they are. Account and org management needs a
/// [`Credential::Session`]; the audit log names the key of an [`Credential::ApiKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A browser session: a login with the password (and the TOTP code when 2FA is on).
    Session,
    /// An API key, by its id.
    ApiKey(Uuid),
    /// System work with no user behind it (a service token: the nil user, no scopes).
    Service,
}

impl Credential {
    pub(crate) fn wire_id(self) -> u8 {
        match self {
            Credential::Session => 1,
            Credential::ApiKey(_) => 2,
            Credential::Service => 3,
        }
    }

    /// Returns a short, label-safe name: `session`, `api_key` or `service`.
    pub fn kind(self) -> &'static str {
        match self {
            Credential::Session => "session",
            Credential::ApiKey(_) => "api_key",
            Credential::Service => "service",
        }
    }

    /// Returns the API key's id when the credential is one.
    pub fn api_key_id(self) -> Option<Uuid> {
        match self {
            Credential::ApiKey(id) => Some(id),
            _ => None,
        }
    }
}

/// Who a token speaks for: everything of the claims except what the minter sets itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    pub scopes: Scopes,
    /// A service credential goes with the nil user, and only with it.
    pub credential: Credential,
    /// The edge request id; at most 64 characters of `[A-Za-z0-9._-]`.
    pub request_id: String,
}

/// The verified claims of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub version: u8,
    pub key_id: String,
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    pub scopes: Scopes,
    pub credential: Credential,
    /// Seconds since the Unix epoch.
    pub issued_at: i64,
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
    pub request_id: String,
}
