"""The metadata service at 169.254.169.254, read by cloud-init's own
OpenStack datasource code (Debian's package, unpacked by
scripts/setup-cloud-init) and by a plain HTTP client, from instances on
isolated networks (the DHCP namespace answers; DHCP hands out the host
route) and on routed ones (the router namespace answers), single-host and
multi-host; the proxy backend against a stand-in for Nova's metadata API;
and what an instance may not learn: another instance's metadata."""
from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

from conftest import CLIENTS, REPO, Proc, nsx, wait_until

MD = "http://169.254.169.254"
CLOUD_INIT = Path(os.environ.get("NEUTRINO_CLOUD_INIT", REPO / ".cache" / "cloud-init"))
CLOUD_INIT_PY = CLOUD_INIT / "usr" / "lib" / "python3" / "dist-packages"
USER_DATA = "#cloud-config\nhostname: from-user-data\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyForTheMetadataTests test@neutrino"


def need_cloud_init():
    if not (CLOUD_INIT_PY / "cloudinit").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"cloud-init is not unpacked at {CLOUD_INIT} (scripts/setup-cloud-init)")
        pytest.skip(f"cloud-init is not unpacked at {CLOUD_INIT}: run scripts/setup-cloud-init")


def get(vm, path: str, method: str = "GET", body: int = 0, source: str | None = None,
        base: str = MD) -> tuple[int, str]:
    args = [sys.executable, str(CLIENTS / "http_get.py"), base + path, method, str(body)]
    if source:
        args.append(source)
    out = nsx(vm.ns, *args, timeout=30).stdout
    status, _, text = out.partition("\n")
    return int(status), text


def cloud_init(vm) -> dict:
    """What cloud-init's OpenStack datasource reads from inside the instance."""
    env = {**os.environ, "PYTHONPATH": str(CLOUD_INIT_PY)}
    r = nsx(vm.ns, sys.executable, str(CLIENTS / "cloud_init_read.py"), MD, env=env, timeout=120)
    return json.loads(r.stdout.strip().splitlines()[-1])


def instance_metadata(api, port: dict, name: str):
    api.put(f"/v2.0/instance-metadata/{port['device_id']}", {"instance_metadata": {
        "project_id": port["project_id"],
        "name": name,
        "availability_zone": "zone-a",
        "user_data": base64.b64encode(USER_DATA.encode()).decode(),
        "public_keys": {"mykey": KEY},
    }})


def boot(t, host: str, net: dict, name: str, **attrs):
    device = f"d0d0d0d0-0000-4000-8000-{abs(hash(name)) % 10**12:012d}"
    port = t.api.port(net["id"], name=name, device_id=device, device_owner="compute:nova", **attrs)
    return port, t.instance(host, port, name)


def assert_cloud_init_configures(found: dict, port: dict, net: dict, name: str,
                                 routes: list[dict], dns: list[str]):
    assert found["found"], found
    assert found["instance_id"] == port["device_id"]
    assert found["public_keys"] == [KEY]
    assert found["userdata"] == USER_DATA
    assert found["availability_zone"] == "zone-a"
    cfg = found["network_config"]["config"]
    phys = [c for c in cfg if c["type"] == "physical"]
    assert len(phys) == 1, cfg
    nic = phys[0]
    assert (nic["name"], nic["mac_address"], nic["mtu"]) == ("eth0", port["mac_address"], net["mtu"])
    ip = port["fixed_ips"][0]["ip_address"]
    assert nic["subnets"] == [{"type": "static", "address": ip, "netmask": "255.255.255.0",
                               "ipv4": True, "routes": routes}] or \
        [{k: v for k, v in s.items() if k != "dns_nameservers"} for s in nic["subnets"]] == \
        [{"type": "static", "address": ip, "netmask": "255.255.255.0", "ipv4": True, "routes": routes}], nic
    assert [c["address"] for c in cfg if c["type"] == "nameserver"] == dns


MODES = {
    # The network node (h2) serves DHCP and metadata for every instance.
    "single-host": {"h1": "off", "h2": "all"},
    # Every host serves its own instances.
    "multi-host": {"h1": "local", "h2": "local"},
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_cloud_init_configures_an_instance_on_an_isolated_network(topology, mode):
    need_cloud_init()
    t = topology()
    for h, dhcp in MODES[mode].items():
        t.add_host(h, dhcp_mode=dhcp)
    api = t.api
    net = api.network("iso")
    api.subnet(net["id"], "198.51.100.0/24")
    vms = []
    for host, name in (("h1", "vm1"), ("h2", "vm2")):
        port, vm = boot(t, host, net, name)
        instance_metadata(api, port, name)
        vms.append((host, port, vm))
    for host, port, vm in vms:
        lease = vm.dhcp()
        server = t.dhcp_server(net["id"], host if mode == "multi-host" else "h2")
        dhcp_ip = server["fixed_ips"][0]["ip_address"]
        # Option 121: the way to the metadata service is the DHCP port.
        assert f"169.254.169.254/32 {dhcp_ip}" in lease["staticroutes"], lease
        found = cloud_init(vm)
        assert found["metadata_address"] == MD
        # Static, with the metadata route DHCP gave (the port's own host's
        # DHCP port): a configuration rendered from it keeps reaching us.
        assert_cloud_init_configures(
            found, port, net, port["name"],
            routes=[{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "198.51.100.1"},
                    {"network": "169.254.169.254", "netmask": "255.255.255.255", "gateway": dhcp_ip}],
            dns=[])
        assert found["ec2"]["instance-id"] == port["device_id"]
        assert found["ec2"]["local-ipv4"] == port["fixed_ips"][0]["ip_address"]
    relayed = {h: t.hosts[h].metric("neutrino_agent_metadata_relayed_total") for h in MODES[mode]}
    if mode == "multi-host":
        # Each compute host answered its own instance.
        assert relayed["h1"] > 0 and relayed["h2"] > 0, relayed
    else:
        assert relayed["h1"] == 0 and relayed["h2"] > 0, relayed
    for h in MODES[mode]:
        assert not t.hosts[h].logged("cannot converge"), t.hosts[h].logged("cannot converge")


ROUTED = {
    "single-host": {"h1": "off", "h2": "off", "h3": "all"},
    "multi-host": {"h1": "local", "h2": "local"},
}


@pytest.mark.parametrize("mode", sorted(ROUTED))
def test_a_router_answers_its_networks_and_public_ipv4_follows_the_floating_ip(topology, mode):
    need_cloud_init()
    t = topology()
    for name, l3 in ROUTED[mode].items():
        t.add_host(name, l3=l3)
    api = t.api
    public = api.network("public", **{"router:external": True, "provider:network_type": "flat",
                                      "provider:physical_network": "physnet1"})
    api.subnet(public["id"], "203.0.113.0/24", gateway_ip="203.0.113.1", enable_dhcp=False,
               allocation_pools=[{"start": "203.0.113.10", "end": "203.0.113.99"}])
    blue = api.network("blue")
    sub = api.subnet(blue["id"], "10.10.1.0/24", enable_dhcp=False, dns_nameservers=["10.10.1.53"])
    router = api.post("/v2.0/routers", {"router": {
        "name": "r1", "external_gateway_info": {"network_id": public["id"]}}})["router"]
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    vms = []
    for host, name in (("h1", "vm1"), ("h2", "vm2")):
        port, vm = boot(t, host, blue, name)
        instance_metadata(api, port, name)
        vm.static(gateway="10.10.1.1")
        t.wait_active(port["id"])
        vms.append((port, vm))
    (p1, vm1), (p2, vm2) = vms
    wait_until("metadata through the router", lambda: get(vm1, "/openstack")[0] == 200)
    found = cloud_init(vm1)
    assert_cloud_init_configures(
        found, p1, blue, "vm1",
        routes=[{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.10.1.1"}],
        dns=["10.10.1.53"])
    # The EC2 tree with a plain client; public-ipv4 follows the floating IP.
    assert get(vm1, "/latest/meta-data/instance-id") == (200, p1["device_id"])
    assert get(vm1, "/latest/meta-data/local-ipv4") == (200, p1["fixed_ips"][0]["ip_address"])
    assert get(vm1, "/latest/meta-data/public-ipv4") == (200, "")
    fip = api.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public["id"], "port_id": p1["id"]}})["floatingip"]
    address = fip["floating_ip_address"]
    assert get(vm1, "/latest/meta-data/public-ipv4") == (200, address)
    api.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": p2["id"]}})
    assert get(vm1, "/latest/meta-data/public-ipv4") == (200, "")
    wait_until("vm2 reaches its router", lambda: get(vm2, "/openstack")[0] == 200)
    assert get(vm2, "/latest/meta-data/public-ipv4") == (200, address)
    assert get(vm2, "/latest/meta-data/instance-id") == (200, p2["device_id"])
    # The listener's port is not reachable but through the redirect.
    assert get(vm1, "/openstack", base="http://10.10.1.1:9697")[0] == 0


NOVA_SECRET = "nova-and-neutrino-share-this"


def test_proxy_mode_signs_requests_as_nova_checks_them(topology):
    t = topology(server_extra=f"""
[metadata]
backend = "proxy"
nova_metadata_url = "http://127.0.0.1:18775"
metadata_proxy_shared_secret = "{NOVA_SECRET}"
nova_timeout_secs = 5
""")
    t.add_host("h1", dhcp_mode="all")
    api = t.api
    net = api.network("iso")
    api.subnet(net["id"], "198.51.100.0/24")
    port, vm = boot(t, "h1", net, "vm1")
    vm.dhcp()

    def nova(secret: str) -> Proc:
        p = Proc(["ip", "netns", "exec", t.fabric, sys.executable,
                  str(CLIENTS / "nova_metadata_standin.py"), "127.0.0.1", "18775", secret,
                  json.dumps({port["device_id"]: port["project_id"]})],
                 t.dir / f"nova-{len(t.procs)}.log")
        t.procs.append(p)
        wait_until("the Nova stand-in", lambda: "listening" in p.tail())
        return p

    # Nova not there yet: the instance is told to come back, the agent goes on.
    status, body = get(vm, "/openstack/latest/meta_data.json")
    assert status == 503 and "temporarily unavailable" in body, (status, body)
    standin = nova(NOVA_SECRET)
    status, body = get(vm, "/openstack/latest/meta_data.json?x=1")
    assert status == 200, body
    seen = json.loads(body)
    assert seen["uuid"] == port["device_id"]
    assert seen["headers"]["X-Forwarded-For"] == port["fixed_ips"][0]["ip_address"]
    assert seen["headers"]["X-Tenant-ID"] == port["project_id"]
    assert seen["query"] == "x=1"
    # Nova's answer and status pass through: its 404 stays a 404.
    assert get(vm, "/openstack/latest/nosuch")[0] == 404
    # The secret changed on Nova's side only: Nova refuses, the instance sees it.
    standin.stop()
    nova("another-secret")
    status, body = get(vm, "/openstack/latest/meta_data.json")
    assert status == 403 and "Invalid proxy request signature" in body, (status, body)
    assert t.hosts["h1"].converged()


def test_an_instance_gets_only_its_own_metadata(topology):
    t = topology()
    t.add_host("h1", dhcp_mode="all", firewall="enabled = true")
    api = t.api
    # Two networks with the same CIDR, an instance at the same address on each.
    nets, vms = [], []
    for n in ("red", "green"):
        net = api.network(n)
        sub = api.subnet(net["id"], "198.51.100.0/24")
        port, vm = boot(t, "h1", net, f"{n}1",
                        fixed_ips=[{"subnet_id": sub["id"], "ip_address": "198.51.100.50"}])
        api.put(f"/v2.0/instance-metadata/{port['device_id']}",
                {"instance_metadata": {"name": n, "project_id": port["project_id"]}})
        vm.dhcp()
        nets.append((net, sub))
        vms.append((port, vm))
    for port, vm in vms:
        assert get(vm, "/latest/meta-data/instance-id") == (200, port["device_id"])
    # A port on each network at .70, on no wire: an address some port holds.
    ghosts = []
    for net, sub in nets:
        ghosts.append(api.port(net["id"], device_id=f"ghost-{net['name']}", device_owner="compute:nova",
                               fixed_ips=[{"subnet_id": sub["id"], "ip_address": "198.51.100.70"}]))
    # A neighbour on red at .60: with port security it cannot ask as .70.
    red, red_sub = nets[0]
    spy_port, spy = boot(t, "h1", red, "spy",
                         fixed_ips=[{"subnet_id": red_sub["id"], "ip_address": "198.51.100.60"}])
    spy.dhcp()
    assert get(spy, "/latest/meta-data/instance-id") == (200, spy_port["device_id"])
    spy.ip("addr", "add", "198.51.100.70/32", "dev", "eth0")
    assert get(spy, "/latest/meta-data/instance-id", source="198.51.100.70")[0] == 0
    # Without port security it may send as .70, and is told what red's .70
    # would be, never green's.
    api.update_port(spy_port["id"], security_groups=[], port_security_enabled=False)
    wait_until("spoofing allowed", lambda: get(
        spy, "/latest/meta-data/instance-id", source="198.51.100.70")[0] != 0)
    assert get(spy, "/latest/meta-data/instance-id", source="198.51.100.70") == (200, "ghost-red")
    spy.ip("addr", "add", "198.51.100.99/32", "dev", "eth0")
    before = t.hosts["h1"].metric("neutrino_agent_metadata_relayed_total")
    status, body = get(spy, "/latest/meta-data/instance-id", source="198.51.100.99")
    assert status == 404 and "not found on network" in body, (status, body)
    assert t.hosts["h1"].metric("neutrino_agent_metadata_relayed_total") == before + 1


def test_bad_metadata_requests_get_clear_answers(topology):
    t = topology()
    t.add_host("h1", dhcp_mode="all")
    api = t.api
    net = api.network("iso")
    api.subnet(net["id"], "198.51.100.0/24")
    port, vm = boot(t, "h1", net, "vm1")
    vm.dhcp()
    assert get(vm, "/openstack/latest/meta_data.json")[0] == 200
    status, versions = get(vm, "/")
    assert status == 200 and versions.splitlines()[-1] == "latest", versions
    assert get(vm, "/openstack/../../etc/passwd")[0] == 400
    assert get(vm, "/openstack/%2e%2e/latest")[0] == 400
    assert get(vm, "/openstack/1999-01-01/meta_data.json")[0] == 404
    assert get(vm, "/openstack/latest/user_data")[0] == 404      # none set
    assert get(vm, "/latest/meta-data/" + "a" * 3000)[0] == 400
    assert get(vm, "/openstack/latest/password", method="POST", body=100_000)[0] == 413
    assert get(vm, "/openstack/latest", method="DELETE")[0] == 405
    # A huge user data is refused by the API, whole.
    too_big = base64.b64encode(b"x" * 70_000).decode()
    code, body = api.call("PUT", f"/v2.0/instance-metadata/{port['device_id']}",
                          {"instance_metadata": {"user_data": too_big}})
    assert code == 400 and "exceed the limit" in json.dumps(body), body
    assert api.call("GET", f"/v2.0/instance-metadata/{port['device_id']}")[0] == 404
    assert t.hosts["h1"].metric("neutrino_agent_metadata_refused_total") >= 2
    assert t.hosts["h1"].converged()
