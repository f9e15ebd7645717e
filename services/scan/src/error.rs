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

    fn code(&self) -> ErrorCode {
        match self {
            ScanServiceError::Invalid { .. } => ErrorCode::InvalidArgument,
            ScanServiceError::NotFound => ErrorCode::NotFound,
            ScanServiceError::Forbidden(_) => ErrorCode::PermissionDenied,
            ScanServiceError::Conflict(_) => ErrorCode::Conflict,
            ScanServiceError::TooLarge(_) => ErrorCode::TooLarge,
            ScanServiceError::OverBudget(..) => ErrorCode::RateLimited,
            ScanServiceError::Downstream(s) => match coffer_errors::from_status(s).0 {
                ErrorCode::Unavailable | ErrorCode::DeadlineExceeded => ErrorCode::Unavailable,
                _ => ErrorCode::Internal,
            },
            ScanServiceError::Db(e) => e.code(),
        }
    }
}

impl From<ScanServiceError> for tonic::Status {
    fn from(e: ScanServiceError) -> Self {
        let code = e.code();
        if let ScanServiceError::OverBudget(message, secs) = e {
            return coffer_errors::rate_limited(message, u32::try_from(secs).unwrap_or(u32::MAX));
        }
        let field = match &e {
            ScanServiceError::Invalid { field, .. } => *field,
            _ => "",
        };
        let message = match code {
            ErrorCode::Internal => {
                tracing::error!(error = ?e, "scan request failed");
                "internal error".to_owned()
            }
            ErrorCode::Unavailable => {
                tracing::warn!(error = ?e, "scan request failed on a dependency");
                "a dependency is unavailable; try again".to_owned()
            }
            _ => e.to_string(),
        };
        coffer_errors::status(code, message, field)
    }
}
