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

    fn code(&self) -> ErrorCode {
        match self {
            AuditError::Invalid { .. } => ErrorCode::InvalidArgument,
            AuditError::Forbidden(_) => ErrorCode::PermissionDenied,
            AuditError::Db(e) => e.code(),
            AuditError::Batch(_) => ErrorCode::Unavailable,
            AuditError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<AuditError> for tonic::Status {
    fn from(e: AuditError) -> Self {
        let code = e.code();
        let field = match &e {
            AuditError::Invalid { field, .. } => *field,
            _ => "",
        };
        let message = match code {
            ErrorCode::Internal | ErrorCode::Unavailable => {
                tracing::error!(error = ?e, "audit request failed");
                match e {
                    AuditError::Batch(_) => e.to_string(),
                    _ => "internal error".to_owned(),
                }
            }
            _ => e.to_string(),
        };
        coffer_errors::status(code, message, field)
    }
}
