"""Server contract the other CLI tests rely on: versions document, first-start
clouds.yaml, clean SIGTERM."""
from __future__ import annotations

import json

import pytest

from conftest import REFERENCE_URL, NeutrinoServer, builtin_config, free_port, http_get


def test_versions_document(builtin_server):
    status, body = http_get(builtin_server.url + "/")
    assert status == 200
    doc = json.loads(body)
    versions = {v["id"]: v for v in doc["versions"]}
    assert versions["v2.0"]["status"] == "CURRENT", doc


def test_first_start_writes_clouds_yaml(builtin_server, admin_clouds):
    text = admin_clouds.read_text()
    for needle in ("neutrino", f"{builtin_server.url}/v3", "admin", "RegionOne"):
        assert needle in text, text
    # the server tells the operator where it is
    assert str(admin_clouds.name) in builtin_server.log_text()


@pytest.mark.skipif(bool(REFERENCE_URL), reason="reference run: Neutrino-only test")
def test_sigterm_stops_cleanly(neutrino_bin, workroot):
    port = free_port()
    workdir = workroot / "sigterm"
    srv = NeutrinoServer(neutrino_bin, workdir, port, builtin_config(port, workdir / "data", ""))
    srv.start()
    code = srv.stop(timeout=10)
    assert code == 0, f"exit code {code}\n{srv.log_tail()}"
    # restart on the same data dir keeps the admin credentials
    first = (workdir / "data" / "clouds.yaml").read_text()
    srv.start()
    try:
        assert (workdir / "data" / "clouds.yaml").read_text() == first
    finally:
        srv.stop()
