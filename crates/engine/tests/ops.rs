//! Resource operations at the engine's boundary: requests go straight to
//! `Resource` and the ops, over an in-memory SQLite store, without HTTP.

mod support;

use neutrino_engine::ops;
use neutrino_engine::resource::{Resource, Table, ViewCtx, write_json};
use neutrino_model::query::ListQuery;
use neutrino_model::{FloatingIp, Network, Port, Router, SecurityGroup, Subnet};
use serde_json::{Value, json};
use support::{TestEngine, admin, body, member};

async fn network(t: &TestEngine, ctx: &neutrino_model::AuthContext, v: Value) -> Network {
    let mut out = Network::create(&t.engine, ctx, vec![body(v)])
        .await
        .unwrap();
    (*out.remove(0)).clone()
}

async fn subnet(t: &TestEngine, net: &str, cidr: &str) -> Subnet {
    let v = json!({"network_id": net, "ip_version": 4, "cidr": cidr});
    let mut out = Subnet::create(&t.engine, &admin(), vec![body(v)])
        .await
        .unwrap();
    (*out.remove(0)).clone()
}

/// An item's JSON as the API shows it to `admin`.
fn shown<R: Resource>(t: &TestEngine, item: &R, admin: bool) -> Value {
    let snap = t.engine.snapshot();
    let cx = ViewCtx {
        admin,
        state: &snap,
        dns_domain: "openstacklocal",
    };
    let mut out = Vec::new();
    write_json(item, &cx, &[], &mut out);
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test]
async fn create_update_delete_through_the_trait() {
    let t = TestEngine::start();
    let ctx = admin();
    let net = network(&t, &ctx, json!({"name": "blue"})).await;
    assert_eq!(net.std.revision_number, 1);
    let sub = subnet(&t, &net.id, "10.0.0.0/24").await;
    assert_eq!(sub.gateway_ip.as_deref(), Some("10.0.0.1"));

    // The subnet was a new revision of its network too.
    let v = body(json!({"name": "green"}));
    let renamed = Network::update(&t.engine, &ctx, net.id.clone(), v, Some(2))
        .await
        .unwrap();
    assert_eq!(renamed.name, "green");
    assert_eq!(renamed.std.revision_number, 3);
    // If-Match is compared inside the writer.
    let v = body(json!({"name": "red"}));
    let e = Network::update(&t.engine, &ctx, net.id.clone(), v, Some(2))
        .await
        .unwrap_err();
    assert_eq!(e.kind.status(), 412);

    let port = Port::create(
        &t.engine,
        &ctx,
        vec![body(
            json!({"network_id": net.id, "device_owner": "compute:nova"}),
        )],
    )
    .await
    .unwrap()
    .remove(0);
    assert_eq!(port.fixed_ips.len(), 1);
    let e = Network::delete(&t.engine, &ctx, net.id.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(e.error_type, "NetworkInUse");
    Port::delete(&t.engine, &ctx, port.id.clone(), None)
        .await
        .unwrap();
    Network::delete(&t.engine, &ctx, net.id.clone(), None)
        .await
        .unwrap();
    let snap = t.engine.snapshot();
    assert!(snap.networks.is_empty() && snap.subnets.is_empty() && snap.ports.is_empty());
    assert_eq!(
        Network::find(&snap, &ctx, &net.id).unwrap_err().error_type,
        "NetworkNotFound"
    );
}

#[tokio::test]
async fn the_attribute_table_validates_requests() {
    let t = TestEngine::start();
    let ctx = admin();
    let e = Network::create(&t.engine, &ctx, vec![body(json!({"colour": "blue"}))])
        .await
        .unwrap_err();
    assert_eq!(e.message, "Unrecognized attribute(s) 'colour'");
    let net = network(&t, &ctx, json!({})).await;
    let v = body(json!({"network_id": "x"}));
    let e = Subnet::create(
        &t.engine,
        &ctx,
        vec![body(
            json!({"network_id": net.id, "cidr": "10.0.0.0/24", "ip_version": 4, "id": "x"}),
        )],
    )
    .await
    .unwrap_err();
    assert_eq!(e.message, "Attribute 'id' not allowed in POST");
    let e = Port::update(&t.engine, &ctx, "p".into(), v, None)
        .await
        .unwrap_err();
    assert_eq!(e.message, "Cannot update read-only attribute network_id");
}

#[tokio::test]
async fn views_hide_admin_attributes_and_derive_the_rest() {
    let t = TestEngine::start();
    let net = network(&t, &admin(), json!({"name": "n"})).await;
    let sub = subnet(&t, &net.id, "10.1.0.0/24").await;
    let snap = t.engine.snapshot();
    let net = snap.networks.get(&net.id).unwrap().clone();
    let as_admin = shown(&t, &*net, true);
    let as_member = shown(&t, &*net, false);
    assert_eq!(as_admin["provider:network_type"], "vxlan");
    assert!(as_member.get("provider:network_type").is_none());
    assert_eq!(as_member["subnets"], json!([sub.id]));
    assert_eq!(as_member["tenant_id"], as_member["project_id"]);
    assert!(as_member["created_at"].as_str().unwrap().ends_with('Z'));
    let sub = snap.subnets.get(&sub.id).unwrap().clone();
    assert_eq!(shown(&t, &*sub, false)["router:external"], false);
}

#[tokio::test]
async fn lists_filter_and_sort_through_the_table() {
    let t = TestEngine::start();
    let ctx = admin();
    for name in ["c", "a", "b"] {
        network(&t, &ctx, json!({"name": name, "shared": name == "b"})).await;
    }
    let snap = t.engine.snapshot();
    let schema = Table::<Network>::new(&snap);
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let names = |q: &ListQuery| -> Vec<String> {
        let items: Vec<_> = Network::listed(&snap, &ctx, &[])
            .into_iter()
            .filter(|n| q.matches(&schema, *n))
            .collect();
        q.paginate(&schema, items)
            .unwrap()
            .iter()
            .map(|n| n.name.clone())
            .collect()
    };
    let q = ListQuery::parse(
        &pairs(&[("sort_key", "name"), ("sort_dir", "desc")]),
        &schema,
        0,
    )
    .unwrap();
    assert_eq!(names(&q), ["c", "b", "a"]);
    let q = ListQuery::parse(&pairs(&[("shared", "true")]), &schema, 0).unwrap();
    assert_eq!(names(&q), ["b"]);
    let e = ListQuery::parse(&pairs(&[("subnets", "x")]), &schema, 0).unwrap_err();
    assert_eq!(e.message, "['subnets'] is invalid attribute for filtering");
    let e = ListQuery::parse(
        &pairs(&[("sort_key", "shared"), ("sort_dir", "asc")]),
        &schema,
        0,
    )
    .unwrap_err();
    assert_eq!(e.message, "['shared'] is invalid attribute for sort_keys");
}

#[tokio::test]
async fn projects_see_only_their_own_and_shared() {
    let t = TestEngine::start();
    let (a, b) = (member("pa"), member("pb"));
    let mine = network(&t, &a, json!({"name": "a"})).await;
    let shared = network(&t, &admin(), json!({"name": "s", "shared": true})).await;
    let snap = t.engine.snapshot();
    let seen: Vec<&str> = Network::listed(&snap, &b, &[])
        .into_iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(seen, ["s"]);
    assert_eq!(
        Network::find(&snap, &b, &mine.id).unwrap_err().error_type,
        "NetworkNotFound"
    );
    let v = body(json!({"name": "x"}));
    let e = Network::update(&t.engine, &b, shared.id.clone(), v, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind.status(), 403);
    let e = ops::tags::edit::<Network>(&t.engine, &b, mine.id.clone(), |t| {
        t.push("x".into());
        Ok(())
    })
    .await
    .unwrap_err();
    assert_eq!(e.error_type, "TagResourceNotFound");
}

#[tokio::test]
async fn tags_bump_the_revision_once_per_change() {
    let t = TestEngine::start();
    let ctx = admin();
    let net = network(&t, &ctx, json!({})).await;
    let set = |tags: Vec<&'static str>| {
        let (e, ctx, id) = (t.engine.clone(), ctx.clone(), net.id.clone());
        async move {
            ops::tags::edit::<Network>(&e, &ctx, id, move |cur| {
                *cur = tags.into_iter().map(String::from).collect();
                Ok(())
            })
            .await
        }
    };
    assert_eq!(set(vec!["b", "a", "a"]).await.unwrap(), ["a", "b"]);
    assert_eq!(set(vec!["a", "b"]).await.unwrap(), ["a", "b"]);
    let snap = t.engine.snapshot();
    assert_eq!(snap.networks.get(&net.id).unwrap().std.revision_number, 2);
    assert_eq!(
        ops::tags::get::<Network>(&t.engine, &ctx, &net.id).unwrap(),
        ["a", "b"]
    );
}

#[tokio::test]
async fn floating_ips_routers_and_groups_through_the_trait() {
    let t = TestEngine::start();
    let ctx = admin();
    let ext = network(&t, &ctx, json!({"router:external": true})).await;
    subnet(&t, &ext.id, "192.0.2.0/24").await;
    let inner = network(&t, &ctx, json!({})).await;
    let sub = subnet(&t, &inner.id, "10.2.0.0/24").await;
    let router = Router::create(
        &t.engine,
        &ctx,
        vec![body(
            json!({"external_gateway_info": {"network_id": ext.id}}),
        )],
    )
    .await
    .unwrap()
    .remove(0);
    ops::routers::add_interface(
        &t.engine,
        &ctx,
        router.id.clone(),
        json!({"subnet_id": sub.id}),
    )
    .await
    .unwrap();
    let port = Port::create(&t.engine, &ctx, vec![body(json!({"network_id": inner.id}))])
        .await
        .unwrap()
        .remove(0);
    let fip = FloatingIp::create(
        &t.engine,
        &ctx,
        vec![body(
            json!({"floating_network_id": ext.id, "port_id": port.id}),
        )],
    )
    .await
    .unwrap()
    .remove(0);
    assert_eq!(fip.router_id.as_deref(), Some(router.id.as_str()));
    let e = Router::delete(&t.engine, &ctx, router.id.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(e.error_type, "RouterInUse");
    // An update names where the address points: an empty one, nowhere.
    let same = FloatingIp::update(&t.engine, &ctx, fip.id.clone(), body(json!({})), None)
        .await
        .unwrap();
    assert_eq!(same.port_id, None);
    assert_eq!(same.router_id, None);

    let group = SecurityGroup::create(&t.engine, &ctx, vec![body(json!({"name": "web"}))])
        .await
        .unwrap()
        .remove(0);
    let snap = t.engine.snapshot();
    let rules = shown(&t, &**snap.security_groups.get(&group.id).unwrap(), false);
    // Two egress rules come with a new group.
    assert_eq!(rules["security_group_rules"].as_array().unwrap().len(), 2);
    assert!(rules["security_group_rules"][0].get("tags").is_none());
}

#[tokio::test]
async fn groups_filter_on_shared() {
    let t = TestEngine::start();
    let ctx = member("pa");
    SecurityGroup::create(&t.engine, &ctx, vec![body(json!({"name": "web"}))])
        .await
        .unwrap();
    let snap = t.engine.snapshot();
    let schema = Table::<SecurityGroup>::new(&snap);
    let count = |v: &str| {
        let pairs = vec![("shared".to_string(), v.to_string())];
        let q = ListQuery::parse(&pairs, &schema, 0).unwrap();
        SecurityGroup::listed(&snap, &ctx, &pairs)
            .into_iter()
            .filter(|g| q.matches(&schema, *g))
            .count()
    };
    // The project's default group and its own; none is shared with it.
    assert_eq!(count("false"), 2);
    assert_eq!(count("true"), 0);
}
