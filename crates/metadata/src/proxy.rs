//! The `proxy` backend: the request goes on to Nova's metadata API with the
//! headers Neutron's metadata agent sends (`X-Instance-ID`, `X-Tenant-ID`,
//! `X-Forwarded-For`, `X-Instance-ID-Signature`), and Nova's answer comes
//! back as it is. Nova unreachable is a 503 to the instance, a bad answer a
//! 502; both are logged and counted, and nothing else waits on them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::facts::Instance;
use crate::{Answer, Request, sign_instance_id};

/// Where Nova is and the secret both sides share.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `http://host:8775`, no trailing path.
    pub nova_url: String,
    pub shared_secret: String,
    pub timeout: Duration,
}

pub struct NovaProxy {
    cfg: ProxyConfig,
    http: Client<HttpConnector, Full<Bytes>>,
    /// Requests Nova could not be reached for / answered unusably.
    pub unreachable: AtomicU64,
    pub bad_answers: AtomicU64,
}

impl NovaProxy {
    pub fn new(cfg: ProxyConfig) -> NovaProxy {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        NovaProxy {
            cfg: ProxyConfig {
                nova_url: cfg.nova_url.trim_end_matches('/').to_string(),
                ..cfg
            },
            http,
            unreachable: AtomicU64::new(0),
            bad_answers: AtomicU64::new(0),
        }
    }

    pub async fn forward(&self, i: &Instance, req: &Request) -> Answer {
        let uri = match &req.query {
            Some(q) => format!("{}{}?{q}", self.cfg.nova_url, req.path),
            None => format!("{}{}", self.cfg.nova_url, req.path),
        };
        let built = hyper::Request::builder()
            .method(req.method.as_str())
            .uri(&uri)
            .header("x-forwarded-for", i.address.to_string())
            .header("x-instance-id", &i.device_id)
            .header("x-tenant-id", &i.project_id)
            .header(
                "x-instance-id-signature",
                sign_instance_id(&self.cfg.shared_secret, &i.device_id),
            )
            .body(Full::new(req.body.clone()));
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%uri, error = %e, "metadata: cannot build the request to Nova");
                return Answer::text(400, "400 Bad Request\n");
            }
        };
        let exchange = async {
            let resp = self
                .http
                .request(built)
                .await
                .map_err(Failure::Unreachable)?;
            let status = resp.status().as_u16();
            let content_type = match resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
            {
                Some(ct) if ct.starts_with("application/json") => "application/json",
                Some(ct) if ct.starts_with("application/octet-stream") => {
                    "application/octet-stream"
                }
                _ => "text/plain; charset=UTF-8",
            };
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Failure::Bad(e.to_string()))?
                .to_bytes();
            Ok::<_, Failure>(Answer {
                status,
                content_type,
                body,
            })
        };
        let result = match tokio::time::timeout(self.cfg.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Bad("no answer in time".into())),
        };
        match result {
            // What Neutron passes through; anything else is not an answer.
            Ok(a)
                if matches!(
                    a.status,
                    200..=299 | 400 | 403 | 404 | 409 | 500 | 502 | 503 | 504
                ) =>
            {
                if a.status == 403 {
                    tracing::warn!(instance = %i.device_id, "metadata: Nova refused the signature (do the shared secrets match?)");
                }
                a
            }
            Ok(a) => {
                self.bad_answers.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(status = a.status, %uri, "metadata: unexpected status from Nova");
                Answer::text(
                    502,
                    "502 Bad Gateway\n\nThe metadata server answered unexpectedly.\n",
                )
            }
            Err(Failure::Unreachable(e)) => {
                self.unreachable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%uri, error = %e, "metadata: Nova unreachable");
                Answer::text(
                    503,
                    "503 Service Unavailable\n\nThe remote metadata server is temporarily unavailable. Please try again later.\n",
                )
            }
            Err(Failure::Bad(e)) => {
                self.bad_answers.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%uri, error = %e, "metadata: no usable answer from Nova");
                Answer::text(
                    502,
                    "502 Bad Gateway\n\nThe metadata server did not answer.\n",
                )
            }
        }
    }
}

enum Failure {
    Unreachable(hyper_util::client::legacy::Error),
    Bad(String),
}
