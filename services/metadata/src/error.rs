//! The metadata service's errors, mapped once to the shared codes and to `tonic::Status`.
//! Messages never carry a file or folder name.

use coffer_errors::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
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
    #[error("a file or folder with this name already exists here")]
    NameTaken,
    #[error("{0}")]
    Conflict(&'static str),
    /// The uploaded object is not acceptable (the message names headers, never values).
    #[error("{0}")]
    BadObject(String),
    #[error("the file is not ready: it is still being uploaded or scanned")]
    NotReady,
    #[error("the file is quarantined")]
    Quarantined,
    #[error(
        "the org's storage quota would be exceeded: {used} of {limit} bytes used, {asked} more asked"
    )]
    QuotaExceeded { used: i64, limit: i64, asked: u64 },
    #[error("{0}")]
    TooLarge(String),
    /// Too many wrong share passwords: try again after this many seconds.
    #[error("too many wrong passwords for this share; try again later")]
    Locked(u64),
    #[error("a dependency is unavailable")]
    Downstream(#[from] tonic::Status),
    /// The audit log did not take the action's event: the action is not done.
    #[error("the audit log is unavailable; nothing was done")]
    AuditUnavailable(tonic::Status),
    #[error(transparent)]
    Db(coffer_db::DbError),
    /// A verdict on a file whose upload has not completed: the complete that queued the scan
    /// failed after queueing it (and may be retried), or has not committed yet. Not a conflict:
    /// the scan offers the verdict again later.
    #[error("the file's upload is not complete yet; try again")]
    UploadIncomplete,
    /// Too many password hashes are waiting for a core (`coffer_mesh::cpu`): try again soon.
    #[error("the service is busy; try again")]
    Busy,
    #[error("internal error")]
    Internal(String),
}

impl From<coffer_mesh::cpu::CpuError> for MetadataError {
    fn from(e: coffer_mesh::cpu::CpuError) -> Self {
        match e {
            coffer_mesh::cpu::CpuError::Busy => MetadataError::Busy,
            coffer_mesh::cpu::CpuError::Failed => MetadataError::Internal(e.to_string()),
        }
    }
}

impl From<coffer_db::DbError> for MetadataError {
    fn from(e: coffer_db::DbError) -> Self {
        match e {
            coffer_db::DbError::NotFound => MetadataError::NotFound,
            coffer_db::DbError::AlreadyExists => MetadataError::NameTaken,
            other => MetadataError::Db(other),
        }
    }
}

impl From<sqlx::Error> for MetadataError {
    fn from(e: sqlx::Error) -> Self {
        coffer_db::DbError::from(e).into()
    }
}

impl MetadataError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        MetadataError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl coffer_errors::ServiceError for MetadataError {
    fn code(&self) -> ErrorCode {
        match self {
            MetadataError::Invalid { .. } => ErrorCode::InvalidArgument,
            MetadataError::NotFound => ErrorCode::NotFound,
            MetadataError::Forbidden(_) => ErrorCode::PermissionDenied,
            MetadataError::NameTaken => ErrorCode::AlreadyExists,
            MetadataError::Conflict(_) | MetadataError::BadObject(_) => ErrorCode::Conflict,
            MetadataError::NotReady => ErrorCode::NotReady,
            MetadataError::Quarantined => ErrorCode::Quarantined,
            MetadataError::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            MetadataError::TooLarge(_) => ErrorCode::TooLarge,
            MetadataError::Locked(_) => ErrorCode::RateLimited,
            MetadataError::Downstream(s) => coffer_errors::downstream_code(s),
            MetadataError::AuditUnavailable(_)
            | MetadataError::Busy
            | MetadataError::UploadIncomplete => ErrorCode::Unavailable,
            MetadataError::Db(e) => e.code(),
            MetadataError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            MetadataError::Invalid { field, .. } => field,
            _ => "",
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            MetadataError::Locked(secs) => Some(*secs),
            MetadataError::Busy | MetadataError::UploadIncomplete => {
                Some(coffer_mesh::admission::RETRY_AFTER_SECS.into())
            }
            _ => None,
        }
    }

    fn public_when_failing(&self) -> bool {
        matches!(
            self,
            MetadataError::AuditUnavailable(_)
                | MetadataError::Busy
                | MetadataError::UploadIncomplete
        )
    }
}

coffer_errors::impl_into_status!(MetadataError);
