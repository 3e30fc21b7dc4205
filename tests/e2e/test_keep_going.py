"""One stuck network does not hold back a host: a foreign vxlan device in
the host's namespace holds the VNI of one network, so the agent cannot
create that network's own vxlan device. Every other network, the router and
every port on that host still converge (instances get their DHCP leases,
ports turn ACTIVE), the stuck network is named in the agent's `/status`,
`neutrino agent status` and metrics, and it converges by itself once the
foreign device is gone (its retries back off, at most 30 s apart)."""
from __future__ import annotations

import json

from conftest import BIN, nsx, sh, wait_until


def test_a_stuck_network_does_not_hold_back_the_rest_of_the_host(topology):
    t = topology()
    # The network node of a single-host setup: DHCP and routers all here.
    h1 = t.add_host("h1", dhcp_mode="all", l3="all", start=False)
    api = t.api
    stuck = api.network("stuck")
    api.subnet(stuck["id"], "203.0.113.0/24")
    blue = api.network("blue")
    blue_sub = api.subnet(blue["id"], "198.51.100.0/25")
    green = api.network("green")
    api.subnet(green["id"], "198.51.100.128/25")
    vni = stuck["provider:segmentation_id"]
    assert stuck["provider:network_type"] == "vxlan" and vni

    # Not the agent's: a vxlan device holding the stuck network's VNI.
    foreign = "fvx0"
    nsx(h1.ns, "ip", "link", "add", foreign, "type", "vxlan", "id", str(vni), "dstport", "4789",
        "local", h1.tunnel_ip, "nolearning")
    h1.start_agent()

    router = api.post("/v2.0/routers", {"router": {"name": "r1"}})["router"]
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": blue_sub["id"]})
    vm_blue = t.instance("h1", api.port(blue["id"], name="b1"), "b1")
    vm_green = t.instance("h1", api.port(green["id"], name="g1"), "g1")
    vm_stuck = t.instance("h1", api.port(stuck["id"], name="s1"), "s1")

    # Every port on the host turns ACTIVE and reports, the stuck network's too
    # (its tap is on its bridge; only the uplink is missing).
    for vm in (vm_blue, vm_green, vm_stuck):
        t.wait_active(vm.port["id"])
    # The other networks serve DHCP, and blue routes through the router.
    lease = vm_blue.dhcp()
    assert lease["ip"] == vm_blue.port["fixed_ips"][0]["ip_address"]
    assert lease["router"] == blue_sub["gateway_ip"]
    assert vm_green.dhcp()["ip"] == vm_green.port["fixed_ips"][0]["ip_address"]
    qrouter = f"{h1.ns}-qrouter-{router['id']}"
    wait_until("the router's leg", lambda: blue_sub["gateway_ip"] in nsx(qrouter, "ip", "addr").stdout)
    assert vm_blue.ping(blue_sub["gateway_ip"])

    # The stuck network is named, with its message and age; nothing else is.
    def only_the_stuck_network():
        problems = (h1.status() or {}).get("problems") or []
        named = [(p["kind"], p["id"]) for p in problems] == [("network", stuck["id"])]
        return problems if named else None
    problems = wait_until("only the stuck network in /status", only_the_stuck_network)
    assert f"vxlan-{vni}" in problems[0]["message"], problems
    assert problems[0]["age_secs"] >= 0
    assert h1.metric("neutrino_agent_problems", {"kind": "network"}) == 1
    assert h1.metric("neutrino_agent_problems", {"kind": "router"}) == 0
    # (It enters the host's namespace itself: agent.host_netns.)
    out = sh([BIN, "agent", "--config", str(h1.config), "status"]).stdout
    assert "not converged:" in out and f"network {stuck['id']}" in out, out
    # The agent neither touched the foreign device nor created its own.
    links = {l["ifname"]: l for l in json.loads(nsx(h1.ns, "ip", "-j", "link", "show").stdout)}
    assert foreign in links and f"vxlan-{vni}" not in links

    # Once the VNI is free the network converges on its own retry.
    nsx(h1.ns, "ip", "link", "del", foreign)

    def uplinked():
        link = json.loads(nsx(h1.ns, "ip", "-j", "link", "show", f"vxlan-{vni}", check=False).stdout or "[{}]")[0]
        return link.get("master", "").startswith("brq")
    wait_until(f"vxlan-{vni} on its bridge", uplinked, timeout=45)
    wait_until("no problems left", h1.converged, timeout=15)
