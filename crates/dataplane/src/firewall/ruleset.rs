//! The nftables objects the agent owns, as data: chains with their rule
//! texts, sets and maps with their elements. Both the rendered (desired) and
//! the observed side are compared in these terms.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use super::model::Cidr;
use crate::model::Mac;

/// Name of the agent's table in both families.
pub const TABLE: &str = "neutrino";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Bridge,
    Inet,
    /// Routers' NAT, inside their namespaces.
    Ip,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Bridge => "bridge",
            Family::Inet => "inet",
            Family::Ip => "ip",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of a set element.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Ifname(String),
    Mac(Mac),
    /// An address or a network (a host-length prefix prints as an address).
    Net(Cidr),
    /// An IPv6 address or network as nft's raw 128-bit integer (or range of
    /// them): what a raw payload match (the NDP target) is compared with.
    Raw6(Cidr),
    Mark(u32),
}

impl Part {
    pub fn addr(a: IpAddr) -> Part {
        Part::Net(Cidr::host(a))
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Ifname(n) => write!(f, "\"{n}\""),
            Part::Mac(m) => write!(f, "{m}"),
            Part::Net(c) => write!(f, "{}", c.compact()),
            Part::Raw6(c) => {
                let (lo, hi) = c.v6_bounds();
                if lo == hi {
                    write!(f, "0x{lo:032x}")
                } else {
                    write!(f, "0x{lo:032x}-0x{hi:032x}")
                }
            }
            Part::Mark(m) => write!(f, "{m}"),
        }
    }
}

/// The value of a map element.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Mark(u32),
    Goto(String),
    Addr(IpAddr),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Mark(m) => write!(f, "{m}"),
            Value::Goto(c) => write!(f, "goto {c}"),
            Value::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// A set element (key only) or a map element (key and value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Elem {
    pub key: Vec<Part>,
    pub value: Option<Value>,
}

impl Elem {
    pub fn key(key: Vec<Part>) -> Elem {
        Elem { key, value: None }
    }

    pub fn map(key: Vec<Part>, value: Value) -> Elem {
        Elem {
            key,
            value: Some(value),
        }
    }

    /// The key alone (what `delete element` names).
    pub fn fmt_key(&self) -> String {
        let parts: Vec<String> = self.key.iter().map(Part::to_string).collect();
        parts.join(" . ")
    }
}

impl fmt::Display for Elem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fmt_key())?;
        if let Some(v) = &self.value {
            write!(f, " : {v}")?;
        }
        Ok(())
    }
}

/// A set or map: its declaration (`type ifname : mark;`) and elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub decl: String,
    /// nft's type names of the key's fields, to read elements back.
    pub key_types: Vec<&'static str>,
    pub elements: BTreeSet<Elem>,
}

/// A chain: base chains carry their hook line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub hook: Option<String>,
    pub rules: Vec<String>,
}

impl Chain {
    pub fn regular(rules: Vec<String>) -> Chain {
        Chain { hook: None, rules }
    }

    /// A stable digest of what the chain holds, kept in the comment of its
    /// first rule: on restart a chain whose digest matches is left alone.
    pub fn digest(&self) -> String {
        // FNV-1a: stable across builds (std's hasher is not).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(self.hook.as_deref().unwrap_or("").as_bytes());
        for r in &self.rules {
            eat(b"\n");
            eat(r.as_bytes());
        }
        format!("h:{h:016x}")
    }
}

/// Everything in both tables, keyed by (family, name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub chains: BTreeMap<(Family, String), Chain>,
    pub sets: BTreeMap<(Family, String), Set>,
}
