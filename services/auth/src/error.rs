//! The auth service's errors, mapped once to the shared codes and to `tonic::Status`.

use coffer_errors::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Wrong email or password, or an unknown, expired or revoked credential: never told apart.
    #[error("invalid credentials")]
    BadCredentials,
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("a TOTP code is required")]
    TotpRequired,
    /// Too many failed logins for the account or the address: try again after this many
    /// seconds.
    #[error("too many failed attempts; try again later")]
    Throttled(u64),
    #[error(transparent)]
    Db(#[from] coffer_db::DbError),
    /// The audit log did not take the action's event: the action is not done.
    #[error("the audit log is unavailable; nothing was done")]
    AuditUnavailable,
    /// Too many password hashes are waiting for a core (`coffer_mesh::cpu`): try again soon.
    #[error("the service is busy; try again")]
    Busy,
    #[error("internal error")]
    Internal(String),
}

impl From<coffer_mesh::cpu::CpuError> for AuthError {
    fn from(e: coffer_mesh::cpu::CpuError) -> Self {
        match e {
            coffer_mesh::cpu::CpuError::Busy => AuthError::Busy,
            coffer_mesh::cpu::CpuError::Failed => AuthError::Internal(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Db(e.into())
    }
}

impl From<coffer_kit::seal::SealError> for AuthError {
    fn from(e: coffer_kit::seal::SealError) -> Self {
        AuthError::Internal(format!("totp seed: {e}"))
    }
}

impl AuthError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AuthError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl coffer_errors::ServiceError for AuthError {
    fn code(&self) -> ErrorCode {
        match self {
            AuthError::Invalid { .. } => ErrorCode::InvalidArgument,
            AuthError::BadCredentials => ErrorCode::Unauthenticated,
            AuthError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            AuthError::NotFound => ErrorCode::NotFound,
            AuthError::Forbidden(_) => ErrorCode::PermissionDenied,
            AuthError::Conflict(_) => ErrorCode::Conflict,
            AuthError::TotpRequired => ErrorCode::TotpRequired,
            AuthError::Throttled(_) => ErrorCode::RateLimited,
            AuthError::Db(e) => e.code(),
            AuthError::AuditUnavailable | AuthError::Busy => ErrorCode::Unavailable,
            AuthError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            AuthError::Invalid { field, .. } => field,
            _ => "",
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AuthError::Throttled(secs) => Some(*secs),
            AuthError::Busy => Some(coffer_mesh::admission::RETRY_AFTER_SECS.into()),
            _ => None,
        }
    }

    fn public_when_failing(&self) -> bool {
        matches!(self, AuthError::AuditUnavailable | AuthError::Busy)
    }
}

coffer_errors::impl_into_status!(AuthError);
