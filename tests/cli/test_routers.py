"""Routers and floating IPs with the real CLI: gateway, interfaces by subnet and by
port, extra routes, floating IP association, and the in-use errors on the way."""
from __future__ import annotations

import ipaddress

import pytest

from conftest import uniq
from flows import fixed_ips, ip


def _gateway(router: dict) -> dict:
    gw = router["external_gateway_info"]
    assert isinstance(gw, dict), router
    return gw


def _routes(router: dict) -> list[dict]:
    routes = router.get("routes") or []
    return [dict(r) for r in routes]


@pytest.fixture(scope="module")
def public(admin):
    """An external network with a subnet, as an admin makes it."""
    name = uniq("public")
    net = admin.json("network", "create", "--external", name)
    assert net["router:external"] is True
    sub = admin.json("subnet", "create", "--network", name, "--subnet-range",
                     "198.51.100.0/24", "--no-dhcp", uniq("public-sub"))
    return {"name": name, "net": net, "subnet": sub}


def test_router_and_floating_ip_flow(member, public):
    cli = member
    net1, sub1 = uniq("r-net1"), uniq("r-sub1")
    cli.json("network", "create", net1)
    s1 = cli.json("subnet", "create", "--network", net1, "--subnet-range", "10.20.0.0/24", sub1)
    net2, sub2 = uniq("r-net2"), uniq("r-sub2")
    cli.json("network", "create", net2)
    cli.json("subnet", "create", "--network", net2, "--subnet-range", "10.21.0.0/24", sub2)

    rname = uniq("r1")
    r = cli.json("router", "create", rname)
    assert r["status"] == "ACTIVE"
    assert not r["external_gateway_info"]

    # Gateway on the external network: one address from its subnet, SNAT on.
    cli.run("router", "set", "--external-gateway", public["name"], rname)
    r = cli.json("router", "show", rname)
    gw = _gateway(r)
    assert gw["network_id"] == public["net"]["id"]
    assert gw["enable_snat"] is True
    ext = gw["external_fixed_ips"]
    assert len(ext) == 1 and ext[0]["subnet_id"] == public["subnet"]["id"]
    assert ip(ext[0]["ip_address"]) in ipaddress.ip_network("198.51.100.0/24")

    # Interface by subnet: a router port holding the subnet's gateway address.
    cli.run("router", "add", "subnet", rname, sub1)
    ports = cli.json("port", "list", "--router", rname, "--long")
    assert len(ports) == 1, ports
    p = cli.json("port", "show", ports[0]["ID"])
    assert p["device_owner"] == "network:router_interface"
    assert fixed_ips(p) == {s1["id"]: {ip("10.20.0.1")}}

    # Interface by port.
    pname = uniq("r-port")
    port = cli.json("port", "create", "--network", net2, pname)
    cli.run("router", "add", "port", rname, pname)
    port = cli.json("port", "show", pname)
    assert port["device_owner"] == "network:router_interface"
    assert port["device_id"] == r["id"]
    assert len(cli.json("port", "list", "--router", rname)) == 2

    # Extra route via a host on the first subnet.
    cli.run("router", "set", "--route", "destination=192.168.50.0/24,gateway=10.20.0.50", rname)
    r = cli.json("router", "show", rname)
    assert {"destination": "192.168.50.0/24", "nexthop": "10.20.0.50"} in _routes(r), r
    # A nexthop on no attached subnet: 400 InvalidRoutes.
    proc = cli.fail("router", "set", "--route",
                    "destination=192.168.60.0/24,gateway=10.99.0.1", rname)
    assert "400" in proc.stderr and "nexthop is not connected" in proc.stderr, proc.stderr[-3000:]

    # A floating IP: unassociated DOWN, associated ACTIVE with the router derived.
    vm = cli.json("port", "create", "--network", net1, uniq("vm"))
    fip = cli.json("floating", "ip", "create", public["name"])
    assert fip["status"] == "DOWN"
    assert not fip["port_id"]
    assert ip(fip["floating_ip_address"]) in ipaddress.ip_network("198.51.100.0/24")
    cli.run("floating", "ip", "set", "--port", vm["id"], fip["id"])
    shown = cli.json("floating", "ip", "show", fip["id"])
    assert shown["port_id"] == vm["id"]
    assert shown["status"] == "ACTIVE"
    assert shown["router_id"] == r["id"]
    assert shown["fixed_ip_address"] == vm["fixed_ips"][0]["ip_address"]
    listed = cli.json("floating", "ip", "list", "--port", vm["id"])
    assert [f["ID"] for f in listed] == [fip["id"]]

    # In use: the router has interfaces; the interface serves the floating IP.
    proc = cli.fail("router", "delete", rname)
    assert "RouterInUse" in proc.stderr or "still has ports" in proc.stderr, proc.stderr[-3000:]
    assert "409" in proc.stderr, proc.stderr[-3000:]
    proc = cli.fail("router", "remove", "subnet", rname, sub1)
    assert "409" in proc.stderr and "floating IP" in proc.stderr, proc.stderr[-3000:]
    proc = cli.fail("router", "unset", "--external-gateway", rname)
    assert "409" in proc.stderr, proc.stderr[-3000:]

    cli.run("floating", "ip", "unset", "--port", fip["id"])
    shown = cli.json("floating", "ip", "show", fip["id"])
    assert not shown["port_id"] and shown["status"] == "DOWN"
    # Still needed by the route until it goes.
    proc = cli.fail("router", "remove", "subnet", rname, sub1)
    assert "409" in proc.stderr and "routes" in proc.stderr, proc.stderr[-3000:]
    cli.run("router", "unset", "--route", "destination=192.168.50.0/24,gateway=10.20.0.50", rname)
    assert _routes(cli.json("router", "show", rname)) == []
    cli.run("router", "remove", "subnet", rname, sub1)
    cli.run("router", "remove", "port", rname, pname)
    assert cli.json("port", "list", "--router", rname) == []

    cli.run("floating", "ip", "delete", fip["id"])
    cli.fail("floating", "ip", "show", fip["id"])
    cli.run("router", "unset", "--external-gateway", rname)
    assert not cli.json("router", "show", rname)["external_gateway_info"]
    cli.run("router", "delete", rname)
    cli.fail("router", "show", rname)


def test_member_cannot_pick_snat_or_see_other_routers(member, admin, public):
    rname = uniq("r-snat")
    r = member.json("router", "create", rname)
    proc = member.fail("router", "set", "--external-gateway", public["name"],
                       "--disable-snat", rname)
    assert "403" in proc.stderr, proc.stderr[-3000:]
    # The admin may; the member sees the result but not the gateway port.
    admin.run("router", "set", "--external-gateway", public["name"], "--disable-snat", r["id"])
    assert _gateway(member.json("router", "show", rname))["enable_snat"] is False
    mine = {x["ID"] for x in member.json("port", "list")}
    gw_ports = admin.json("port", "list", "--device-owner", "network:router_gateway",
                          "--device-id", r["id"])
    assert len(gw_ports) == 1 and gw_ports[0]["ID"] not in mine
    # An admin's router is invisible to the member.
    other = admin.json("router", "create", uniq("r-admin"))
    member.fail("router", "show", other["id"])
    assert other["id"] not in {x["ID"] for x in member.json("router", "list")}
    member.run("router", "delete", rname)
    admin.run("router", "delete", other["id"])
