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


def assert_served_only_by(cap, server: dict, who: str):
    """Every DHCP reply the instance received came from `server` (the DHCP
    port that serves it), and none was a NAK: in multi-host mode another
    host's server hears the instance's broadcasts over VXLAN, and must stay
    silent about a client it holds no reservation for (RFC 2131 4.3.2)."""
    ip = server["fixed_ips"][0]["ip_address"]
    replies = cap.replies()
    stray = [r for r in replies
             if r["type"] == "NAK" or r["server_id"] != ip or r["src"] != ip or r["src_mac"] != server["mac_address"]]
    heard = "\n".join(json.dumps(p) for p in cap.packets)
    assert replies and not stray, f"{who}: replies other than from {ip} ({server['mac_address']}):\n{heard}"


def assert_no_convergence_warnings(t):
    """Every host built what it was asked in order: no step ran before what
    it needs existed (a DHCP server before its namespace, say)."""
    for h in t.hosts.values():
        warned = h.logged("cannot converge")
        assert not warned, f"{h.name} logged:\n" + "\n".join(warned)


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

    # The server each instance must hear, and only it: h3 in single-host
    # mode, the instance's own host in multi-host mode.
    server = {vm: t.dhcp_server(net["id"], "h3" if mode == "single-host" else vm.host.name)
              for vm in (vm1, vm2)}
    with vm1.capture_dhcp() as cap1:
        lease1 = vm1.dhcp("udhcpc")
    with vm2.capture_dhcp() as cap2:
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
    # No router on the network: the metadata service is its DHCP server's
    # (the gateway closes the list: a client given option 121 ignores option 3).
    md_via = server[vm2]["fixed_ips"][0]["ip_address"].replace(".", " ")
    assert lease2["classless"] == \
        f"24 203 0 113 198 51 100 254 32 169 254 169 254 {md_via} 0 198 51 100 1"
    # Read back from the instance itself.
    addrs = json.loads(vm1.ip("-j", "addr", "show", "eth0"))[0]
    assert addrs["mtu"] == 1450
    assert {a["local"] for a in addrs["addr_info"] if a["family"] == "inet"} == {ip1}
    assert "203.0.113.0/24 via 198.51.100.254" in vm1.ip("route")
    assert "default via 198.51.100.1" in vm2.ip("route")

    assert vm1.ping(ip2) and vm2.ping(ip1)

    # dhclient's reboot path: with its lease on file it asks for that address
    # again (INIT-REBOOT: a broadcast REQUEST naming no server), and is
    # confirmed without going back to discovery.
    with vm2.capture_dhcp() as cap3:
        rebooted = vm2.dhcp("dhclient")
    first = cap3.requests()[0]
    assert (first["type"], first["server_id"], first["requested"]) == ("REQUEST", None, ip2), cap3.packets
    for cap, vm, who in ((cap1, vm1, "udhcpc"), (cap2, vm2, "dhclient"), (cap3, vm2, "dhclient reboot")):
        assert_served_only_by(cap, server[vm], who)
    assert rebooted["event"] == "REBOOT" and rebooted["ip"] == ip2, rebooted

    # Who served: in multi-host each compute host answers its own instances.
    serving = {h: t.hosts[h].status()["dhcp"]["networks"] for h in t.hosts}
    if mode == "single-host":
        assert list(serving["h3"]) == [net["id"]] and not serving["h1"] and not serving["h2"]
    else:
        assert list(serving["h1"]) == [net["id"]] and list(serving["h2"]) == [net["id"]]
        assert not serving["h3"]
        assert serving["h1"][net["id"]]["reservations"] == 1
    assert_no_convergence_warnings(t)


@pytest.mark.parametrize("driver", ["native", "dnsmasq"])
def test_a_ports_extra_options_reach_it_and_outlive_later_changes(topology, driver):
    """PXE-style options on one port, none on its neighbour; a change to the
    network after the optioned port took its lease reaches the server
    without taking it down (dnsmasq 2.90 segfaults on a reload while a
    tagged host holds a lease, so that change is a restart)."""
    t = three_hosts(topology, "single-host", driver)
    net, _ = vxlan_net(t)
    opts = [{"opt_name": "tftp-server", "opt_value": "198.51.100.9"},
            {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}]
    p1 = t.api.port(net["id"], name="pxe", extra_dhcp_opts=opts)
    p2 = t.api.port(net["id"], name="plain")
    vm1, vm2 = t.instance("h1", p1, "i1"), t.instance("h2", p2, "i2")
    for p in (p1, p2):
        t.wait_active(p["id"])
    lease = vm1.dhcp("udhcpc")
    assert (lease["tftp"], lease["bootfile"]) == ("198.51.100.9", "pxelinux.0"), lease
    plain = vm2.dhcp("udhcpc")
    assert (plain["tftp"], plain["bootfile"]) == ("", ""), plain
    node = t.hosts["h3"]
    reservations = lambda: node.status()["dhcp"]["networks"][net["id"]]["reservations"]
    p3 = t.api.port(net["id"], name="later")
    wait_until("the new reservation served", lambda: reservations() == 3)
    t.api.delete(f"/v2.0/ports/{p3['id']}")
    wait_until("the reservation gone", lambda: reservations() == 2)
    again = vm1.dhcp("udhcpc")
    assert (again["ip"], again["tftp"]) == (lease["ip"], "198.51.100.9"), again
    assert not node.logged("dnsmasq exited"), node.logged("dnsmasq")
    assert_no_convergence_warnings(t)


@pytest.mark.parametrize("driver", ["native", "dnsmasq"])
def test_in_multi_host_only_its_own_host_tells_a_client_its_address_changed(topology, driver):
    # The other side of staying silent about strangers: a server still
    # answers for the MACs it holds, a wrong address at once with a NAK (it is
    # authoritative for them), so an instance whose port got another address
    # while it was down learns it at its next boot.
    t = three_hosts(topology, "multi-host", driver)
    net, _ = vxlan_net(t)
    p1 = t.api.port(net["id"], name="vm1")
    p2 = t.api.port(net["id"], name="vm2")
    vm1 = t.instance("h1", p1, "i1")
    t.instance("h2", p2, "i2")  # so that h2 serves the network too, and hears i1
    for p in (p1, p2):
        t.wait_active(p["id"])
    old = vm1.dhcp("dhclient")["ip"]
    assert old == p1["fixed_ips"][0]["ip_address"]
    new = "198.51.100.77"
    t.api.update_port(p1["id"], fixed_ips=[{"ip_address": new}])
    server = t.dhcp_server(net["id"], "h1")
    server_ip = server["fixed_ips"][0]["ip_address"]

    def reboot():
        # Until h1's server has the new reservation, the old address is
        # confirmed; then the reboot is refused and the client rediscovers.
        with vm1.capture_dhcp() as cap:
            lease = vm1.dhcp("dhclient")
        return (cap, lease) if lease["ip"] == new else None
    cap, lease = wait_until("i1 given its new address", reboot, timeout=60)
    first = cap.requests()[0]
    assert (first["type"], first["server_id"], first["requested"]) == ("REQUEST", None, old), cap.packets
    replies = cap.replies()
    heard = "\n".join(json.dumps(p) for p in cap.packets)
    # The INIT-REBOOT request is answered at once, by a NAK from h1's server...
    assert [(r["type"], r["xid"]) for r in replies][0] == ("NAK", first["xid"]), heard
    # ...and every reply is h1's: h2's server says nothing about i1.
    assert all(r["server_id"] == server_ip and r["src_mac"] == server["mac_address"] for r in replies), heard
    assert [r["type"] for r in replies].count("NAK") == 1, heard
    assert lease["event"] == "BOUND" and lease["serverid"] == server_ip, lease


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
    assert_no_convergence_warnings(t)
