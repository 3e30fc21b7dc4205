//! FirewallSpec → Ruleset. Pure: the same spec always renders the same
//! rules in the same order, so digests are stable across restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};

use super::model::{Cidr, Direction, FirewallSpec, PortFilter, Remote, Rule};
use super::ruleset::{Chain, Elem, Family, Part, Ruleset, Set, Value};
use crate::model::Mac;

const BRIDGE_PRE_HOOK: &str = "type filter hook prerouting priority -300; policy accept;";
// Below br_netfilter's forward hook on every kernel (-1 before 6.7, 0 after),
// so the re-mark always happens before the inet `fw` chain looks at it.
const BRIDGE_FW_HOOK: &str = "type filter hook forward priority -200; policy accept;";
// Conntrack zones are set before conntrack (priority -200) sees the packet.
const INET_ZONE_HOOK: &str = "type filter hook prerouting priority -300; policy accept;";
const INET_PRE_HOOK: &str = "type filter hook prerouting priority 0; policy accept;";
const INET_FW_HOOK: &str = "type filter hook forward priority 0; policy accept;";

pub fn render(spec: &FirewallSpec) -> Ruleset {
    let mut rs = Ruleset::default();
    render_bridge(spec, &mut rs);
    render_inet(spec, &mut rs);
    let isolate = !spec.allow_same_net_traffic;
    for (tap, p) in &spec.ports {
        for (key, e) in port_elements(tap, p, isolate) {
            if let Some(set) = rs.sets.get_mut(&key) {
                set.elements.insert(e);
            }
        }
    }
    rs
}

fn chain(rs: &mut Ruleset, family: Family, name: &str, hook: Option<&str>, rules: Vec<String>) {
    rs.chains.insert(
        (family, name.to_string()),
        Chain {
            hook: hook.map(str::to_string),
            rules,
        },
    );
}

fn set(
    rs: &mut Ruleset,
    family: Family,
    name: &str,
    decl: &str,
    key_types: Vec<&'static str>,
    elements: BTreeSet<Elem>,
) {
    rs.sets.insert(
        (family, name.to_string()),
        Set {
            decl: decl.to_string(),
            key_types,
            elements,
        },
    );
}

fn strs(rules: &[&str]) -> Vec<String> {
    rules.iter().map(|r| r.to_string()).collect()
}

/// Anti-spoofing and port marks, where the real bridge ports are visible.
fn render_bridge(spec: &FirewallSpec, rs: &mut Ruleset) {
    let b = Family::Bridge;
    chain(
        rs,
        b,
        "pre",
        Some(BRIDGE_PRE_HOOK),
        strs(&[
            // Frames from elsewhere may carry a mark; only ours count.
            "meta mark set 0",
            "meta mark set iifname map @ports",
            "meta mark != 0 jump spoof",
        ]),
    );
    chain(
        rs,
        b,
        "spoof",
        None,
        strs(&[
            // 802.1Q and other ethertypes would pass the IP checks unseen.
            "ether type != { arp, ip, ip6 } counter drop",
            "iifname . ether saddr != @port_macs counter drop",
            // ARP probes (RFC 5227) come from 0.0.0.0.
            "arp saddr ip 0.0.0.0 return",
            "iifname . arp saddr ether . arp saddr ip != @port_src4 iifname . arp saddr ether . arp saddr ip != @port_net4 counter drop",
            "ip saddr 0.0.0.0 udp sport 68 udp dport 67 return",
            "iifname . ether saddr . ip saddr != @port_src4 iifname . ether saddr . ip saddr != @port_net4 counter drop",
            // A DHCP server inside an instance is not heard.
            "ether type ip udp sport 67 counter drop",
            // Duplicate address detection and MLD come from ::.
            "ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } return",
            "iifname . ether saddr . ip6 saddr != @port_src6 iifname . ether saddr . ip6 saddr != @port_net6 counter drop",
            // A neighbour advertisement may only claim the port's own addresses.
            "icmpv6 type nd-neighbor-advert iifname . ether saddr . @th,64,128 != @port_nd6 iifname . ether saddr . @th,64,128 != @port_ndnet6 counter drop",
            "icmpv6 type { nd-router-advert, nd-redirect } counter drop",
            "ether type ip6 udp sport 547 counter drop",
        ]),
    );
    chain(
        rs,
        b,
        "fw",
        Some(BRIDGE_FW_HOOK),
        strs(&[
            "oifname @uplinks ether saddr @router_macs drop",
            "oifname @uplinks ether daddr @router_macs drop",
            "meta mark set 0",
            "meta mark set oifname map @ports",
            // Only what the security groups can judge reaches a port: tagged
            // or other ethertypes would pass the inet hooks unseen.
            "meta mark != 0 ether type != { arp, ip, ip6 } drop",
        ]),
    );
    set(
        rs,
        b,
        "uplinks",
        "type ifname;",
        vec!["ifname"],
        spec.uplinks
            .iter()
            .map(|u| Elem::key(vec![Part::Ifname(u.clone())]))
            .collect(),
    );
    set(
        rs,
        b,
        "router_macs",
        "type ether_addr;",
        vec!["ether_addr"],
        spec.router_macs
            .iter()
            .map(|m| Elem::key(vec![Part::Mac(*m)]))
            .collect(),
    );

    let none = BTreeSet::new;
    set(
        rs,
        b,
        "ports",
        "type ifname : mark;",
        vec!["ifname"],
        none(),
    );
    set(
        rs,
        b,
        "port_macs",
        "type ifname . ether_addr;",
        vec!["ifname", "ether_addr"],
        none(),
    );
    // Addresses in hash sets (a port's change is a few elements the kernel
    // takes directly), networks from allowed address pairs in interval sets.
    for (name, decl, types) in [
        (
            "port_src4",
            "type ifname . ether_addr . ipv4_addr;",
            ["ifname", "ether_addr", "ipv4_addr"],
        ),
        (
            "port_net4",
            "type ifname . ether_addr . ipv4_addr; flags interval;",
            ["ifname", "ether_addr", "ipv4_addr"],
        ),
        (
            "port_src6",
            "type ifname . ether_addr . ipv6_addr;",
            ["ifname", "ether_addr", "ipv6_addr"],
        ),
        (
            "port_net6",
            "type ifname . ether_addr . ipv6_addr; flags interval;",
            ["ifname", "ether_addr", "ipv6_addr"],
        ),
        (
            "port_nd6",
            "typeof iifname . ether saddr . @th,64,128;",
            ["ifname", "ether_addr", "integer"],
        ),
        (
            "port_ndnet6",
            "typeof iifname . ether saddr . @th,64,128; flags interval;",
            ["ifname", "ether_addr", "integer"],
        ),
    ] {
        set(rs, b, name, decl, types.to_vec(), none());
    }
}

/// Sets with `flags interval` (they hold networks): the only ones a change
/// cannot write element by element through netlink here.
pub fn is_interval_set(name: &str) -> bool {
    name.starts_with("port_net")
        || name == "port_ndnet6"
        || ["g4n-", "g6n-", "n4n-", "n6n-"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Which set an element goes in.
pub type SetKey = (Family, String);

/// The set and map elements one port contributes (both tables). The same
/// function serves a full render and a single port's change.
pub fn port_elements(tap: &str, p: &PortFilter, isolate: bool) -> Vec<(SetKey, Elem)> {
    let b = |n: &str| (Family::Bridge, n.to_string());
    let name = || Part::Ifname(tap.to_string());
    let mut out = vec![(b("ports"), Elem::map(vec![name()], Value::Mark(p.mark)))];
    let mut sources = p.sources.clone();
    for mac in &p.macs {
        out.push((b("port_macs"), Elem::key(vec![name(), Part::Mac(*mac)])));
        // IPv6 link-local, derived from each MAC the port may use (through
        // `outermost` like the rest: a pair may cover it).
        sources.insert((*mac, Cidr::host(IpAddr::V6(link_local(mac)))));
    }
    for (mac, cidr) in outermost(&sources) {
        let (v4, v6, nd) = if cidr.is_host() {
            ("port_src4", "port_src6", "port_nd6")
        } else {
            ("port_net4", "port_net6", "port_ndnet6")
        };
        let key = |p: Part| Elem::key(vec![name(), Part::Mac(mac), p]);
        if cidr.is_v4() {
            out.push((b(v4), key(Part::Net(cidr))));
        } else {
            out.push((b(v6), key(Part::Net(cidr))));
            out.push((b(nd), key(Part::Raw6(cidr))));
        }
    }
    let (pi, pe) = combo_chains(p, isolate);
    let i = |n: &str| (Family::Inet, n.to_string());
    out.push((
        i("ingress"),
        Elem::map(vec![Part::Mark(p.mark)], Value::Goto(pi)),
    ));
    out.push((
        i("egress"),
        Elem::map(vec![Part::Mark(p.mark)], Value::Goto(pe)),
    ));
    out
}

/// The elements of the address sets of a group or network (`<p>4-<id>`,
/// `<p>6-<id>` for addresses, `<p>4n-<id>`, `<p>6n-<id>` for networks; a
/// network another one covers is left out, as interval sets refuse overlaps).
pub fn address_elements(prefix: &str, id: &str, addrs: &imbl::OrdSet<Cidr>) -> Vec<(SetKey, Elem)> {
    let (v4, v6) = split_outermost(addrs);
    let key = |e: &Elem, v: u8| {
        let net = matches!(e.key.first(), Some(Part::Net(c)) if !c.is_host());
        let n = if net { "n" } else { "" };
        (Family::Inet, format!("{prefix}{v}{n}-{id}"))
    };
    v4.into_iter()
        .map(|e| (key(&e, 4), e))
        .chain(v6.into_iter().map(|e| (key(&e, 6), e)))
        .collect()
}

/// The chain names (ingress, egress) shared by ports with these groups.
pub fn combo_chains(p: &PortFilter, isolate: bool) -> (String, String) {
    combo_names(&p.groups, isolate.then_some(p.network_id.as_str()))
}

/// Sources with the same MAC that another source covers are dropped:
/// interval sets refuse overlapping elements.
fn outermost(sources: &BTreeSet<(Mac, Cidr)>) -> Vec<(Mac, Cidr)> {
    sources
        .iter()
        .filter(|(mac, c)| {
            !sources
                .iter()
                .any(|(m2, c2)| m2 == mac && c2 != c && c2.covers(c))
        })
        .copied()
        .collect()
}

/// Addresses with those another one covers dropped (interval sets refuse
/// overlaps), split by family.
fn split_outermost(addrs: &imbl::OrdSet<Cidr>) -> (BTreeSet<Elem>, BTreeSet<Elem>) {
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    // Only networks can cover others, and there are few of them.
    let networks: Vec<&Cidr> = addrs.iter().filter(|c| !c.is_host()).collect();
    for c in addrs {
        if networks.iter().any(|o| *o != c && o.covers(c)) {
            continue;
        }
        let e = Elem::key(vec![Part::Net(*c)]);
        if c.is_v4() {
            v4.insert(e);
        } else {
            v6.insert(e);
        }
    }
    (v4, v6)
}

/// fe80::/64 with the modified EUI-64 of `mac` (the interface identifier
/// IPAM's SLAAC addresses use too).
pub fn link_local(mac: &Mac) -> Ipv6Addr {
    Ipv6Addr::from((0xfe80u128 << 112) | u128::from(mac.eui64_interface_id()))
}

fn digest_of(s: &str) -> String {
    let c = Chain::regular(vec![s.to_string()]);
    c.digest()[2..].to_string()
}

/// The chains of one set of groups (shared by every port with that set).
fn combo_names(groups: &[String], isolate_net: Option<&str>) -> (String, String) {
    let key = format!("{}|{}", groups.join(","), isolate_net.unwrap_or(""));
    let d = digest_of(&key);
    (format!("pi-{d}"), format!("pe-{d}"))
}

/// Security groups (stateful, through br_netfilter's conntrack).
fn render_inet(spec: &FirewallSpec, rs: &mut Ruleset) {
    let i = Family::Inet;
    chain(
        rs,
        i,
        "pre",
        Some(INET_PRE_HOOK),
        strs(&[
            "meta mark 0 accept",
            "ct state established,related accept",
            "ct state invalid drop",
            "udp sport 68 udp dport 67 accept",
            "udp sport 546 udp dport 547 accept",
            "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } accept",
            "meta mark vmap @egress",
        ]),
    );
    chain(
        rs,
        i,
        "fw",
        Some(INET_FW_HOOK),
        strs(&[
            "meta mark 0 accept",
            "ct state established,related accept",
            "ct state invalid drop",
            "udp sport 67 udp dport 68 accept",
            "udp sport 547 udp dport 546 accept",
            "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query } accept",
            "meta mark vmap @ingress",
        ]),
    );

    // One conntrack zone per network (by its bridge, which br_netfilter
    // shows as the input device): overlapping tenant addresses never share
    // connection state.
    chain(
        rs,
        i,
        "zone",
        Some(INET_ZONE_HOOK),
        strs(&["ct zone set iifname map @zones"]),
    );
    set(
        rs,
        i,
        "zones",
        "typeof iifname : ct zone;",
        vec!["ifname"],
        spec.zones
            .iter()
            .map(|(bridge, z)| {
                Elem::map(
                    vec![Part::Ifname(bridge.clone())],
                    Value::Mark(u32::from(*z)),
                )
            })
            .collect(),
    );

    let isolate = !spec.allow_same_net_traffic;
    let mut remote_groups = BTreeSet::new();
    let mut combos: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut networks = BTreeSet::new();
    for p in spec.ports.values() {
        let net = isolate.then_some(p.network_id.as_str());
        let (pi, pe) = combo_names(&p.groups, net);
        if combos.contains_key(&pi) {
            continue;
        }
        let mut in_rules: Vec<String> = p.groups.iter().map(|g| format!("jump sg-{g}-i")).collect();
        if let Some(net) = net {
            networks.insert(net.to_string());
            let nets = spec.network_addresses.get(net);
            let has =
                |v4: bool| nets.is_some_and(|a| a.iter().any(|c| !c.is_host() && c.is_v4() == v4));
            in_rules.push(format!("ip saddr @n4-{net} drop"));
            if has(true) {
                in_rules.push(format!("ip saddr @n4n-{net} drop"));
            }
            in_rules.push(format!("ip6 saddr @n6-{net} drop"));
            if has(false) {
                in_rules.push(format!("ip6 saddr @n6n-{net} drop"));
            }
            in_rules.extend(p.groups.iter().map(|g| format!("jump sg-{g}-is")));
        }
        in_rules.push("drop".to_string());
        let mut out_rules: Vec<String> =
            p.groups.iter().map(|g| format!("jump sg-{g}-e")).collect();
        out_rules.push("drop".to_string());
        combos.insert(pi, in_rules);
        combos.insert(pe, out_rules);
    }
    for (name, rules) in combos {
        chain(rs, i, &name, None, rules);
    }
    let used: BTreeSet<&String> = spec.ports.values().flat_map(|p| p.groups.iter()).collect();
    for g in used {
        let rules = spec
            .groups
            .get(g)
            .map(|f| f.rules.as_slice())
            .unwrap_or(&[]);
        let mut e = Vec::new();
        let mut ing = Vec::new();
        let mut own = Vec::new();
        for r in rules {
            if let Remote::Group(rg) = &r.remote {
                remote_groups.insert(rg.clone());
            }
            let Some(text) = rule_text(r) else { continue };
            // A remote group's members are addresses, and networks (address
            // pairs with a prefix) in a second set when it has any.
            let texts = match &r.remote {
                Remote::Group(rg) if has_networks(spec, rg, r.ipv4) => {
                    let nets = text.replace("@g4-", "@g4n-").replace("@g6-", "@g6n-");
                    vec![text, nets]
                }
                _ => vec![text],
            };
            match r.direction {
                Direction::Egress => e.extend(texts),
                Direction::Ingress if isolate && r.remote == Remote::Group(g.clone()) => {
                    own.extend(texts)
                }
                Direction::Ingress => ing.extend(texts),
            }
        }
        chain(rs, i, &format!("sg-{g}-e"), None, e);
        chain(rs, i, &format!("sg-{g}-i"), None, ing);
        if isolate {
            chain(rs, i, &format!("sg-{g}-is"), None, own);
        }
    }
    let empty = imbl::OrdSet::new();
    let pairs = remote_groups
        .iter()
        .map(|g| ("g", g, spec.members.get(g)))
        .chain(
            networks
                .iter()
                .map(|n| ("n", n, spec.network_addresses.get(n))),
        );
    for (prefix, id, addrs) in pairs {
        for (v, t) in [(4, "ipv4_addr"), (6, "ipv6_addr")] {
            set(
                rs,
                i,
                &format!("{prefix}{v}-{id}"),
                &format!("type {t};"),
                vec![t],
                BTreeSet::new(),
            );
            set(
                rs,
                i,
                &format!("{prefix}{v}n-{id}"),
                &format!("type {t}; flags interval;"),
                vec![t],
                BTreeSet::new(),
            );
        }
        for (key, e) in address_elements(prefix, id, addrs.unwrap_or(&empty)) {
            if let Some(set) = rs.sets.get_mut(&key) {
                set.elements.insert(e);
            }
        }
    }
    set(
        rs,
        i,
        "egress",
        "type mark : verdict;",
        vec!["mark"],
        BTreeSet::new(),
    );
    set(
        rs,
        i,
        "ingress",
        "type mark : verdict;",
        vec!["mark"],
        BTreeSet::new(),
    );
}

/// Whether a remote group has network members of a family (then its rules
/// also look in the group's interval set).
fn has_networks(spec: &FirewallSpec, group: &str, v4: bool) -> bool {
    spec.members
        .get(group)
        .is_some_and(|m| m.iter().any(|c| !c.is_host() && c.is_v4() == v4))
}

/// Protocols whose rules may name ports.
const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136];

/// One rule as nft text, or None for a rule that can match nothing here
/// (a prefix of the other family, values out of range).
pub fn rule_text(r: &Rule) -> Option<String> {
    let (fam, nfproto) = if r.ipv4 {
        ("ip", "ipv4")
    } else {
        ("ip6", "ipv6")
    };
    let field = match r.direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    let mut parts = Vec::new();
    match &r.remote {
        Remote::Any => parts.push(format!("meta nfproto {nfproto}")),
        Remote::Prefix(c) => {
            if c.is_v4() != r.ipv4 {
                return None;
            }
            parts.push(format!("{fam} {field} {}", c.compact()));
        }
        Remote::Group(g) => {
            let v = if r.ipv4 { 4 } else { 6 };
            parts.push(format!("{fam} {field} @g{v}-{g}"));
        }
    }
    if let Some(p) = r.protocol {
        // Neutron lets `icmp` stand for ICMPv6 in IPv6 rules.
        let p = if !r.ipv4 && p == 1 { 58 } else { p };
        parts.push(format!("meta l4proto {p}"));
        let min = r.port_range_min;
        let max = r.port_range_max;
        if PORT_PROTOCOLS.contains(&p) {
            let lo = min.map(u16::try_from).transpose().ok()?;
            let hi = max.map(u16::try_from).transpose().ok()?;
            match (lo, hi) {
                (Some(a), Some(b)) if a == b => parts.push(format!("th dport {a}")),
                (Some(a), Some(b)) if a > b => return None,
                (Some(1), Some(65535)) => {}
                (Some(a), Some(b)) => parts.push(format!("th dport {a}-{b}")),
                (Some(a), None) => parts.push(format!("th dport {a}")),
                _ => {}
            }
        } else if p == 58 && r.ipv4 {
            // ICMPv6 in an IPv4 rule matches nothing.
            return None;
        } else if (p == 1 && r.ipv4) || p == 58 {
            let icmp = if p == 1 { "icmp" } else { "icmpv6" };
            if let Some(t) = min {
                parts.push(format!("{icmp} type {}", u8::try_from(t).ok()?));
                if let Some(c) = max {
                    parts.push(format!("{icmp} code {}", u8::try_from(c).ok()?));
                }
            }
        }
    }
    parts.push("accept".to_string());
    Some(parts.join(" "))
}
