//! Handlers for the resource collections, tags and quotas: they turn a
//! routed request into an engine call and the result into Neutron's JSON.
//! Every resource is served by the same generic handlers, through the
//! [`Resource`] trait; [`CATALOG`] lists them.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::Method;
use axum::response::Response;
use neutrino_engine::State;
use neutrino_engine::ops;
use neutrino_engine::resource::{Resource, Table, ViewCtx, write_json};
use neutrino_model::body::{Op, unwrap_envelope};
use neutrino_model::query::ListQuery;
use neutrino_model::{
    ApiError, ApiResult, AuthContext, FloatingIp, Network, Port, Router, SecurityGroup,
    SecurityGroupRule, Subnet,
};
use serde_json::{Value, json};

use crate::{AppState, reply};

/// The request facts every handler reads.
pub struct Call<'a> {
    pub ctx: &'a AuthContext,
    pub method: &'a Method,
    pub query: &'a str,
    pub base: &'a str,
    pub path: &'a str,
    pub if_match: Option<u64>,
}

/// A reply still being computed (writes wait for their commit).
pub type Reply<'a> = Pin<Box<dyn Future<Output = ApiResult<Response>> + Send + 'a>>;

/// One collection of the API, as the dispatcher routes to it.
pub trait Collection: Send + Sync {
    /// The URL segment (`security-groups`).
    fn path(&self) -> &'static str;
    fn list<'a>(&self, state: &'a AppState, call: &'a Call<'a>) -> Reply<'a>;
    fn show(&self, state: &AppState, call: &Call<'_>, id: &str) -> ApiResult<Response>;
    fn create<'a>(&self, state: &'a AppState, call: &'a Call<'a>, body: Option<Value>)
    -> Reply<'a>;
    fn update<'a>(
        &self,
        state: &'a AppState,
        call: &'a Call<'a>,
        id: &'a str,
        body: Option<Value>,
    ) -> Reply<'a>;
    fn delete<'a>(&self, state: &'a AppState, call: &'a Call<'a>, id: &'a str) -> Reply<'a>;
    /// `/{collection}/{id}/tags[/{tag}]`.
    fn tags<'a>(
        &self,
        state: &'a AppState,
        call: &'a Call<'a>,
        id: &'a str,
        tag: Option<String>,
        body: Option<Value>,
    ) -> Reply<'a>;
}

/// Every collection the API serves: adding a resource is one line here.
static CATALOG: &[&dyn Collection] = &[
    &Handler::<Network>::NEW,
    &Handler::<Subnet>::NEW,
    &Handler::<Port>::NEW,
    &Handler::<SecurityGroup>::NEW,
    &Handler::<SecurityGroupRule>::NEW,
    &Handler::<Router>::NEW,
    &Handler::<FloatingIp>::NEW,
];

/// The collection a URL segment names.
pub fn collection(path: &str) -> Option<&'static dyn Collection> {
    CATALOG.iter().copied().find(|c| c.path() == path)
}

/// A resource's collection, served by the generic handlers below.
struct Handler<R>(PhantomData<fn() -> R>);

impl<R> Handler<R> {
    const NEW: Handler<R> = Handler(PhantomData);
}

impl<R: Resource> Collection for Handler<R> {
    fn path(&self) -> &'static str {
        R::PATH
    }
    fn list<'a>(&self, state: &'a AppState, call: &'a Call<'a>) -> Reply<'a> {
        Box::pin(async move {
            // The query is checked before anything is made for it.
            let pairs = query_pairs(call.query)?;
            let max = state.engine.config().pagination_max_limit;
            let q = ListQuery::parse(&pairs, &Table::<R>::new(&state.engine.snapshot()), max)?;
            R::before_list(&state.engine, call.ctx, &pairs).await?;
            list::<R>(state, call, &pairs, &q)
        })
    }
    fn show(&self, state: &AppState, call: &Call<'_>, id: &str) -> ApiResult<Response> {
        show::<R>(state, call, id)
    }
    fn create<'a>(
        &self,
        state: &'a AppState,
        call: &'a Call<'a>,
        body: Option<Value>,
    ) -> Reply<'a> {
        Box::pin(create::<R>(state, call, body))
    }
    fn update<'a>(
        &self,
        state: &'a AppState,
        call: &'a Call<'a>,
        id: &'a str,
        body: Option<Value>,
    ) -> Reply<'a> {
        Box::pin(update::<R>(state, call, id, body))
    }
    fn delete<'a>(&self, state: &'a AppState, call: &'a Call<'a>, id: &'a str) -> Reply<'a> {
        Box::pin(async move {
            R::delete(&state.engine, call.ctx, id.to_string(), call.if_match).await?;
            Ok(reply::no_content())
        })
    }
    fn tags<'a>(
        &self,
        state: &'a AppState,
        call: &'a Call<'a>,
        id: &'a str,
        tag: Option<String>,
        body: Option<Value>,
    ) -> Reply<'a> {
        if !R::TAGGABLE {
            return Box::pin(async { Err(ApiError::hidden()) });
        }
        Box::pin(tags::<R>(state, call, id, tag, body))
    }
}

pub(crate) fn query_pairs(q: &str) -> ApiResult<Vec<(String, String)>> {
    let uri: axum::http::Uri = format!("/?{q}")
        .parse()
        .map_err(|_| ApiError::bad_request("Malformed query string"))?;
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| ApiError::bad_request("Malformed query string"))
}

fn view_cx<'a>(state: &'a AppState, snap: &'a State, ctx: &AuthContext) -> ViewCtx<'a> {
    ViewCtx {
        admin: ctx.is_admin(),
        state: snap,
        dns_domain: &state.engine.config().dns_domain,
    }
}

/// Lists a collection: visibility, filters, sorting, pagination, fields, links.
fn list<R: Resource>(
    state: &AppState,
    call: &Call<'_>,
    pairs: &[(String, String)],
    q: &ListQuery,
) -> ApiResult<Response> {
    let snap = state.engine.snapshot();
    let schema = Table::<R>::new(&snap);
    let matched: Vec<&Arc<R>> = R::listed(&snap, call.ctx, pairs)
        .into_iter()
        .filter(|i| q.matches(&schema, *i))
        .collect();
    let page = q.paginate(&schema, matched)?;
    let mut head = format!("{{\"{}\":[", R::PLURAL).into_bytes();
    let mut tail = b"]".to_vec();
    if q.limit.is_some() {
        let links = links(
            call,
            pairs,
            q,
            page.first().map(|i| i.id()),
            page.last().map(|i| i.id()),
            page.len(),
        );
        tail.extend_from_slice(format!(",\"{}_links\":", R::PLURAL).as_bytes());
        let _ = serde_json::to_writer(&mut tail, &links);
    }
    tail.push(b'}');
    let admin = call.ctx.is_admin();
    let dns_domain = &state.engine.config().dns_domain;
    if page.len() <= STREAM_ABOVE {
        let cx = ViewCtx {
            admin,
            state: &snap,
            dns_domain,
        };
        head.reserve(page.len() * 900 + tail.len());
        for (i, item) in page.iter().enumerate() {
            if i > 0 {
                head.push(b',');
            }
            write_json(&***item, &cx, &q.fields, &mut head);
        }
        head.extend_from_slice(&tail);
        return Ok(reply::json_bytes(200, head));
    }
    let stream = ListStream {
        items: page.into_iter().cloned().collect(),
        snap: snap.clone(),
        next: 0,
        head: Some(head),
        tail: Some(tail),
        admin,
        dns_domain: dns_domain.to_string(),
        fields: q.fields.clone(),
    };
    Ok(reply::json_stream(200, stream))
}

/// Pages larger than this are streamed in chunks rather than built in one
/// buffer, so listing 100,000 ports does not hold the whole body in memory.
const STREAM_ABOVE: usize = 2_000;
const CHUNK_ITEMS: usize = 1_000;

/// A list body rendered `CHUNK_ITEMS` at a time from a snapshot of the model.
struct ListStream<R: 'static> {
    snap: Arc<State>,
    items: Vec<Arc<R>>,
    next: usize,
    head: Option<Vec<u8>>,
    tail: Option<Vec<u8>>,
    admin: bool,
    dns_domain: String,
    fields: Vec<String>,
}

impl<R> Unpin for ListStream<R> {}

impl<R: Resource> futures_core::Stream for ListStream<R> {
    type Item = Result<bytes::Bytes, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.next >= this.items.len() {
            return std::task::Poll::Ready(this.tail.take().map(|t| Ok(bytes::Bytes::from(t))));
        }
        let mut out = this.head.take().unwrap_or_default();
        let cx = ViewCtx {
            admin: this.admin,
            state: &this.snap,
            dns_domain: &this.dns_domain,
        };
        let end = (this.next + CHUNK_ITEMS).min(this.items.len());
        for i in this.next..end {
            if i > 0 {
                out.push(b',');
            }
            write_json(&*this.items[i], &cx, &this.fields, &mut out);
        }
        this.next = end;
        std::task::Poll::Ready(Some(Ok(bytes::Bytes::from(out))))
    }
}

/// Pagination links as Neutron's `get_pagination_links` builds them: from
/// the page alone, not from what lies beyond it. A full page links onward
/// (the next page may turn out empty: clients stop there) and every page
/// links back the way it came; a short page ends the walk in its direction.
/// An empty page's links carry no marker.
fn links(
    call: &Call<'_>,
    pairs: &[(String, String)],
    q: &ListQuery,
    first: Option<&str>,
    last: Option<&str>,
    len: usize,
) -> Vec<Value> {
    let kept: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "marker" && k != "page_reverse")
        .collect();
    let href = |marker: Option<&str>, reverse: bool| {
        let mut parts: Vec<String> = kept
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        if !kept.iter().any(|(k, _)| k == "limit")
            && let Some(l) = q.limit
        {
            parts.push(format!("limit={l}"));
        }
        if let Some(m) = marker {
            parts.push(format!("marker={}", enc(m)));
        }
        if reverse {
            parts.push("page_reverse=True".into());
        }
        format!("{}{}?{}", call.base, call.path, parts.join("&"))
    };
    let full = q.limit.is_some_and(|l| len >= l);
    let (has_next, has_prev) = if q.page_reverse {
        (true, full)
    } else {
        (full, true)
    };
    let mut out = Vec::new();
    if has_next {
        out.push(json!({"rel": "next", "href": href(last, false)}));
    }
    if has_prev {
        out.push(json!({"rel": "previous", "href": href(first, true)}));
    }
    out
}

fn enc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn fields_of(call: &Call<'_>) -> Vec<String> {
    query_pairs(call.query)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| k == "fields" && !v.is_empty())
        .map(|(_, v)| v)
        .collect()
}

fn show<R: Resource>(state: &AppState, call: &Call<'_>, id: &str) -> ApiResult<Response> {
    let snap = state.engine.snapshot();
    let item = R::find(&snap, call.ctx, id)?;
    let cx = view_cx(state, &snap, call.ctx);
    Ok(reply::single(200, R::SINGULAR, |out| {
        write_json(&*item, &cx, &fields_of(call), out)
    }))
}

fn need_body(body: Option<Value>) -> ApiResult<Value> {
    body.ok_or_else(|| ApiError::bad_request("Resource body required"))
}

async fn create<R: Resource>(
    state: &AppState,
    call: &Call<'_>,
    body: Option<Value>,
) -> ApiResult<Response> {
    let (items, bulk) = unwrap_envelope(need_body(body)?, R::SINGULAR, R::PLURAL, Op::Create)?;
    let created = R::create(&state.engine, call.ctx, items).await?;
    let snap = state.engine.snapshot();
    let cx = view_cx(state, &snap, call.ctx);
    if !bulk {
        let first = created.first().ok_or_else(ApiError::internal)?;
        return Ok(reply::single(201, R::SINGULAR, |out| {
            write_json(&**first, &cx, &[], out)
        }));
    }
    let mut out = format!("{{\"{}\":[", R::PLURAL).into_bytes();
    for (i, item) in created.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&**item, &cx, &[], &mut out);
    }
    out.extend_from_slice(b"]}");
    Ok(reply::json_bytes(201, out))
}

async fn update<R: Resource>(
    state: &AppState,
    call: &Call<'_>,
    id: &str,
    body: Option<Value>,
) -> ApiResult<Response> {
    let (mut items, _) = unwrap_envelope(need_body(body)?, R::SINGULAR, R::PLURAL, Op::Update)?;
    let m = items
        .pop()
        .ok_or_else(|| ApiError::bad_request("Resource body required"))?;
    let item = R::update(&state.engine, call.ctx, id.to_string(), m, call.if_match).await?;
    let snap = state.engine.snapshot();
    let cx = view_cx(state, &snap, call.ctx);
    Ok(reply::single(200, R::SINGULAR, |out| {
        write_json(&*item, &cx, &[], out)
    }))
}

/// `PUT /v2.0/routers/{id}/add_router_interface|remove_router_interface`:
/// the body and the answer are bare objects (not wrapped in `router`).
pub async fn router_interface(
    state: &AppState,
    call: &Call<'_>,
    id: &str,
    action: &str,
    body: Option<Value>,
) -> ApiResult<Response> {
    let e = &state.engine;
    let body = need_body(body)?;
    let info = match action {
        "add_router_interface" => {
            ops::routers::add_interface(e, call.ctx, id.to_string(), body).await?
        }
        _ => ops::routers::remove_interface(e, call.ctx, id.to_string(), body).await?,
    };
    Ok(reply::json(200, &info))
}

fn tag_list(body: Option<Value>) -> ApiResult<Vec<String>> {
    let Some(Value::Array(tags)) = body.and_then(|mut b| b.get_mut("tags").map(Value::take)) else {
        return Err(ApiError::bad_request(
            "Invalid input for tags: a list of strings under 'tags' is required",
        ));
    };
    tags.into_iter()
        .map(|t| match t {
            Value::String(s) => Ok(s),
            other => Err(ApiError::bad_request(format!(
                "Invalid input for tags: '{other}' is not a string"
            ))),
        })
        .collect()
}

/// `/v2.0/{collection}/{id}/tags[/{tag}]`.
async fn tags<R: Resource>(
    state: &AppState,
    call: &Call<'_>,
    id: &str,
    tag: Option<String>,
    body: Option<Value>,
) -> ApiResult<Response> {
    let e = &state.engine;
    let (ctx, id) = (call.ctx, id.to_string());
    let reply_tags = |tags: Vec<String>| reply::json(200, &json!({ "tags": tags }));
    match (call.method.clone(), tag) {
        (Method::GET, None) => Ok(reply_tags(ops::tags::get::<R>(e, ctx, &id)?)),
        (Method::GET, Some(tag)) => {
            if ops::tags::get::<R>(e, ctx, &id)?.contains(&tag) {
                Ok(reply::no_content())
            } else {
                Err(ApiError::not_found(
                    "TagNotFound",
                    format!("Tag {tag} could not be found for resource {id}."),
                ))
            }
        }
        (Method::PUT, None) => {
            let tags = tag_list(body)?;
            Ok(reply_tags(
                ops::tags::edit::<R>(e, ctx, id, move |cur| {
                    *cur = tags;
                    Ok(())
                })
                .await?,
            ))
        }
        (Method::POST, None) => {
            let tags = tag_list(body)?;
            Ok(reply_tags(
                ops::tags::edit::<R>(e, ctx, id, move |cur| {
                    cur.extend(tags);
                    Ok(())
                })
                .await?,
            ))
        }
        (Method::PUT, Some(tag)) => {
            ops::tags::edit::<R>(e, ctx, id, move |cur| {
                cur.push(tag);
                Ok(())
            })
            .await?;
            Ok(reply::status_only(201))
        }
        (Method::DELETE, None) => {
            ops::tags::edit::<R>(e, ctx, id, |cur| {
                cur.clear();
                Ok(())
            })
            .await?;
            Ok(reply::no_content())
        }
        (Method::DELETE, Some(tag)) => {
            let rid = id.clone();
            ops::tags::edit::<R>(e, ctx, id, move |cur| {
                let before = cur.len();
                cur.retain(|x| *x != tag);
                if cur.len() == before {
                    return Err(ApiError::not_found(
                        "TagNotFound",
                        format!("Tag {tag} could not be found for resource {rid}."),
                    ));
                }
                Ok(())
            })
            .await?;
            Ok(reply::no_content())
        }
        _ => Err(ApiError::new(
            neutrino_model::ErrorKind::MethodNotAllowed,
            "HTTPMethodNotAllowed",
            "Method not allowed on tags.",
        )),
    }
}

/// `/v2.0/quotas[/{project}[/details|/default]]`.
pub async fn quotas(
    state: &Arc<AppState>,
    call: &Call<'_>,
    rest: &[String],
    body: Option<Value>,
) -> ApiResult<Response> {
    let e = &state.engine;
    let ctx = call.ctx;
    let m = call.method;
    match rest {
        [] if m == Method::GET => Ok(reply::json(200, &ops::quotas::list(e, ctx)?)),
        [p] if p == "project" || p == "tenant" => Ok(reply::json(
            200,
            &json!({ p.as_str(): {"project_id": ctx.project_id, "tenant_id": ctx.project_id} }),
        )),
        [p] if m == Method::GET => Ok(reply::json(200, &ops::quotas::show(e, ctx, p)?)),
        [p] if m == Method::PUT => Ok(reply::json(
            200,
            &ops::quotas::update(e, ctx, p.clone(), need_body(body)?).await?,
        )),
        [p] if m == Method::DELETE => {
            ops::quotas::reset(e, ctx, p.clone()).await?;
            Ok(reply::no_content())
        }
        [p, d] if d == "details" && m == Method::GET => {
            Ok(reply::json(200, &ops::quotas::details(e, ctx, p)?))
        }
        [p, d] if d == "default" && m == Method::GET => {
            Ok(reply::json(200, &ops::quotas::defaults(e, ctx, p)?))
        }
        [_] | [_, _] => Err(not_allowed()),
        _ => Err(ApiError::hidden()),
    }
}

/// `/v2.0/instance-metadata[/{device_id}]` (Neutrino's extension).
pub async fn instance_metadata(
    state: &Arc<AppState>,
    call: &Call<'_>,
    rest: &[String],
    body: Option<Value>,
) -> ApiResult<Response> {
    use ops::instance_metadata as im;
    let e = &state.engine;
    let ctx = call.ctx;
    let m = call.method;
    match rest {
        [] if m == Method::GET => Ok(reply::json(200, &im::list(e, ctx)?)),
        [d] if m == Method::GET => Ok(reply::json(200, &im::show(e, ctx, d)?)),
        [d] if m == Method::PUT => Ok(reply::json(
            200,
            &im::put(e, ctx, d.clone(), need_body(body)?).await?,
        )),
        [d] if m == Method::DELETE => {
            im::delete(e, ctx, d.clone()).await?;
            Ok(reply::no_content())
        }
        [] | [_] => Err(not_allowed()),
        _ => Err(ApiError::hidden()),
    }
}

/// A known path asked with a method it does not take.
fn not_allowed() -> ApiError {
    ApiError::new(
        neutrino_model::ErrorKind::MethodNotAllowed,
        "HTTPMethodNotAllowed",
        "Method not allowed.",
    )
}
