"""(d) Project isolation and roles, through the CLI, with builtin identity."""
from __future__ import annotations

import pytest

from conftest import uniq
from flows import names


@pytest.fixture(scope="module")
def admin_networks(admin):
    private, shared = uniq("admin-private"), uniq("admin-shared")
    p = admin.json("network", "create", private)
    s = admin.json("network", "create", "--share", shared)
    assert p["shared"] is False and s["shared"] is True
    return {"private": p, "shared": s}


def test_member_cannot_see_admin_private_network(member, admin_networks):
    p = admin_networks["private"]
    proc = member.fail("network", "show", p["id"])
    assert p["id"] in proc.stderr
    member.fail("network", "show", p["name"])
    listed = member.json("network", "list")
    assert p["id"] not in {r["ID"] for r in listed}


def test_member_sees_shared_network(member, admin_networks):
    s = admin_networks["shared"]
    shown = member.json("network", "show", s["name"])
    assert shown["id"] == s["id"]
    assert shown["shared"] is True
    assert s["id"] in {r["ID"] for r in member.json("network", "list")}
    # ...but may not delete or rename it
    member.fail("network", "delete", s["id"])
    member.fail("network", "set", "--name", uniq("hijack"), s["id"])
    assert s["name"] in names(member.json("network", "list"))


def test_member_creates_in_own_project(member, admin, admin_networks):
    name = uniq("member-net")
    net = member.json("network", "create", name)
    assert net["project_id"] != admin_networks["private"]["project_id"]
    # the admin sees every project's networks
    assert admin.json("network", "show", net["id"])["project_id"] == net["project_id"]
    # a member cannot create a network for another project
    member.fail("network", "create", "--project", admin_networks["private"]["project_id"],
                uniq("foreign"))
    member.run("network", "delete", name)


def test_reader_cannot_create_network(reader, admin, admin_networks):
    name = uniq("reader-net")
    proc = reader.fail("network", "create", name)
    assert "403" in proc.stderr, proc.stderr[-3000:]
    assert name not in names(admin.json("network", "list"))
    # reading is allowed: the shared network is visible
    assert admin_networks["shared"]["id"] in {r["ID"] for r in reader.json("network", "list")}
