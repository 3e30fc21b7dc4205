use super::*;
use crate::model::{Bridge, NsLink, ObservedNamespace, Vxlan};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const M1: Mac = Mac::new([0xfa, 0x16, 0x3e, 0, 0, 1]);
const M2: Mac = Mac::new([0xfa, 0x16, 0x3e, 0, 0, 2]);

fn own() -> Ownership {
    Ownership {
        namespace_prefix: "t-".into(),
    }
}

fn link(name: &str, kind: LinkKind) -> ObservedLink {
    ObservedLink {
        name: name.into(),
        index: 0,
        kind,
        master: None,
        mtu: 1500,
        up: true,
        mac: None,
        vxlan: None,
        peer: None,
    }
}

fn vx_bridge(flood: &[Ipv4Addr], macs: &[(Mac, Ipv4Addr)], members: &[&str]) -> Bridge {
    Bridge {
        name: "brq-net1".into(),
        mtu: 1450,
        uplink: Uplink::Vxlan(Vxlan {
            name: "vxlan-100".into(),
            vni: 100,
            local: A,
            dstport: 4789,
            flood: flood.iter().copied().collect(),
            macs: macs.iter().copied().collect(),
        }),
        members: members.iter().map(|s| s.to_string()).collect(),
    }
}

fn endpoint() -> NsEndpoint {
    NsEndpoint {
        namespace: "t-qdhcp-net1".into(),
        bridge: "brq-net1".into(),
        host_side: "tapdhcp1".into(),
        ns_side: "ns-dhcp1".into(),
        mac: M1,
        mtu: 1450,
        addrs: [("192.168.1.2".parse().unwrap(), 24)].into_iter().collect(),
    }
}

fn desired(bridges: Vec<Bridge>, endpoints: Vec<NsEndpoint>) -> DesiredHost {
    DesiredHost {
        bridges: bridges.into_iter().map(|b| (b.name.clone(), b)).collect(),
        endpoints: endpoints
            .into_iter()
            .map(|e| (e.host_side.clone(), e))
            .collect(),
        ns_routing: BTreeMap::new(),
    }
}

/// What the host looks like after a successful apply of `d` (plus `extra`
/// links that exist independently, e.g. hypervisor taps).
fn converged(d: &DesiredHost, extra: &[ObservedLink]) -> ObservedHost {
    let mut o = ObservedHost::default();
    for l in extra {
        o.links.insert(l.name.clone(), l.clone());
    }
    for b in d.bridges.values() {
        let mut br = link(&b.name, LinkKind::Bridge);
        br.mtu = b.mtu;
        o.links.insert(b.name.clone(), br);
        if let Uplink::Vxlan(v) = &b.uplink {
            let mut l = link(&v.name, LinkKind::Vxlan);
            l.mtu = b.mtu;
            l.master = Some(b.name.clone());
            l.vxlan = Some(VxlanParams {
                vni: v.vni,
                local: Some(v.local),
                dstport: v.dstport,
            });
            o.links.insert(v.name.clone(), l);
            let fdb = v
                .flood
                .iter()
                .map(|d| FdbEntry {
                    mac: Mac::ZERO,
                    dst: *d,
                })
                .chain(v.macs.iter().map(|(m, d)| FdbEntry { mac: *m, dst: *d }))
                .collect();
            o.fdb.insert(v.name.clone(), fdb);
        }
        if let Uplink::Physical { ifname } = &b.uplink
            && let Some(l) = o.links.get_mut(ifname)
        {
            l.master = Some(b.name.clone());
        }
        for m in &b.members {
            if let Some(l) = o.links.get_mut(m) {
                l.master = Some(b.name.clone());
                l.mtu = b.mtu;
            }
        }
    }
    for e in d.endpoints.values() {
        let mut h = link(&e.host_side, LinkKind::Veth);
        h.mtu = e.mtu;
        h.master = Some(e.bridge.clone());
        h.peer = Some((e.namespace.clone(), e.ns_side.clone()));
        o.links.insert(e.host_side.clone(), h);
        let mut ns = ObservedNamespace::default();
        let nl = |name: &str, mtu| NsLink {
            name: name.into(),
            index: 1,
            mtu,
            up: true,
            mac: None,
            addrs: BTreeSet::new(),
            peer_index: None,
        };
        ns.links.insert("lo".into(), nl("lo", 65536));
        let mut side = nl(&e.ns_side, e.mtu);
        side.mac = Some(e.mac);
        side.addrs = e.addrs.clone();
        ns.links.insert(e.ns_side.clone(), side);
        o.namespaces.insert(e.namespace.clone(), ns);
    }
    o
}

#[test]
fn empty_host_creates_bridge_vxlan_and_fdb_in_order() {
    let d = desired(vec![vx_bridge(&[B], &[(M1, B)], &[])], vec![]);
    let ops = plan(&d, &ObservedHost::default(), &own());
    assert_eq!(
        ops,
        vec![
            Op::CreateBridge {
                name: "brq-net1".into(),
                mtu: 1450
            },
            Op::CreateVxlan {
                name: "vxlan-100".into(),
                vni: 100,
                local: A,
                dstport: 4789,
                mtu: 1450
            },
            Op::SetMaster {
                link: "vxlan-100".into(),
                master: "brq-net1".into()
            },
            Op::SetUp {
                link: "vxlan-100".into()
            },
            Op::SetUp {
                link: "brq-net1".into()
            },
            Op::AddFdb {
                dev: "vxlan-100".into(),
                mac: Mac::ZERO,
                dst: B
            },
            Op::AddFdb {
                dev: "vxlan-100".into(),
                mac: M1,
                dst: B
            },
        ]
    );
}

#[test]
fn converged_host_plans_nothing() {
    let mut tap = link("tap1", LinkKind::Tun);
    tap.mtu = 1450;
    let d = desired(
        vec![vx_bridge(&[B, C], &[(M1, B)], &["tap1", "tapmissing"])],
        vec![endpoint()],
    );
    let o = converged(&d, &[tap]);
    assert_eq!(plan(&d, &o, &own()), vec![]);
}

#[test]
fn flood_and_mac_changes_only_touch_fdb() {
    let d1 = desired(vec![vx_bridge(&[B], &[(M1, B), (M2, B)], &[])], vec![]);
    let o = converged(&d1, &[]);
    let d2 = desired(vec![vx_bridge(&[C], &[(M1, C), (M2, B)], &[])], vec![]);
    let dev = || "vxlan-100".to_string();
    assert_eq!(
        plan(&d2, &o, &own()),
        vec![
            Op::DelFdb {
                dev: dev(),
                mac: M1,
                dst: B
            },
            Op::AddFdb {
                dev: dev(),
                mac: Mac::ZERO,
                dst: C
            },
            Op::AddFdb {
                dev: dev(),
                mac: M1,
                dst: C
            },
            Op::DelFdb {
                dev: dev(),
                mac: Mac::ZERO,
                dst: B
            },
        ]
    );
}

#[test]
fn wrong_vni_recreates_vxlan_before_create_and_readds_fdb() {
    let d = desired(vec![vx_bridge(&[B], &[], &[])], vec![]);
    let mut o = converged(&d, &[]);
    o.links.get_mut("vxlan-100").unwrap().vxlan = Some(VxlanParams {
        vni: 7,
        local: Some(A),
        dstport: 4789,
    });
    let ops = plan(&d, &o, &own());
    assert_eq!(
        ops,
        vec![
            Op::DeleteLink {
                name: "vxlan-100".into()
            },
            Op::CreateVxlan {
                name: "vxlan-100".into(),
                vni: 100,
                local: A,
                dstport: 4789,
                mtu: 1450
            },
            Op::SetMaster {
                link: "vxlan-100".into(),
                master: "brq-net1".into()
            },
            Op::SetUp {
                link: "vxlan-100".into()
            },
            Op::AddFdb {
                dev: "vxlan-100".into(),
                mac: Mac::ZERO,
                dst: B
            },
        ]
    );
}

#[test]
fn stale_owned_deleted_foreign_untouched() {
    let d = desired(vec![vx_bridge(&[], &[], &[])], vec![]);
    let mut o = converged(
        &d,
        &[
            link("brq-stale", LinkKind::Bridge),
            link("br-other", LinkKind::Bridge),
        ],
    );
    o.links
        .insert("vxlan-9".into(), link("vxlan-9", LinkKind::Vxlan));
    o.namespaces
        .insert("t-qdhcp-old".into(), ObservedNamespace::default());
    let mut oldveth = link("tapold", LinkKind::Veth);
    oldveth.peer = Some(("t-qdhcp-old".into(), "ns-old".into()));
    o.links.insert("tapold".into(), oldveth);
    assert_eq!(
        plan(&d, &o, &own()),
        vec![
            Op::DeleteLink {
                name: "vxlan-9".into()
            },
            Op::DeleteLink {
                name: "brq-stale".into()
            },
            Op::DeleteLink {
                name: "tapold".into()
            },
            Op::DeleteNamespace {
                name: "t-qdhcp-old".into()
            },
        ]
    );
}

#[test]
fn non_member_tap_is_detached_not_deleted() {
    let d = desired(vec![vx_bridge(&[], &[], &["tap1"])], vec![]);
    let mut tap1 = link("tap1", LinkKind::Tun);
    tap1.mtu = 1450;
    let mut tap2 = link("tap2", LinkKind::Tun);
    tap2.master = Some("brq-net1".into());
    let mut foreign = link("eth9", LinkKind::Other("dummy".into()));
    foreign.master = Some("br-other".into());
    let o = converged(&d, &[tap1, tap2, foreign]);
    assert_eq!(
        plan(&d, &o, &own()),
        vec![Op::NoMaster {
            link: "tap2".into()
        }]
    );
}

#[test]
fn existing_member_gets_mtu_master_up() {
    let d = desired(vec![vx_bridge(&[], &[], &["tap1"])], vec![]);
    let mut o = converged(&d, &[]);
    let mut tap = link("tap1", LinkKind::Tun);
    tap.up = false;
    o.links.insert("tap1".into(), tap);
    assert_eq!(
        plan(&d, &o, &own()),
        vec![
            Op::SetMtu {
                link: "tap1".into(),
                mtu: 1450
            },
            Op::SetMaster {
                link: "tap1".into(),
                master: "brq-net1".into()
            },
            Op::SetUp {
                link: "tap1".into()
            },
        ]
    );
}

#[test]
fn physical_uplink_enslaved_never_changed() {
    let mut b = vx_bridge(&[], &[], &[]);
    b.uplink = Uplink::Physical {
        ifname: "eth1".into(),
    };
    let d = desired(vec![b], vec![]);
    let mut eth1 = link("eth1", LinkKind::Other("dummy".into()));
    eth1.mtu = 9000;
    eth1.up = false;
    let mut o = converged(&d, &[]);
    o.links.insert("eth1".into(), eth1);
    assert_eq!(
        plan(&d, &o, &own()),
        vec![
            Op::SetMaster {
                link: "eth1".into(),
                master: "brq-net1".into()
            },
            Op::SetUp {
                link: "eth1".into()
            },
        ]
    );
    // Removing the bridge detaches nothing by hand: the bridge delete does it.
    let o = converged(&d, &[link("eth1", LinkKind::Other("dummy".into()))]);
    let ops = plan(&DesiredHost::default(), &o, &own());
    assert!(ops.contains(&Op::DeleteLink {
        name: "brq-net1".into()
    }));
    assert!(
        !ops.iter()
            .any(|op| matches!(op, Op::DeleteLink { name } if name == "eth1"))
    );
}

#[test]
fn endpoint_from_scratch() {
    let d = desired(vec![vx_bridge(&[], &[], &[])], vec![endpoint()]);
    let mut o = converged(&d, &[]);
    o.namespaces.clear();
    o.links.remove("tapdhcp1");
    let ns = || "t-qdhcp-net1".to_string();
    assert_eq!(
        plan(&d, &o, &own()),
        vec![
            Op::CreateNamespace { name: ns() },
            Op::CreateVethIntoNs {
                host_side: "tapdhcp1".into(),
                ns_side: "ns-dhcp1".into(),
                namespace: ns(),
                mac: M1,
                mtu: 1450
            },
            Op::SetMaster {
                link: "tapdhcp1".into(),
                master: "brq-net1".into()
            },
            Op::SetUp {
                link: "tapdhcp1".into()
            },
            Op::NsSetUp {
                namespace: ns(),
                link: "lo".into()
            },
            Op::NsSetUp {
                namespace: ns(),
                link: "ns-dhcp1".into()
            },
            Op::NsAddAddr {
                namespace: ns(),
                link: "ns-dhcp1".into(),
                addr: "192.168.1.2".parse().unwrap(),
                prefix: 24
            },
        ]
    );
}

#[test]
fn endpoint_address_and_mac_drift() {
    let d1 = desired(vec![vx_bridge(&[], &[], &[])], vec![endpoint()]);
    let o = converged(&d1, &[]);
    let mut e = endpoint();
    e.mac = M2;
    e.addrs = [("192.168.1.3".parse().unwrap(), 24)].into_iter().collect();
    let d2 = desired(vec![vx_bridge(&[], &[], &[])], vec![e]);
    let ns = || "t-qdhcp-net1".to_string();
    let l = || "ns-dhcp1".to_string();
    assert_eq!(
        plan(&d2, &o, &own()),
        vec![
            Op::NsSetMac {
                namespace: ns(),
                link: l(),
                mac: M2
            },
            Op::NsDelAddr {
                namespace: ns(),
                link: l(),
                addr: "192.168.1.2".parse().unwrap(),
                prefix: 24
            },
            Op::NsAddAddr {
                namespace: ns(),
                link: l(),
                addr: "192.168.1.3".parse().unwrap(),
                prefix: 24
            },
        ]
    );
}

#[test]
fn foreign_namespaces_not_deleted() {
    let mut o = ObservedHost::default();
    o.namespaces
        .insert("other-qdhcp-x".into(), ObservedNamespace::default());
    assert_eq!(plan(&DesiredHost::default(), &o, &own()), vec![]);
}

#[test]
fn wrong_kind_squatting_bridge_name_is_replaced() {
    let d = desired(vec![vx_bridge(&[], &[], &[])], vec![]);
    let mut o = converged(&d, &[]);
    o.links.insert(
        "brq-net1".into(),
        link("brq-net1", LinkKind::Other("dummy".into())),
    );
    let ops = plan(&d, &o, &own());
    assert_eq!(
        ops[0],
        Op::DeleteLink {
            name: "brq-net1".into()
        }
    );
    assert_eq!(
        ops[1],
        Op::CreateBridge {
            name: "brq-net1".into(),
            mtu: 1450
        }
    );
}
