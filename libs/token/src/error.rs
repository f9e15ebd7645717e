use std::path::PathBuf;

/// Why a token was refused. Every variant maps to `UNAUTHENTICATED` at a service boundary; the
/// variants exist so that refusals can be counted by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token version is not supported")]
    UnsupportedVersion,
    #[error("token key id is unknown")]
    UnknownKey,
    #[error("token carries no tag for this audience")]
    WrongAudience,
    #[error("token tag does not verify")]
    BadTag,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token lifetime exceeds the allowed maximum")]
    LifetimeTooLong,
}

impl TokenError {
    /// Returns a short, stable, label-safe name for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnsupportedVersion => "unsupported_version",
            TokenError::UnknownKey => "unknown_key",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::BadTag => "bad_tag",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::LifetimeTooLong => "lifetime_too_long",
        }
    }
}

/// Why a key ring file could not be used. Messages name the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error("cannot read key ring {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key ring {path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}
