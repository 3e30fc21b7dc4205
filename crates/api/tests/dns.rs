//! dns-integration, as far as it is built: a network's `dns_domain`
//! (neutron-lib's validator and lower-casing, settable, filterable).

mod common;

use common::{App, id};
use serde_json::json;

#[tokio::test]
async fn a_networks_dns_domain_is_a_lower_cased_fqdn() {
    let app = App::new().await;
    let n = app
        .network(
            &app.alice,
            json!({"name": "n", "dns_domain": "Example.ORG."}),
        )
        .await;
    assert_eq!(n["dns_domain"], "example.org.");
    let plain = app.network(&app.alice, json!({"name": "plain"})).await;
    assert_eq!(plain["dns_domain"], "");
    let path = format!("/v2.0/networks/{}", id(&n));
    let r = app
        .put(
            &app.alice,
            &path,
            json!({"network": {"dns_domain": "other.example.net."}}),
        )
        .await;
    assert_eq!(r.expect(200)["network"]["dns_domain"], "other.example.net.");
    let listed = app
        .list_ids(
            &app.alice,
            "/v2.0/networks?dns_domain=other.example.net.",
            "networks",
        )
        .await;
    assert_eq!(listed, vec![id(&n)]);
    for (bad, why) in [
        ("example.org", "'example.org' is not a FQDN"),
        (
            "a..b.",
            "'a..b.' not a valid PQDN or FQDN. Reason: Encountered an empty component",
        ),
        ("x.123.", "TLD '123' must not be all numeric"),
        ("-a.org.", "must not start or end with a hyphen"),
    ] {
        let msg = app
            .put(&app.alice, &path, json!({"network": {"dns_domain": bad}}))
            .await
            .expect_error(400, "HTTPBadRequest");
        assert!(msg.contains(why), "{bad}: {msg}");
        assert!(
            msg.starts_with("Invalid input for dns_domain. Reason: "),
            "{msg}"
        );
    }
    // Nothing of a refused update was kept.
    let shown = app.get(&app.alice, &path).await;
    assert_eq!(
        shown.expect(200)["network"]["dns_domain"],
        "other.example.net."
    );
}

#[tokio::test]
async fn a_ports_dns_domain_follows_the_same_rules() {
    let app = App::new().await;
    let (net, _) = app.net_with_subnet(&app.alice, "n", "10.0.0.0/24").await;
    let p = app
        .port(
            &app.alice,
            &net,
            json!({"dns_domain": "Ports.Example.ORG."}),
        )
        .await;
    assert_eq!(p["dns_domain"], "ports.example.org.");
    let path = format!("/v2.0/ports/{}", id(&p));
    let msg = app
        .put(
            &app.alice,
            &path,
            json!({"port": {"dns_domain": "no-dot.org"}}),
        )
        .await
        .expect_error(400, "HTTPBadRequest");
    assert_eq!(
        msg,
        "Invalid input for dns_domain. Reason: 'no-dot.org' is not a FQDN."
    );
    let r = app
        .put(&app.alice, &path, json!({"port": {"dns_domain": ""}}))
        .await;
    assert_eq!(r.expect(200)["port"]["dns_domain"], "");
}
