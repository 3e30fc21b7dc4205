#!/usr/bin/env python3
"""Metadata service throughput: 100 instances reading meta_data.json and
network_data.json at once, builtin backend, against nginx serving the same
two files from disk in the same place (the ceiling: no lookup, no relay).

One server (noauth) and one agent (native DHCP) in the e2e harness's
namespaces (tests/e2e/conftest.py, imported through benchlib). One isolated
/16 network with N ports (no port security); the first is plugged into a
"load" namespace that takes a DHCP lease (and with it the host route to
169.254.169.254 via the DHCP port), and carries the other ports' addresses
too, so the generator (`neutrino-metadata-load`, one keep-alive connection
per source address) looks like N instances. Requests go instance → veth →
bridge → the DHCP namespace's listener → the server over loopback-like
veths → back. The peer is nginx (worker_processes auto) listening on
169.254.169.254:8080 in the same DHCP namespace, serving the JSON the
service itself answered for the first instance.

Run as root from the repository:
    cargo build --release -p neutrino -p neutrino-bench
    .venv/bin/python bench/metadata_load.py [--instances 100] [--duration 10]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402

e2e = B.e2e
LOAD = B.REPO / "target" / "release" / "neutrino-metadata-load"


def run_load(ns: str, target: str, sources: list[str], duration: int, rate: int = 0) -> dict:
    r = e2e.nsx(ns, str(LOAD), "--target", target, "--sources", ",".join(sources),
                "--duration", str(duration), "--rate", str(rate), timeout=duration + 60)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=100)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rates", type=int, nargs="*", default=[5000, 10000],
                    help="offered loads (req/s) measured besides the closed loop")
    args = ap.parse_args()
    B.check_env()
    if not LOAD.exists():
        sys.exit(f"{LOAD} is not built: cargo build --release -p neutrino-bench")
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-mdbench-"))
    tmp.chmod(0o755)
    t = e2e.Topology(tmp)
    nginx = None
    try:
        # The server logs every request at info: measured without that.
        t.server_config.write_text(t.server_config.read_text().replace(
            "[server]\n", '[server]\nlog = "warn"\n'))
        B.server_defaults(t)
        api = t.api
        t.add_host("h1", dhcp_mode="all")
        net = api.network("bench")
        sub = api.subnet(net["id"], "10.50.0.0/16")
        ports = api.post("/v2.0/ports", {"ports": [{
            "network_id": net["id"], "device_id": f"bench-{i:04d}", "device_owner": "compute:nova",
            "port_security_enabled": False,
            "fixed_ips": [{"subnet_id": sub["id"], "ip_address": f"10.50.{1 + i // 250}.{1 + i % 250}"}],
        } for i in range(args.instances)]})["ports"]
        vm = t.instance("h1", ports[0], "load")
        vm.dhcp()
        batch = "".join(f"addr add {p['fixed_ips'][0]['ip_address']}/32 dev eth0\n" for p in ports[1:])
        subprocess.run(["ip", "-n", vm.ns, "-batch", "-"], input=batch, text=True, check=True)
        sources = [p["fixed_ips"][0]["ip_address"] for p in ports]
        # Warm: every instance answered once.
        warm = run_load(vm.ns, "169.254.169.254:80", sources, 1)
        assert int(warm["not_ok"]) == 0, warm
        rates = [0, *args.rates]
        ours = {r: run_load(vm.ns, "169.254.169.254:80", sources, args.duration, r) for r in rates}

        # The peer: the same two files from nginx in the DHCP namespace.
        dhcp_ns = f"{t.hosts['h1'].ns}-qdhcp-{net['id']}"
        root = tmp / "nginx" / "openstack" / "latest"
        root.mkdir(parents=True)
        for name in ("meta_data.json", "network_data.json"):
            r = e2e.nsx(vm.ns, sys.executable, str(e2e.CLIENTS / "http_get.py"),
                        f"http://169.254.169.254/openstack/latest/{name}")
            root.joinpath(name).write_text(r.stdout.partition("\n")[2])
        conf = tmp / "nginx.conf"
        conf.write_text(f"""
worker_processes auto;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    default_type application/json;
    server {{ listen 169.254.169.254:8080; root {tmp}/nginx; }}
}}
""")
        nginx = subprocess.Popen(["ip", "netns", "exec", dhcp_ns, "nginx", "-c", str(conf), "-p", str(tmp)])
        time.sleep(1)
        peer = {r: run_load(vm.ns, "169.254.169.254:8080", sources, args.duration, r) for r in rates}
        rows = [("instances", str(args.instances))]
        for r in rates:
            load = "as fast as answered" if r == 0 else f"offered {r} req/s"
            for name, res in (("neutrino builtin", ours[r]), ("nginx, same files", peer[r])):
                rows.append((f"{load}: {name}",
                             f"{res['req_s']} req/s, p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms, "
                             f"errors {res['errors']}, not 200 {res['not_ok']}, generator CPU {res['cpu_pct']}%"))
        B.table(rows, "metadata: meta_data.json + network_data.json, keep-alive, one connection per instance")
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait(timeout=10)
        t.teardown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
