//! The storage-signer's errors, mapped once to the shared codes and to `tonic::Status`.

use coffer_errors::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The key's org segment is not the caller's org.
    #[error("the object key does not belong to the caller's org")]
    ForeignKey,
    /// Work only system tasks do (the org purge), asked with a user's token.
    #[error("only a service token may do this")]
    ServiceOnly,
    /// The object is not the one asked for (its ETag or version changed).
    #[error("the stored object changed since it was checked")]
    Changed,
    /// The store refused to complete a multipart upload, for the reason given.
    #[error("{0}")]
    Refused(&'static str),
    #[error("the object store is unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl SignerError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        SignerError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl coffer_errors::ServiceError for SignerError {
    fn code(&self) -> ErrorCode {
        match self {
            SignerError::Invalid { .. } => ErrorCode::InvalidArgument,
            SignerError::ForeignKey | SignerError::ServiceOnly => ErrorCode::PermissionDenied,
            SignerError::Changed | SignerError::Refused(_) => ErrorCode::Conflict,
            SignerError::Unavailable(_) => ErrorCode::Unavailable,
            SignerError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            SignerError::Invalid { field, .. } => field,
            _ => "",
        }
    }

    fn public_when_failing(&self) -> bool {
        // Both texts are fixed ("internal error", "the object store is unavailable").
        true
    }
}

coffer_errors::impl_into_status!(SignerError);
