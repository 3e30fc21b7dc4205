//! Crash safety: 16 clients create ports on a /16, the server is SIGKILLed mid-load
//! (three times) and restarted on the same data dir. Every port whose create returned
//! 201 must still exist with the same fixed IP, no IP may be held by two ports, no port
//! may appear that no client asked for, and the server must start cleanly each time.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Client, Server, free_port, make_network, port_ips};
use serde_json::{Value, json};

const CLIENTS: usize = 16;
/// One SIGKILL per entry, once this many creates of the round have been acknowledged.
const ACKED_BEFORE_KILL: [usize; 3] = [200, 1000, 2500];
const CIDR: &str = "10.1.0.0/16";

/// What one client saw in one round.
#[derive(Default)]
struct ClientLog {
    /// name -> (id, ip) for every 201.
    acked: Vec<(String, String, String)>,
    /// Name of the request that got no response (outcome unknown).
    in_flight: Option<String>,
    /// HTTP responses other than 201 (a bug).
    unexpected: Vec<String>,
}

async fn load_round(
    addr: String,
    net: String,
    round: usize,
    acked_count: Arc<AtomicUsize>,
    killing: Arc<AtomicBool>,
) -> Vec<ClientLog> {
    let mut tasks = Vec::new();
    for w in 0..CLIENTS {
        let (addr, net, acked_count, killing) = (
            addr.clone(),
            net.clone(),
            acked_count.clone(),
            killing.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut c = Client::new(&addr);
            let mut log = ClientLog::default();
            // Bounded: the main task kills the server long before this.
            for i in 0..20_000 {
                let name = format!("crash-r{round}-w{w}-{i}");
                let body = json!({"port": {"network_id": net, "name": name}});
                match c.post("/v2.0/ports", &body).await {
                    Ok((201, v)) => {
                        let (id, ips) = port_ips(&v["port"]);
                        if ips.len() != 1 {
                            log.unexpected.push(format!(
                                "{name}: 201 with fixed_ips {}",
                                v["port"]["fixed_ips"]
                            ));
                        }
                        log.acked
                            .push((name, id, ips.first().cloned().unwrap_or_default()));
                        acked_count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((st, v)) => {
                        log.unexpected
                            .push(format!("POST /v2.0/ports {body} -> {st} {v}"));
                        break;
                    }
                    Err(e) => {
                        // Only the kill may cut a request off.
                        if !killing.load(Ordering::SeqCst) {
                            log.unexpected.push(format!(
                                "POST /v2.0/ports {body} -> transport error before the kill: {e}"
                            ));
                        }
                        log.in_flight = Some(name);
                        break;
                    }
                }
            }
            log
        }));
    }
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.expect("client task panicked"));
    }
    logs
}

/// Checks the stored state against everything acknowledged so far.
async fn verify(
    c: &mut Client,
    net: &str,
    acked: &BTreeMap<String, (String, String)>,
    maybe: &BTreeSet<String>,
) {
    // Every acknowledged port exists with the same address.
    for (name, (id, ip)) in acked {
        let v = match c.get(&format!("/v2.0/ports/{id}")).await {
            Ok((200, v)) => v,
            other => panic!(
                "port {name} ({id}, {ip}) was created (201) but after the restart GET /v2.0/ports/{id} -> {other:?}"
            ),
        };
        let (_, ips) = port_ips(&v["port"]);
        assert_eq!(
            ips,
            vec![ip.clone()],
            "port {name} ({id}) lost or changed its address: {v}"
        );
    }
    // The listing: no address held twice, every acked port present, nothing unexplained.
    let list = c.get_ok(&format!("/v2.0/ports?network_id={net}")).await;
    let ports = list["ports"].as_array().expect("ports array");
    let mut by_ip: HashMap<String, Vec<String>> = HashMap::new();
    let mut names = BTreeSet::new();
    for p in ports {
        let (id, ips) = port_ips(p);
        for ip in ips {
            by_ip.entry(ip).or_default().push(id.clone());
        }
        names.insert(p["name"].as_str().unwrap_or_default().to_string());
    }
    let committed = maybe.iter().filter(|n| names.contains(*n)).count();
    eprintln!(
        "  creates cut off by the kills: {}, of which committed: {committed}",
        maybe.len()
    );
    let dups: Vec<_> = by_ip.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        dups.is_empty(),
        "addresses held by more than one port after restart: {dups:?}"
    );
    let missing: Vec<_> = acked
        .keys()
        .filter(|n| !names.contains(*n))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged ports missing from GET /v2.0/ports?network_id=: {missing:?}"
    );
    let phantom: Vec<_> = names
        .iter()
        .filter(|n| !acked.contains_key(*n) && !maybe.contains(*n))
        .take(10)
        .collect();
    assert!(
        phantom.is_empty(),
        "ports in the listing that no client created (not 201, not in flight at the kill): {phantom:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_ports_survive_sigkill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let port = free_port();
    let mut server = Server::start(tmp.path(), &data, port).await;
    let mut c = server.client();
    let (net, subnet) = make_network(&mut c, "crash", CIDR).await;

    // name -> (id, ip) of every 201 across all rounds; names whose outcome is unknown.
    let mut acked: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut maybe: BTreeSet<String> = BTreeSet::new();

    for (round, kill_at) in ACKED_BEFORE_KILL.into_iter().enumerate() {
        let acked_count = Arc::new(AtomicUsize::new(0));
        let killing = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(load_round(
            server.addr(),
            net.clone(),
            round,
            acked_count.clone(),
            killing.clone(),
        ));
        let t0 = Instant::now();
        while acked_count.load(Ordering::Relaxed) < kill_at {
            if load.is_finished() {
                break; // every client stopped (an unexpected response): reported below
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "round {round}: fewer than {kill_at} ports created in 300 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!(
            "round {round}: {kill_at} creates acknowledged after {:?}",
            t0.elapsed()
        );
        killing.store(true, Ordering::SeqCst);
        let status = server.kill9();
        let logs = load.await.expect("load task");
        let unexpected: Vec<&String> = logs.iter().flat_map(|l| l.unexpected.iter()).collect();
        assert!(
            unexpected.is_empty(),
            "round {round}: unexpected responses under load: {unexpected:?}"
        );
        let n_acked: usize = logs.iter().map(|l| l.acked.len()).sum();
        eprintln!("round {round}: killed ({status}) after {n_acked} acknowledged creates");
        for l in logs {
            for (name, id, ip) in l.acked {
                assert!(
                    acked.insert(name.clone(), (id, ip)).is_none(),
                    "duplicate name {name}"
                );
            }
            maybe.extend(l.in_flight);
        }
        let ips: BTreeSet<&String> = acked.values().map(|(_, ip)| ip).collect();
        assert_eq!(
            ips.len(),
            acked.len(),
            "round {round}: two 201 responses carried the same IP"
        );

        // Restart on the same data dir and port: it must come up and answer GET /.
        let t_restart = Instant::now();
        server = Server::start(tmp.path(), &data, port).await;
        eprintln!("round {round}: restarted in {:?}", t_restart.elapsed());
        let mut c = server.client();
        let (st, _) = c.get_raw("/").await.expect("GET / after restart");
        assert_eq!(st, 200, "GET / after restart");
        let v = c
            .get_ok(&format!(
                "/v2.0/subnets/{}",
                subnet["id"].as_str().expect("subnet id")
            ))
            .await;
        assert_eq!(
            v["subnet"]["cidr"],
            Value::from(CIDR),
            "subnet after restart: {v}"
        );
        let t_verify = Instant::now();
        verify(&mut c, &net, &acked, &maybe).await;
        eprintln!(
            "round {round}: verified {} ports in {:?}",
            acked.len(),
            t_verify.elapsed()
        );
    }

    // The restarted server keeps allocating without reusing a held address.
    let mut c = server.client();
    let p = c
        .post_ok(
            "/v2.0/ports",
            &json!({"port": {"network_id": net, "name": "after-crash"}}),
            201,
        )
        .await;
    let (_, ips) = port_ips(&p["port"]);
    assert_eq!(ips.len(), 1, "{p}");
    let held: BTreeSet<&String> = acked.values().map(|(_, ip)| ip).collect();
    assert!(
        !held.contains(&ips[0]),
        "new port got {} which an acknowledged port holds",
        ips[0]
    );
    let list = c.get_ok(&format!("/v2.0/ports?network_id={net}")).await;
    let all: Vec<String> = list["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .flat_map(|p| port_ips(p).1)
        .collect();
    let uniq: BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        uniq.len(),
        all.len(),
        "duplicate addresses in the final listing"
    );
}
