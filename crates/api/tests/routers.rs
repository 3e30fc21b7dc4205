//! Routers and floating IPs through the API, in process: gateways,
//! interfaces, extra routes, floating IP association, and every error
//! Neutron gives on the way (status and NeutronError type), plus a restart
//! that rebuilds the L3 indexes from the store.

mod common;

use common::{App, Resp, id};
use serde_json::{Value, json};

async fn router(app: &App, token: &str, body: Value) -> Value {
    app.post(token, "/v2.0/routers", json!({ "router": body }))
        .await
        .expect(201)["router"]
        .clone()
}

async fn add_if(app: &App, token: &str, rid: &str, body: Value) -> Resp {
    app.put(
        token,
        &format!("/v2.0/routers/{rid}/add_router_interface"),
        body,
    )
    .await
}

async fn remove_if(app: &App, token: &str, rid: &str, body: Value) -> Resp {
    app.put(
        token,
        &format!("/v2.0/routers/{rid}/remove_router_interface"),
        body,
    )
    .await
}

async fn fip(app: &App, token: &str, body: Value) -> Resp {
    app.post(token, "/v2.0/floatingips", json!({ "floatingip": body }))
        .await
}

async fn get_router(app: &App, token: &str, rid: &str) -> Value {
    app.get(token, &format!("/v2.0/routers/{rid}"))
        .await
        .expect(200)["router"]
        .clone()
}

/// The ports (admin view) with this device owner and device id.
async fn owned_ports(app: &App, owner: &str, device: &str) -> Vec<Value> {
    app.get(
        &app.admin,
        &format!("/v2.0/ports?device_owner={owner}&device_id={device}"),
    )
    .await
    .expect(200)["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn extensions_are_advertised() {
    let app = App::new().await;
    let r = app.get(&app.alice, "/v2.0/extensions").await;
    let aliases: Vec<&str> = r.expect(200)["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect();
    for a in [
        "router",
        "ext-gw-mode",
        "extraroute",
        "external-net",
        "port-security",
        "allowed-address-pairs",
        "standard-attr-tag",
    ] {
        assert!(aliases.contains(&a), "{a} missing from {aliases:?}");
    }
    // Multihoming changes how the CLI sets gateways: never advertised.
    assert!(!aliases.contains(&"external-gateway-multihoming"));
}

#[tokio::test]
async fn router_gateway_lifecycle_and_policy() {
    let app = App::new().await;
    let (alice, admin) = (&app.alice, &app.admin);
    let (pub_net, pub_sub) = app.external_network("203.0.113.0/24").await;

    // A router without a gateway.
    let r = router(&app, alice, json!({"name": "r0"})).await;
    assert_eq!(r["status"], "ACTIVE");
    assert_eq!(r["external_gateway_info"], Value::Null);
    assert_eq!(r["routes"], json!([]));
    assert_eq!(r["revision_number"], 1);
    assert_eq!(r["project_id"], app.project_a.as_str());
    assert_eq!(r["tenant_id"], app.project_a.as_str());
    assert_eq!(r["admin_state_up"], true);
    assert_eq!(r["tags"], json!([]));

    // With a gateway: SNAT on, one address from the external subnet.
    let r1 = router(
        &app,
        alice,
        json!({"name": "r1", "external_gateway_info": {"network_id": pub_net}}),
    )
    .await;
    let gw = &r1["external_gateway_info"];
    assert_eq!(gw["network_id"], pub_net.as_str());
    assert_eq!(gw["enable_snat"], true);
    assert_eq!(gw["external_fixed_ips"][0]["subnet_id"], pub_sub.as_str());
    let ext_ip = gw["external_fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ext_ip.starts_with("203.0.113."));
    let rid = id(&r1);
    let gw_ports = owned_ports(&app, "network:router_gateway", &rid).await;
    assert_eq!(gw_ports.len(), 1);
    let gw_port = &gw_ports[0];
    assert_eq!(gw_port["project_id"], "");
    assert_eq!(gw_port["fixed_ips"][0]["ip_address"], ext_ip.as_str());
    assert_eq!(gw_port["security_groups"], json!([]));
    assert_eq!(gw_port["port_security_enabled"], false);
    // The gateway port is hidden from the router's project.
    app.get(alice, &format!("/v2.0/ports/{}", id(gw_port)))
        .await
        .expect_error(404, "PortNotFound");

    // Only admins pick SNAT or the external address.
    for gw in [
        json!({"network_id": pub_net, "enable_snat": false}),
        json!({"network_id": pub_net, "external_fixed_ips": [{"subnet_id": pub_sub}]}),
    ] {
        app.post(
            alice,
            "/v2.0/routers",
            json!({"router": {"external_gateway_info": gw}}),
        )
        .await
        .expect_error(403, "PolicyNotAuthorized");
    }
    let ra = router(
        &app,
        admin,
        json!({"external_gateway_info": {"network_id": pub_net, "enable_snat": false,
            "external_fixed_ips": [{"subnet_id": pub_sub, "ip_address": "203.0.113.77"}]}}),
    )
    .await;
    assert_eq!(ra["external_gateway_info"]["enable_snat"], false);
    assert_eq!(
        ra["external_gateway_info"]["external_fixed_ips"],
        json!([{"subnet_id": pub_sub, "ip_address": "203.0.113.77"}])
    );
    // The subnet's gateway address cannot be the router's.
    app.post(
        admin,
        "/v2.0/routers",
        json!({"router": {"external_gateway_info": {"network_id": pub_net,
            "external_fixed_ips": [{"ip_address": "203.0.113.1"}]}}}),
    )
    .await
    .expect_error(400, "BadRequest");
    // A taken external address.
    app.post(
        admin,
        "/v2.0/routers",
        json!({"router": {"external_gateway_info": {"network_id": pub_net,
            "external_fixed_ips": [{"ip_address": "203.0.113.77"}]}}}),
    )
    .await
    .expect_error(409, "IpAddressAlreadyAllocated");

    // The gateway network must be external.
    let (private, _) = app.net_with_subnet(alice, "private", "10.9.0.0/24").await;
    let m = app
        .post(
            alice,
            "/v2.0/routers",
            json!({"router": {"external_gateway_info": {"network_id": private}}}),
        )
        .await
        .expect_error(400, "BadRequest");
    assert!(m.contains("is not an external network"), "{m}");
    app.post(
        alice,
        "/v2.0/routers",
        json!({"router": {"external_gateway_info": {"network_id": "7d4d0c1c-0000-4000-8000-000000000000"}}}),
    )
    .await
    .expect_error(404, "NetworkNotFound");
    // Routes only by update; unknown attributes refused.
    let m = app
        .post(alice, "/v2.0/routers", json!({"router": {"routes": []}}))
        .await
        .expect_error(400, "HTTPBadRequest");
    assert_eq!(m, "Attribute 'routes' not allowed in POST");
    app.post(
        alice,
        "/v2.0/routers",
        json!({"router": {"distributed": true}}),
    )
    .await
    .expect_error(400, "HTTPBadRequest");

    // Set the gateway by update; change SNAT only as admin; remove with null and {}.
    let r0 = id(&r);
    let u = app
        .put(
            alice,
            &format!("/v2.0/routers/{r0}"),
            json!({"router": {"external_gateway_info": {"network_id": pub_net}}}),
        )
        .await;
    assert_eq!(u.expect(200)["router"]["revision_number"], 2);
    assert_eq!(
        owned_ports(&app, "network:router_gateway", &r0).await.len(),
        1
    );
    let u = app
        .put(
            admin,
            &format!("/v2.0/routers/{r0}"),
            json!({"router": {"external_gateway_info": {"network_id": pub_net, "enable_snat": false}}}),
        )
        .await;
    let body = u.expect(200)["router"].clone();
    assert_eq!(body["external_gateway_info"]["enable_snat"], false);
    assert_eq!(
        owned_ports(&app, "network:router_gateway", &r0).await.len(),
        1,
        "the same network keeps its gateway port"
    );
    for empty in [Value::Null, json!({})] {
        let u = app
            .put(
                alice,
                &format!("/v2.0/routers/{r0}"),
                json!({"router": {"external_gateway_info": empty}}),
            )
            .await;
        assert_eq!(
            u.expect(200)["router"]["external_gateway_info"],
            Value::Null
        );
        assert!(
            owned_ports(&app, "network:router_gateway", &r0)
                .await
                .is_empty()
        );
        app.put(
            alice,
            &format!("/v2.0/routers/{r0}"),
            json!({"router": {"external_gateway_info": {"network_id": pub_net}}}),
        )
        .await
        .expect(200);
    }

    // Isolation: bob neither sees nor touches alice's routers; admin sees all.
    let bob_ids = app.list_ids(&app.bob, "/v2.0/routers", "routers").await;
    assert!(bob_ids.is_empty());
    app.get(&app.bob, &format!("/v2.0/routers/{rid}"))
        .await
        .expect_error(404, "RouterNotFound");
    app.put(
        &app.bob,
        &format!("/v2.0/routers/{rid}"),
        json!({"router": {"name": "x"}}),
    )
    .await
    .expect_error(404, "RouterNotFound");
    app.delete(&app.bob, &format!("/v2.0/routers/{rid}"))
        .await
        .expect_error(404, "RouterNotFound");
    add_if(&app, &app.bob, &rid, json!({"subnet_id": pub_sub}))
        .await
        .expect_error(404, "RouterNotFound");
    let all = app.list_ids(admin, "/v2.0/routers", "routers").await;
    assert_eq!(all.len(), 3);
    // A reader cannot create.
    app.post(&app.rita, "/v2.0/routers", json!({"router": {}}))
        .await
        .expect_error(403, "PolicyNotAuthorized");
    // Filters, fields, tags.
    let named = app
        .list_ids(alice, "/v2.0/routers?name=r1", "routers")
        .await;
    assert_eq!(named, [rid.as_str()]);
    let f = app
        .get(
            alice,
            &format!("/v2.0/routers/{rid}?fields=id&fields=status"),
        )
        .await;
    assert_eq!(
        f.expect(200)["router"],
        json!({"id": rid, "status": "ACTIVE"})
    );
    app.send(
        axum::http::Method::PUT,
        &format!("/v2.0/routers/{rid}/tags/blue"),
        Some(alice),
        None,
        &[],
    )
    .await
    .expect(201);
    let tagged = app
        .list_ids(alice, "/v2.0/routers?tags=blue", "routers")
        .await;
    assert_eq!(tagged, [rid.as_str()]);

    // Delete removes the gateway port; the external address is free again.
    app.delete(alice, &format!("/v2.0/routers/{rid}"))
        .await
        .expect(204);
    assert!(
        owned_ports(&app, "network:router_gateway", &rid)
            .await
            .is_empty()
    );
    app.get(alice, &format!("/v2.0/routers/{rid}"))
        .await
        .expect_error(404, "RouterNotFound");
    let again = router(
        &app,
        admin,
        json!({"external_gateway_info": {"network_id": pub_net,
            "external_fixed_ips": [{"ip_address": ext_ip}]}}),
    )
    .await;
    assert_eq!(
        again["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
        ext_ip.as_str()
    );

    // ExternalNetworkInUse while gateway ports exist.
    app.put(
        admin,
        &format!("/v2.0/networks/{pub_net}"),
        json!({"network": {"router:external": false}}),
    )
    .await
    .expect_error(409, "ExternalNetworkInUse");
}

#[tokio::test]
async fn router_quota() {
    let app = App::new().await;
    let a = &app.project_a;
    app.put(
        &app.admin,
        &format!("/v2.0/quotas/{a}"),
        json!({"quota": {"router": 1, "floatingip": 0}}),
    )
    .await
    .expect(200);
    router(&app, &app.alice, json!({})).await;
    app.post(&app.alice, "/v2.0/routers", json!({"router": {}}))
        .await
        .expect_error(409, "OverQuota");
    let (pub_net, _) = app.external_network("203.0.113.0/24").await;
    app.post(
        &app.alice,
        "/v2.0/floatingips",
        json!({"floatingip": {"floating_network_id": pub_net}}),
    )
    .await
    .expect_error(409, "OverQuota");
    let d = app
        .get(&app.alice, &format!("/v2.0/quotas/{a}/details"))
        .await
        .expect(200)["quota"]
        .clone();
    assert_eq!(d["router"], json!({"limit": 1, "used": 1, "reserved": 0}));
    assert_eq!(d["floatingip"]["used"], 0);
    let defaults = app
        .get(&app.bob, &format!("/v2.0/quotas/{}", app.project_b))
        .await
        .expect(200)["quota"]
        .clone();
    assert_eq!(defaults["router"], 10);
    assert_eq!(defaults["floatingip"], 50);
}

#[tokio::test]
async fn router_interfaces_by_subnet_and_by_port() {
    let app = App::new().await;
    let alice = &app.alice;
    let (net1, sub1) = app.net_with_subnet(alice, "n1", "10.0.0.0/24").await;
    let r = router(&app, alice, json!({"name": "r"})).await;
    let rid = id(&r);

    // By subnet: a new port holding the subnet's gateway address.
    let info = add_if(&app, alice, &rid, json!({"subnet_id": sub1})).await;
    let info = info.expect(200).clone();
    let pid = info["port_id"].as_str().unwrap().to_string();
    assert_eq!(
        info,
        json!({"id": rid, "tenant_id": app.project_a, "project_id": app.project_a,
               "port_id": pid, "network_id": net1, "subnet_id": sub1, "subnet_ids": [sub1]})
    );
    let p = app
        .get(alice, &format!("/v2.0/ports/{pid}"))
        .await
        .expect(200)["port"]
        .clone();
    assert_eq!(p["device_owner"], "network:router_interface");
    assert_eq!(p["device_id"], rid.as_str());
    assert_eq!(
        p["fixed_ips"],
        json!([{"subnet_id": sub1, "ip_address": "10.0.0.1"}])
    );
    assert_eq!(p["security_groups"], json!([]));
    assert_eq!(p["port_security_enabled"], false);
    assert_eq!(p["project_id"], app.project_a.as_str());
    assert_eq!(
        get_router(&app, alice, &rid).await["revision_number"],
        2,
        "an interface bumps the router's revision"
    );

    // The same subnet again, or an overlapping one: 400.
    let m = add_if(&app, alice, &rid, json!({"subnet_id": sub1}))
        .await
        .expect_error(400, "BadRequest");
    assert!(m.contains("already has a port on subnet"), "{m}");
    let (_, overlap) = app.net_with_subnet(alice, "n1b", "10.0.0.0/25").await;
    let m = add_if(&app, alice, &rid, json!({"subnet_id": overlap}))
        .await
        .expect_error(400, "BadRequest");
    assert!(m.contains("overlaps"), "{m}");
    // A subnet without gateway, both or neither key, unknown ids.
    let n3 = app.network(alice, json!({"name": "n3"})).await;
    let nogw = app
        .subnet(alice, &id(&n3), "10.3.0.0/24", json!({"gateway_ip": null}))
        .await;
    add_if(&app, alice, &rid, json!({"subnet_id": id(&nogw)}))
        .await
        .expect_error(400, "BadRequest");
    add_if(
        &app,
        alice,
        &rid,
        json!({"subnet_id": sub1, "port_id": pid}),
    )
    .await
    .expect_error(400, "BadRequest");
    add_if(&app, alice, &rid, json!({}))
        .await
        .expect_error(400, "BadRequest");
    add_if(
        &app,
        alice,
        &rid,
        json!({"subnet_id": "0b1c2d3e-0000-4000-8000-000000000000"}),
    )
    .await
    .expect_error(404, "SubnetNotFound");
    add_if(
        &app,
        alice,
        "0b1c2d3e-0000-4000-8000-000000000000",
        json!({"subnet_id": sub1}),
    )
    .await
    .expect_error(404, "RouterNotFound");
    // The gateway address taken by a normal port: 409, as Neutron.
    let (net4, sub4) = app.net_with_subnet(alice, "n4", "10.4.0.0/24").await;
    app.port(
        alice,
        &net4,
        json!({"fixed_ips": [{"subnet_id": sub4, "ip_address": "10.4.0.1"}]}),
    )
    .await;
    add_if(&app, alice, &rid, json!({"subnet_id": sub4}))
        .await
        .expect_error(409, "IpAddressAlreadyAllocated");

    // By port: an unbound port is taken over and becomes trusted.
    let (net2, sub2) = app.net_with_subnet(alice, "n2", "10.1.0.0/24").await;
    let user_port = app.port(alice, &net2, json!({"name": "up"})).await;
    assert!(!user_port["security_groups"].as_array().unwrap().is_empty());
    let upid = id(&user_port);
    let info = add_if(&app, alice, &rid, json!({"port_id": upid})).await;
    let info = info.expect(200);
    assert_eq!(info["port_id"], upid.as_str());
    assert_eq!(info["subnet_ids"], json!([sub2]));
    assert_eq!(info["network_id"], net2.as_str());
    let p = app
        .get(alice, &format!("/v2.0/ports/{upid}"))
        .await
        .expect(200)["port"]
        .clone();
    assert_eq!(p["device_owner"], "network:router_interface");
    assert_eq!(p["device_id"], rid.as_str());
    assert_eq!(p["security_groups"], json!([]));
    assert_eq!(p["port_security_enabled"], false);
    // A port with a device already: PortInUse.
    let (net5, _) = app.net_with_subnet(alice, "n5", "10.5.0.0/24").await;
    let vm = app
        .port(
            alice,
            &net5,
            json!({"device_id": "vm-1", "device_owner": "compute:nova"}),
        )
        .await;
    add_if(&app, alice, &rid, json!({"port_id": id(&vm)}))
        .await
        .expect_error(409, "PortInUse");
    let bare = app.port(alice, &net5, json!({"fixed_ips": []})).await;
    add_if(&app, alice, &rid, json!({"port_id": id(&bare)}))
        .await
        .expect_error(400, "BadRequest");
    // Bob's port is not alice's to attach.
    let (bnet, _) = app.net_with_subnet(&app.bob, "bn", "10.6.0.0/24").await;
    let bport = app.port(&app.bob, &bnet, json!({})).await;
    add_if(&app, alice, &rid, json!({"port_id": id(&bport)}))
        .await
        .expect_error(404, "PortNotFound");

    // In-use rules while attached.
    app.delete(alice, &format!("/v2.0/routers/{rid}"))
        .await
        .expect_error(409, "RouterInUse");
    for port in [&pid, &upid] {
        app.delete(alice, &format!("/v2.0/ports/{port}"))
            .await
            .expect_error(409, "ServicePortInUse");
        app.delete(&app.admin, &format!("/v2.0/ports/{port}"))
            .await
            .expect_error(409, "ServicePortInUse");
    }
    app.delete(alice, &format!("/v2.0/subnets/{sub1}"))
        .await
        .expect_error(409, "SubnetInUse");
    app.delete(alice, &format!("/v2.0/networks/{net1}"))
        .await
        .expect_error(409, "NetworkInUse");
    app.put(
        alice,
        &format!("/v2.0/subnets/{sub1}"),
        json!({"subnet": {"gateway_ip": "10.0.0.254"}}),
    )
    .await
    .expect_error(409, "GatewayIpInUse");
    // Another project's router as device_id: refused.
    let bob_router = router(&app, &app.bob, json!({})).await;
    let r2 = app
        .post(
            alice,
            "/v2.0/ports",
            json!({"port": {"network_id": net5, "device_owner": "network:router_interface",
                            "device_id": id(&bob_router)}}),
        )
        .await;
    r2.expect_error(409, "DeviceIDNotOwnedByTenant");

    // Removing what is not there.
    remove_if(&app, alice, &rid, json!({"subnet_id": sub4}))
        .await
        .expect_error(404, "RouterInterfaceNotFoundForSubnet");
    remove_if(&app, alice, &rid, json!({"port_id": id(&vm)}))
        .await
        .expect_error(404, "RouterInterfaceNotFound");
    remove_if(
        &app,
        alice,
        &rid,
        json!({"port_id": upid, "subnet_id": sub1}),
    )
    .await
    .expect_error(400, "SubnetMismatchForPort");
    remove_if(&app, alice, &rid, json!({}))
        .await
        .expect_error(400, "BadRequest");

    // Remove by subnet, then by port.
    let info = remove_if(&app, alice, &rid, json!({"subnet_id": sub1})).await;
    let info = info.expect(200);
    assert_eq!(info["port_id"], pid.as_str());
    assert_eq!(info["subnet_id"], sub1.as_str());
    app.get(alice, &format!("/v2.0/ports/{pid}"))
        .await
        .expect_error(404, "PortNotFound");
    let info = remove_if(&app, alice, &rid, json!({"port_id": upid})).await;
    assert_eq!(info.expect(200)["subnet_ids"], json!([sub2]));
    assert_eq!(get_router(&app, alice, &rid).await["revision_number"], 5);
    // The gateway address is free again; the subnet can go.
    let again = add_if(&app, alice, &rid, json!({"subnet_id": sub1})).await;
    let again_port = again.expect(200)["port_id"].as_str().unwrap().to_string();
    remove_if(&app, alice, &rid, json!({"port_id": again_port}))
        .await
        .expect(200);
    app.delete(alice, &format!("/v2.0/subnets/{sub1}"))
        .await
        .expect(204);
    app.delete(alice, &format!("/v2.0/routers/{rid}"))
        .await
        .expect(204);
    // Interface calls are PUT only.
    let r = app
        .get(
            alice,
            &format!("/v2.0/routers/{}/add_router_interface", id(&bob_router)),
        )
        .await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn extra_routes() {
    let app = App::new().await;
    let alice = &app.alice;
    let (pub_net, _) = app.external_network("203.0.113.0/24").await;
    let (_, sub1) = app.net_with_subnet(alice, "n1", "10.0.0.0/24").await;
    let r = router(
        &app,
        alice,
        json!({"external_gateway_info": {"network_id": pub_net}}),
    )
    .await;
    let rid = id(&r);
    add_if(&app, alice, &rid, json!({"subnet_id": sub1}))
        .await
        .expect(200);
    let path = format!("/v2.0/routers/{rid}");
    let set = |routes: Value| {
        let app = &app;
        let path = path.clone();
        async move {
            app.put(alice, &path, json!({"router": {"routes": routes}}))
                .await
        }
    };
    let r = set(
        json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.5"},
                       {"destination": "0.0.0.0/0", "nexthop": "203.0.113.254"}]),
    )
    .await;
    let body = r.expect(200)["router"].clone();
    assert_eq!(
        body["routes"],
        json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.5"},
               {"destination": "0.0.0.0/0", "nexthop": "203.0.113.254"}])
    );
    assert_eq!(body["revision_number"], 3);

    let m = set(json!([{"destination": "192.168.0.0/16", "nexthop": "10.7.0.5"}]))
        .await
        .expect_error(400, "InvalidRoutes");
    assert!(m.contains("not connected"), "{m}");
    set(json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.1"}]))
        .await
        .expect_error(400, "InvalidRoutes");
    let m = set(json!([{"destination": "2001:db8::/32", "nexthop": "10.0.0.5"}]))
        .await
        .expect_error(400, "InvalidRoutes");
    assert!(m.contains("different IP versions"), "{m}");
    set(json!([{"destination": "192.168.0.1/16", "nexthop": "10.0.0.5"}]))
        .await
        .expect_error(400, "HTTPBadRequest");
    set(json!([{"destination": "192.168.0.0/16"}]))
        .await
        .expect_error(400, "HTTPBadRequest");
    set(
        json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.5"},
               {"destination": "192.168.0.0/16", "nexthop": "10.0.0.5"}]),
    )
    .await
    .expect_error(400, "HTTPBadRequest");
    set(json!("routes"))
        .await
        .expect_error(400, "HTTPBadRequest");
    let many: Vec<Value> = (0..31)
        .map(|i| json!({"destination": format!("172.16.{i}.0/24"), "nexthop": "10.0.0.5"}))
        .collect();
    set(json!(many)).await.expect_error(400, "RoutesExhausted");

    // The interface a route needs stays.
    remove_if(&app, alice, &rid, json!({"subnet_id": sub1}))
        .await
        .expect_error(409, "RouterInterfaceInUseByRoute");
    let cleared = set(Value::Null).await;
    assert_eq!(cleared.expect(200)["router"]["routes"], json!([]));
    remove_if(&app, alice, &rid, json!({"subnet_id": sub1}))
        .await
        .expect(200);
}

/// External net, alice's router with a gateway and an interface on
/// 10.0.0.0/24, and a VM port there. Returns (public net, router, net, subnet, vm port).
async fn topology(app: &App) -> (String, String, String, String, Value) {
    let alice = &app.alice;
    let (pub_net, _) = app.external_network("203.0.113.0/24").await;
    let (net, sub) = app.net_with_subnet(alice, "n1", "10.0.0.0/24").await;
    let r = router(
        app,
        alice,
        json!({"external_gateway_info": {"network_id": pub_net}}),
    )
    .await;
    add_if(app, alice, &id(&r), json!({"subnet_id": sub}))
        .await
        .expect(200);
    let vm = app
        .port(
            alice,
            &net,
            json!({"device_id": "vm-1", "device_owner": "compute:nova"}),
        )
        .await;
    (pub_net, id(&r), net, sub, vm)
}

#[tokio::test]
async fn floating_ip_lifecycle() {
    let app = App::new().await;
    let (alice, admin) = (&app.alice, &app.admin);
    let (pub_net, rid, _net, sub, vm) = topology(&app).await;
    let vm_id = id(&vm);
    let vm_ip = vm["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_string();

    // Unassociated: DOWN, an external address, a hidden port holding it.
    let f = fip(&app, alice, json!({"floating_network_id": pub_net})).await;
    let f = f.expect(201)["floatingip"].clone();
    let fid = id(&f);
    assert_eq!(f["status"], "DOWN");
    assert_eq!(f["port_id"], Value::Null);
    assert_eq!(f["fixed_ip_address"], Value::Null);
    assert_eq!(f["router_id"], Value::Null);
    assert_eq!(f["floating_network_id"], pub_net.as_str());
    assert_eq!(f["project_id"], app.project_a.as_str());
    assert_eq!(f["revision_number"], 1);
    let addr = f["floating_ip_address"].as_str().unwrap().to_string();
    assert!(addr.starts_with("203.0.113."));
    let hidden = owned_ports(&app, "network:floatingip", &fid).await;
    assert_eq!(hidden.len(), 1);
    assert_eq!(hidden[0]["project_id"], "");
    assert_eq!(hidden[0]["status"], "N/A");
    assert_eq!(hidden[0]["fixed_ips"][0]["ip_address"], addr.as_str());
    app.get(alice, &format!("/v2.0/ports/{}", id(&hidden[0])))
        .await
        .expect_error(404, "PortNotFound");
    app.delete(admin, &format!("/v2.0/ports/{}", id(&hidden[0])))
        .await
        .expect_error(409, "ServicePortInUse");

    // Associate: ACTIVE, the router derived.
    let path = format!("/v2.0/floatingips/{fid}");
    let u = app
        .put(alice, &path, json!({"floatingip": {"port_id": vm_id}}))
        .await;
    let u = u.expect(200)["floatingip"].clone();
    assert_eq!(u["status"], "ACTIVE");
    assert_eq!(u["port_id"], vm_id.as_str());
    assert_eq!(u["fixed_ip_address"], vm_ip.as_str());
    assert_eq!(u["router_id"], rid.as_str());
    assert_eq!(u["revision_number"], 2);
    // The same fixed IP cannot have two floating IPs on one network.
    fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "port_id": vm_id}),
    )
    .await
    .expect_error(409, "FloatingIPPortAlreadyAssociated");
    // What the association depends on stays.
    app.put(
        alice,
        &format!("/v2.0/routers/{rid}"),
        json!({"router": {"external_gateway_info": null}}),
    )
    .await
    .expect_error(409, "RouterExternalGatewayInUseByFloatingIp");
    remove_if(&app, alice, &rid, json!({"subnet_id": sub}))
        .await
        .expect_error(409, "RouterInterfaceInUseByFloatingIP");
    // PUT without port_id keeps the association (only an empty one drops
    // it: crates/api/tests/parity.rs).
    let u = app
        .put(alice, &path, json!({"floatingip": {"description": "web"}}))
        .await;
    let u = u.expect(200)["floatingip"].clone();
    assert_eq!(u["port_id"], vm_id.as_str());
    assert_eq!(u["description"], "web");
    // Filters.
    let by_port = app
        .list_ids(
            alice,
            &format!("/v2.0/floatingips?port_id={vm_id}"),
            "floatingips",
        )
        .await;
    assert_eq!(by_port, [fid.as_str()]);
    let by_addr = app
        .list_ids(
            alice,
            &format!("/v2.0/floatingips?floating_ip_address={addr}&router_id={rid}"),
            "floatingips",
        )
        .await;
    assert_eq!(by_addr, [fid.as_str()]);
    // Disassociate with null.
    let u = app
        .put(alice, &path, json!({"floatingip": {"port_id": null}}))
        .await;
    let u = u.expect(200)["floatingip"].clone();
    assert_eq!(u["status"], "DOWN");
    assert_eq!(u["router_id"], Value::Null);
    assert_eq!(u["fixed_ip_address"], Value::Null);

    // Created associated; moved to another port; the port's delete disassociates.
    let f2 = fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "port_id": vm_id, "fixed_ip_address": vm_ip}),
    )
    .await;
    let f2 = f2.expect(201)["floatingip"].clone();
    assert_eq!(f2["status"], "ACTIVE");
    assert_eq!(f2["router_id"], rid.as_str());
    let vm2 = app
        .port(alice, vm["network_id"].as_str().unwrap(), json!({}))
        .await;
    let moved = app
        .put(
            alice,
            &format!("/v2.0/floatingips/{}", id(&f2)),
            json!({"floatingip": {"port_id": id(&vm2)}}),
        )
        .await;
    assert_eq!(
        moved.expect(200)["floatingip"]["port_id"],
        id(&vm2).as_str()
    );
    app.delete(alice, &format!("/v2.0/ports/{}", id(&vm2)))
        .await
        .expect(204);
    let after = app
        .get(alice, &format!("/v2.0/floatingips/{}", id(&f2)))
        .await
        .expect(200)["floatingip"]
        .clone();
    assert_eq!(after["port_id"], Value::Null);
    assert_eq!(after["status"], "DOWN");
    // A fixed IP change that drops the address disassociates too.
    app.put(alice, &path, json!({"floatingip": {"port_id": vm_id}}))
        .await
        .expect(200);
    app.put(
        alice,
        &format!("/v2.0/ports/{vm_id}"),
        json!({"port": {"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.200"}]}}),
    )
    .await
    .expect(200);
    let after = app.get(alice, &path).await.expect(200)["floatingip"].clone();
    assert_eq!(after["port_id"], Value::Null);

    // Isolation.
    app.get(&app.bob, &path)
        .await
        .expect_error(404, "FloatingIPNotFound");
    app.put(&app.bob, &path, json!({"floatingip": {"port_id": null}}))
        .await
        .expect_error(404, "FloatingIPNotFound");
    app.delete(&app.bob, &path)
        .await
        .expect_error(404, "FloatingIPNotFound");
    assert!(
        app.list_ids(&app.bob, "/v2.0/floatingips", "floatingips")
            .await
            .is_empty()
    );
    assert_eq!(
        app.list_ids(admin, "/v2.0/floatingips", "floatingips")
            .await
            .len(),
        2
    );
    // Tags.
    app.put(alice, &format!("{path}/tags"), json!({"tags": ["a", "b"]}))
        .await
        .expect(200);
    assert_eq!(
        app.get(alice, &path).await.expect(200)["floatingip"]["tags"],
        json!(["a", "b"])
    );

    // Delete: the hidden port goes and the address is free for an admin to take.
    app.delete(alice, &path).await.expect(204);
    assert!(
        owned_ports(&app, "network:floatingip", &fid)
            .await
            .is_empty()
    );
    let again = fip(
        &app,
        admin,
        json!({"floating_network_id": pub_net, "floating_ip_address": addr}),
    )
    .await;
    assert_eq!(
        again.expect(201)["floatingip"]["floating_ip_address"],
        addr.as_str()
    );
    // Unassociated floating IPs do not hold the gateway.
    app.delete(alice, &format!("/v2.0/floatingips/{}", id(&f2)))
        .await
        .expect(204);
    app.put(
        alice,
        &format!("/v2.0/routers/{rid}"),
        json!({"router": {"external_gateway_info": null}}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn floating_ip_errors() {
    let app = App::new().await;
    let (alice, admin) = (&app.alice, &app.admin);
    let (pub_net, _rid, net, sub, vm) = topology(&app).await;
    let vm_id = id(&vm);

    fip(&app, alice, json!({}))
        .await
        .expect_error(400, "HTTPBadRequest");
    fip(&app, alice, json!({"floating_network_id": net}))
        .await
        .expect_error(400, "BadRequest");
    fip(
        &app,
        alice,
        json!({"floating_network_id": "5a0c6e1e-0000-4000-8000-000000000000"}),
    )
    .await
    .expect_error(404, "NetworkNotFound");
    fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "floating_ip_address": "203.0.113.50"}),
    )
    .await
    .expect_error(403, "PolicyNotAuthorized");
    fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "fixed_ip_address": "10.0.0.5"}),
    )
    .await
    .expect_error(400, "BadRequest");
    fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "router_id": _rid}),
    )
    .await
    .expect_error(400, "HTTPBadRequest");
    // An address in use.
    let taken = fip(
        &app,
        admin,
        json!({"floating_network_id": pub_net, "floating_ip_address": "203.0.113.50"}),
    )
    .await;
    taken.expect(201);
    fip(
        &app,
        admin,
        json!({"floating_network_id": pub_net, "floating_ip_address": "203.0.113.50"}),
    )
    .await
    .expect_error(409, "IpAddressInUse");
    fip(
        &app,
        admin,
        json!({"floating_network_id": pub_net, "floating_ip_address": "198.51.100.1"}),
    )
    .await
    .expect_error(400, "InvalidIpForNetwork");

    // No router links the port's subnet to the external network: 404.
    let (net2, _) = app.net_with_subnet(alice, "n2", "10.2.0.0/24").await;
    let lonely = app.port(alice, &net2, json!({})).await;
    fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "port_id": id(&lonely)}),
    )
    .await
    .expect_error(404, "ExternalGatewayForFloatingIPNotFound");
    // No IPv4 address; several without a choice; a choice not on the port.
    let bare = app.port(alice, &net, json!({"fixed_ips": []})).await;
    fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "port_id": id(&bare)}),
    )
    .await
    .expect_error(400, "BadRequest");
    let two = app
        .port(
            alice,
            &net,
            json!({"fixed_ips": [{"subnet_id": sub}, {"subnet_id": sub}]}),
        )
        .await;
    fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "port_id": id(&two)}),
    )
    .await
    .expect_error(400, "BadRequest");
    let second_ip = two["fixed_ips"][1]["ip_address"].as_str().unwrap();
    let ok = fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "port_id": id(&two), "fixed_ip_address": second_ip}),
    )
    .await;
    assert_eq!(ok.expect(201)["floatingip"]["fixed_ip_address"], second_ip);
    fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "port_id": vm_id, "fixed_ip_address": "10.0.0.250"}),
    )
    .await
    .expect_error(400, "BadRequest");
    // A router interface may be the target (only DHCP ports may not).
    let rports = app
        .get(alice, "/v2.0/ports?device_owner=network:router_interface")
        .await
        .expect(200)["ports"]
        .clone();
    fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "port_id": id(&rports[0])}),
    )
    .await
    .expect(201);
    // Bob cannot point at alice's port.
    fip(
        &app,
        &app.bob,
        json!({"floating_network_id": pub_net, "port_id": vm_id}),
    )
    .await
    .expect_error(404, "PortNotFound");
    // PUT: read-only attributes, fixed_ip_address without a port.
    let f = fip(&app, alice, json!({"floating_network_id": pub_net})).await;
    let fid = id(&f.expect(201)["floatingip"]);
    let path = format!("/v2.0/floatingips/{fid}");
    app.put(
        alice,
        &path,
        json!({"floatingip": {"floating_network_id": pub_net}}),
    )
    .await
    .expect_error(400, "HTTPBadRequest");
    app.put(
        alice,
        &path,
        json!({"floatingip": {"fixed_ip_address": "10.0.0.5"}}),
    )
    .await
    .expect_error(400, "BadRequest");
    app.put(alice, &path, json!({"floatingip": {"port_id": "nope"}}))
        .await
        .expect_error(400, "HTTPBadRequest");
    app.get(
        alice,
        "/v2.0/floatingips/9a1d5b2f-0000-4000-8000-000000000000",
    )
    .await
    .expect_error(404, "FloatingIPNotFound");
    // If-Match.
    app.send(
        axum::http::Method::PUT,
        &path,
        Some(alice),
        Some(
            json!({"floatingip": {"description": "x"}})
                .to_string()
                .into_bytes(),
        ),
        &[("if-match", "revision_number=9")],
    )
    .await
    .expect_error(412, "RevisionNumberConstraintFailed");
}

#[tokio::test]
async fn external_address_exhaustion() {
    let app = App::new().await;
    let alice = &app.alice;
    // A /29: .1 gateway, .2–.6 pool = 5 addresses.
    let (pub_net, _) = app.external_network("198.51.100.0/29").await;
    let mut made = 0;
    loop {
        let r = fip(&app, alice, json!({"floating_network_id": pub_net})).await;
        if r.status == 201 {
            made += 1;
            assert!(made <= 5, "more addresses than the pool holds");
            continue;
        }
        let m = r.expect_error(400, "ExternalIpAddressExhausted");
        assert!(m.contains(&pub_net), "{m}");
        break;
    }
    assert_eq!(made, 5);
    // A router gateway on the exhausted network: 409 as for any port.
    app.post(
        alice,
        "/v2.0/routers",
        json!({"router": {"external_gateway_info": {"network_id": pub_net}}}),
    )
    .await
    .expect_error(409, "IpAddressGenerationFailure");
    // A network without an IPv4 subnet.
    let v6 = app
        .network(&app.admin, json!({"name": "v6", "router:external": true}))
        .await;
    app.subnet(&app.admin, &id(&v6), "2001:db8::/64", json!({}))
        .await;
    fip(&app, alice, json!({"floating_network_id": id(&v6)}))
        .await
        .expect_error(400, "BadRequest");
}

#[tokio::test]
async fn bad_bodies_are_4xx_never_5xx() {
    let app = App::new().await;
    let alice = &app.alice;
    let (pub_net, _, _, sub, vm) = topology(&app).await;
    let rid = app.list_ids(alice, "/v2.0/routers", "routers").await[0].clone();
    let rpath = format!("/v2.0/routers/{rid}");
    let router_bodies = [
        json!([]),
        json!({"router": "x"}),
        json!({"router": {"external_gateway_info": 5}}),
        json!({"router": {"external_gateway_info": "public"}}),
        json!({"router": {"external_gateway_info": {"network_id": 5}}}),
        json!({"router": {"external_gateway_info": {"network_id": "not-a-uuid"}}}),
        json!({"router": {"external_gateway_info": {"enable_snat": true}}}),
        json!({"router": {"external_gateway_info": {"network_id": pub_net, "foo": 1}}}),
        json!({"router": {"external_gateway_info": {"network_id": pub_net, "external_fixed_ips": 3}}}),
        json!({"router": {"external_gateway_info": {"network_id": pub_net, "external_fixed_ips": [3]}}}),
        json!({"router": {"external_gateway_info": {"network_id": pub_net, "external_fixed_ips": [{"ip_address": "x"}]}}}),
        json!({"router": {"admin_state_up": "maybe"}}),
        json!({"router": {"name": 7}}),
        json!({"router": {"routes": [1]}}),
        json!({"router": {"routes": [{"destination": "x", "nexthop": "10.0.0.9"}]}}),
        json!({"router": {"routes": [{"destination": "10.9.0.0/24", "nexthop": "nope"}]}}),
        json!({"router": {"routes": {"destination": "10.9.0.0/24"}}}),
        json!({"router": {"status": "DOWN"}}),
        json!({"router": {"id": "x"}}),
    ];
    for b in &router_bodies {
        let r = app.put(alice, &rpath, b.clone()).await;
        assert!(
            (400..500).contains(&r.status),
            "PUT {b}: {} {}",
            r.status,
            r.body
        );
        let r = app.post(alice, "/v2.0/routers", b.clone()).await;
        assert!(
            (400..500).contains(&r.status),
            "POST {b}: {} {}",
            r.status,
            r.body
        );
    }
    let interface_bodies = [
        json!([]),
        json!("x"),
        json!({"subnet_id": 5}),
        json!({"subnet_id": "nope"}),
        json!({"port_id": ["x"]}),
        json!({"subnet_id": null, "port_id": null}),
    ];
    for action in ["add_router_interface", "remove_router_interface"] {
        for b in &interface_bodies {
            let r = app
                .put(alice, &format!("{rpath}/{action}"), b.clone())
                .await;
            assert!(
                (400..500).contains(&r.status),
                "{action} {b}: {} {}",
                r.status,
                r.body
            );
        }
        let r = app
            .send(
                axum::http::Method::PUT,
                &format!("{rpath}/{action}"),
                Some(alice),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, 400);
    }
    let fip_bodies = [
        json!({"floatingip": {"floating_network_id": 5}}),
        json!({"floatingip": {"floating_network_id": pub_net, "port_id": 5}}),
        json!({"floatingip": {"floating_network_id": pub_net, "port_id": id(&vm), "fixed_ip_address": "bad"}}),
        json!({"floatingip": {"floating_network_id": pub_net, "port_id": id(&vm), "fixed_ip_address": "::1"}}),
        json!({"floatingip": {"floating_network_id": pub_net, "subnet_id": "x"}}),
        json!({"floatingip": {"floating_network_id": pub_net, "subnet_id": sub}}),
        json!({"floatingip": {"floating_network_id": pub_net, "status": "ACTIVE"}}),
        json!({"floatingips": []}),
        json!({"floatingip": []}),
    ];
    for b in &fip_bodies {
        let r = app.post(alice, "/v2.0/floatingips", b.clone()).await;
        assert!(
            (400..500).contains(&r.status),
            "POST {b}: {} {}",
            r.status,
            r.body
        );
    }
    // Admin-only input that is still malformed.
    for addr in ["::1", "203.0.113.999", "203.0.113.0", "203.0.113.255"] {
        let r = fip(
            &app,
            &app.admin,
            json!({"floating_network_id": pub_net, "floating_ip_address": addr}),
        )
        .await;
        assert!((400..500).contains(&r.status), "{addr}: {}", r.body);
    }
    // Bulk is all-or-nothing.
    let before = app
        .list_ids(alice, "/v2.0/floatingips", "floatingips")
        .await
        .len();
    app.post(
        alice,
        "/v2.0/floatingips",
        json!({"floatingips": [{"floating_network_id": pub_net}, {"floating_network_id": sub}]}),
    )
    .await
    .expect_error(404, "NetworkNotFound");
    let after = app
        .list_ids(alice, "/v2.0/floatingips", "floatingips")
        .await
        .len();
    assert_eq!(before, after);
    let bulk = app
        .post(
            alice,
            "/v2.0/routers",
            json!({"routers": [{"name": "b1"}, {"name": "b2"}]}),
        )
        .await;
    assert_eq!(bulk.expect(201)["routers"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn l3_state_survives_a_restart() {
    let app = App::new().await;
    let alice = &app.alice;
    let (pub_net, rid, _net, sub, vm) = topology(&app).await;
    app.put(
        alice,
        &format!("/v2.0/routers/{rid}"),
        json!({"router": {"routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.9"}]}}),
    )
    .await
    .expect(200);
    let f = fip(
        &app,
        alice,
        json!({"floating_network_id": pub_net, "port_id": id(&vm)}),
    )
    .await;
    let f = f.expect(201)["floatingip"].clone();
    let r_before = get_router(&app, alice, &rid).await;

    let app2 = app.reopen().await;
    let alice = &app2.alice;
    assert_eq!(get_router(&app2, alice, &rid).await, r_before);
    let f2 = app2
        .get(alice, &format!("/v2.0/floatingips/{}", id(&f)))
        .await
        .expect(200)["floatingip"]
        .clone();
    assert_eq!(f2, f);
    // Every index came back: interfaces, gateway, FIPs by port and by router, addresses.
    app2.delete(alice, &format!("/v2.0/routers/{rid}"))
        .await
        .expect_error(409, "RouterInUse");
    remove_if(&app2, alice, &rid, json!({"subnet_id": sub}))
        .await
        .expect_error(409, "RouterInterfaceInUseByFloatingIP");
    app2.put(
        alice,
        &format!("/v2.0/routers/{rid}"),
        json!({"router": {"external_gateway_info": null}}),
    )
    .await
    .expect_error(409, "RouterExternalGatewayInUseByFloatingIp");
    fip(
        &app2,
        alice,
        json!({"floating_network_id": pub_net, "port_id": id(&vm)}),
    )
    .await
    .expect_error(409, "FloatingIPPortAlreadyAssociated");
    fip(
        &app2,
        &app2.admin,
        json!({"floating_network_id": pub_net,
               "floating_ip_address": f["floating_ip_address"]}),
    )
    .await
    .expect_error(409, "IpAddressInUse");
    let gw = owned_ports(&app2, "network:router_gateway", &rid).await;
    app2.delete(&app2.admin, &format!("/v2.0/ports/{}", id(&gw[0])))
        .await
        .expect_error(409, "ServicePortInUse");
    let d = app2
        .get(alice, &format!("/v2.0/quotas/{}/details", app2.project_a))
        .await
        .expect(200)["quota"]
        .clone();
    assert_eq!(d["router"]["used"], 1);
    assert_eq!(d["floatingip"]["used"], 1);
    // And the port's delete still finds its floating IP.
    app2.delete(alice, &format!("/v2.0/ports/{}", id(&vm)))
        .await
        .expect(204);
    let f3 = app2
        .get(alice, &format!("/v2.0/floatingips/{}", id(&f)))
        .await
        .expect(200)["floatingip"]
        .clone();
    assert_eq!(f3["status"], "DOWN");
}
