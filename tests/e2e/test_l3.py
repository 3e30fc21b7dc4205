"""Routers, SNAT and floating IPs with real traffic. The external network is
the flat provider network (physnet1 → each host's eth1 → the fabric's
provider bridge); the external host is a namespace on that bridge,
203.0.113.1, the external subnet's gateway. Its TCP listener answers with the
source address it sees, so the tests read what NAT did."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import connect, listen, nsx, wait_until

EXT_HOST = "203.0.113.1"

MODES = {
    # single-host: h3 is the network node and runs every router.
    "single-host": {"h1": "off", "h2": "off", "h3": "all"},
    # multi-host: every compute host runs its own copy of its routers.
    "multi-host": {"h1": "local", "h2": "local"},
}


def l3_topology(topology, mode: str):
    t = topology()
    for name, l3 in MODES[mode].items():
        t.add_host(name, l3=l3)
    ext = t.external_host()
    listen(t, ext, "ext", 8080)
    api = t.api
    public = api.network("public", **{"router:external": True, "provider:network_type": "flat",
                                      "provider:physical_network": "physnet1"})
    api.subnet(public["id"], "203.0.113.0/24", gateway_ip=EXT_HOST, enable_dhcp=False,
               allocation_pools=[{"start": "203.0.113.10", "end": "203.0.113.99"}])
    blue = api.network("blue")
    blue_sub = api.subnet(blue["id"], "10.10.1.0/24", enable_dhcp=False)
    router = api.post("/v2.0/routers", {"router": {
        "name": "r1", "external_gateway_info": {"network_id": public["id"]}}})["router"]
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": blue_sub["id"]})
    # Reachable from outside: ICMP and TCP from anywhere.
    open_sg = api.security_group("open")
    api.rule(open_sg["id"], protocol="icmp")
    api.rule(open_sg["id"], protocol="tcp", port_range_min=22, port_range_max=22)
    return t, ext, public, blue, router, open_sg


def boot(t, host, net, name, gateway, groups):
    port = t.api.port(net["id"], name=name, security_groups=groups)
    vm = t.instance(host, port, name)
    vm.static(gateway=gateway)
    t.wait_active(port["id"])
    return port, vm


def fixed(port):
    return port["fixed_ips"][0]["ip_address"]


def ext_ping(ext, addr, count=2) -> bool:
    return nsx(ext, "ping", "-c", str(count), "-W", "1", "-i", "0.2", addr, check=False).returncode == 0


@pytest.mark.parametrize("mode", ["single-host", "multi-host"])
def test_snat_and_floating_ips(topology, mode):
    t, ext, public, blue, router, open_sg = l3_topology(topology, mode)
    default = t.api.default_group()
    pa, a = boot(t, "h1", blue, "a", "10.10.1.1", [default["id"], open_sg["id"]])
    pb, b = boot(t, "h2", blue, "b", "10.10.1.1", [default["id"], open_sg["id"]])
    a.listen(22)
    b.listen(22)
    gw_ip = t.api.get(f"/v2.0/routers/{router['id']}")["router"]["external_gateway_info"][
        "external_fixed_ips"][0]["ip_address"]

    # SNAT: the instance reaches the external host, which sees a router
    # address as the source: the router's gateway (single-host) or this
    # host's gateway for the router (multi-host).
    wait_until("a reaches the external host", lambda: a.ping(EXT_HOST), timeout=30)
    seen = connect(a.ns, EXT_HOST, 8080)
    assert seen is not None
    if mode == "single-host":
        assert seen[2] == gw_ip, seen
    else:
        host_gw = [p for p in t.api.get(f"/v2.0/ports?device_id={router['id']}")["ports"]
                   if p["device_owner"] == "network:floatingip_agent_gateway" and p["binding:host_id"] == "h1"]
        assert len(host_gw) == 1, host_gw
        assert seen[2] == fixed(host_gw[0]), seen
        # b's traffic leaves through its own host's copy.
        seen_b = connect(b.ns, EXT_HOST, 8080)
        assert seen_b is not None and seen_b[2] not in (seen[2], fixed(pb)), seen_b

    # A floating IP: reachable from outside (ping and TCP), and the instance's
    # own outbound traffic leaves with it.
    fip = t.api.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public["id"], "port_id": pa["id"]}})["floatingip"]
    addr = fip["floating_ip_address"]
    assert fip["status"] == "ACTIVE" and fip["router_id"] == router["id"]
    wait_until("the floating IP answers", lambda: ext_ping(ext, addr), timeout=30)
    assert connect(ext, addr, 22)[1] == "a"
    assert connect(a.ns, EXT_HOST, 8080)[2] == addr

    # Disassociated: unreachable.
    t.api.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    wait_until("the floating IP stops answering", lambda: not ext_ping(ext, addr), timeout=30)
    assert connect(ext, addr, 22, timeout=1) is None

    # Associated to b (on the other host): reaches b.
    t.api.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": pb["id"]}})
    wait_until("the floating IP reaches b", lambda: (connect(ext, addr, 22, timeout=1) or [None, None])[1] == "b",
               timeout=30)

    if mode == "multi-host":
        # h1 dies (agent and router namespace gone): b's floating IP, NATted
        # on h2, is untouched.
        fip_a = t.api.post("/v2.0/floatingips", {"floatingip": {
            "floating_network_id": public["id"], "port_id": pa["id"]}})["floatingip"]
        wait_until("a's floating IP answers", lambda: ext_ping(ext, fip_a["floating_ip_address"]), timeout=30)
        h1 = t.hosts["h1"]
        h1.stop_agent()
        qrouters = [n.split()[0] for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                         text=True).stdout.splitlines()
                    if n.startswith(f"{h1.ns}-qrouter-")]
        assert qrouters
        for n in qrouters:
            # Processes the agent left in it (an announcement still running)
            # would keep the namespace alive.
            for pid in subprocess.run(["ip", "netns", "pids", n], capture_output=True, text=True).stdout.split():
                os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", n], check=True)
        # The kernel tears a deleted namespace down in the background.
        wait_until("h1's floating IP is gone with h1",
                   lambda: not ext_ping(ext, fip_a["floating_ip_address"], 1), timeout=30)
        assert ext_ping(ext, addr)
        assert connect(ext, addr, 22)[1] == "b"


def test_two_networks_on_one_router_and_extra_routes(topology):
    t, ext, public, blue, router, open_sg = l3_topology(topology, "single-host")
    api = t.api
    default = api.default_group()
    green = api.network("green")
    green_sub = api.subnet(green["id"], "10.10.2.0/24", enable_dhcp=False)
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": green_sub["id"]})
    pa, a = boot(t, "h1", blue, "a", "10.10.1.1", [default["id"]])
    # d forwards for 198.18.0.0/24 (an address on its loopback stands for
    # the network behind it); it may send from there.
    pd = api.port(green["id"], name="d", security_groups=[default["id"]],
                  allowed_address_pairs=[{"ip_address": "198.18.0.0/24"}])
    d = t.instance("h2", pd, "d")
    d.static(gateway="10.10.2.1")
    nsx(d.ns, "ip", "addr", "add", "198.18.0.1/32", "dev", "lo")
    t.wait_active(pd["id"])
    # Routed between the two networks.
    wait_until("a reaches d across the router", lambda: a.ping(fixed(pd)), timeout=30)
    assert d.ping(fixed(pa))
    assert not a.ping("198.18.0.1")
    api.put(f"/v2.0/routers/{router['id']}", {"router": {
        "routes": [{"destination": "198.18.0.0/24", "nexthop": fixed(pd)}]}})
    wait_until("the extra route takes effect", lambda: a.ping("198.18.0.1"), timeout=30)
    api.put(f"/v2.0/routers/{router['id']}", {"router": {"routes": []}})
    wait_until("the extra route is gone", lambda: not a.ping("198.18.0.1"), timeout=30)


def nft_rules(ns: str) -> str:
    """The ruleset without counters (they move with traffic)."""
    return nsx(ns, "nft", "-s", "list", "ruleset").stdout


def test_agent_restart_under_floating_ip_ping_loses_nothing(topology):
    t, ext, public, blue, router, open_sg = l3_topology(topology, "single-host")
    default = t.api.default_group()
    pa, a = boot(t, "h1", blue, "a", "10.10.1.1", [default["id"], open_sg["id"]])
    fip = t.api.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public["id"], "port_id": pa["id"]}})["floatingip"]
    addr = fip["floating_ip_address"]
    wait_until("the floating IP answers", lambda: ext_ping(ext, addr), timeout=30)
    for h in t.hosts.values():
        wait_until(f"{h.name} converged", h.converged)
    qrouter = f"{t.hosts['h3'].ns}-qrouter-{router['id']}"
    spaces = {"h1": t.hosts["h1"].ns, "h3": t.hosts["h3"].ns, "qrouter": qrouter}
    before = {k: nft_rules(ns) for k, ns in spaces.items()}
    assert "fip_dnat" in before["qrouter"] and "port_src4" in before["h1"]
    ping = subprocess.Popen(["ip", "netns", "exec", ext, "ping", "-c", "150", "-i", "0.04", "-W", "1", addr],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1)
    for name in ("h1", "h3"):
        h = t.hosts[name]
        h.stop_agent()
        h.start_agent()
        wait_until(f"{name} first pass", lambda: h.metric("neutrino_agent_reconcile_passes_total") >= 1)
        # It found everything in place: no netlink write, no nft command.
        assert h.metric("neutrino_agent_netlink_ops_total") == 0
        assert h.metric("neutrino_agent_firewall_commands_total") == 0
    out, _ = ping.communicate(timeout=60)
    assert "150 packets transmitted, 150 received" in out, out
    after = {k: nft_rules(ns) for k, ns in spaces.items()}
    for k in before:
        assert after[k] == before[k], f"{k} ruleset changed:\n{before[k]}\n---\n{after[k]}"
