//! Why a model file is refused or does not fit together.

use crate::MODEL_SHA256;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("reading the model file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the model file hashes to {got}, not to the recorded {MODEL_SHA256}: refusing it")]
    Hash { got: String },
    #[error("the model file is not usable: {0}")]
    Format(String),
    #[error("the model's shapes do not fit: {0}")]
    Shape(&'static str),
}
