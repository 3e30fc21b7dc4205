"""(a) The openstack CLI against Neutrino with builtin identity (admin user from
the clouds.yaml the server writes on first start)."""
from __future__ import annotations

import ipaddress
import re

from conftest import DEFAULT_NETWORK_QUOTA, DEFAULT_PORT_QUOTA, uniq
from flows import check_sg_rule_flow, eui64, fixed_ips, ip, names, pools, v4_subnet, \
    v6_slaac_subnet

UUID_RE = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")


def test_network_create_list_show_set_delete(admin):
    name = uniq("net")
    net = admin.json("network", "create", "--description", "first", name)
    assert UUID_RE.match(net["id"]), net["id"]
    assert net["name"] == name
    assert net["description"] == "first"
    assert net["status"] == "ACTIVE"
    assert net["admin_state_up"] is True
    assert net["shared"] is False
    assert net["router:external"] is False
    assert net["subnets"] == []
    assert net["project_id"]

    listed = admin.json("network", "list")
    assert {"ID": net["id"], "Name": name} in [{"ID": r["ID"], "Name": r["Name"]} for r in listed]

    shown = admin.json("network", "show", name)
    assert shown["id"] == net["id"]
    assert shown["description"] == "first"

    new_name = uniq("net-renamed")
    admin.run("network", "set", "--name", new_name, "--description", "second", name)
    shown = admin.json("network", "show", net["id"])
    assert (shown["name"], shown["description"]) == (new_name, "second")
    assert name not in names(admin.json("network", "list"))

    admin.run("network", "delete", new_name)
    gone = admin.fail("network", "show", net["id"])
    assert net["id"] in gone.stderr
    assert net["id"] not in {r["ID"] for r in admin.json("network", "list")}


def test_subnet_ipv4_with_pool_dns_and_host_route(admin):
    net_name = uniq("net-v4")
    net = admin.json("network", "create", net_name)
    sub_name = uniq("subnet-v4")
    sub = admin.json(
        "subnet", "create", "--network", net_name, "--subnet-range", "10.0.0.0/24",
        "--allocation-pool", "start=10.0.0.10,end=10.0.0.100",
        "--dns-nameserver", "192.0.2.53",
        "--host-route", "destination=198.51.100.0/24,gateway=10.0.0.254", sub_name)
    assert sub["name"] == sub_name
    assert sub["network_id"] == net["id"]
    assert sub["ip_version"] == 4
    assert sub["cidr"] == "10.0.0.0/24"
    assert sub["gateway_ip"] == "10.0.0.1"
    assert sub["enable_dhcp"] is True
    assert pools(sub) == [(ip("10.0.0.10"), ip("10.0.0.100"))]
    assert sub["dns_nameservers"] == ["192.0.2.53"]
    assert sub["host_routes"] == [{"destination": "198.51.100.0/24", "nexthop": "10.0.0.254"}]

    assert admin.json("subnet", "show", sub["id"])["host_routes"] == sub["host_routes"]
    assert admin.json("network", "show", net_name)["subnets"] == [sub["id"]]
    listed = admin.json("subnet", "list", "--network", net_name)
    assert [(r["ID"], r["Subnet"]) for r in listed] == [(sub["id"], "10.0.0.0/24")]


def test_subnet_without_gateway(admin):
    net_name = uniq("net-nogw")
    admin.json("network", "create", net_name)
    sub = admin.json("subnet", "create", "--network", net_name,
                     "--subnet-range", "10.0.1.0/24", "--gateway", "none", uniq("subnet-nogw"))
    assert sub["gateway_ip"] is None
    # without a gateway the default pool is the whole host range
    assert pools(sub) == [(ip("10.0.1.1"), ip("10.0.1.254"))]


def test_subnet_ipv6_slaac(admin):
    net_name = uniq("net-v6")
    admin.json("network", "create", net_name)
    sub = v6_slaac_subnet(admin, net_name, uniq("subnet-v6"))
    assert sub["ip_version"] == 6
    assert ipaddress.ip_network(sub["cidr"]) == ipaddress.ip_network("2001:db8:1::/64")
    assert sub["ipv6_ra_mode"] == "slaac"
    assert sub["ipv6_address_mode"] == "slaac"
    # as real Neutron (29) answers: the gateway defaults to the subnet-router anycast
    # address (the prefix itself) and the pool is every other address of the /64
    assert ip(sub["gateway_ip"]) == ip("2001:db8:1::")
    assert pools(sub) == [(ip("2001:db8:1::1"), ip("2001:db8:1:0:ffff:ffff:ffff:ffff"))]


def test_port_fixed_ips_and_slaac(admin):
    net_name = uniq("net-port")
    net = admin.json("network", "create", net_name)
    s4_name, s6_name = uniq("s4"), uniq("s6")
    s4 = v4_subnet(admin, net_name, s4_name)
    s6 = v6_slaac_subnet(admin, net_name, s6_name)

    p1_name = uniq("p1")
    p1 = admin.json("port", "create", "--network", net_name,
                    "--fixed-ip", f"subnet={s4_name},ip-address=10.0.0.20", p1_name)
    assert p1["name"] == p1_name
    assert p1["network_id"] == net["id"]
    assert p1["admin_state_up"] is True
    mac = p1["mac_address"]
    assert re.match(r"^fa:16:3e(:[0-9a-f]{2}){3}$", mac), mac
    # the SLAAC subnet is added implicitly, with the EUI-64 address of the MAC
    assert fixed_ips(p1) == {s4["id"]: {ip("10.0.0.20")},
                             s6["id"]: {ip(eui64("2001:db8:1::/64", mac))}}, p1["fixed_ips"]

    # a port without --fixed-ip gets one address from the pool (and its SLAAC address)
    p2 = admin.json("port", "create", "--network", net_name, uniq("p2"))
    ips2 = fixed_ips(p2)
    assert len(ips2[s4["id"]]) == 1
    (a,) = ips2[s4["id"]]
    assert ip("10.0.0.10") <= a <= ip("10.0.0.100") and a != ip("10.0.0.20")
    assert ips2[s6["id"]] == {ip(eui64("2001:db8:1::/64", p2["mac_address"]))}
    assert p2["mac_address"] != mac

    # port list --network shows this network's ports only
    other_net = uniq("net-other")
    admin.json("network", "create", other_net)
    other = admin.json("port", "create", "--network", other_net, uniq("p-other"))
    listed = admin.json("port", "list", "--network", net_name)
    assert {r["ID"] for r in listed} == {p1["id"], p2["id"]}
    row = next(r for r in listed if r["ID"] == p1["id"])
    assert row["Name"] == p1_name and row["MAC Address"] == mac
    assert other["id"] not in {r["ID"] for r in listed}

    # --no-fixed-ip drops the fixed IPv4 address (Neutron keeps the SLAAC one)
    admin.run("port", "set", "--no-fixed-ip", p1_name)
    shown = admin.json("port", "show", p1_name)
    assert s4["id"] not in fixed_ips(shown), shown["fixed_ips"]
    admin.run("port", "set", "--fixed-ip", f"subnet={s4_name},ip-address=10.0.0.21", p1_name)
    shown = admin.json("port", "show", p1_name)
    assert fixed_ips(shown)[s4["id"]] == {ip("10.0.0.21")}, shown["fixed_ips"]
    # 10.0.0.20 was released: another port can take it now
    p3 = admin.json("port", "create", "--network", net_name,
                    "--fixed-ip", f"subnet={s4_name},ip-address=10.0.0.20", uniq("p3"))
    assert fixed_ips(p3)[s4["id"]] == {ip("10.0.0.20")}


def test_security_group_and_rule(admin):
    sg = check_sg_rule_flow(admin)
    listed = admin.json("security", "group", "list")
    assert sg["id"] in {r["ID"] for r in listed}


def test_quota_show_and_set(admin):
    def limits(*project):
        rows = admin.json("quota", "show", "--network", *project)
        return {r["Resource"]: r["Limit"] for r in rows}

    mine = limits()
    assert mine["networks"] == DEFAULT_NETWORK_QUOTA, mine   # from [quotas] in the config
    assert mine["ports"] == DEFAULT_PORT_QUOTA, mine

    before = limits("quota-test")
    assert before["networks"] == DEFAULT_NETWORK_QUOTA, before
    admin.run("quota", "set", "--networks", "7", "quota-test")
    after = limits("quota-test")
    assert after["networks"] == 7, after
    assert after["ports"] == before["ports"]
    assert limits()["networks"] == DEFAULT_NETWORK_QUOTA  # other projects unchanged

    # plain `quota show` (all services in the catalog) works too
    rows = admin.json("quota", "show", "quota-test")
    assert {r["Resource"]: r["Limit"] for r in rows}["networks"] == 7


def test_network_tags_filters(admin):
    blue, red, plain = uniq("net-blue"), uniq("net-red"), uniq("net-plain")
    tag_b, tag_r = uniq("blue"), uniq("red")   # unique: the server is shared by all tests
    for n in (blue, red, plain):
        admin.json("network", "create", n)
    admin.run("network", "set", "--tag", tag_b, blue)
    admin.run("network", "set", "--tag", tag_r, red)
    assert admin.json("network", "show", blue)["tags"] == [tag_b]

    assert names(admin.json("network", "list", "--tags", tag_b)) == {blue}
    assert names(admin.json("network", "list", "--any-tags", f"{tag_b},{tag_r}")) == {blue, red}
    assert names(admin.json("network", "list", "--tags", f"{tag_b},{tag_r}")) == set()
    not_blue = names(admin.json("network", "list", "--not-tags", tag_b))
    assert blue not in not_blue and {red, plain} <= not_blue

    admin.run("network", "unset", "--tag", tag_b, blue)
    assert admin.json("network", "show", blue)["tags"] == []
    assert names(admin.json("network", "list", "--tags", tag_b)) == set()
