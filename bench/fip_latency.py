#!/usr/bin/env python3
"""Floating IP associate → reachable: the time from the API's 200 to the first
ping reply through the new floating IP, seen from a host on the external
network.

The topology is the L3 end-to-end tests' (tests/e2e/test_l3.py): a fabric
namespace with the server, host namespaces with real agents (release build),
a router with a gateway on the flat external network, an instance with an
open security group. Each round disassociates the floating IP, waits until it
no longer answers, starts `ping -D -i 0.001` at it from the external host,
associates it, and reads the timestamp of the first reply.

    sudo python3 bench/fip_latency.py --mode single-host --rounds 50
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib as B  # sets NEUTRINO_BIN to the release build

e2e = B.e2e
import test_l3  # noqa: E402  (tests/e2e is on the path through benchlib)


def first_reply(proc: subprocess.Popen, deadline: float) -> float | None:
    """Wall-clock time of the first echo reply `ping -D` prints."""
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        if "bytes from" in line and line.startswith("["):
            return float(line[1:line.index("]")])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="single-host", choices=list(test_l3.MODES))
    ap.add_argument("--rounds", type=int, default=50)
    a = ap.parse_args()
    B.check_env()
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-bench-fip-"))
    tmp.chmod(0o755)
    made = []

    def topology(**kw):
        t = e2e.Topology(tmp, **kw)
        made.append(t)
        return t

    try:
        t, ext, public, blue, router, open_sg = test_l3.l3_topology(topology, a.mode)
        default = t.api.default_group()
        pa, vm = test_l3.boot(t, "h1", blue, "a", "10.10.1.1", [default["id"], open_sg["id"]])
        fip = t.api.post("/v2.0/floatingips", {"floatingip": {
            "floating_network_id": public["id"], "port_id": pa["id"]}})["floatingip"]
        addr = fip["floating_ip_address"]
        B.wait("the floating IP answers", lambda: test_l3.ext_ping(ext, addr), 30)
        samples = []
        for _ in range(a.rounds):
            t.api.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
            B.wait("unreachable", lambda: not test_l3.ext_ping(ext, addr, 1), 30)
            ping = subprocess.Popen(["ip", "netns", "exec", ext, "ping", "-D", "-n", "-i", "0.001", "-W", "1",
                                     "-w", "15", addr], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True, bufsize=1)
            time.sleep(0.2)  # pinging (unanswered) before the call
            t.api.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": pa["id"]}})
            answered = time.time()
            seen = first_reply(ping, answered + 15)
            ping.kill()
            ping.wait()
            if seen is None:
                print("no reply within 15 s", file=sys.stderr)
                continue
            samples.append((seen - answered) * 1000)
        rows = [
            ("mode", a.mode),
            ("rounds answered", f"{len(samples)} of {a.rounds}"),
            ("p50", f"{B.pct(samples, 50):.1f} ms"),
            ("p99", f"{B.pct(samples, 99):.1f} ms"),
            ("max", f"{max(samples):.1f} ms" if samples else "-"),
            ("probe interval", "1 ms (the figures include up to 1 ms of probing)"),
        ]
        B.table(rows, "floating IP associate (API 200) → first ping reply through it")
    finally:
        for t in made:
            t.teardown()


if __name__ == "__main__":
    main()
