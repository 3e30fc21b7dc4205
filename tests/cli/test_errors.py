"""(b) Server errors reach the CLI user: non-zero exit and the server's message."""
from __future__ import annotations

from conftest import uniq
from flows import fixed_ips, ip, v4_subnet


def test_duplicate_fixed_ip_is_rejected(admin):
    net_name, sub_name = uniq("net-dup"), uniq("subnet-dup")
    admin.json("network", "create", net_name)
    sub = v4_subnet(admin, net_name, sub_name)
    first = admin.json("port", "create", "--network", net_name,
                       "--fixed-ip", f"subnet={sub_name},ip-address=10.0.0.20", uniq("p-first"))
    assert fixed_ips(first) == {sub["id"]: {ip("10.0.0.20")}}

    second = uniq("p-second")
    proc = admin.fail("port", "create", "--network", net_name,
                      "--fixed-ip", f"subnet={sub_name},ip-address=10.0.0.20", second)
    assert proc.returncode != 0
    assert f"IP address 10.0.0.20 already allocated in subnet {sub['id']}" in proc.stderr, \
        proc.stderr[-3000:]
    # HTTP 409 Conflict, as Neutron answers
    assert "409" in proc.stderr, proc.stderr[-3000:]
    # nothing was created
    ports = admin.json("port", "list", "--network", net_name)
    assert [r["ID"] for r in ports] == [first["id"]]


def test_ip_outside_subnet_is_rejected(admin):
    net_name, sub_name = uniq("net-bad"), uniq("subnet-bad")
    admin.json("network", "create", net_name)
    v4_subnet(admin, net_name, sub_name)
    proc = admin.fail("port", "create", "--network", net_name,
                      "--fixed-ip", f"subnet={sub_name},ip-address=10.9.9.9", uniq("p-bad"))
    assert "400" in proc.stderr, proc.stderr[-3000:]
    assert "10.9.9.9" in proc.stderr, proc.stderr[-3000:]


def test_show_missing_network_fails(admin):
    missing = uniq("no-such-net")
    proc = admin.fail("network", "show", missing)
    assert missing in proc.stderr
