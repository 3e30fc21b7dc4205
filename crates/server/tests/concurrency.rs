//! 32 concurrent clients exhaust a /22 subnet: exactly the 1021 pool addresses are
//! handed out, each once, every failure is 409 IpAddressGenerationFailure, and the
//! server's listing matches what the clients were given.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Server, free_port, ipv4, make_network, neutron_error_type, port_ips};
use serde_json::json;

const CLIENTS: usize = 32;
const POOL_START: &str = "10.0.0.2";
const POOL_END: &str = "10.0.3.254";
const POOL_SIZE: usize = 1021;

#[derive(Debug)]
enum Outcome {
    Created {
        id: String,
        ips: Vec<String>,
        mac: String,
        subnets: Vec<String>,
    },
    Exhausted,
    Other(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_port_creates_exhaust_a_22_exactly_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(tmp.path(), &tmp.path().join("data"), free_port()).await;
    let mut c = server.client();

    let (net, subnet) = make_network(&mut c, "conc", "10.0.0.0/22").await;
    let subnet_id = subnet["id"].as_str().expect("subnet id").to_string();
    assert_eq!(
        subnet["allocation_pools"],
        json!([{"start": POOL_START, "end": POOL_END}]),
        "default allocation pool of 10.0.0.0/22: {subnet}"
    );

    let mut tasks = Vec::new();
    for w in 0..CLIENTS {
        let addr = server.addr();
        let net = net.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = common::Client::new(&addr);
            let mut outcomes = Vec::new();
            // Bounded so a server that never says 409 cannot hang the test.
            for i in 0..(POOL_SIZE + 64) {
                let body = json!({"port": {"network_id": net, "name": format!("w{w}-{i}")}});
                let o = match c.post("/v2.0/ports", &body).await {
                    Ok((201, v)) => {
                        let p = &v["port"];
                        let (id, ips) = port_ips(p);
                        let subnets = p["fixed_ips"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|f| f["subnet_id"].as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let mac = p["mac_address"].as_str().unwrap_or_default().to_string();
                        Outcome::Created {
                            id,
                            ips,
                            mac,
                            subnets,
                        }
                    }
                    Ok((409, v))
                        if neutron_error_type(&v) == Some("IpAddressGenerationFailure") =>
                    {
                        Outcome::Exhausted
                    }
                    Ok((st, v)) => Outcome::Other(format!("POST /v2.0/ports {body} -> {st} {v}")),
                    Err(e) => {
                        Outcome::Other(format!("POST /v2.0/ports {body} -> transport error: {e}"))
                    }
                };
                let stop = !matches!(o, Outcome::Created { .. });
                outcomes.push(o);
                if stop {
                    break;
                }
            }
            outcomes
        }));
    }

    let mut created: BTreeMap<String, Vec<String>> = BTreeMap::new(); // id -> ips
    let mut by_ip: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut macs: BTreeMap<String, usize> = BTreeMap::new();
    let mut exhausted = 0;
    let mut others = Vec::new();
    let mut bad_ports = Vec::new();
    for t in tasks {
        for o in t.await.expect("client task panicked") {
            match o {
                Outcome::Created {
                    id,
                    ips,
                    mac,
                    subnets,
                } => {
                    if ips.len() != 1 || subnets != vec![subnet_id.clone()] {
                        bad_ports.push(format!("{id}: ips {ips:?} subnets {subnets:?}"));
                    }
                    for ip in &ips {
                        by_ip.entry(ipv4(ip)).or_default().push(id.clone());
                    }
                    *macs.entry(mac).or_default() += 1;
                    assert!(
                        created.insert(id.clone(), ips).is_none(),
                        "port id {id} returned twice"
                    );
                }
                Outcome::Exhausted => exhausted += 1,
                Outcome::Other(s) => others.push(s),
            }
        }
    }

    assert!(
        others.is_empty(),
        "{} unexpected responses (want only 201 and 409 IpAddressGenerationFailure), first ones:\n{}",
        others.len(),
        others
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        bad_ports.is_empty(),
        "ports without exactly one fixed IP on the subnet: {bad_ports:?}"
    );
    assert_eq!(
        exhausted, CLIENTS,
        "every client must end with a 409 IpAddressGenerationFailure"
    );
    let dups: Vec<_> = by_ip.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        dups.is_empty(),
        "IP addresses given to more than one port: {dups:?}"
    );
    let (lo, hi) = (ipv4(POOL_START), ipv4(POOL_END));
    let outside: Vec<_> = by_ip
        .keys()
        .filter(|ip| **ip < lo || **ip > hi)
        .map(|ip| std::net::Ipv4Addr::from(*ip))
        .collect();
    assert!(
        outside.is_empty(),
        "addresses outside the pool {POOL_START}-{POOL_END}: {outside:?}"
    );
    assert_eq!(created.len(), POOL_SIZE, "number of 201 Created");
    assert_eq!(by_ip.len(), POOL_SIZE, "distinct addresses handed out");
    let dup_macs: Vec<_> = macs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup_macs.is_empty(), "duplicate MAC addresses: {dup_macs:?}");

    // The server's view matches what the clients were told.
    let list = c.get_ok(&format!("/v2.0/ports?network_id={net}")).await;
    let listed: BTreeMap<String, Vec<String>> = list["ports"]
        .as_array()
        .expect("ports array")
        .iter()
        .map(port_ips)
        .collect();
    assert_eq!(
        list["ports"].as_array().map(Vec::len),
        Some(POOL_SIZE),
        "ports listed on the network"
    );
    if listed != created {
        let only_listed: Vec<_> = listed
            .iter()
            .filter(|(k, v)| created.get(*k) != Some(v))
            .take(5)
            .collect();
        let only_created: Vec<_> = created
            .iter()
            .filter(|(k, v)| listed.get(*k) != Some(v))
            .take(5)
            .collect();
        panic!(
            "listing differs from the 201 responses: listed-only {only_listed:?}, created-only {only_created:?}"
        );
    }
    let listed_ips: BTreeSet<&String> = listed.values().flatten().collect();
    assert_eq!(
        listed_ips.len(),
        POOL_SIZE,
        "distinct addresses in the listing"
    );

    // Still full after the storm: one more create is a clean 409.
    let (st, v) = c
        .post("/v2.0/ports", &json!({"port": {"network_id": net}}))
        .await
        .expect("transport");
    assert_eq!(
        (st, neutron_error_type(&v)),
        (409, Some("IpAddressGenerationFailure")),
        "create on a full subnet: {v}"
    );

    // Freeing one address makes exactly that one available again.
    let (victim, ips) = created
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("one port");
    let (st, v) = c
        .delete(&format!("/v2.0/ports/{victim}"))
        .await
        .expect("transport");
    assert_eq!(st, 204, "DELETE /v2.0/ports/{victim}: {v}");
    let p = c
        .post_ok("/v2.0/ports", &json!({"port": {"network_id": net}}), 201)
        .await;
    assert_eq!(
        port_ips(&p["port"]).1,
        ips,
        "the only free address must be reused"
    );

    // SIGTERM is a graceful stop.
    let st = server.terminate(std::time::Duration::from_secs(30));
    assert!(st.is_some(), "neutrino did not exit within 30 s of SIGTERM");
    let st = st.expect("status");
    assert!(st.success(), "neutrino exit status after SIGTERM: {st}");
}
