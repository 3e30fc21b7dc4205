"""What the CLI shows for each resource, compared with real Neutron 29.

REFERENCE: the JSON type of every field that `openstack ... show -f json` printed
non-null against real Neutron 29.0.0 (ML2/OVS, keystone auth; captured with
NEUTRINO_CLI_REFERENCE_URL, see conftest.py). CORE fields must come back non-null
with the same type; the others depend on Neutron's deployment (ML2 type drivers,
port binding, DNS, AZ extensions) and are only reported as warnings.
"""
from __future__ import annotations

import re
import warnings

from conftest import uniq

JSON_TYPES = {bool: "bool", int: "int", str: "str", list: "list", dict: "dict", float: "float"}

REFERENCE = {
    "network": {
        "core": {"admin_state_up": "bool", "created_at": "str", "description": "str",
                 "id": "str", "mtu": "int", "name": "str", "port_security_enabled": "bool",
                 "project_id": "str", "revision_number": "int", "router:external": "bool",
                 "shared": "bool", "status": "str", "subnets": "list", "tags": "list",
                 "updated_at": "str"},
        "extra": {"availability_zone_hints": "list", "availability_zones": "list",
                  "is_default": "bool", "provider:network_type": "str",
                  "provider:segmentation_id": "int"},
    },
    "subnet": {
        "core": {"allocation_pools": "list", "cidr": "str", "created_at": "str",
                 "description": "str", "dns_nameservers": "list", "enable_dhcp": "bool",
                 "gateway_ip": "str", "host_routes": "list", "id": "str", "ip_version": "int",
                 "name": "str", "network_id": "str", "project_id": "str",
                 "revision_number": "int", "service_types": "list", "tags": "list",
                 "updated_at": "str"},
        "extra": {"router:external": "bool"},
    },
    "port": {
        "core": {"admin_state_up": "bool", "allowed_address_pairs": "list",
                 "created_at": "str", "description": "str", "device_id": "str",
                 "device_owner": "str", "fixed_ips": "list", "id": "str", "mac_address": "str",
                 "name": "str", "network_id": "str", "port_security_enabled": "bool",
                 "project_id": "str", "revision_number": "int", "security_group_ids": "list",
                 "status": "str", "tags": "list", "updated_at": "str"},
        "extra": {"binding_host_id": "str", "binding_profile": "dict",
                  "binding_vif_details": "dict", "binding_vif_type": "str",
                  "binding_vnic_type": "str", "dns_assignment": "list",
                  "extra_dhcp_opts": "list"},
    },
    "security group": {
        "core": {"created_at": "str", "description": "str", "id": "str", "name": "str",
                 "project_id": "str", "revision_number": "int", "rules": "list",
                 "stateful": "bool", "tags": "list", "updated_at": "str"},
        "extra": {"is_shared": "bool"},
    },
    "security group rule": {
        "core": {"created_at": "str", "description": "str", "direction": "str",
                 "ether_type": "str", "id": "str", "port_range_max": "int",
                 "port_range_min": "int", "project_id": "str", "protocol": "str",
                 "remote_ip_prefix": "str", "revision_number": "int",
                 "security_group_id": "str", "updated_at": "str"},
        "extra": {"belongs_to_default_sg": "bool", "normalized_cidr": "str"},
    },
}

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def type_of(v) -> str:
    return "null" if v is None else JSON_TYPES.get(type(v), type(v).__name__)


def compare(kind: str, shown: dict) -> list[str]:
    problems, notes = [], []
    for level, out in (("core", problems), ("extra", notes)):
        for key, want in REFERENCE[kind][level].items():
            got = type_of(shown.get(key))
            if got != want:
                out.append(f"{kind}.{key}: Neutron shows a {want}, Neutrino {got} "
                           f"({shown.get(key)!r})")
    for ts in ("created_at", "updated_at"):
        v = shown.get(ts)
        if isinstance(v, str) and not TIMESTAMP.match(v):
            problems.append(f"{kind}.{ts}: {v!r} is not like Neutron's 2026-11-22T14:08:24Z")
    if notes:
        warnings.warn("differences in deployment-specific fields (not failures):\n  "
                      + "\n  ".join(notes))
    return problems


def test_show_output_matches_neutron(admin):
    net_name, sub_name, sg_name = uniq("par-net"), uniq("par-sub"), uniq("par-sg")
    net = admin.json("network", "create", net_name)
    sub = admin.json("subnet", "create", "--network", net_name,
                     "--subnet-range", "10.5.0.0/24", sub_name)
    port = admin.json("port", "create", "--network", net_name, uniq("par-port"))
    sg = admin.json("security", "group", "create", sg_name)
    rule = admin.json("security", "group", "rule", "create", "--protocol", "tcp",
                      "--dst-port", "80", sg_name)

    problems = []
    for kind, created, show in (("network", net, ("network", "show")),
                                ("subnet", sub, ("subnet", "show")),
                                ("port", port, ("port", "show")),
                                ("security group", sg, ("security", "group", "show")),
                                ("security group rule", rule,
                                 ("security", "group", "rule", "show"))):
        problems += compare(kind, created)
        shown = admin.json(*show, created["id"])
        problems += [p + " [show]" for p in compare(kind, shown)]
    assert not problems, "\n".join(problems)


def test_port_defaults_match_neutron(admin):
    net_name = uniq("def-net")
    admin.json("network", "create", net_name)
    admin.json("subnet", "create", "--network", net_name, "--subnet-range", "10.6.0.0/24",
               uniq("def-sub"))
    port = admin.json("port", "create", "--network", net_name, uniq("def-port"))
    # an unbound port is DOWN, enabled, with port security and the project's default group
    assert port["status"] == "DOWN"
    assert port["admin_state_up"] is True
    assert port["port_security_enabled"] is True
    assert port["device_owner"] == "" and port["device_id"] == ""
    assert len(port["security_group_ids"]) == 1, port["security_group_ids"]
    sg = admin.json("security", "group", "show", port["security_group_ids"][0])
    assert sg["name"] == "default"
    assert sg["project_id"] == port["project_id"]
    # the default group: egress anywhere, ingress from members of the group itself
    rules = sorted((r["direction"], r["ethertype"], r.get("remote_group_id") == sg["id"])
                   for r in sg["rules"])
    assert rules == [("egress", "IPv4", False), ("egress", "IPv6", False),
                     ("ingress", "IPv4", True), ("ingress", "IPv6", True)], sg["rules"]
