//! The model's indexes are kept by hand on every write. After any sequence of
//! operations (failed ones included) they must equal the indexes a restart
//! rebuilds from the stored documents.

mod support;

use neutrino_engine::ops;
use neutrino_engine::resource::Resource;
use neutrino_model::{AuthContext, FloatingIp, Network, Port, Router, SecurityGroup, Subnet};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{TestEngine, admin, body, member};

/// One operation; indexes pick among the items that exist when it runs.
#[derive(Debug, Clone)]
enum Op {
    Network {
        external: bool,
        project: u8,
    },
    Subnet {
        net: usize,
        v6: bool,
    },
    Port {
        net: usize,
        host: u8,
        group: Option<usize>,
        project: u8,
    },
    MovePort {
        port: usize,
        host: u8,
    },
    RegroupPort {
        port: usize,
        group: Option<usize>,
    },
    ReaddressPort {
        port: usize,
    },
    DeletePort {
        port: usize,
    },
    DeleteSubnet {
        sub: usize,
    },
    DeleteNetwork {
        net: usize,
    },
    Group {
        project: u8,
    },
    Rule {
        group: usize,
        remote: Option<usize>,
        port: u16,
    },
    DeleteRule {
        rule: usize,
    },
    DeleteGroup {
        group: usize,
    },
    Router {
        gateway: Option<usize>,
    },
    AddInterface {
        router: usize,
        sub: usize,
    },
    RemoveInterface {
        router: usize,
        sub: usize,
    },
    SetGateway {
        router: usize,
        net: Option<usize>,
    },
    DeleteRouter {
        router: usize,
    },
    Fip {
        net: usize,
        port: Option<usize>,
    },
    MoveFip {
        fip: usize,
        port: Option<usize>,
    },
    DeleteFip {
        fip: usize,
    },
    Tag {
        net: usize,
        tag: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let i = || 0usize..8;
    prop_oneof![
        (any::<bool>(), 0u8..3).prop_map(|(external, project)| Op::Network { external, project }),
        (i(), any::<bool>()).prop_map(|(net, v6)| Op::Subnet { net, v6 }),
        (i(), 0u8..3, proptest::option::of(i()), 0u8..3).prop_map(|(net, host, group, project)| {
            Op::Port {
                net,
                host,
                group,
                project,
            }
        }),
        (i(), 0u8..3).prop_map(|(port, host)| Op::MovePort { port, host }),
        (i(), proptest::option::of(i())).prop_map(|(port, group)| Op::RegroupPort { port, group }),
        i().prop_map(|port| Op::ReaddressPort { port }),
        i().prop_map(|port| Op::DeletePort { port }),
        i().prop_map(|sub| Op::DeleteSubnet { sub }),
        i().prop_map(|net| Op::DeleteNetwork { net }),
        (0u8..3).prop_map(|project| Op::Group { project }),
        (i(), proptest::option::of(i()), 1u16..4).prop_map(|(group, remote, port)| Op::Rule {
            group,
            remote,
            port
        }),
        i().prop_map(|rule| Op::DeleteRule { rule }),
        i().prop_map(|group| Op::DeleteGroup { group }),
        proptest::option::of(i()).prop_map(|gateway| Op::Router { gateway }),
        (i(), i()).prop_map(|(router, sub)| Op::AddInterface { router, sub }),
        (i(), i()).prop_map(|(router, sub)| Op::RemoveInterface { router, sub }),
        (i(), proptest::option::of(i())).prop_map(|(router, net)| Op::SetGateway { router, net }),
        i().prop_map(|router| Op::DeleteRouter { router }),
        (i(), proptest::option::of(i())).prop_map(|(net, port)| Op::Fip { net, port }),
        (i(), proptest::option::of(i())).prop_map(|(fip, port)| Op::MoveFip { fip, port }),
        i().prop_map(|fip| Op::DeleteFip { fip }),
        (i(), 0u8..3).prop_map(|(net, tag)| Op::Tag { net, tag }),
    ]
}

/// The id of the `n`th (mod len) existing item of a collection.
fn pick<R: Resource>(t: &TestEngine, n: usize) -> Option<String> {
    let snap = t.engine.snapshot();
    let all = R::all(&snap);
    let len = all.len();
    (len > 0).then(|| all.keys().nth(n % len).cloned().unwrap_or_default())
}

fn pick_rule(t: &TestEngine, n: usize) -> Option<String> {
    let snap = t.engine.snapshot();
    let len = snap.rules.len();
    (len > 0).then(|| snap.rules.keys().nth(n % len).cloned().unwrap_or_default())
}

fn project(p: u8) -> AuthContext {
    if p == 0 {
        admin()
    } else {
        member(&format!("p{p}"))
    }
}

/// Runs one operation; refusals are part of the test (they must leave no trace).
async fn run(t: &TestEngine, op: Op) {
    let (e, ctx) = (&t.engine, admin());
    let one = |v: Value| vec![body(v)];
    let _ = match op {
        Op::Network {
            external,
            project: p,
        } => {
            let v = if external {
                json!({"router:external": true})
            } else {
                json!({})
            };
            Network::create(e, &project(p), one(v)).await.map(|_| ())
        }
        Op::Subnet { net, v6 } => {
            let Some(net) = pick::<Network>(t, net) else {
                return;
            };
            let n = t.engine.snapshot().subnets.len();
            let v = if v6 {
                json!({"network_id": net, "ip_version": 6, "cidr": format!("2001:db8:{n:x}::/64"),
                       "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"})
            } else {
                // /29s: small pools run out, so exhaustion is exercised too.
                json!({"network_id": net, "ip_version": 4, "cidr": format!("10.{n}.0.0/29")})
            };
            Subnet::create(e, &ctx, one(v)).await.map(|_| ())
        }
        Op::Port {
            net,
            host,
            group,
            project: p,
        } => {
            let Some(net) = pick::<Network>(t, net) else {
                return;
            };
            let mut v = json!({"network_id": net, "binding:host_id": format!("h{host}")});
            if let Some(g) = group.and_then(|g| pick::<SecurityGroup>(t, g)) {
                v["security_groups"] = json!([g]);
            }
            if p != 0 {
                v["project_id"] = json!(format!("p{p}"));
            }
            Port::create(e, &ctx, one(v)).await.map(|_| ())
        }
        Op::MovePort { port, host } => {
            let Some(id) = pick::<Port>(t, port) else {
                return;
            };
            let v = body(
                json!({"binding:host_id": if host == 0 { String::new() } else { format!("h{host}") }}),
            );
            Port::update(e, &ctx, id, v, None).await.map(|_| ())
        }
        Op::RegroupPort { port, group } => {
            let Some(id) = pick::<Port>(t, port) else {
                return;
            };
            let groups: Vec<String> = group
                .and_then(|g| pick::<SecurityGroup>(t, g))
                .into_iter()
                .collect();
            Port::update(e, &ctx, id, body(json!({"security_groups": groups})), None)
                .await
                .map(|_| ())
        }
        Op::ReaddressPort { port } => {
            let Some(id) = pick::<Port>(t, port) else {
                return;
            };
            let v = body(json!({"mac_address": null, "fixed_ips": []}));
            Port::update(e, &ctx, id, v, None).await.map(|_| ())
        }
        Op::DeletePort { port } => {
            let Some(id) = pick::<Port>(t, port) else {
                return;
            };
            Port::delete(e, &ctx, id, None).await
        }
        Op::DeleteSubnet { sub } => {
            let Some(id) = pick::<Subnet>(t, sub) else {
                return;
            };
            Subnet::delete(e, &ctx, id, None).await
        }
        Op::DeleteNetwork { net } => {
            let Some(id) = pick::<Network>(t, net) else {
                return;
            };
            Network::delete(e, &ctx, id, None).await
        }
        Op::Group { project: p } => {
            SecurityGroup::create(e, &project(p), one(json!({"name": "g"})))
                .await
                .map(|_| ())
        }
        Op::Rule {
            group,
            remote,
            port,
        } => {
            let Some(g) = pick::<SecurityGroup>(t, group) else {
                return;
            };
            let mut v = json!({"security_group_id": g, "direction": "ingress", "protocol": "tcp",
                               "port_range_min": port, "port_range_max": port});
            if let Some(r) = remote.and_then(|r| pick::<SecurityGroup>(t, r)) {
                v["remote_group_id"] = json!(r);
            }
            neutrino_model::SecurityGroupRule::create(e, &ctx, one(v))
                .await
                .map(|_| ())
        }
        Op::DeleteRule { rule } => {
            let Some(id) = pick_rule(t, rule) else { return };
            neutrino_model::SecurityGroupRule::delete(e, &ctx, id, None).await
        }
        Op::DeleteGroup { group } => {
            let Some(id) = pick::<SecurityGroup>(t, group) else {
                return;
            };
            SecurityGroup::delete(e, &ctx, id, None).await
        }
        Op::Router { gateway } => {
            let mut v = json!({});
            if let Some(n) = gateway.and_then(|n| pick::<Network>(t, n)) {
                v["external_gateway_info"] = json!({"network_id": n});
            }
            Router::create(e, &ctx, one(v)).await.map(|_| ())
        }
        Op::AddInterface { router, sub } | Op::RemoveInterface { router, sub } => {
            let (Some(r), Some(s)) = (pick::<Router>(t, router), pick::<Subnet>(t, sub)) else {
                return;
            };
            let v = json!({"subnet_id": s});
            if matches!(op, Op::AddInterface { .. }) {
                ops::routers::add_interface(e, &ctx, r, v).await.map(|_| ())
            } else {
                ops::routers::remove_interface(e, &ctx, r, v)
                    .await
                    .map(|_| ())
            }
        }
        Op::SetGateway { router, net } => {
            let Some(r) = pick::<Router>(t, router) else {
                return;
            };
            let gw = match net.and_then(|n| pick::<Network>(t, n)) {
                Some(n) => json!({"network_id": n}),
                None => Value::Null,
            };
            Router::update(e, &ctx, r, body(json!({"external_gateway_info": gw})), None)
                .await
                .map(|_| ())
        }
        Op::DeleteRouter { router } => {
            let Some(id) = pick::<Router>(t, router) else {
                return;
            };
            Router::delete(e, &ctx, id, None).await
        }
        Op::Fip { net, port } => {
            let Some(n) = pick::<Network>(t, net) else {
                return;
            };
            let mut v = json!({"floating_network_id": n});
            if let Some(p) = port.and_then(|p| pick::<Port>(t, p)) {
                v["port_id"] = json!(p);
            }
            FloatingIp::create(e, &ctx, one(v)).await.map(|_| ())
        }
        Op::MoveFip { fip, port } => {
            let Some(f) = pick::<FloatingIp>(t, fip) else {
                return;
            };
            let p = port.and_then(|p| pick::<Port>(t, p));
            FloatingIp::update(e, &ctx, f, body(json!({"port_id": p})), None)
                .await
                .map(|_| ())
        }
        Op::DeleteFip { fip } => {
            let Some(id) = pick::<FloatingIp>(t, fip) else {
                return;
            };
            FloatingIp::delete(e, &ctx, id, None).await
        }
        Op::Tag { net, tag } => {
            let Some(id) = pick::<Network>(t, net) else {
                return;
            };
            ops::tags::edit::<Network>(e, &ctx, id, move |cur| {
                cur.push(format!("t{tag}"));
                Ok(())
            })
            .await
            .map(|_| ())
        }
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn indexes_match_a_rebuild(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let t = TestEngine::start();
        rt.block_on(async {
            for op in ops {
                run(&t, op).await;
            }
            t.engine.flush().await.unwrap();
        });
        let live = t.engine.snapshot().index_digest();
        let rebuilt = t.rebuilt().index_digest();
        for (name, want) in &rebuilt {
            prop_assert_eq!(&live[name], want, "index {} differs from a rebuild", name);
        }
    }
}
