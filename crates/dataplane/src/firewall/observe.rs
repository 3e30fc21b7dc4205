//! What the kernel holds in the agent's tables, read back from `nft -j`
//! output: which tables exist, each chain's digest (the comment on its first
//! rule) and each set's elements. Rules themselves are not parsed: a chain is
//! right when its digest matches what the agent would render.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::model::Cidr;
use super::ruleset::{Elem, Family, Part, Ruleset, TABLE, Value};

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("nft output is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unexpected nft output: {0}")]
    Shape(String),
}

/// The agent's objects as found in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub tables: BTreeSet<Family>,
    /// Chain → digest of its content (None: empty or not ours).
    pub chains: BTreeMap<(Family, String), Option<String>>,
    pub sets: BTreeMap<(Family, String), BTreeSet<Elem>>,
}

impl Observed {
    /// What the kernel holds after a ruleset was applied in full.
    pub fn from_ruleset(rs: &Ruleset) -> Observed {
        let mut o = Observed::default();
        for ((f, name), c) in &rs.chains {
            o.tables.insert(*f);
            let digest = (!c.rules.is_empty()).then(|| c.digest());
            o.chains.insert((*f, name.clone()), digest);
        }
        for ((f, name), s) in &rs.sets {
            o.tables.insert(*f);
            o.sets.insert((*f, name.clone()), s.elements.clone());
        }
        o
    }

    /// Adds one family's `nft -j list table <family> neutrino` output.
    pub fn add_json(&mut self, family: Family, text: &str) -> Result<(), ObserveError> {
        let doc: Json = serde_json::from_str(text)?;
        let items = doc
            .get("nftables")
            .and_then(Json::as_array)
            .ok_or_else(|| ObserveError::Shape("no nftables array".into()))?;
        for item in items {
            let Some(obj) = item.as_object() else {
                continue;
            };
            for (what, body) in obj {
                if body
                    .get("table")
                    .and_then(Json::as_str)
                    .is_some_and(|t| t != TABLE)
                {
                    continue;
                }
                match what.as_str() {
                    "table" if body.get("name").and_then(Json::as_str) == Some(TABLE) => {
                        self.tables.insert(family);
                    }
                    "chain" => {
                        let name = str_field(body, "name")?;
                        self.chains.entry((family, name)).or_insert(None);
                    }
                    "rule" => {
                        let chain = str_field(body, "chain")?;
                        let entry = self.chains.entry((family, chain)).or_insert(None);
                        // Only the first rule's comment is the digest.
                        if entry.is_none() {
                            *entry = Some(
                                body.get("comment")
                                    .and_then(Json::as_str)
                                    .unwrap_or("")
                                    .to_string(),
                            );
                        }
                    }
                    "set" | "map" => {
                        let name = str_field(body, "name")?;
                        let types = key_types(body.get("type"))?;
                        let mut elems = BTreeSet::new();
                        for e in body
                            .get("elem")
                            .and_then(Json::as_array)
                            .into_iter()
                            .flatten()
                        {
                            elems.insert(parse_elem(e, &types)?);
                        }
                        self.sets.insert((family, name), elems);
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn str_field(body: &Json, key: &str) -> Result<String, ObserveError> {
    body.get(key)
        .and_then(Json::as_str)
        .map(str::to_string)
        .ok_or_else(|| ObserveError::Shape(format!("no {key} in {body}")))
}

fn key_types(t: Option<&Json>) -> Result<Vec<String>, ObserveError> {
    match t {
        Some(Json::String(s)) => Ok(vec![s.clone()]),
        Some(Json::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ObserveError::Shape(format!("set type {v}")))
            })
            .collect(),
        other => Err(ObserveError::Shape(format!("set type {other:?}"))),
    }
}

fn parse_elem(e: &Json, types: &[String]) -> Result<Elem, ObserveError> {
    // Map elements are [key, value]; set elements are the key alone. A key
    // may come wrapped as {"elem": {"val": …}} when it carries flags.
    let (key, value) = match e.as_array() {
        Some(kv) if kv.len() == 2 => (&kv[0], Some(parse_value(&kv[1])?)),
        _ => (e, None),
    };
    let key = key.get("elem").and_then(|x| x.get("val")).unwrap_or(key);
    let fields: Vec<&Json> = match key.get("concat").and_then(Json::as_array) {
        Some(c) => c.iter().collect(),
        None => vec![key],
    };
    if fields.len() != types.len() {
        return Err(ObserveError::Shape(format!(
            "element {e} for types {types:?}"
        )));
    }
    let key = fields
        .iter()
        .zip(types)
        .map(|(f, t)| parse_part(f, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Elem { key, value })
}

fn parse_part(v: &Json, ty: &str) -> Result<Part, ObserveError> {
    let bad = || ObserveError::Shape(format!("{ty} value {v}"));
    match ty {
        "ifname" => v
            .as_str()
            .map(|s| Part::Ifname(s.to_string()))
            .ok_or_else(bad),
        "ether_addr" => v
            .as_str()
            .and_then(|s| s.parse().ok())
            .map(Part::Mac)
            .ok_or_else(bad),
        "mark" => v
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .map(Part::Mark)
            .ok_or_else(bad),
        "integer" => {
            let int = |x: &Json| -> Option<u128> {
                u128::from_str_radix(x.as_str()?.strip_prefix("0x")?, 16).ok()
            };
            let (lo, hi) = match v.get("range").and_then(Json::as_array) {
                Some(r) if r.len() == 2 => {
                    (int(&r[0]).ok_or_else(bad)?, int(&r[1]).ok_or_else(bad)?)
                }
                _ => {
                    let x = int(v).ok_or_else(bad)?;
                    (x, x)
                }
            };
            Cidr::from_v6_bounds(lo, hi).map(Part::Raw6).ok_or_else(bad)
        }
        "ipv4_addr" | "ipv6_addr" => {
            let text = match v {
                Json::String(s) => s.clone(),
                _ => {
                    let p = v.get("prefix").ok_or_else(bad)?;
                    let addr = p.get("addr").and_then(Json::as_str).ok_or_else(bad)?;
                    let len = p.get("len").and_then(Json::as_u64).ok_or_else(bad)?;
                    format!("{addr}/{len}")
                }
            };
            Cidr::parse_host_or_network(&text)
                .map(Part::Net)
                .map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

fn parse_value(v: &Json) -> Result<Value, ObserveError> {
    if let Some(a) = v.as_str().and_then(|s| s.parse().ok()) {
        return Ok(Value::Addr(a));
    }
    if let Some(m) = v.as_u64() {
        return u32::try_from(m)
            .map(Value::Mark)
            .map_err(|_| ObserveError::Shape(format!("mark {v}")));
    }
    let target = v
        .get("goto")
        .and_then(|g| g.get("target"))
        .and_then(Json::as_str)
        .ok_or_else(|| ObserveError::Shape(format!("map value {v}")))?;
    Ok(Value::Goto(target.to_string()))
}
