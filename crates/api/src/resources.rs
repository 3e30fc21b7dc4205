//! Handlers for the resource collections, tags and quotas: they turn a
//! routed request into an engine call and the result into Neutron's JSON.

use std::sync::Arc;

use axum::http::Method;
use axum::response::Response;
use neutrino_engine::ops::{self, tags::Taggable};
use neutrino_engine::{State, policy, view};
use neutrino_model::body::{Op, unwrap_envelope};
use neutrino_model::listing;
use neutrino_model::query::{ListQuery, Listable, Schema};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Networks,
    Subnets,
    Ports,
    SecurityGroups,
    SecurityGroupRules,
    Routers,
    FloatingIps,
}

impl Collection {
    pub fn from_path(s: &str) -> Option<Collection> {
        match s {
            "networks" => Some(Collection::Networks),
            "subnets" => Some(Collection::Subnets),
            "ports" => Some(Collection::Ports),
            "security-groups" => Some(Collection::SecurityGroups),
            "security-group-rules" => Some(Collection::SecurityGroupRules),
            "routers" => Some(Collection::Routers),
            "floatingips" => Some(Collection::FloatingIps),
            _ => None,
        }
    }

    fn schema(self) -> &'static Schema {
        match self {
            Collection::Networks => &listing::NETWORKS,
            Collection::Subnets => &listing::SUBNETS,
            Collection::Ports => &listing::PORTS,
            Collection::SecurityGroups => &listing::SECURITY_GROUPS,
            Collection::SecurityGroupRules => &listing::SECURITY_GROUP_RULES,
            Collection::Routers => &listing::ROUTERS,
            Collection::FloatingIps => &listing::FLOATINGIPS,
        }
    }

    /// The collection's 404, worded by the engine operation that owns it.
    fn not_found(self, id: &str) -> ApiError {
        match self {
            Collection::Networks => ops::networks::not_found(id),
            Collection::Subnets => ops::subnets::not_found(id),
            Collection::Ports => ops::ports::not_found(id),
            Collection::SecurityGroups => ops::security_groups::group_not_found(id),
            Collection::SecurityGroupRules => ops::security_groups::rule_not_found(id),
            Collection::Routers => ops::routers::not_found(id),
            Collection::FloatingIps => ops::floatingips::not_found(id),
        }
    }
}

pub fn require_admin(ctx: &AuthContext) -> ApiResult<()> {
    policy::require_admin(ctx, "rule:context_is_admin")
}

pub(crate) fn query_pairs(q: &str) -> ApiResult<Vec<(String, String)>> {
    let uri: axum::http::Uri = format!("/?{q}")
        .parse()
        .map_err(|_| ApiError::bad_request("Malformed query string"))?;
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| ApiError::bad_request("Malformed query string"))
}

fn view_cx<'a>(state: &'a AppState, snap: &'a State, ctx: &AuthContext) -> view::ViewCtx<'a> {
    view::ViewCtx {
        admin: ctx.is_admin(),
        state: snap,
        dns_domain: &state.engine.config().dns_domain,
    }
}

/// Lists a collection: visibility, filters, sorting, pagination, fields, links.
pub fn list(state: &AppState, call: &Call<'_>, c: Collection) -> ApiResult<Response> {
    let pairs = query_pairs(call.query)?;
    let schema = c.schema();
    let q = ListQuery::parse(&pairs, schema, state.engine.config().pagination_max_limit)?;
    let snap = state.engine.snapshot();
    let ctx = call.ctx;
    let s = &*snap;
    let out = ListOut {
        call,
        pairs: &pairs,
        q: &q,
        schema,
        snap: &snap,
        admin: ctx.is_admin(),
        dns_domain: &state.engine.config().dns_domain,
    };
    match c {
        Collection::Networks => out.render(
            s.networks
                .values()
                .filter(|n| policy::can_see_network(ctx, n)),
            write_network,
        ),
        Collection::Subnets => out.render(
            s.subnets
                .values()
                .filter(|n| policy::can_see_subnet(ctx, s, n)),
            write_subnet,
        ),
        Collection::Ports => {
            // A network_id filter walks only that network's ports.
            let nets: Vec<&str> = pairs
                .iter()
                .filter(|(k, _)| k == "network_id")
                .map(|(_, v)| v.as_str())
                .collect();
            if nets.is_empty() {
                out.render(
                    s.ports.values().filter(|p| policy::can_see_port(ctx, s, p)),
                    write_port,
                )
            } else {
                let mut v: Vec<_> = nets
                    .into_iter()
                    .flat_map(|n| s.ports_of(n))
                    .filter(|p| policy::can_see_port(ctx, s, p))
                    .collect();
                v.sort_by(|a, b| a.id.cmp(&b.id));
                out.render(v.into_iter(), write_port)
            }
        }
        Collection::SecurityGroups => out.render(
            s.security_groups
                .values()
                .filter(|g| policy::can_see_group(ctx, g)),
            write_group,
        ),
        Collection::SecurityGroupRules => out.render(
            s.rules.values().filter(|r| policy::can_see_rule(ctx, s, r)),
            write_rule,
        ),
        Collection::Routers => out.render(
            s.routers
                .values()
                .filter(|r| policy::can_see_router(ctx, r)),
            write_router,
        ),
        Collection::FloatingIps => out.render(
            s.floatingips
                .values()
                .filter(|f| policy::can_see_fip(ctx, f)),
            write_fip,
        ),
    }
}

/// Writes one item's JSON (honouring `fields`).
type ItemWriter<T> = fn(&T, &view::ViewCtx<'_>, &mut Vec<u8>, &[String]);

fn write_network(n: &Network, cx: &view::ViewCtx<'_>, out: &mut Vec<u8>, f: &[String]) {
    reply::write_item(out, &view::network(n, cx), f);
}
fn write_subnet(n: &Subnet, cx: &view::ViewCtx<'_>, out: &mut Vec<u8>, f: &[String]) {
    reply::write_item(out, &view::subnet(n, cx), f);
}
fn write_port(n: &Port, cx: &view::ViewCtx<'_>, out: &mut Vec<u8>, f: &[String]) {
    reply::write_item(out, &view::port(n, cx), f);
}
fn write_group(n: &SecurityGroup, cx: &view::ViewCtx<'_>, out: &mut Vec<u8>, f: &[String]) {
    reply::write_item(out, &view::group(n, cx), f);
}
fn write_rule(n: &SecurityGroupRule, _cx: &view::ViewCtx<'_>, out: &mut Vec<u8>, f: &[String]) {
    reply::write_item(out, &view::rule(n), f);
}
fn write_router(n: &Router, _cx: &view::ViewCtx<'_>, out: &mut Vec<u8>, f: &[String]) {
    reply::write_item(out, &view::router(n), f);
}
fn write_fip(n: &FloatingIp, _cx: &view::ViewCtx<'_>, out: &mut Vec<u8>, f: &[String]) {
    reply::write_item(out, &view::floatingip(n), f);
}

/// Pages larger than this are streamed in chunks rather than built in one
/// buffer, so listing 100,000 ports does not hold the whole body in memory.
const STREAM_ABOVE: usize = 2_000;
const CHUNK_ITEMS: usize = 1_000;

struct ListOut<'a> {
    call: &'a Call<'a>,
    /// The decoded query, parsed once per request.
    pairs: &'a [(String, String)],
    q: &'a ListQuery,
    schema: &'static Schema,
    snap: &'a Arc<State>,
    admin: bool,
    dns_domain: &'a str,
}

impl ListOut<'_> {
    fn render<'s, T, I>(&self, items: I, write: ItemWriter<T>) -> ApiResult<Response>
    where
        T: Listable + Send + Sync + 'static,
        I: Iterator<Item = &'s Arc<T>>,
    {
        let (q, schema) = (self.q, self.schema);
        let matched: Vec<&Arc<T>> = items.filter(|i| q.matches(*i)).collect();
        let page = q.paginate(matched)?;
        let mut head = format!("{{\"{}\":[", schema.plural).into_bytes();
        let mut tail = b"]".to_vec();
        if q.limit.is_some() {
            let links = links(
                self.call,
                self.pairs,
                q,
                page.items.first().map(|i| i.id()),
                page.items.last().map(|i| i.id()),
                page.more,
            );
            tail.extend_from_slice(format!(",\"{}_links\":", schema.plural).as_bytes());
            let _ = serde_json::to_writer(&mut tail, &links);
        }
        tail.push(b'}');
        if page.items.len() <= STREAM_ABOVE {
            let cx = view::ViewCtx {
                admin: self.admin,
                state: self.snap,
                dns_domain: self.dns_domain,
            };
            head.reserve(page.items.len() * 900 + tail.len());
            for (i, item) in page.items.iter().enumerate() {
                if i > 0 {
                    head.push(b',');
                }
                write(item, &cx, &mut head, &q.fields);
            }
            head.extend_from_slice(&tail);
            return Ok(reply::json_bytes(200, head));
        }
        let stream = ListStream {
            snap: self.snap.clone(),
            items: page.items.into_iter().cloned().collect(),
            next: 0,
            head: Some(head),
            tail: Some(tail),
            admin: self.admin,
            dns_domain: self.dns_domain.to_string(),
            fields: q.fields.clone(),
            write,
        };
        Ok(reply::json_stream(200, stream))
    }
}

/// A list body rendered `CHUNK_ITEMS` at a time from a snapshot of the model.
struct ListStream<T: 'static> {
    snap: Arc<State>,
    items: Vec<Arc<T>>,
    next: usize,
    head: Option<Vec<u8>>,
    tail: Option<Vec<u8>>,
    admin: bool,
    dns_domain: String,
    fields: Vec<String>,
    write: ItemWriter<T>,
}

impl<T> Unpin for ListStream<T> {}

impl<T: Send + Sync + 'static> futures_core::Stream for ListStream<T> {
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
        let cx = view::ViewCtx {
            admin: this.admin,
            state: &this.snap,
            dns_domain: &this.dns_domain,
        };
        let end = (this.next + CHUNK_ITEMS).min(this.items.len());
        for i in this.next..end {
            if i > 0 {
                out.push(b',');
            }
            (this.write)(&this.items[i], &cx, &mut out, &this.fields);
        }
        this.next = end;
        std::task::Poll::Ready(Some(Ok(bytes::Bytes::from(out))))
    }
}

/// Pagination links: `next` when more items follow, `previous` when we are past the start.
fn links(
    call: &Call<'_>,
    pairs: &[(String, String)],
    q: &ListQuery,
    first: Option<&str>,
    last: Option<&str>,
    more: bool,
) -> Vec<Value> {
    let kept: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "marker" && k != "page_reverse")
        .collect();
    let href = |marker: &str, reverse: bool| {
        let mut parts: Vec<String> = kept
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        if !kept.iter().any(|(k, _)| k == "limit")
            && let Some(l) = q.limit
        {
            parts.push(format!("limit={l}"));
        }
        parts.push(format!("marker={}", enc(marker)));
        if reverse {
            parts.push("page_reverse=True".into());
        }
        format!("{}{}?{}", call.base, call.path, parts.join("&"))
    };
    let mut out = Vec::new();
    // As Neutron: the link back toward the start is always given (clients
    // stop on an empty page); the link onward only when more items follow.
    let (has_next, has_prev) = if q.page_reverse {
        (true, more)
    } else {
        (more, true)
    };
    if has_next && let Some(l) = last {
        out.push(json!({"rel": "next", "href": href(l, false)}));
    }
    if has_prev && let Some(f) = first {
        out.push(json!({"rel": "previous", "href": href(f, true)}));
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

pub fn show(state: &AppState, call: &Call<'_>, c: Collection, id: &str) -> ApiResult<Response> {
    let snap = state.engine.snapshot();
    let ctx = call.ctx;
    let cx = view_cx(state, &snap, ctx);
    let fields = fields_of(call);
    let s = &*snap;
    let nf = || c.not_found(id);
    Ok(match c {
        Collection::Networks => {
            let n = s
                .networks
                .get(id)
                .filter(|n| policy::can_see_network(ctx, n))
                .ok_or_else(nf)?;
            reply::single(200, "network", &view::network(n, &cx), &fields)
        }
        Collection::Subnets => {
            let n = s
                .subnets
                .get(id)
                .filter(|n| policy::can_see_subnet(ctx, s, n))
                .ok_or_else(nf)?;
            reply::single(200, "subnet", &view::subnet(n, &cx), &fields)
        }
        Collection::Ports => {
            let n = s
                .ports
                .get(id)
                .filter(|n| policy::can_see_port(ctx, s, n))
                .ok_or_else(nf)?;
            reply::single(200, "port", &view::port(n, &cx), &fields)
        }
        Collection::SecurityGroups => {
            let n = s
                .security_groups
                .get(id)
                .filter(|n| policy::can_see_group(ctx, n))
                .ok_or_else(nf)?;
            reply::single(200, "security_group", &view::group(n, &cx), &fields)
        }
        Collection::SecurityGroupRules => {
            let n = s
                .rules
                .get(id)
                .filter(|n| policy::can_see_rule(ctx, s, n))
                .ok_or_else(nf)?;
            reply::single(200, "security_group_rule", &view::rule(n), &fields)
        }
        Collection::Routers => {
            let n = s
                .routers
                .get(id)
                .filter(|n| policy::can_see_router(ctx, n))
                .ok_or_else(nf)?;
            reply::single(200, "router", &view::router(n), &fields)
        }
        Collection::FloatingIps => {
            let n = s
                .floatingips
                .get(id)
                .filter(|n| policy::can_see_fip(ctx, n))
                .ok_or_else(nf)?;
            reply::single(200, "floatingip", &view::floatingip(n), &fields)
        }
    })
}

fn need_body(body: Option<Value>) -> ApiResult<Value> {
    body.ok_or_else(|| ApiError::bad_request("Resource body required"))
}

pub async fn create(
    state: &AppState,
    call: &Call<'_>,
    c: Collection,
    body: Option<Value>,
) -> ApiResult<Response> {
    let schema = c.schema();
    let (items, bulk) =
        unwrap_envelope(need_body(body)?, schema.singular, schema.plural, Op::Create)?;
    let e = &state.engine;
    let ctx = call.ctx;
    macro_rules! respond {
        ($created:expr, $render:expr) => {{
            let created = $created;
            let snap = e.snapshot();
            let cx = view_cx(state, &snap, ctx);
            let render = $render;
            if bulk {
                let mut out = Vec::new();
                out.extend_from_slice(format!("{{\"{}\":[", schema.plural).as_bytes());
                for (i, r) in created.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    reply::write_item(&mut out, &render(&**r, &cx), &[]);
                }
                out.extend_from_slice(b"]}");
                Ok(reply::json_bytes(201, out))
            } else {
                let first = created.first().ok_or_else(ApiError::internal)?;
                Ok(reply::single(
                    201,
                    schema.singular,
                    &render(&**first, &cx),
                    &[],
                ))
            }
        }};
    }
    match c {
        Collection::Networks => respond!(ops::networks::create(e, ctx, items).await?, |n, cx| {
            view::network(n, cx)
        }),
        Collection::Subnets => respond!(ops::subnets::create(e, ctx, items).await?, |n, cx| {
            view::subnet(n, cx)
        }),
        Collection::Ports => respond!(
            ops::ports::create(e, ctx, items).await?,
            |n, cx| view::port(n, cx)
        ),
        Collection::SecurityGroups => respond!(
            ops::security_groups::create(e, ctx, items).await?,
            |n, cx| view::group(n, cx)
        ),
        Collection::SecurityGroupRules => {
            respond!(
                ops::security_groups::create_rules(e, ctx, items).await?,
                |n, _cx: &view::ViewCtx<'_>| view::rule(n)
            )
        }
        Collection::Routers => respond!(
            ops::routers::create(e, ctx, items).await?,
            |n, _cx: &view::ViewCtx<'_>| view::router(n)
        ),
        Collection::FloatingIps => respond!(
            ops::floatingips::create(e, ctx, items).await?,
            |n, _cx: &view::ViewCtx<'_>| view::floatingip(n)
        ),
    }
}

pub async fn update(
    state: &AppState,
    call: &Call<'_>,
    c: Collection,
    id: &str,
    body: Option<Value>,
) -> ApiResult<Response> {
    let schema = c.schema();
    let (mut items, _) =
        unwrap_envelope(need_body(body)?, schema.singular, schema.plural, Op::Update)?;
    let m = items
        .pop()
        .ok_or_else(|| ApiError::bad_request("Resource body required"))?;
    let e = &state.engine;
    let (ctx, id, im) = (call.ctx, id.to_string(), call.if_match);
    macro_rules! respond {
        ($updated:expr, $render:expr) => {{
            let u = $updated;
            let snap = e.snapshot();
            let cx = view_cx(state, &snap, ctx);
            let render = $render;
            Ok(reply::single(200, schema.singular, &render(&*u, &cx), &[]))
        }};
    }
    match c {
        Collection::Networks => {
            respond!(ops::networks::update(e, ctx, id, m, im).await?, |n, cx| {
                view::network(n, cx)
            })
        }
        Collection::Subnets => respond!(ops::subnets::update(e, ctx, id, m, im).await?, |n, cx| {
            view::subnet(n, cx)
        }),
        Collection::Ports => respond!(ops::ports::update(e, ctx, id, m, im).await?, |n, cx| {
            view::port(n, cx)
        }),
        Collection::SecurityGroups => respond!(
            ops::security_groups::update(e, ctx, id, m, im).await?,
            |n, cx| view::group(n, cx)
        ),
        Collection::SecurityGroupRules => Err(ApiError::new(
            neutrino_model::ErrorKind::MethodNotAllowed,
            "HTTPMethodNotAllowed",
            "Security group rules cannot be updated.",
        )),
        Collection::Routers => respond!(
            ops::routers::update(e, ctx, id, m, im).await?,
            |n, _cx: &view::ViewCtx<'_>| view::router(n)
        ),
        Collection::FloatingIps => respond!(
            ops::floatingips::update(e, ctx, id, m, im).await?,
            |n, _cx: &view::ViewCtx<'_>| view::floatingip(n)
        ),
    }
}

pub async fn delete(
    state: &AppState,
    call: &Call<'_>,
    c: Collection,
    id: &str,
) -> ApiResult<Response> {
    let e = &state.engine;
    let (ctx, id, im) = (call.ctx, id.to_string(), call.if_match);
    match c {
        Collection::Networks => ops::networks::delete(e, ctx, id, im).await?,
        Collection::Subnets => ops::subnets::delete(e, ctx, id, im).await?,
        Collection::Ports => ops::ports::delete(e, ctx, id, im).await?,
        Collection::SecurityGroups => ops::security_groups::delete(e, ctx, id, im).await?,
        Collection::SecurityGroupRules => ops::security_groups::delete_rule(e, ctx, id).await?,
        Collection::Routers => ops::routers::delete(e, ctx, id, im).await?,
        Collection::FloatingIps => ops::floatingips::delete(e, ctx, id, im).await?,
    }
    Ok(reply::no_content())
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
pub async fn tags(
    state: &AppState,
    call: &Call<'_>,
    c: Collection,
    id: &str,
    tag: Option<String>,
    body: Option<Value>,
) -> ApiResult<Response> {
    let Some(t) = Taggable::from_collection(match c {
        Collection::Networks => "networks",
        Collection::Subnets => "subnets",
        Collection::Ports => "ports",
        Collection::SecurityGroups => "security-groups",
        Collection::Routers => "routers",
        Collection::FloatingIps => "floatingips",
        Collection::SecurityGroupRules => "",
    }) else {
        return Err(ApiError::hidden());
    };
    let e = &state.engine;
    let (ctx, id) = (call.ctx, id.to_string());
    let reply_tags = |tags: Vec<String>| reply::json(200, &json!({ "tags": tags }));
    match (call.method.clone(), tag) {
        (Method::GET, None) => Ok(reply_tags(ops::tags::get(e, ctx, t, &id)?)),
        (Method::GET, Some(tag)) => {
            if ops::tags::get(e, ctx, t, &id)?.contains(&tag) {
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
                ops::tags::edit(e, ctx, t, id, move |cur| {
                    *cur = tags;
                    Ok(())
                })
                .await?,
            ))
        }
        (Method::POST, None) => {
            let tags = tag_list(body)?;
            Ok(reply_tags(
                ops::tags::edit(e, ctx, t, id, move |cur| {
                    cur.extend(tags);
                    Ok(())
                })
                .await?,
            ))
        }
        (Method::PUT, Some(tag)) => {
            ops::tags::edit(e, ctx, t, id, move |cur| {
                cur.push(tag);
                Ok(())
            })
            .await?;
            Ok(reply::status_only(201))
        }
        (Method::DELETE, None) => {
            ops::tags::edit(e, ctx, t, id, |cur| {
                cur.clear();
                Ok(())
            })
            .await?;
            Ok(reply::no_content())
        }
        (Method::DELETE, Some(tag)) => {
            let rid = id.clone();
            ops::tags::edit(e, ctx, t, id, move |cur| {
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
        [_] | [_, _] => Err(ApiError::new(
            neutrino_model::ErrorKind::MethodNotAllowed,
            "HTTPMethodNotAllowed",
            "Method not allowed.",
        )),
        _ => Err(ApiError::hidden()),
    }
}
