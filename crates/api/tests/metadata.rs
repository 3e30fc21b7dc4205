//! The metadata relay (`/agent/v1/metadata/...`) and the instance-metadata
//! extension in process: who a request is answered for (the network or
//! router it arrived on and its source address, nothing else), what the
//! builtin backend says, and what it refuses.

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine as _;
use common::{AGENT_SECRET, App, id};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A relayed request: (status, whether the server marked it the instance's
/// answer, body text).
async fn relay(
    app: &App,
    arrival: (&str, &str),
    addr: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (u16, bool, String) {
    let req = Request::builder()
        .method(method)
        .uri(format!("/agent/v1/metadata{path}"))
        .header("authorization", format!("Bearer {AGENT_SECRET}"))
        .header(arrival.0, arrival.1)
        .header("x-neutrino-instance-address", addr)
        .body(Body::from(body))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let answered = resp.headers().contains_key("x-neutrino-metadata-answer");
    let raw = resp.into_body().collect().await.unwrap().to_bytes();
    (status, answered, String::from_utf8_lossy(&raw).into_owned())
}

async fn get(app: &App, net: &str, addr: &str, path: &str) -> (u16, String) {
    let (s, answered, body) = relay(
        app,
        ("x-neutrino-network-id", net),
        addr,
        Method::GET,
        path,
        Vec::new(),
    )
    .await;
    assert!(answered, "{s} {body}");
    (s, body)
}

async fn vm(app: &App, net: &str, subnet: &str, ip: &str, device: &str) -> Value {
    app.port(
        &app.alice,
        net,
        json!({"device_id": device, "device_owner": "compute:nova",
               "fixed_ips": [{"subnet_id": subnet, "ip_address": ip}]}),
    )
    .await
}

#[tokio::test]
async fn a_request_is_answered_for_the_port_holding_its_source_on_its_network_only() {
    let app = App::new().await;
    let (red, red_sub) = app.net_with_subnet(&app.alice, "red", "10.0.0.0/24").await;
    let (green, green_sub) = app
        .net_with_subnet(&app.alice, "green", "10.0.0.0/24")
        .await;
    vm(&app, &red, &red_sub, "10.0.0.5", "dev-red").await;
    vm(&app, &green, &green_sub, "10.0.0.5", "dev-green").await;
    let path = "/latest/meta-data/instance-id";
    assert_eq!(
        get(&app, &red, "10.0.0.5", path).await,
        (200, "dev-red".into())
    );
    assert_eq!(
        get(&app, &green, "10.0.0.5", path).await,
        (200, "dev-green".into())
    );
    // An address no port holds is nobody's.
    let (s, body) = get(&app, &red, "10.0.0.9", path).await;
    assert_eq!(s, 404);
    assert!(
        body.contains(&format!("Instance was not found on network {red}")),
        "{body}"
    );
    // A virtual IP in an address pair is its holder's, on that network.
    let p = vm(&app, &red, &red_sub, "10.0.0.6", "dev-vip").await;
    app.put(
        &app.alice,
        &format!("/v2.0/ports/{}", id(&p)),
        json!({"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.100"}]}}),
    )
    .await
    .expect(200);
    assert_eq!(
        get(&app, &red, "10.0.0.100", path).await,
        (200, "dev-vip".into())
    );
    assert_eq!(get(&app, &green, "10.0.0.100", path).await.0, 404);

    // Through a router: the networks of its interfaces, nothing else.
    let r = app
        .post(
            &app.alice,
            "/v2.0/routers",
            json!({"router": {"name": "r"}}),
        )
        .await;
    let router = id(&r.expect(201)["router"]);
    app.put(
        &app.alice,
        &format!("/v2.0/routers/{router}/add_router_interface"),
        json!({"subnet_id": red_sub}),
    )
    .await
    .expect(200);
    let (s, _, body) = relay(
        &app,
        ("x-neutrino-router-id", &router),
        "10.0.0.5",
        Method::GET,
        path,
        Vec::new(),
    )
    .await;
    assert_eq!((s, body.as_str()), (200, "dev-red"));
    let (s, _, _) = relay(
        &app,
        ("x-neutrino-router-id", "no-such-router"),
        "10.0.0.5",
        Method::GET,
        path,
        Vec::new(),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_builtin_backend_answers_from_the_model_and_the_extension() {
    let app = App::new().await;
    let (net, sub) = app.net_with_subnet(&app.alice, "blue", "10.0.0.0/24").await;
    let p = vm(&app, &net, &sub, "10.0.0.5", "dev-1").await;
    // Without the extension's document: Neutron's defaults.
    let (s, body) = get(&app, &net, "10.0.0.5", "/openstack/latest/meta_data.json").await;
    assert_eq!(s, 200);
    let md: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(md["uuid"], "dev-1");
    assert_eq!(md["hostname"], "host-10-0-0-5");
    assert_eq!(md["project_id"], app.project_a);
    assert!(md.get("public_keys").is_none());
    assert_eq!(
        get(&app, &net, "10.0.0.5", "/openstack/latest/user_data")
            .await
            .0,
        404
    );

    let user_data = "#cloud-config\nruncmd: [true]\n";
    let put = app
        .put(
            &app.admin,
            "/v2.0/instance-metadata/dev-1",
            json!({"instance_metadata": {
                "project_id": app.project_a,
                "name": "web-1",
                "user_data": base64::engine::general_purpose::STANDARD.encode(user_data),
                "public_keys": {"k": "ssh-ed25519 AAAA k"},
                "meta": {"role": "web"}}}),
        )
        .await;
    assert_eq!(put.expect(200)["instance_metadata"]["name"], "web-1");
    let (_, body) = get(
        &app,
        &net,
        "10.0.0.5",
        "/openstack/2018-08-27/meta_data.json",
    )
    .await;
    let md: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (md["name"].as_str(), md["meta"]["role"].as_str()),
        (Some("web-1"), Some("web"))
    );
    assert_eq!(md["public_keys"]["k"], "ssh-ed25519 AAAA k");
    assert_eq!(
        get(&app, &net, "10.0.0.5", "/openstack/latest/user_data").await,
        (200, user_data.to_string())
    );
    let (_, nd) = get(
        &app,
        &net,
        "10.0.0.5",
        "/openstack/latest/network_data.json",
    )
    .await;
    let nd: Value = serde_json::from_str(&nd).unwrap();
    assert_eq!(nd["links"][0]["ethernet_mac_address"], p["mac_address"]);
    assert_eq!(nd["networks"][0]["ip_address"], "10.0.0.5");
    assert_eq!(nd["networks"][0]["routes"][0]["gateway"], "10.0.0.1");

    // public-ipv4 is the floating IP in front of the port, now.
    let (ext, _) = app.external_network("172.24.4.0/24").await;
    let r = app
        .post(
            &app.alice,
            "/v2.0/routers",
            json!({"router": {
            "name": "r", "external_gateway_info": {"network_id": ext}}}),
        )
        .await;
    let router = id(&r.expect(201)["router"]);
    app.put(
        &app.alice,
        &format!("/v2.0/routers/{router}/add_router_interface"),
        json!({"subnet_id": sub}),
    )
    .await
    .expect(200);
    let public = "/latest/meta-data/public-ipv4";
    assert_eq!(
        get(&app, &net, "10.0.0.5", public).await,
        (200, String::new())
    );
    let f = app
        .post(
            &app.alice,
            "/v2.0/floatingips",
            json!({"floatingip": {
            "floating_network_id": ext, "port_id": id(&p)}}),
        )
        .await;
    let fip = f.expect(201)["floatingip"].clone();
    assert_eq!(
        get(&app, &net, "10.0.0.5", public).await,
        (
            200,
            fip["floating_ip_address"].as_str().unwrap().to_string()
        )
    );
    app.put(
        &app.alice,
        &format!("/v2.0/floatingips/{}", id(&fip)),
        json!({"floatingip": {"port_id": null}}),
    )
    .await
    .expect(200);
    assert_eq!(
        get(&app, &net, "10.0.0.5", public).await,
        (200, String::new())
    );

    // Another project's port with the same device id is told none of it.
    let (bnet, bsub) = app.net_with_subnet(&app.bob, "b", "10.9.0.0/24").await;
    app.port(
        &app.bob,
        &bnet,
        json!({"device_id": "dev-1", "device_owner": "compute:nova",
               "fixed_ips": [{"subnet_id": bsub, "ip_address": "10.9.0.5"}]}),
    )
    .await;
    assert_eq!(
        get(&app, &bnet, "10.9.0.5", "/openstack/latest/user_data")
            .await
            .0,
        404
    );
    let (_, md) = get(&app, &bnet, "10.9.0.5", "/openstack/latest/meta_data.json").await;
    let md: Value = serde_json::from_str(&md).unwrap();
    assert!(
        md.get("public_keys").is_none() && md["name"] != "web-1",
        "{md}"
    );

    // Gone with the extension's document.
    app.delete(&app.admin, "/v2.0/instance-metadata/dev-1")
        .await
        .expect(204);
    assert_eq!(
        get(&app, &net, "10.0.0.5", "/openstack/latest/user_data")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn bad_relays_and_bad_documents_are_refused() {
    let app = App::new().await;
    let (net, sub) = app.net_with_subnet(&app.alice, "blue", "10.0.0.0/24").await;
    vm(&app, &net, &sub, "10.0.0.5", "dev-1").await;
    // Not an agent: refused, and not as the instance's answer.
    let req = Request::builder()
        .uri("/agent/v1/metadata/latest")
        .header("x-neutrino-network-id", &net)
        .header("x-neutrino-instance-address", "10.0.0.5")
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(!resp.headers().contains_key("x-neutrino-metadata-answer"));
    // Both arrivals, or a bad address: the relay is malformed.
    let req = Request::builder()
        .uri("/agent/v1/metadata/latest")
        .header("authorization", format!("Bearer {AGENT_SECRET}"))
        .header("x-neutrino-network-id", &net)
        .header("x-neutrino-router-id", "r")
        .header("x-neutrino-instance-address", "10.0.0.5")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.router
            .clone()
            .oneshot(req)
            .await
            .unwrap()
            .status()
            .as_u16(),
        400
    );
    let (s, answered, _) = relay(
        &app,
        ("x-neutrino-network-id", &net),
        "not-an-ip",
        Method::GET,
        "/",
        Vec::new(),
    )
    .await;
    assert_eq!((s, answered), (400, false));
    // The instance's bad requests get the instance's answers.
    assert_eq!(
        get(&app, &net, "10.0.0.5", "/openstack/../../x").await.0,
        400
    );
    assert_eq!(
        get(&app, &net, "10.0.0.5", "/2999-01-01/meta-data/")
            .await
            .0,
        404
    );
    let (s, answered, _) = relay(
        &app,
        ("x-neutrino-network-id", &net),
        "10.0.0.5",
        Method::DELETE,
        "/latest",
        Vec::new(),
    )
    .await;
    assert_eq!((s, answered), (405, true));
    let (s, _, _) = relay(
        &app,
        ("x-neutrino-network-id", &net),
        "10.0.0.5",
        Method::POST,
        "/openstack/latest/password",
        vec![b'x'; 5000],
    )
    .await;
    assert_eq!(s, 413);

    // The extension: admin only, Nova's limits, nothing half-written.
    let doc = |v: Value| json!({ "instance_metadata": v });
    app.put(
        &app.alice,
        "/v2.0/instance-metadata/dev-1",
        doc(json!({"name": "x"})),
    )
    .await
    .expect_error(403, "PolicyNotAuthorized");
    let huge = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 60_000]);
    for (bad, why) in [
        (json!({"user_data": huge}), "exceed the limit"),
        (json!({"user_data": "%%% not base64"}), "not valid base64"),
        (json!({"name": "n".repeat(256)}), "longer than 255"),
        (json!({"public_keys": ["a"]}), "not a dictionary"),
        (json!({"meta": {"k": 1}}), "not a string"),
        (json!({"flavor": "m1"}), "Unrecognized attribute"),
        (json!({"name": "no project"}), "project_id is required"),
    ] {
        let msg = app
            .put(
                &app.admin,
                "/v2.0/instance-metadata/dev-1",
                doc(bad.clone()),
            )
            .await
            .expect_error(400, "HTTPBadRequest");
        assert!(msg.contains(why), "{bad}: {msg}");
    }
    app.get(&app.admin, "/v2.0/instance-metadata/dev-1")
        .await
        .expect_error(404, "InstanceMetadataNotFound");
    let listed = app.get(&app.admin, "/v2.0/instance-metadata").await;
    assert_eq!(listed.expect(200)["instance_metadata"], json!([]));
    app.get(&app.alice, "/v2.0/instance-metadata")
        .await
        .expect_error(403, "PolicyNotAuthorized");
    // Listed among the extensions.
    let ext = app
        .get(&app.alice, "/v2.0/extensions/instance-metadata")
        .await;
    assert_eq!(ext.expect(200)["extension"]["alias"], "instance-metadata");
}
