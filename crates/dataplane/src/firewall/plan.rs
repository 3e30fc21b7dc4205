//! Desired ruleset vs what the kernel holds → one nft script, run as one
//! transaction. Pure. Nothing that is already right is touched: a converged
//! host gets an empty plan, and a port change is a few set elements.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::observe::Observed;
use super::ruleset::{Elem, Family, Ruleset, TABLE};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The nft script; empty when nothing differs.
    pub script: String,
    /// Commands in it (for metrics and tests).
    pub commands: usize,
    /// Chains whose rules were (re)written.
    pub chains_written: usize,
    /// Set and map elements added or deleted.
    pub elements: usize,
    /// The same changes as data, when they are elements only (a delta): the
    /// agent writes them over netlink instead of running `script`.
    pub element_ops: Vec<super::nfnl::ElemOp>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.commands == 0
    }

    fn cmd(&mut self, line: std::fmt::Arguments<'_>) {
        let _ = self.script.write_fmt(line);
        self.script.push('\n');
        self.commands += 1;
    }
}

/// Elements per command: keeps each netlink message batch reasonable.
const ELEMENTS_PER_COMMAND: usize = 1000;

pub fn plan(desired: &Ruleset, observed: &Observed) -> Plan {
    let mut p = Plan::default();
    let families: BTreeSet<Family> = desired
        .chains
        .keys()
        .chain(desired.sets.keys())
        .map(|(f, _)| *f)
        .collect();
    for f in &families {
        if !observed.tables.contains(f) {
            p.cmd(format_args!("add table {f} {TABLE}"));
        }
    }
    // 1. New sets and chains, declared before any rule names them.
    for ((f, name), s) in &desired.sets {
        if !observed.sets.contains_key(&(*f, name.clone())) {
            let kind = if s.decl.contains(" : ") { "map" } else { "set" };
            p.cmd(format_args!(
                "add {kind} {f} {TABLE} {name} {{ {} }}",
                s.decl
            ));
        }
    }
    for ((f, name), c) in &desired.chains {
        if !observed.chains.contains_key(&(*f, name.clone())) {
            match &c.hook {
                Some(h) => p.cmd(format_args!("add chain {f} {TABLE} {name} {{ {h} }}")),
                None => p.cmd(format_args!("add chain {f} {TABLE} {name}")),
            }
        }
    }
    // 2. Chains whose content differs: rewritten in place.
    for ((f, name), c) in &desired.chains {
        let want = (!c.rules.is_empty()).then(|| c.digest());
        let have = observed.chains.get(&(*f, name.clone()));
        if have == Some(&want) {
            continue;
        }
        if have.is_some_and(Option::is_some) {
            p.cmd(format_args!("flush chain {f} {TABLE} {name}"));
            // A base chain's hook (priority) may be what changed, and only a
            // new chain takes a new one; nothing jumps to a base chain, so it
            // can be replaced within the transaction.
            if let Some(h) = &c.hook {
                p.cmd(format_args!("delete chain {f} {TABLE} {name}"));
                p.cmd(format_args!("add chain {f} {TABLE} {name} {{ {h} }}"));
            }
        }
        for (i, r) in c.rules.iter().enumerate() {
            match (&want, i) {
                (Some(d), 0) => p.cmd(format_args!(
                    "add rule {f} {TABLE} {name} {r} comment \"{d}\""
                )),
                _ => p.cmd(format_args!("add rule {f} {TABLE} {name} {r}")),
            }
        }
        p.chains_written += 1;
    }
    // 3. Elements: deletions first, so a map key whose value changed is
    // deleted and added again within the transaction.
    let empty = BTreeSet::new();
    let mut adds: Vec<(Family, &str, Vec<&Elem>)> = Vec::new();
    for ((f, name), s) in &desired.sets {
        let have = observed.sets.get(&(*f, name.clone())).unwrap_or(&empty);
        let gone: Vec<&Elem> = have.difference(&s.elements).collect();
        element_commands(&mut p, "delete", *f, name, &gone, true);
        adds.push((*f, name, s.elements.difference(have).collect()));
    }
    for (f, name, new) in adds {
        element_commands(&mut p, "add", f, name, &new, false);
    }
    // 4. Chains and sets no longer wanted: emptied first (combination chains
    // jump to group chains), then deleted.
    let stale_chains: Vec<&(Family, String)> = observed
        .chains
        .keys()
        .filter(|k| !desired.chains.contains_key(*k) && desired_family(&families, k.0))
        .collect();
    for (f, name) in &stale_chains {
        if observed
            .chains
            .get(&(*f, name.clone()))
            .is_some_and(Option::is_some)
        {
            p.cmd(format_args!("flush chain {f} {TABLE} {name}"));
        }
    }
    for (f, name) in &stale_chains {
        p.cmd(format_args!("delete chain {f} {TABLE} {name}"));
    }
    for (f, name) in observed.sets.keys() {
        if !desired.sets.contains_key(&(*f, name.clone())) && desired_family(&families, *f) {
            // `delete set` removes maps too.
            p.cmd(format_args!("delete set {f} {TABLE} {name}"));
        }
    }
    p
}

fn desired_family(families: &BTreeSet<Family>, f: Family) -> bool {
    families.contains(&f)
}

/// `add element` / `delete element` commands for a set, in chunks.
pub(super) fn element_commands(
    p: &mut Plan,
    verb: &str,
    f: Family,
    set: &str,
    elems: &[&Elem],
    key_only: bool,
) {
    for chunk in elems.chunks(ELEMENTS_PER_COMMAND) {
        let list: Vec<String> = chunk
            .iter()
            .map(|e| if key_only { e.fmt_key() } else { e.to_string() })
            .collect();
        p.cmd(format_args!(
            "{verb} element {f} {TABLE} {set} {{ {} }}",
            list.join(", ")
        ));
        p.elements += chunk.len();
    }
}
