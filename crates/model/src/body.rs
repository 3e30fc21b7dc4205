//! Request-body processing in Neutron's order: envelope, unknown attributes,
//! allowed-in-POST/PUT, then per-attribute conversion and validation. The
//! helpers return 400s with the messages neutron-lib gives.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// Whether a body is being parsed for a create (POST) or an update (PUT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
}

/// Splits a request body into resource objects: `{"network": {...}}` gives one,
/// `{"networks": [...]}` (POST only) gives a bulk list whose items may be bare
/// or wrapped.
pub fn unwrap_envelope(
    body: Value,
    singular: &str,
    plural: &str,
    op: Op,
) -> ApiResult<(Vec<Map<String, Value>>, bool)> {
    let Value::Object(mut outer) = body else {
        return Err(ApiError::bad_request("Body contains invalid data"));
    };
    if let Some(list) = outer.remove(plural) {
        if op == Op::Update {
            return Err(ApiError::bad_request("Bulk operation not supported"));
        }
        let Value::Array(items) = list else {
            return Err(ApiError::bad_request("Body contains invalid data"));
        };
        if items.is_empty() {
            return Err(ApiError::bad_request("Resources required"));
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::Object(mut m) => {
                    if m.len() == 1
                        && matches!(m.get(singular), Some(Value::Object(_)))
                        && let Some(Value::Object(inner)) = m.remove(singular)
                    {
                        out.push(inner);
                        continue;
                    }
                    out.push(m);
                }
                _ => return Err(ApiError::bad_request("Body contains invalid data")),
            }
        }
        return Ok((out, true));
    }
    match outer.remove(singular) {
        Some(Value::Object(m)) => Ok((vec![m], false)),
        Some(_) => Err(ApiError::bad_request("Body contains invalid data")),
        None => Err(ApiError::bad_request(format!(
            "Unable to find '{singular}' in request body"
        ))),
    }
}

/// A validated view over one resource object of a request.
pub struct Body {
    map: Map<String, Value>,
}

impl Body {
    /// Checks for unknown attributes and attributes not allowed in this
    /// operation. `rules` gives, for a known attribute, whether it may be
    /// set on create and on update.
    pub fn new(
        map: Map<String, Value>,
        rules: &dyn Fn(&str) -> Option<(bool, bool)>,
        op: Op,
    ) -> ApiResult<Body> {
        let mut unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| rules(k).is_none())
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(ApiError::bad_request(format!(
                "Unrecognized attribute(s) '{}'",
                unknown.join(", ")
            )));
        }
        for k in map.keys() {
            let Some((post, put)) = rules(k) else {
                continue;
            };
            match op {
                Op::Create if !post => {
                    return Err(ApiError::bad_request(format!(
                        "Attribute '{k}' not allowed in POST"
                    )));
                }
                Op::Update if !put => {
                    return Err(ApiError::bad_request(format!(
                        "Cannot update read-only attribute {k}"
                    )));
                }
                _ => {}
            }
        }
        Ok(Body { map })
    }

    /// The request object carries no attribute at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn has(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }

    pub fn raw(&self, k: &str) -> Option<&Value> {
        self.map.get(k)
    }

    pub fn required(&self, k: &str) -> ApiResult<&Value> {
        self.map.get(k).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Failed to parse request. Required attribute '{k}' not specified"
            ))
        })
    }

    /// neutron-lib's `convert_to_boolean`: true/false, 0/1 and common words.
    pub fn bool(&self, k: &str) -> ApiResult<Option<bool>> {
        self.map.get(k).map(to_bool).transpose()
    }

    /// A string of at most `max` characters.
    pub fn string(&self, k: &str, max: usize) -> ApiResult<Option<String>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(v) => Ok(Some(to_string(k, v, max)?)),
        }
    }

    /// A `name_string`: printable, no surrounding whitespace, at most 255 characters.
    pub fn name(&self, k: &str) -> ApiResult<Option<String>> {
        let Some(s) = self.string(k, 255)? else {
            return Ok(None);
        };
        if s.trim() != s || s.chars().any(char::is_control) {
            return Err(ApiError::invalid_attr(
                k,
                format!("'{s}' contains leading/trailing whitespace or control characters"),
            ));
        }
        Ok(Some(s))
    }

    /// A string or `null`: `Some(None)` is an explicit null.
    pub fn nullable_string(&self, k: &str, max: usize) -> ApiResult<Option<Option<String>>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => Ok(Some(Some(to_string(k, v, max)?))),
        }
    }

    pub fn uuid(&self, k: &str) -> ApiResult<Option<String>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(v) => {
                let s = to_string(k, v, 36)?;
                if !is_uuid(&s) {
                    return Err(ApiError::invalid_attr(
                        k,
                        format!("'{s}' is not a valid UUID"),
                    ));
                }
                Ok(Some(s))
            }
        }
    }

    /// An integer (numbers or numeric strings) within `lo..=hi`; `null` gives `Some(None)`.
    pub fn int(&self, k: &str, lo: i64, hi: i64) -> ApiResult<Option<Option<i64>>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => {
                let n = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                // neutron-lib's `convert_to_int`: a converter's InvalidInput.
                let Some(n) = n else {
                    return Err(ApiError::invalid_input(format!("'{v}' is not an integer")));
                };
                if n < lo || n > hi {
                    return Err(ApiError::invalid_attr(
                        k,
                        format!("'{n}' is not in range {lo} through {hi}"),
                    ));
                }
                Ok(Some(Some(n)))
            }
        }
    }

    /// An integer within `lo..=hi` (both within u32) as a u32.
    pub fn u32_in(&self, k: &str, lo: u32, hi: u32) -> ApiResult<Option<Option<u32>>> {
        Ok(self
            .int(k, i64::from(lo), i64::from(hi))?
            .map(|v| v.and_then(|n| u32::try_from(n).ok())))
    }

    /// A list (where `null` means the empty list, as Neutron converts it).
    pub fn list(&self, k: &str) -> ApiResult<Option<Vec<Value>>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Vec::new())),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(v) => Err(ApiError::invalid_attr(k, format!("'{v}' is not a list"))),
        }
    }

    /// A list of strings.
    pub fn string_list(&self, k: &str, max_len: usize) -> ApiResult<Option<Vec<String>>> {
        let Some(items) = self.list(k)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| to_string(k, v, max_len))
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    /// A JSON object (`null` gives an empty object).
    pub fn dict(&self, k: &str) -> ApiResult<Option<Value>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Value::Object(Map::new()))),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(v) => Err(ApiError::invalid_attr(
                k,
                format!("'{v}' is not a dictionary"),
            )),
        }
    }
}

/// neutron-lib's `convert_to_boolean`. A converter, not a validator: its
/// failure is `InvalidInput` and does not name the attribute.
pub fn to_bool(v: &Value) -> ApiResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::String(s) => parse_bool(s).ok_or_else(|| {
            ApiError::invalid_input(format!("'{s}' cannot be converted to boolean"))
        }),
        _ => Err(ApiError::invalid_input(format!(
            "'{v}' cannot be converted to boolean"
        ))),
    }
}

/// Parses the boolean words neutron-lib accepts, case-insensitively.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

pub fn to_string(k: &str, v: &Value, max: usize) -> ApiResult<String> {
    let Value::String(s) = v else {
        return Err(ApiError::invalid_attr(
            k,
            format!("'{v}' is not a valid string"),
        ));
    };
    if s.chars().count() > max {
        return Err(ApiError::invalid_attr(
            k,
            format!("'{s}' exceeds maximum length of {max}"),
        ));
    }
    Ok(s.clone())
}

/// 8-4-4-4-12 hexadecimal, as neutron-lib's `uuid` validator requires.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Takes an object's string field, for list items such as `fixed_ips` entries.
pub fn item_str(attr: &str, item: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(ApiError::invalid_attr(
            attr,
            format!("'{v}' is not a valid string"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_and_readonly_attributes() {
        let attrs = |k: &str| match k {
            "name" => Some((true, true)),
            "network_id" => Some((true, false)),
            _ => None,
        };
        let m = json!({"name": "a", "foo": 1, "bar": 2});
        let e = Body::new(m.as_object().unwrap().clone(), &attrs, Op::Create)
            .err()
            .unwrap();
        assert_eq!(e.message, "Unrecognized attribute(s) 'bar, foo'");
        let m = json!({"network_id": "x"});
        let e = Body::new(m.as_object().unwrap().clone(), &attrs, Op::Update)
            .err()
            .unwrap();
        assert_eq!(e.message, "Cannot update read-only attribute network_id");
    }

    #[test]
    fn envelopes() {
        let (items, bulk) = unwrap_envelope(
            json!({"networks": [{"name": "a"}, {"network": {"name": "b"}}]}),
            "network",
            "networks",
            Op::Create,
        )
        .unwrap();
        assert!(bulk);
        assert_eq!(items[1]["name"], "b");
        assert!(unwrap_envelope(json!([1]), "network", "networks", Op::Create).is_err());
        assert!(
            unwrap_envelope(json!({"networks": []}), "network", "networks", Op::Create).is_err()
        );
        assert!(unwrap_envelope(json!({"x": {}}), "network", "networks", Op::Create).is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
