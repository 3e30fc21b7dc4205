//! The agent protocol in process: reports and `GET /v2.0/agents`, the feed's
//! per-host view (snapshot, deltas, networks entering and leaving the view,
//! resume, long poll), binding, port status and DHCP ports.

mod common;

use axum::http::Method;
use common::{AGENT_SECRET, App, id};
use serde_json::{Value, json};

async fn agent(app: &App, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {AGENT_SECRET}");
    let r = app
        .send(
            Method::POST,
            path,
            None,
            Some(body.to_string().into_bytes()),
            &[("authorization", &auth)],
        )
        .await;
    (r.status, r.body.clone())
}

async fn report(app: &App, host: &str, tunnel_ip: &str, dhcp_mode: &str) -> u64 {
    let (s, b) = agent(
        app,
        "/agent/v1/report",
        json!({
        "host": host, "tunnel_ip": tunnel_ip, "dhcp_mode": dhcp_mode,
        "dhcp_driver": "native", "started_at": 1_700_000_000u64}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b["agents_version"].as_u64().expect("agents_version")
}

async fn feed(
    app: &App,
    host: &str,
    since: u64,
    nets: &[String],
    mode: &str,
    version: u64,
) -> Value {
    let (s, b) = agent(
        app,
        "/agent/v1/feed",
        json!({
        "host": host, "since": since, "networks": nets, "dhcp_mode": mode,
        "agents_version": version, "wait_ms": 0}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = v[key]
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x.get("id").unwrap_or(x).as_str().expect("id").to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn agent_calls_need_the_secret() {
    let app = App::new().await;
    for auth in ["", "Bearer wrong", "Basic test-agent-secret"] {
        let r = app
            .send(
                Method::POST,
                "/agent/v1/report",
                None,
                Some(b"{}".to_vec()),
                &[("authorization", auth)],
            )
            .await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.body["NeutronError"]["type"], "HTTPUnauthorized");
    }
    let (s, b) = agent(&app, "/agent/v1/report", json!({"host": ""})).await;
    assert_eq!(s, 400, "{b}");
    let (s, _) = agent(&app, "/agent/v1/feed", json!({"host": "h1", "since": "x"})).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn agents_are_listed_for_admins_only() {
    let app = App::new().await;
    report(&app, "compute1", "192.0.2.1", "local").await;
    report(&app, "compute2", "192.0.2.2", "off").await;
    let r = app.get(&app.admin, "/v2.0/agents").await;
    assert_eq!(r.status, 200);
    let agents = r.body["agents"].as_array().unwrap();
    // compute1 serves DHCP too: two entries; compute2 only L2.
    assert_eq!(agents.len(), 3);
    assert!(agents.iter().all(|a| a["alive"] == true));
    let r = app
        .get(
            &app.admin,
            "/v2.0/agents?host=compute1&agent_type=DHCP+agent",
        )
        .await;
    assert_eq!(r.body["agents"].as_array().unwrap().len(), 1);
    let one = r.body["agents"][0].clone();
    assert_eq!(one["configurations"]["dhcp_mode"], "local");
    let r = app
        .get(
            &app.admin,
            &format!("/v2.0/agents/{}", one["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.body["agent"]["host"], "compute1");
    assert_eq!(
        app.get(&app.admin, "/v2.0/agents?color=red").await.status,
        400
    );
    // Others see none (Neutron's policy filters the list) and no agent by id.
    let r = app.get(&app.alice, "/v2.0/agents").await;
    assert_eq!(r.expect(200)["agents"], json!([]));
    let path = format!("/v2.0/agents/{}", one["id"].as_str().unwrap());
    app.get(&app.alice, &path)
        .await
        .expect_error(404, "HTTPNotFound");
    // A silent agent turns dead after down_time (2 s in these tests).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = app.get(&app.admin, "/v2.0/agents?alive=false").await;
    assert_eq!(r.body["agents"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn feed_gives_each_host_its_networks_then_deltas() {
    let app = App::new().await;
    let v = report(&app, "h1", "192.0.2.1", "local").await;
    report(&app, "h2", "192.0.2.2", "local").await;
    let (net_a, _) = app.net_with_subnet(&app.alice, "a", "10.1.0.0/24").await;
    let (net_b, _) = app.net_with_subnet(&app.alice, "b", "10.2.0.0/24").await;

    // Nothing bound to h1 yet: an empty snapshot, but the VTEP map.
    let f = feed(&app, "h1", 0, &[], "local", 0).await;
    assert_eq!(f["snapshot"], true);
    assert!(ids(&f, "networks").is_empty());
    assert_eq!(f["vteps"], json!({"h1": "192.0.2.1", "h2": "192.0.2.2"}));
    let mut rev = f["revision"].as_u64().unwrap();

    // Binding a port to h1 brings its whole network into h1's view.
    let p1 = id(&app.port(&app.alice, &net_a, json!({})).await);
    let (s, b) = agent(&app, "/agent/v1/bind", json!({"host": "h1", "port_id": p1})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["host"], "h1");
    let f = feed(&app, "h1", rev, &[], "local", v).await;
    assert_eq!(f["snapshot"], false);
    assert_eq!(ids(&f, "networks"), vec![net_a.clone()]);
    assert_eq!(ids(&f, "ports"), vec![p1.clone()]);
    assert_eq!(f["subnets"].as_array().unwrap().len(), 1);
    rev = f["revision"].as_u64().unwrap();
    let held = vec![net_a.clone()];

    // A port on a network h1 does not carry is not sent; one on net_a is,
    // even when bound elsewhere (its VTEP is needed).
    app.port(&app.alice, &net_b, json!({})).await;
    let p2 = id(&app.port(&app.alice, &net_a, json!({})).await);
    agent(&app, "/agent/v1/bind", json!({"host": "h2", "port_id": p2})).await;
    let f = feed(&app, "h1", rev, &held, "local", v).await;
    assert!(ids(&f, "networks").is_empty());
    assert_eq!(ids(&f, "ports"), vec![p2.clone()]);
    assert_eq!(f["ports"][0]["host"], "h2");
    rev = f["revision"].as_u64().unwrap();

    // Deleting a port is a deletion by id; the last bound port going
    // takes the network out of the view.
    assert_eq!(
        app.delete(&app.alice, &format!("/v2.0/ports/{p2}"))
            .await
            .status,
        204
    );
    let f = feed(&app, "h1", rev, &held, "local", v).await;
    assert_eq!(f["deleted_ports"], json!([p2]));
    rev = f["revision"].as_u64().unwrap();
    assert_eq!(
        app.delete(&app.alice, &format!("/v2.0/ports/{p1}"))
            .await
            .status,
        204
    );
    let f = feed(&app, "h1", rev, &held, "local", v).await;
    assert_eq!(f["deleted_networks"], json!([net_a]));

    // Resuming from an old revision replays the distinct changes, not a snapshot.
    let f = feed(&app, "h1", 1, &[], "local", v).await;
    assert_eq!(f["snapshot"], false);
    // A revision the server never had asks for a resync.
    let f = feed(&app, "h1", 1_000_000, &[], "local", v).await;
    assert_eq!(f["snapshot"], true);
}

#[tokio::test]
async fn dhcp_node_carries_every_dhcp_network_and_gets_a_dhcp_port() {
    let app = App::new().await;
    let v = report(&app, "netnode", "192.0.2.9", "all").await;
    let (net_a, sub_a) = app.net_with_subnet(&app.alice, "a", "10.1.0.0/24").await;
    let no_dhcp = id(&app.network(&app.alice, json!({"name": "plain"})).await);
    app.subnet(
        &app.alice,
        &no_dhcp,
        "10.9.0.0/24",
        json!({"enable_dhcp": false}),
    )
    .await;
    let f = feed(&app, "netnode", 0, &[], "all", v).await;
    assert_eq!(ids(&f, "networks"), vec![net_a.clone()]);

    let (s, port) = agent(
        &app,
        "/agent/v1/dhcp-port",
        json!({"host": "netnode", "network_id": net_a}),
    )
    .await;
    assert_eq!(s, 200, "{port}");
    assert_eq!(port["device_owner"], "network:dhcp");
    assert_eq!(port["host"], "netnode");
    assert_eq!(port["fixed_ips"][0]["subnet_id"], sub_a);
    // Idempotent: the same port again.
    let (_, again) = agent(
        &app,
        "/agent/v1/dhcp-port",
        json!({"host": "netnode", "network_id": net_a}),
    )
    .await;
    assert_eq!(again["id"], port["id"]);
    // A second DHCP subnet: the same port gains an address there, keeping its MAC and first address.
    let sub2 = id(&app
        .subnet(&app.alice, &net_a, "10.5.0.0/24", json!({}))
        .await);
    let (_, grown) = agent(
        &app,
        "/agent/v1/dhcp-port",
        json!({"host": "netnode", "network_id": net_a}),
    )
    .await;
    assert_eq!(grown["id"], port["id"]);
    assert_eq!(grown["mac_address"], port["mac_address"]);
    assert_eq!(grown["fixed_ips"][0], port["fixed_ips"][0]);
    assert_eq!(grown["fixed_ips"][1]["subnet_id"], sub2);
    // No DHCP subnet: a clear 409, not a port.
    let (s, b) = agent(
        &app,
        "/agent/v1/dhcp-port",
        json!({"host": "netnode", "network_id": no_dhcp}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    // Unknown network: 404.
    let (s, _) = agent(
        &app,
        "/agent/v1/dhcp-port",
        json!({"host": "netnode", "network_id": "nope"}),
    )
    .await;
    assert_eq!(s, 404);
    let auth = format!("Bearer {AGENT_SECRET}");
    let r = app
        .send(
            Method::DELETE,
            "/agent/v1/dhcp-port",
            None,
            Some(
                json!({"host": "netnode", "network_id": net_a})
                    .to_string()
                    .into_bytes(),
            ),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .get(
            &app.admin,
            &format!("/v2.0/ports/{}", port["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn port_status_follows_the_host_agent() {
    let app = App::new().await;
    report(&app, "h1", "192.0.2.1", "local").await;
    let (net, _) = app.net_with_subnet(&app.alice, "a", "10.1.0.0/24").await;
    let p = id(&app.port(&app.alice, &net, json!({})).await);
    agent(&app, "/agent/v1/bind", json!({"host": "h1", "port_id": p})).await;
    let path = format!("/v2.0/ports/{p}");
    let show = async |app: &App| app.get(&app.alice, &path).await.body["port"].clone();
    assert_eq!(show(&app).await["status"], "DOWN");
    // Another host cannot flip it.
    agent(
        &app,
        "/agent/v1/port-status",
        json!({"host": "h2", "active": [p]}),
    )
    .await;
    assert_eq!(show(&app).await["status"], "DOWN");
    let (s, b) = agent(
        &app,
        "/agent/v1/port-status",
        json!({"host": "h1", "active": [p]}),
    )
    .await;
    assert_eq!((s, b["changed"].as_u64()), (200, Some(1)));
    assert_eq!(show(&app).await["status"], "ACTIVE");
    let port = app.get(&app.admin, &path).await.body["port"].clone();
    assert_eq!(port["binding:host_id"], "h1");
    assert_eq!(port["binding:vif_type"], "bridge");
    // Reporting the same again writes nothing.
    let (_, b) = agent(
        &app,
        "/agent/v1/port-status",
        json!({"host": "h1", "active": [p]}),
    )
    .await;
    assert_eq!(b["changed"], 0);
}

#[tokio::test]
async fn feed_long_poll_wakes_on_a_change_for_the_host() {
    let app = std::sync::Arc::new(App::new().await);
    let v = report(&app, "h1", "192.0.2.1", "all").await;
    let f = feed(&app, "h1", 0, &[], "all", v).await;
    let rev = f["revision"].as_u64().unwrap();
    let waiter = {
        let app = app.clone();
        tokio::spawn(async move {
            let (s, b) = agent(
                &app,
                "/agent/v1/feed",
                json!({
                "host": "h1", "since": rev, "networks": [], "dhcp_mode": "all",
                "agents_version": v, "wait_ms": 20_000}),
            )
            .await;
            assert_eq!(s, 200);
            b
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // A change that is not for h1 (a network without DHCP) does not wake it…
    app.network(&app.alice, json!({"name": "quiet"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    if waiter.is_finished() {
        panic!("woken by an unrelated change: {}", waiter.await.unwrap());
    }
    // …a DHCP network does.
    let (net, _) = app.net_with_subnet(&app.alice, "a", "10.1.0.0/24").await;
    let b = waiter.await.unwrap();
    assert_eq!(ids(&b, "networks"), vec![net]);
}

#[tokio::test]
async fn extra_dhcp_option_names_cannot_carry_line_breaks() {
    // A line break would let a port owner write lines into dnsmasq's options file.
    let app = App::new().await;
    let (net, _) = app.net_with_subnet(&app.alice, "a", "10.1.0.0/24").await;
    let r = app
        .post(&app.alice, "/v2.0/ports", json!({"port": {"network_id": net,
            "extra_dhcp_opts": [{"opt_name": "3\noption:router,10.1.0.66", "opt_value": "10.1.0.66"}]}}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["NeutronError"]["type"], "HTTPBadRequest");
}
