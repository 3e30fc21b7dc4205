//! What the feed tells a host about security groups (rules, and remote-group
//! members anywhere in the cloud) and routers (legs, floating IPs, per-host
//! gateway ports), in process.

mod common;

use axum::http::Method;
use common::{AGENT_SECRET, App, id};
use serde_json::{Value, json};

async fn agent(app: &App, method: Method, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {AGENT_SECRET}");
    let r = app
        .send(
            method,
            path,
            None,
            Some(body.to_string().into_bytes()),
            &[("authorization", &auth)],
        )
        .await;
    (r.status, r.body.clone())
}

/// One feed call; `held` is (networks, groups, routers) the host holds.
async fn feed(app: &App, host: &str, since: u64, l3: &str, held: &Value) -> Value {
    let mut body = json!({"host": host, "since": since, "dhcp_mode": "off", "l3_mode": l3,
                          "wait_ms": 0, "agents_version": 0});
    for k in ["networks", "groups", "routers"] {
        body[k] = held[k].clone();
    }
    let (s, b) = agent(app, Method::POST, "/agent/v1/feed", body).await;
    assert_eq!(s, 200, "{b}");
    b
}

/// What the host holds after applying `f` (enough for these tests).
fn held_after(f: &Value, before: &Value) -> Value {
    let mut held = before.clone();
    for (key, list, deleted) in [
        ("networks", "networks", "deleted_networks"),
        ("groups", "security_groups", "deleted_groups"),
        ("routers", "routers", "deleted_routers"),
    ] {
        let mut ids: Vec<String> = if f["snapshot"] == true {
            Vec::new()
        } else {
            serde_json::from_value(held[key].clone()).unwrap_or_default()
        };
        for x in f[list].as_array().unwrap() {
            let i = x["id"].as_str().unwrap().to_string();
            if !ids.contains(&i) {
                ids.push(i);
            }
        }
        ids.retain(|i| !f[deleted].as_array().unwrap().iter().any(|d| d == i));
        held[key] = json!(ids);
    }
    held
}

async fn bind(app: &App, host: &str, port: &str) {
    let (s, b) = agent(
        app,
        Method::POST,
        "/agent/v1/bind",
        json!({"host": host, "port_id": port}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn groups_and_remote_members_follow_ports_anywhere() {
    let app = App::new().await;
    let (net, _) = app.net_with_subnet(&app.alice, "a", "10.1.0.0/24").await;
    let (other_net, _) = app.net_with_subnet(&app.alice, "b", "10.2.0.0/24").await;
    let web = id(&app
        .post(
            &app.alice,
            "/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await
        .expect(201)["security_group"]
        .clone());
    let p1 = id(&app
        .port(&app.alice, &net, json!({"security_groups": [web]}))
        .await);
    bind(&app, "h1", &p1).await;
    let empty = json!({"networks": [], "groups": [], "routers": []});
    let f = feed(&app, "h1", 0, "off", &empty).await;
    // The port's group, with its rules (Neutron's two egress defaults).
    let groups: Vec<&Value> = f["security_groups"].as_array().unwrap().iter().collect();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["id"], web);
    assert_eq!(groups[0]["rules"].as_array().unwrap().len(), 2);
    let port = &f["ports"][0];
    assert_eq!(port["security_groups"], json!([web]));
    assert_eq!(port["port_security_enabled"], true);
    let mut held = held_after(&f, &empty);
    let mut rev = f["revision"].as_u64().unwrap();

    // A rule naming the default group as remote brings that group, with its
    // members from every network (here: a port on a network h1 never sees).
    let default = app
        .get(&app.alice, "/v2.0/security-groups?name=default")
        .await;
    let default = id(&default.expect(200)["security_groups"][0]);
    let far = app.port(&app.alice, &other_net, json!({})).await;
    app.post(
        &app.alice,
        "/v2.0/security-group-rules",
        json!({"security_group_rule": {
        "security_group_id": web, "direction": "ingress", "protocol": "tcp",
        "port_range_min": 22, "port_range_max": 22, "remote_group_id": default}}),
    )
    .await
    .expect(201);
    let f = feed(&app, "h1", rev, "off", &held).await;
    let sent: Vec<&str> = f["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert!(
        sent.contains(&default.as_str()) && sent.contains(&web.as_str()),
        "{sent:?}"
    );
    let member = f["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["port_id"] == id(&far))
        .expect("far member");
    assert_eq!(member["groups"], json!([default]));
    assert_eq!(member["addresses"], json!([common::ips(&far)[0]]));
    assert!(
        f["networks"].as_array().unwrap().is_empty(),
        "no new network for a member"
    );
    held = held_after(&f, &held);
    rev = f["revision"].as_u64().unwrap();

    // The member leaves the group: one record with no groups.
    app.put(
        &app.alice,
        &format!("/v2.0/ports/{}", id(&far)),
        json!({"port": {"security_groups": [web]}}),
    )
    .await
    .expect(200);
    let f = feed(&app, "h1", rev, "off", &held).await;
    let m = &f["members"].as_array().unwrap()[0];
    assert_eq!(m["port_id"], id(&far));
    assert_eq!(m["groups"], json!([web]));
    rev = f["revision"].as_u64().unwrap();

    // A port deleted anywhere: a deletion the host applies to members too.
    app.delete(&app.alice, &format!("/v2.0/ports/{}", id(&far)))
        .await;
    let f = feed(&app, "h1", rev, "off", &held).await;
    assert!(
        f["deleted_ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| *p == id(&far))
    );
    rev = f["revision"].as_u64().unwrap();

    // The last port using the groups unbinds: the host drops them.
    app.delete(&app.alice, &format!("/v2.0/ports/{p1}")).await;
    let f = feed(&app, "h1", rev, "off", &held).await;
    let mut dropped: Vec<String> = serde_json::from_value(f["deleted_groups"].clone()).unwrap();
    dropped.sort();
    let mut want = vec![web, default];
    want.sort();
    assert_eq!(dropped, want);
}

async fn external(app: &App) -> (String, String) {
    let net = id(&app
        .network(
            &app.admin,
            json!({"name": "public", "router:external": true}),
        )
        .await);
    let sub = id(&app
        .subnet(
            &app.admin,
            &net,
            "203.0.113.0/24",
            json!({"enable_dhcp": false}),
        )
        .await);
    (net, sub)
}

/// A router (with its gateway on `public` when given) and, with `subnet`,
/// an interface there; its id.
async fn new_router(app: &App, name: &str, public: Option<&str>, subnet: Option<&str>) -> String {
    let mut body = json!({"name": name});
    if let Some(net) = public {
        body["external_gateway_info"] = json!({"network_id": net});
    }
    let r = id(&app
        .post(&app.alice, "/v2.0/routers", json!({ "router": body }))
        .await
        .expect(201)["router"]
        .clone());
    if let Some(sub) = subnet {
        app.put(
            &app.alice,
            &format!("/v2.0/routers/{r}/add_router_interface"),
            json!({ "subnet_id": sub }),
        )
        .await
        .expect(200);
    }
    r
}

#[tokio::test]
async fn routers_reach_their_hosts_with_legs_and_floating_ips() {
    let app = App::new().await;
    let (public, _) = external(&app).await;
    let (net, sub) = app.net_with_subnet(&app.alice, "a", "10.1.0.0/24").await;
    let router = new_router(&app, "r", Some(&public), Some(&sub)).await;
    let vm = app.port(&app.alice, &net, json!({})).await;
    bind(&app, "h1", &id(&vm)).await;
    let empty = json!({"networks": [], "groups": [], "routers": []});

    // The network node runs every router, and carries its networks.
    let f = feed(&app, "nn", 0, "all", &empty).await;
    let r = &f["routers"][0];
    assert_eq!(r["id"], router);
    assert_eq!(r["interfaces"][0]["addresses"][0]["ip_address"], "10.1.0.1");
    assert_eq!(r["interfaces"][0]["addresses"][0]["cidr"], "10.1.0.0/24");
    assert_eq!(r["gateway"]["network_id"], public);
    assert_eq!(r["enable_snat"], true);
    let mut nets: Vec<&str> = f["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    nets.sort();
    let mut want = vec![net.as_str(), public.as_str()];
    want.sort();
    assert_eq!(nets, want);
    let held = held_after(&f, &empty);
    let rev = f["revision"].as_u64().unwrap();
    // A compute host in multi-host mode runs the router of its instance's
    // network; an L3-less host none.
    let f1 = feed(&app, "h1", 0, "local", &empty).await;
    assert_eq!(f1["routers"][0]["id"], router);
    assert!(f1["routers"][0]["host_gateway"].is_null());
    assert!(
        feed(&app, "h2", 0, "local", &empty).await["routers"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A floating IP associated: the router is sent again with it.
    let fip = app
        .post(
            &app.alice,
            "/v2.0/floatingips",
            json!({"floatingip": {
            "floating_network_id": public, "port_id": id(&vm)}}),
        )
        .await
        .expect(201)["floatingip"]
        .clone();
    let f = feed(&app, "nn", rev, "all", &held).await;
    let fips = &f["routers"][0]["floating_ips"];
    assert_eq!(fips[0]["floating_ip_address"], fip["floating_ip_address"]);
    assert_eq!(fips[0]["fixed_ip_address"], common::ips(&vm)[0]);
    assert_eq!(fips[0]["host"], "h1");
    let rev = f["revision"].as_u64().unwrap();

    // Moved to a port of another router's network: the old router is sent
    // again too (without it), though nothing of it changed.
    let (net2, sub2) = app.net_with_subnet(&app.alice, "b", "10.2.0.0/24").await;
    let router2 = new_router(&app, "r2", Some(&public), Some(&sub2)).await;
    let vm2 = app.port(&app.alice, &net2, json!({})).await;
    let f = feed(&app, "nn", rev, "all", &held).await;
    let held = held_after(&f, &held);
    let rev = f["revision"].as_u64().unwrap();
    app.put(
        &app.alice,
        &format!("/v2.0/floatingips/{}", id(&fip)),
        json!({"floatingip": {"port_id": id(&vm2)}}),
    )
    .await
    .expect(200);
    let f = feed(&app, "nn", rev, "all", &held).await;
    let by_id = |rid: &str| {
        f["routers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == rid)
            .cloned()
    };
    assert!(
        by_id(&router).expect("old router resent")["floating_ips"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        by_id(&router2).expect("new router sent")["floating_ips"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn per_host_gateway_ports_for_multi_host() {
    let app = App::new().await;
    let (public, _) = external(&app).await;
    let bare = new_router(&app, "bare", None, None).await;
    let router = new_router(&app, "r", Some(&public), None).await;
    let ask = |r: String| json!({"host": "h1", "router_id": r});
    let (s, b) = agent(&app, Method::POST, "/agent/v1/host-gateway", ask(bare)).await;
    assert_eq!(
        (s, b["NeutronError"]["type"].as_str()),
        (409, Some("RouterHasNoGateway"))
    );
    let (s, b) = agent(
        &app,
        Method::POST,
        "/agent/v1/host-gateway",
        ask("00000000-0000-4000-8000-000000000000".to_string()),
    )
    .await;
    assert_eq!(s, 404, "{b}");
    let (s, first) = agent(
        &app,
        Method::POST,
        "/agent/v1/host-gateway",
        ask(router.clone()),
    )
    .await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["host"], "h1");
    assert_eq!(first["network_id"], public);
    assert_eq!(first["device_owner"], "network:floatingip_agent_gateway");
    // Idempotent: the same port again.
    let (_, again) = agent(
        &app,
        Method::POST,
        "/agent/v1/host-gateway",
        ask(router.clone()),
    )
    .await;
    assert_eq!(again["id"], first["id"]);
    // The router's hosts see it as their gateway leg.
    let empty = json!({"networks": [], "groups": [], "routers": []});
    let f = feed(&app, "h1", 0, "all", &empty).await;
    let r = f["routers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == router)
        .unwrap()
        .clone();
    assert_eq!(r["host_gateway"]["port_id"], first["id"]);
    // Removing the router's gateway takes the per-host ports with it.
    app.put(
        &app.alice,
        &format!("/v2.0/routers/{router}"),
        json!({"router": {"external_gateway_info": null}}),
    )
    .await
    .expect(200);
    let left = app
        .get(&app.admin, &format!("/v2.0/ports?device_id={router}"))
        .await;
    assert!(left.expect(200)["ports"].as_array().unwrap().is_empty());
    let (s, _) = agent(&app, Method::DELETE, "/agent/v1/host-gateway", ask(router)).await;
    assert_eq!(s, 204);
}
