//! The metadata service's listeners on this host: one per namespace that
//! answers 169.254.169.254 (each isolated network's DHCP namespace, each
//! router namespace), all served by this process, as the native DHCP server
//! serves every network. A listener knows only where it stands; the server
//! is told that and the request's source address, and answers for the port
//! holding that address there (`neutrino_engine::metadata`). Nothing the
//! instance sends names it.
//!
//! A listener's socket is bound inside its namespace and stays tied to it;
//! when a namespace is replaced (same name, new inode) the listener is
//! opened anew. Sockets are bound with `IP_FREEBIND`, so a listener does not
//! wait for the address the host step adds beside it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::serve::IncomingStream;
use neutrino_agent_rpc::{METADATA_MAX_BODY, METADATA_NETWORK_HEADER, METADATA_ROUTER_HEADER};
use neutrino_dataplane::netns;
use serde_json::{Value, json};
use socket2::{Domain, Protocol, Socket, Type};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::client::ServerClient;
use crate::desired::{Arrival, MetadataListener};

/// Longest request line path relayed; Nova's paths are far shorter.
const MAX_PATH: usize = 2048;
/// Connections one listener holds at once (Neutron's haproxy: `maxconn`
/// 1024 per router); further ones wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;
/// How long a closing listener's connections may finish their requests.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the listeners did, for `/metrics`.
#[derive(Default)]
pub struct MetadataStats {
    /// Answers relayed from the server, whatever their status.
    pub relayed: AtomicU64,
    /// Requests the server could not be asked about (502 to the instance).
    pub relay_failures: AtomicU64,
    /// Requests refused here (method, path length).
    pub refused: AtomicU64,
}

impl MetadataStats {
    pub fn render(&self, out: &mut String) {
        for (name, v) in [
            ("relayed", &self.relayed),
            ("relay_failures", &self.relay_failures),
            ("refused", &self.refused),
        ] {
            out.push_str(&format!(
                "# TYPE neutrino_agent_metadata_{name}_total counter\nneutrino_agent_metadata_{name}_total {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
    }
}

struct Open {
    spec: MetadataListener,
    /// The namespace's inode when the socket was bound in it.
    inode: u64,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct MetadataListeners {
    client: ServerClient,
    pub stats: Arc<MetadataStats>,
    open: BTreeMap<String, Open>,
}

/// What a listener tells the server about where it stands.
struct Listener {
    client: ServerClient,
    stats: Arc<MetadataStats>,
    header: &'static str,
    id: String,
}

fn namespace_inode(ns: &str) -> Option<u64> {
    std::fs::metadata(netns::path(ns)).ok().map(|m| m.ino())
}

fn bind_in(ns: &str, addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let bound = netns::run_in(ns, || -> std::io::Result<std::net::TcpListener> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_reuse_address(true)?;
        sock.set_freebind_v4(true)?;
        sock.set_nonblocking(true)?;
        sock.bind(&addr.into())?;
        sock.listen(1024)?;
        Ok(sock.into())
    });
    match bound {
        Ok(Ok(l)) => Ok(l),
        Ok(Err(e)) => Err(format!("cannot listen on {addr} in {ns}: {e}")),
        Err(e) => Err(format!("cannot enter {ns}: {e}")),
    }
}

fn arrival_id(a: &Arrival) -> &str {
    match a {
        Arrival::Network(id) | Arrival::Router(id) => id,
    }
}

impl MetadataListeners {
    pub fn new(client: ServerClient, stats: Arc<MetadataStats>) -> MetadataListeners {
        MetadataListeners {
            client,
            stats,
            open: BTreeMap::new(),
        }
    }

    /// Listens in exactly the wanted namespaces. Returns, by network or
    /// router id, the listeners that could not be opened (retried with the
    /// next pass).
    pub async fn sync(
        &mut self,
        want: &BTreeMap<String, MetadataListener>,
    ) -> BTreeMap<String, String> {
        let stale: Vec<String> = self
            .open
            .iter()
            .filter(|(ns, o)| {
                want.get(*ns) != Some(&o.spec) || namespace_inode(ns) != Some(o.inode)
            })
            .map(|(ns, _)| ns.clone())
            .collect();
        for ns in stale {
            if let Some(mut o) = self.open.remove(&ns) {
                let _ = o.stop.send(true);
                // A graceful stop waits for open connections; an instance
                // holding one open must not hold the host step.
                if tokio::time::timeout(CLOSE_GRACE, &mut o.task)
                    .await
                    .is_err()
                {
                    o.task.abort();
                }
                tracing::info!(namespace = %ns, "metadata listener closed");
            }
        }
        let mut failed = BTreeMap::new();
        for (ns, spec) in want {
            if self.open.contains_key(ns) {
                continue;
            }
            let Some(inode) = namespace_inode(ns) else {
                failed.insert(
                    arrival_id(&spec.arrival).to_string(),
                    format!("metadata: namespace {ns} does not exist"),
                );
                continue;
            };
            let (ns2, addr) = (ns.clone(), spec.bind);
            let bound = tokio::task::spawn_blocking(move || bind_in(&ns2, addr))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
                .and_then(|l| tokio::net::TcpListener::from_std(l).map_err(|e| e.to_string()));
            let listener = match bound {
                Ok(l) => l,
                Err(e) => {
                    failed.insert(arrival_id(&spec.arrival).to_string(), e);
                    continue;
                }
            };
            let ctx = Arc::new(Listener {
                client: self.client.clone(),
                stats: self.stats.clone(),
                header: match spec.arrival {
                    Arrival::Network(_) => METADATA_NETWORK_HEADER,
                    Arrival::Router(_) => METADATA_ROUTER_HEADER,
                },
                id: arrival_id(&spec.arrival).to_string(),
            });
            let app = Router::new()
                .fallback(relay)
                .layer(DefaultBodyLimit::max(METADATA_MAX_BODY))
                .with_state(ctx);
            let (stop, mut stopped) = watch::channel(false);
            let task = tokio::spawn(async move {
                let served = axum::serve(
                    Capped {
                        inner: listener,
                        slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
                    },
                    app.into_make_service_with_connect_info::<Peer>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
                if let Err(e) = served {
                    tracing::warn!(error = %e, "metadata listener ended");
                }
            });
            tracing::info!(namespace = %ns, bind = %spec.bind, arrival = ?spec.arrival, "metadata listener open");
            self.open.insert(
                ns.clone(),
                Open {
                    spec: spec.clone(),
                    inode,
                    stop,
                    task,
                },
            );
        }
        failed
    }

    pub fn status(&self) -> Value {
        json!(
            self.open
                .iter()
                .map(|(ns, o)| (
                    ns.clone(),
                    json!({
                        "bind": o.spec.bind.to_string(),
                        "network_id": matches!(o.spec.arrival, Arrival::Network(_)).then(|| arrival_id(&o.spec.arrival)),
                        "router_id": matches!(o.spec.arrival, Arrival::Router(_)).then(|| arrival_id(&o.spec.arrival)),
                    })
                ))
                .collect::<serde_json::Map<_, _>>()
        )
    }
}

/// A listener that holds at most [`MAX_CONNECTIONS`] connections: one
/// instance opening thousands cannot take the agent's descriptors.
struct Capped {
    inner: tokio::net::TcpListener,
    slots: Arc<Semaphore>,
}

/// A connection and the slot it holds until it closes.
struct CappedStream {
    inner: tokio::net::TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl axum::serve::Listener for Capped {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CappedStream, SocketAddr) {
        loop {
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                continue;
            };
            match self.inner.accept().await {
                Ok((inner, addr)) => return (CappedStream { inner, _slot: slot }, addr),
                // Out of descriptors or the like: wait rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The instance's address, as the connection came.
#[derive(Clone, Copy)]
struct Peer(SocketAddr);

impl Connected<IncomingStream<'_, Capped>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Capped>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .body(Body::from(text))
        .unwrap_or_default()
}

/// One instance request: refused here if it cannot be a metadata request,
/// else relayed with where it arrived and who sent it.
async fn relay(
    State(l): State<Arc<Listener>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    if !matches!(method, Method::GET | Method::HEAD | Method::POST) {
        l.stats.refused.fetch_add(1, Ordering::Relaxed);
        return plain(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed\n");
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    // No dot segment or escape goes on: the relay carries the agent's
    // credential, and no proxy in between may turn a path into another call.
    let dotted = uri
        .path()
        .split('/')
        .any(|seg| seg == "." || seg == ".." || seg.contains('%'));
    if path.len() > MAX_PATH || !path.starts_with('/') || dotted {
        l.stats.refused.fetch_add(1, Ordering::Relaxed);
        return plain(StatusCode::BAD_REQUEST, "400 Bad Request\n");
    }
    let source = peer.ip().to_canonical();
    match l
        .client
        .metadata(l.header, &l.id, source, method, path, body)
        .await
    {
        Ok(a) => {
            l.stats.relayed.fetch_add(1, Ordering::Relaxed);
            let mut resp = Response::builder()
                .status(StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY));
            if let Some(ct) = a.content_type {
                resp = resp.header(header::CONTENT_TYPE, ct);
            }
            resp.body(Body::from(a.body)).unwrap_or_default()
        }
        Err(e) => {
            l.stats.relay_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%source, arrival = %l.id, error = %e, "metadata: cannot relay to the server");
            plain(
                StatusCode::BAD_GATEWAY,
                "502 Bad Gateway\n\nThe metadata service is unavailable. Please try again later.\n",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener as _;

    #[tokio::test]
    async fn a_listener_holds_a_slot_per_open_connection() {
        let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let slots = Arc::new(Semaphore::new(2));
        let mut capped = Capped {
            inner,
            slots: slots.clone(),
        };
        let _c1 = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _c2 = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (a, _) = capped.accept().await;
        let (b, _) = capped.accept().await;
        // Both slots taken: a third connection waits in the backlog.
        assert_eq!(slots.available_permits(), 0);
        drop(a);
        assert_eq!(slots.available_permits(), 1);
        drop(b);
        assert_eq!(slots.available_permits(), 2);
    }
}
