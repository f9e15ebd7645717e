//! The scan service's errors, mapped once to the shared codes and to `tonic::Status`.

use coffer_errors::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ScanServiceError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Absent, or another org's: never told apart.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    TooLarge(String),
    /// Over a budget: try again after this many seconds.
    #[error("{0}")]
    OverBudget(&'static str, u64),
    #[error("a dependency is unavailable")]
    Downstream(#[from] tonic::Status),
    #[error(transparent)]
    Db(coffer_db::DbError),
    #[error("internal error")]
    Internal(String),
}

impl From<coffer_kit::seal::SealError> for ScanServiceError {
    fn from(e: coffer_kit::seal::SealError) -> Self {
        ScanServiceError::Internal(format!("webhook secret: {e}"))
    }
}

impl From<coffer_db::DbError> for ScanServiceError {
    fn from(e: coffer_db::DbError) -> Self {
        match e {
            coffer_db::DbError::NotFound => ScanServiceError::NotFound,
            other => ScanServiceError::Db(other),
        }
    }
}

impl From<sqlx::Error> for ScanServiceError {
    fn from(e: sqlx::Error) -> Self {
        coffer_db::DbError::from(e).into()
    }
}

impl ScanServiceError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ScanServiceError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl coffer_errors::ServiceError for ScanServiceError {
    fn code(&self) -> ErrorCode {
        match self {
            ScanServiceError::Invalid { .. } => ErrorCode::InvalidArgument,
            ScanServiceError::NotFound => ErrorCode::NotFound,
            ScanServiceError::Forbidden(_) => ErrorCode::PermissionDenied,
            ScanServiceError::Conflict(_) => ErrorCode::Conflict,
            ScanServiceError::TooLarge(_) => ErrorCode::TooLarge,
            ScanServiceError::OverBudget(..) => ErrorCode::RateLimited,
            ScanServiceError::Downstream(s) => coffer_errors::downstream_code(s),
            ScanServiceError::Db(e) => e.code(),
            ScanServiceError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            ScanServiceError::Invalid { field, .. } => field,
            _ => "",
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ScanServiceError::OverBudget(_, secs) => Some(*secs),
            _ => None,
        }
    }
}

coffer_errors::impl_into_status!(ScanServiceError);
