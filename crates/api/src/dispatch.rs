//! Routing of everything under `/` and `/v2.0`: authentication, then the
//! path split into collection / id / sub-resource, with `.json` suffixes,
//! 404s and 405s answered as Neutron answers them.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::Response;
use neutrino_model::{ApiError, ApiResult, ErrorKind};
use serde_json::{Value, json};

use crate::resources::{self, Call};
use crate::{AppState, extensions, reply};

pub async fn dispatch(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    match route(&state, req).await {
        Ok(r) => r,
        Err(e) => reply::error(&e),
    }
}

/// `http(s)://host` as the client addressed us, for links.
fn base_url(req: &Request<Body>) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let proto = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http")
        .to_string();
    format!("{proto}://{host}")
}

async fn route(state: &Arc<AppState>, req: Request<Body>) -> ApiResult<Response> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let base = base_url(&req);
    if path == "/" || path.is_empty() {
        if method != Method::GET && method != Method::HEAD {
            return Err(method_not_allowed());
        }
        return Ok(reply::json(
            200,
            &json!({"versions": [
                {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": format!("{base}/v2.0/")}]}
            ]}),
        ));
    }
    let Some(rest) = path.strip_prefix("/v2.0") else {
        return Err(ApiError::hidden());
    };
    let token = req
        .headers()
        .get("x-auth-token")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let ctx = state.identity.authenticate(token.as_deref()).await?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        if method != Method::GET {
            return Err(method_not_allowed());
        }
        let res: Vec<Value> = ["network", "subnet", "port"]
            .iter()
            .map(|r| json!({"name": r, "collection": format!("{r}s"), "links": [{"rel": "self", "href": format!("{base}/v2.0/{r}s")}]}))
            .collect();
        return Ok(reply::json(200, &json!({ "resources": res })));
    }
    let segs: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
    let last = segs.len() - 1;
    let mut segs = segs;
    // A `.json` suffix is the same request (tags keep other suffixes).
    if let Some(s) = segs[last].strip_suffix(".json") {
        segs[last] = s.to_string();
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let if_match = parse_if_match(
        req.headers()
            .get(header::IF_MATCH)
            .and_then(|h| h.to_str().ok()),
    )?;
    let body = read_body(state, req).await?;
    let call = Call {
        ctx: &ctx,
        method: &method,
        query: &query,
        base: &base,
        path: &path,
        if_match,
    };

    match segs[0].as_str() {
        "extensions" => {
            if method != Method::GET {
                return Err(ApiError::hidden());
            }
            match segs.get(1) {
                None => Ok(reply::json(200, &extensions::list())),
                Some(alias) => extensions::get(alias)
                    .map(|v| reply::json(200, &v))
                    .ok_or_else(|| {
                        ApiError::not_found(
                            "HTTPNotFound",
                            format!("Extension with alias {alias} does not exist"),
                        )
                    }),
            }
        }
        "quotas" => resources::quotas(state, &call, &segs[1..], body).await,
        "instance-metadata" => resources::instance_metadata(state, &call, &segs[1..], body).await,
        "agents" => {
            if method != Method::GET || segs.len() > 2 {
                return Err(method_not_allowed());
            }
            let q = crate::resources::query_pairs(&query)?;
            let v = crate::agents::list(state, &ctx, segs.get(1).map(String::as_str), &q)?;
            Ok(reply::json(200, &v))
        }
        coll => {
            let Some(c) = resources::collection(coll) else {
                return Err(ApiError::hidden());
            };
            match (segs.len(), &method) {
                (1, &Method::GET) => c.list(state, &call).await,
                (1, &Method::POST) => c.create(state, &call, body).await,
                (1, _) => Err(method_not_allowed()),
                (2, &Method::GET) => c.show(state, &call, &segs[1]),
                (2, &Method::PUT) => c.update(state, &call, &segs[1], body).await,
                (2, &Method::DELETE) => {
                    if body.is_some() {
                        return Err(ApiError::bad_request(
                            "Request body is not supported in DELETE.",
                        ));
                    }
                    c.delete(state, &call, &segs[1]).await
                }
                (2, _) => Err(method_not_allowed()),
                (3, m)
                    if c.path() == "routers"
                        && matches!(
                            segs[2].as_str(),
                            "add_router_interface" | "remove_router_interface"
                        ) =>
                {
                    if m != Method::PUT {
                        return Err(method_not_allowed());
                    }
                    resources::router_interface(state, &call, &segs[1], &segs[2], body).await
                }
                (3 | 4, _) if segs[2] == "tags" => {
                    // Tags may legitimately end in `.json`-like text; use the raw last segment.
                    let tag = (segs.len() == 4).then(|| decode(segments[3]));
                    c.tags(state, &call, &segs[1], tag, body).await
                }
                _ => Err(ApiError::hidden()),
            }
        }
    }
}

/// Percent-decodes a path segment (tag names).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Byte-wise, so a '%' before a multi-byte character cannot split it.
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let v = u8::try_from(h * 16 + l).unwrap_or(b'?');
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        "HTTPMethodNotAllowed",
        "The server could not comply with the request since it is either malformed or otherwise incorrect.",
    )
}

/// `If-Match: revision_number=N` (quoted or not; other etags ignored).
fn parse_if_match(h: Option<&str>) -> ApiResult<Option<u64>> {
    let Some(h) = h else { return Ok(None) };
    let mut found = None;
    for tag in h.split(',') {
        let t = tag.trim().trim_start_matches("W/").trim_matches('"');
        if let Some(v) = t.strip_prefix("revision_number=") {
            if found.is_some() {
                return Err(ApiError::bad_request(
                    "Multiple revision_number etags are not supported.",
                ));
            }
            found = Some(v.parse::<u64>().map_err(|_| {
                ApiError::bad_request(
                    "Revision number etag must be in the format of revision_number=<int>",
                )
            })?);
        }
    }
    Ok(found)
}

/// Reads and parses a JSON body (None when empty); oversized → 413.
async fn read_body(state: &AppState, req: Request<Body>) -> ApiResult<Option<Value>> {
    let bytes = to_bytes(req.into_body(), state.max_body_bytes)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorKind::PayloadTooLarge,
                "HTTPRequestEntityTooLarge",
                format!(
                    "Request is too large: the body must be at most {} bytes.",
                    state.max_body_bytes
                ),
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("Malformed request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_percent_escapes_without_panicking() {
        assert_eq!(decode("a%20b"), "a b");
        assert_eq!(decode("%E2%9C%93"), "✓");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%é1"), "%é1");
    }
}
