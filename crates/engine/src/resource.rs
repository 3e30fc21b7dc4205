//! One trait for every API resource. A resource declares each of its
//! attributes once, in its `ATTRS` table (name, whether a request may set it
//! on create or update, whether lists filter and sort on it, who sees it, and
//! how its value is read); that table drives request validation, list
//! filters, sorting, `fields=` and the JSON view. The same skeleton of
//! update and delete (find what the caller may see, check ownership and
//! `If-Match`, change, bump the revision, store) is written once here, as the
//! trait's provided methods; a resource fills in only what is its own.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use imbl::OrdMap;
use neutrino_model::body::{Body, Op};
use neutrino_model::query::{AttrValue, FilterType, Schema};
use neutrino_model::time::format_utc;
use neutrino_model::{ApiError, ApiResult, AuthContext, Record};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::ops::{check_change, touch};
use crate::{Engine, State, Txn, policy};

/// Who is looking, and the model they look at.
pub struct ViewCtx<'a> {
    pub admin: bool,
    pub state: &'a State,
    pub dns_domain: &'a str,
}

/// Reads an attribute's value as filters and sorting compare it.
pub type ValueFn<R> = for<'a> fn(&'a R) -> AttrValue<'a>;
/// Reads a value from the item and the model around it (a subnet's
/// network's flags), for attributes the item does not hold itself.
pub type ModelFn<R> = for<'a> fn(&'a R, &State) -> AttrValue<'a>;
/// Writes an attribute's JSON value (when it is not simply its [`ValueFn`]).
pub type JsonFn<R> = for<'a> fn(&'a R, &ViewCtx<'a>, &mut Vec<u8>);

/// Who sees an attribute in the resource's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Everyone,
    /// Left out (not nulled) for other callers, as Neutron's policy does.
    Admin,
    /// Accepted in requests only.
    Never,
}

/// One attribute of a resource, declared once.
pub struct Attr<R> {
    pub name: &'static str,
    /// May be given on create (POST).
    pub post: bool,
    /// May be given on update (PUT).
    pub put: bool,
    /// Lists filter on it, converting the filter value so.
    pub filter: Option<FilterType>,
    /// Lists sort on it.
    pub sort: bool,
    pub shown: Shown,
    value: Option<ValueFn<R>>,
    derived: Option<ModelFn<R>>,
    json: Option<JsonFn<R>>,
}

impl<R> Attr<R> {
    /// A plain value: compared by filters and sorting, shown as it is.
    pub const fn value(name: &'static str, value: ValueFn<R>) -> Attr<R> {
        Attr {
            name,
            post: false,
            put: false,
            filter: None,
            sort: false,
            shown: Shown::Everyone,
            value: Some(value),
            derived: None,
            json: None,
        }
    }

    /// A value read from the model around the item, shown as it is.
    pub const fn derived(name: &'static str, derived: ModelFn<R>) -> Attr<R> {
        Attr {
            value: None,
            derived: Some(derived),
            ..Attr::value(name, |_| AttrValue::Null)
        }
    }

    /// A structured value, shown by `json` (add `.compare(…)` to filter on it).
    pub const fn json(name: &'static str, json: JsonFn<R>) -> Attr<R> {
        Attr {
            value: None,
            json: Some(json),
            ..Attr::value(name, |_| AttrValue::Null)
        }
    }

    /// An attribute requests may carry but the resource does not show.
    pub const fn request(name: &'static str) -> Attr<R> {
        Attr {
            value: None,
            shown: Shown::Never,
            ..Attr::value(name, |_| AttrValue::Null)
        }
    }

    pub const fn post(mut self) -> Attr<R> {
        self.post = true;
        self
    }

    pub const fn put(mut self) -> Attr<R> {
        self.put = true;
        self
    }

    /// Settable on create and on update.
    pub const fn set(self) -> Attr<R> {
        self.post().put()
    }

    pub const fn filter(mut self, t: FilterType) -> Attr<R> {
        self.filter = Some(t);
        self
    }

    pub const fn sort(mut self) -> Attr<R> {
        self.sort = true;
        self
    }

    /// Filtered on but never shown.
    pub const fn hidden(mut self) -> Attr<R> {
        self.shown = Shown::Never;
        self
    }

    pub const fn admin(mut self) -> Attr<R> {
        self.shown = Shown::Admin;
        self
    }

    /// What filters and sorting compare for a structured attribute.
    pub const fn compare(mut self, value: ValueFn<R>) -> Attr<R> {
        self.value = Some(value);
        self
    }

    /// The value filters and sorting compare (`Null` for a structured
    /// attribute with no `.compare`).
    pub fn read<'a>(&self, item: &'a R, state: &State) -> AttrValue<'a> {
        match (self.derived, self.value) {
            (Some(derived), _) => derived(item, state),
            (None, Some(value)) => value(item),
            (None, None) => AttrValue::Null,
        }
    }
}

/// Writes one JSON value.
pub fn put_json<V: Serialize + ?Sized>(out: &mut Vec<u8>, v: &V) {
    // Writing to a Vec fails only for values JSON cannot hold; views hold none.
    let _ = serde_json::to_writer(out, v);
}

/// An API resource: the model type, its attribute table and its operations.
pub trait Resource: Record + Clone + Send + Sync + Sized + 'static {
    const SINGULAR: &'static str;
    const PLURAL: &'static str;
    /// The collection's URL segment (`security-groups`).
    const PATH: &'static str;
    const TAGGABLE: bool = true;
    /// The resource's own attributes; the standard ones
    /// (`description`, `project_id`, `tags`, times, revision) follow them.
    const ATTRS: &'static [Attr<Self>];
    /// A validated create request.
    type Create: Send + 'static;
    /// A validated update request.
    type Update: Send + 'static;

    /// The collection in the model.
    fn all(state: &State) -> &OrdMap<String, Arc<Self>>;
    fn visible(ctx: &AuthContext, state: &State, item: &Self) -> bool;
    /// The 404 for an id the caller cannot see.
    fn not_found(id: &str) -> ApiError;
    /// Stores a new or changed item; indexes and the change log follow.
    fn put(txn: &mut Txn<'_>, item: Self) -> ApiResult<()>;

    /// Checks a create request without the model (outside the writer).
    fn parse_create(engine: &Engine, ctx: &AuthContext, body: Body) -> ApiResult<Self::Create>;

    /// Checks that span the requests of one bulk create (none by default).
    fn check_bulk(_reqs: &[Self::Create]) -> ApiResult<()> {
        Ok(())
    }

    /// Creates and stores one item inside the writer.
    fn create_one(txn: &mut Txn<'_>, ctx: &AuthContext, req: Self::Create) -> ApiResult<Arc<Self>>;

    /// Checks an update request without the model (outside the writer).
    fn parse_update(engine: &Engine, ctx: &AuthContext, body: Body) -> ApiResult<Self::Update>;

    /// Applies a checked update to `item` (a copy of `cur`) inside the writer.
    fn apply_update(
        txn: &mut Txn<'_>,
        ctx: &AuthContext,
        cur: &Self,
        item: &mut Self,
        req: Self::Update,
    ) -> ApiResult<()>;

    /// Neutron's in-use rules and cascades for a delete, then the removal.
    fn remove(txn: &mut Txn<'_>, ctx: &AuthContext, cur: Arc<Self>) -> ApiResult<()>;

    /// Who may change an item: its owner, at the revision `If-Match` names.
    fn check_update(ctx: &AuthContext, cur: &Self, if_match: Option<u64>) -> ApiResult<()> {
        let action = format!("update_{}", Self::SINGULAR);
        check_change(ctx, cur.std(), &action, if_match)
    }

    /// Who may delete an item; by default as [`Resource::check_update`].
    fn check_delete(
        _txn: &Txn<'_>,
        ctx: &AuthContext,
        cur: &Self,
        if_match: Option<u64>,
    ) -> ApiResult<()> {
        let action = format!("delete_{}", Self::SINGULAR);
        check_change(ctx, cur.std(), &action, if_match)
    }

    /// Runs before a list is read, with the list's query (the project's
    /// `default` security group appears on first look, as in Neutron).
    fn before_list(
        _engine: &Engine,
        _ctx: &AuthContext,
        _pairs: &[(String, String)],
    ) -> impl Future<Output = ApiResult<()>> + Send {
        async { Ok(()) }
    }

    /// The items a list starts from: those the caller may see. `pairs` (the
    /// query) lets a resource walk an index instead of the whole collection.
    fn listed<'s>(
        state: &'s State,
        ctx: &AuthContext,
        _pairs: &[(String, String)],
    ) -> Vec<&'s Arc<Self>> {
        visible_all(state, ctx)
    }

    /// The item if the caller may see it, else the resource's 404.
    fn find(state: &State, ctx: &AuthContext, id: &str) -> ApiResult<Arc<Self>> {
        match Self::all(state).get(id) {
            Some(i) if Self::visible(ctx, state, i) => Ok(i.clone()),
            _ => Err(Self::not_found(id)),
        }
    }

    /// A request object checked against the attribute table: no unknown
    /// attributes, none the operation may not set.
    fn body(m: Map<String, Value>, op: Op) -> ApiResult<Body> {
        Body::new(m, &|name| attr::<Self>(name).map(|a| (a.post, a.put)), op)
    }

    /// Creates one item per request object, all in one commit or none.
    fn create(
        engine: &Engine,
        ctx: &AuthContext,
        items: Vec<Map<String, Value>>,
    ) -> impl Future<Output = ApiResult<Vec<Arc<Self>>>> + Send {
        let reqs = check_create::<Self>(engine, ctx, items);
        let (engine, ctx) = (engine.clone(), ctx.clone());
        async move {
            let reqs = reqs?;
            engine
                .write(move |txn| {
                    reqs.into_iter()
                        .map(|r| Self::create_one(txn, &ctx, r))
                        .collect()
                })
                .await
        }
    }

    fn update(
        engine: &Engine,
        ctx: &AuthContext,
        id: String,
        m: Map<String, Value>,
        if_match: Option<u64>,
    ) -> impl Future<Output = ApiResult<Arc<Self>>> + Send {
        let req = Self::body(m, Op::Update).and_then(|b| Self::parse_update(engine, ctx, b));
        let (engine, ctx) = (engine.clone(), ctx.clone());
        async move {
            let req = req?;
            engine
                .write(move |txn| {
                    let check = |cur: &Self| Self::check_update(&ctx, cur, if_match);
                    let apply = |txn: &mut Txn<'_>, cur: &Self, item: &mut Self| {
                        Self::apply_update(txn, &ctx, cur, item, req)
                    };
                    Self::change(txn, &ctx, &id, check, apply).map(|(item, ())| item)
                })
                .await
        }
    }

    /// Changes one item the caller may see, inside the writer: `check` says
    /// whether they may, `f` changes a copy of it (and whatever else the
    /// change takes); the copy's revision is bumped and it is stored. Updates
    /// and the router-interface actions share it.
    fn change<T>(
        txn: &mut Txn<'_>,
        ctx: &AuthContext,
        id: &str,
        check: impl FnOnce(&Self) -> ApiResult<()>,
        f: impl FnOnce(&mut Txn<'_>, &Self, &mut Self) -> ApiResult<T>,
    ) -> ApiResult<(Arc<Self>, T)> {
        let cur = Self::find(txn.state, ctx, id)?;
        check(&cur)?;
        let mut item = (*cur).clone();
        let out = f(txn, &cur, &mut item)?;
        touch(item.std_mut(), txn.now);
        Self::put(txn, item.clone())?;
        Ok((Arc::new(item), out))
    }

    fn delete(
        engine: &Engine,
        ctx: &AuthContext,
        id: String,
        if_match: Option<u64>,
    ) -> impl Future<Output = ApiResult<()>> + Send {
        let (engine, ctx) = (engine.clone(), ctx.clone());
        async move {
            engine
                .write(move |txn| {
                    let cur = Self::find(txn.state, &ctx, &id)?;
                    Self::check_delete(txn, &ctx, &cur, if_match)?;
                    Self::remove(txn, &ctx, cur)
                })
                .await
        }
    }
}

/// Every item of `R` the caller may see, in id order.
pub fn visible_all<'s, R: Resource>(state: &'s State, ctx: &AuthContext) -> Vec<&'s Arc<R>> {
    R::all(state)
        .values()
        .filter(|i| R::visible(ctx, state, i))
        .collect()
}

/// A create request checked outside the writer: the caller may write, the
/// bulk is not too large, and every object is valid.
fn check_create<R: Resource>(
    engine: &Engine,
    ctx: &AuthContext,
    items: Vec<Map<String, Value>>,
) -> ApiResult<Vec<R::Create>> {
    policy::require_writer(ctx, &format!("create_{}", R::SINGULAR))?;
    let max = engine.config().max_bulk;
    if items.len() > max {
        return Err(ApiError::bad_request(format!(
            "At most {max} resources per bulk request"
        )));
    }
    let reqs = items
        .into_iter()
        .map(|m| R::parse_create(engine, ctx, R::body(m, Op::Create)?))
        .collect::<ApiResult<Vec<_>>>()?;
    R::check_bulk(&reqs)?;
    Ok(reqs)
}

/// The standard attributes every resource has, after its own.
trait Standard: Resource {
    const STD: &'static [Attr<Self>];
}

impl<R: Resource> Standard for R {
    const STD: &'static [Attr<R>] = &[
        Attr::value("description", |r: &R| AttrValue::Str(&r.std().description))
            .set()
            .filter(FilterType::Str),
        Attr::json("tags", |r: &R, _, out| put_json(out, &r.std().tags)),
        Attr::json("created_at", |r: &R, _, out| {
            put_json(out, &format_utc(r.std().created_at))
        })
        .compare(|r: &R| AttrValue::Int(r.std().created_at))
        .sort(),
        Attr::json("updated_at", |r: &R, _, out| {
            put_json(out, &format_utc(r.std().updated_at))
        })
        .compare(|r: &R| AttrValue::Int(r.std().updated_at))
        .sort(),
        Attr::value("revision_number", |r: &R| {
            AttrValue::Int(i64::try_from(r.std().revision_number).unwrap_or(i64::MAX))
        })
        .filter(FilterType::Int)
        .sort(),
        Attr::value("project_id", |r: &R| AttrValue::Str(&r.std().project_id))
            .post()
            .filter(FilterType::Str)
            .sort(),
        Attr::value("tenant_id", |r: &R| AttrValue::Str(&r.std().project_id))
            .post()
            .filter(FilterType::Str)
            .sort(),
    ];
}

/// Every attribute of `R` in view order: its own, then the standard ones.
fn attrs<R: Resource>() -> impl Iterator<Item = &'static Attr<R>> {
    R::ATTRS
        .iter()
        .chain(R::STD.iter().filter(|a| R::TAGGABLE || a.name != "tags"))
}

/// The attribute called `name`.
pub fn attr<R: Resource>(name: &str) -> Option<&'static Attr<R>> {
    attrs::<R>().find(|a| a.name == name)
}

/// Writes an item's JSON object, keeping only `fields` when any are given.
pub fn write_json<R: Resource>(item: &R, cx: &ViewCtx<'_>, fields: &[String], out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for a in attrs::<R>() {
        let shown = match a.shown {
            Shown::Everyone => true,
            Shown::Admin => cx.admin,
            Shown::Never => false,
        };
        if !shown || !(fields.is_empty() || fields.iter().any(|f| f == a.name)) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        put_json(out, a.name);
        out.push(b':');
        match a.json {
            Some(json) => json(item, cx, out),
            None => put_json(out, &a.read(item, cx.state)),
        }
    }
    out.push(b'}');
}

/// The list-query view of a resource's table, over one snapshot of the model
/// (derived attributes read it).
pub struct Table<'s, R> {
    state: &'s State,
    resource: PhantomData<fn() -> R>,
}

impl<'s, R> Table<'s, R> {
    pub const fn new(state: &'s State) -> Table<'s, R> {
        Table {
            state,
            resource: PhantomData,
        }
    }
}

impl<R: Resource> Schema<Arc<R>> for Table<'_, R> {
    fn filter_type(&self, name: &str) -> Option<FilterType> {
        attr::<R>(name).and_then(|a| a.filter)
    }
    fn sortable(&self, name: &str) -> bool {
        attr::<R>(name).is_some_and(|a| a.sort)
    }
    fn taggable(&self) -> bool {
        R::TAGGABLE
    }
    fn id<'a>(&self, item: &'a Arc<R>) -> &'a str {
        item.id()
    }
    fn attr<'a>(&self, item: &'a Arc<R>, name: &str) -> AttrValue<'a> {
        match attr::<R>(name) {
            Some(a) => a.read(item, self.state),
            None => AttrValue::Null,
        }
    }
    fn tags<'a>(&self, item: &'a Arc<R>) -> &'a [String] {
        &item.std().tags
    }
}

/// An optional string as filters compare it and JSON shows it (`null`).
pub fn opt_str(v: &Option<String>) -> AttrValue<'_> {
    v.as_deref().map_or(AttrValue::Null, AttrValue::Str)
}

/// An optional number as filters compare it and JSON shows it (`null`).
pub fn opt_int(v: Option<u32>) -> AttrValue<'static> {
    v.map_or(AttrValue::Null, |v| AttrValue::Int(i64::from(v)))
}
