//! The routers step of a pass (`host.rs::sync_routers`), after the links
//! step has built the routers' namespaces and legs: each router's NAT table (one nft transaction inside its namespace,
//! only what differs), a gratuitous ARP for each floating IP that arrived
//! here (upstream caches follow a move between hosts at once), and the end
//! of the connections of each floating IP that left (conntrack would keep
//! translating them otherwise).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use neutrino_dataplane::firewall::{Family, Observed, Part, Value, nft, plan, render_nat};
use neutrino_dataplane::netns;

use crate::config::L3Section;
use crate::desired::Desired;
use crate::desired::l3::RouterHere;

/// What one router namespace holds, as last read or applied.
struct RouterState {
    observed: Observed,
    /// Floating IPs translated here: floating → fixed.
    floating: BTreeMap<Ipv4Addr, Ipv4Addr>,
    read_at: Instant,
}

/// How often a router's NAT table is read again to catch drift (or a
/// namespace recreated under the same name).
const REREAD: Duration = Duration::from_secs(60);

pub struct L3Worker {
    cfg: L3Section,
    routers: BTreeMap<String, RouterState>,
}

/// Counts of one step, for logs and metrics.
#[derive(Debug, Default)]
pub struct L3Outcome {
    pub commands: usize,
    pub announced: usize,
    pub flushed: usize,
}

impl L3Worker {
    pub fn new(cfg: L3Section) -> L3Worker {
        L3Worker {
            cfg,
            routers: BTreeMap::new(),
        }
    }

    /// Blocking: runs nft, arping and conntrack inside the namespaces. One
    /// router failing does not hold back the others: each failure is
    /// returned with its router's id.
    pub fn sync(&mut self, want: &Desired) -> (L3Outcome, Vec<(String, anyhow::Error)>) {
        let mut out = L3Outcome::default();
        let wanted: BTreeSet<&str> = want
            .routers
            .values()
            .map(|r| r.namespace.as_str())
            .collect();
        self.routers
            .retain(|ns, s| wanted.contains(ns.as_str()) && s.read_at.elapsed() < REREAD);
        let mut errors = Vec::new();
        for (id, r) in &want.routers {
            if let Err(e) = self.sync_router(r, &mut out) {
                // Unknown state: read it again next time.
                self.routers.remove(&r.namespace);
                errors.push((id.clone(), e));
            }
        }
        (out, errors)
    }

    fn sync_router(&mut self, r: &RouterHere, out: &mut L3Outcome) -> anyhow::Result<()> {
        let ns = r.namespace.as_str();
        if !self.routers.contains_key(ns) {
            // First sight (or a restart): what the kernel already has.
            let observed = netns::run_in(ns, || nft::observe_families(&[Family::Ip]))
                .with_context(|| format!("entering {ns}"))??;
            let floating = floating_in(&observed);
            self.routers.insert(
                ns.to_string(),
                RouterState {
                    observed,
                    floating,
                    read_at: Instant::now(),
                },
            );
        }
        let state = self.routers.get_mut(ns).expect("inserted above");
        let rs = render_nat(&r.nat);
        let p = plan(&rs, &state.observed);
        if !p.is_empty() {
            let script = p.script.clone();
            netns::run_in(ns, move || nft::apply(&script))
                .with_context(|| format!("entering {ns}"))?
                .context("NAT")?;
            out.commands += p.commands;
            state.observed = Observed::from_ruleset(&rs);
        }
        let now: BTreeMap<Ipv4Addr, Ipv4Addr> = r.nat.floating_ips.iter().copied().collect();
        let qg = r.nat.gateway_interface.clone().unwrap_or_default();
        // Gone, or now translated to another instance: its connections end.
        let ended: Vec<Ipv4Addr> = state
            .floating
            .iter()
            .filter(|(f, fixed)| now.get(f) != Some(fixed))
            .map(|(f, _)| *f)
            .collect();
        let arrived: Vec<Ipv4Addr> = now
            .keys()
            .filter(|f| !state.floating.contains_key(f))
            .copied()
            .collect();
        state.floating = now;
        for ip in ended {
            out.flushed += 1;
            flush_connections(&self.cfg, ns, ip);
        }
        for ip in arrived {
            out.announced += 1;
            announce(&self.cfg, ns, &qg, ip);
        }
        Ok(())
    }
}

/// Gratuitous ARP (iputils `arping -U`), three a second apart as Neutron
/// sends them: a neighbour updated less than a second ago ignores one (its
/// locktime). In the background: the pass does not wait.
fn announce(cfg: &L3Section, ns: &str, interface: &str, ip: Ipv4Addr) {
    let argv = [
        cfg.arping_path.clone(),
        "-U".into(),
        "-c".into(),
        "3".into(),
        "-I".into(),
        interface.to_string(),
        ip.to_string(),
    ];
    let ns = ns.to_string();
    let spawned = std::thread::Builder::new()
        .name("garp".into())
        .spawn(move || run_quietly(&ns, &argv));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot announce a floating IP");
    }
}

/// Ends every connection translated through a floating IP, best effort.
fn flush_connections(cfg: &L3Section, ns: &str, ip: Ipv4Addr) {
    for flag in ["--orig-dst", "--reply-dst"] {
        let argv = [
            cfg.conntrack_path.clone(),
            "-D".into(),
            flag.into(),
            ip.to_string(),
        ];
        run_quietly(ns, &argv);
    }
}

fn run_quietly(ns: &str, argv: &[String]) {
    let result = netns::run_in(ns, || {
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    });
    match result {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(command = %argv[0], error = %e, "cannot run"),
        Err(e) => tracing::warn!(namespace = ns, error = %e, "cannot enter"),
    }
}

/// floating → fixed, as a router's `fip_dnat` map has them.
fn floating_in(o: &Observed) -> BTreeMap<Ipv4Addr, Ipv4Addr> {
    o.sets
        .get(&(Family::Ip, "fip_dnat".to_string()))
        .into_iter()
        .flatten()
        .filter_map(|e| match (e.key.first(), &e.value) {
            (Some(Part::Net(c)), Some(Value::Addr(IpAddr::V4(fixed)))) => match c.addr() {
                IpAddr::V4(f) => Some((f, *fixed)),
                IpAddr::V6(_) => None,
            },
            _ => None,
        })
        .collect()
}
