//! The audit service's errors, mapped once to the shared codes and to `tonic::Status`.

use coffer_errors::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Db(#[from] coffer_db::DbError),
    /// The batch this event was in could not be appended (the cause is in the log).
    #[error("the audit log could not store the event")]
    Batch(String),
    #[error("internal error")]
    Internal(String),
}

impl From<sqlx::Error> for AuditError {
    fn from(e: sqlx::Error) -> Self {
        AuditError::Db(e.into())
    }
}

impl AuditError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AuditError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl coffer_errors::ServiceError for AuditError {
    fn code(&self) -> ErrorCode {
        match self {
            AuditError::Invalid { .. } => ErrorCode::InvalidArgument,
            AuditError::Forbidden(_) => ErrorCode::PermissionDenied,
            AuditError::Db(e) => e.code(),
            AuditError::Batch(_) => ErrorCode::Unavailable,
            AuditError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            AuditError::Invalid { field, .. } => field,
            _ => "",
        }
    }

    fn public_when_failing(&self) -> bool {
        matches!(self, AuditError::Batch(_))
    }
}

coffer_errors::impl_into_status!(AuditError);
