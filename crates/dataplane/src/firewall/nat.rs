//! A router's NAT, inside its namespace (table `ip neutrino`): floating IPs
//! as two maps (floating → fixed for DNAT, fixed → floating for SNAT), and
//! the source NAT of the attached subnets to the gateway address. A new
//! floating IP is two map elements; the chains never change unless the
//! gateway does.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::model::Cidr;
use super::ruleset::{Chain, Elem, Family, Part, Ruleset, Set, Value};

const PRE_HOOK: &str = "type nat hook prerouting priority dstnat; policy accept;";
const OUT_HOOK: &str = "type nat hook output priority -100; policy accept;";
const POST_HOOK: &str = "type nat hook postrouting priority srcnat; policy accept;";

/// What one router NATs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterNat {
    /// The gateway leg inside the namespace (None: no NAT at all).
    pub gateway_interface: Option<String>,
    /// Source NAT of the attached subnets to this address (`enable_snat`).
    pub snat_address: Option<Ipv4Addr>,
    /// The attached IPv4 subnets.
    pub internal: BTreeSet<Cidr>,
    /// floating → fixed.
    pub floating_ips: BTreeSet<(Ipv4Addr, Ipv4Addr)>,
    /// The port of the router's metadata listener: requests to
    /// 169.254.169.254:80 arriving on a leg are redirected to it, and
    /// nothing else may reach it.
    pub metadata_port: Option<u16>,
}

/// The metadata service's address, as instances ask it.
const METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

pub fn render_nat(n: &RouterNat) -> Ruleset {
    let mut rs = Ruleset::default();
    let f = Family::Ip;
    // Without a gateway the table stays, empty of translations: what a
    // removed gateway left is planned away like any other change.
    let qg = n.gateway_interface.as_deref();
    let chain = |hook: &str, rules: Vec<String>| Chain {
        hook: Some(hook.to_string()),
        rules,
    };
    let mut pre = Vec::new();
    if let Some(port) = n.metadata_port {
        let legs = neutrino_net::names::ROUTER_INTERFACE_PREFIX;
        pre.push(format!(
            "iifname \"{legs}*\" ip daddr {METADATA_IP} tcp dport 80 redirect to :{port}"
        ));
        // Only redirected requests reach the listener, never one sent to
        // its port directly (from an instance or from outside).
        rs.chains.insert(
            (f, "metadata_in".into()),
            chain(
                "type filter hook input priority 0; policy accept;",
                vec![
                    format!("tcp dport {port} ct status dnat accept"),
                    format!("tcp dport {port} drop"),
                ],
            ),
        );
    }
    pre.push("dnat to ip daddr map @fip_dnat".into());
    rs.chains.insert((f, "pre".into()), chain(PRE_HOOK, pre));
    // The router's own traffic to a floating IP (e.g. a probe from inside).
    rs.chains.insert(
        (f, "out".into()),
        chain(OUT_HOOK, vec!["dnat to ip daddr map @fip_dnat".into()]),
    );
    // No transit between external addresses: a host that lost a floating IP
    // must not keep relaying it (upstream caches then follow the new host).
    rs.chains.insert(
        (f, "transit".into()),
        chain(
            "type filter hook forward priority 0; policy accept;",
            qg.map(|qg| format!("iifname \"{qg}\" oifname \"{qg}\" drop"))
                .into_iter()
                .collect(),
        ),
    );
    let mut post = Vec::new();
    if let Some(qg) = qg {
        post.push(format!("oifname \"{qg}\" snat to ip saddr map @fip_snat"));
        if let Some(a) = n.snat_address {
            post.push(format!("oifname \"{qg}\" ip saddr @internal snat to {a}"));
        }
    }
    rs.chains.insert((f, "post".into()), chain(POST_HOOK, post));
    let map = |pairs: Vec<(Ipv4Addr, Ipv4Addr)>| Set {
        decl: "type ipv4_addr : ipv4_addr;".into(),
        key_types: vec!["ipv4_addr"],
        elements: pairs
            .into_iter()
            .map(|(k, v)| Elem::map(vec![Part::addr(k.into())], Value::Addr(v.into())))
            .collect(),
    };
    rs.sets.insert(
        (f, "fip_dnat".into()),
        map(n.floating_ips.iter().copied().collect()),
    );
    rs.sets.insert(
        (f, "fip_snat".into()),
        map(n.floating_ips.iter().map(|(a, b)| (*b, *a)).collect()),
    );
    rs.sets.insert(
        (f, "internal".into()),
        Set {
            decl: "type ipv4_addr; flags interval;".into(),
            key_types: vec!["ipv4_addr"],
            elements: n
                .internal
                .iter()
                .filter(|c| c.is_v4())
                .map(|c| Elem::key(vec![Part::Net(*c)]))
                .collect(),
        },
    );
    rs
}
