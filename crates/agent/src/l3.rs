//! The L3 step of a pass, after L2 has built the routers' namespaces and
//! legs: each router's NAT table (one nft transaction inside its namespace,
//! only what differs), a gratuitous ARP for each floating IP that arrived
//! here (upstream caches follow a move between hosts at once), and the end
//! of the connections of each floating IP that left (conntrack would keep
//! translating them otherwise).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::Context;
use neutrino_dataplane::firewall::{Family, Observed, Part, nft, plan, render_nat};
use neutrino_dataplane::netns;

use crate::config::L3Section;
use crate::desired::Desired;

/// What one router namespace holds, as last read or applied.
struct RouterState {
    observed: Observed,
    /// Floating IPs translated here.
    floating: BTreeSet<Ipv4Addr>,
}

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

    /// Blocking: runs nft, arping and conntrack inside the namespaces.
    pub fn sync(&mut self, want: &Desired) -> anyhow::Result<L3Outcome> {
        let mut out = L3Outcome::default();
        let wanted: BTreeSet<&str> = want
            .routers
            .values()
            .map(|r| r.namespace.as_str())
            .collect();
        self.routers.retain(|ns, _| wanted.contains(ns.as_str()));
        for r in want.routers.values() {
            let ns = r.namespace.as_str();
            if !self.routers.contains_key(ns) {
                // First sight (or a restart): what the kernel already has.
                let observed = netns::run_in(ns, || nft::observe_families(&[Family::Ip]))
                    .with_context(|| format!("entering {ns}"))??;
                let floating = floating_in(&observed);
                self.routers
                    .insert(ns.to_string(), RouterState { observed, floating });
            }
            let state = self.routers.get_mut(ns).expect("inserted above");
            let rs = render_nat(&r.nat);
            let p = plan(&rs, &state.observed);
            if !p.is_empty() {
                let script = p.script.clone();
                let applied = netns::run_in(ns, move || nft::apply(&script))
                    .with_context(|| format!("entering {ns}"))?;
                if let Err(e) = applied {
                    // Unknown state: read it again next time.
                    self.routers.remove(ns);
                    return Err(e).with_context(|| format!("NAT of {ns}"));
                }
                out.commands += p.commands;
                state.observed = Observed::from_ruleset(&rs);
            }
            let now: BTreeSet<Ipv4Addr> = r.nat.floating_ips.iter().map(|(f, _)| *f).collect();
            let qg = r.nat.gateway_interface.clone().unwrap_or_default();
            let gone: Vec<Ipv4Addr> = state.floating.difference(&now).copied().collect();
            let new: Vec<Ipv4Addr> = now.difference(&state.floating).copied().collect();
            state.floating = now;
            for ip in gone {
                out.flushed += 1;
                flush_connections(&self.cfg, ns, ip);
            }
            for ip in new {
                out.announced += 1;
                announce(&self.cfg, ns, &qg, ip);
            }
        }
        Ok(out)
    }
}

/// Gratuitous ARP (iputils `arping -U`), best effort.
fn announce(cfg: &L3Section, ns: &str, interface: &str, ip: Ipv4Addr) {
    {
        let argv = [
            cfg.arping_path.clone(),
            "-U".into(),
            "-c".into(),
            "1".into(),
            "-I".into(),
            interface.to_string(),
            ip.to_string(),
        ];
        run_quietly(ns, &argv);
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

/// Floating IPs in a router's `fip_dnat` map.
fn floating_in(o: &Observed) -> BTreeSet<Ipv4Addr> {
    o.sets
        .get(&(Family::Ip, "fip_dnat".to_string()))
        .into_iter()
        .flatten()
        .filter_map(|e| match e.key.first() {
            Some(Part::Net(c)) => match c.addr {
                std::net::IpAddr::V4(a) => Some(a),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
