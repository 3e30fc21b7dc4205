//! `neutrino-fw-bench`: security-group firewall programming on one host,
//! Neutrino's nftables design against Neutron's iptables firewall
//! (`IptablesFirewallDriver`, linuxbridge, `enable_ipset = True`), same
//! workload, same run, same scratch network namespace.
//!
//! Workload (deterministic): G = 500 security groups of 20 rules each (ingress
//! TCP single ports and ranges from anywhere and from prefixes, UDP, ICMP
//! type/code, ICMPv6, "from my own group" v4 and v6 like Neutron's default
//! group, two rules naming other groups as remote groups, egress any v4/v6);
//! N ports, port i in group i % 500 and every 10th port in a second group;
//! each port has a MAC, one IPv4 and one IPv6 fixed IP and is a member of its
//! groups (every group is named as a remote group, so the member sets hold
//! all 2 x ~1.1 N addresses).
//!
//! Neutrino, per size N (clean tables between sizes):
//! * full sync: render + plan (against an empty `Observed`) + `nft::apply`;
//! * changes, each repeated `--repeats` times with the host at N ports: a port
//!   added (existing group) and removed again, a port joining (and leaving)
//!   a second group that is a remote group. A step is what the agent does per
//!   change: build the spec (a clone of the previous one with the change, as
//!   the agent builds it from its desired state), render, plan against the
//!   previous `Observed::from_ruleset`, apply. After every step
//!   `plan(render(spec), nft::observe())` must be empty (not timed).
//!
//! Peer (Neutron's iptables firewall, rules as `IptablesFirewallDriver`
//! writes them: per-port chains `neutron-linuxbri-i/o/s<port>`, physdev jumps
//! from FORWARD/INPUT/`sg-chain`, every rule of every group of a port
//! expanded into that port's chains, remote groups as `hash:net` ipsets
//! `NIPv4<sg id>`/`NIPv6<sg id>`, raw-table conntrack zone rules per port):
//! * full sync: `ipset restore` of all sets + `iptables-restore` +
//!   `ip6tables-restore` of the filter and raw tables (one process each: a
//!   lower bound; the agent itself goes through ipset create/restore/swap per
//!   set and a save+diff+restore);
//! * a port added / removed: what `IptablesManager._apply_synchronized` runs
//!   per change, for both families: `iptables-save`, then `iptables-restore
//!   -n` with the difference (new chains, `-I`/`-D`/`-X` lines) between its
//!   old and new rules. The Python work (building the rules, difflib) is not
//!   counted, only the processes;
//! * a membership change: `ipset add` (or `del`) of the member's address, one
//!   process per family, as `IpsetManager` does for small changes. That is
//!   all a host does whose ports merely name the group; the host of the port
//!   itself also rewrites the port's chains, measured as "member, local port"
//!   (ipset + save/restore).
//!
//! Backends: `iptables-legacy` (Neutron's classic setting) and, with
//! `--peer-nft`, `iptables-nft` as a second peer column.
//!
//! Runs as root only: it unshares a fresh network namespace for the whole
//! process before anything else, so nothing touches the host's namespace.
//! No timing is asserted: it is a benchmark.

// Casts are between small counters (ports < 2^20, groups < 2^16) and
// nanosecond durations: none can truncate.
#![allow(clippy::cast_possible_truncation)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use neutrino_dataplane::firewall::{
    self as firewall, Cidr, Direction, FirewallSpec, GroupFilter, Observed, PortFilter, Remote,
    Rule, Touched, link_local, nft, plan, render,
};
use neutrino_net::{Mac, names};
use nix::sched::{CloneFlags, unshare};
use serde_json::{Value as Json, json};

#[derive(Parser, Debug)]
#[command(
    name = "neutrino-fw-bench",
    about = "Security-group firewall programming: Neutrino (nftables) vs Neutron's iptables firewall (see the top of fw_bench.rs)"
)]
struct Args {
    /// Host sizes (ports), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,2000,5000,10000")]
    sizes: Vec<usize>,
    /// Security groups.
    #[arg(long, default_value_t = 500)]
    groups: usize,
    /// Repeats of each change step (add, remove, member join/leave).
    #[arg(long, default_value_t = 20)]
    repeats: usize,
    /// Repeats of each change step for the peers (default: --repeats).
    #[arg(long)]
    peer_repeats: Option<usize>,
    /// Also run the peer on the iptables-nft backend.
    #[arg(long)]
    peer_nft: bool,
    /// Repeats of each change step for the iptables-nft peer (its save alone
    /// takes seconds at 10,000 ports).
    #[arg(long, default_value_t = 3)]
    peer_nft_repeats: usize,
    /// Skip the peer (Neutrino only).
    #[arg(long)]
    no_peer: bool,
    /// Skip the convergence check after each Neutrino step.
    #[arg(long)]
    no_verify: bool,
    /// Print the results as JSON (instead of the table).
    #[arg(long)]
    json: bool,
    /// Print the table of an earlier `--json` output and exit (no root needed).
    #[arg(long)]
    table_from: Option<std::path::PathBuf>,
    /// Write the nft scripts of the first repeat of each Neutrino step (and
    /// the peer's restore inputs) to this directory, for inspection.
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.table_from {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        print_table(&serde_json::from_str(&text)?);
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "neutrino-fw-bench must run as root: it works in a fresh network namespace of its own (unshare CLONE_NEWNET)"
        );
        std::process::exit(1);
    }
    // The whole process (single-threaded: no thread has been started) moves
    // to a new network namespace; nft, iptables and ipset children inherit it.
    unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
    run_quiet("ip", &["link", "add", "fwb0", "type", "bridge"])?;
    nft::enable_bridge_netfilter().context("br_netfilter sysctls (is br_netfilter available?)")?;
    for tool in [
        "nft",
        "ipset",
        "iptables-legacy-restore",
        "ip6tables-legacy-restore",
    ] {
        if !args.no_peer || tool == "nft" {
            which(tool)?;
        }
    }
    if args.peer_nft && !args.no_peer {
        which("iptables-nft-restore")?;
        which("ip6tables-nft-restore")?;
    }

    let started = Instant::now();
    let max_n = args.sizes.iter().copied().max().unwrap_or(0);
    let repeats = args.repeats.max(1);
    let peer_repeats = args.peer_repeats.unwrap_or(repeats).max(1);
    let most = repeats.max(peer_repeats).max(args.peer_nft_repeats);
    let w = Workload::new(args.groups, max_n + 2 * most + 10);
    eprintln!(
        "workload: {} groups x {} rules, sizes {:?}, repeats {repeats} (peer {peer_repeats})",
        args.groups,
        w.rules_per_group(),
        args.sizes
    );

    let mut results = Vec::new();
    for &n in &args.sizes {
        let mut r = json!({ "ports": n });
        eprintln!("== N = {n}: neutrino");
        r["neutrino"] = neutrino_size(&w, n, repeats, !args.no_verify, args.dump.as_deref())?;
        if !args.no_peer {
            let mut backends = vec![Backend::Legacy];
            if args.peer_nft {
                backends.push(Backend::Nft);
            }
            for b in backends {
                eprintln!("== N = {n}: neutron iptables ({})", b.name());
                let reps = match b {
                    Backend::Legacy => peer_repeats,
                    Backend::Nft => args.peer_nft_repeats.max(1),
                };
                r[b.key()] = peer_size(&w, n, reps, b, args.dump.as_deref())?;
            }
        }
        results.push(r);
    }
    let out = json!({
        "groups": args.groups,
        "rules_per_group": w.rules_per_group(),
        "repeats": repeats,
        "peer_repeats": peer_repeats,
        "peer_nft_repeats": args.peer_nft_repeats.max(1),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "run_seconds": started.elapsed().as_secs_f64(),
        "sizes": results,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&out);
    }
    Ok(())
}

// ------------------------------------------------------------------ workload --

struct PortInfo {
    /// Neutron port id (a UUID).
    id: String,
    /// `tap` + the first 11 characters of the port id (Neutron's device name).
    tap: String,
    mac: Mac,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    net: usize,
    /// Sorted group indexes.
    groups: Vec<usize>,
}

struct Workload {
    group_ids: Vec<String>,
    /// Rules of each group, in the model of the dataplane.
    rules: Vec<Vec<Rule>>,
    ports: Vec<PortInfo>,
}

const NETWORKS: usize = 20;

fn group_id(g: usize) -> String {
    format!("{g:08x}-5ec0-4000-8000-{g:012x}")
}

fn rule(
    direction: Direction,
    ipv4: bool,
    protocol: Option<u8>,
    ports: Option<(u32, u32)>,
    remote: Remote,
) -> Rule {
    Rule {
        direction,
        ipv4,
        protocol,
        port_range_min: ports.map(|p| p.0),
        port_range_max: ports.map(|p| p.1),
        remote,
    }
}

fn icmp(
    direction: Direction,
    ipv4: bool,
    protocol: u8,
    ty: u32,
    code: Option<u32>,
    remote: Remote,
) -> Rule {
    Rule {
        direction,
        ipv4,
        protocol: Some(protocol),
        port_range_min: Some(ty),
        port_range_max: code,
        remote,
    }
}

fn cidr(s: &str) -> Cidr {
    Cidr::parse_host_or_network(s).expect("static prefix")
}

impl Workload {
    fn new(groups: usize, ports: usize) -> Workload {
        let group_ids: Vec<String> = (0..groups).map(group_id).collect();
        let rules = (0..groups).map(|g| group_rules(g, &group_ids)).collect();
        let ports = (0..ports).map(|i| port_info(i, groups)).collect();
        Workload {
            group_ids,
            rules,
            ports,
        }
    }

    fn rules_per_group(&self) -> usize {
        self.rules.first().map_or(0, Vec::len)
    }
}

/// 20 rules: 16 ingress (4 naming a remote group), 2 ingress IPv6, 2 egress.
fn group_rules(g: usize, ids: &[String]) -> Vec<Rule> {
    use Direction::{Egress, Ingress};
    let n = ids.len();
    let own = Remote::Group(ids[g].clone());
    let other1 = Remote::Group(ids[(g + 1) % n].clone());
    let other7 = Remote::Group(ids[(g + 7) % n].clone());
    let b = (g % 250) as u8;
    let site = Remote::Prefix(cidr(&format!("10.{b}.0.0/16")));
    let office = Remote::Prefix(cidr(&format!("192.168.{b}.0/24")));
    let any = Remote::Any;
    vec![
        rule(Ingress, true, Some(6), Some((22, 22)), any.clone()),
        rule(Ingress, true, Some(6), Some((80, 80)), any.clone()),
        rule(Ingress, true, Some(6), Some((443, 443)), any.clone()),
        rule(Ingress, true, Some(6), Some((8000, 8100)), site.clone()),
        rule(Ingress, true, Some(6), Some((3306, 3306)), office.clone()),
        rule(
            Ingress,
            true,
            Some(6),
            Some((9000 + g as u32 % 100, 9100 + g as u32 % 100)),
            any.clone(),
        ),
        rule(Ingress, true, Some(17), Some((53, 53)), any.clone()),
        rule(
            Ingress,
            true,
            Some(17),
            Some((5000, 5100)),
            Remote::Prefix(cidr("172.16.0.0/12")),
        ),
        rule(Ingress, true, Some(17), Some((123, 123)), office),
        icmp(Ingress, true, 1, 8, Some(0), any.clone()),
        icmp(Ingress, true, 1, 3, None, site),
        // Neutron's default group: everything from members of the same group.
        rule(Ingress, true, None, None, own.clone()),
        rule(Ingress, false, None, None, own),
        rule(Ingress, true, Some(6), Some((5432, 5432)), other1),
        rule(Ingress, true, Some(17), Some((161, 162)), other7),
        rule(
            Ingress,
            false,
            Some(6),
            Some((22, 22)),
            Remote::Prefix(cidr("2001:db8::/32")),
        ),
        icmp(Ingress, false, 58, 128, None, any.clone()),
        rule(Ingress, false, Some(6), Some((443, 443)), any.clone()),
        rule(Egress, true, None, None, any.clone()),
        rule(Egress, false, None, None, any),
    ]
}

fn port_info(i: usize, groups: usize) -> PortInfo {
    let id = format!("{i:08x}-7a00-4000-8000-{i:012x}");
    let tap = names::tap(&id);
    let b = (i as u32).to_be_bytes();
    let mac = Mac::new([0xfa, 0x16, 0x3e, b[1], b[2], b[3]]);
    let v4 = Ipv4Addr::new(10, 200 + b[1], b[2], b[3]);
    let v6 = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, (i >> 16) as u16, (i & 0xffff) as u16);
    let first = i % groups;
    let mut gs = vec![first];
    if i.is_multiple_of(10) {
        let mut second = (i / 10 + groups / 2) % groups;
        if second == first {
            second = (second + 1) % groups;
        }
        gs.push(second);
        gs.sort_unstable();
    }
    PortInfo {
        id,
        tap,
        mac,
        v4,
        v6,
        net: i % NETWORKS,
        groups: gs,
    }
}

/// Which ports are on the host, each with its groups (sorted).
#[derive(Clone)]
struct Host {
    ports: BTreeMap<usize, Vec<usize>>,
}

impl Host {
    fn first(w: &Workload, n: usize) -> Host {
        Host {
            ports: (0..n).map(|i| (i, w.ports[i].groups.clone())).collect(),
        }
    }

    /// group → members (port indexes) on this host.
    fn members(&self) -> BTreeMap<usize, Vec<usize>> {
        let mut m: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (&p, gs) in &self.ports {
            for &g in gs {
                m.entry(g).or_default().push(p);
            }
        }
        m
    }
}

/// A port (not on the host yet), a single-group port and a group it may join,
/// for repeat `r` of a host of `n` ports.
fn add_candidate(n: usize, r: usize) -> usize {
    n + r
}

fn join_candidate(w: &Workload, host: &Host, r: usize) -> (usize, usize) {
    let groups = w.group_ids.len();
    let n = host.ports.len();
    let mut p = (r * 37 + 1) % n;
    while host.ports.get(&p).is_none_or(|g| g.len() != 1) {
        p = (p + 1) % n;
    }
    let g = host.ports[&p][0];
    (p, (g + groups / 2 + r) % groups)
}

// ----------------------------------------------------------------- neutrino --

fn port_filter(w: &Workload, i: usize, groups: &[usize]) -> PortFilter {
    let p = &w.ports[i];
    PortFilter {
        mark: i as u32 + 1,
        network_id: format!("net{}", p.net),
        sources: BTreeSet::from([
            (p.mac, Cidr::host(IpAddr::V4(p.v4))),
            (p.mac, Cidr::host(IpAddr::V6(p.v6))),
        ]),
        macs: BTreeSet::from([p.mac]),
        groups: groups.iter().map(|&g| w.group_ids[g].clone()).collect(),
    }
}

fn addrs(w: &Workload, i: usize) -> [Cidr; 2] {
    let p = &w.ports[i];
    [Cidr::host(IpAddr::V4(p.v4)), Cidr::host(IpAddr::V6(p.v6))]
}

fn spec_of(w: &Workload, host: &Host) -> FirewallSpec {
    let mut s = FirewallSpec {
        allow_same_net_traffic: true,
        ..FirewallSpec::default()
    };
    for (&i, gs) in &host.ports {
        s.ports
            .insert(w.ports[i].tap.clone(), port_filter(w, i, gs));
        for g in gs {
            s.members
                .entry(w.group_ids[*g].clone())
                .or_default()
                .extend(addrs(w, i));
        }
        s.network_addresses
            .entry(format!("net{}", w.ports[i].net))
            .or_default()
            .extend(addrs(w, i));
    }
    // Rules of every group a port uses, and of every group named as a remote
    // group (all of them here), with their member sets (possibly empty).
    for (g, id) in w.group_ids.iter().enumerate() {
        s.groups.insert(
            id.clone(),
            GroupFilter {
                rules: w.rules[g].clone(),
            },
        );
        s.members.entry(id.clone()).or_default();
    }
    s
}

#[derive(Default)]
struct Samples {
    total: Vec<f64>,
    spec: Vec<f64>,
    render: Vec<f64>,
    plan: Vec<f64>,
    apply: Vec<f64>,
    commands: Vec<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(v: &[f64]) -> Json {
    if v.is_empty() {
        return Json::Null;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let med = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    json!({ "median": round3(med), "max": round3(s[s.len() - 1]), "min": round3(s[0]), "n": s.len() })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Samples {
    fn to_json(&self) -> Json {
        json!({
            "total_ms": stats(&self.total),
            "spec_ms": stats(&self.spec),
            "render_ms": stats(&self.render),
            "plan_ms": stats(&self.plan),
            "apply_ms": stats(&self.apply),
            "commands": stats(&self.commands),
        })
    }
}

/// The agent's state between changes.
struct Agent {
    spec: FirewallSpec,
    observed: Observed,
    verify: bool,
    /// Where to write the first script of each kind (`--dump`), and N.
    dump: Option<(std::path::PathBuf, usize)>,
}

impl Agent {
    /// One change: the spec built again with `change`, rendered, planned
    /// against what the last apply left, applied.
    fn step(
        &mut self,
        label: &str,
        samples: &mut Samples,
        change: impl FnOnce(&mut FirewallSpec, &mut Touched),
    ) -> Result<()> {
        let t0 = Instant::now();
        let mut spec = self.spec.clone();
        // The change names what it touched, as the agent's spec builder does.
        let mut touched = Touched::default();
        change(&mut spec, &mut touched);
        // What the agent does: the one `firewall::apply` (a change of a few
        // ports or members is planned from their elements alone and written
        // over netlink; anything structural is rendered and planned in full
        // and run through nft).
        let t1 = Instant::now();
        let applied = firewall::apply(Some(&self.spec), &spec, &mut self.observed, &touched)
            .map_err(|e| anyhow::anyhow!("apply: {e}"))?;
        let t4 = Instant::now();
        // Planning (delta, or render + plan) and writing, as apply timed them.
        let t2 = t1 + applied.planning;
        let t3 = t2;
        let p = applied.plan;
        self.spec = spec;
        samples.total.push(ms(t4 - t0));
        samples.spec.push(ms(t1 - t0));
        samples.render.push(ms(t2 - t1));
        samples.plan.push(ms(t3 - t2));
        samples.apply.push(ms(t4 - t3));
        samples.commands.push(p.commands as f64);
        if let (Some((dir, n)), true) = (&self.dump, samples.total.len() == 1) {
            std::fs::write(dir.join(format!("neutrino-{n}-{label}.nft")), &p.script)?;
        }
        self.check()
            .with_context(|| format!("after step {label} #{}", samples.total.len()))
    }

    fn check(&self) -> Result<()> {
        if !self.verify {
            return Ok(());
        }
        let observed = nft::observe().map_err(|e| anyhow::anyhow!("nft observe: {e}"))?;
        // The kernel holds what the agent believes it holds, and every set
        // and chain the spec needs (a delta leaves unused chains for the next
        // full plan to remove).
        if observed != self.observed {
            bail!("the kernel differs from what was applied");
        }
        let left = plan(&render(&self.spec), &observed);
        if left.elements != 0 || left.chains_written != 0 {
            bail!(
                "not converged after a step ({} commands left):\n{}",
                left.commands,
                left.script.lines().take(20).collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }
}

fn neutrino_size(
    w: &Workload,
    n: usize,
    repeats: usize,
    verify: bool,
    dump: Option<&std::path::Path>,
) -> Result<Json> {
    nft::remove_tables().map_err(|e| anyhow::anyhow!("nft remove tables: {e}"))?;
    let host = Host::first(w, n);
    let spec = spec_of(w, &host);

    // Full sync.
    // As the agent does on a host with none of its tables: render, then the
    // first load (`firewall::cold`: structure through nft, elements over
    // netlink, base chains last). The agent computes no plan for it; the
    // plan below (timed apart, not in the total) only sizes the script nft
    // alone would have had to parse.
    let t0 = Instant::now();
    let rs = render(&spec);
    let t1 = Instant::now();
    neutrino_dataplane::firewall::cold::load(&rs)
        .map_err(|e| anyhow::anyhow!("first load (full sync): {e}"))?;
    let t3 = Instant::now();
    // No plan is part of a first load.
    let t2 = t1;
    let p = plan(&rs, &Observed::default());
    if let Some(d) = dump {
        std::fs::write(d.join(format!("neutrino-{n}-full.nft")), &p.script)?;
    }
    let elements: usize = rs.sets.values().map(|s| s.elements.len()).sum();
    let full = json!({
        "total_ms": round3(ms(t3 - t0)),
        "render_ms": round3(ms(t1 - t0)),
        "plan_ms": round3(ms(t2 - t1)),
        "apply_ms": round3(ms(t3 - t2)),
        "commands": p.commands,
        "script_bytes": p.script.len(),
        "chains": rs.chains.len(),
        "sets": rs.sets.len(),
        "elements": elements,
    });
    eprintln!(
        "  full sync {:.1} ms (render {:.1}, plan {:.1}, nft {:.1}); {} commands, {} bytes",
        ms(t3 - t0),
        ms(t1 - t0),
        ms(t2 - t1),
        ms(t3 - t2),
        p.commands,
        p.script.len()
    );
    drop(p);
    let mut agent = Agent {
        spec,
        observed: Observed::from_ruleset(&rs),
        verify,
        dump: dump.map(|d| (d.to_path_buf(), n)),
    };
    drop(rs);
    agent.check()?;

    let (mut add, mut remove, mut join, mut leave) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let (mut rjoin, mut rleave) = (Samples::default(), Samples::default());
    for r in 0..repeats {
        let i = add_candidate(n, r);
        let gs = w.ports[i].groups.clone();
        agent.step("add", &mut add, |s, t| {
            t.ports.insert(w.ports[i].tap.clone());
            t.members.extend(gs.iter().map(|g| w.group_ids[*g].clone()));
            t.networks.insert(format!("net{}", w.ports[i].net));
            s.ports
                .insert(w.ports[i].tap.clone(), port_filter(w, i, &gs));
            for g in &gs {
                s.members
                    .entry(w.group_ids[*g].clone())
                    .or_default()
                    .extend(addrs(w, i));
            }
            s.network_addresses
                .entry(format!("net{}", w.ports[i].net))
                .or_default()
                .extend(addrs(w, i));
        })?;
        agent.step("remove", &mut remove, |s, t| {
            t.ports.insert(w.ports[i].tap.clone());
            t.members.extend(gs.iter().map(|g| w.group_ids[*g].clone()));
            t.networks.insert(format!("net{}", w.ports[i].net));
            s.ports.remove(&w.ports[i].tap);
            for g in &gs {
                let m = s.members.get_mut(&w.group_ids[*g]).expect("group");
                for a in addrs(w, i) {
                    m.remove(&a);
                }
            }
            if let Some(m) = s
                .network_addresses
                .get_mut(&format!("net{}", w.ports[i].net))
            {
                for a in addrs(w, i) {
                    m.remove(&a);
                }
            }
        })?;
        let (p, g) = join_candidate(w, &host, r);
        let gid = w.group_ids[g].clone();
        let tap = w.ports[p].tap.clone();
        agent.step("join", &mut join, |s, t| {
            t.ports.insert(tap.clone());
            t.members.insert(gid.clone());
            let pf = s.ports.get_mut(&tap).expect("port");
            pf.groups.push(gid.clone());
            pf.groups.sort();
            s.members
                .entry(gid.clone())
                .or_default()
                .extend(addrs(w, p));
        })?;
        agent.step("leave", &mut leave, |s, t| {
            t.ports.insert(tap.clone());
            t.members.insert(gid.clone());
            let pf = s.ports.get_mut(&tap).expect("port");
            pf.groups.retain(|x| *x != gid);
            let m = s.members.get_mut(&gid).expect("group");
            for a in addrs(w, p) {
                m.remove(&a);
            }
        })?;
        // A port on another host joins (leaves) a group: its addresses in
        // the group's sets are all this host changes (what `ipset add` is
        // for the peer).
        let ext = w.ports.len() - 1 - r;
        let gid = w.group_ids[(r * 13) % w.group_ids.len()].clone();
        agent.step("remote-join", &mut rjoin, |s, t| {
            t.members.insert(gid.clone());
            s.members
                .entry(gid.clone())
                .or_default()
                .extend(addrs(w, ext));
        })?;
        agent.step("remote-leave", &mut rleave, |s, t| {
            t.members.insert(gid.clone());
            let m = s.members.get_mut(&gid).expect("group");
            for a in addrs(w, ext) {
                m.remove(&a);
            }
        })?;
    }
    let summary = |name: &str, s: &Samples| {
        let j = s.to_json();
        eprintln!(
            "  {name}: median {} ms, max {} ms (nft {} ms median; spec {} render {} plan {})",
            j["total_ms"]["median"],
            j["total_ms"]["max"],
            j["apply_ms"]["median"],
            j["spec_ms"]["median"],
            j["render_ms"]["median"],
            j["plan_ms"]["median"]
        );
        j
    };
    let out = json!({
        "full_sync": full,
        "add": summary("add", &add),
        "remove": summary("remove", &remove),
        "member_join": summary("member join", &join),
        "member_leave": summary("member leave", &leave),
        "member_remote_join": summary("member join (remote port)", &rjoin),
        "member_remote_leave": summary("member leave (remote port)", &rleave),
    });
    nft::remove_tables().map_err(|e| anyhow::anyhow!("nft remove tables: {e}"))?;
    Ok(out)
}

// --------------------------------------------------------------------- peer --

#[derive(Clone, Copy)]
enum Backend {
    Legacy,
    Nft,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Legacy => "legacy",
            Backend::Nft => "nft",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Backend::Legacy => "iptables_legacy",
            Backend::Nft => "iptables_nft",
        }
    }

    fn tool(self, v6: bool, what: &str) -> String {
        format!(
            "{}-{}-{what}",
            if v6 { "ip6tables" } else { "iptables" },
            self.name()
        )
    }
}

const WRAP: &str = "neutron-linuxbri";

/// One table: built-in chains with their policy, then every chain's rules
/// (the text after `-A <chain> `), in order.
#[derive(Clone, Default, PartialEq)]
struct Table {
    builtin: Vec<(&'static str, &'static str)>,
    chains: BTreeMap<String, Vec<String>>,
}

/// One family: raw and filter, as the linuxbridge agent holds them.
#[derive(Clone, Default)]
struct Family {
    tables: Vec<(&'static str, Table)>,
}

impl Family {
    fn rules(&self) -> usize {
        self.tables
            .iter()
            .map(|(_, t)| t.chains.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// `iptables-restore` input for the whole of both tables.
    fn restore_text(&self) -> String {
        let mut s = String::new();
        for (name, t) in &self.tables {
            let _ = writeln!(s, "*{name}");
            for (c, policy) in &t.builtin {
                let _ = writeln!(s, ":{c} {policy} [0:0]");
            }
            for c in t.chains.keys() {
                if !t.builtin.iter().any(|(b, _)| b == c) {
                    let _ = writeln!(s, ":{c} - [0:0]");
                }
            }
            for (c, rules) in &t.chains {
                for r in rules {
                    let _ = writeln!(s, "-A {c} {r}");
                }
            }
            s.push_str("COMMIT\n");
        }
        s
    }

    /// `iptables-restore -n` input from `self` to `new`, as
    /// `iptables_manager._generate_path_between_rules` writes it: new chains
    /// declared, per chain the differing rules deleted (`-D chain i`) and
    /// inserted (`-I chain i rule`) by position, chains gone deleted (`-X`).
    fn diff(&self, new: &Family) -> String {
        let mut s = String::new();
        for ((name, old), (_, new)) in self.tables.iter().zip(&new.tables) {
            let mut body = Vec::new();
            for c in new.chains.keys() {
                if !old.chains.contains_key(c) {
                    body.push(format!(":{c} - [0:0]"));
                }
            }
            let names: BTreeSet<&String> = old.chains.keys().chain(new.chains.keys()).collect();
            // Neutron writes chains with "-sg-" in the name last.
            let (sg, other): (Vec<&String>, Vec<&String>) =
                names.iter().partition(|c| c.contains("-sg-"));
            let empty = Vec::new();
            for c in other.into_iter().chain(sg) {
                let a = old.chains.get(c).unwrap_or(&empty);
                let b = new.chains.get(c).unwrap_or(&empty);
                chain_diff(c, a, b, &mut body);
            }
            for c in old.chains.keys() {
                if !new.chains.contains_key(c) {
                    body.push(format!("-X {c}"));
                }
            }
            if !body.is_empty() {
                let _ = writeln!(s, "*{name}");
                for l in body {
                    s.push_str(&l);
                    s.push('\n');
                }
                s.push_str("COMMIT\n");
            }
        }
        s
    }
}

fn chain_diff(chain: &str, old: &[String], new: &[String], out: &mut Vec<String>) {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    let pos = prefix + 1;
    for _ in prefix..old.len() - suffix {
        out.push(format!("-D {chain} {pos}"));
    }
    for (k, r) in new[prefix..new.len() - suffix].iter().enumerate() {
        out.push(format!("-I {chain} {} {r}", pos + k));
    }
}

fn ipset_name(w: &Workload, g: usize, v6: bool) -> String {
    // IpsetManager.get_name: "N" + ethertype + sg id, cut to 29 characters.
    let n = format!("N{}{}", if v6 { "IPv6" } else { "IPv4" }, w.group_ids[g]);
    n[..29.min(n.len())].to_string()
}

fn proto_name(p: u8, v6: bool) -> String {
    match p {
        1 if v6 => "ipv6-icmp".into(),
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "ipv6-icmp".into(),
        132 => "sctp".into(),
        other => other.to_string(),
    }
}

/// A security group rule as `IptablesFirewallDriver` writes it (ipset on).
fn neutron_rule(w: &Workload, r: &Rule) -> Option<String> {
    let v6 = !r.ipv4;
    let mut a = Vec::new();
    if let Remote::Prefix(c) = &r.remote {
        if c.is_v4() == v6 {
            return None;
        }
        if c.prefix() != 0 {
            let flag = if r.direction == Direction::Ingress {
                "-s"
            } else {
                "-d"
            };
            let len = c.prefix();
            a.push(format!("{flag} {}/{len}", c.addr()));
        }
    }
    if let Some(p) = r.protocol {
        let name = proto_name(p, v6);
        a.push(format!("-p {name}"));
        if let Some(min) = r.port_range_min {
            let m = match name.as_str() {
                "ipv6-icmp" => "icmp6",
                n => n,
            };
            a.push(format!("-m {m}"));
            match name.as_str() {
                "icmp" | "ipv6-icmp" => {
                    let t = if name == "icmp" { "icmp" } else { "icmpv6" };
                    match r.port_range_max {
                        Some(code) => a.push(format!("--{t}-type {min}/{code}")),
                        None => a.push(format!("--{t}-type {min}")),
                    }
                }
                _ => match r.port_range_max {
                    Some(max) if max != min => a.push(format!("-m multiport --dports {min}:{max}")),
                    _ => a.push(format!("--dport {min}")),
                },
            }
        }
    }
    if let Remote::Group(gid) = &r.remote {
        let g = w.group_ids.iter().position(|x| x == gid)?;
        let dir = if r.direction == Direction::Ingress {
            "src"
        } else {
            "dst"
        };
        a.push(format!("-m set --match-set {} {dir}", ipset_name(w, g, v6)));
    }
    a.push("-j RETURN".into());
    Some(a.join(" "))
}

fn comment(rule: &str, c: &str) -> String {
    // iptables_manager.comment_rule puts the comment before the target.
    match rule.rfind(" -j ") {
        Some(k) => format!("{} -m comment --comment \"{c}\"{}", &rule[..k], &rule[k..]),
        None if rule.starts_with("-j ") => format!("-m comment --comment \"{c}\" {rule}"),
        None => rule.to_string(),
    }
}

/// Neutron's rules for the ports of `host`, one family.
fn neutron_family(w: &Workload, host: &Host, v6: bool, rule_cache: &[[Vec<String>; 2]]) -> Family {
    let chain = |s: &str| format!("{WRAP}-{s}");
    let physdev =
        |dir: &str, tap: &str| format!("-m physdev --physdev-{dir} {tap} --physdev-is-bridged");
    let mut raw = Table {
        builtin: vec![("PREROUTING", "ACCEPT"), ("OUTPUT", "ACCEPT")],
        chains: BTreeMap::new(),
    };
    raw.chains.insert(
        "PREROUTING".into(),
        vec![format!("-j {}", chain("PREROUTING"))],
    );
    raw.chains
        .insert("OUTPUT".into(), vec![format!("-j {}", chain("OUTPUT"))]);
    raw.chains.insert(chain("OUTPUT"), Vec::new());
    let mut raw_pre = Vec::new();

    let mut f = Table {
        builtin: vec![
            ("INPUT", "ACCEPT"),
            ("FORWARD", "ACCEPT"),
            ("OUTPUT", "ACCEPT"),
        ],
        chains: BTreeMap::new(),
    };
    for b in ["INPUT", "FORWARD", "OUTPUT"] {
        f.chains.insert(b.into(), vec![format!("-j {}", chain(b))]);
    }
    let mut fwd = Vec::new();
    let mut input = Vec::new();
    let mut sg = Vec::new();
    f.chains.insert(chain("OUTPUT"), Vec::new());
    f.chains.insert(
        chain("sg-fallback"),
        vec![comment(
            "-j DROP",
            "Default drop rule for unmatched traffic.",
        )],
    );
    let est = comment(
        "-m state --state RELATED,ESTABLISHED -j RETURN",
        "Direct packets associated with a known session to the RETURN chain.",
    );
    let invalid = comment(
        "-m state --state INVALID -j DROP",
        "Drop packets that appear related to an existing connection (e.g. TCP ACK/FIN) but do not have an entry in conntrack.",
    );
    let fallback = comment(
        &format!("-j {}", chain("sg-fallback")),
        "Send unmatched traffic to the fallback chain.",
    );
    let fam = usize::from(v6);
    // Ports sorted by device name (the driver sorts by port id).
    let mut ports: Vec<(&PortInfo, &Vec<usize>)> =
        host.ports.iter().map(|(&i, g)| (&w.ports[i], g)).collect();
    ports.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    for (p, groups) in ports {
        let dev = &p.tap;
        let ichain = chain(&format!("i{}", &p.id[..10]));
        let ochain = chain(&format!("o{}", &p.id[..10]));
        let schain = chain(&format!("s{}", &p.id[..10]));
        // Conntrack zone per network (linuxbridge: one zone per bridge).
        let brq = names::bridge(&format!("{:08x}-net", p.net));
        let zone = 4097 + p.net;
        let zc = format!("Set zone for {}", &dev[4..]);
        for m in [
            format!("-m physdev --physdev-in {brq}"),
            format!("-i {brq}"),
            format!("-m physdev --physdev-in {dev}"),
        ] {
            raw_pre.push(format!(
                "{m} -m comment --comment \"{zc}\" -j CT --zone {zone}"
            ));
        }
        // FORWARD (top rules), sg-chain, INPUT.
        for dir in ["out", "in"] {
            fwd.push(comment(
                &format!("{} -j {}", physdev(dir, dev), chain("sg-chain")),
                "Direct traffic from the VM interface to the security group chain.",
            ));
        }
        sg.push(comment(
            &format!("{} -j {ichain}", physdev("out", dev)),
            "Jump to the VM specific chain.",
        ));
        sg.push(comment(
            &format!("{} -j {ochain}", physdev("in", dev)),
            "Jump to the VM specific chain.",
        ));
        input.push(comment(
            &format!("{} -j {ochain}", physdev("in", dev)),
            "Direct incoming traffic from VM to the security group chain.",
        ));
        // Ingress.
        let mut i_rules = Vec::new();
        if v6 {
            for t in [130, 131, 132, 135, 136] {
                i_rules.push(format!("-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN"));
            }
        }
        let mut o_rules = Vec::new();
        let pair = "Allow traffic from defined IP/MAC pairs.";
        let mac = p.mac.to_string().to_uppercase();
        let mut s_rules = Vec::new();
        if v6 {
            for t in [131, 135, 143] {
                o_rules.push(comment(
                    &format!(
                        "-s ::/128 -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN"
                    ),
                    "Allow IPv6 ICMP traffic.",
                ));
            }
            let lla = link_local(&p.mac);
            s_rules.push(comment(
                &format!("-s {}/128 -m mac --mac-source {mac} -j RETURN", p.v6),
                pair,
            ));
            s_rules.push(comment(
                &format!("-s {lla}/128 -m mac --mac-source {mac} -j RETURN"),
                pair,
            ));
        } else {
            o_rules.push(comment(
                "-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN",
                "Allow DHCP client traffic.",
            ));
            s_rules.push(comment(
                &format!("-s {}/32 -m mac --mac-source {mac} -j RETURN", p.v4),
                pair,
            ));
        }
        s_rules.push(comment(
            "-j DROP",
            "Drop traffic without an IP/MAC allow rule.",
        ));
        o_rules.push(format!("-j {schain}"));
        if v6 {
            o_rules.push(comment(
                "-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j DROP",
                "Drop IPv6 Router Advts from VM Instance.",
            ));
            o_rules.push(comment(
                "-p ipv6-icmp -j RETURN",
                "Allow IPv6 ICMP traffic.",
            ));
            o_rules.push(comment(
                "-p udp -m udp --sport 546 --dport 547 -j RETURN",
                "Allow DHCP client traffic.",
            ));
            o_rules.push(comment(
                "-p udp -m udp --sport 547 --dport 546 -j DROP",
                "Prevent DHCP Spoofing by VM.",
            ));
        } else {
            o_rules.push(comment(
                "-p udp -m udp --sport 68 --dport 67 -j RETURN",
                "Allow DHCP client traffic.",
            ));
            o_rules.push(comment(
                "-p udp -m udp --sport 67 --dport 68 -j DROP",
                "Prevent DHCP Spoofing by VM.",
            ));
        }
        // Every rule of every group of the port, duplicates pruned.
        for (rules, dir) in [(&mut i_rules, 0usize), (&mut o_rules, 1usize)] {
            rules.push(est.clone());
            let mut seen = BTreeSet::new();
            for &g in groups {
                let cached = &rule_cache[g][fam];
                for r in cached
                    .iter()
                    .filter(|r| r.as_bytes()[0] == b'0' + dir as u8)
                {
                    let text = &r[1..];
                    if seen.insert(text) {
                        rules.push(text.to_string());
                    }
                }
            }
            rules.push(invalid.clone());
            rules.push(fallback.clone());
        }
        f.chains.insert(ichain, i_rules);
        f.chains.insert(ochain, o_rules);
        f.chains.insert(schain, s_rules);
    }
    sg.push("-j ACCEPT".into());
    f.chains.insert(chain("FORWARD"), fwd);
    f.chains.insert(chain("INPUT"), input);
    f.chains.insert(chain("sg-chain"), sg);
    raw.chains.insert(chain("PREROUTING"), raw_pre);
    Family {
        tables: vec![("raw", raw), ("filter", f)],
    }
}

/// Per group and family, its rules as Neutron text, each prefixed with '0'
/// (ingress) or '1' (egress).
fn rule_cache(w: &Workload) -> Vec<[Vec<String>; 2]> {
    w.rules
        .iter()
        .map(|rules| {
            let mut out: [Vec<String>; 2] = [Vec::new(), Vec::new()];
            for r in rules {
                if let Some(t) = neutron_rule(w, r) {
                    let d = if r.direction == Direction::Ingress {
                        '0'
                    } else {
                        '1'
                    };
                    out[usize::from(!r.ipv4)].push(format!("{d}{t}"));
                }
            }
            out
        })
        .collect()
}

fn ipset_restore_text(w: &Workload, host: &Host) -> String {
    let members = host.members();
    let mut s = String::new();
    for g in 0..w.group_ids.len() {
        for v6 in [false, true] {
            let name = ipset_name(w, g, v6);
            let fam = if v6 { "inet6" } else { "inet" };
            let _ = writeln!(s, "create {name} hash:net family {fam}");
            for &p in members.get(&g).into_iter().flatten() {
                let port = &w.ports[p];
                if v6 {
                    let _ = writeln!(s, "add {name} {}/128", port.v6);
                } else {
                    let _ = writeln!(s, "add {name} {}/32", port.v4);
                }
            }
        }
    }
    s
}

struct Peer<'a> {
    w: &'a Workload,
    b: Backend,
    cache: Vec<[Vec<String>; 2]>,
    fams: [Family; 2],
    dump: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct PeerSamples {
    total: Vec<f64>,
    save: Vec<f64>,
    restore: Vec<f64>,
    ipset: Vec<f64>,
    lines: Vec<f64>,
}

impl PeerSamples {
    fn to_json(&self) -> Json {
        json!({
            "total_ms": stats(&self.total),
            "save_ms": stats(&self.save),
            "restore_ms": stats(&self.restore),
            "ipset_ms": stats(&self.ipset),
            "restore_lines": stats(&self.lines),
        })
    }
}

impl Peer<'_> {
    /// What `IptablesManager.apply` runs for a change, both families:
    /// `iptables-save`, then `iptables-restore -n` with the difference.
    fn apply_change(
        &mut self,
        label: &str,
        host: &Host,
        s: &mut PeerSamples,
        ipset: &[Vec<&str>],
    ) -> Result<()> {
        let new = [
            neutron_family(self.w, host, false, &self.cache),
            neutron_family(self.w, host, true, &self.cache),
        ];
        let diffs = [self.fams[0].diff(&new[0]), self.fams[1].diff(&new[1])];
        if let (Some(dir), true) = (&self.dump, s.total.is_empty()) {
            let n = host.ports.len();
            let b = self.b.name();
            std::fs::write(dir.join(format!("neutron-{b}-{n}-{label}.v4")), &diffs[0])?;
            std::fs::write(dir.join(format!("neutron-{b}-{n}-{label}.v6")), &diffs[1])?;
        }
        let mut save = Duration::ZERO;
        let mut restore = Duration::ZERO;
        let mut ips = Duration::ZERO;
        let t0 = Instant::now();
        for cmd in ipset {
            ips += run("ipset", cmd, None)?.0;
        }
        for (k, d) in diffs.iter().enumerate() {
            let v6 = k == 1;
            save += run(&self.b.tool(v6, "save"), &[], None)?.0;
            if !d.is_empty() {
                restore += run(&self.b.tool(v6, "restore"), &["-n"], Some(d))?.0;
            }
        }
        s.total.push(ms(t0.elapsed()));
        s.save.push(ms(save));
        s.restore.push(ms(restore));
        s.ipset.push(ms(ips));
        s.lines
            .push(diffs.iter().map(|d| d.lines().count()).sum::<usize>() as f64);
        self.fams = new;
        Ok(())
    }

    /// Number of rules the kernel holds (both families), from `-save`.
    fn kernel_rules(&self) -> Result<[usize; 2]> {
        let mut out = [0; 2];
        for (k, v6) in [false, true].into_iter().enumerate() {
            let (_, text) = run(&self.b.tool(v6, "save"), &[], None)?;
            out[k] = text.lines().filter(|l| l.starts_with("-A ")).count();
        }
        Ok(out)
    }

    fn check(&self) -> Result<()> {
        let want = [self.fams[0].rules(), self.fams[1].rules()];
        let have = self.kernel_rules()?;
        if want != have {
            bail!(
                "iptables ({}) holds {have:?} rules, expected {want:?}",
                self.b.name()
            );
        }
        Ok(())
    }
}

fn peer_clean(b: Backend) -> Result<()> {
    match b {
        Backend::Legacy => {
            // A restore without -n flushes the tables and deletes their chains.
            for v6 in [false, true] {
                let empty = "*raw\nCOMMIT\n*filter\nCOMMIT\n";
                run(&b.tool(v6, "restore"), &[], Some(empty))?;
            }
        }
        Backend::Nft => {
            // Our own namespace: Neutrino's tables are gone already.
            run("nft", &["flush", "ruleset"], None)?;
        }
    }
    run("ipset", &["destroy"], None)?;
    Ok(())
}

fn peer_size(
    w: &Workload,
    n: usize,
    repeats: usize,
    b: Backend,
    dump: Option<&std::path::Path>,
) -> Result<Json> {
    peer_clean(b)?;
    let host = Host::first(w, n);
    let cache = rule_cache(w);
    let fams = [
        neutron_family(w, &host, false, &cache),
        neutron_family(w, &host, true, &cache),
    ];
    let sets = ipset_restore_text(w, &host);
    let texts = [fams[0].restore_text(), fams[1].restore_text()];

    if let Some(d) = dump {
        std::fs::write(d.join(format!("neutron-{n}-ipset.txt")), &sets)?;
        std::fs::write(d.join(format!("neutron-{n}-iptables.txt")), &texts[0])?;
        std::fs::write(d.join(format!("neutron-{n}-ip6tables.txt")), &texts[1])?;
    }
    let (t_ipset, _) = run("ipset", &["restore"], Some(&sets))?;
    let (t4, _) = run(&b.tool(false, "restore"), &[], Some(&texts[0]))?;
    let (t6, _) = run(&b.tool(true, "restore"), &[], Some(&texts[1]))?;
    let total = t_ipset + t4 + t6;
    let full = json!({
        "total_ms": round3(ms(total)),
        "ipset_ms": round3(ms(t_ipset)),
        "iptables_ms": round3(ms(t4)),
        "ip6tables_ms": round3(ms(t6)),
        "rules_v4": fams[0].rules(),
        "rules_v6": fams[1].rules(),
        "bytes": texts[0].len() + texts[1].len() + sets.len(),
        "ipsets": 2 * w.group_ids.len(),
    });
    eprintln!(
        "  full sync {:.1} ms (ipset {:.1}, iptables {:.1}, ip6tables {:.1}); {} + {} rules",
        ms(total),
        ms(t_ipset),
        ms(t4),
        ms(t6),
        fams[0].rules(),
        fams[1].rules()
    );
    drop(texts);
    drop(sets);
    let mut peer = Peer {
        w,
        b,
        cache,
        fams,
        dump: dump.map(std::path::Path::to_path_buf),
    };
    peer.check()?;
    // The same "save" Neutron reads before each change, for reference.
    let (t_save4, _) = run(&b.tool(false, "save"), &[], None)?;

    let (mut add, mut remove, mut join_local, mut leave_local) = (
        PeerSamples::default(),
        PeerSamples::default(),
        PeerSamples::default(),
        PeerSamples::default(),
    );
    let mut join = Vec::new();
    let mut leave = Vec::new();
    let mut h = host.clone();
    for r in 0..repeats {
        let i = add_candidate(n, r);
        let p = &w.ports[i];
        let v4 = format!("{}/32", p.v4);
        let v6 = format!("{}/128", p.v6);
        // A new port: its members join its groups' sets, its chains come in.
        let names: Vec<(String, String)> = p
            .groups
            .iter()
            .map(|&g| (ipset_name(w, g, false), ipset_name(w, g, true)))
            .collect();
        let adds: Vec<Vec<&str>> = names
            .iter()
            .flat_map(|(n4, n6)| {
                [
                    vec!["add", "-exist", n4.as_str(), v4.as_str()],
                    vec!["add", "-exist", n6.as_str(), v6.as_str()],
                ]
            })
            .collect();
        h.ports.insert(i, p.groups.clone());
        peer.apply_change("add", &h, &mut add, &adds)?;
        let dels: Vec<Vec<&str>> = names
            .iter()
            .flat_map(|(n4, n6)| {
                [
                    vec!["del", n4.as_str(), v4.as_str()],
                    vec!["del", n6.as_str(), v6.as_str()],
                ]
            })
            .collect();
        h.ports.remove(&i);
        peer.apply_change("remove", &h, &mut remove, &dels)?;

        // Membership: one address per family into the group's sets.
        let (p, g) = join_candidate(w, &h, r);
        let port = &w.ports[p];
        let (n4, n6) = (ipset_name(w, g, false), ipset_name(w, g, true));
        let (a4, a6) = (format!("{}/32", port.v4), format!("{}/128", port.v6));
        let t0 = Instant::now();
        run("ipset", &["add", "-exist", &n4, &a4], None)?;
        run("ipset", &["add", "-exist", &n6, &a6], None)?;
        join.push(ms(t0.elapsed()));
        let t0 = Instant::now();
        run("ipset", &["del", &n4, &a4], None)?;
        run("ipset", &["del", &n6, &a6], None)?;
        leave.push(ms(t0.elapsed()));
        // The same join seen by the port's own host: ipset and the port's chains.
        let mut gs = h.ports[&p].clone();
        gs.push(g);
        gs.sort_unstable();
        h.ports.insert(p, gs);
        let adds = [
            vec!["add", "-exist", n4.as_str(), a4.as_str()],
            vec!["add", "-exist", n6.as_str(), a6.as_str()],
        ];
        peer.apply_change("join", &h, &mut join_local, &adds)?;
        h.ports.get_mut(&p).expect("port").retain(|x| *x != g);
        let dels = [
            vec!["del", n4.as_str(), a4.as_str()],
            vec!["del", n6.as_str(), a6.as_str()],
        ];
        peer.apply_change("leave", &h, &mut leave_local, &dels)?;
        if r == 0 || r + 1 == repeats {
            peer.check()?;
        }
    }
    let summary = |name: &str, s: &PeerSamples| {
        let j = s.to_json();
        eprintln!(
            "  {name}: median {} ms, max {} ms (save {} ms, restore -n {} ms, ipset {} ms median; {} restore lines)",
            j["total_ms"]["median"],
            j["total_ms"]["max"],
            j["save_ms"]["median"],
            j["restore_ms"]["median"],
            j["ipset_ms"]["median"],
            j["restore_lines"]["median"]
        );
        j
    };
    let out = json!({
        "full_sync": full,
        "save_v4_ms": round3(ms(t_save4)),
        "add": summary("add", &add),
        "remove": summary("remove", &remove),
        "member_ipset": json!({ "total_ms": stats(&join) }),
        "member_ipset_del": json!({ "total_ms": stats(&leave) }),
        "member_local_join": summary("member join (local port)", &join_local),
        "member_local_leave": summary("member leave (local port)", &leave_local),
    });
    let j = stats(&join);
    eprintln!(
        "  member (ipset add x2): median {} ms, max {} ms",
        j["median"], j["max"]
    );
    peer_clean(b)?;
    Ok(out)
}

// ---------------------------------------------------------------- processes --

/// Runs a command (stdin from `input`), returns its wall time and stdout.
fn run(cmd: &str, args: &[&str], input: Option<&str>) -> Result<(Duration, String)> {
    let t0 = Instant::now();
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .with_context(|| format!("writing to {cmd}"))?;
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    let res = child.wait_with_output()?;
    let d = t0.elapsed();
    if !res.status.success() {
        let err = String::from_utf8_lossy(&res.stderr);
        bail!("{cmd} {} failed: {}", args.join(" "), err.trim());
    }
    Ok((d, out))
}

fn run_quiet(cmd: &str, args: &[&str]) -> Result<()> {
    run(cmd, args, None).map(|_| ())
}

fn which(tool: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(tool).is_file());
    if !found {
        bail!("{tool} not found (apt-get install -y nftables iptables ipset)");
    }
    Ok(())
}

// ------------------------------------------------------------------- output --

fn cell(j: &Json) -> String {
    match (j["median"].as_f64(), j["max"].as_f64()) {
        (Some(m), Some(x)) => format!("{} ({})", fmt_ms(m), fmt_ms(x)),
        _ => "-".into(),
    }
}

fn fmt_ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn print_table(out: &Json) {
    let sizes = out["sizes"].as_array().cloned().unwrap_or_default();
    let peers: Vec<(&str, &str)> = [
        ("iptables_legacy", "iptables-legacy"),
        ("iptables_nft", "iptables-nft"),
    ]
    .into_iter()
    .filter(|(k, _)| sizes.iter().any(|s| !s[*k].is_null()))
    .collect();
    println!(
        "Firewall programming, one host: {} groups x {} rules; change steps: median (max) of {} repeats (iptables-legacy {}, iptables-nft {}), ms",
        out["groups"],
        out["rules_per_group"],
        out["repeats"],
        out["peer_repeats"],
        out["peer_nft_repeats"]
    );
    println!();
    println!("Full sync, ms:");
    let mut head = "| N | neutrino total (nft apply) | neutrino script |".to_string();
    for (_, name) in &peers {
        let _ = write!(
            head,
            " neutron {name} total (ipset / v4 / v6) | {name} rules v4+v6 |"
        );
    }
    println!("{head}");
    println!("{}", "|---".repeat(head.matches(" |").count()) + "|");
    for s in &sizes {
        let f = &s["neutrino"]["full_sync"];
        let mut row = format!(
            "| {} | {} ({}) | {} cmds, {:.1} MB |",
            s["ports"],
            fmt_ms(f["total_ms"].as_f64().unwrap_or(0.0)),
            fmt_ms(f["apply_ms"].as_f64().unwrap_or(0.0)),
            f["commands"],
            f["script_bytes"].as_f64().unwrap_or(0.0) / 1e6
        );
        for (k, _) in &peers {
            let p = &s[*k]["full_sync"];
            let _ = write!(
                row,
                " {} ({} / {} / {}) | {} |",
                fmt_ms(p["total_ms"].as_f64().unwrap_or(0.0)),
                fmt_ms(p["ipset_ms"].as_f64().unwrap_or(0.0)),
                fmt_ms(p["iptables_ms"].as_f64().unwrap_or(0.0)),
                fmt_ms(p["ip6tables_ms"].as_f64().unwrap_or(0.0)),
                p["rules_v4"].as_u64().unwrap_or(0) + p["rules_v6"].as_u64().unwrap_or(0)
            );
        }
        println!("{row}");
    }
    println!();
    println!("One change, whole step (nft apply median in brackets for neutrino), ms:");
    let mut head = "| N | neutrino add | neutrino remove | neutrino member, local port | neutrino member, remote port |"
        .to_string();
    for (_, name) in &peers {
        let _ = write!(
            head,
            " {name} add | {name} remove | {name} member, local port |"
        );
    }
    if !peers.is_empty() {
        head.push_str(" ipset member (remote hosts) |");
    }
    println!("{head}");
    println!("{}", "|---".repeat(head.matches(" |").count()) + "|");
    for s in &sizes {
        let n = &s["neutrino"];
        let nc = |k: &str| match n[k]["apply_ms"]["median"].as_f64() {
            Some(a) => format!("{} [{}]", cell(&n[k]["total_ms"]), fmt_ms(a)),
            None => "-".into(),
        };
        let mut row = format!(
            "| {} | {} | {} | {} | {} |",
            s["ports"],
            nc("add"),
            nc("remove"),
            nc("member_join"),
            nc("member_remote_join")
        );
        for (k, _) in &peers {
            let p = &s[*k];
            let _ = write!(
                row,
                " {} | {} | {} |",
                cell(&p["add"]["total_ms"]),
                cell(&p["remove"]["total_ms"]),
                cell(&p["member_local_join"]["total_ms"])
            );
        }
        if let Some((k, _)) = peers.first() {
            let _ = write!(row, " {} |", cell(&s[*k]["member_ipset"]["total_ms"]));
        }
        println!("{row}");
    }
    println!();
    println!(
        "Where neutrino's change time goes (median ms: spec clone / plan (delta, else render+plan) / - / kernel write):"
    );
    for s in &sizes {
        let n = &s["neutrino"];
        let part = |k: &str| {
            let st = &n[k];
            format!(
                "{} / {} / {} / {}",
                fmt_ms(st["spec_ms"]["median"].as_f64().unwrap_or(0.0)),
                fmt_ms(st["render_ms"]["median"].as_f64().unwrap_or(0.0)),
                fmt_ms(st["plan_ms"]["median"].as_f64().unwrap_or(0.0)),
                fmt_ms(st["apply_ms"]["median"].as_f64().unwrap_or(0.0))
            )
        };
        let f = &n["full_sync"];
        println!(
            "  N={}: add {} | remove {} | member local {} | member remote {} | full sync render {} plan {} nft {}",
            s["ports"],
            part("add"),
            part("remove"),
            part("member_join"),
            part("member_remote_join"),
            fmt_ms(f["render_ms"].as_f64().unwrap_or(0.0)),
            fmt_ms(f["plan_ms"].as_f64().unwrap_or(0.0)),
            fmt_ms(f["apply_ms"].as_f64().unwrap_or(0.0))
        );
    }
    for (k, name) in &peers {
        println!("Where {name}'s change time goes (median ms: save x2 / restore -n x2 / ipset):");
        for s in &sizes {
            let p = &s[*k];
            let part = |k: &str| {
                let st = &p[k];
                format!(
                    "{} / {} / {}",
                    fmt_ms(st["save_ms"]["median"].as_f64().unwrap_or(0.0)),
                    fmt_ms(st["restore_ms"]["median"].as_f64().unwrap_or(0.0)),
                    fmt_ms(st["ipset_ms"]["median"].as_f64().unwrap_or(0.0))
                )
            };
            println!(
                "  N={}: add {} | remove {}",
                s["ports"],
                part("add"),
                part("remove")
            );
        }
    }
    println!();
    println!(
        "run time {:.0} s",
        out["run_seconds"].as_f64().unwrap_or(0.0)
    );
}
