//! Building responses: JSON bodies, NeutronError bodies, and field selection.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use neutrino_model::ApiError;
use serde_json::Value;

pub fn json_bytes(status: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// A JSON body produced chunk by chunk (large lists).
pub fn json_stream<S>(status: u16, stream: S) -> Response
where
    S: futures_core::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static,
{
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

pub fn json(status: u16, v: &Value) -> Response {
    json_bytes(status, serde_json::to_vec(v).unwrap_or_default())
}

pub fn no_content() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default()
}

pub fn status_only(status: u16) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .body(Body::empty())
        .unwrap_or_default()
}

pub fn error(e: &ApiError) -> Response {
    if e.kind.status() >= 500 {
        tracing::error!(error = %e, "request failed");
    } else {
        tracing::debug!(error = %e, "request refused");
    }
    json(e.kind.status(), &e.body())
}

/// `{"<key>": <item>}`, the item written by `write`.
pub fn single(status: u16, key: &str, write: impl FnOnce(&mut Vec<u8>)) -> Response {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    write(&mut out);
    out.push(b'}');
    json_bytes(status, out)
}
