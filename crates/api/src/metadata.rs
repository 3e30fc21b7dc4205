//! `/agent/v1/metadata/...`: an instance's metadata request, relayed by the
//! agent whose namespace it arrived in. The server finds the instance in its
//! model (`neutrino_engine::metadata`) and the configured backend answers.
//! Every outcome is counted by status; an unknown source is a 404, counted
//! apart, as is a refused relay.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use neutrino_agent_rpc::{
    METADATA_ADDRESS_HEADER, METADATA_ANSWER_HEADER, METADATA_MAX_BODY, METADATA_NETWORK_HEADER,
    METADATA_PATH, METADATA_ROUTER_HEADER, PREFIX,
};
use neutrino_engine::metadata::{Arrival, identify, instance};
use neutrino_metadata::{Answer, Backend};
use neutrino_model::ApiError;

use crate::{AppState, agents, reply};

/// The backend and what it did.
pub struct MetadataService {
    pub backend: Backend,
    answers: Mutex<BTreeMap<u16, u64>>,
    unknown_instance: AtomicU64,
    refused_relays: AtomicU64,
}

impl MetadataService {
    pub fn new(backend: Backend) -> MetadataService {
        MetadataService {
            backend,
            answers: Mutex::new(BTreeMap::new()),
            unknown_instance: AtomicU64::new(0),
            refused_relays: AtomicU64::new(0),
        }
    }

    fn count(&self, status: u16) {
        let mut m = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(status).or_default() += 1;
    }

    pub fn render_metrics(&self, out: &mut String) {
        let backend = self.backend.name();
        out.push_str("# TYPE neutrino_metadata_answers_total counter\n");
        for (status, n) in self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            out.push_str(&format!(
                "neutrino_metadata_answers_total{{backend=\"{backend}\",code=\"{status}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "# TYPE neutrino_metadata_unknown_instance_total counter\nneutrino_metadata_unknown_instance_total {}\n",
            self.unknown_instance.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "# TYPE neutrino_metadata_refused_relays_total counter\nneutrino_metadata_refused_relays_total {}\n",
            self.refused_relays.load(Ordering::Relaxed)
        ));
        if let Backend::Proxy(p) = &self.backend {
            out.push_str(&format!(
                "# TYPE neutrino_metadata_nova_unreachable_total counter\nneutrino_metadata_nova_unreachable_total {}\n\
                 # TYPE neutrino_metadata_nova_bad_answers_total counter\nneutrino_metadata_nova_bad_answers_total {}\n",
                p.unreachable.load(Ordering::Relaxed),
                p.bad_answers.load(Ordering::Relaxed),
            ));
        }
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Where the agent says the request arrived, and from which address.
fn arrival(headers: &HeaderMap) -> Result<(Arrival, IpAddr), ApiError> {
    let arrival = match (
        header_str(headers, METADATA_NETWORK_HEADER),
        header_str(headers, METADATA_ROUTER_HEADER),
    ) {
        (Some(n), None) => Arrival::Network(n.to_string()),
        (None, Some(r)) => Arrival::Router(r.to_string()),
        _ => {
            return Err(ApiError::bad_request(format!(
                "Exactly one of {METADATA_NETWORK_HEADER} and {METADATA_ROUTER_HEADER} is required."
            )));
        }
    };
    let addr = header_str(headers, METADATA_ADDRESS_HEADER)
        .and_then(|a| a.parse::<IpAddr>().ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!("{METADATA_ADDRESS_HEADER} is not an address."))
        })?;
    Ok((arrival, addr))
}

fn answer_response(a: Answer) -> Response {
    Response::builder()
        .status(a.status)
        .header(header::CONTENT_TYPE, a.content_type)
        .header(METADATA_ANSWER_HEADER, "1")
        .body(Body::from(a.body))
        .unwrap_or_default()
}

pub async fn relay(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let svc = &state.metadata;
    // Faults of the relay itself: the agent's, not the instance's.
    let refused = |e: ApiError| {
        svc.refused_relays.fetch_add(1, Ordering::Relaxed);
        reply::error(&e)
    };
    if let Err(e) = agents::authorize(&state, &headers) {
        return refused(e);
    }
    let (arrival, addr) = match arrival(&headers) {
        Ok(a) => a,
        Err(e) => return refused(e),
    };
    let path = uri
        .path()
        .strip_prefix(PREFIX)
        .and_then(|p| p.strip_prefix(METADATA_PATH))
        .unwrap_or("");
    let path = if path.is_empty() { "/" } else { path };
    let answer = match instance_request(&method, path, uri.query(), body) {
        Err(a) => a,
        Ok(req) => {
            let snap = state.engine.snapshot();
            match identify(&snap, &arrival, addr) {
                Err(why) => {
                    svc.unknown_instance.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(?arrival, %addr, "metadata: {why}");
                    Answer::text(404, format!("404 Not Found\n\n{why}\n"))
                }
                Ok(port) => {
                    let i = instance(&snap, &port, addr);
                    drop(snap);
                    svc.backend.answer(&i, &req).await
                }
            }
        }
    };
    svc.count(answer.status);
    answer_response(answer)
}

/// The instance's request, or the answer refusing it.
fn instance_request(
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: Bytes,
) -> Result<neutrino_metadata::Request, Answer> {
    let method = match *method {
        Method::GET => neutrino_metadata::Method::Get,
        Method::HEAD => neutrino_metadata::Method::Head,
        Method::POST => neutrino_metadata::Method::Post,
        _ => return Err(Answer::text(405, "405 Method Not Allowed\n")),
    };
    if body.len() > METADATA_MAX_BODY {
        return Err(Answer::text(413, "413 Request Entity Too Large\n"));
    }
    Ok(neutrino_metadata::Request {
        method,
        path: path.to_string(),
        query: query.map(str::to_string),
        body,
    })
}
