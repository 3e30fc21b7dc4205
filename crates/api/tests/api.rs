//! End-to-end behaviour of the Neutron API, in process: router → identity →
//! engine → SQLite store on a temp dir. Expectations follow the Neutron
//! reference (shared/research/neutron-api.md); every request also asserts
//! that no 5xx occurs and that every error has the NeutronError shape.

mod common;

use std::collections::BTreeSet;
use std::net::Ipv6Addr;

use axum::http::Method;
use common::{App, MAX_BODY, id, ips, names};
use serde_json::{Value, json};

fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

fn as_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

// ---------------------------------------------------------------- 1. filters

#[tokio::test]
async fn filters_match_attributes_with_or_and_and() {
    let app = App::new().await;
    let t = &app.alice;
    let a = app.network(t, json!({"name": "a"})).await;
    let b = app
        .network(t, json!({"name": "b", "admin_state_up": false}))
        .await;
    let c = app.network(t, json!({"name": "c"})).await;

    // Repeated key = OR.
    let got = set(app
        .list_ids(t, "/v2.0/networks?name=a&name=b", "networks")
        .await);
    assert_eq!(got, set([id(&a), id(&b)]));
    // Different keys = AND; booleans pass through the converter.
    let got = app
        .list_ids(
            t,
            "/v2.0/networks?name=a&name=b&admin_state_up=True",
            "networks",
        )
        .await;
    assert_eq!(got, [id(&a)]);
    let got = app
        .list_ids(t, "/v2.0/networks?admin_state_up=false", "networks")
        .await;
    assert_eq!(got, [id(&b)]);
    let got = set(app
        .list_ids(t, "/v2.0/networks?admin_state_up=1", "networks")
        .await);
    assert_eq!(got, set([id(&a), id(&c)]));
    // `id` repeated lists exactly those ids; other filterable attributes work.
    let got = set(app
        .list_ids(
            t,
            &format!("/v2.0/networks?id={}&id={}", id(&a), id(&c)),
            "networks",
        )
        .await);
    assert_eq!(got, set([id(&a), id(&c)]));
    let got = app
        .list_ids(
            t,
            "/v2.0/networks?status=ACTIVE&mtu=1450&shared=false",
            "networks",
        )
        .await;
    assert_eq!(got.len(), 3);
    let got = app.list_ids(t, "/v2.0/networks?mtu=1500", "networks").await;
    assert!(got.is_empty());
    let got = app
        .list_ids(
            t,
            &format!("/v2.0/networks?project_id={}", app.project_a),
            "networks",
        )
        .await;
    assert_eq!(got.len(), 3);
    let got = app
        .list_ids(t, "/v2.0/networks?name=nothing", "networks")
        .await;
    assert!(got.is_empty());

    // Unknown filter and unconvertible boolean → 400.
    let msg = app
        .get(t, "/v2.0/networks?colour=red")
        .await
        .expect_error(400, "HTTPBadRequest");
    assert!(msg.contains("colour"), "{msg}");
    app.get(t, "/v2.0/networks?admin_state_up=maybe")
        .await
        .expect_error(400, "InvalidInput");
    // Both project_id and tenant_id → 400.
    app.get(
        t,
        &format!("/v2.0/networks?project_id={0}&tenant_id={0}", app.project_a),
    )
    .await
    .expect(400);
}

#[tokio::test]
async fn ports_filter_by_fixed_ip_and_mac() {
    let app = App::new().await;
    let t = &app.alice;
    let (net, sub) = app.net_with_subnet(t, "n", "10.0.0.0/24").await;
    let p1 = app
        .port(
            t,
            &net,
            json!({"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.5"}]}),
        )
        .await;
    let p2 = app
        .port(
            t,
            &net,
            json!({"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.6"}]}),
        )
        .await;

    let got = app
        .list_ids(t, "/v2.0/ports?fixed_ips=ip_address%3D10.0.0.5", "ports")
        .await;
    assert_eq!(got, [id(&p1)]);
    let got = app
        .list_ids(t, "/v2.0/ports?fixed_ips=ip_address=10.0.0.6", "ports")
        .await;
    assert_eq!(got, [id(&p2)]);
    let got = set(app
        .list_ids(
            t,
            &format!("/v2.0/ports?fixed_ips=subnet_id={sub}"),
            "ports",
        )
        .await);
    assert_eq!(got, set([id(&p1), id(&p2)]));
    let got = app
        .list_ids(t, "/v2.0/ports?fixed_ips=ip_address=10.0.0.7", "ports")
        .await;
    assert!(got.is_empty());
    // network_id filter combined with another key is still an AND.
    let got = app
        .list_ids(
            t,
            &format!("/v2.0/ports?network_id={net}&fixed_ips=ip_address=10.0.0.5"),
            "ports",
        )
        .await;
    assert_eq!(got, [id(&p1)]);
    // MACs compare case-insensitively.
    let mac = p2["mac_address"].as_str().unwrap().to_ascii_uppercase();
    let got = app
        .list_ids(t, &format!("/v2.0/ports?mac_address={mac}"), "ports")
        .await;
    assert_eq!(got, [id(&p2)]);
}

#[tokio::test]
async fn tag_filters() {
    let app = App::new().await;
    let t = &app.alice;
    let mut ids = Vec::new();
    for (name, tags) in [
        ("x", vec!["red", "blue"]),
        ("y", vec!["red"]),
        ("z", vec!["green"]),
        ("w", vec![]),
    ] {
        let n = app.network(t, json!({"name": name})).await;
        app.put(
            t,
            &format!("/v2.0/networks/{}/tags", id(&n)),
            json!({"tags": tags}),
        )
        .await
        .expect(200);
        ids.push(id(&n));
    }
    let (x, y, z, w) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let q = |s: &str| format!("/v2.0/networks?{s}");
    assert_eq!(
        set(app.list_ids(t, &q("tags=red"), "networks").await),
        set([x, y])
    );
    assert_eq!(
        set(app.list_ids(t, &q("tags=red,blue"), "networks").await),
        set([x])
    );
    assert_eq!(
        set(app.list_ids(t, &q("tags=red&tags=blue"), "networks").await),
        set([x])
    );
    assert_eq!(
        set(app.list_ids(t, &q("tags-any=blue,green"), "networks").await),
        set([x, z])
    );
    assert_eq!(
        set(app.list_ids(t, &q("not-tags=red,blue"), "networks").await),
        set([y, z, w])
    );
    assert_eq!(
        set(app
            .list_ids(t, &q("not-tags-any=red,green"), "networks")
            .await),
        set([w])
    );
    assert_eq!(
        set(app
            .list_ids(t, &q("tags=red&not-tags=blue"), "networks")
            .await),
        set([y])
    );
}

// ------------------------------------------------- 2. fields, sort, paging

#[tokio::test]
async fn fields_select_exact_keys() {
    let app = App::new().await;
    let t = &app.alice;
    let n = app.network(t, json!({"name": "f"})).await;
    let r = app
        .get(t, "/v2.0/networks?fields=id&fields=name&fields=")
        .await;
    for item in r.expect(200)["networks"].as_array().unwrap() {
        let keys: BTreeSet<String> = item.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, set(["id", "name"]));
    }
    // project_id alone does not bring tenant_id; unknown names are ignored.
    let r = app
        .get(
            t,
            &format!("/v2.0/networks/{}?fields=project_id&fields=bogus", id(&n)),
        )
        .await;
    let keys: BTreeSet<String> = r.expect(200)["network"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, set(["project_id"]));
}

#[tokio::test]
async fn sorting_and_its_validation() {
    let app = App::new().await;
    let t = &app.alice;
    for name in ["m", "c", "x", "a"] {
        app.network(t, json!({"name": name})).await;
    }
    let r = app
        .get(t, "/v2.0/networks?sort_key=name&sort_dir=asc")
        .await;
    assert_eq!(names(&r.expect(200)["networks"]), ["a", "c", "m", "x"]);
    let r = app
        .get(t, "/v2.0/networks?sort_key=name&sort_dir=desc")
        .await;
    assert_eq!(names(&r.expect(200)["networks"]), ["x", "m", "c", "a"]);
    // Two keys: admin_state_up first.
    let all = app.list_ids(t, "/v2.0/networks?name=c", "networks").await;
    app.put(
        t,
        &format!("/v2.0/networks/{}", all[0]),
        json!({"network": {"admin_state_up": false}}),
    )
    .await
    .expect(200);
    let r = app
        .get(
            t,
            "/v2.0/networks?sort_key=admin_state_up&sort_dir=asc&sort_key=name&sort_dir=desc",
        )
        .await;
    assert_eq!(names(&r.expect(200)["networks"]), ["c", "x", "m", "a"]);

    let msg = app
        .get(t, "/v2.0/networks?sort_key=name")
        .await
        .expect_error(400, "HTTPBadRequest");
    assert!(msg.contains("sort_keys and sort_dirs"), "{msg}");
    app.get(t, "/v2.0/networks?sort_key=name&sort_dir=asc&sort_dir=desc")
        .await
        .expect_error(400, "HTTPBadRequest");
    let msg = app
        .get(t, "/v2.0/networks?sort_key=bogus&sort_dir=asc")
        .await
        .expect_error(400, "HTTPBadRequest");
    assert!(msg.contains("bogus"), "{msg}");
    app.get(t, "/v2.0/networks?sort_key=name&sort_dir=up")
        .await
        .expect_error(400, "HTTPBadRequest");
}

/// Splits an absolute link into the path+query the router sees.
fn local(href: &str, host: &str) -> String {
    let prefix = format!("http://{host}");
    assert!(
        href.starts_with(&prefix),
        "link {href} does not use the request's host {host}"
    );
    href[prefix.len()..].to_string()
}

fn link(body: &Value, rel: &str) -> Option<String> {
    body["networks_links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == rel)
        .map(|l| l["href"].as_str().expect("href").to_string())
}

#[tokio::test]
async fn pagination_pages_through_everything_once() {
    let app = App::new().await;
    let t = &app.alice;
    let mut expected = Vec::new();
    for i in 0..7 {
        expected.push(app.network(t, json!({"name": format!("n{i}")})).await);
    }
    let host = "neutrino.test:9696";
    let get = |path: String| {
        let app = &app;
        async move {
            app.send(
                Method::GET,
                &path,
                Some(&app.alice),
                None,
                &[("host", host)],
            )
            .await
        }
    };

    let mut seen = Vec::new();
    let mut path = "/v2.0/networks?limit=3&sort_key=name&sort_dir=asc".to_string();
    let mut pages = 0;
    let mut last_body;
    loop {
        let r = get(path.clone()).await;
        let body = r.expect(200).clone();
        pages += 1;
        let items = body["networks"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .map(|n| n["name"].as_str().unwrap().to_string()),
        );
        assert!(
            body.get("networks_links").is_some(),
            "paged lists carry networks_links"
        );
        if pages > 1 {
            let prev = link(&body, "previous").expect("later pages link to the previous one");
            let prev = local(&prev, host);
            assert!(prev.contains("page_reverse=True"), "{prev}");
            assert!(
                prev.contains(&format!("marker={}", items[0]["id"].as_str().unwrap())),
                "{prev}"
            );
        }
        last_body = body.clone();
        match link(&body, "next") {
            Some(next) => {
                let next = local(&next, host);
                assert!(next.starts_with("/v2.0/networks?"), "{next}");
                assert!(
                    next.contains("limit=3") && next.contains("sort_key=name"),
                    "{next}"
                );
                assert!(
                    next.contains(&format!(
                        "marker={}",
                        items.last().unwrap()["id"].as_str().unwrap()
                    )),
                    "{next}"
                );
                path = next;
            }
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("n{i}")).collect::<Vec<_>>());
    assert_eq!(
        last_body["networks"].as_array().unwrap().len(),
        1,
        "last page holds the remainder and no next link"
    );

    // Following `previous` from the last page gives the page before it.
    let prev = local(&link(&last_body, "previous").unwrap(), host);
    let r = get(prev).await;
    assert_eq!(names(&r.expect(200)["networks"]), ["n3", "n4", "n5"]);

    // A marker at the end gives an empty page, not an error.
    let last_id = id(&expected[6]);
    let r = get(format!(
        "/v2.0/networks?limit=3&sort_key=name&sort_dir=asc&marker={last_id}"
    ))
    .await;
    assert_eq!(r.expect(200)["networks"], json!([]));
    assert!(link(&r.body, "next").is_none());

    // Unsorted paging (id order) also visits everything exactly once.
    let mut ids = Vec::new();
    let mut path = "/v2.0/networks?limit=2".to_string();
    for _ in 0..10 {
        let r = get(path.clone()).await;
        let body = r.expect(200).clone();
        ids.extend(body["networks"].as_array().unwrap().iter().map(id));
        match link(&body, "next") {
            Some(n) => path = local(&n, host),
            None => break,
        }
    }
    let mut want: Vec<String> = expected.iter().map(id).collect();
    want.sort();
    assert_eq!(ids, want);

    // A huge limit is just "everything"; a negative or non-integer one is 400.
    let r = get("/v2.0/networks?limit=1000000000000".into()).await;
    assert_eq!(r.expect(200)["networks"].as_array().unwrap().len(), 7);
    assert!(link(&r.body, "next").is_none());
    let msg = get("/v2.0/networks?limit=-1".into())
        .await
        .expect_error(400, "HTTPBadRequest");
    assert!(
        msg.contains("Limit must be an integer 0 or greater"),
        "{msg}"
    );
    get("/v2.0/networks?limit=abc".into())
        .await
        .expect_error(400, "HTTPBadRequest");
    // limit=0 means no limit.
    let r = get("/v2.0/networks?limit=0".into()).await;
    assert_eq!(r.expect(200)["networks"].as_array().unwrap().len(), 7);
}

// ------------------------------------------------------------ 3. bulk create

#[tokio::test]
async fn bulk_create_networks_in_order() {
    let app = App::new().await;
    let t = &app.alice;
    let body = json!({"networks": [{"name": "b0"}, {"network": {"name": "b1"}}, {"name": "b2", "admin_state_up": false}]});
    let r = app.post(t, "/v2.0/networks", body).await;
    let created = r.expect(201)["networks"].clone();
    assert_eq!(names(&created), ["b0", "b1", "b2"]);
    assert_eq!(created[2]["admin_state_up"], false);
    for n in created.as_array().unwrap() {
        app.get(t, &format!("/v2.0/networks/{}", id(n)))
            .await
            .expect(200);
    }
    // An empty bulk is 400.
    app.post(t, "/v2.0/networks", json!({"networks": []}))
        .await
        .expect_error(400, "HTTPBadRequest");
    // A failing bulk creates nothing.
    let before = app.list_ids(t, "/v2.0/networks", "networks").await.len();
    app.post(
        t,
        "/v2.0/networks",
        json!({"networks": [{"name": "ok"}, {"name": 5}]}),
    )
    .await
    .expect(400);
    assert_eq!(
        app.list_ids(t, "/v2.0/networks", "networks").await.len(),
        before
    );
}

#[tokio::test]
async fn bulk_port_create_is_all_or_nothing() {
    let app = App::new().await;
    let t = &app.alice;
    let (net, sub) = app.net_with_subnet(t, "n", "10.0.0.0/24").await;
    let _taken = app
        .port(
            t,
            &net,
            json!({"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.30"}]}),
        )
        .await;
    let count = || async { app.list_ids(t, "/v2.0/ports", "ports").await.len() };
    let before = count().await;
    let item =
        |ip: &str| json!({"network_id": net, "fixed_ips": [{"subnet_id": sub, "ip_address": ip}]});

    // Each bulk fails on its last item, after two good ones: nothing is created.
    let mut bad_attr = item("10.0.0.22");
    bad_attr["foo"] = json!(1);
    let taken = item("10.0.0.30"); // held by another port
    let missing = json!({"network_id": "6a1f4b8e-0000-4000-8000-000000000000"}); // fails inside the write
    for (last, status, error_type) in [
        (bad_attr, 400, "HTTPBadRequest"),
        (taken, 409, "IpAddressAlreadyAllocated"),
        (missing, 404, "NetworkNotFound"),
    ] {
        let r = app
            .post(
                t,
                "/v2.0/ports",
                json!({"ports": [item("10.0.0.20"), item("10.0.0.21"), last]}),
            )
            .await;
        r.expect_error(status, error_type);
        assert_eq!(count().await, before, "{error_type}: nothing created");
    }

    // The earlier items' addresses were never kept: single ports can take them.
    let p = app
        .port(
            t,
            &net,
            json!({"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.20"}]}),
        )
        .await;
    assert_eq!(ips(&p), ["10.0.0.20"]);
    let p = app
        .port(
            t,
            &net,
            json!({"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.21"}]}),
        )
        .await;
    assert_eq!(ips(&p), ["10.0.0.21"]);

    // A good bulk returns ports in order with their addresses.
    let r = app
        .post(
            t,
            "/v2.0/ports",
            json!({"ports": [item("10.0.0.40"), item("10.0.0.41")]}),
        )
        .await;
    let created = r.expect(201)["ports"].as_array().unwrap().clone();
    assert_eq!(
        created
            .iter()
            .map(|p| ips(p)[0].clone())
            .collect::<Vec<_>>(),
        ["10.0.0.40", "10.0.0.41"]
    );
    assert_eq!(count().await, before + 4);
    let _ = taken;
}

// -------------------------------------------------------------- 4. If-Match

#[tokio::test]
async fn if_match_revision_constraints() {
    let app = App::new().await;
    let t = &app.alice;
    let n = app.network(t, json!({"name": "r"})).await;
    let nid = id(&n);
    let path = format!("/v2.0/networks/{nid}");
    let rev0 = n["revision_number"].as_u64().expect("revision_number");
    let put = |rev: u64, name: &str| {
        let (app, path) = (&app, path.clone());
        let body = json!({"network": {"name": name}}).to_string().into_bytes();
        async move {
            let h = format!("revision_number={rev}");
            app.send(
                Method::PUT,
                &path,
                Some(&app.alice),
                Some(body),
                &[("if-match", h.as_str())],
            )
            .await
        }
    };

    let r = put(rev0, "r1").await;
    let rev1 = r.expect(200)["network"]["revision_number"]
        .as_u64()
        .unwrap();
    assert_eq!(rev1, rev0 + 1, "an update bumps the revision");
    let msg = put(rev0, "stale")
        .await
        .expect_error(412, "RevisionNumberConstraintFailed");
    assert!(
        msg.contains(&format!("Constrained to {rev0}")) && msg.contains(&rev1.to_string()),
        "{msg}"
    );
    assert_eq!(
        app.get(t, &path).await.expect(200)["network"]["name"],
        "r1",
        "a failed constraint changes nothing"
    );

    // Tag changes bump the revision too.
    app.put(t, &format!("{path}/tags"), json!({"tags": ["a"]}))
        .await
        .expect(200);
    let rev2 = app.get(t, &path).await.expect(200)["network"]["revision_number"]
        .as_u64()
        .unwrap();
    assert!(rev2 > rev1, "tags bump the revision ({rev1} → {rev2})");
    app.send(Method::PUT, &format!("{path}/tags/b"), Some(t), None, &[])
        .await
        .expect(201);
    let rev3 = app.get(t, &path).await.expect(200)["network"]["revision_number"]
        .as_u64()
        .unwrap();
    assert!(rev3 > rev2);

    // Quoted etags are accepted; malformed ones are 400.
    let h = format!("\"revision_number={rev3}\"");
    let body = json!({"network": {"name": "r2"}}).to_string().into_bytes();
    let r = app
        .send(
            Method::PUT,
            &path,
            Some(t),
            Some(body.clone()),
            &[("if-match", h.as_str())],
        )
        .await;
    let rev4 = r.expect(200)["network"]["revision_number"]
        .as_u64()
        .unwrap();
    app.send(
        Method::PUT,
        &path,
        Some(t),
        Some(body),
        &[("if-match", "revision_number=abc")],
    )
    .await
    .expect(400);

    // DELETE: mismatch → 412 (still there), match → 204.
    let stale = format!("revision_number={rev0}");
    app.send(
        Method::DELETE,
        &path,
        Some(t),
        None,
        &[("if-match", stale.as_str())],
    )
    .await
    .expect_error(412, "RevisionNumberConstraintFailed");
    app.get(t, &path).await.expect(200);
    let ok = format!("revision_number={rev4}");
    let r = app
        .send(
            Method::DELETE,
            &path,
            Some(t),
            None,
            &[("if-match", ok.as_str())],
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(r.raw.is_empty(), "204 has no body");
    app.get(t, &path).await.expect_error(404, "NetworkNotFound");
}

// ------------------------------------------------------------------ 5. tags

#[tokio::test]
async fn tags_api() {
    let app = App::new().await;
    let t = &app.alice;
    let n = app.network(t, json!({"name": "tagged"})).await;
    assert_eq!(n["tags"], json!([]));
    let base = format!("/v2.0/networks/{}", id(&n));
    let tags = format!("{base}/tags");

    let r = app.put(t, &tags, json!({"tags": ["a", "b"]})).await;
    assert_eq!(as_set(&r.expect(200)["tags"]), set(["a", "b"]));
    assert_eq!(
        as_set(&app.get(t, &tags).await.expect(200)["tags"]),
        set(["a", "b"])
    );
    assert_eq!(app.get(t, &format!("{tags}/a")).await.status, 204);
    let msg = app
        .get(t, &format!("{tags}/zzz"))
        .await
        .expect_error(404, "TagNotFound");
    assert!(msg.contains("zzz"), "{msg}");

    let r = app
        .send(Method::PUT, &format!("{tags}/c"), Some(t), None, &[])
        .await;
    assert_eq!(r.status, 201);
    // PUT of one tag is idempotent.
    assert_eq!(
        app.send(Method::PUT, &format!("{tags}/c"), Some(t), None, &[])
            .await
            .status,
        201
    );
    let r = app.post(t, &tags, json!({"tags": ["d", "a"]})).await;
    assert_eq!(as_set(&r.expect(200)["tags"]), set(["a", "b", "c", "d"]));
    assert_eq!(
        as_set(&app.get(t, &base).await.expect(200)["network"]["tags"]),
        set(["a", "b", "c", "d"])
    );

    assert_eq!(app.delete(t, &format!("{tags}/b")).await.status, 204);
    app.delete(t, &format!("{tags}/b"))
        .await
        .expect_error(404, "TagNotFound");
    assert_eq!(
        as_set(&app.get(t, &tags).await.expect(200)["tags"]),
        set(["a", "c", "d"])
    );

    // Replace-all.
    let r = app.put(t, &tags, json!({"tags": ["x"]})).await;
    assert_eq!(as_set(&r.expect(200)["tags"]), set(["x"]));
    assert_eq!(
        as_set(&app.get(t, &base).await.expect(200)["network"]["tags"]),
        set(["x"])
    );

    // Delete all.
    assert_eq!(app.delete(t, &tags).await.status, 204);
    assert_eq!(
        app.get(t, &base).await.expect(200)["network"]["tags"],
        json!([])
    );

    // Other taggable collections, and a missing resource.
    let sg = app
        .post(
            t,
            "/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await
        .expect(201)["security_group"]
        .clone();
    let r = app
        .put(
            t,
            &format!("/v2.0/security-groups/{}/tags", id(&sg)),
            json!({"tags": ["s"]}),
        )
        .await;
    assert_eq!(as_set(&r.expect(200)["tags"]), set(["s"]));
    let missing = "/v2.0/networks/6a1f4b8e-0000-4000-8000-000000000000/tags";
    assert_eq!(app.get(t, missing).await.status, 404);
    assert_eq!(
        app.put(t, missing, json!({"tags": ["a"]})).await.status,
        404
    );
    // Bad bodies.
    app.put(t, &tags, json!({"tags": "a"})).await.expect(400);
    app.put(t, &tags, json!({"tags": [1]})).await.expect(400);
    app.put(t, &tags, json!({"tags": ["x".repeat(256)]}))
        .await
        .expect(400);
    // Another project's network is invisible.
    app.put(&app.bob, &tags, json!({"tags": ["evil"]}))
        .await
        .expect(404);
}

// ---------------------------------------------------------------- 6. quotas

#[tokio::test]
async fn quotas_show_enforce_and_reset() {
    let app = App::new().await;
    let (a, alice, admin) = (&app.project_a, &app.alice, &app.admin);
    let q = app
        .get(alice, &format!("/v2.0/quotas/{a}"))
        .await
        .expect(200)["quota"]
        .clone();
    for (k, v) in [
        ("network", 100),
        ("subnet", 100),
        ("port", 500),
        ("security_group", 10),
        ("security_group_rule", 100),
    ] {
        assert_eq!(q[k], v, "default {k} quota: {q}");
    }
    assert_eq!(q["project_id"], a.as_str());
    let d = app
        .get(alice, &format!("/v2.0/quotas/{a}/default"))
        .await
        .expect(200)["quota"]
        .clone();
    assert_eq!(d["network"], 100);

    app.network(alice, json!({"name": "q1"})).await;
    app.network(alice, json!({"name": "q2"})).await;
    let det = app
        .get(alice, &format!("/v2.0/quotas/{a}/details"))
        .await
        .expect(200)["quota"]
        .clone();
    assert_eq!(
        det["network"],
        json!({"limit": 100, "used": 2, "reserved": 0})
    );
    assert_eq!(det["subnet"]["used"], 0);
    assert_eq!(
        det["security_group"]["used"], 1,
        "the default group counts: {det}"
    );
    assert_eq!(
        det["security_group_rule"]["used"], 4,
        "its four rules count: {det}"
    );
    let det_json = app
        .get(alice, &format!("/v2.0/quotas/{a}/details.json"))
        .await
        .expect(200)["quota"]
        .clone();
    assert_eq!(det_json, det);

    // Other projects' quotas are for admins only.
    app.get(&app.bob, &format!("/v2.0/quotas/{a}"))
        .await
        .expect_error(403, "PolicyNotAuthorized");
    app.get(admin, &format!("/v2.0/quotas/{a}"))
        .await
        .expect(200);

    // Members may not change quotas.
    app.put(
        alice,
        &format!("/v2.0/quotas/{a}"),
        json!({"quota": {"network": 50}}),
    )
    .await
    .expect_error(403, "PolicyNotAuthorized");

    // Lowering below usage needs force.
    app.put(
        admin,
        &format!("/v2.0/quotas/{a}"),
        json!({"quota": {"network": 1}}),
    )
    .await
    .expect(400);
    app.put(
        admin,
        &format!("/v2.0/quotas/{a}"),
        json!({"quota": {"bogus": 1}}),
    )
    .await
    .expect(400);

    let r = app
        .put(
            admin,
            &format!("/v2.0/quotas/{a}"),
            json!({"quota": {"network": 3}}),
        )
        .await;
    assert_eq!(r.expect(200)["quota"]["network"], 3);
    assert_eq!(
        app.get(alice, &format!("/v2.0/quotas/{a}"))
            .await
            .expect(200)["quota"]["network"],
        3
    );
    let listed = app.get(admin, "/v2.0/quotas").await.expect(200)["quotas"].clone();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["project_id"] == a.as_str() && q["network"] == 3),
        "{listed}"
    );

    // A bulk that would exceed creates nothing.
    let msg = app
        .post(
            alice,
            "/v2.0/networks",
            json!({"networks": [{"name": "b1"}, {"name": "b2"}]}),
        )
        .await
        .expect_error(409, "OverQuota");
    assert!(msg.contains("network"), "{msg}");
    assert_eq!(
        app.list_ids(alice, "/v2.0/networks", "networks")
            .await
            .len(),
        2
    );
    app.network(alice, json!({"name": "q3"})).await;
    app.post(alice, "/v2.0/networks", json!({"network": {"name": "q4"}}))
        .await
        .expect_error(409, "OverQuota");
    // Other projects are unaffected.
    app.network(&app.bob, json!({"name": "bobs"})).await;

    // DELETE resets to the defaults.
    app.delete(alice, &format!("/v2.0/quotas/{a}"))
        .await
        .expect_error(403, "PolicyNotAuthorized");
    assert_eq!(
        app.delete(admin, &format!("/v2.0/quotas/{a}")).await.status,
        204
    );
    assert_eq!(
        app.get(alice, &format!("/v2.0/quotas/{a}"))
            .await
            .expect(200)["quota"]["network"],
        100
    );
    app.network(alice, json!({"name": "q4"})).await;
}

// ------------------------------------------------- 7. default security group

#[tokio::test]
async fn default_security_group_is_created_once_with_four_rules() {
    let app = App::new().await;
    let t = &app.alice;
    let r = app.get(t, "/v2.0/security-groups").await;
    let groups = r.expect(200)["security_groups"].as_array().unwrap().clone();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let g = &groups[0];
    let gid = id(g);
    assert_eq!(g["name"], "default");
    assert_eq!(g["description"], "Default security group");
    assert_eq!(g["project_id"], app.project_a.as_str());
    let rules = g["security_group_rules"].as_array().unwrap();
    let got: BTreeSet<(String, String, Option<String>)> = rules
        .iter()
        .map(|r| {
            assert_eq!(r["protocol"], Value::Null);
            assert_eq!(r["remote_ip_prefix"], Value::Null);
            assert_eq!(r["port_range_min"], Value::Null);
            let remote = r["remote_group_id"].as_str().map(str::to_string);
            (
                r["direction"].as_str().unwrap().into(),
                r["ethertype"].as_str().unwrap().into(),
                remote,
            )
        })
        .collect();
    let want: BTreeSet<(String, String, Option<String>)> = [
        ("egress".to_string(), "IPv4".to_string(), None),
        ("egress".into(), "IPv6".into(), None),
        ("ingress".into(), "IPv4".into(), Some(gid.clone())),
        ("ingress".into(), "IPv6".into(), Some(gid.clone())),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    let rule_ids = app
        .list_ids(
            t,
            &format!("/v2.0/security-group-rules?security_group_id={gid}"),
            "security_group_rules",
        )
        .await;
    assert_eq!(rule_ids.len(), 4);

    // Looking again (and creating a network) does not make another one.
    assert_eq!(
        app.list_ids(t, "/v2.0/security-groups", "security_groups")
            .await,
        vec![gid.clone()]
    );
    let (net, _) = app.net_with_subnet(t, "n", "10.0.0.0/24").await;
    assert_eq!(
        app.list_ids(t, "/v2.0/security-groups?name=default", "security_groups")
            .await,
        vec![gid.clone()]
    );
    // Bob does not see it.
    assert!(
        !app.list_ids(&app.bob, "/v2.0/security-groups", "security_groups")
            .await
            .contains(&gid)
    );
    app.get(&app.bob, &format!("/v2.0/security-groups/{gid}"))
        .await
        .expect(404);

    // A port without security_groups gets the default group.
    let p = app.port(t, &net, json!({})).await;
    assert_eq!(p["security_groups"], json!([gid]));

    // Duplicate rules.
    let rule = |extra: Value| {
        let mut b = json!({"security_group_id": gid, "direction": "egress", "ethertype": "IPv4"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"security_group_rule": b})
    };
    let msg = app
        .post(t, "/v2.0/security-group-rules", rule(json!({})))
        .await
        .expect_error(409, "SecurityGroupRuleExists");
    assert!(msg.contains("Security group rule already exists"), "{msg}");
    // 0.0.0.0/0 equals "no prefix".
    app.post(
        t,
        "/v2.0/security-group-rules",
        rule(json!({"remote_ip_prefix": "0.0.0.0/0"})),
    )
    .await
    .expect_error(409, "SecurityGroupRuleExists");
    // A protocol name equals its number.
    let ssh = json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22});
    app.post(t, "/v2.0/security-group-rules", rule(ssh))
        .await
        .expect(201);
    let ssh6 = json!({"direction": "ingress", "protocol": "6", "port_range_min": 22, "port_range_max": 22});
    app.post(t, "/v2.0/security-group-rules", rule(ssh6))
        .await
        .expect_error(409, "SecurityGroupRuleExists");
    // Duplicates inside one bulk POST.
    let icmp = json!({"security_group_id": gid, "direction": "ingress", "protocol": "icmp"});
    app.post(
        t,
        "/v2.0/security-group-rules",
        json!({"security_group_rules": [icmp, icmp]}),
    )
    .await
    .expect_error(409, "DuplicateSecurityGroupRuleInPost");
    let n_rules = app
        .list_ids(
            t,
            &format!("/v2.0/security-group-rules?security_group_id={gid}"),
            "security_group_rules",
        )
        .await
        .len();
    assert_eq!(n_rules, 5);

    // "default" is reserved (case-insensitively).
    for name in ["default", "Default"] {
        app.post(
            t,
            "/v2.0/security-groups",
            json!({"security_group": {"name": name}}),
        )
        .await
        .expect_error(409, "SecurityGroupDefaultAlreadyExists");
    }
    // The default group cannot be renamed or deleted by its project.
    app.put(
        t,
        &format!("/v2.0/security-groups/{gid}"),
        json!({"security_group": {"name": "other"}}),
    )
    .await
    .expect_error(409, "SecurityGroupCannotUpdateDefault");
    app.delete(t, &format!("/v2.0/security-groups/{gid}"))
        .await
        .expect(409);

    // A new group gets only the two egress rules; in use → 409 on delete.
    let web = app
        .post(
            t,
            "/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await
        .expect(201)["security_group"]
        .clone();
    let wid = id(&web);
    let dirs: Vec<&str> = web["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["direction"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["egress", "egress"]);
    let p2 = app.port(t, &net, json!({"security_groups": [wid]})).await;
    assert_eq!(p2["security_groups"], json!([wid]));
    app.delete(t, &format!("/v2.0/security-groups/{wid}"))
        .await
        .expect_error(409, "SecurityGroupInUse");
    assert_eq!(
        app.delete(t, &format!("/v2.0/ports/{}", id(&p2)))
            .await
            .status,
        204
    );
    assert_eq!(
        app.delete(t, &format!("/v2.0/security-groups/{wid}"))
            .await
            .status,
        204
    );
    // Its rules went with it.
    let left = app
        .list_ids(
            t,
            &format!("/v2.0/security-group-rules?security_group_id={wid}"),
            "security_group_rules",
        )
        .await;
    assert!(left.is_empty());
}

// ------------------------------------------------------------- 8. isolation

#[tokio::test]
async fn project_isolation_and_visibility() {
    let app = App::new().await;
    let (alice, bob, admin) = (&app.alice, &app.bob, &app.admin);
    let mine = app.network(alice, json!({"name": "alices"})).await;
    let (bobs, _) = app.net_with_subnet(bob, "bobs", "10.1.0.0/24").await;
    let bob_path = format!("/v2.0/networks/{bobs}");

    app.get(alice, &bob_path).await.expect(404);
    app.put(alice, &bob_path, json!({"network": {"name": "mine now"}}))
        .await
        .expect(404);
    app.delete(alice, &bob_path).await.expect(404);
    app.post(alice, "/v2.0/ports", json!({"port": {"network_id": bobs}}))
        .await
        .expect_error(404, "NetworkNotFound");
    app.post(
        alice,
        "/v2.0/subnets",
        json!({"subnet": {"network_id": bobs, "cidr": "10.2.0.0/24", "ip_version": 4}}),
    )
    .await
    .expect(404);
    assert_eq!(
        app.get(bob, &bob_path).await.expect(200)["network"]["name"],
        "bobs",
        "bob's network is untouched"
    );

    // An admin-made shared network is visible and usable.
    let shared = app
        .network(admin, json!({"name": "public-ish", "shared": true}))
        .await;
    let sid = id(&shared);
    app.subnet(admin, &sid, "192.168.50.0/24", json!({})).await;
    let got = app.get(alice, &format!("/v2.0/networks/{sid}")).await;
    assert_eq!(got.expect(200)["network"]["shared"], true);
    let p = app.port(alice, &sid, json!({})).await;
    assert_eq!(p["project_id"], app.project_a.as_str());
    assert_eq!(ips(&p).len(), 1);
    // Members may not make networks shared.
    app.post(
        alice,
        "/v2.0/networks",
        json!({"network": {"name": "s", "shared": true}}),
    )
    .await
    .expect_error(403, "PolicyNotAuthorized");
    // Nor pick addresses on someone else's shared network.
    app.post(
        alice,
        "/v2.0/ports",
        json!({"port": {"network_id": sid, "fixed_ips": [{"ip_address": "192.168.50.77"}]}}),
    )
    .await
    .expect(403);

    // Alice's list: A's networks plus shared ones.
    let listed = set(app.list_ids(alice, "/v2.0/networks", "networks").await);
    assert_eq!(listed, set([id(&mine), sid.clone()]));
    let subnets = app.get(alice, "/v2.0/subnets").await.expect(200)["subnets"].clone();
    assert!(
        subnets
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["network_id"] == sid.as_str()),
        "{subnets}"
    );
    // Admin sees everything.
    let all = set(app.list_ids(admin, "/v2.0/networks", "networks").await);
    assert!(all.is_superset(&set([id(&mine), sid.clone(), bobs.clone()])));
    let all_ports = app.list_ids(admin, "/v2.0/ports", "ports").await;
    assert!(all_ports.contains(&id(&p)));
    assert!(
        !app.list_ids(bob, "/v2.0/ports", "ports")
            .await
            .contains(&id(&p))
    );

    // Admin-only attributes are removed, not nulled, for members.
    let n = app
        .get(alice, &format!("/v2.0/networks/{}", id(&mine)))
        .await
        .expect(200)["network"]
        .clone();
    assert!(
        n.as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("provider:")),
        "{n}"
    );
    let n = app
        .get(admin, &format!("/v2.0/networks/{}", id(&mine)))
        .await
        .expect(200)["network"]
        .clone();
    assert_eq!(n["provider:network_type"], "vxlan");
    assert!(n["provider:segmentation_id"].is_u64());
    let listed = app.get(alice, "/v2.0/networks").await.expect(200)["networks"].clone();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.get("provider:network_type").is_none())
    );
    let pp = app
        .get(alice, &format!("/v2.0/ports/{}", id(&p)))
        .await
        .expect(200)["port"]
        .clone();
    assert!(
        pp.get("binding:host_id").is_none() && pp.get("binding:profile").is_none(),
        "{pp}"
    );
    assert_eq!(pp["binding:vnic_type"], "normal");
    let pp = app
        .get(admin, &format!("/v2.0/ports/{}", id(&p)))
        .await
        .expect(200)["port"]
        .clone();
    assert_eq!(pp["binding:host_id"], "");
    // Members may not set binding:host_id.
    app.post(
        alice,
        "/v2.0/ports",
        json!({"port": {"network_id": id(&mine), "binding:host_id": "h1"}}),
    )
    .await
    .expect(403);

    // Readers read, but never write.
    let rita = &app.rita;
    assert!(
        app.list_ids(rita, "/v2.0/networks", "networks")
            .await
            .contains(&id(&mine))
    );
    app.post(rita, "/v2.0/networks", json!({"network": {"name": "nope"}}))
        .await
        .expect_error(403, "PolicyNotAuthorized");
    app.put(
        rita,
        &format!("/v2.0/networks/{}", id(&mine)),
        json!({"network": {"name": "nope"}}),
    )
    .await
    .expect(403);
    app.delete(rita, &format!("/v2.0/networks/{}", id(&mine)))
        .await
        .expect(403);
    // A member may not create in another project.
    let msg = app
        .post(
            alice,
            "/v2.0/networks",
            json!({"network": {"name": "x", "project_id": app.project_b}}),
        )
        .await
        .expect_error(400, "HTTPBadRequest");
    assert!(msg.contains("project_id"), "{msg}");
    // The admin may.
    let n = app
        .network(admin, json!({"name": "for-b", "project_id": app.project_b}))
        .await;
    assert_eq!(n["tenant_id"], app.project_b.as_str());
    assert!(
        app.list_ids(bob, "/v2.0/networks", "networks")
            .await
            .contains(&id(&n))
    );
    // No token → 401.
    let r = app
        .send(Method::GET, "/v2.0/networks", None, None, &[])
        .await;
    r.expect_error(401, "HTTPUnauthorized");
}

// ------------------------------------------------------------------ 9. IPAM

/// EUI-64 address of `mac` on a /64 whose first 64 bits are `prefix`.
fn eui64(prefix: [u16; 4], mac: &str) -> String {
    let m: Vec<u16> = mac
        .split(':')
        .map(|x| u16::from_str_radix(x, 16).unwrap())
        .collect();
    let a = Ipv6Addr::new(
        prefix[0],
        prefix[1],
        prefix[2],
        prefix[3],
        ((m[0] ^ 0x02) << 8) | m[1],
        (m[2] << 8) | 0xff,
        (0xfe << 8) | m[3],
        (m[4] << 8) | m[5],
    );
    a.to_string()
}

#[tokio::test]
async fn subnet_gateway_and_pool_defaults() {
    let app = App::new().await;
    let t = &app.alice;
    let n1 = id(&app.network(t, json!({"name": "n1"})).await);
    let s = app.subnet(t, &n1, "10.0.0.0/24", json!({})).await;
    assert_eq!(s["gateway_ip"], "10.0.0.1");
    assert_eq!(
        s["allocation_pools"],
        json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
    );
    assert_eq!(s["enable_dhcp"], true);
    assert_eq!(s["ip_version"], 4);
    let got = app
        .get(t, &format!("/v2.0/networks/{n1}"))
        .await
        .expect(200)["network"]["subnets"]
        .clone();
    assert_eq!(got, json!([id(&s)]));

    let n2 = id(&app.network(t, json!({"name": "n2"})).await);
    let s = app
        .subnet(t, &n2, "10.0.0.0/24", json!({"gateway_ip": "10.0.0.100"}))
        .await;
    assert_eq!(s["gateway_ip"], "10.0.0.100");
    assert_eq!(
        s["allocation_pools"],
        json!([{"start": "10.0.0.1", "end": "10.0.0.99"}, {"start": "10.0.0.101", "end": "10.0.0.254"}])
    );

    let n3 = id(&app.network(t, json!({"name": "n3"})).await);
    let s = app
        .subnet(t, &n3, "10.0.0.0/24", json!({"gateway_ip": null}))
        .await;
    assert_eq!(s["gateway_ip"], Value::Null);
    assert_eq!(
        s["allocation_pools"],
        json!([{"start": "10.0.0.1", "end": "10.0.0.254"}])
    );

    // Host bits are cleared.
    let n4 = id(&app.network(t, json!({"name": "n4"})).await);
    let s = app
        .subnet(
            t,
            &n4,
            "10.3.0.0/16",
            json!({"allocation_pools": [{"start": "10.3.1.0", "end": "10.3.1.255"}]}),
        )
        .await;
    assert_eq!(
        s["allocation_pools"],
        json!([{"start": "10.3.1.0", "end": "10.3.1.255"}])
    );
    assert_eq!(s["gateway_ip"], "10.3.0.1");
}

#[tokio::test]
async fn ipv6_slaac_subnet_gives_eui64_addresses() {
    let app = App::new().await;
    let t = &app.alice;
    let (net, v4) = app.net_with_subnet(t, "dual", "10.0.0.0/24").await;
    let s = app
        .subnet(
            t,
            &net,
            "2001:db8:1::/64",
            json!({"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
        )
        .await;
    assert_eq!(s["gateway_ip"], "2001:db8:1::");
    // Addresses are printed as Neutron prints them (netaddr → inet_ntop, RFC
    // 5952): a single zero group is written out, not shortened to `::`.
    assert_eq!(
        s["allocation_pools"],
        json!([{"start": "2001:db8:1::1", "end": "2001:db8:1:0:ffff:ffff:ffff:ffff"}])
    );
    assert_eq!(s["ip_version"], 6);
    let p = app.port(t, &net, json!({})).await;
    let mac = p["mac_address"].as_str().unwrap();
    assert!(mac.starts_with("fa:16:3e:"), "{mac}");
    let want = eui64([0x2001, 0xdb8, 1, 0], mac);
    let fixed = p["fixed_ips"].as_array().unwrap();
    assert_eq!(fixed.len(), 2, "{p}");
    assert!(fixed.iter().any(|f| f["subnet_id"] == v4.as_str()));
    assert!(
        fixed
            .iter()
            .any(|f| f["subnet_id"] == id(&s).as_str() && f["ip_address"] == want.as_str()),
        "{p} should have {want}"
    );
    // Listing by that address finds the port.
    let got = app
        .list_ids(
            t,
            &format!("/v2.0/ports?fixed_ips=ip_address={want}"),
            "ports",
        )
        .await;
    assert_eq!(got, [id(&p)]);
    // A static address other than the EUI-64 one is refused on SLAAC subnets.
    let r = app.post(t, "/v2.0/ports", json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": id(&s), "ip_address": "2001:db8:1::99"}]}})).await;
    r.expect_error(400, "AllocationOnAutoAddressSubnet");
    // SLAAC needs a /64.
    let n2 = id(&app.network(t, json!({"name": "v6"})).await);
    let r = app.post(t, "/v2.0/subnets", json!({"subnet": {"network_id": n2, "ip_version": 6, "cidr": "2001:db8:2::/80", "ipv6_address_mode": "slaac"}})).await;
    r.expect_error(400, "InvalidInput");
}

#[tokio::test]
async fn fixed_ips_requests_conflicts_and_release() {
    let app = App::new().await;
    let t = &app.alice;
    // Automatic addresses come from .2-.40; the explicit ones below lie
    // outside the pool (allowed anywhere in the CIDR) so they never collide.
    let net = id(&app.network(t, json!({"name": "n"})).await);
    let sub = id(&app
        .subnet(
            t,
            &net,
            "10.0.0.0/24",
            json!({"allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.40"}]}),
        )
        .await);
    let p = app
        .port(
            t,
            &net,
            json!({"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.50"}]}),
        )
        .await;
    assert_eq!(
        p["fixed_ips"],
        json!([{"subnet_id": sub, "ip_address": "10.0.0.50"}])
    );

    // Any address from a named subnet; by address only (subnet inferred).
    let q = app
        .port(t, &net, json!({"fixed_ips": [{"subnet_id": sub}]}))
        .await;
    assert_eq!(q["fixed_ips"][0]["subnet_id"], sub.as_str());
    let last: u8 = ips(&q)[0].strip_prefix("10.0.0.").unwrap().parse().unwrap();
    assert!(
        (2..=40).contains(&last),
        "automatic address from the pool: {q}"
    );
    let q2 = app
        .port(t, &net, json!({"fixed_ips": [{"ip_address": "10.0.0.51"}]}))
        .await;
    assert_eq!(
        q2["fixed_ips"],
        json!([{"subnet_id": sub, "ip_address": "10.0.0.51"}])
    );

    // Taken → 409 with Neutron's message.
    let r = app.post(t, "/v2.0/ports", json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.50"}]}})).await;
    let msg = r.expect_error(409, "IpAddressAlreadyAllocated");
    assert_eq!(
        msg,
        format!("IP address 10.0.0.50 already allocated in subnet {sub}")
    );
    let r = app
        .post(
            t,
            "/v2.0/ports",
            json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.50"}]}}),
        )
        .await;
    r.expect_error(409, "IpAddressAlreadyAllocated");

    // fixed_ips: [] → no addresses; PUT fixed_ips: [] releases.
    let none = app.port(t, &net, json!({"fixed_ips": []})).await;
    assert_eq!(none["fixed_ips"], json!([]));
    let r = app
        .put(
            t,
            &format!("/v2.0/ports/{}", id(&p)),
            json!({"port": {"fixed_ips": []}}),
        )
        .await;
    assert_eq!(r.expect(200)["port"]["fixed_ips"], json!([]));
    let again = app
        .port(
            t,
            &net,
            json!({"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.50"}]}),
        )
        .await;
    assert_eq!(ips(&again), ["10.0.0.50"]);

    // PUT moves an address: the old one is free at once.
    let r = app
        .put(
            t,
            &format!("/v2.0/ports/{}", id(&q2)),
            json!({"port": {"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.60"}]}}),
        )
        .await;
    assert_eq!(ips(&r.expect(200)["port"]), ["10.0.0.60"]);
    let taker = app
        .port(t, &net, json!({"fixed_ips": [{"ip_address": "10.0.0.51"}]}))
        .await;
    assert_eq!(ips(&taker), ["10.0.0.51"]);

    // Deleting a port frees its address at once.
    assert_eq!(
        app.delete(t, &format!("/v2.0/ports/{}", id(&again)))
            .await
            .status,
        204
    );
    let p3 = app
        .port(
            t,
            &net,
            json!({"fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.50"}]}),
        )
        .await;
    assert_eq!(ips(&p3), ["10.0.0.50"]);

    // Fixed IPs may be anywhere in the CIDR (even outside the pools), but not outside it.
    let n2 = id(&app.network(t, json!({"name": "n2"})).await);
    let s2 = app
        .subnet(
            t,
            &n2,
            "10.5.0.0/24",
            json!({"allocation_pools": [{"start": "10.5.0.10", "end": "10.5.0.20"}]}),
        )
        .await;
    let p4 = app
        .port(
            t,
            &n2,
            json!({"fixed_ips": [{"subnet_id": id(&s2), "ip_address": "10.5.0.200"}]}),
        )
        .await;
    assert_eq!(ips(&p4), ["10.5.0.200"]);
    let r = app
        .post(
            t,
            "/v2.0/ports",
            json!({"port": {"network_id": n2, "fixed_ips": [{"ip_address": "10.9.9.9"}]}}),
        )
        .await;
    r.expect_error(400, "InvalidIpForNetwork");
    // A subnet of another network is refused.
    let r = app
        .post(
            t,
            "/v2.0/ports",
            json!({"port": {"network_id": n2, "fixed_ips": [{"subnet_id": sub}]}}),
        )
        .await;
    r.expect(400);
}

#[tokio::test]
async fn small_subnet_exhausts_and_recovers() {
    let app = App::new().await;
    let t = &app.alice;
    let (net, _) = app.net_with_subnet(t, "tiny", "10.9.0.0/29").await;
    let mut held = BTreeSet::new();
    for _ in 0..5 {
        let p = app.port(t, &net, json!({})).await;
        held.insert(ips(&p)[0].clone());
    }
    assert_eq!(
        held,
        set(["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"])
    );
    let msg = app
        .post(t, "/v2.0/ports", json!({"port": {"network_id": net}}))
        .await
        .expect_error(409, "IpAddressGenerationFailure");
    assert!(msg.contains(&net), "{msg}");
    // Free one; the next port gets exactly that address.
    let victim = app
        .list_ids(
            t,
            &format!("/v2.0/ports?fixed_ips=ip_address=10.9.0.4&network_id={net}"),
            "ports",
        )
        .await;
    assert_eq!(victim.len(), 1);
    assert_eq!(
        app.delete(t, &format!("/v2.0/ports/{}", victim[0]))
            .await
            .status,
        204
    );
    let p = app.port(t, &net, json!({})).await;
    assert_eq!(ips(&p), ["10.9.0.4"]);
    app.post(t, "/v2.0/ports", json!({"port": {"network_id": net}}))
        .await
        .expect_error(409, "IpAddressGenerationFailure");
}

// --------------------------------------------------------- 10. bad input

enum B {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

#[tokio::test]
async fn bad_input_table() {
    let app = App::new().await;
    let t = &app.alice;
    let (net, sub) = app.net_with_subnet(t, "base", "10.0.0.0/24").await;
    let n2 = id(&app.network(t, json!({"name": "other"})).await);
    let port = app.port(t, &net, json!({})).await;
    let pid = id(&port);
    let netp = format!("/v2.0/networks/{net}");
    let subnet = |extra: Value| {
        let mut b = json!({"network_id": n2, "ip_version": 4, "cidr": "10.7.0.0/24"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        B::Json(json!({ "subnet": b }))
    };
    let huge = {
        let mut v = b"{\"network\": {\"name\": \"".to_vec();
        v.extend(std::iter::repeat_n(b'x', MAX_BODY + 10));
        v.extend(b"\"}}");
        v
    };
    let post = Method::POST;
    let get = Method::GET;
    let put = Method::PUT;
    let del = Method::DELETE;
    #[rustfmt::skip]
    let table: Vec<(Method, String, B, u16, Option<&str>)> = vec![
        (post.clone(), "/v2.0/networks".into(), B::Raw(b"{\"network\": {".to_vec()), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Raw(b"not json".to_vec()), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!([{"name": "x"}])), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!("network")), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": "x"})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"netwerk": {}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::None, 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"foo": 1}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"id": "6a1f4b8e-0000-4000-8000-000000000000"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"status": "DOWN"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"name": 5}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"name": " padded "}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"name": "x".repeat(256)}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"admin_state_up": "maybe"}})), 400, Some("InvalidInput")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"admin_state_up": [true]}})), 400, Some("InvalidInput")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"mtu": "big"}})), 400, Some("InvalidInput")),
        (post.clone(), "/v2.0/networks".into(), B::Raw(huge), 413, Some("HTTPRequestEntityTooLarge")),
        (put.clone(), netp.clone(), B::Json(json!({"network": {"id": "x"}})), 400, Some("HTTPBadRequest")),
        (put.clone(), netp.clone(), B::Json(json!({"networks": [{"name": "x"}]})), 400, Some("HTTPBadRequest")),
        (put.clone(), format!("/v2.0/ports/{pid}"), B::Json(json!({"port": {"network_id": n2}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"cidr": "10.0.0.0/33"})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"cidr": "banana"})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"cidr": 10})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"ip_version": 6})), 400, Some("InvalidInput")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"ip_version": 5})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"cidr": "2001:db8::/64"})), 400, Some("InvalidInput")),
        (post.clone(), "/v2.0/subnets".into(), B::Json(json!({"subnet": {"network_id": n2, "cidr": "10.7.0.0/24"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), B::Json(json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.0.0.128/25"}})), 400, Some("InvalidInput")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"allocation_pools": [{"start": "10.8.0.2", "end": "10.8.0.10"}]})), 400, Some("OutOfBoundsAllocationPool")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"allocation_pools": [{"start": "10.7.0.20", "end": "10.7.0.10"}]})), 400, Some("InvalidAllocationPool")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"allocation_pools": [{"start": "10.7.0.2", "end": "10.7.0.50"}, {"start": "10.7.0.40", "end": "10.7.0.60"}]})), 409, Some("OverlappingAllocationPools")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"gateway_ip": "10.7.0.5", "allocation_pools": [{"start": "10.7.0.2", "end": "10.7.0.100"}]})), 409, Some("GatewayConflictWithAllocationPools")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"gateway_ip": "10.7.0.0"})), 400, None),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"gateway_ip": "not-an-ip"})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"dns_nameservers": ["1.1.1.1", "1.1.1.1"]})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"network_id": "not-a-uuid"})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"network_id": "6a1f4b8e-0000-4000-8000-000000000000"})), 404, Some("NetworkNotFound")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": sub, "ip_address": "192.168.5.5"}]}})), 400, Some("InvalidIpForSubnet")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.300"}]}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.7"}, {"ip_address": "10.0.0.7"}]}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": "not-a-uuid"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"name": "no network"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": net, "mac_address": "zz:zz"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": net, "security_groups": ["6a1f4b8e-0000-4000-8000-000000000000"]}})), 404, Some("SecurityGroupNotFound")),
        (post.clone(), "/v2.0/security-group-rules".into(), B::Json(json!({"security_group_rule": {"security_group_id": "6a1f4b8e-0000-4000-8000-000000000000", "direction": "sideways"}})), 400, Some("HTTPBadRequest")),
        (get.clone(), "/v2.0/networks?limit=1000000000000000000000000000000".into(), B::None, 200, None),
        (get.clone(), "/v2.0/networks?limit=-1".into(), B::None, 400, Some("HTTPBadRequest")),
        (get.clone(), "/v2.0/networks?marker=6a1f4b8e-0000-4000-8000-000000000000".into(), B::None, 404, None),
        (get.clone(), "/v2.0/networks/base".into(), B::None, 404, None),
        (get.clone(), "/v2.0/networks/6a1f4b8e-0000-4000-8000-000000000000".into(), B::None, 404, Some("NetworkNotFound")),
        (get.clone(), "/v2.0/ports/not-a-port".into(), B::None, 404, None),
        (get.clone(), "/v2.0/widgets".into(), B::None, 404, None),
        (get.clone(), "/v2.0/networks/x/y/z/w".into(), B::None, 404, None),
        (get.clone(), "/nothing-here".into(), B::None, 404, None),
        (post.clone(), netp.clone(), B::Json(json!({"network": {}})), 405, Some("HTTPMethodNotAllowed")),
        (Method::PATCH, netp.clone(), B::Json(json!({"network": {}})), 405, Some("HTTPMethodNotAllowed")),
        (put.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {}})), 405, Some("HTTPMethodNotAllowed")),
        (del.clone(), "/v2.0/networks".into(), B::None, 405, Some("HTTPMethodNotAllowed")),
        (post.clone(), "/".into(), B::None, 405, Some("HTTPMethodNotAllowed")),
        (del.clone(), netp.clone(), B::Json(json!({"network": {}})), 400, Some("HTTPBadRequest")),
        (put.clone(), netp.clone(), B::None, 400, Some("HTTPBadRequest")),
        (put.clone(), netp.clone(), B::Json(json!({"network": null})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"project_id": "p1", "tenant_id": "p2"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"name": "tab\there"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"description": "d".repeat(256)}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/networks".into(), B::Json(json!({"network": {"mtu": 9000}})), 400, Some("InvalidInput")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"ipv6_ra_mode": "slaac"})), 400, Some("InvalidInput")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"gateway_ip": "2001:db8::1"})), 400, None),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"allocation_pools": [{"start": "10.7.0.2", "end": "10.7.0.9", "extra": 1}]})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"allocation_pools": "10.7.0.2-10.7.0.9"})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/subnets".into(), subnet(json!({"host_routes": [{"destination": "10.8.0.5/24", "nexthop": "10.7.0.1"}]})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": net, "fixed_ips": "10.0.0.5"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": "nope"}]}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": net, "binding:vnic_type": "warp"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/ports".into(), B::Json(json!({"port": {"network_id": net, "status": "ACTIVE"}})), 400, Some("HTTPBadRequest")),
        (post.clone(), "/v2.0/security-group-rules".into(), B::Json(json!({"security_group_rule": {"security_group_id": "6a1f4b8e-0000-4000-8000-000000000000", "direction": "ingress", "port_range_min": 22, "port_range_max": 22}})), 400, None),
        (post.clone(), "/v2.0/security-group-rules".into(), B::Json(json!({"security_group_rule": {"security_group_id": "6a1f4b8e-0000-4000-8000-000000000000", "direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "2001:db8::/64"}})), 400, Some("SecurityGroupRuleParameterConflict")),
        (post.clone(), "/v2.0/security-group-rules".into(), B::Json(json!({"security_group_rule": {"security_group_id": "6a1f4b8e-0000-4000-8000-000000000000", "direction": "ingress", "protocol": "teleport"}})), 400, None),
        (post.clone(), "/v2.0/security-group-rules".into(), B::Json(json!({"security_group_rule": {"security_group_id": "6a1f4b8e-0000-4000-8000-000000000000", "direction": "ingress"}})), 404, Some("SecurityGroupNotFound")),
        (put.clone(), format!("/v2.0/quotas/{}", app.project_a), B::Json(json!({"quota": {"network": 5}})), 403, Some("PolicyNotAuthorized")),
        (get.clone(), "/v2.0/networks?sort_key=name&sort_dir=sideways".into(), B::None, 400, Some("HTTPBadRequest")),
        (get.clone(), "/v2.0/networks?shared=perhaps".into(), B::None, 400, Some("InvalidInput")),
        (get.clone(), "/v2.0/networks?limit=1.5".into(), B::None, 400, Some("HTTPBadRequest")),
        (get.clone(), "/v2.0/extensions/no-such-alias".into(), B::None, 404, Some("HTTPNotFound")),
        (get.clone(), format!("/v2.0/security-group-rules/{}/tags", "6a1f4b8e-0000-4000-8000-000000000000"), B::None, 404, None),
        (put.clone(), format!("/v2.0/security-group-rules/{}", "6a1f4b8e-0000-4000-8000-000000000000"), B::Json(json!({"security_group_rule": {}})), 405, None),
    ];
    let mut failures = Vec::new();
    for (method, path, body, status, error_type) in table {
        let bytes = match body {
            B::None => None,
            B::Json(v) => Some(v.to_string().into_bytes()),
            B::Raw(b) => Some(b),
        };
        let r = app.send(method.clone(), &path, Some(t), bytes, &[]).await;
        let got_type = r.body["NeutronError"]["type"].as_str().map(str::to_string);
        let ok = r.status == status && (error_type.is_none() || got_type.as_deref() == error_type);
        if !ok {
            let shown = String::from_utf8_lossy(&r.raw[..r.raw.len().min(300)]).to_string();
            failures.push(format!(
                "{method} {path}: want {status} {error_type:?}, got {} {shown}",
                r.status
            ));
        }
    }
    // Nothing above changed the base network.
    assert_eq!(
        app.get(t, &netp).await.expect(200)["network"]["name"],
        "base"
    );
    assert!(
        failures.is_empty(),
        "{} bad-input cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------ delete / in-use, suffixes

#[tokio::test]
async fn delete_in_use_rules_and_json_suffix() {
    let app = App::new().await;
    let t = &app.alice;
    let (net, sub) = app.net_with_subnet(t, "n", "10.0.0.0/24").await;
    let p = app
        .port(t, &net, json!({"device_owner": "compute:nova"}))
        .await;
    let dhcp = app
        .port(t, &net, json!({"device_owner": "network:dhcp"}))
        .await;
    assert_eq!(
        dhcp["security_groups"],
        json!([]),
        "network:* ports get no security groups"
    );
    assert_eq!(dhcp["port_security_enabled"], false);

    // `.json` suffixes are the same requests.
    assert_eq!(
        app.get(t, &format!("/v2.0/networks/{net}.json"))
            .await
            .expect(200)["network"]["id"],
        net.as_str()
    );
    assert!(app.get(t, "/v2.0/networks.json").await.expect(200)["networks"].is_array());

    let msg = app
        .delete(t, &format!("/v2.0/networks/{net}"))
        .await
        .expect_error(409, "NetworkInUse");
    assert!(msg.contains(&id(&p)) && !msg.contains(&id(&dhcp)), "{msg}");
    app.delete(t, &format!("/v2.0/subnets/{sub}"))
        .await
        .expect_error(409, "SubnetInUse");
    assert_eq!(
        app.delete(t, &format!("/v2.0/ports/{}", id(&p)))
            .await
            .status,
        204
    );
    app.delete(t, &format!("/v2.0/ports/{}", id(&p)))
        .await
        .expect_error(404, "PortNotFound");
    // The DHCP port and the subnet go with the network.
    assert_eq!(
        app.delete(t, &format!("/v2.0/networks/{net}")).await.status,
        204
    );
    app.get(t, &format!("/v2.0/subnets/{sub}"))
        .await
        .expect_error(404, "SubnetNotFound");
    app.get(t, &format!("/v2.0/ports/{}", id(&dhcp)))
        .await
        .expect_error(404, "PortNotFound");
    let det = app
        .get(t, &format!("/v2.0/quotas/{}/details", app.project_a))
        .await
        .expect(200)["quota"]
        .clone();
    assert_eq!(
        (
            det["network"]["used"].clone(),
            det["subnet"]["used"].clone(),
            det["port"]["used"].clone()
        ),
        (json!(0), json!(0), json!(0)),
        "{det}"
    );
}

// ------------------------------------------------------- large (streamed) lists

#[tokio::test]
async fn large_lists_stream_every_item_once_as_valid_json() {
    let mut config = neutrino_engine::EngineConfig::default();
    config.quota_defaults.insert("port".into(), -1);
    let app = App::with_config(config).await;
    let t = &app.admin;
    let (net, _) = app.net_with_subnet(t, "big", "10.8.0.0/20").await;
    // Above the streaming threshold (2,000), in bulk requests of 500.
    for _ in 0..5 {
        let items: Vec<Value> = (0..500).map(|_| json!({"network_id": net})).collect();
        app.post(t, "/v2.0/ports", json!({"ports": items}))
            .await
            .expect(201);
    }
    let all = app.get(t, "/v2.0/ports").await;
    let ports = all.expect(200)["ports"].as_array().expect("ports").clone();
    assert_eq!(ports.len(), 2_500);
    let ids: BTreeSet<String> = ports.iter().map(id).collect();
    assert_eq!(ids.len(), 2_500, "every port exactly once");
    let addrs: BTreeSet<String> = ports.iter().flat_map(ips).collect();
    assert_eq!(addrs.len(), 2_500, "no address twice");
    // `fields` applies on the streamed path too.
    let slim = app.get(t, "/v2.0/ports?fields=id&fields=mac_address").await;
    for p in slim.expect(200)["ports"].as_array().unwrap() {
        assert_eq!(p.as_object().unwrap().len(), 2);
    }
}

// ------------------------------------------- derived read-only attributes

#[tokio::test]
async fn derived_attributes_follow_their_sources() {
    let app = App::new().await;
    let (admin, alice) = (&app.admin, &app.alice);
    // Subnets show their network's router:external.
    let ext = app
        .network(admin, json!({"name": "public", "router:external": true}))
        .await;
    let ext_sub = app
        .subnet(admin, &id(&ext), "203.0.113.0/24", json!({}))
        .await;
    assert_eq!(ext_sub["router:external"], json!(true));
    let (_, own_sub) = app.net_with_subnet(alice, "private", "10.1.0.0/24").await;
    let s = app.get(alice, &format!("/v2.0/subnets/{own_sub}")).await;
    assert_eq!(s.expect(200)["subnet"]["router:external"], json!(false));

    // Rules: normalized_cidr clears host bits; belongs_to_default_sg marks the default group's rules.
    let groups = app.get(alice, "/v2.0/security-groups?name=default").await;
    let default = groups.expect(200)["security_groups"][0].clone();
    for r in default["security_group_rules"].as_array().unwrap() {
        assert_eq!(r["belongs_to_default_sg"], json!(true));
    }
    let sg = app
        .post(
            alice,
            "/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await;
    let sg_id = id(&sg.expect(201)["security_group"]);
    let r = app
        .post(
            alice,
            "/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": sg_id, "direction": "ingress",
                "protocol": "tcp", "port_range_min": 80, "port_range_max": 80,
                "remote_ip_prefix": "10.0.0.5/24"}}),
        )
        .await;
    let rule = r.expect(201)["security_group_rule"].clone();
    assert_eq!(rule["remote_ip_prefix"], json!("10.0.0.5/24"));
    assert_eq!(rule["normalized_cidr"], json!("10.0.0.0/24"));
    assert_eq!(rule["belongs_to_default_sg"], json!(false));
    let found = app
        .get(
            alice,
            "/v2.0/security-group-rules?normalized_cidr=10.0.0.0/24&belongs_to_default_sg=false",
        )
        .await;
    let ids: Vec<String> = found.expect(200)["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(ids, vec![id(&rule)]);
}

#[tokio::test]
async fn every_request_gets_its_own_request_id() {
    let app = App::new().await;
    let mut seen = BTreeSet::new();
    for _ in 0..5 {
        let r = app.get(&app.alice, "/v2.0/networks").await;
        r.expect(200);
        let e = app.get(&app.alice, "/v2.0/networks/nope").await;
        e.expect(404);
        for resp in [&r, &e] {
            let id = resp.headers["x-openstack-request-id"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(seen.insert(id), "request ids must be unique");
        }
    }
}
