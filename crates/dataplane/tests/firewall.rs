//! Kernel tests of the firewall (root): every rendered rule must load into
//! real nftables, read back as converged, and take incremental changes.
//! Each test unshares a fresh network namespace for its thread; `nft` runs
//! as a child and inherits it.

use std::collections::BTreeSet;

use neutrino_dataplane::firewall::{
    Cidr, Direction, FirewallSpec, GroupFilter, PortFilter, Remote, Rule, nfnl, nft, plan, render,
};
use nix::sched::{CloneFlags, unshare};

fn setup() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: needs root (network namespaces)");
        return false;
    }
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    // A bridge must exist in the namespace for the br_netfilter switches.
    let ok = std::process::Command::new("ip")
        .args(["link", "add", "fwt0", "type", "bridge"])
        .status()
        .expect("ip")
        .success();
    assert!(ok);
    nft::enable_bridge_netfilter().expect("br_netfilter sysctls");
    true
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

fn spec(n: u32, allow_same_net: bool) -> FirewallSpec {
    let mut s = FirewallSpec {
        allow_same_net_traffic: allow_same_net,
        ..FirewallSpec::default()
    };
    let cidr = |t: &str| Cidr::parse_host_or_network(t).unwrap();
    for g in 0..4 {
        let gid = format!("5e{g}c0000-0000-4000-8000-00000000000{g}");
        let rules = vec![
            rule(
                Direction::Ingress,
                true,
                None,
                None,
                Remote::Group(gid.clone()),
            ),
            rule(
                Direction::Ingress,
                false,
                None,
                None,
                Remote::Group(gid.clone()),
            ),
            rule(
                Direction::Ingress,
                true,
                Some(6),
                Some((22, 22)),
                Remote::Prefix(cidr("192.0.2.0/24")),
            ),
            rule(
                Direction::Ingress,
                true,
                Some(17),
                Some((1000, 2000)),
                Remote::Any,
            ),
            rule(Direction::Ingress, true, Some(1), Some((8, 0)), Remote::Any),
            rule(
                Direction::Ingress,
                false,
                Some(58),
                Some((128, 0)),
                Remote::Prefix(cidr("2001:db8::/32")),
            ),
            rule(Direction::Ingress, true, Some(132), None, Remote::Any),
            rule(Direction::Ingress, true, Some(47), None, Remote::Any),
            rule(Direction::Egress, true, None, None, Remote::Any),
            rule(Direction::Egress, false, None, None, Remote::Any),
        ];
        s.groups.insert(gid, GroupFilter { rules });
    }
    let gids: Vec<String> = s.groups.keys().cloned().collect();
    for i in 1..=n {
        let b = i.to_be_bytes();
        let mac = neutrino_dataplane::Mac::new([0xfa, 0x16, 0x3e, 0, b[2], b[3]]);
        let v4 = cidr(&format!("10.0.{}.{}", i >> 8, i & 255));
        let v6 = cidr(&format!("2001:db8::{i:x}"));
        let mut groups = vec![gids[i as usize % 4].clone()];
        if i % 3 == 0 {
            groups.push(gids[(i as usize + 1) % 4].clone());
            groups.sort();
        }
        let mut sources = BTreeSet::from([(mac, v4), (mac, v6)]);
        if i % 10 == 0 {
            // An allowed address pair with its own MAC and a CIDR.
            sources.insert((
                neutrino_dataplane::Mac::new([0x02, 0, 0, 0, 0, b[3]]),
                cidr(&format!("172.16.{}.0/24", i % 250)),
            ));
        }
        let macs = sources.iter().map(|(m, _)| *m).collect();
        for g in &groups {
            let m = s.members.entry(g.clone()).or_default();
            m.insert(v4);
            m.insert(v6);
        }
        s.network_addresses
            .entry(format!("net{}", i % 2))
            .or_default()
            .insert(v4);
        s.ports.insert(
            format!("tap{i:08x}"),
            PortFilter {
                mark: i,
                network_id: format!("net{}", i % 2),
                sources,
                macs,
                groups,
            },
        );
    }
    s
}

fn converge(s: &FirewallSpec) -> usize {
    let rs = render(s);
    let observed = nft::observe().expect("observe");
    let p = plan(&rs, &observed);
    nft::apply(&p.script).unwrap_or_else(|e| panic!("{e}\n{}", p.script));
    p.commands
}

fn assert_converged(s: &FirewallSpec) {
    let left = plan(&render(s), &nft::observe().expect("observe"));
    assert!(left.is_empty(), "not converged:\n{}", left.script);
}

#[test]
fn full_ruleset_loads_and_reads_back_converged() {
    if !setup() {
        return;
    }
    for allow in [true, false] {
        let s = spec(300, allow);
        assert!(converge(&s) > 0);
        assert_converged(&s);
    }
    nft::remove_tables().expect("remove");
    assert!(nft::observe().unwrap().tables.is_empty());
}

#[test]
fn incremental_changes_apply_and_converge() {
    if !setup() {
        return;
    }
    let mut s = spec(100, true);
    converge(&s);
    // A port leaves, another comes, a group gains a rule and a member.
    s.ports.remove("tap00000005");
    let mut p = s.ports["tap00000006"].clone();
    p.mark = 1000;
    s.ports.insert("tapnew".into(), p);
    let g = s.groups.keys().next().unwrap().clone();
    s.groups.get_mut(&g).unwrap().rules.push(rule(
        Direction::Egress,
        true,
        Some(6),
        Some((443, 443)),
        Remote::Prefix(Cidr::parse_host_or_network("198.51.100.0/24").unwrap()),
    ));
    s.members
        .get_mut(&g)
        .unwrap()
        .insert(Cidr::parse_host_or_network("10.200.0.1").unwrap());
    // A port's mark changes: the map value is replaced in one transaction.
    s.ports.get_mut("tap00000007").unwrap().mark = 2000;
    assert!(converge(&s) > 0);
    assert_converged(&s);
    // Port changes and a membership written over netlink (what the agent
    // does for a change of a few ports), then read back by nft.
    let before = s.clone();
    s.ports.remove("tap00000010");
    let mut p = s.ports["tap00000011"].clone();
    p.mark = 3000;
    p.sources.insert((
        p.macs.iter().next().copied().unwrap(),
        Cidr::parse_host_or_network("10.250.0.9").unwrap(),
    ));
    s.ports.insert("tapnl".into(), p);
    s.members
        .get_mut(&g)
        .unwrap()
        .insert(Cidr::parse_host_or_network("10.200.0.2").unwrap());
    let observed = nft::observe().unwrap();
    let mut after = observed.clone();
    let touched = neutrino_dataplane::firewall::Touched::between(&before, &s);
    let delta = neutrino_dataplane::firewall::plan_delta(&before, &s, &observed, &touched)
        .expect("a delta");
    after.apply_elements(&delta.element_ops);
    assert!(nfnl::writable(&delta.element_ops));
    nfnl::apply_elements(&delta.element_ops).expect("netlink batch");
    assert_converged(&s);
    assert_eq!(after, nft::observe().unwrap());
    // Deleting what is not there fails the whole batch: nothing changes.
    let bad = vec![
        nfnl::ElemOp {
            add: true,
            family: neutrino_dataplane::firewall::Family::Bridge,
            set: "port_macs".into(),
            elem: neutrino_dataplane::firewall::Elem::key(vec![
                neutrino_dataplane::firewall::Part::Ifname("tapzz".into()),
                neutrino_dataplane::firewall::Part::Mac(neutrino_dataplane::Mac::new([
                    2, 0, 0, 0, 0, 1,
                ])),
            ]),
        },
        nfnl::ElemOp {
            add: false,
            family: neutrino_dataplane::firewall::Family::Bridge,
            set: "port_macs".into(),
            elem: neutrino_dataplane::firewall::Elem::key(vec![
                neutrino_dataplane::firewall::Part::Ifname("tapnothere".into()),
                neutrino_dataplane::firewall::Part::Mac(neutrino_dataplane::Mac::new([
                    2, 0, 0, 0, 0, 2,
                ])),
            ]),
        },
    ];
    assert!(nfnl::apply_elements(&bad).is_err());
    assert_converged(&s);
    // Isolation on, then off again: chains are rewritten and removed.
    s.allow_same_net_traffic = false;
    converge(&s);
    assert_converged(&s);
    s.allow_same_net_traffic = true;
    converge(&s);
    assert_converged(&s);
    let o = nft::observe().unwrap();
    assert!(
        !o.chains.keys().any(|(_, n)| n.ends_with("-is")),
        "{:?}",
        o.chains.keys()
    );
    // Every port gone: group chains and sets go, base chains stay.
    s.ports.clear();
    converge(&s);
    assert_converged(&s);
    let o = nft::observe().unwrap();
    assert!(!o.chains.keys().any(|(_, n)| n.starts_with("sg-")));
}
