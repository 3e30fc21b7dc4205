//! A first load (no tables of ours yet): the many set elements go straight
//! to the kernel over netlink instead of through nft's parser, which is most
//! of a cold start's cost. Three steps, in an order that never filters with
//! half a ruleset: (1) tables, sets, maps (interval sets with their
//! elements) and regular chains with their rules, none of it hooked into
//! anything yet; (2) the elements of the hash sets and maps, in batches;
//! (3) the base chains, which hook it all in at once.

use std::fmt::Write;

use super::nfnl::{self, ElemOp, NfnlError};
use super::nft::{self, NftError};
use super::observe::Observed;
use super::plan::plan;
use super::ruleset::{Ruleset, Set, TABLE};

/// Elements per netlink batch (one datagram each).
const BATCH: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ColdError {
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error(transparent)]
    Netlink(#[from] NfnlError),
}

/// Loads `rs` into a host that has none of our tables.
pub fn load(rs: &Ruleset) -> Result<(), ColdError> {
    let mut structure = Ruleset::default();
    let mut ops = Vec::new();
    for ((family, name), set) in &rs.sets {
        let elems: Vec<ElemOp> = set
            .elements
            .iter()
            .map(|e| ElemOp {
                add: true,
                family: *family,
                set: name.clone(),
                elem: e.clone(),
            })
            .collect();
        let keep = if nfnl::writable(&elems) {
            ops.extend(elems);
            Set {
                decl: set.decl.clone(),
                key_types: set.key_types.clone(),
                elements: Default::default(),
            }
        } else {
            set.clone()
        };
        structure.sets.insert((*family, name.clone()), keep);
    }
    for (key, c) in rs.chains.iter().filter(|(_, c)| c.hook.is_none()) {
        structure.chains.insert(key.clone(), c.clone());
    }
    nft::apply(&plan(&structure, &Observed::default()).script)?;
    for chunk in ops.chunks(BATCH) {
        nfnl::apply_elements(chunk)?;
    }
    let mut hooks = String::new();
    for ((f, name), c) in rs.chains.iter().filter(|(_, c)| c.hook.is_some()) {
        let hook = c.hook.as_deref().unwrap_or("");
        let _ = writeln!(hooks, "add chain {f} {TABLE} {name} {{ {hook} }}");
        let digest = c.digest();
        for (i, r) in c.rules.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(
                    hooks,
                    "add rule {f} {TABLE} {name} {r} comment \"{digest}\""
                );
            } else {
                let _ = writeln!(hooks, "add rule {f} {TABLE} {name} {r}");
            }
        }
    }
    nft::apply(&hooks)?;
    Ok(())
}
