use super::*;
use neutrino_agent_rpc::{ExtraDhcpOpt, FixedIp, HostRoute, NetworkInfo};
use std::sync::Arc;

fn cfg(host: &str, mode: DhcpMode) -> AgentConfig {
    let mut c = AgentConfig::default();
    c.agent.host = host.into();
    c.agent.namespace_prefix = "t-".into();
    c.l2.tunnel_ip = Some("192.0.2.1".parse().unwrap());
    c.l2.physical_interface_mappings
        .insert("physnet1".into(), "eth1".into());
    c.dhcp.mode = mode;
    c
}

fn net(id: &str, ty: &str) -> NetworkInfo {
    NetworkInfo {
        id: id.into(),
        name: id.into(),
        project_id: "p".into(),
        network_type: ty.into(),
        physical_network: (ty == "flat").then(|| "physnet1".into()),
        segmentation_id: (ty == "vxlan").then_some(42),
        mtu: 1450,
        admin_state_up: true,
    }
}

fn subnet(id: &str, net: &str, cidr: &str) -> SubnetInfo {
    SubnetInfo {
        id: id.into(),
        network_id: net.into(),
        ip_version: 4,
        cidr: cidr.into(),
        gateway_ip: Some("10.0.0.1".into()),
        enable_dhcp: true,
        dns_nameservers: vec!["10.0.0.53".into()],
        host_routes: vec![HostRoute {
            destination: "172.16.0.0/16".into(),
            nexthop: "10.0.0.254".into(),
        }],
    }
}

fn port(id: &str, net: &str, host: &str, mac: &str, ip: &str, owner: &str) -> PortInfo {
    PortInfo {
        id: id.into(),
        network_id: net.into(),
        mac_address: mac.into(),
        fixed_ips: vec![FixedIp {
            subnet_id: "s1".into(),
            ip_address: ip.into(),
        }],
        host: host.into(),
        device_owner: owner.into(),
        device_id: String::new(),
        admin_state_up: true,
        status: "DOWN".into(),
        dns_name: String::new(),
        extra_dhcp_opts: Vec::new(),
        port_security_enabled: !owner.starts_with("network:"),
        security_groups: vec!["sg".into()],
        allowed_address_pairs: Vec::new(),
    }
}

fn view(ports: Vec<PortInfo>) -> HostView {
    let mut v = HostView::default();
    v.initialized = true;
    v.dns_domain = "openstacklocal".into();
    v.upsert_network(net("n1", "vxlan"));
    v.upsert_subnet(subnet("s1", "n1", "10.0.0.0/24"));
    for p in ports {
        v.upsert_port(p);
    }
    v.vteps.insert("h1".into(), "192.0.2.1".into());
    v.vteps.insert("h2".into(), "192.0.2.2".into());
    v.vteps.insert("h3".into(), "192.0.2.3".into());
    v
}

const VM: &str = "compute:nova";
const DHCP: &str = "network:dhcp";

/// h1's DHCP port on n1.
fn my_dhcp_port() -> PortInfo {
    port(
        "pd-dhcp-port",
        "n1",
        "h1",
        "fa:16:3e:00:00:09",
        "10.0.0.2",
        DHCP,
    )
}

/// A feed delta that keeps the view's VTEPs and domain.
fn delta(v: &HostView, revision: u64) -> neutrino_agent_rpc::FeedReply {
    neutrino_agent_rpc::FeedReply {
        revision,
        vteps: v.vteps.clone(),
        dns_domain: v.dns_domain.clone(),
        ..Default::default()
    }
}

#[test]
fn vxlan_floods_and_pins_only_remote_ports() {
    let v = view(vec![
        port(
            "pa-local-vm1",
            "n1",
            "h1",
            "fa:16:3e:00:00:01",
            "10.0.0.5",
            VM,
        ),
        port(
            "pb-remote-vm",
            "n1",
            "h2",
            "fa:16:3e:00:00:02",
            "10.0.0.6",
            VM,
        ),
        port(
            "pc-unbound-p",
            "n1",
            "",
            "fa:16:3e:00:00:03",
            "10.0.0.7",
            VM,
        ),
        // A multicast-bit MAC is reached by flooding, not pinned.
        port(
            "pd-group-mac",
            "n1",
            "h3",
            "11:22:33:44:55:66",
            "10.0.0.8",
            VM,
        ),
    ]);
    let d = compute(&v, &cfg("h1", DhcpMode::Off));
    let b = &d.host.bridges[&names::bridge("n1")];
    assert_eq!(b.mtu, 1450);
    assert_eq!(b.members, BTreeSet::from([names::tap("pa-local-vm1")]));
    let Uplink::Vxlan(x) = &b.uplink else {
        panic!("vxlan uplink")
    };
    assert_eq!((x.vni, x.name.as_str(), x.dstport), (42, "vxlan-42", 4789));
    assert_eq!(
        x.flood,
        BTreeSet::from(["192.0.2.2".parse().unwrap(), "192.0.2.3".parse().unwrap()])
    );
    assert_eq!(
        x.macs,
        BTreeMap::from([(
            Mac::new([0xfa, 0x16, 0x3e, 0, 0, 2]),
            "192.0.2.2".parse().unwrap()
        )])
    );
    assert!(d.dhcp.is_empty() && d.need_dhcp_port.is_empty());
    assert_eq!(d.local_ports.len(), 1);
}

#[test]
fn unmappable_networks_are_problems_not_bridges() {
    let mut v = view(vec![]);
    let mut flat = net("n2", "flat");
    flat.physical_network = Some("physnet9".into());
    v.upsert_network(flat);
    v.upsert_network(net("n3", "vlan"));
    let mut c = cfg("h1", DhcpMode::Off);
    c.l2.tunnel_ip = None;
    let d = compute(&v, &c);
    assert!(d.host.bridges.is_empty());
    assert_eq!(d.problems.len(), 3, "{:?}", d.problems);

    let mut v = view(vec![]);
    v.upsert_network(net("n2", "flat"));
    v.upsert_network(net("n4", "local"));
    let d = compute(&v, &cfg("h1", DhcpMode::Off));
    assert_eq!(
        d.host.bridges[&names::bridge("n2")].uplink,
        Uplink::Physical {
            ifname: "eth1".into()
        }
    );
    assert_eq!(d.host.bridges[&names::bridge("n4")].uplink, Uplink::None);
}

#[test]
fn dhcp_node_asks_for_its_port_then_serves_every_port() {
    let vm1 = port(
        "pa-local-vm1",
        "n1",
        "h2",
        "fa:16:3e:00:00:01",
        "10.0.0.5",
        VM,
    );
    let mut vm2 = port(
        "pb-remote-vm",
        "n1",
        "h3",
        "fa:16:3e:00:00:02",
        "10.0.0.6",
        VM,
    );
    vm2.dns_name = "web1".into();
    vm2.extra_dhcp_opts = vec![
        ExtraDhcpOpt {
            opt_name: "mtu".into(),
            opt_value: "1400".into(),
            ip_version: 4,
        },
        ExtraDhcpOpt {
            opt_name: "mtu".into(),
            opt_value: "1280".into(),
            ip_version: 6,
        },
    ];
    let d = compute(
        &view(vec![vm1.clone(), vm2.clone()]),
        &cfg("h1", DhcpMode::All),
    );
    assert_eq!(d.need_dhcp_port, BTreeSet::from(["n1".to_string()]));
    assert!(d.dhcp.is_empty());

    let dp = my_dhcp_port();
    let d = compute(&view(vec![vm1, vm2, dp]), &cfg("h1", DhcpMode::All));
    assert!(d.need_dhcp_port.is_empty());
    let svc = &d.dhcp["n1"];
    assert_eq!(svc.namespace, "t-qdhcp-n1");
    assert_eq!(svc.interface, names::dhcp_ns_side("pd-dhcp-port"));
    assert_eq!(svc.subnets.len(), 1);
    let s = &svc.subnets[0];
    assert_eq!(
        (s.server_ip, s.prefix, s.gateway),
        (
            "10.0.0.2".parse().unwrap(),
            24,
            Some("10.0.0.1".parse().unwrap())
        )
    );
    // No router holds the gateway: the metadata service's route is this port.
    assert_eq!(
        s.routes,
        vec![
            (
                "172.16.0.0".parse().unwrap(),
                16,
                "10.0.0.254".parse().unwrap()
            ),
            (METADATA_IP, 32, "10.0.0.2".parse().unwrap())
        ]
    );
    let hosts: Vec<(&str, &str)> = svc
        .hosts
        .iter()
        .map(|h| (h.port_id.as_str(), h.hostname.as_str()))
        .collect();
    assert_eq!(
        hosts,
        vec![("pa-local-vm1", "host-10-0-0-5"), ("pb-remote-vm", "web1")]
    );
    assert_eq!(
        svc.hosts[1].extra,
        vec![("mtu".to_string(), "1400".to_string())]
    );
    let ep = d
        .host
        .endpoints
        .values()
        .find(|e| e.namespace == "t-qdhcp-n1")
        .unwrap();
    assert_eq!(
        ep.addrs,
        BTreeSet::from([
            ("10.0.0.2".parse().unwrap(), 24),
            (IpAddr::V4(METADATA_IP), 32)
        ])
    );
    assert_eq!(ep.bridge, names::bridge("n1"));
    assert!(d.local_ports.contains_key("pd-dhcp-port"));
}

#[test]
fn multi_host_serves_only_its_own_instances_and_lets_go_of_idle_ports() {
    let vm_here = port(
        "pa-local-vm1",
        "n1",
        "h1",
        "fa:16:3e:00:00:01",
        "10.0.0.5",
        VM,
    );
    let vm_there = port(
        "pb-remote-vm",
        "n1",
        "h2",
        "fa:16:3e:00:00:02",
        "10.0.0.6",
        VM,
    );
    let dp = my_dhcp_port();
    let d = compute(
        &view(vec![vm_here, vm_there.clone(), dp.clone()]),
        &cfg("h1", DhcpMode::Local),
    );
    let ids: Vec<&str> = d.dhcp["n1"]
        .hosts
        .iter()
        .map(|h| h.port_id.as_str())
        .collect();
    assert_eq!(ids, vec!["pa-local-vm1"]);
    // The last local instance went: the DHCP port is given back.
    let d = compute(&view(vec![vm_there, dp]), &cfg("h1", DhcpMode::Local));
    assert_eq!(d.drop_dhcp_port, BTreeSet::from(["n1".to_string()]));
    assert!(d.dhcp.is_empty());
}

#[test]
fn a_new_dhcp_subnet_asks_to_complete_the_port() {
    let dp = my_dhcp_port();
    let mut v = view(vec![dp]);
    v.upsert_subnet(subnet("s2", "n1", "10.9.0.0/24"));
    let mut no_dhcp = subnet("s3", "n1", "10.8.0.0/24");
    no_dhcp.enable_dhcp = false;
    v.upsert_subnet(no_dhcp);
    let d = compute(&v, &cfg("h1", DhcpMode::All));
    assert_eq!(d.need_dhcp_port, BTreeSet::from(["n1".to_string()]));
    // Meanwhile the subnet it has is served.
    assert_eq!(d.dhcp["n1"].subnets.len(), 1);
}

#[test]
fn an_admin_down_port_is_kept_off_the_bridge() {
    let mut vm = port(
        "pa-local-vm1",
        "n1",
        "h1",
        "fa:16:3e:00:00:01",
        "10.0.0.5",
        VM,
    );
    vm.admin_state_up = false;
    let d = compute(&view(vec![vm]), &cfg("h1", DhcpMode::Off));
    assert!(d.host.bridges[&names::bridge("n1")].members.is_empty());
    // Still this host's port: reported (DOWN, since it is not wired).
    assert!(d.local_ports.contains_key("pa-local-vm1"));
}

/// Not a test of behaviour: prints how long `compute` takes for a big host
/// (`cargo test --release -p neutrino-agent -- --ignored --nocapture`).
#[test]
#[ignore]
fn compute_cost_at_10k_ports() {
    let mut v = HostView::default();
    v.initialized = true;
    for n in 0..50 {
        let net_id = format!("net{n:03}");
        let mut net = net(&net_id, "vxlan");
        net.segmentation_id = Some(100 + n);
        v.upsert_network(net);
        let mut s = subnet(&format!("sub{n:03}"), &net_id, "10.0.0.0/20");
        s.id = format!("sub{n:03}");
        v.upsert_subnet(s);
        let mut dp = port(
            &format!("dhcp{n:03}"),
            &net_id,
            "h1",
            "fa:16:3e:ff:00:01",
            "10.0.0.2",
            DHCP,
        );
        dp.fixed_ips[0].subnet_id = format!("sub{n:03}");
        v.upsert_port(dp);
        for i in 0..200u32 {
            let mac = format!("fa:16:3e:{:02x}:{:02x}:{:02x}", n, i / 256, i % 256);
            let mut p = port(
                &format!("p{n:03}-{i:05}"),
                &net_id,
                "h1",
                &mac,
                &format!("10.0.{}.{}", i / 250, 3 + i % 250),
                VM,
            );
            p.fixed_ips[0].subnet_id = format!("sub{n:03}");
            v.upsert_port(p);
        }
    }
    let c = cfg("h1", DhcpMode::All);
    let start = std::time::Instant::now();
    let runs = 20;
    let mut hosts = 0;
    for _ in 0..runs {
        hosts += compute(&v, &c)
            .dhcp
            .values()
            .map(|s| s.hosts.len())
            .sum::<usize>();
    }
    println!(
        "compute at 10,000 ports / 50 networks: {:?} per call ({hosts} hosts)",
        start.elapsed() / runs
    );
    // The agent's case: one port changes between passes.
    let mut planner = Planner::default();
    planner.compute(&v, &c);
    let start = std::time::Instant::now();
    for i in 0..runs {
        let mut p = port(
            &format!("new-{i}"),
            "net007",
            "h1",
            "fa:16:3e:aa:00:01",
            "10.0.9.9",
            VM,
        );
        p.fixed_ips[0].subnet_id = "sub007".into();
        v.upsert_port(p);
        planner.compute(&v, &c);
    }
    println!(
        "incremental, one port added: {:?} per call",
        start.elapsed() / runs
    );
}

#[test]
fn the_planner_redoes_only_changed_networks_and_agrees_with_a_full_compute() {
    let mut v = view(vec![my_dhcp_port()]);
    let mut other = net("n2", "vxlan");
    other.segmentation_id = Some(43);
    v.upsert_network(other);
    v.upsert_subnet(subnet("s2", "n2", "10.2.0.0/24"));
    let mut dp2 = port(
        "pe-dhcp-port",
        "n2",
        "h1",
        "fa:16:3e:00:00:0a",
        "10.2.0.2",
        DHCP,
    );
    dp2.fixed_ips[0].subnet_id = "s2".into();
    v.upsert_port(dp2);
    let c = cfg("h1", DhcpMode::All);
    let mut planner = Planner::default();
    let first = planner.compute(&v, &c);
    assert_eq!(first, compute(&v, &c));

    // A port joins n1: n1's service is rebuilt, n2's is the very same Arc.
    v.upsert_port(port(
        "pa-local-vm1",
        "n1",
        "h2",
        "fa:16:3e:00:00:01",
        "10.0.0.5",
        VM,
    ));
    let second = planner.compute(&v, &c);
    assert_eq!(second, compute(&v, &c));
    assert!(Arc::ptr_eq(&first.dhcp["n2"], &second.dhcp["n2"]));
    assert!(!Arc::ptr_eq(&first.dhcp["n1"], &second.dhcp["n1"]));
    assert_eq!(second.dhcp["n1"].hosts.len(), 1);

    // Something every network depends on (a new VTEP) redoes them all.
    let mut r = neutrino_agent_rpc::FeedReply {
        revision: 9,
        ..Default::default()
    };
    r.vteps = v.vteps.clone();
    r.vteps.insert("h4".into(), "192.0.2.4".into());
    r.dns_domain = v.dns_domain.clone();
    v.apply(r);
    let third = planner.compute(&v, &c);
    assert_eq!(third, compute(&v, &c));
    assert!(!Arc::ptr_eq(&second.dhcp["n2"], &third.dhcp["n2"]));
    // A network that leaves the view leaves the result.
    v.apply(neutrino_agent_rpc::FeedReply {
        deleted_networks: vec!["n2".into()],
        ..delta(&v, 10)
    });
    let fourth = planner.compute(&v, &c);
    assert_eq!(fourth, compute(&v, &c));
    assert!(!fourth.dhcp.contains_key("n2"));
}

#[test]
fn the_planner_sees_a_deleted_port() {
    let dp = my_dhcp_port();
    let vm = port(
        "pa-local-vm1",
        "n1",
        "h2",
        "fa:16:3e:00:00:01",
        "10.0.0.5",
        VM,
    );
    let mut v = view(vec![dp, vm]);
    let c = cfg("h1", DhcpMode::All);
    let mut planner = Planner::default();
    assert_eq!(planner.compute(&v, &c).dhcp["n1"].hosts.len(), 1);
    v.apply(neutrino_agent_rpc::FeedReply {
        deleted_ports: vec!["pa-local-vm1".into()],
        ..delta(&v, 20)
    });
    assert_eq!(planner.compute(&v, &c).dhcp["n1"].hosts.len(), 0);
}

#[test]
fn the_planner_sees_a_network_change_and_a_subnet_going() {
    let dp = my_dhcp_port();
    let mut v = view(vec![dp]);
    let c = cfg("h1", DhcpMode::All);
    let mut planner = Planner::default();
    assert_eq!(
        planner.compute(&v, &c).host.bridges[&names::bridge("n1")].mtu,
        1450
    );
    let mut n = net("n1", "vxlan");
    n.mtu = 1400;
    v.upsert_network(n);
    assert_eq!(
        planner.compute(&v, &c).host.bridges[&names::bridge("n1")].mtu,
        1400
    );
    v.apply(neutrino_agent_rpc::FeedReply {
        deleted_subnets: vec!["s1".into()],
        ..delta(&v, 30)
    });
    let d = planner.compute(&v, &c);
    assert_eq!(d, compute(&v, &c));
    assert!(d.dhcp.is_empty() && d.drop_dhcp_port.contains("n1"));
}

#[test]
fn an_isolated_network_gets_metadata_in_its_dhcp_namespace_a_routed_one_does_not() {
    let vm = port("pa-vm", "n1", "h2", "fa:16:3e:00:00:01", "10.0.0.5", VM);
    let d = compute(
        &view(vec![vm.clone(), my_dhcp_port()]),
        &cfg("h1", DhcpMode::All),
    );
    let listener = &d.metadata["t-qdhcp-n1"];
    assert_eq!(listener.arrival, Arrival::Network("n1".into()));
    assert_eq!(listener.bind, "169.254.169.254:80".parse().unwrap());
    let ep = &d.host.endpoints[&names::tap("pd-dhcp-port")];
    assert!(
        ep.addrs.contains(&(IpAddr::V4(METADATA_IP), 32)),
        "{:?}",
        ep.addrs
    );

    // A router interface holds the gateway: the router answers, not DHCP.
    let leg = port(
        "pr-leg",
        "n1",
        "",
        "fa:16:3e:00:00:09",
        "10.0.0.1",
        "network:router_interface",
    );
    let d = compute(
        &view(vec![vm.clone(), my_dhcp_port(), leg]),
        &cfg("h1", DhcpMode::All),
    );
    assert!(d.metadata.is_empty());
    assert!(
        !d.dhcp["n1"].subnets[0]
            .routes
            .iter()
            .any(|r| r.0 == METADATA_IP)
    );
    let ep = &d.host.endpoints[&names::tap("pd-dhcp-port")];
    assert!(!ep.addrs.contains(&(IpAddr::V4(METADATA_IP), 32)));

    // Switched off: neither the listener nor the route.
    let mut off = cfg("h1", DhcpMode::All);
    off.metadata.enabled = false;
    let d = compute(&view(vec![vm, my_dhcp_port()]), &off);
    assert!(d.metadata.is_empty());
    assert_eq!(d.dhcp["n1"].subnets[0].routes.len(), 1);
}
