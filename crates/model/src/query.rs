//! List queries: filters (any filterable attribute, repeated = OR), tag
//! filters, `fields`, sorting and `limit`/`marker` pagination, as Neutron
//! parses them, and the generic algorithm that applies them to a collection.

use std::cmp::Ordering;

use crate::body::parse_bool;
use crate::error::{ApiError, ApiResult};

/// How a filter value is converted before comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterType {
    Str,
    Bool,
    Int,
    /// Compared case-insensitively (MAC addresses).
    Lower,
}

/// What a collection offers to list queries: which attributes may be
/// filtered and sorted on, and each item's values. The engine derives it from
/// each resource's attribute table.
pub trait Schema<T: ?Sized> {
    /// How a filter on `name` converts its value; `None` if it is not filterable.
    fn filter_type(&self, name: &str) -> Option<FilterType>;
    fn sortable(&self, name: &str) -> bool;
    fn taggable(&self) -> bool;
    fn id<'a>(&self, item: &'a T) -> &'a str;
    /// The value filters and sorting compare (`Null` for an unknown name).
    fn attr<'a>(&self, item: &'a T, name: &str) -> AttrValue<'a>;
    fn tags<'a>(&self, item: &'a T) -> &'a [String];
}

/// One attribute value as filters and sorting see it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttrValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Owned(String),
    /// A multi-valued attribute (a filter matches if any element matches).
    Many(Vec<String>),
}

/// A plain value is shown in a resource's JSON as it is compared.
impl serde::Serialize for AttrValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Null => s.serialize_none(),
            AttrValue::Bool(b) => s.serialize_bool(*b),
            AttrValue::Int(i) => s.serialize_i64(*i),
            AttrValue::Str(v) => s.serialize_str(v),
            AttrValue::Owned(v) => s.serialize_str(v),
            AttrValue::Many(v) => v.serialize(s),
        }
    }
}

impl AttrValue<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            AttrValue::Owned(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Matches when the attribute equals any of the values.
    AnyOf(String, FilterType, Vec<String>),
    TagsAll(Vec<String>),
    TagsAny(Vec<String>),
    NotTagsAll(Vec<String>),
    NotTagsAny(Vec<String>),
    /// `updated_at >= t` (Unix seconds), from `changed_since`.
    ChangedSince(i64),
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filters: Vec<Filter>,
    pub fields: Vec<String>,
    pub sorts: Vec<(String, SortDir)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub page_reverse: bool,
}

const RESERVED: [&str; 6] = [
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
];

impl ListQuery {
    /// Parses decoded query pairs against a resource's schema. `max_limit`
    /// caps `limit` (and is applied when no limit is given).
    pub fn parse<T: ?Sized>(
        pairs: &[(String, String)],
        schema: &dyn Schema<T>,
        max_limit: usize,
    ) -> ApiResult<ListQuery> {
        let mut q = ListQuery::default();
        let mut sort_keys = Vec::new();
        let mut sort_dirs = Vec::new();
        let mut grouped: Vec<(String, FilterType, Vec<String>)> = Vec::new();
        let mut project_and_tenant = (false, false);
        for (k, v) in pairs {
            match k.as_str() {
                "fields" => {
                    if !v.is_empty() {
                        q.fields.push(v.clone());
                    }
                }
                "sort_key" => sort_keys.push(v.clone()),
                "sort_dir" => sort_dirs.push(v.clone()),
                "limit" => q.limit = parse_limit(v)?,
                "marker" => q.marker = Some(v.clone()),
                "page_reverse" => q.page_reverse = v.eq_ignore_ascii_case("true"),
                "tags" | "tags-any" | "not-tags" | "not-tags-any" if schema.taggable() => {
                    let tags: Vec<String> = v
                        .split(',')
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect();
                    let merge = |f: &mut Vec<Filter>, make: fn(Vec<String>) -> Filter| {
                        f.push(make(tags.clone()))
                    };
                    match k.as_str() {
                        "tags" => merge(&mut q.filters, Filter::TagsAll),
                        "tags-any" => merge(&mut q.filters, Filter::TagsAny),
                        "not-tags" => merge(&mut q.filters, Filter::NotTagsAll),
                        _ => merge(&mut q.filters, Filter::NotTagsAny),
                    }
                }
                "changed_since" => {
                    let t = crate::time::parse_utc(v).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "'{v}' is not a valid timestamp for changed_since"
                        ))
                    })?;
                    q.filters.push(Filter::ChangedSince(t));
                }
                key => {
                    let Some(ty) = schema.filter_type(key) else {
                        return Err(ApiError::bad_request(format!(
                            "['{key}'] is invalid attribute for filtering"
                        )));
                    };
                    if key == "project_id" {
                        project_and_tenant.0 = true;
                    }
                    if key == "tenant_id" {
                        project_and_tenant.1 = true;
                    }
                    let key = if key == "tenant_id" {
                        "project_id"
                    } else {
                        key
                    };
                    let value = match ty {
                        // Neutron converts filter values in the plugin:
                        // `InvalidInput`, not the attribute check's 400.
                        FilterType::Bool => parse_bool(v)
                            .ok_or_else(|| {
                                ApiError::invalid_input(format!(
                                    "'{v}' cannot be converted to boolean"
                                ))
                            })?
                            .to_string(),
                        FilterType::Int => v
                            .parse::<i64>()
                            .map_err(|_| {
                                ApiError::invalid_input(format!("'{v}' is not an integer"))
                            })?
                            .to_string(),
                        FilterType::Lower => v.to_ascii_lowercase(),
                        FilterType::Str => v.clone(),
                    };
                    match grouped.iter_mut().find(|(n, _, _)| n == key) {
                        Some((_, _, vals)) => vals.push(value),
                        None => grouped.push((key.to_string(), ty, vec![value])),
                    }
                }
            }
        }
        if project_and_tenant == (true, true) {
            return Err(ApiError::bad_request(
                "Both tenant_id and project_id passed as filters.",
            ));
        }
        q.filters
            .extend(grouped.into_iter().map(|(k, t, v)| Filter::AnyOf(k, t, v)));
        if sort_keys.len() != sort_dirs.len() {
            return Err(ApiError::bad_request(
                "The number of sort_keys and sort_dirs must be same",
            ));
        }
        for (k, d) in sort_keys.into_iter().zip(sort_dirs) {
            if !schema.sortable(&k) {
                return Err(ApiError::bad_request(format!(
                    "['{k}'] is invalid attribute for sort_keys"
                )));
            }
            let dir = match d.as_str() {
                "asc" => SortDir::Asc,
                "desc" => SortDir::Desc,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "['{d}'] is invalid value for sort_dirs, valid values are 'asc' and 'desc'"
                    )));
                }
            };
            let k = if k == "tenant_id" {
                "project_id".to_string()
            } else {
                k
            };
            q.sorts.push((k, dir));
        }
        if max_limit > 0 {
            q.limit = Some(q.limit.map_or(max_limit, |l| l.min(max_limit)));
        }
        let _ = RESERVED;
        Ok(q)
    }

    /// Whether an item passes every filter.
    pub fn matches<T: ?Sized>(&self, schema: &dyn Schema<T>, item: &T) -> bool {
        let tags = || schema.tags(item);
        self.filters.iter().all(|f| match f {
            Filter::AnyOf(name, ty, values) => {
                let v = schema.attr(item, name);
                values.iter().any(|want| value_matches(&v, *ty, want))
            }
            Filter::TagsAll(t) => t.iter().all(|x| tags().contains(x)),
            Filter::TagsAny(t) => t.iter().any(|x| tags().contains(x)),
            Filter::NotTagsAll(t) => !t.iter().all(|x| tags().contains(x)),
            Filter::NotTagsAny(t) => !t.iter().any(|x| tags().contains(x)),
            Filter::ChangedSince(t) => {
                matches!(schema.attr(item, "updated_at"), AttrValue::Int(u) if u >= *t)
            }
        })
    }

    /// Orders items by the sort keys with `id` as the final tie-breaker (so
    /// markers are stable), then cuts out the page.
    pub fn paginate<'a, T: ?Sized>(
        &self,
        schema: &dyn Schema<T>,
        mut items: Vec<&'a T>,
    ) -> ApiResult<Vec<&'a T>> {
        let cmp = |a: &&T, b: &&T| -> Ordering {
            for (k, dir) in &self.sorts {
                let o = schema.attr(a, k).cmp(&schema.attr(b, k));
                let o = if *dir == SortDir::Desc {
                    o.reverse()
                } else {
                    o
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            schema.id(a).cmp(schema.id(b))
        };
        // Unsorted, unpaginated lists keep the collection's natural order (by id).
        if !self.sorts.is_empty() || self.limit.is_some() || self.marker.is_some() {
            items.sort_by(cmp);
        }
        let mut start = 0;
        let mut end = items.len();
        if let Some(m) = &self.marker {
            let Some(pos) = items.iter().position(|i| schema.id(i) == m) else {
                return Err(ApiError::not_found(
                    "HTTPNotFound",
                    format!("Marker {m} could not be found."),
                ));
            };
            if self.page_reverse {
                end = pos;
            } else {
                start = pos + 1;
            }
        }
        if let Some(limit) = self.limit
            && end - start > limit
        {
            if self.page_reverse {
                start = end - limit;
            } else {
                end = start + limit;
            }
        }
        Ok(items[start..end].to_vec())
    }
}

fn value_matches(v: &AttrValue<'_>, ty: FilterType, want: &str) -> bool {
    match v {
        AttrValue::Null => want.is_empty(),
        AttrValue::Bool(b) => want == if *b { "true" } else { "false" },
        AttrValue::Int(i) => want == i.to_string(),
        AttrValue::Many(vals) => vals.iter().any(|x| x == want),
        other => {
            let s = other.as_str().unwrap_or("");
            if ty == FilterType::Lower {
                s.eq_ignore_ascii_case(want)
            } else {
                s == want
            }
        }
    }
}

/// `limit`: any integer ≥ 0, 0 meaning no limit. Neutron parses it with
/// Python's unbounded `int`, so a value too large for `usize` is "everything"
/// (SDKs send huge limits to mean that), not a 400.
fn parse_limit(v: &str) -> ApiResult<Option<usize>> {
    let digits = v.strip_prefix('+').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(limit_error(v));
    }
    let n = digits.parse::<usize>().unwrap_or(usize::MAX);
    Ok((n != 0).then_some(n))
}

fn limit_error(v: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Limit must be an integer 0 or greater and not '{v}'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item(String, String, bool);
    struct Items;
    impl Schema<Item> for Items {
        fn filter_type(&self, name: &str) -> Option<FilterType> {
            match name {
                "name" => Some(FilterType::Str),
                "shared" => Some(FilterType::Bool),
                _ => None,
            }
        }
        fn sortable(&self, name: &str) -> bool {
            matches!(name, "name" | "id")
        }
        fn taggable(&self) -> bool {
            false
        }
        fn id<'a>(&self, item: &'a Item) -> &'a str {
            &item.0
        }
        fn attr<'a>(&self, item: &'a Item, name: &str) -> AttrValue<'a> {
            match name {
                "name" => AttrValue::Str(&item.1),
                "shared" => AttrValue::Bool(item.2),
                _ => AttrValue::Null,
            }
        }
        fn tags<'a>(&self, _: &'a Item) -> &'a [String] {
            &[]
        }
    }
    const SCHEMA: &Items = &Items;

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn filters_or_and_and() {
        let items = [
            Item("1".into(), "a".into(), true),
            Item("2".into(), "b".into(), false),
            Item("3".into(), "c".into(), true),
        ];
        let q = ListQuery::parse(
            &pairs(&[("name", "a"), ("name", "c"), ("shared", "True")]),
            SCHEMA,
            0,
        )
        .unwrap();
        let got: Vec<_> = items
            .iter()
            .filter(|i| q.matches(SCHEMA, *i))
            .map(|i| i.0.as_str())
            .collect();
        assert_eq!(got, ["1", "3"]);
        assert!(ListQuery::parse(&pairs(&[("shared", "perhaps")]), SCHEMA, 0).is_err());
        assert!(ListQuery::parse(&pairs(&[("colour", "x")]), SCHEMA, 0).is_err());
    }

    #[test]
    fn pages_with_marker() {
        let items: Vec<Item> = (0..5)
            .map(|i| Item(format!("{i}"), format!("n{}", 4 - i), false))
            .collect();
        let q = ListQuery::parse(
            &pairs(&[("sort_key", "name"), ("sort_dir", "asc"), ("limit", "2")]),
            SCHEMA,
            0,
        )
        .unwrap();
        let p = q.paginate(SCHEMA, items.iter().collect()).unwrap();
        assert_eq!(
            p.iter().map(|i| i.0.as_str()).collect::<Vec<_>>(),
            ["4", "3"]
        );
        let q = ListQuery::parse(
            &pairs(&[
                ("sort_key", "name"),
                ("sort_dir", "asc"),
                ("limit", "2"),
                ("marker", "1"),
            ]),
            SCHEMA,
            0,
        )
        .unwrap();
        let p = q.paginate(SCHEMA, items.iter().collect()).unwrap();
        assert_eq!(p.iter().map(|i| i.0.as_str()).collect::<Vec<_>>(), ["0"]);
        assert!(ListQuery::parse(&pairs(&[("limit", "-1")]), SCHEMA, 0).is_err());
        assert!(ListQuery::parse(&pairs(&[("sort_key", "name")]), SCHEMA, 0).is_err());
    }
}
