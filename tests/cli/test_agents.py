"""`openstack network agent list/show` against agents that reported to the
server over /agent/v1 (the agent protocol; the full agent runs in tests/e2e)."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from conftest import REFERENCE_URL, uniq


def report(server, host: str, mode: str):
    secret = (server.data_dir / "agent-secret").read_text().strip()
    body = {"host": host, "tunnel_ip": "192.0.2.7", "dhcp_mode": mode, "dhcp_driver": "native",
            "started_at": int(time.time())}
    req = urllib.request.Request(server.url + "/agent/v1/report", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json",
                                          "authorization": f"Bearer {secret}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


@pytest.mark.skipif(bool(REFERENCE_URL), reason="reference run: Neutrino-only test")
def test_agent_list_and_show(builtin_server, admin):
    host = uniq("compute")
    report(builtin_server, host, "local")
    agents = admin.json("network", "agent", "list", "--host", host)
    assert sorted(a["Agent Type"] for a in agents) == ["DHCP agent", "Linux bridge agent"]
    assert all(a["Alive"] is True or a["Alive"] == ":-)" for a in agents), agents
    l2 = next(a for a in agents if a["Agent Type"] == "Linux bridge agent")
    shown = admin.json("network", "agent", "show", l2["ID"])
    assert shown["host"] == host
    # The CLI shows `configuration` (formatted as a dict) for `configurations`.
    conf = shown.get("configuration") or shown.get("configurations")
    assert conf["tunneling_ip"] == "192.0.2.7", shown
