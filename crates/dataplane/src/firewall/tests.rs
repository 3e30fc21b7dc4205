use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::model::Mac;

fn mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac::new([0xfa, 0x16, b[0], b[1], b[2], b[3]])
}

fn rule(
    direction: Direction,
    protocol: Option<u8>,
    ports: Option<(u32, u32)>,
    remote: Remote,
) -> Rule {
    Rule {
        direction,
        ipv4: true,
        protocol,
        port_range_min: ports.map(|p| p.0),
        port_range_max: ports.map(|p| p.1),
        remote,
    }
}

/// `n` ports over `groups` groups, each group with a remote-group rule and
/// a TCP rule; every port a member of its group.
fn spec(n: u32, groups: u32) -> FirewallSpec {
    let mut s = FirewallSpec {
        allow_same_net_traffic: true,
        ..FirewallSpec::default()
    };
    for g in 0..groups {
        let gid = format!("g{g}");
        s.groups.insert(
            gid.clone(),
            GroupFilter {
                rules: vec![
                    rule(Direction::Ingress, None, None, Remote::Group(gid.clone())),
                    rule(
                        Direction::Ingress,
                        Some(6),
                        Some((22, 22)),
                        Remote::Prefix(Cidr::parse_host_or_network("192.0.2.0/24").unwrap()),
                    ),
                    rule(Direction::Egress, None, None, Remote::Any),
                ],
            },
        );
    }
    for i in 1..=n {
        add_port(&mut s, i, groups);
    }
    s
}

fn add_port(s: &mut FirewallSpec, i: u32, groups: u32) {
    let gid = format!("g{}", i % groups);
    let ip = Cidr::parse_host_or_network(&format!(
        "10.{}.{}.{}",
        i >> 16 & 255,
        i >> 8 & 255,
        i & 255
    ))
    .unwrap();
    s.ports.insert(
        format!("tap{i:08}"),
        PortFilter {
            mark: i,
            network_id: "net".into(),
            sources: BTreeSet::from([(mac(i), ip)]),
            macs: BTreeSet::from([mac(i)]),
            groups: vec![gid.clone()],
        },
    );
    s.members.entry(gid).or_default().insert(ip);
}

#[test]
fn a_converged_host_gets_an_empty_plan() {
    let rs = render(&spec(50, 5));
    let first = plan(&rs, &Observed::default());
    assert!(
        first
            .script
            .starts_with("add table bridge neutrino\nadd table inet neutrino\n")
    );
    assert!(first.chains_written > 0);
    let again = plan(&rs, &Observed::from_ruleset(&rs));
    assert!(again.is_empty(), "{}", again.script);
}

#[test]
fn adding_a_port_costs_the_same_on_a_small_and_a_big_host() {
    for n in [10, 1000] {
        let before = spec(n, 5);
        let mut after = before.clone();
        add_port(&mut after, n + 1, 5);
        let p = plan(&render(&after), &Observed::from_ruleset(&render(&before)));
        // ports, port_macs, port_src4, port_src6 and port_nd6 (link-local),
        // ingress, egress, and the group's member set: one element each.
        assert_eq!(p.elements, 8, "{}", p.script);
        assert_eq!(p.chains_written, 0, "{}", p.script);
        assert_eq!(p.commands, 8);
    }
}

#[test]
fn removing_a_port_deletes_only_its_elements() {
    let before = spec(100, 5);
    let mut after = before.clone();
    after.ports.remove("tap00000042");
    after
        .members
        .get_mut("g2")
        .unwrap()
        .remove(&Cidr::parse_host_or_network("10.0.0.42").unwrap());
    let p = plan(&render(&after), &Observed::from_ruleset(&render(&before)));
    assert_eq!(p.elements, 8, "{}", p.script);
    assert!(
        p.script.lines().all(|l| l.starts_with("delete element")),
        "{}",
        p.script
    );
}

#[test]
fn a_new_remote_group_member_is_one_element() {
    let before = spec(100, 5);
    let mut after = before.clone();
    after
        .members
        .get_mut("g1")
        .unwrap()
        .insert(Cidr::parse_host_or_network("10.9.9.9").unwrap());
    let p = plan(&render(&after), &Observed::from_ruleset(&render(&before)));
    assert_eq!(p.script, "add element inet neutrino g4-g1 { 10.9.9.9 }\n");
}

#[test]
fn a_rule_change_rewrites_only_its_group_chain() {
    let before = spec(100, 5);
    let mut after = before.clone();
    after.groups.get_mut("g3").unwrap().rules.push(rule(
        Direction::Ingress,
        Some(17),
        Some((53, 53)),
        Remote::Any,
    ));
    let p = plan(&render(&after), &Observed::from_ruleset(&render(&before)));
    assert_eq!(p.chains_written, 1);
    assert!(
        p.script.starts_with("flush chain inet neutrino sg-g3-i\n"),
        "{}",
        p.script
    );
    assert!(
        p.script
            .contains("meta nfproto ipv4 meta l4proto 17 th dport 53 accept")
    );
}

#[test]
fn unused_groups_and_combinations_are_removed() {
    let before = spec(10, 5);
    let mut after = before.clone();
    after.ports = after
        .ports
        .into_iter()
        .filter(|(_, p)| p.groups[0] != "g4")
        .collect();
    let p = plan(&render(&after), &Observed::from_ruleset(&render(&before)));
    let deleted: Vec<&str> = p
        .script
        .lines()
        .filter(|l| l.starts_with("delete chain") || l.starts_with("delete set"))
        .collect();
    assert!(
        deleted.contains(&"delete chain inet neutrino sg-g4-i"),
        "{}",
        p.script
    );
    assert!(
        deleted.contains(&"delete set inet neutrino g4-g4"),
        "{}",
        p.script
    );
    // Emptied before deleted: a combination chain jumps to group chains.
    let first_delete = p.script.find("delete chain").unwrap();
    assert!(
        p.script[first_delete..]
            .lines()
            .all(|l| !l.starts_with("flush"))
    );
}

#[test]
fn isolation_drops_same_network_sources_before_own_group_rules() {
    let mut s = spec(3, 1);
    s.allow_same_net_traffic = false;
    s.network_addresses.insert(
        "net".into(),
        imbl::OrdSet::from(vec![
            Cidr::parse_host_or_network("10.0.0.1").unwrap(),
            Cidr::parse_host_or_network("10.0.0.2").unwrap(),
        ]),
    );
    let rs = render(&s);
    let combo = rs
        .chains
        .iter()
        .find(|((_, n), _)| n.starts_with("pi-"))
        .map(|(_, c)| c.rules.clone())
        .unwrap();
    assert_eq!(
        combo,
        vec![
            "jump sg-g0-i",
            "ip saddr @n4-net drop",
            "ip6 saddr @n6-net drop",
            "jump sg-g0-is",
            "drop"
        ]
    );
    let own = &rs.chains[&(Family::Inet, "sg-g0-is".to_string())].rules;
    assert_eq!(own, &vec!["ip saddr @g4-g0 accept".to_string()]);
}

#[test]
fn rule_texts() {
    let r = |d, p, ports, remote| rule_text(&rule(d, p, ports, remote));
    assert_eq!(
        r(
            Direction::Ingress,
            Some(6),
            Some((22, 22)),
            Remote::Prefix(Cidr::parse_host_or_network("10.1.2.3/8").unwrap())
        )
        .unwrap(),
        "ip saddr 10.0.0.0/8 meta l4proto 6 th dport 22 accept"
    );
    assert_eq!(
        r(
            Direction::Egress,
            Some(17),
            Some((1000, 2000)),
            Remote::Group("x".into())
        )
        .unwrap(),
        "ip daddr @g4-x meta l4proto 17 th dport 1000-2000 accept"
    );
    assert_eq!(
        r(Direction::Ingress, Some(1), Some((8, 0)), Remote::Any).unwrap(),
        "meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 accept"
    );
    // A v6 prefix in a v4 rule matches nothing: no rule.
    assert!(
        r(
            Direction::Ingress,
            None,
            None,
            Remote::Prefix(Cidr::parse_host_or_network("2001:db8::/32").unwrap())
        )
        .is_none()
    );
    let mut v6 = rule(Direction::Ingress, Some(1), Some((128, 0)), Remote::Any);
    v6.ipv4 = false;
    assert_eq!(
        rule_text(&v6).unwrap(),
        "meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 icmpv6 code 0 accept"
    );
    // Out-of-range values never reach nft.
    assert!(r(Direction::Ingress, Some(6), Some((1, 70000)), Remote::Any).is_none());
}

#[test]
fn covered_sources_are_left_out_of_interval_sets() {
    let mut s = spec(1, 1);
    let p = s.ports.get_mut("tap00000001").unwrap();
    p.sources
        .insert((mac(1), Cidr::parse_host_or_network("10.0.0.0/24").unwrap()));
    p.sources
        .insert((mac(1), Cidr::parse_host_or_network("10.0.0.0/16").unwrap()));
    let rs = render(&s);
    // Addresses go in the hash set; of the networks only the outermost.
    let src4 = &rs.sets[&(Family::Bridge, "port_src4".to_string())].elements;
    assert_eq!(src4.len(), 0, "10.0.0.1 is covered by the pair's network");
    let net4 = &rs.sets[&(Family::Bridge, "port_net4".to_string())].elements;
    assert_eq!(net4.len(), 1);
    assert_eq!(
        net4.iter().next().unwrap().to_string(),
        "\"tap00000001\" . fa:16:00:00:00:01 . 10.0.0.0/16"
    );
}

#[test]
fn link_local_is_eui64() {
    let m = "fa:16:3e:11:22:33".parse::<Mac>().unwrap();
    assert_eq!(
        render::link_local(&m).to_string(),
        "fe80::f816:3eff:fe11:2233"
    );
}

#[test]
fn nft_json_reads_back_as_rendered() {
    let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
      {"table": {"family": "bridge", "name": "neutrino", "handle": 1}},
      {"map": {"family": "bridge", "name": "ports", "table": "neutrino", "type": "ifname", "handle": 1, "map": "mark", "elem": [["tapa", 1], ["tapb", 16]]}},
      {"set": {"family": "bridge", "name": "port_src4", "table": "neutrino", "type": ["ifname", "ether_addr", "ipv4_addr"], "handle": 3, "flags": ["interval"], "elem": [{"concat": ["tapa", "02:00:00:00:00:0a", "10.0.0.5"]}, {"concat": ["tapa", "02:00:00:00:00:0a", {"prefix": {"addr": "10.1.0.0", "len": 16}}]}]}},
      {"chain": {"family": "bridge", "table": "neutrino", "name": "spoof", "handle": 1}},
      {"rule": {"family": "bridge", "table": "neutrino", "chain": "spoof", "handle": 5, "comment": "h:abc", "expr": []}},
      {"rule": {"family": "bridge", "table": "neutrino", "chain": "spoof", "handle": 6, "comment": "other", "expr": []}},
      {"chain": {"family": "bridge", "table": "neutrino", "name": "empty", "handle": 2}}]}"#;
    let mut o = Observed::default();
    o.add_json(Family::Bridge, json).unwrap();
    assert!(o.tables.contains(&Family::Bridge));
    assert_eq!(
        o.chains[&(Family::Bridge, "spoof".into())],
        Some("h:abc".into())
    );
    assert_eq!(o.chains[&(Family::Bridge, "empty".into())], None);
    let ports: Vec<String> = o.sets[&(Family::Bridge, "ports".into())]
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(ports, vec!["\"tapa\" : 1", "\"tapb\" : 16"]);
    let src: Vec<String> = o.sets[&(Family::Bridge, "port_src4".into())]
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        src,
        vec![
            "\"tapa\" . 02:00:00:00:00:0a . 10.0.0.5",
            "\"tapa\" . 02:00:00:00:00:0a . 10.1.0.0/16"
        ]
    );
    let vmap = r#"{"nftables": [{"map": {"family": "inet", "name": "egress", "table": "neutrino", "type": "mark", "map": "verdict", "elem": [[1, {"goto": {"target": "pe-1"}}]]}}]}"#;
    o.add_json(Family::Inet, vmap).unwrap();
    let e: Vec<String> = o.sets[&(Family::Inet, "egress".into())]
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(e, vec!["1 : goto pe-1"]);
    // Garbage is an error, not a panic.
    assert!(
        o.add_json(
            Family::Inet,
            "{\"nftables\": [{\"set\": {\"name\": \"x\", \"type\": 5}}]}"
        )
        .is_err()
    );
    assert!(o.add_json(Family::Inet, "not json").is_err());
    let _ = BTreeMap::<u8, u8>::new();
}

/// What the kernel holds after a delta is what a full plan would leave.
fn after_delta(before: &FirewallSpec, after: &FirewallSpec) -> Option<(Plan, Observed)> {
    let mut observed = Observed::from_ruleset(&render(before));
    let p = plan_delta(before, after, &observed, &Touched::between(before, after))?;
    observed.apply_elements(&p.element_ops);
    Some((p, observed))
}

#[test]
fn a_delta_touches_only_the_changed_ports_and_members() {
    for n in [10u32, 2000] {
        let before = spec(n, 5);
        let mut after = before.clone();
        add_port(&mut after, n + 1, 5);
        after.ports.remove("tap00000003");
        after
            .members
            .get_mut("g3")
            .unwrap()
            .remove(&Cidr::parse_host_or_network("10.0.0.3").unwrap());
        let (p, observed) = after_delta(&before, &after).expect("a delta");
        // One port in (8 elements), one out (8).
        assert_eq!(p.elements, 16, "{}", p.script);
        assert_eq!(observed, Observed::from_ruleset(&render(&after)));
        assert!(plan(&render(&after), &observed).is_empty());
    }
}

#[test]
fn a_delta_of_a_membership_is_one_element() {
    let before = spec(100, 5);
    let mut after = before.clone();
    after
        .members
        .get_mut("g1")
        .unwrap()
        .insert(Cidr::parse_host_or_network("10.9.9.9").unwrap());
    let (p, observed) = after_delta(&before, &after).unwrap();
    assert_eq!(p.script, "add element inet neutrino g4-g1 { 10.9.9.9 }\n");
    assert_eq!(observed, Observed::from_ruleset(&render(&after)));
}

#[test]
fn structural_changes_are_left_to_a_full_plan() {
    let before = spec(10, 5);
    // A set of groups no chain exists for yet.
    let mut after = before.clone();
    after.ports.get_mut("tap00000001").unwrap().groups = vec!["g1".into(), "g2".into()];
    assert!(after_delta(&before, &after).is_none());
    // A rule.
    let mut after = before.clone();
    after.groups.get_mut("g1").unwrap().rules.pop();
    assert!(after_delta(&before, &after).is_none());
    // Isolation switched.
    let mut after = before.clone();
    after.allow_same_net_traffic = false;
    assert!(after_delta(&before, &after).is_none());
}

#[test]
fn a_mark_change_replaces_the_map_values() {
    let before = spec(10, 5);
    let mut after = before.clone();
    after.ports.get_mut("tap00000004").unwrap().mark = 99;
    let (p, observed) = after_delta(&before, &after).unwrap();
    let del = p
        .script
        .find("delete element bridge neutrino ports")
        .unwrap();
    let add = p.script.find("add element bridge neutrino ports").unwrap();
    assert!(del < add, "{}", p.script);
    assert_eq!(observed, Observed::from_ruleset(&render(&after)));
}

#[test]
fn ndp_targets_read_back_as_rendered() {
    let json = r#"{"nftables": [{"set": {"family": "bridge", "name": "port_nd6", "table": "neutrino",
      "type": ["ifname", "ether_addr", "integer"], "flags": ["interval"], "elem": [
        {"concat": ["tapa", "02:00:00:00:00:0a", "0x20010db8000000000000000000000005"]},
        {"concat": ["tapa", "02:00:00:00:00:0a", {"range": ["0x20010db8000100000000000000000000", "0x20010db80001ffffffffffffffffffff"]}]}]}}]}"#;
    let mut o = Observed::default();
    o.add_json(Family::Bridge, json).unwrap();
    let got: Vec<String> = o.sets[&(Family::Bridge, "port_nd6".into())]
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        got,
        vec![
            "\"tapa\" . 02:00:00:00:00:0a . 0x20010db8000000000000000000000005",
            "\"tapa\" . 02:00:00:00:00:0a . 0x20010db8000100000000000000000000-0x20010db80001ffffffffffffffffffff",
        ]
    );
    // A range that is no network is an error, not a wrong element.
    let bad = json.replace(
        "0x20010db80001ffffffffffffffffffff",
        "0x20010db80001fffffffffffffffffffe",
    );
    assert!(Observed::default().add_json(Family::Bridge, &bad).is_err());
}

#[test]
fn a_port_changed_in_place_is_seen_by_the_delta() {
    // Every port of a big host, one at a time, gains a group: the delta must
    // see each change (persistent maps share all but the changed path).
    let base = spec(1000, 5);
    let observed = Observed::from_ruleset(&render(&base));
    for i in (1..=1000).step_by(37) {
        let mut after = base.clone();
        let p = after.ports.get_mut(&format!("tap{i:08}")).unwrap();
        p.groups.push("zz".into());
        let touched = Touched::between(&base, &after);
        assert_eq!(touched.ports.len(), 1, "port {i}");
        // No chain for the new combination: a full plan.
        assert!(
            plan_delta(&base, &after, &observed, &touched).is_none(),
            "port {i}"
        );
    }
}
