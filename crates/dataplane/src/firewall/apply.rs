//! The one way a firewall change reaches the kernel, used by the agent and
//! by `neutrino-fw-bench` alike, so the benchmark measures what runs in
//! production. Three paths, cheapest first:
//!
//! 1. **delta**: a change of a few ports or members ([`plan_delta`]) is
//!    their elements only, written over netlink (`nft` would first read
//!    every set of the table), or through `nft` when netlink cannot write
//!    them;
//! 2. **full**: anything structural is rendered and planned in full against
//!    what the kernel holds, and run through `nft` as one transaction;
//! 3. **cold**: a host with none of our tables gets a first load
//!    ([`cold::load`]: structure, then elements over netlink, then the base
//!    chains).

use std::time::{Duration, Instant};

use super::cold::{self, ColdError};
use super::delta::{Touched, plan_delta};
use super::model::FirewallSpec;
use super::nfnl::{self, NfnlError};
use super::nft::{self, NftError};
use super::observe::Observed;
use super::plan::{Plan, plan};
use super::render::render;

/// Which path a change took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The kernel already holds the spec: nothing was written.
    Unchanged,
    Delta,
    Full,
    Cold,
}

/// What [`apply`] did, with the time spent deciding and writing.
#[derive(Debug, Clone)]
pub struct Applied {
    pub plan: Plan,
    pub path: Path,
    /// Delta or render + plan.
    pub planning: Duration,
    /// Netlink, `nft` or the first load.
    pub writing: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error("netlink: {0}")]
    Netlink(#[from] NfnlError),
    #[error("first load: {0}")]
    Cold(#[from] ColdError),
}

/// Takes the kernel from `observed` (what it holds; `last` is the spec that
/// produced it, None when unknown, e.g. just read back) to `spec`, given the
/// keys that differ between them (`touched`). On success `observed` is what
/// the kernel holds now. On failure what the kernel holds is unknown: the
/// caller reads it again before the next change.
pub fn apply(
    last: Option<&FirewallSpec>,
    spec: &FirewallSpec,
    observed: &mut Observed,
    touched: &Touched,
) -> Result<Applied, ApplyError> {
    let t0 = Instant::now();
    if last == Some(spec) {
        return Ok(Applied {
            plan: Plan::default(),
            path: Path::Unchanged,
            planning: t0.elapsed(),
            writing: Duration::ZERO,
        });
    }
    if let Some(last) = last
        && let Some(p) = plan_delta(last, spec, observed, touched)
    {
        let t1 = Instant::now();
        if nfnl::writable(&p.element_ops) {
            nfnl::apply_elements(&p.element_ops)?;
        } else {
            nft::apply(&p.script)?;
        }
        let t2 = Instant::now();
        observed.apply_elements(&p.element_ops);
        return Ok(Applied {
            plan: p,
            path: Path::Delta,
            planning: t1 - t0,
            writing: t2 - t1,
        });
    }
    let rs = render(spec);
    let (p, path, t1) = if observed.tables.is_empty() {
        // No plan is needed for a first load: its size, for metrics.
        let count = rs.sets.values().map(|s| s.elements.len()).sum();
        let p = Plan {
            commands: rs.chains.values().map(|c| c.rules.len()).sum::<usize>() + count,
            chains_written: rs.chains.len(),
            elements: count,
            ..Plan::default()
        };
        let t1 = Instant::now();
        cold::load(&rs)?;
        (p, Path::Cold, t1)
    } else {
        let p = plan(&rs, observed);
        let t1 = Instant::now();
        nft::apply(&p.script)?;
        (p, Path::Full, t1)
    };
    let t2 = Instant::now();
    *observed = Observed::from_ruleset(&rs);
    Ok(Applied {
        plan: p,
        path,
        planning: t1 - t0,
        writing: t2 - t1,
    })
}
