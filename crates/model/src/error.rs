//! The error vocabulary of the API. Every failure a client can see is an
//! [`ApiError`]: an HTTP status, the NeutronError `type` that clients key on
//! (terraform retries on some of them) and a human message.

use std::fmt;

/// The HTTP class of an error, mapped to a status code by [`ErrorKind::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    Internal,
    Unavailable,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Conflict => 409,
            ErrorKind::PreconditionFailed => 412,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }
}

/// One API error: serialised as `{"NeutronError": {"type", "message", "detail": ""}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// The NeutronError type, e.g. `IpAddressAlreadyAllocated`.
    pub error_type: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.kind.status(),
            self.error_type,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(kind: ErrorKind, error_type: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            error_type: error_type.to_string(),
            message: message.into(),
        }
    }

    /// A generic 400 (`HTTPBadRequest`), as webob raises for malformed requests.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::BadRequest, "HTTPBadRequest", message)
    }

    /// A 400 `InvalidInput`: "Invalid input for operation: …".
    pub fn invalid_input(message: impl fmt::Display) -> ApiError {
        ApiError::new(
            ErrorKind::BadRequest,
            "InvalidInput",
            format!("Invalid input for operation: {message}."),
        )
    }

    /// An attribute that fails a neutron-lib validator: the API layer names
    /// it and raises webob's `HTTPBadRequest` (a converter's failure is
    /// [`ApiError::invalid_input`]).
    pub fn invalid_attr(attr: &str, reason: impl fmt::Display) -> ApiError {
        ApiError::new(
            ErrorKind::BadRequest,
            "HTTPBadRequest",
            format!("Invalid input for {attr}. Reason: {reason}."),
        )
    }

    pub fn not_found(error_type: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, error_type, message)
    }

    /// The 404 returned for what a caller may not see (never a 403 that leaks existence).
    pub fn hidden() -> ApiError {
        ApiError::new(
            ErrorKind::NotFound,
            "HTTPNotFound",
            "The resource could not be found.",
        )
    }

    pub fn conflict(error_type: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, error_type, message)
    }

    pub fn forbidden(rule: &str) -> ApiError {
        ApiError::new(
            ErrorKind::Forbidden,
            "PolicyNotAuthorized",
            format!("({rule}) is disallowed by policy"),
        )
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            ErrorKind::Unauthorized,
            "HTTPUnauthorized",
            "The request you have made requires authentication.",
        )
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            ErrorKind::Internal,
            "HTTPInternalServerError",
            "Request Failed: internal server error while processing your request.",
        )
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unavailable, "ServiceUnavailable", message)
    }

    /// The same error under another NeutronError type.
    pub fn with_type(mut self, error_type: &str) -> ApiError {
        self.error_type = error_type.to_string();
        self
    }

    /// The JSON body clients parse.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"NeutronError": {
            "type": self.error_type, "message": self.message, "detail": ""}})
    }
}
