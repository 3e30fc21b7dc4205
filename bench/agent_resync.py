#!/usr/bin/env python3
"""Host agent at scale: cold start and restart with 10,000 ports on one host.

One server (noauth) and one host namespace from the e2e harness
(tests/e2e/conftest.py, imported). Before the agent starts: N networks
(vxlan, one /24 each, DHCP on), N*M ports bound to the host with bulk
`POST /v2.0/ports {"ports": [...]}`, and each port's tap (`tap` + the first 11
characters of the port id) created in the host namespace with one
`ip -n NS -batch -` (persistent tuntap devices, down and unattached, as a
hypervisor leaves them before the agent wires them).

Then:
  1. start the agent; time until converged: /metrics reports every port
     ACTIVE and none down, /status has no errors (the API is checked too);
     the netlink ops that took;
  2. steady state: duration of reconcile passes (neutrino_agent_reconcile_last_seconds),
     the agent's RSS and CPU per pass;
  3. restart the agent (SIGTERM, start again): time to converged again and
     the netlink ops it issued (nothing changed on the host: must be 0),
     checked again after several more passes.

Run as root from the repository:
    cargo build --release -p neutrino
    /tmp/pyt/bin/python bench/agent_resync.py [--networks 50 --ports-per-network 200]
(/tmp/pyt: a venv with pytest, which conftest imports.)
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402

e2e = B.e2e
HOST = "h1"
ACTIVE = 'neutrino_agent_ports{state="active"}'
DOWN = 'neutrino_agent_ports{state="down"}'
PASSES = "neutrino_agent_reconcile_passes_total"
OPS = "neutrino_agent_netlink_ops_total"
LAST = "neutrino_agent_reconcile_last_seconds"
ERRORS = "neutrino_agent_reconcile_errors_total"


def converge(http: B.AgentHttp, expect_active: int, t_start: float, timeout: float):
    """Polls /metrics until every port is ACTIVE and none is down, then checks
    /status for errors. Returns (seconds from t_start, metrics)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        m = http.try_metrics()
        if m and m.get(PASSES, 0) >= 1 and m.get(ACTIVE, 0) >= expect_active and m.get(DOWN, 1) == 0:
            t = time.perf_counter() - t_start
            st = http.status()
            if st and not st.get("errors"):
                return t, m
            last = ("errors", st.get("errors") if st else None)
        elif m:
            last = {k: m.get(k) for k in (PASSES, ACTIVE, DOWN, OPS, ERRORS)}
        time.sleep(0.05)
    raise TimeoutError(f"agent not converged after {timeout:.0f} s: {last}")


def steady(http: B.AgentHttp, passes: int, timeout: float = 120):
    """Waits for `passes` further passes; returns the duration of each (from
    neutrino_agent_reconcile_last_seconds, read as each one completes) and the
    metrics at the end."""
    m = http.metrics()
    seen, durs = m[PASSES], []
    deadline = time.monotonic() + timeout
    while len(durs) < passes and time.monotonic() < deadline:
        time.sleep(0.02)
        m = http.metrics()
        if m[PASSES] == seen + 1:
            durs.append(m[LAST])
        elif m[PASSES] > seen + 1:
            durs.append(m[LAST])  # missed one; keep the last
        seen = m[PASSES]
    return durs, m


def api_active(api, host: str) -> int:
    ports = api.get(f"/v2.0/ports?binding:host_id={host}&device_owner=compute:nova&status=ACTIVE&fields=id")["ports"]
    return len(ports)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", type=int, default=50)
    ap.add_argument("--ports-per-network", type=int, default=200)
    ap.add_argument("--dhcp-mode", default="local", choices=["local", "all", "off"])
    ap.add_argument("--resync-ms", type=int, default=10000, help="agent.resync_interval_ms (agent default 10000)")
    ap.add_argument("--report-secs", type=int, default=10, help="agent.report_interval_secs (agent default 10)")
    ap.add_argument("--steady-passes", type=int, default=10)
    ap.add_argument("--soak", type=float, default=60, help="seconds of steady state to watch the RSS over")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--rust-log", default="info")
    ap.add_argument("--perf", type=float, default=0, help="record `perf` on the agent for this many seconds in steady state")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, perf data)")
    a = ap.parse_args()
    B.check_env()
    if a.ports_per_network > 250:
        sys.exit("one /24 per network: at most 250 ports per network (and a bridge takes 1024 ports)")
    total = a.networks * a.ports_per_network

    tmp = Path(tempfile.mkdtemp(prefix="neutrino-bench-resync-"))
    tmp.chmod(0o755)
    topo = None
    http = None
    rows = []
    try:
        topo = e2e.Topology(tmp)
        B.server_defaults(topo)
        host = topo.add_host(HOST, dhcp_mode=a.dhcp_mode, driver="native", start=False)
        B.configure_agent(host, a.resync_ms, a.report_secs)
        api = topo.api

        # --- the model: networks, subnets, ports bound to the host (bulk) ---
        t = time.perf_counter()
        port_ids = []
        for n in range(a.networks):
            net = api.network(f"bn{n}")
            if n == 0:
                B.unlimited_ports(api, net["project_id"])
            # RFC 2544 benchmarking space (198.18.0.0/15), inside our namespaces only.
            api.subnet(net["id"], f"198.{18 + n // 256}.{n % 256}.0/24")
            body = {"ports": [{"network_id": net["id"], "binding:host_id": HOST, "device_owner": "compute:nova",
                               "device_id": f"vm-{n}-{i}", "name": f"p{n}-{i}"}
                              for i in range(a.ports_per_network)]}
            port_ids += [p["id"] for p in api.post("/v2.0/ports", body)["ports"]]
        t_model = time.perf_counter() - t

        # --- the taps, as the hypervisor would have left them ---
        t = time.perf_counter()
        batch = "".join(f"tuntap add mode tap name tap{pid[:11]}\n" for pid in port_ids)
        subprocess.run(["ip", "-n", host.ns, "-batch", "-"], input=batch, text=True, check=True,
                       capture_output=True, timeout=600)
        t_taps = time.perf_counter() - t
        links = json.loads(e2e.nsx(host.ns, "ip", "-j", "link", "show", "type", "tun").stdout)
        assert len(links) == total, f"{len(links)} taps, expected {total}"

        # --- 1. cold start ---
        http = B.AgentHttp(host)
        t_start = time.perf_counter()
        agent = B.start_agent(host, a.rust_log)
        cold_s, m_cold = converge(http, total, t_start, a.timeout)
        cold_ops = m_cold[OPS]
        cold_cpu = B.cpu_seconds(agent.pid)
        n_api = api_active(api, HOST)
        dhcp_ports = m_cold[ACTIVE] - total

        # --- 2. steady state ---
        durs, m_steady = steady(http, a.steady_passes)
        steady_ops = m_steady[OPS] - cold_ops
        cpu_a = B.cpu_seconds(agent.pid)
        durs2, m2 = steady(http, a.steady_passes)
        cpu_per_pass = (B.cpu_seconds(agent.pid) - cpu_a) / max(1, len(durs2))
        durs += durs2
        steady_ops += m2[OPS] - m_steady[OPS]
        rss = B.rss_kib(agent.pid)
        soak = [rss[0]]
        t_soak = time.monotonic()
        while time.monotonic() - t_soak < a.soak:
            time.sleep(min(5.0, a.soak))
            soak.append(B.rss_kib(agent.pid)[0])
        soak_passes = http.metrics()[PASSES] - m2[PASSES]
        st = http.status()
        status_bytes = len(json.dumps(st))
        if a.perf:
            data = tmp / "perf.data"
            subprocess.run(["perf", "record", "-F", "199", "--call-graph", "dwarf,32768", "-o", str(data),
                            "-p", str(agent.pid), "--",
                            "sleep", str(a.perf)], capture_output=True, timeout=a.perf + 60)
            print(f"perf data: {data} (perf report -i {data} --no-children)")

        # --- 3. restart ---
        t = time.perf_counter()
        agent.stop()
        t_stop = time.perf_counter() - t
        t_start = time.perf_counter()
        agent = B.start_agent(host, a.rust_log)
        warm_s, m_warm = converge(http, total, t_start, a.timeout)
        warm_ops = m_warm[OPS]
        warm_cpu = B.cpu_seconds(agent.pid)
        wdurs, m_after = steady(http, 5)
        warm_ops_after = m_after[OPS]
        n_api_warm = api_active(api, HOST)
        rss_warm = B.rss_kib(agent.pid)

        med = lambda v: B.pct(v, 50) * 1e3  # noqa: E731
        rows = [
            ("host", f"{total} ports bound ({a.networks} vxlan networks x {a.ports_per_network}), "
                     f"dhcp {a.dhcp_mode} (native, {int(dhcp_ports)} DHCP ports), resync {a.resync_ms} ms, "
                     f"report {a.report_secs} s"),
            ("setup: bulk create ports", f"{t_model:.1f} s ({total / t_model:.0f} ports/s incl. networks)"),
            ("setup: create taps (ip -batch)", f"{t_taps:.1f} s"),
            ("cold start -> converged", f"{cold_s:.2f} s (agent CPU {cold_cpu:.2f} s); API: {n_api}/{total} ACTIVE"),
            ("cold start netlink ops", f"{cold_ops:.0f}"),
            ("steady pass (last_seconds)", f"p50 {med(durs):.1f} ms, max {max(durs) * 1e3:.1f} ms "
                                           f"over {len(durs)} passes; CPU {cpu_per_pass * 1e3:.0f} ms per pass"),
            ("steady-state netlink ops", f"{steady_ops:.0f}"),
            ("agent RSS (steady)", f"{rss[0] / 1024:.1f} MiB (HWM {rss[1] / 1024:.1f} MiB); /status "
                                   f"{status_bytes / 1e6:.1f} MB"),
            ("agent RSS over the soak", f"{soak[0] / 1024:.0f} -> {soak[-1] / 1024:.0f} MiB (max "
                                        f"{max(soak) / 1024:.0f}) over {a.soak:.0f} s, {soak_passes:.0f} passes"),
            ("agent stop (SIGTERM)", f"{t_stop:.2f} s"),
            ("restart -> converged", f"{warm_s:.2f} s (agent CPU {warm_cpu:.2f} s); API: {n_api_warm}/{total} ACTIVE"),
            ("restart netlink ops", f"{warm_ops:.0f} at converged, {warm_ops_after:.0f} after "
                                    f"{len(wdurs)} more passes (must be 0)"),
            ("restart pass (last_seconds)", f"p50 {med(wdurs):.1f} ms"),
            ("agent RSS after restart", f"{rss_warm[0] / 1024:.1f} MiB (HWM {rss_warm[1] / 1024:.1f} MiB)"),
            ("reconcile errors", f"{m_cold.get(ERRORS, 0):.0f} cold, {m_after.get(ERRORS, 0):.0f} after restart"),
        ]
        B.table(rows, f"agent resync: {total} ports on one host")
    finally:
        if http:
            http.close()
        if topo:
            t = time.perf_counter()
            topo.teardown()
            print(f"(teardown {time.perf_counter() - t:.1f} s)")
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
