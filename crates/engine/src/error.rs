use neutrino_model::ApiError;
use thiserror::Error;

/// Failures of the engine itself (as opposed to a request's [`ApiError`]).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("store: {0}")]
    Store(#[from] neutrino_store::StoreError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("the writer thread has stopped")]
    WriterGone,
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        tracing::error!(error = %e, "engine failure");
        ApiError::unavailable("The server could not commit the change; try again.")
    }
}
