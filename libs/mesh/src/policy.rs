//! Per-RPC access rules: which mesh services may call an RPC, and whether it needs a user token.
//!
//! A service declares a rule for every RPC it serves; [`Policy::check_covers`] refuses to start a
//! server whose services have an RPC without one, so a new RPC cannot ship open by accident.
//! Unknown paths are refused (fail closed). gRPC health and reflection are open to any mesh
//! member without a token.

use std::collections::HashMap;

use prost::Message as _;

use coffer_token::Service;

use crate::identity::ServiceName;

/// Whether an RPC needs a user token, and which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// A verified token of any credential: a session, an API key, or (where the handler allows
    /// it) a service token.
    Required,
    /// A verified token minted for a browser session: account and org management. A token from
    /// an API key or a service is refused with `PERMISSION_DENIED` (`session_required`) before the
    /// handler runs, so a leaked key can never manage the account that owns it.
    Session,
    /// For RPCs that run before a user is known (auth's `Authenticate`) or act for a service.
    NotRequired,
    /// Verified when present (an invalid one is refused, as for `Required`); a call without one
    /// acts for the calling service (audit's `Append` of system events).
    Optional,
}

/// The rule for one RPC.
#[derive(Debug, Clone)]
pub struct Rule {
    callers: Vec<ServiceName>,
    token: Token,
}

impl Rule {
    /// Returns whether the token is required.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Returns true if `peer` may call.
    pub fn allows(&self, peer: &ServiceName) -> bool {
        self.callers.iter().any(|c| c == peer)
    }
}

const OPEN_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The access rules of one server.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: HashMap<String, Rule>,
}

/// What a policy says about a path.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Health and reflection: any mesh member, no token.
    Open,
    Rule(&'a Rule),
    /// No rule: refused.
    Unknown,
}

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("rpc {0} has no access rule")]
    Uncovered(String),
    #[error("service {0} is not in the descriptor set")]
    UnknownService(String),
    #[error("invalid caller name {0:?}")]
    BadCaller(String),
}

impl Policy {
    /// Starts an empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the rule for `/{service}/{method}`. Callers are mesh service names.
    pub fn rpc(
        mut self,
        service: &str,
        method: &str,
        callers: &[Service],
        token: Token,
    ) -> Result<Self, PolicyError> {
        let callers = callers.iter().map(|c| ServiceName::from(*c)).collect();
        self.rules
            .insert(format!("/{service}/{method}"), Rule { callers, token });
        Ok(self)
    }

    /// Every service some rule lets call (health and reflection aside): the mesh edges into
    /// this server, which the network policies must allow and nothing more.
    pub fn callers(&self) -> std::collections::BTreeSet<&str> {
        self.rules
            .values()
            .flat_map(|r| r.callers.iter().map(ServiceName::as_str))
            .collect()
    }

    /// The request paths that have a rule.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// Looks up the rule for a request path.
    pub fn decide(&self, path: &str) -> Decision<'_> {
        if OPEN_PREFIXES.iter().any(|p| path.starts_with(p)) {
            return Decision::Open;
        }
        match self.rules.get(path) {
            Some(rule) => Decision::Rule(rule),
            None => Decision::Unknown,
        }
    }

    /// Checks that every method of `service` (a full name such as `coffer.v1.Auth`), found in
    /// one of the encoded descriptor sets, has a rule.
    pub fn check_covers(
        &self,
        descriptor_sets: &[&[u8]],
        service: &str,
    ) -> Result<(), PolicyError> {
        let sets = descriptor_sets
            .iter()
            .map(|set| prost_types::FileDescriptorSet::decode(*set))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| PolicyError::UnknownService(service.to_owned()))?;
        let svc = sets
            .iter()
            .flat_map(|fds| fds.file.iter())
            .flat_map(|f| {
                f.service
                    .iter()
                    .map(move |s| (format!("{}.{}", f.package(), s.name()), s))
            })
            .find(|(name, _)| name == service)
            .map(|(_, s)| s)
            .ok_or_else(|| PolicyError::UnknownService(service.to_owned()))?;
        for method in &svc.method {
            let path = format!("/{service}/{}", method.name());
            if !self.rules.contains_key(&path) {
                return Err(PolicyError::Uncovered(path));
            }
        }
        Ok(())
    }
}
