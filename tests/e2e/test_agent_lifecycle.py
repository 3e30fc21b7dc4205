"""The agent's life: ports deleted and re-used, agent and server restarts,
a feed gap, a dead agent, hostile DHCP packets."""
from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from conftest import nsx, wait_until
from test_l2_dhcp import three_hosts, vxlan_net


def strip_timers(v):
    """Bridge timers tick by themselves, and a bridge's carrier follows its
    ports' forwarding state on its own; everything else must stay."""
    if isinstance(v, dict):
        return {k: strip_timers(x) for k, x in v.items() if "timer" not in k and k != "operstate"}
    if isinstance(v, list) and "NO-CARRIER" in v:
        v = [x for x in v if x != "NO-CARRIER"]
    if isinstance(v, list):
        return [strip_timers(x) for x in v]
    return v


def host_state(ns: str) -> dict:
    """What must not change across an agent restart: links, addresses and the
    static forwarding entries (learned ones age on their own)."""
    links = strip_timers(json.loads(nsx(ns, "ip", "-j", "-d", "link", "show").stdout))
    # The address dump repeats each link's flags and operstate: the bridge's
    # carrier is the kernel's there too.
    addrs = strip_timers(json.loads(nsx(ns, "ip", "-j", "addr", "show").stdout))
    for a in addrs:
        # IPv6 link-local addresses are the kernel's (and go through DAD on their own).
        a["addr_info"] = [i for i in a.get("addr_info", []) if i.get("scope") != "link"]
    # Multicast entries are the kernel's: a device's group memberships (a
    # bridge joins its solicited-node group once it has carrier).
    fdb = [e for e in json.loads(nsx(ns, "bridge", "-j", "fdb", "show").stdout)
           if e.get("state") == "permanent" and "master" not in e
           and not int(e["mac"].split(":")[0], 16) & 1]
    return {"links": links, "addrs": addrs, "fdb": sorted(fdb, key=json.dumps)}


def booted_pair(t, net) -> list:
    """Two instances on the network, on h1 and h2, ACTIVE and with their leases."""
    vms = []
    for host, name in (("h1", "i1"), ("h2", "i2")):
        p = t.api.port(net["id"])
        vm = t.instance(host, p, name)
        t.wait_active(p["id"])
        vm.dhcp()
        vms.append(vm)
    return vms


def dhcp_namespaces(t, host) -> list[str]:
    return sorted(n for n in t.all_namespaces() if n.startswith(t.hosts[host].ns + "-qdhcp-"))


@pytest.mark.parametrize("driver", ["native", "dnsmasq"])
def test_deleted_port_loses_dhcp_at_once_and_its_address_is_reusable(topology, driver):
    t = three_hosts(topology, "single-host", driver)
    net, _ = vxlan_net(t)
    p1 = t.api.port(net["id"])
    vm1 = t.instance("h1", p1, "i1")
    t.wait_active(p1["id"])
    ip = vm1.dhcp()["ip"]
    t.api.delete(f"/v2.0/ports/{p1['id']}")
    # The DHCP node drops the reservation as soon as the feed says so.
    wait_until("reservation removed", lambda: t.hosts["h3"].status()["dhcp"]["networks"][net["id"]]["reservations"] == 0)
    assert vm1.dhcp(expect_lease=False).get("ip") is None
    # The address is free at once: a new port (another MAC) gets it and a lease for it.
    p2 = t.api.port(net["id"], fixed_ips=[{"ip_address": ip}])
    assert p2["mac_address"] != p1["mac_address"]
    vm2 = t.instance("h2", p2, "i2")
    t.wait_active(p2["id"])
    assert vm2.dhcp()["ip"] == ip


@pytest.mark.parametrize("driver", ["native", "dnsmasq"])
def test_agent_restart_under_ping_loses_nothing_and_changes_nothing(topology, driver):
    t = three_hosts(topology, "single-host", driver)
    net, _ = vxlan_net(t)
    vms = booted_pair(t, net)
    target = vms[1].port["fixed_ips"][0]["ip_address"]
    for h in t.hosts.values():
        wait_until(f"{h.name} converged", h.converged)
    before = {h: host_state(t.hosts[h].ns) for h in ("h1", "h3")}
    dnsmasq_pid = t.hosts["h3"].dir / "state" / "dhcp" / net["id"] / "pid"
    pid_before = dnsmasq_pid.read_text() if driver == "dnsmasq" else None
    before_dhcp = {h: host_state(n) for h in ("h3",) for n in dhcp_namespaces(t, h)}
    ping = subprocess.Popen(["ip", "netns", "exec", vms[0].ns, "ping", "-c", "150", "-i", "0.04", "-W", "1", target],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1)
    for name in ("h1", "h3"):
        h = t.hosts[name]
        h.stop_agent()
        h.start_agent()
        # The restarted agent adopts what it finds: no netlink write at all.
        wait_until(f"{name} first pass", lambda: h.metric("neutrino_agent_reconcile_passes_total") >= 1)
        assert h.metric("neutrino_agent_netlink_ops_total") == 0
    out, _ = ping.communicate(timeout=60)
    assert "150 packets transmitted, 150 received" in out, out
    after = {h: host_state(t.hosts[h].ns) for h in ("h1", "h3")}
    after_dhcp = {h: host_state(n) for h in ("h3",) for n in dhcp_namespaces(t, h)}
    for h in before:
        for k in before[h]:
            assert after[h][k] == before[h][k], f"{h} {k} changed:\nbefore {json.dumps(before[h][k])}\nafter  {json.dumps(after[h][k])}"
    assert after_dhcp == before_dhcp
    # DHCP still answers after the restart, from the same dnsmasq (adopted, not restarted).
    assert vms[0].dhcp()["ip"] == vms[0].port["fixed_ips"][0]["ip_address"]
    if driver == "dnsmasq":
        assert dnsmasq_pid.read_text() == pid_before
        assert t.hosts["h3"].metric("neutrino_dnsmasq_starts_total") == 0


def test_server_restart_resumes_and_a_feed_gap_resyncs(topology):
    t = three_hosts(topology, "single-host", feed_history=5)
    net, _ = vxlan_net(t)
    p1 = t.api.port(net["id"])
    t.instance("h1", p1, "i1")
    t.wait_active(p1["id"])
    h1 = t.hosts["h1"]
    wait_until("h1 converged", h1.converged)
    vxlan = f"vxlan-{net['provider:segmentation_id']}"

    def remote_macs() -> set[str]:
        fdb = json.loads(nsx(h1.ns, "bridge", "-j", "fdb", "show", "dev", vxlan).stdout)
        return {e["mac"] for e in fdb if e.get("state") == "permanent" and e["mac"] != "00:00:00:00:00:00"}

    # Server restart: the agent resumes from its revision, no snapshot needed.
    snapshots = h1.metric("neutrino_agent_feed_replies_total", {"kind": "snapshot"})
    t.server.stop()
    t.start_server()
    p2 = t.api.port(net["id"], **{"binding:host_id": "h2"})
    wait_until("h1 learns the new remote port", lambda: p2["mac_address"] in remote_macs())
    assert h1.metric("neutrino_agent_feed_replies_total", {"kind": "snapshot"}) == snapshots

    # A gap: h1 sleeps through more changes than the server keeps.
    h1.agent.p.send_signal(signal.SIGSTOP)
    try:
        new = [t.api.port(net["id"], **{"binding:host_id": "h2"}) for _ in range(8)]
    finally:
        h1.agent.p.send_signal(signal.SIGCONT)
    macs = {p["mac_address"] for p in new}
    wait_until("h1 resynced", lambda: macs <= remote_macs())
    assert h1.metric("neutrino_agent_feed_replies_total", {"kind": "snapshot"}) == snapshots + 1


def test_a_silent_agent_shows_dead_and_its_ports_down(topology):
    t = three_hosts(topology, "single-host")
    net, _ = vxlan_net(t)
    p1 = t.api.port(net["id"])
    t.instance("h1", p1, "i1")
    t.wait_active(p1["id"])
    agents = t.api.get("/v2.0/agents?host=h1")["agents"]
    assert [a["alive"] for a in agents] == [True]
    t.hosts["h1"].stop_agent()
    wait_until("port DOWN", lambda: t.api.show_port(p1["id"])["status"] == "DOWN", timeout=30)
    assert [a["alive"] for a in t.api.get("/v2.0/agents?host=h1")["agents"]] == [False]
    t.hosts["h1"].start_agent()
    t.wait_active(p1["id"])


MALFORMED = {
    "malformed_too_short": "b'\\x01\\x01\\x06\\x00'",
    "malformed_bad_cookie": "b'\\x01\\x01\\x06\\x00' + bytes(232) + b'\\x00\\x00\\x00\\x00' + bytes(64)",
    "malformed_truncated_option": "b'\\x01\\x01\\x06\\x00' + bytes(232) + bytes([99,130,83,99]) + bytes([53, 9, 1])",
}


def test_malformed_dhcp_packets_are_dropped_and_counted(topology):
    t = three_hosts(topology, "single-host")
    net, _ = vxlan_net(t)
    p1 = t.api.port(net["id"])
    vm = t.instance("h1", p1, "i1")
    t.wait_active(p1["id"])
    vm.dhcp()
    h3 = t.hosts["h3"]
    for label, payload in MALFORMED.items():
        code = ("import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
                "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1);s.bind(('0.0.0.0',68));"
                f"[s.sendto({payload},('255.255.255.255',67)) for _ in range(3)]")
        nsx(vm.ns, "python3", "-c", code)
        wait_until(f"{label} counted", lambda: h3.metric("neutrino_dhcp_packets_total", {"outcome": label}) >= 3)
    # The server is still answering.
    assert vm.dhcp()["ip"] == p1["fixed_ips"][0]["ip_address"]
    assert t.hosts["h3"].agent.alive()


def test_admin_down_port_is_cut_off_until_it_is_up_again(topology):
    t = three_hosts(topology, "single-host")
    net, _ = vxlan_net(t)
    vms = booted_pair(t, net)
    target = vms[1].port["fixed_ips"][0]["ip_address"]
    assert vms[0].ping(target)
    pid = vms[0].port["id"]
    t.api.call("PUT", f"/v2.0/ports/{pid}", {"port": {"admin_state_up": False}}, expect=200)
    wait_until("port DOWN", lambda: t.api.show_port(pid)["status"] == "DOWN")
    assert not vms[0].ping(target, count=3)
    t.api.call("PUT", f"/v2.0/ports/{pid}", {"port": {"admin_state_up": True}}, expect=200)
    t.wait_active(pid)
    assert vms[0].ping(target)


def test_a_quick_rebind_back_to_the_same_host_ends_active(topology):
    # A migration rolled back: the server sets the port DOWN on each move,
    # and the host that has it wired must say so again.
    t = three_hosts(topology, "single-host")
    net, _ = vxlan_net(t)
    p = t.api.port(net["id"])
    t.instance("h1", p, "i1")
    t.wait_active(p["id"])
    for host in ("h2", "h1"):
        t.api.call("PUT", f"/v2.0/ports/{p['id']}", {"port": {"binding:host_id": host}}, expect=200)
    assert t.api.show_port(p["id"])["binding:host_id"] == "h1"
    t.wait_active(p["id"])
