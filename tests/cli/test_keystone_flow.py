"""(c) The core flow with identity mode `keystone`: the CLI authenticates against a
real OpenStack Keystone (tests/keystone/run-keystone.sh), finds the `network`
endpoint in Keystone's catalog, and Neutrino validates the tokens with Keystone."""
from __future__ import annotations

import urllib.error
import urllib.request

from conftest import http_get, uniq
from flows import core_flow


def test_catalog_points_at_neutrino(ks_admin, keystone_server):
    rows = ks_admin.json("catalog", "show", "network")
    urls = {e["url"] for e in rows["endpoints"]}
    assert f"{keystone_server.url}/" in urls, rows


def test_keystone_core_flow_admin(ks_admin):
    token = ks_admin.json("token", "issue")
    core_flow(ks_admin, expect_project_id=token["project_id"])


def test_keystone_member_flow_and_isolation(ks_admin, ks_demo):
    token = ks_demo.json("token", "issue")
    core_flow(ks_demo, expect_project_id=token["project_id"])
    private = ks_admin.json("network", "create", uniq("ks-admin-private"))
    ks_demo.fail("network", "show", private["id"])
    assert private["id"] not in {r["ID"] for r in ks_demo.json("network", "list")}


def test_keystone_token_is_checked(ks_demo, keystone_server):
    token = ks_demo.json("token", "issue")["id"]
    req = urllib.request.Request(keystone_server.url + "/v2.0/networks",
                                 headers={"X-Auth-Token": token})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    bad = urllib.request.Request(keystone_server.url + "/v2.0/networks",
                                 headers={"X-Auth-Token": "gAAAAAB-not-a-token"})
    try:
        urllib.request.urlopen(bad, timeout=30)
        raise AssertionError("a bogus token was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 401
    status, _ = http_get(keystone_server.url + "/v2.0/networks")
    assert status == 401
