//! Kernel tests (root). Each test first unshares a fresh network namespace
//! for its own thread (nextest runs one test per process, and every thread
//! we spawn afterwards inherits it), so the root namespace is never touched.
//! Named namespaces carry a per-process prefix and are removed by a guard.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use neutrino_dataplane::{
    Bridge, DesiredHost, Host, Mac, NsEndpoint, ObservedHost, Op, Ownership, Uplink, Vxlan, netns,
    plan, plug_veth, unplug,
};
use nix::sched::{CloneFlags, unshare};
use serde_json::Value;

const M1: Mac = Mac::new([0xfa, 0x16, 0x3e, 0, 0, 1]);
const M2: Mac = Mac::new([0xfa, 0x16, 0x3e, 0, 0, 2]);
const VTEP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const VTEP_C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

struct TestNs {
    prefix: String,
}

impl TestNs {
    fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }
    fn own(&self) -> Ownership {
        Ownership {
            namespace_prefix: self.prefix.clone(),
        }
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        for n in netns::list().unwrap_or_default() {
            if n.starts_with(&self.prefix) {
                let _ = netns::delete(&n);
            }
        }
    }
}

/// None (after saying why) when not root.
fn setup() -> Option<TestNs> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: needs root (network namespaces)");
        return None;
    }
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    Some(TestNs {
        prefix: format!("ndpt-{}-", std::process::id()),
    })
}

fn host() -> Host {
    Host::new()
}

/// observe → plan → apply; returns the plan applied.
fn converge(d: &DesiredHost, own: &Ownership) -> Vec<Op> {
    let h = host();
    let obs = h.observe(own).expect("observe");
    let ops = plan(d, &obs, own);
    h.apply(&ops).expect("apply");
    ops
}

fn replan(d: &DesiredHost, own: &Ownership) -> Vec<Op> {
    let obs: ObservedHost = host().observe(own).expect("observe");
    plan(d, &obs, own)
}

fn json(args: &[&str]) -> Value {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn vx_bridge(flood: &[Ipv4Addr], macs: &[(Mac, Ipv4Addr)], members: &[&str]) -> Bridge {
    Bridge {
        name: "brq-net1".into(),
        mtu: 1450,
        uplink: Uplink::Vxlan(Vxlan {
            name: "vxlan-100".into(),
            vni: 100,
            local: Ipv4Addr::new(10, 0, 0, 1),
            dstport: 4789,
            flood: flood.iter().copied().collect(),
            macs: macs.iter().copied().collect(),
        }),
        members: members.iter().map(|s| s.to_string()).collect(),
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

fn fdb_entries(dev: &str) -> BTreeSet<(String, String)> {
    json(&["bridge", "-j", "fdb", "show", "dev", dev])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["dst"].is_string())
        .map(|e| {
            (
                e["mac"].as_str().unwrap().to_string(),
                e["dst"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn link_json(ns: Option<&str>, name: &str) -> Value {
    let mut args = vec!["ip", "-j"];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend(["link", "show", "dev", name]);
    json(&args)[0].clone()
}

#[test]
fn vxlan_bridge_created_then_plan_is_empty() {
    let Some(t) = setup() else { return };
    let own = t.own();
    let d = desired(
        vec![vx_bridge(&[VTEP_B, VTEP_C], &[(M1, VTEP_B)], &[])],
        vec![],
    );
    let ops = converge(&d, &own);
    assert!(ops.contains(&Op::CreateBridge {
        name: "brq-net1".into(),
        mtu: 1450
    }));
    assert!(ops.iter().any(|o| matches!(o, Op::CreateVxlan { .. })));
    assert_eq!(replan(&d, &own), vec![], "second plan must be empty");

    let vx = link_json(None, "vxlan-100");
    assert_eq!(vx["master"], "brq-net1");
    assert_eq!(vx["mtu"], 1450);
    assert!(vx["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let br = link_json(None, "brq-net1");
    assert_eq!(br["mtu"], 1450);
    let fdb = fdb_entries("vxlan-100");
    for want in [
        ("00:00:00:00:00:00", "10.0.0.2"),
        ("00:00:00:00:00:00", "10.0.0.3"),
        ("fa:16:3e:00:00:01", "10.0.0.2"),
    ] {
        assert!(
            fdb.contains(&(want.0.into(), want.1.into())),
            "{want:?} missing from {fdb:?}"
        );
    }

    // Membership changes of remote VTEPs and ports only touch the FDB.
    let d2 = desired(
        vec![vx_bridge(&[VTEP_C], &[(M1, VTEP_C), (M2, VTEP_B)], &[])],
        vec![],
    );
    let ops = converge(&d2, &own);
    assert!(!ops.is_empty());
    assert!(
        ops.iter()
            .all(|o| matches!(o, Op::AddFdb { .. } | Op::DelFdb { .. })),
        "{ops:?}"
    );
    assert_eq!(replan(&d2, &own), vec![]);
    let fdb = fdb_entries("vxlan-100");
    assert!(!fdb.contains(&("00:00:00:00:00:00".into(), "10.0.0.2".into())));
    assert!(fdb.contains(&("fa:16:3e:00:00:01".into(), "10.0.0.3".into())));
    assert!(fdb.contains(&("fa:16:3e:00:00:02".into(), "10.0.0.2".into())));

    // Wrong VNI is the one case that recreates; it converges too.
    let mut d3 = d2.clone();
    if let Uplink::Vxlan(v) = &mut d3.bridges.get_mut("brq-net1").unwrap().uplink {
        v.vni = 101;
    }
    let ops = converge(&d3, &own);
    assert_eq!(
        ops[0],
        Op::DeleteLink {
            name: "vxlan-100".into()
        }
    );
    assert_eq!(replan(&d3, &own), vec![]);
    assert_eq!(Mac::ZERO.octets(), [0; 6]);
}

#[test]
fn stale_owned_bridge_deleted_foreign_untouched() {
    let Some(t) = setup() else { return };
    let own = t.own();
    let h = host();
    h.apply(&[
        Op::CreateBridge {
            name: "br-other".into(),
            mtu: 1500,
        },
        Op::CreateBridge {
            name: "brq-stale".into(),
            mtu: 1500,
        },
    ])
    .unwrap();
    let d = desired(vec![vx_bridge(&[], &[], &[])], vec![]);
    let ops = converge(&d, &own);
    assert!(ops.contains(&Op::DeleteLink {
        name: "brq-stale".into()
    }));
    assert!(
        !ops.iter().any(|o| format!("{o:?}").contains("br-other")),
        "{ops:?}"
    );
    assert_eq!(replan(&d, &own), vec![]);
    let obs = h.observe(&own).unwrap();
    assert!(obs.links.contains_key("br-other"));
    assert!(!obs.links.contains_key("brq-stale"));

    // Everything owned goes when nothing is desired; br-other stays.
    converge(&DesiredHost::default(), &own);
    let obs = h.observe(&own).unwrap();
    assert!(obs.links.contains_key("br-other"));
    assert!(!obs.links.contains_key("brq-net1"));
    assert!(!obs.links.contains_key("vxlan-100"));
}

#[test]
fn removed_member_is_detached_not_deleted() {
    let Some(t) = setup() else { return };
    let own = t.own();
    let vm = t.name("vm1");
    netns::create(&vm).unwrap();
    plug_veth("tapvm1", &vm, "eth0", M1, 1500).unwrap();
    plug_veth("tapvm2", &vm, "eth1", M2, 1500).unwrap();
    let d = desired(
        vec![vx_bridge(&[], &[], &["tapvm1", "tapvm2", "tapnotyet"])],
        vec![],
    );
    converge(&d, &own);
    assert_eq!(replan(&d, &own), vec![]);
    let tap = link_json(None, "tapvm1");
    assert_eq!(tap["master"], "brq-net1");
    assert_eq!(tap["mtu"], 1450, "taps get the bridge MTU");

    let d2 = desired(vec![vx_bridge(&[], &[], &["tapvm2"])], vec![]);
    assert_eq!(
        converge(&d2, &own),
        vec![Op::NoMaster {
            link: "tapvm1".into()
        }]
    );
    let tap = link_json(None, "tapvm1");
    assert!(tap.get("master").is_none(), "{tap}");
    assert_eq!(link_json(None, "tapvm2")["master"], "brq-net1");
    assert_eq!(replan(&d2, &own), vec![]);
}

#[test]
fn dhcp_endpoint_created_then_plan_is_empty() {
    let Some(t) = setup() else { return };
    let own = t.own();
    let ns = t.name("qdhcp-net1");
    let v6: IpAddr = "fd00:1::2".parse().unwrap();
    let ep = NsEndpoint {
        namespace: ns.clone(),
        bridge: "brq-net1".into(),
        host_side: "tapdhcp00001".into(),
        ns_side: "ns-dhcp00001".into(),
        mac: M1,
        mtu: 1450,
        addrs: [("192.168.1.2".parse().unwrap(), 24), (v6, 64)]
            .into_iter()
            .collect(),
    };
    let d = desired(vec![vx_bridge(&[], &[], &[])], vec![ep.clone()]);
    let ops = converge(&d, &own);
    assert!(ops.contains(&Op::CreateNamespace { name: ns.clone() }));
    assert_eq!(replan(&d, &own), vec![], "second plan must be empty");

    let inner = link_json(Some(&ns), "ns-dhcp00001");
    assert_eq!(inner["address"], "fa:16:3e:00:00:01");
    assert_eq!(inner["mtu"], 1450);
    let addrs = json(&["ip", "-j", "-n", &ns, "addr", "show", "dev", "ns-dhcp00001"]);
    let locals: Vec<String> = addrs[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    assert!(locals.contains(&"192.168.1.2/24".to_string()), "{locals:?}");
    assert!(locals.contains(&"fd00:1::2/64".to_string()), "{locals:?}");
    assert_eq!(link_json(None, "tapdhcp00001")["master"], "brq-net1");

    // Address change: only namespace-side address ops.
    let mut ep2 = ep.clone();
    ep2.addrs = [("192.168.1.3".parse().unwrap(), 24)].into_iter().collect();
    let d2 = desired(vec![vx_bridge(&[], &[], &[])], vec![ep2]);
    let ops = converge(&d2, &own);
    assert!(
        ops.iter()
            .all(|o| matches!(o, Op::NsAddAddr { .. } | Op::NsDelAddr { .. })),
        "{ops:?}"
    );
    assert_eq!(replan(&d2, &own), vec![]);

    // Endpoint gone: veth and namespace are deleted.
    let d3 = desired(vec![vx_bridge(&[], &[], &[])], vec![]);
    let ops = converge(&d3, &own);
    assert!(
        ops.contains(&Op::DeleteNamespace { name: ns.clone() }),
        "{ops:?}"
    );
    assert!(!netns::list().unwrap().contains(&ns));
    assert!(
        !host()
            .observe(&own)
            .unwrap()
            .links
            .contains_key("tapdhcp00001")
    );
    assert_eq!(replan(&d3, &own), vec![]);
}

#[test]
fn plug_veth_is_visible_and_idempotent() {
    let Some(t) = setup() else { return };
    let vm = t.name("vm1");
    netns::create(&vm).unwrap();
    assert!(matches!(
        netns::create(&vm),
        Err(netns::NetnsError::Exists(_))
    ));
    for _ in 0..2 {
        plug_veth("tapplug0001", &vm, "eth0", M2, 1400).unwrap();
        let inner = link_json(Some(&vm), "eth0");
        assert_eq!(inner["address"], "fa:16:3e:00:00:02");
        assert_eq!(inner["mtu"], 1400);
        assert!(
            inner["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
            "{inner}"
        );
        let outer = link_json(None, "tapplug0001");
        assert_eq!(outer["mtu"], 1400);
        assert!(
            outer["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
            "{outer}"
        );
    }
    // run_in really runs inside the namespace.
    let names = netns::run_in(&vm, || {
        json(&["ip", "-j", "link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    })
    .unwrap();
    assert_eq!(
        names,
        ["eth0".to_string(), "lo".to_string()].into_iter().collect()
    );
    unplug("tapplug0001").unwrap();
    unplug("tapplug0001").unwrap();
    let out = Command::new("ip")
        .args(["link", "show", "dev", "tapplug0001"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Two "hosts" (namespaces) joined by a veth underlay, each with a bridge, a
/// vxlan uplink and an instance namespace: the instances ping each other.
#[test]
fn vxlan_between_two_hosts_passes_ping() {
    let Some(t) = setup() else { return };
    let (ha, hb) = (t.name("hostA"), t.name("hostB"));
    let (va, vb) = (t.name("vmA"), t.name("vmB"));
    for n in [&ha, &hb, &va, &vb] {
        netns::create(n).unwrap();
    }
    let ula: Ipv4Addr = "10.0.0.1".parse().unwrap();
    let ulb: Ipv4Addr = "10.0.0.2".parse().unwrap();
    netns::run_in(&ha, || {
        plug_veth("ul0", &hb, "ul0", Mac::new([2, 0, 0, 0, 0, 0xb]), 1500)
    })
    .unwrap()
    .unwrap();
    let addr = |ns: &str, link: &str, ip: &str, prefix| Op::NsAddAddr {
        namespace: ns.into(),
        link: link.into(),
        addr: ip.parse().unwrap(),
        prefix,
    };
    host()
        .apply(&[
            addr(&ha, "ul0", "10.0.0.1", 24),
            addr(&hb, "ul0", "10.0.0.2", 24),
        ])
        .unwrap();

    let hosts = [
        (&ha, &va, ula, ulb, M1, "192.168.50.1"),
        (&hb, &vb, ulb, ula, M2, "192.168.50.2"),
    ];
    for (h, vm, local, remote, mac, ip) in hosts {
        netns::run_in(h, || plug_veth("tapvm", vm, "eth0", mac, 1450))
            .unwrap()
            .unwrap();
        host().apply(&[addr(vm, "eth0", ip, 24)]).unwrap();
        let own = Ownership {
            namespace_prefix: format!("{h}-"),
        };
        let d = DesiredHost {
            bridges: BTreeMap::from([(
                "brq-net1".to_string(),
                Bridge {
                    name: "brq-net1".into(),
                    mtu: 1450,
                    uplink: Uplink::Vxlan(Vxlan {
                        name: "vxlan-100".into(),
                        vni: 100,
                        local,
                        dstport: 4789,
                        flood: BTreeSet::from([remote]),
                        macs: BTreeMap::new(),
                    }),
                    members: BTreeSet::from(["tapvm".to_string()]),
                },
            )]),
            endpoints: BTreeMap::new(),
            ns_routing: BTreeMap::new(),
        };
        let again = netns::run_in(h, || {
            converge(&d, &own);
            replan(&d, &own)
        })
        .unwrap();
        assert_eq!(again, vec![]);
    }

    let mut ok = false;
    for _ in 0..5 {
        let st = Command::new("ip")
            .args(["netns", "exec", &va, "ping", "-c1", "-W1", "192.168.50.2"])
            .status()
            .expect("ip netns exec ping (iputils-ping installed?)");
        if st.success() {
            ok = true;
            break;
        }
    }
    assert!(ok, "vmA could not ping vmB across the VXLAN");
}

#[test]
fn physical_uplink_enslaved_mtu_left_alone() {
    let Some(t) = setup() else { return };
    let own = t.own();
    let peer = t.name("phys");
    netns::create(&peer).unwrap();
    // A veth stands in for the NIC; it has a bigger MTU than the bridge.
    plug_veth("phys0", &peer, "eth0", M1, 9000).unwrap();
    let b = Bridge {
        name: "brq-phys".into(),
        mtu: 1500,
        uplink: Uplink::Physical {
            ifname: "phys0".into(),
        },
        members: BTreeSet::new(),
    };
    let d = desired(vec![b], vec![]);
    converge(&d, &own);
    assert_eq!(replan(&d, &own), vec![], "bridge MTU must stay pinned");
    let phys = link_json(None, "phys0");
    assert_eq!(phys["master"], "brq-phys");
    assert_eq!(phys["mtu"], 9000);
    assert_eq!(link_json(None, "brq-phys")["mtu"], 1500);
    // Bridge gone: the NIC stays.
    converge(&DesiredHost::default(), &own);
    assert!(link_json(None, "phys0").get("master").is_none());
}

#[test]
fn apply_reports_the_failing_op_and_keeps_going() {
    let Some(_t) = setup() else { return };
    let ops = [
        Op::CreateBridge {
            name: "brq-x".into(),
            mtu: 1500,
        },
        Op::SetMaster {
            link: "nosuchdev".into(),
            master: "brq-x".into(),
        },
        Op::SetUp {
            link: "brq-x".into(),
        },
    ];
    let err = host().apply(&ops).unwrap_err();
    assert_eq!(err.failed.len(), 1, "{err}");
    assert_eq!(err.failed[0].index, 1);
    assert_eq!(*err.failed[0].op, ops[1]);
    assert_eq!(
        err.failed[0].object,
        neutrino_dataplane::Object::Link("nosuchdev".into())
    );
    assert!(err.skipped.is_empty(), "{err}");
    // A failed enslavement holds nothing back: the bridge came up.
    let br = link_json(None, "brq-x");
    assert!(
        br["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{br}"
    );
}

#[test]
fn apply_skips_only_what_depends_on_a_failed_op() {
    let Some(_t) = setup() else { return };
    let taken = |name: &str| Op::CreateBridge {
        name: name.into(),
        mtu: 1500,
    };
    // A foreign veth holds the name the first bridge wants.
    let out = Command::new("ip")
        .args([
            "link",
            "add",
            "brq-busy",
            "type",
            "veth",
            "peer",
            "name",
            "busy-peer",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ops = [
        taken("brq-busy"),
        taken("brq-ok"),
        Op::CreateVxlan {
            name: "vxlan-7".into(),
            vni: 7,
            local: Ipv4Addr::new(10, 0, 0, 1),
            dstport: 4789,
            mtu: 1450,
        },
        Op::SetMaster {
            link: "vxlan-7".into(),
            master: "brq-busy".into(),
        },
        Op::SetUp {
            link: "brq-busy".into(),
        },
        Op::SetMaster {
            link: "vxlan-7".into(),
            master: "brq-ok".into(),
        },
        Op::SetUp {
            link: "brq-ok".into(),
        },
    ];
    let err = host().apply(&ops).unwrap_err();
    let failed: Vec<usize> = err.failed.iter().map(|e| e.index).collect();
    assert_eq!(failed, [0], "{err}");
    assert_eq!(
        err.failed[0].object,
        neutrino_dataplane::Object::Link("brq-busy".into())
    );
    let skipped: Vec<usize> = err.skipped.iter().map(|s| s.0).collect();
    assert_eq!(skipped, [3, 4], "{err}");
    // Everything else took effect.
    let ok = link_json(None, "brq-ok");
    assert!(
        ok["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{ok}"
    );
    assert_eq!(link_json(None, "vxlan-7")["master"], "brq-ok");

    // Held back by the caller: skipped from the start, nothing else.
    let held = BTreeSet::from([neutrino_dataplane::Object::Link("brq-ok".into())]);
    let err = host()
        .apply_holding(
            &[
                Op::SetMtu {
                    link: "brq-ok".into(),
                    mtu: 1400,
                },
                Op::SetMtu {
                    link: "vxlan-7".into(),
                    mtu: 1400,
                },
            ],
            &held,
        )
        .unwrap_err();
    assert!(err.failed.is_empty(), "{err}");
    assert_eq!(err.skipped.len(), 1, "{err}");
    assert_eq!(link_json(None, "vxlan-7")["mtu"], 1400);
}
