//! The agent's side of `/agent/v1`: JSON over HTTP/1 with the shared secret.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use neutrino_agent_rpc::{
    AgentReport, BindRequest, DhcpPortRequest, FeedReply, FeedRequest, HostGatewayRequest, PREFIX,
    PortInfo, PortStatusReport, ReportReply,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unusable answer from the server: {0}")]
    Decode(String),
}

#[derive(Clone)]
pub struct ServerClient {
    http: Client<HttpConnector, Full<Bytes>>,
    base: String,
    auth: String,
}

impl ServerClient {
    pub fn new(server_url: &str, secret: &str) -> ServerClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        ServerClient {
            http,
            base: server_url.trim_end_matches('/').to_string(),
            auth: format!("Bearer {secret}"),
        }
    }

    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<Option<R>, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{PREFIX}{path}", self.base))
            .header("content-type", "application/json")
            .header("authorization", &self.auth)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| ClientError::Unreachable(chain(&e)))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, ClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout)??;
        if status == 204 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(ClientError::Status {
                status,
                body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        self.call(Method::POST, path, body, Duration::from_secs(30))
            .await?
            .ok_or_else(|| ClientError::Decode("empty answer".into()))
    }

    pub async fn report(&self, r: &AgentReport) -> Result<ReportReply, ClientError> {
        self.post("/report", r).await
    }

    /// Long poll: the server holds it up to `req.wait_ms`.
    pub async fn feed(&self, req: &FeedRequest) -> Result<FeedReply, ClientError> {
        let limit = Duration::from_millis(req.wait_ms) + Duration::from_secs(30);
        self.call(Method::POST, "/feed", req, limit)
            .await?
            .ok_or_else(|| ClientError::Decode("empty answer".into()))
    }

    pub async fn bind(&self, host: &str, port_id: &str) -> Result<PortInfo, ClientError> {
        self.post(
            "/bind",
            &BindRequest {
                host: host.into(),
                port_id: port_id.into(),
            },
        )
        .await
    }

    pub async fn port_status(
        &self,
        r: &PortStatusReport,
    ) -> Result<serde_json::Value, ClientError> {
        self.post("/port-status", r).await
    }

    pub async fn ensure_dhcp_port(
        &self,
        host: &str,
        network_id: &str,
    ) -> Result<PortInfo, ClientError> {
        let r = DhcpPortRequest {
            host: host.into(),
            network_id: network_id.into(),
        };
        self.post("/dhcp-port", &r).await
    }

    pub async fn delete_dhcp_port(&self, host: &str, network_id: &str) -> Result<(), ClientError> {
        let r = DhcpPortRequest {
            host: host.into(),
            network_id: network_id.into(),
        };
        self.call::<_, serde_json::Value>(Method::DELETE, "/dhcp-port", &r, Duration::from_secs(30))
            .await
            .map(|_| ())
    }
}

impl ServerClient {
    /// This host's own gateway port for a router (multi-host mode).
    pub async fn ensure_host_gateway(
        &self,
        host: &str,
        router_id: &str,
    ) -> Result<PortInfo, ClientError> {
        let r = HostGatewayRequest {
            host: host.into(),
            router_id: router_id.into(),
        };
        self.post("/host-gateway", &r).await
    }

    pub async fn delete_host_gateway(
        &self,
        host: &str,
        router_id: &str,
    ) -> Result<(), ClientError> {
        let r = HostGatewayRequest {
            host: host.into(),
            router_id: router_id.into(),
        };
        self.call::<_, serde_json::Value>(
            Method::DELETE,
            "/host-gateway",
            &r,
            Duration::from_secs(30),
        )
        .await
        .map(|_| ())
    }
}

/// The server's answer to a relayed metadata request, for the instance.
pub struct MetadataAnswer {
    pub status: u16,
    pub content_type: Option<hyper::header::HeaderValue>,
    pub body: Bytes,
}

impl ServerClient {
    /// Relays an instance's metadata request (`neutrino_agent_rpc`'s
    /// `METADATA_*`). An answer the server did not mark as the instance's is
    /// an error: the relay itself failed.
    pub async fn metadata(
        &self,
        arrival_header: &'static str,
        arrival_id: &str,
        address: std::net::IpAddr,
        method: Method,
        path_and_query: &str,
        body: Bytes,
    ) -> Result<MetadataAnswer, ClientError> {
        use neutrino_agent_rpc::{METADATA_ADDRESS_HEADER, METADATA_ANSWER_HEADER, METADATA_PATH};
        let req = Request::builder()
            .method(method)
            .uri(format!(
                "{}{PREFIX}{METADATA_PATH}{path_and_query}",
                self.base
            ))
            .header("authorization", &self.auth)
            .header(arrival_header, arrival_id)
            .header(METADATA_ADDRESS_HEADER, address.to_string())
            .body(Full::new(body))
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| ClientError::Unreachable(chain(&e)))?;
            let status = resp.status().as_u16();
            let answered = resp.headers().contains_key(METADATA_ANSWER_HEADER);
            let content_type = resp.headers().get("content-type").cloned();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Unreachable(e.to_string()))?
                .to_bytes();
            if !answered {
                return Err(ClientError::Status {
                    status,
                    body: String::from_utf8_lossy(&body).chars().take(500).collect(),
                });
            }
            Ok(MetadataAnswer {
                status,
                content_type,
                body,
            })
        };
        // Longer than the server's own wait for Nova.
        tokio::time::timeout(Duration::from_secs(75), exchange)
            .await
            .map_err(|_| ClientError::Timeout)?
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
