"""Helpers and the core CLI flow shared by the builtin- and keystone-mode tests."""
from __future__ import annotations

import ipaddress

from conftest import Cli, uniq


def ip(s: str):
    return ipaddress.ip_address(s)


def eui64(cidr: str, mac: str) -> str:
    """The SLAAC (modified EUI-64) address of `mac` in the /64 `cidr`."""
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    iid = bytes(b[:3] + [0xFF, 0xFE] + b[3:])
    net = ipaddress.IPv6Network(cidr)
    return str(net.network_address + int.from_bytes(iid, "big"))


def pools(subnet: dict) -> list[tuple]:
    return [(ip(p["start"]), ip(p["end"])) for p in subnet["allocation_pools"]]


def fixed_ips(port: dict) -> dict[str, set]:
    """subnet_id -> {ip_address, ...} (parsed)."""
    out: dict[str, set] = {}
    for f in port["fixed_ips"] or []:
        if f:  # openstacksdk turns "no fixed IPs" into [{}]
            out.setdefault(f["subnet_id"], set()).add(ip(f["ip_address"]))
    return out


def names(rows: list[dict]) -> set[str]:
    return {r["Name"] for r in rows}


def v4_subnet(cli: Cli, network: str, name: str, cidr="10.0.0.0/24",
              pool=("10.0.0.10", "10.0.0.100")) -> dict:
    return cli.json("subnet", "create", "--network", network, "--subnet-range", cidr,
                    "--allocation-pool", f"start={pool[0]},end={pool[1]}", name)


def v6_slaac_subnet(cli: Cli, network: str, name: str, cidr="2001:db8:1::/64") -> dict:
    return cli.json("subnet", "create", "--network", network, "--ip-version", "6",
                    "--subnet-range", cidr, "--ipv6-ra-mode", "slaac",
                    "--ipv6-address-mode", "slaac", name)


def check_sg_rule_flow(cli: Cli) -> dict:
    """security group create + rule create + rule list; returns the group."""
    sg_name = uniq("sg1")
    sg = cli.json("security", "group", "create", sg_name)
    assert sg["name"] == sg_name
    default_rules = sg.get("rules", sg.get("security_group_rules"))
    assert isinstance(default_rules, list), sg
    # Neutron gives every new group one egress rule per ethertype.
    assert sorted((r["direction"], r["ethertype"]) for r in default_rules) == \
        [("egress", "IPv4"), ("egress", "IPv6")], default_rules

    rule = cli.json("security", "group", "rule", "create", "--protocol", "tcp",
                    "--dst-port", "22", "--remote-ip", "203.0.113.0/24", sg_name)
    assert rule["security_group_id"] == sg["id"]
    assert rule["direction"] == "ingress"
    assert rule["ether_type"] == "IPv4"   # (the CLI's name for Neutron's "ethertype")
    assert rule["protocol"] == "tcp"
    assert (rule["port_range_min"], rule["port_range_max"]) == (22, 22)
    assert rule["remote_ip_prefix"] == "203.0.113.0/24"

    rows = cli.json("security", "group", "rule", "list", sg_name)
    assert len(rows) == 3, rows
    ours = [r for r in rows if r["ID"] == rule["id"]]
    assert len(ours) == 1, rows
    r = ours[0]
    assert r["IP Protocol"] == "tcp"
    assert r["Ethertype"] == "IPv4"
    assert r["IP Range"] == "203.0.113.0/24"
    assert r["Port Range"] == "22:22"
    assert r["Direction"] == "ingress"
    assert sorted(x["Direction"] for x in rows) == ["egress", "egress", "ingress"]
    return sg


def core_flow(cli: Cli, expect_project_id: str | None = None) -> None:
    """network, subnet, port with a fixed IP, security group rule; then clean up."""
    net_name = uniq("core-net")
    net = cli.json("network", "create", net_name)
    assert net["name"] == net_name
    assert net["status"] == "ACTIVE"
    if expect_project_id is not None:
        assert net["project_id"] == expect_project_id

    s4_name = uniq("core-v4")
    s4 = v4_subnet(cli, net_name, s4_name)
    assert s4["network_id"] == net["id"]
    assert s4["cidr"] == "10.0.0.0/24"
    assert s4["gateway_ip"] == "10.0.0.1"
    assert pools(s4) == [(ip("10.0.0.10"), ip("10.0.0.100"))]

    p_name = uniq("core-p1")
    port = cli.json("port", "create", "--network", net_name,
                    "--fixed-ip", f"subnet={s4_name},ip-address=10.0.0.20", p_name)
    assert port["network_id"] == net["id"]
    assert fixed_ips(port) == {s4["id"]: {ip("10.0.0.20")}}, port["fixed_ips"]
    if expect_project_id is not None:
        assert port["project_id"] == expect_project_id

    rows = cli.json("port", "list", "--network", net_name)
    assert p_name in names(rows), rows

    check_sg_rule_flow(cli)

    cli.run("port", "delete", p_name)
    cli.run("subnet", "delete", s4_name)
    cli.run("network", "delete", net_name)
    assert net_name not in names(cli.json("network", "list"))
