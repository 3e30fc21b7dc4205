//! Errors of the Keystone API in Keystone's own shape,
//! `{"error": {"code", "title", "message"}}`, which keystoneauth1 and
//! gophercloud parse (the NeutronError shape is for the Neutron API only).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The message Keystone uses for every authentication failure; it says
/// nothing about whether the user exists.
pub(crate) const AUTH_REQUIRED: &str = "The request you have made requires authentication.";

/// One failed Keystone API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeystoneFault {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl KeystoneFault {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> KeystoneFault {
        KeystoneFault {
            status,
            message: message.into(),
        }
    }

    /// Wrong credentials, bad or missing token.
    pub(crate) fn unauthorized() -> KeystoneFault {
        KeystoneFault::new(StatusCode::UNAUTHORIZED, AUTH_REQUIRED)
    }

    pub(crate) fn bad_request(detail: impl std::fmt::Display) -> KeystoneFault {
        KeystoneFault::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{detail} The server could not comply with the request since it is either \
                 malformed or otherwise incorrect. The client is assumed to be in error."
            ),
        )
    }

    /// A policy refusal, naming the Keystone policy action like Keystone does.
    pub(crate) fn forbidden(action: &str) -> KeystoneFault {
        KeystoneFault::new(
            StatusCode::FORBIDDEN,
            format!("You are not authorized to perform the requested action: {action}."),
        )
    }

    pub(crate) fn not_found(kind: &str, id: &str) -> KeystoneFault {
        KeystoneFault::new(
            StatusCode::NOT_FOUND,
            format!("Could not find {kind}: {id}."),
        )
    }

    fn title(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "Bad Request",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "Not Found",
            _ => "Internal Server Error",
        }
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "code": self.status.as_u16(),
            "title": self.title(),
            "message": self.message,
        }})
    }
}

impl IntoResponse for KeystoneFault {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}
