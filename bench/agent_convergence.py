#!/usr/bin/env python3
"""Host agent convergence: from a port's 201 to the agent's DHCP OFFER for it.

One server (noauth) and one agent (native DHCP, mode "all") in the e2e
harness's namespaces (tests/e2e/conftest.py, imported). A probe namespace is
plugged into the network's bridge with `neutrino vif plug` and runs a tiny raw
DHCP client: a UDP socket bound to 0.0.0.0:68 on the probe's eth0 with
SO_BROADCAST, sending DISCOVERs (broadcast flag set) for an arbitrary chaddr.

For each of N ports: create it through the API with binding:host_id = the
agent's host, take the time of the 201, then send a DISCOVER for its MAC every
~1 ms until an OFFER for that MAC with the port's address arrives. Prints
p50/p90/p99/max of 201 -> OFFER.

To split the latency, a second long poll of the agent feed (`/agent/v1/feed`,
as a pseudo host "benchwatch" in dhcp mode all, the same view as the agent's)
runs alongside and notes when each port first appears in a reply: 201 -> feed
reply is the wake-up part, feed reply -> OFFER the agent's part (feed apply,
reconcile pass, DHCP table swap). --no-feed-watch turns it off.

Run as root from the repository:
    python3 -m venv /tmp/pyt && /tmp/pyt/bin/pip install pytest   # conftest imports pytest
    cargo build --release -p neutrino
    /tmp/pyt/bin/python bench/agent_convergence.py [--ports 1000] [--network-type vxlan|local]
"""
from __future__ import annotations

import argparse
import json
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402

e2e = B.e2e
HOST = "h1"
MAGIC = b"\x63\x82\x53\x63"
FEED_DELTA = 'neutrino_agent_feed_replies_total{kind="delta"}'
FEED_SNAP = 'neutrino_agent_feed_replies_total{kind="snapshot"}'


def discover(xid: int, mac: bytes) -> bytes:
    # op htype hlen hops xid secs flags(broadcast) ciaddr yiaddr siaddr giaddr chaddr sname file
    hdr = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                      b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, mac + b"\0" * 10, b"", b"")
    opts = MAGIC + bytes([53, 1, 1, 55, 4, 1, 3, 6, 26, 255])
    pkt = hdr + opts
    return pkt + b"\0" * max(0, 300 - len(pkt))


def offer_for(pkt: bytes, xid: int, mac: bytes) -> str | None:
    """yiaddr if pkt is an OFFER for (xid, mac), else None."""
    if len(pkt) < 244 or pkt[0] != 2 or pkt[236:240] != MAGIC:
        return None
    if struct.unpack("!I", pkt[4:8])[0] != xid or pkt[28:34] != mac:
        return None
    i = 240
    while i < len(pkt) and pkt[i] != 255:
        if pkt[i] == 0:
            i += 1
            continue
        code, ln = pkt[i], pkt[i + 1]
        if code == 53:
            return socket.inet_ntoa(pkt[16:20]) if pkt[i + 2] == 2 else None
        i += 2 + ln
    return None


def probe_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("0.0.0.0", 68))
    s.setblocking(False)
    return s


class FeedWatch(threading.Thread):
    """Long-polls the agent feed like an agent in dhcp mode all would, and
    notes when each port id first shows up in a reply (perf_counter time)."""

    def __init__(self, fabric: str, secret: str):
        super().__init__(daemon=True)
        self.fabric, self.secret = fabric, secret
        self.seen: dict[str, float] = {}
        self.stop = False
        self.replies = 0

    def run(self):
        e2e.NsThread._enter(self.fabric)
        since, held, version = 0, set(), 0
        while not self.stop:
            body = json.dumps({"host": "benchwatch", "since": since, "networks": sorted(held),
                               "dhcp_mode": "all", "agents_version": version, "wait_ms": 25000}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{e2e.API_PORT}/agent/v1/feed", data=body, method="POST",
                                         headers={"content-type": "application/json",
                                                  "authorization": f"Bearer {self.secret}"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    reply = json.loads(r.read())
            except OSError:
                if self.stop:
                    return
                time.sleep(0.2)
                continue
            now = time.perf_counter()
            self.replies += 1
            for p in reply.get("ports", []):
                self.seen.setdefault(p["id"], now)
            if reply.get("snapshot"):
                held = set()
            held |= {n["id"] for n in reply.get("networks", [])}
            held -= set(reply.get("deleted_networks", []))
            since, version = reply["revision"], reply.get("agents_version", 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ports", type=int, default=1000)
    ap.add_argument("--network-type", default="vxlan", choices=["vxlan", "local"])
    ap.add_argument("--resync-ms", type=int, default=10000, help="agent.resync_interval_ms (agent default 10000)")
    ap.add_argument("--report-secs", type=int, default=10, help="agent.report_interval_secs (agent default 10)")
    ap.add_argument("--interval-ms", type=float, default=1.0, help="DISCOVER resend interval")
    ap.add_argument("--timeout", type=float, default=10.0, help="give up on one port after this long")
    ap.add_argument("--preload", type=int, default=0,
                    help="first bind this many other ports to the host, in networks of 200, each with its tap "
                         "(as bench/agent_resync.py), so the host is loaded while the N ports are timed")
    ap.add_argument("--no-feed-watch", action="store_true")
    ap.add_argument("--rust-log", default="info")
    ap.add_argument("--perf", help="record `perf record -g` on the agent during the timed loop into this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    ap.add_argument("--json", help="also write the raw samples here")
    a = ap.parse_args()
    B.check_env()

    tmp = Path(tempfile.mkdtemp(prefix="neutrino-bench-conv-"))
    tmp.chmod(0o755)
    topo = None
    watch = None
    agent_http = None
    try:
        topo = e2e.Topology(tmp)
        B.server_defaults(topo)
        host = topo.add_host(HOST, dhcp_mode="all", driver="native", start=False)
        B.configure_agent(host, a.resync_ms, a.report_secs)
        B.start_agent(host, a.rust_log)
        agent_http = B.AgentHttp(host)
        B.wait("agent /status", lambda: agent_http.status(), 30)

        attrs = {} if a.network_type == "vxlan" else {"provider:network_type": "local"}
        net = topo.api.network("bench", **attrs)
        B.unlimited_ports(topo.api, net["project_id"])
        # RFC 2544 benchmarking space, inside our namespaces only; room for 4k ports.
        sub = topo.api.subnet(net["id"], "198.18.0.0/20")
        preload_ids = []
        for n in range((a.preload + 199) // 200):
            pnet = topo.api.network(f"pre{n}")
            topo.api.subnet(pnet["id"], f"198.{19 + n // 256}.{n % 256}.0/24")
            count = min(200, a.preload - n * 200)
            body = {"ports": [{"network_id": pnet["id"], "binding:host_id": HOST, "device_owner": "compute:nova"}
                              for _ in range(count)]}
            preload_ids += [p["id"] for p in topo.api.post("/v2.0/ports", body)["ports"]]
        if preload_ids:
            batch = "".join(f"tuntap add mode tap name tap{pid[:11]}\n" for pid in preload_ids)
            subprocess.run(["ip", "-n", host.ns, "-batch", "-"], input=batch, text=True, check=True,
                           capture_output=True, timeout=600)
            B.wait("preloaded ports ACTIVE", lambda: agent_http.metrics().get(
                'neutrino_agent_ports{state="active"}', 0) >= len(preload_ids), 600, 0.5)
        probe_port = topo.api.port(net["id"], name="probe")
        probe = topo.instance(HOST, probe_port, "probe")  # vif plug: binds to h1, tap on the bridge
        topo.wait_active(probe_port["id"])
        sock = e2e.NsThread(probe.ns).run(probe_socket)

        def dhcp_once(mac_s: str, want_ip: str, timeout: float):
            """Sends DISCOVERs every interval until the OFFER; returns (time, sends) or None."""
            mac = bytes.fromhex(mac_s.replace(":", ""))
            xid = random.getrandbits(32)
            pkt = discover(xid, mac)
            step = a.interval_ms / 1000
            start = time.perf_counter()
            deadline = start + timeout
            next_send, sends = start, 0
            while True:
                now = time.perf_counter()
                if now >= deadline:
                    return None
                if now >= next_send:
                    sock.sendto(pkt, ("255.255.255.255", 67))
                    sends += 1
                    next_send = now + step
                r, _, _ = select.select([sock], [], [], max(0.0, next_send - time.perf_counter()))
                if not r:
                    continue
                while True:
                    try:
                        data = sock.recv(2048)
                    except BlockingIOError:
                        break
                    got = offer_for(data, xid, mac)
                    if got == want_ip:
                        return time.perf_counter(), sends

        # The path works (and the DHCP socket is bound) before we time anything.
        first = dhcp_once(probe_port["mac_address"], probe_port["fixed_ips"][0]["ip_address"], 30)
        if first is None:
            raise RuntimeError("no OFFER for the probe's own port: DHCP path broken\n" + host.agent.tail())

        if not a.no_feed_watch:
            secret = (tmp / "server" / "agent-secret").read_text().strip()
            watch = FeedWatch(topo.fabric, secret)
            watch.start()
            time.sleep(0.5)  # its snapshot is in; from now on it waits on the revision like the agent

        perf = None
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "-F", "299", "--call-graph", "dwarf,32768", "-o", a.perf, "-p", str(host.agent.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        m0 = agent_http.metrics()
        cpu0 = B.cpu_seconds(host.agent.pid)
        samples = []
        misses = []
        t_run = time.perf_counter()
        for i in range(a.ports):
            t_req = time.perf_counter()
            port = topo.api.post("/v2.0/ports", {"port": {"network_id": net["id"], "binding:host_id": HOST,
                                                          "device_owner": "compute:nova", "name": f"b{i}"}})["port"]
            t0 = time.perf_counter()
            got = dhcp_once(port["mac_address"], port["fixed_ips"][0]["ip_address"], a.timeout)
            if got is None:
                misses.append(port["id"])
                continue
            t1, sends = got
            samples.append({"id": port["id"], "create_ms": (t0 - t_req) * 1e3, "offer_ms": (t1 - t0) * 1e3, "req_offer_ms": (t1 - t_req) * 1e3,
                            "sends": sends, "t0": t0, "t1": t1})
        wall = time.perf_counter() - t_run
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        cpu1 = B.cpu_seconds(host.agent.pid)
        m1 = agent_http.metrics()
        rss = B.rss_kib(host.agent.pid)

        if watch:
            watch.stop = True
            for s in samples:
                seen = watch.seen.get(s["id"])
                if seen is not None:
                    s["feed_ms"] = (seen - s["t0"]) * 1e3
                    s["agent_ms"] = (s["t1"] - seen) * 1e3

        d = lambda k: m1.get(k, 0) - m0.get(k, 0)  # noqa: E731
        passes = d("neutrino_agent_reconcile_passes_total")
        pass_s = d("neutrino_agent_reconcile_seconds_total")
        offers = [s["offer_ms"] for s in samples]

        def dist(vals):
            if not vals:
                return "n/a"
            return (f"p50 {B.pct(vals, 50):.1f}  p90 {B.pct(vals, 90):.1f}  p99 {B.pct(vals, 99):.1f}  "
                    f"max {max(vals):.1f} ms")

        rows = [
            ("ports", f"{a.ports} ({len(samples)} answered, {len(misses)} not within {a.timeout:.0f} s)"),
            ("host already has", f"{len(preload_ids)} other ports bound, with taps"),
            ("network", f"{net['provider:network_type']} (mtu {net['mtu']}), subnet {sub['cidr']}, "
                        f"dhcp mode all, native driver, resync {a.resync_ms} ms, report {a.report_secs} s"),
            ("201 -> OFFER", dist(offers)),
            ("POST sent -> OFFER", dist([s["req_offer_ms"] for s in samples])),
            ("  201 -> feed reply (watcher; < 0: before the 201)", dist([s["feed_ms"] for s in samples if "feed_ms" in s])),
            ("  feed reply -> OFFER", dist([s["agent_ms"] for s in samples if "agent_ms" in s])),
            ("POST /v2.0/ports -> 201", dist([s["create_ms"] for s in samples])),
            ("DISCOVERs per port", f"p50 {B.pct([s['sends'] for s in samples], 50):.0f}  "
                                   f"max {max((s['sends'] for s in samples), default=0)}"),
            ("agent passes", f"{passes:.0f} ({passes / max(1, a.ports):.2f} per port), mean "
                             f"{pass_s / max(1, passes) * 1e3:.2f} ms, last "
                             f"{m1.get('neutrino_agent_reconcile_last_seconds', 0) * 1e3:.2f} ms"),
            ("agent feed replies", f"{d(FEED_DELTA):.0f} deltas, {d(FEED_SNAP):.0f} snapshots"),
            ("agent netlink ops", f"{d('neutrino_agent_netlink_ops_total'):.0f}"),
            ("agent CPU", f"{cpu1 - cpu0:.2f} s over {wall:.1f} s wall "
                          f"({(cpu1 - cpu0) / max(1, a.ports) * 1e3:.2f} ms per port)"),
            ("agent RSS", f"{rss[0] / 1024:.1f} MiB (HWM {rss[1] / 1024:.1f} MiB)"),
            ("floor (issue)", "p99 < 100 ms: " + ("met" if offers and B.pct(offers, 99) < 100 and not misses
                                                 else "NOT met")),
        ]
        B.table(rows, f"agent convergence: {a.ports} ports, 201 -> DHCP OFFER")
        if a.json:
            Path(a.json).write_text(json.dumps({"args": vars(a), "samples": samples, "misses": misses,
                                                "metrics_before": m0, "metrics_after": m1}, indent=1))
        if misses:
            print("\nagent log tail:\n" + host.agent.tail(30))
    finally:
        if watch:
            watch.stop = True
        if agent_http:
            agent_http.close()
        if topo:
            topo.teardown()
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
