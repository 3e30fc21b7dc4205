"""L2 networks and DHCP on real hosts: three host namespaces with real agents,
instances plugged with `neutrino vif plug`, leases from real DHCP clients,
connectivity checked with ping."""
from __future__ import annotations

import json

import pytest

from conftest import nsx, wait_until

MODES = {
    # single-host: h3 is the network node and serves DHCP for every network.
    "single-host": {"h1": "off", "h2": "off", "h3": "all"},
    # multi-host: every compute host serves only its own instances.
    "multi-host": {"h1": "local", "h2": "local", "h3": "off"},
}


def three_hosts(topology, mode: str, driver: str = "native", **kw):
    t = topology(**kw)
    for name, dhcp in MODES[mode].items():
        t.add_host(name, dhcp_mode=dhcp, driver=driver)
    return t


def vxlan_net(t, name="blue", cidr="198.51.100.0/24"):
    net = t.api.network(name)
    sub = t.api.subnet(net["id"], cidr, dns_nameservers=["198.51.100.53", "198.51.100.54"],
                       host_routes=[{"destination": "203.0.113.0/24", "nexthop": "198.51.100.254"}])
    return net, sub


@pytest.mark.parametrize("driver", ["native", "dnsmasq"])
@pytest.mark.parametrize("mode", ["single-host", "multi-host"])
def test_vxlan_instances_get_controller_addresses_and_ping_across_hosts(topology, mode, driver):
    t = three_hosts(topology, mode, driver)
    net, sub = vxlan_net(t)
    assert net["provider:network_type"] == "vxlan" and net["mtu"] == 1450
    p1 = t.api.port(net["id"], name="vm1", dns_name="vm1")
    p2 = t.api.port(net["id"], name="vm2")
    vm1 = t.instance("h1", p1, "i1")
    vm2 = t.instance("h2", p2, "i2")
    for p in (p1, p2):
        t.wait_active(p["id"])
    port = t.api.show_port(p1["id"])
    assert port["binding:host_id"] == "h1"

    lease1 = vm1.dhcp("udhcpc")
    lease2 = vm2.dhcp("dhclient")
    ip1, ip2 = p1["fixed_ips"][0]["ip_address"], p2["fixed_ips"][0]["ip_address"]
    # Exactly the controller's addresses, gateway, DNS servers, MTU and routes.
    assert lease1["ip"] == ip1 and lease2["ip"] == ip2
    for lease in (lease1, lease2):
        assert lease["router"] == sub["gateway_ip"] == "198.51.100.1"
        assert lease["dns"].split() == ["198.51.100.53", "198.51.100.54"]
        assert lease["mtu"] == "1450"
        assert lease["domain"] == "openstacklocal"
    assert lease1["hostname"] == "vm1"
    assert lease2["hostname"] == f"host-{ip2.replace('.', '-')}"
    assert "203.0.113.0/24 198.51.100.254" in lease1["staticroutes"]
    assert lease2["classless"] == "24 203 0 113 198 51 100 254 0 198 51 100 1"
    # Read back from the instance itself.
    addrs = json.loads(vm1.ip("-j", "addr", "show", "eth0"))[0]
    assert addrs["mtu"] == 1450
    assert {a["local"] for a in addrs["addr_info"] if a["family"] == "inet"} == {ip1}
    assert "203.0.113.0/24 via 198.51.100.254" in vm1.ip("route")
    assert "default via 198.51.100.1" in vm2.ip("route")

    assert vm1.ping(ip2) and vm2.ping(ip1)

    # Who served: in multi-host each compute host answers its own instances.
    serving = {h: t.hosts[h].status()["dhcp"]["networks"] for h in t.hosts}
    if mode == "single-host":
        assert list(serving["h3"]) == [net["id"]] and not serving["h1"] and not serving["h2"]
    else:
        assert list(serving["h1"]) == [net["id"]] and list(serving["h2"]) == [net["id"]]
        assert not serving["h3"]
        assert serving["h1"][net["id"]]["reservations"] == 1


def test_two_networks_are_isolated_at_l2(topology):
    t = three_hosts(topology, "single-host")
    # Same CIDR on both: only L2 separates them.
    red, _ = vxlan_net(t, "red")
    green, _ = vxlan_net(t, "green")
    r1 = t.instance("h1", t.api.port(red["id"]), "r1")
    r2 = t.instance("h2", t.api.port(red["id"]), "r2")
    g2 = t.instance("h2", t.api.port(green["id"], fixed_ips=[{"ip_address": "198.51.100.50"}]), "g2")
    for vm in (r1, r2, g2):
        t.wait_active(vm.port["id"])
        vm.dhcp()
    ip = lambda vm: vm.port["fixed_ips"][0]["ip_address"]  # noqa: E731
    assert r1.ping(ip(r2))
    # g2 holds an address in red's subnet, yet r1 cannot reach it, and g2
    # cannot reach r2 across hosts either.
    assert ip(g2) == "198.51.100.50"
    assert not r1.ping(ip(g2), count=3)
    assert not g2.ping(ip(r2), count=3)
    assert red["provider:segmentation_id"] != green["provider:segmentation_id"]


@pytest.mark.parametrize("driver", ["native", "dnsmasq"])
def test_flat_network_through_the_mapped_interface(topology, driver):
    t = three_hosts(topology, "single-host", driver)
    net = t.api.network("prov", **{"provider:network_type": "flat", "provider:physical_network": "physnet1"})
    t.api.subnet(net["id"], "203.0.113.0/24")
    assert net["mtu"] == 1500
    vm1 = t.instance("h1", t.api.port(net["id"]), "f1")
    vm2 = t.instance("h2", t.api.port(net["id"]), "f2")
    for vm in (vm1, vm2):
        t.wait_active(vm.port["id"])
        assert vm.dhcp()["mtu"] == "1500"
    assert vm1.ping(vm2.port["fixed_ips"][0]["ip_address"])
    # The bridge's uplink is the host's eth1, as mapped.
    links = json.loads(nsx(t.hosts["h1"].ns, "ip", "-j", "link", "show", "eth1").stdout)
    assert links[0]["master"].startswith("brq")
