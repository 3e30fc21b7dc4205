//! A minimal HTTP/1 client for Keystone: one request, a bounded body, a deadline.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Largest Keystone response read. Token bodies without a catalog are a few
/// KiB; anything near this is not a Keystone answer.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why Keystone could not give an answer (as opposed to answering "invalid").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeystoneError {
    #[error("cannot reach Keystone: {0}")]
    Unreachable(String),
    #[error("Keystone did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Keystone rejected Neutrino's service credentials (HTTP {0})")]
    ServiceAuthRejected(u16),
    #[error("Keystone answered with unexpected HTTP status {0}")]
    UnexpectedStatus(u16),
    #[error("Keystone sent an unusable response: {0}")]
    BadResponse(String),
    #[error("cannot build a request to Keystone: {0}")]
    Request(String),
    /// A recent attempt failed; not retried yet so requests fail fast.
    #[error("Keystone failed recently ({0}); not retrying yet")]
    Backoff(String),
}

/// A response read to the end.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

pub(crate) struct KeystoneClient {
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl KeystoneClient {
    pub(crate) fn new(timeout: Duration) -> KeystoneClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        KeystoneClient { http, timeout }
    }

    /// Sends `request` and reads the whole response within the timeout.
    pub(crate) async fn send(&self, request: Request<Full<Bytes>>) -> Result<Reply, KeystoneError> {
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| KeystoneError::Unreachable(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| KeystoneError::BadResponse(format!("reading the body: {e}")))?
                .to_bytes();
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| KeystoneError::Timeout(self.timeout))?
    }
}

/// The error with its causes ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
