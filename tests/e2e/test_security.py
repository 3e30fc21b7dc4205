"""Security groups, anti-spoofing and same-network isolation, checked with
real packets: ping, TCP connections to a small listener, and a real DHCP
client against a rogue DHCP server inside an instance. Instances get their
addresses injected (no DHCP) unless a test says otherwise."""
from __future__ import annotations

import time

import pytest

from conftest import Proc, nsx, wait_until

CIDR = "198.51.100.0/24"
POOL = [{"start": "198.51.100.10", "end": "198.51.100.99"}]
OUTSIDE_POOL = "198.51.100.200"


def network(t, name="blue", **attrs):
    net = t.api.network(name, **attrs)
    sub = t.api.subnet(net["id"], CIDR, enable_dhcp=False, allocation_pools=POOL)
    return net, sub


def boot(t, host, net, name, **attrs):
    """A port, an instance on `host` with the port's addresses, ACTIVE."""
    port = t.api.port(net["id"], name=name, **attrs)
    vm = t.instance(host, port, name)
    vm.static()
    t.wait_active(port["id"])
    return port, vm


def ip4(port):
    return next(f["ip_address"] for f in port["fixed_ips"] if ":" not in f["ip_address"])


def ip6(port):
    return next(f["ip_address"] for f in port["fixed_ips"] if ":" in f["ip_address"])


def test_security_groups_with_real_packets(topology):
    t = topology()
    t.add_host("h1")
    t.add_host("h2")
    net, _ = network(t)
    default = t.api.default_group()
    web = t.api.security_group("web")
    pa, a = boot(t, "h1", net, "a")
    pb, b = boot(t, "h2", net, "b")
    pc, c = boot(t, "h1", net, "c", security_groups=[web["id"]])
    c.listen(22)
    b.listen(22)

    # Default group: members reach each other across hosts.
    assert a.ping(ip4(pb)) and b.ping(ip4(pa))
    # `web` admits nothing yet.
    assert not a.ping(ip4(pc))
    assert not a.connect(ip4(pc), 22)

    # TCP 22 from a's address only.
    t.api.rule(web["id"], protocol="tcp", port_range_min=22, port_range_max=22,
               remote_ip_prefix=f"{ip4(pa)}/32")
    wait_until("a reaches c:22", lambda: a.connect(ip4(pc), 22), timeout=15)
    assert not b.connect(ip4(pc), 22)
    assert not a.ping(ip4(pc)), "only TCP 22 was opened"
    # Stateful: c's answers reached a although a's group admits nothing
    # from c; c itself cannot open a connection into the default group.
    assert not c.connect(ip4(pb), 22)
    assert c.ping(ip4(pa)) is False

    # Remote group: ICMP from members of `default`.
    t.api.rule(web["id"], protocol="icmp", remote_group_id=default["id"])
    wait_until("a pings c", lambda: a.ping(ip4(pc)), timeout=15)
    assert b.ping(ip4(pc))

    # A port outside `default` is admitted as soon as it joins, and no longer
    # once it leaves.
    other = t.api.security_group("other")
    pe, e = boot(t, "h2", net, "e", security_groups=[other["id"]])
    assert not e.ping(ip4(pc))
    t.api.update_port(pe["id"], security_groups=[other["id"], default["id"]])
    wait_until("e (joined default) pings c", lambda: e.ping(ip4(pc)), timeout=15)
    t.api.update_port(pe["id"], security_groups=[other["id"]])
    wait_until("e (left default) no longer pings c", lambda: not e.ping(ip4(pc)), timeout=15)

    # Deleting the rule closes TCP 22 again.
    rules = t.api.get(f"/v2.0/security-group-rules?security_group_id={web['id']}&protocol=tcp")
    for r in rules["security_group_rules"]:
        t.api.delete(f"/v2.0/security-group-rules/{r['id']}")
    wait_until("c:22 closed", lambda: not a.connect(ip4(pc), 22), timeout=15)

    # The hosts report what they programmed.
    for h in t.hosts.values():
        assert h.metric("neutrino_agent_firewall_ports") >= 1
        assert h.converged(), h.status()


def test_ipv6_rules(topology):
    t = topology()
    t.add_host("h1")
    t.add_host("h2")
    net, _ = network(t)
    t.api.post("/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "2001:db8:1::/64", "ip_version": 6, "enable_dhcp": False}})
    web = t.api.security_group("web6")
    pa, a = boot(t, "h1", net, "a")
    pb, b = boot(t, "h2", net, "b")
    pc, c = boot(t, "h2", net, "c", security_groups=[web["id"]])
    c.listen(22)
    # The default group's IPv6 rule admits members over IPv6.
    wait_until("a pings b over IPv6", lambda: a.ping(ip6(pb)), timeout=15)
    assert not a.connect(ip6(pc), 22)
    t.api.rule(web["id"], ethertype="IPv6", protocol="tcp", port_range_min=22,
               port_range_max=22, remote_ip_prefix=f"{ip6(pa)}/128")
    wait_until("a reaches c:22 over IPv6", lambda: a.connect(ip6(pc), 22), timeout=15)
    assert not b.connect(ip6(pc), 22)
    # The IPv6 rule opened nothing over IPv4.
    assert not a.connect(ip4(pc), 22)


def test_spoofing_is_dropped_at_the_port(topology):
    t = topology()
    t.add_host("h1")
    net, _ = network(t)
    pa, a = boot(t, "h1", net, "a")
    pb, b = boot(t, "h1", net, "b")
    target = ip4(pb)
    assert a.ping(target)

    # Another address: dropped (ARP and IP alike).
    a.ip("addr", "flush", "dev", "eth0")
    a.ip("addr", "add", f"{OUTSIDE_POOL}/24", "dev", "eth0")
    assert not a.ping(target)
    # The same address as an allowed address pair: passes.
    t.api.update_port(pa["id"], allowed_address_pairs=[{"ip_address": OUTSIDE_POOL}])
    wait_until("a pings from its allowed pair", lambda: a.ping(target), timeout=15)

    # Its own address with another MAC: dropped; its own MAC again: passes.
    a.ip("addr", "flush", "dev", "eth0")
    a.ip("addr", "add", f"{ip4(pa)}/24", "dev", "eth0")
    a.ip("link", "set", "eth0", "address", "02:00:00:00:00:99")
    assert not a.ping(target)
    a.ip("link", "set", "eth0", "address", pa["mac_address"])
    assert a.ping(target)


def rogue_dhcp(t, vm, name):
    """dnsmasq inside an instance, handing out 198.51.100.150-160."""
    return_proc = Proc(["ip", "netns", "exec", vm.ns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
                        "--port=0", "--interface=eth0", "--bind-interfaces", "--user=root",
                        "--dhcp-range=198.51.100.150,198.51.100.160,2m",
                        f"--dhcp-leasefile={t.dir / (name + '.leases')}"],
                       t.dir / f"{name}.dnsmasq.log")
    t.procs.append(return_proc)
    return return_proc


def test_a_rogue_dhcp_server_is_not_heard(topology):
    t = topology()
    t.add_host("h1")
    t.add_host("h2")
    net, _ = network(t)
    _, rogue = boot(t, "h1", net, "rogue")
    rogue_dhcp(t, rogue, "rogue")
    pv = t.api.port(net["id"], name="victim")
    victim = t.instance("h2", pv, "victim")
    t.wait_active(pv["id"])
    assert "ip" not in victim.dhcp("udhcpc", expect_lease=False)

    # The same server on a port without port security is heard: the test
    # above could have failed.
    pr = t.api.port(net["id"], name="open", port_security_enabled=False, security_groups=[])
    open_vm = t.instance("h1", pr, "open")
    open_vm.static()
    t.wait_active(pr["id"])
    rogue_dhcp(t, open_vm, "open")
    lease = victim.dhcp("udhcpc", expect_lease=False)
    ip = lease.get("ip", "")
    assert ip.startswith("198.51.100.") and 150 <= int(ip.rsplit(".", 1)[1]) <= 160, lease


def test_same_net_isolation_until_a_rule_allows(topology):
    t = topology()
    t.add_host("h1", firewall="allow_same_net_traffic = false")
    t.add_host("h2", firewall="allow_same_net_traffic = false")
    net, _ = network(t, "flat", **{"provider:network_type": "flat",
                                   "provider:physical_network": "physnet1"})
    default = t.api.default_group()
    pa, a = boot(t, "h1", net, "a")
    pb, b = boot(t, "h2", net, "b")
    pc, c = boot(t, "h1", net, "c")
    # Members of one group on one network: isolated (same host and across).
    assert not a.ping(ip4(pb))
    assert not a.ping(ip4(pc))
    t.api.rule(default["id"], protocol="icmp", remote_ip_prefix=CIDR)
    wait_until("a pings b once a rule allows", lambda: a.ping(ip4(pb)), timeout=15)
    assert a.ping(ip4(pc)) and b.ping(ip4(pa))
    # Only ICMP was allowed.
    b.listen(22)
    assert not a.connect(ip4(pb), 22)


NA_SENDER = """
import socket, struct, sys
target, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex("eth0"))
# Neighbour advertisement, override flag, target link-layer address option;
# the kernel fills the checksum.
na = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + socket.inet_pton(socket.AF_INET6, target)
na += bytes([2, 1]) + mac
for _ in range(3):
    s.sendto(na, ("ff02::1", 0, 0, socket.if_nametoindex("eth0")))
"""


def neighbour_mac(vm, addr: str) -> str | None:
    out = vm.ip("neigh", "show", addr)
    words = out.split()
    return words[words.index("lladdr") + 1] if "lladdr" in words else None


def test_arp_and_ndp_cannot_claim_a_neighbours_address(topology):
    t = topology()
    t.add_host("h1")
    net, _ = network(t)
    t.api.post("/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "2001:db8:1::/64", "ip_version": 6, "enable_dhcp": False}})
    pb, b = boot(t, "h1", net, "b")
    pc, c = boot(t, "h1", net, "c")
    pa, a = boot(t, "h1", net, "a")
    # The same attack from a port without port security shows the checks
    # below can fail.
    po = t.api.port(net["id"], name="o", port_security_enabled=False, security_groups=[])
    o = t.instance("h1", po, "o")
    o.static()
    t.wait_active(po["id"])
    # c knows b (IPv4 and IPv6).
    assert c.ping(ip4(pb)) and c.ping(ip6(pb))
    assert neighbour_mac(c, ip4(pb)) == pb["mac_address"]
    assert neighbour_mac(c, ip6(pb)) == pb["mac_address"]

    for attacker, port, heard in ((a, pa, False), (o, po, True)):
        # Past the neighbour entries' locktime (1 s), so an update would be taken.
        time.sleep(1.2)
        # Gratuitous ARP claiming b's IPv4 address (arping sends from an
        # address the interface has).
        attacker.ip("addr", "add", f"{ip4(pb)}/32", "dev", "eth0")
        nsx(attacker.ns, "arping", "-U", "-c", "2", "-I", "eth0", ip4(pb), check=False)
        attacker.ip("addr", "del", f"{ip4(pb)}/32", "dev", "eth0")
        # Unsolicited neighbour advertisement claiming b's IPv6 address.
        nsx(attacker.ns, "python3", "-c", NA_SENDER, ip6(pb), port["mac_address"])
        time.sleep(0.5)
        v4, v6 = neighbour_mac(c, ip4(pb)), neighbour_mac(c, ip6(pb))
        if heard:
            assert (v4, v6) == (port["mac_address"], port["mac_address"])
        else:
            assert (v4, v6) == (pb["mac_address"], pb["mac_address"])
