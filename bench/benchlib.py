"""Shared pieces of the host-agent benchmarks (bench/agent_*.py).

The topology (fabric namespace with the server, host namespaces with agents,
`Api`, `NsThread`, teardown) is tests/e2e/conftest.py, imported as it is;
this module only adds what a benchmark needs on top: an agent started with a
chosen log level and resync interval, a fast in-namespace HTTP client for the
agent's /metrics and /status, and percentiles.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("NEUTRINO_BIN", str(REPO / "target" / "release" / "neutrino"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import conftest as e2e  # noqa: E402  (needs NEUTRINO_BIN set first)

BIN = e2e.BIN


def check_env():
    if os.geteuid() != 0:
        sys.exit("run as root (network namespaces)")
    if not Path(BIN).exists():
        sys.exit(f"{BIN} is not built: cargo build --release -p neutrino (or set NEUTRINO_BIN)")


class AgentHttp:
    """The agent's /metrics and /status, fetched from a thread inside the
    host namespace (no `ip netns exec python3` per call)."""

    def __init__(self, host: "e2e.Host"):
        self.thread = e2e.NsThread(host.ns)
        self.base = "http://127.0.0.1:9697"

    def _get(self, path: str, timeout: float) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=timeout) as r:
            return r.read()

    def get(self, path: str, timeout: float = 30) -> bytes:
        return self.thread.run(self._get, path, timeout)

    def status(self):
        try:
            return json.loads(self.get("/status"))
        except OSError:
            return None

    def metrics(self) -> dict[str, float]:
        """name or name{labels} → value."""
        out = {}
        for line in self.get("/metrics").decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            m = re.match(r"^(\S+?)\s+(\S+)$", line)
            if m:
                try:
                    out[m.group(1)] = float(m.group(2))
                except ValueError:
                    pass
        return out

    def try_metrics(self) -> dict[str, float] | None:
        try:
            return self.metrics()
        except OSError:
            return None

    def close(self):
        self.thread.close()


def configure_agent(host: "e2e.Host", resync_ms: int = 1000, report_secs: int = 10):
    """conftest writes resync_interval_ms = 300 and report_interval_secs = 1
    (fast tests); a benchmark runs with the agent's defaults (1000 ms, 10 s)
    unless told otherwise. Each successful report also forces a pass that
    re-sends every port's status, so the report interval matters at scale."""
    text = host.config.read_text()
    text = re.sub(r"resync_interval_ms = \d+", f"resync_interval_ms = {resync_ms}", text)
    text = re.sub(r"report_interval_secs = \d+", f"report_interval_secs = {report_secs}", text)
    host.config.write_text(text)


def server_defaults(topo: "e2e.Topology"):
    """conftest's server declares an agent down after 5 s (fast tests); with
    the agent's 10 s report interval that would flap, so the benchmark's
    server runs with the default (75 s, as Neutron's agent_down_time)."""
    topo.server.stop()
    topo.procs.remove(topo.server)
    text = topo.server_config.read_text()
    topo.server_config.write_text(re.sub(r"down_time_secs = \d+", "down_time_secs = 75", text))
    topo.start_server()


def unlimited_ports(api, project_id: str):
    """Neutron's default port quota (500) is below what a benchmark creates."""
    api.call("PUT", f"/v2.0/quotas/{project_id}", {"quota": {"port": -1, "network": -1, "subnet": -1}}, expect=200)


def start_agent(host: "e2e.Host", rust_log: str = "info") -> "e2e.Proc":
    """Starts the agent without waiting (the caller times its start)."""
    host.agent = e2e.Proc([BIN, "agent", "--config", str(host.config)], host.dir / "agent.log",
                          env={**os.environ, "RUST_LOG": rust_log})
    host.topo.procs.append(host.agent)
    return host.agent


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB."""
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def table(rows: list[tuple[str, str]], title: str):
    w = max(len(r[0]) for r in rows)
    print(f"\n{title}")
    print("-" * (w + 3 + max(len(r[1]) for r in rows)))
    for k, v in rows:
        print(f"{k:<{w}} | {v}")


def wait(what: str, fn, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what} (last: {last!r})")
