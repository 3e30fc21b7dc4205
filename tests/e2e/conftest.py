"""Fixtures for the host-agent tests: real Linux networking in namespaces.

A topology is a fabric namespace (the underlay bridge, a provider bridge for
flat networks, and the server) and host namespaces joined to it by veth
pairs, each running a real `neutrino agent`. Instances are namespaces plugged
with `neutrino vif plug`; they get their addresses from real DHCP clients
(udhcpc, dhclient). Nothing is created in the root namespace: every link lives
inside a namespace this suite made, every namespace is named
`ne<pid>-...`, and all of them (with the processes we started in them) are
removed at teardown, also when a test fails.

Addresses: the underlay is 192.0.2.0/24 (TEST-NET-1), tenant subnets use
198.51.100.0/24 and 203.0.113.0/24 (TEST-NET-2/3), all inside our namespaces.

Environment: NEUTRINO_BIN (default <repo>/target/debug/neutrino),
NEUTRINO_E2E_KEEP=1 keeps the temp dir (logs, configs) after the run.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("NEUTRINO_BIN", str(REPO / "target" / "debug" / "neutrino"))
CLIENTS = Path(__file__).resolve().parent / "clients"
PREFIX = f"ne{os.getpid() % 100000}"
SERVER_IP = "192.0.2.254"
API_PORT = 9696
CLONE_NEWNET = 0x40000000


def sh(cmd: list[str] | str, check: bool = True, timeout: float = 60, env=None) -> subprocess.CompletedProcess:
    if isinstance(cmd, str):
        cmd = ["sh", "-c", cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def nsx(ns: str, *cmd: str, check: bool = True, timeout: float = 60, env=None) -> subprocess.CompletedProcess:
    return sh(["ip", "netns", "exec", ns, *cmd], check=check, timeout=timeout, env=env)


def wait_until(what: str, fn, timeout: float = 30.0, interval: float = 0.1):
    """Polls fn until it returns a truthy value (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - the last error is reported below
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def skip_unless_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    for tool in ("ip", "udhcpc", "dhclient", "ping"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (.ci/run installs it)")


class NsThread:
    """Runs calls on one thread that lives in a namespace, so sockets it opens
    belong there (setns changes only the calling thread's namespace)."""

    def __init__(self, ns: str):
        self.pool = ThreadPoolExecutor(1, initializer=self._enter, initargs=(ns,))

    @staticmethod
    def _enter(ns: str):
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def run(self, fn, *args):
        return self.pool.submit(fn, *args).result()

    def close(self):
        self.pool.shutdown(wait=False)


class Api:
    """The Neutron API of the server in the fabric namespace (noauth: admin)."""

    def __init__(self, ns: str):
        self.thread = NsThread(ns)
        self.base = f"http://127.0.0.1:{API_PORT}"

    def _call(self, method: str, path: str, body):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def call(self, method: str, path: str, body=None, expect: int | None = None):
        status, out = self.thread.run(self._call, method, path, body)
        if expect is not None:
            assert status == expect, f"{method} {path} -> {status}: {out}"
        return status, out

    def post(self, path, body):
        return self.call("POST", path, body, expect=201)[1]

    def get(self, path):
        return self.call("GET", path, expect=200)[1]

    def delete(self, path):
        return self.call("DELETE", path, expect=204)

    def network(self, name: str, **attrs) -> dict:
        return self.post("/v2.0/networks", {"network": {"name": name, **attrs}})["network"]

    def subnet(self, net_id: str, cidr: str, **attrs) -> dict:
        body = {"network_id": net_id, "cidr": cidr, "ip_version": 4, **attrs}
        return self.post("/v2.0/subnets", {"subnet": body})["subnet"]

    def port(self, net_id: str, **attrs) -> dict:
        return self.post("/v2.0/ports", {"port": {"network_id": net_id, **attrs}})["port"]

    def show_port(self, port_id: str) -> dict:
        return self.get(f"/v2.0/ports/{port_id}")["port"]

    def put(self, path, body):
        return self.call("PUT", path, body, expect=200)[1]

    def update_port(self, port_id: str, **attrs) -> dict:
        return self.put(f"/v2.0/ports/{port_id}", {"port": attrs})["port"]

    def security_group(self, name: str) -> dict:
        return self.post("/v2.0/security-groups", {"security_group": {"name": name}})["security_group"]

    def rule(self, group_id: str, direction: str = "ingress", **attrs) -> dict:
        body = {"security_group_id": group_id, "direction": direction, "ethertype": "IPv4", **attrs}
        return self.post("/v2.0/security-group-rules", {"security_group_rule": body})["security_group_rule"]

    def default_group(self) -> dict:
        groups = self.get("/v2.0/security-groups?name=default")["security_groups"]
        assert len(groups) == 1, groups
        return groups[0]


class Proc:
    """A process we started; stopped by its PID."""

    def __init__(self, argv: list[str], log: Path, env=None):
        self.argv, self.log = argv, log
        self.fh = open(log, "ab")
        self.p = subprocess.Popen(argv, stdout=self.fh, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 15):
        if self.alive():
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.fh.close()

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Host:
    """A compute or network node: a namespace with an agent."""

    def __init__(self, topo: "Topology", name: str, index: int, dhcp_mode: str, driver: str,
                 firewall: str = "", l3: str = ""):
        self.topo, self.name, self.index = topo, name, index
        self.ns = f"{PREFIX}-{name}"
        self.tunnel_ip = f"192.0.2.{index}"
        self.dir = topo.dir / name
        self.dir.mkdir()
        self.config = self.dir / "agent.toml"
        self.config.write_text(f"""
[agent]
host = "{name}"
server_url = "http://{SERVER_IP}:{API_PORT}"
secret_file = "{topo.dir / 'server' / 'agent-secret'}"
namespace_prefix = "{self.ns}-"
state_dir = "{self.dir / 'state'}"
metrics_listen = "127.0.0.1:9697"
host_netns = "{self.ns}"
report_interval_secs = 1
resync_interval_ms = 30000

[l2]
tunnel_ip = "{self.tunnel_ip}"
physical_interface_mappings = {{ physnet1 = "eth1" }}

[dhcp]
mode = "{dhcp_mode}"
driver = "{driver}"
lease_time_secs = 600

[firewall]
{firewall}

[l3]
{l3}
""")
        topo.add_ns(self.ns)
        fab = topo.fabric
        # Underlay (eth0) and provider network (eth1), both into the fabric.
        sh(["ip", "-n", fab, "link", "add", f"u{index}", "type", "veth", "peer", "name", "eth0", "netns", self.ns])
        sh(["ip", "-n", fab, "link", "add", f"p{index}", "type", "veth", "peer", "name", "eth1", "netns", self.ns])
        for fab_side, br in ((f"u{index}", "under"), (f"p{index}", "prov")):
            sh(["ip", "-n", fab, "link", "set", fab_side, "master", br, "up"])
        nsx(self.ns, "ip", "addr", "add", f"{self.tunnel_ip}/24", "dev", "eth0")
        for dev in ("lo", "eth0", "eth1"):
            nsx(self.ns, "ip", "link", "set", dev, "up")
        self.agent: Proc | None = None

    def start_agent(self):
        self.agent = Proc([BIN, "agent", "--config", str(self.config)],
                          self.dir / "agent.log", env={**os.environ, "RUST_LOG": "info"})
        self.topo.procs.append(self.agent)
        wait_until(f"agent {self.name} serving /status", lambda: self.status() is not None)

    def stop_agent(self, sig=signal.SIGTERM):
        if self.agent:
            self.agent.stop(sig)

    def http(self, path: str) -> str:
        code = ("import urllib.request,sys;"
                f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9697{path}',timeout=5).read().decode())")
        return nsx(self.ns, "python3", "-c", code, timeout=20).stdout

    def status(self):
        try:
            v = json.loads(self.http("/status"))
        except (RuntimeError, ValueError):
            return None
        return v if v else None

    def metric(self, name: str, labels: dict | None = None) -> float:
        """Sum of a metric's samples whose labels include `labels`."""
        total = 0.0
        for line in self.http("/metrics").splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            m = re.match(r"^([a-z_]+)(\{([^}]*)\})?\s+(\S+)$", line)
            if not m or m.group(1) != name:
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
            if all(got.get(k) == v for k, v in (labels or {}).items()):
                total += float(m.group(4))
        return total

    def converged(self) -> bool:
        s = self.status()
        return bool(s) and not s.get("problems")

    def logged(self, text: str) -> list[str]:
        """The lines of this host's agent log (all its runs) that contain `text`."""
        log = self.dir / "agent.log"
        raw = log.read_text(errors="replace") if log.exists() else ""
        # Without the terminal colours tracing writes.
        lines = re.sub(r"\x1b\[[0-9;]*m", "", raw).splitlines()
        return [line for line in lines if text in line]


class Instance:
    """An instance: a namespace with eth0 plugged for one port."""

    def __init__(self, topo: "Topology", host: Host, port: dict, name: str, mtu: int = 1500):
        self.topo, self.host, self.port, self.name = topo, host, port, name
        self.ns = f"{PREFIX}-{name}"
        topo.namespaces.append(self.ns)
        r = sh([BIN, "vif", "plug", "--port", port["id"], "--netns", self.ns,
                "--mtu", str(mtu), "--config", str(host.config)])
        assert "plugged" in r.stdout, r.stdout + r.stderr
        self.lease_file = topo.dir / f"{name}.lease"

    def dhcp(self, client: str = "udhcpc", expect_lease: bool = True) -> dict:
        """Runs a real DHCP client once; returns what the server handed out."""
        self.lease_file.unlink(missing_ok=True)
        env = {**os.environ, "LEASE_OUT": str(self.lease_file)}
        if client == "udhcpc":
            r = nsx(self.ns, "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "6", "-T", "1",
                    "-O", "mtu", "-O", "staticroutes", "-O", "tftp", "-O", "bootfile",
                    "-s", str(CLIENTS / "udhcpc.sh"),
                    check=False, timeout=60, env=env)
        else:
            pid = self.topo.dir / f"{self.name}.dhclient.pid"
            # dhclient gives its hook a clean environment: pass the output path in a wrapper.
            hook = self.topo.dir / f"{self.name}.dhclient-hook"
            hook.write_text(f"#!/bin/sh\nLEASE_OUT={self.lease_file} exec {CLIENTS / 'dhclient.sh'}\n")
            hook.chmod(0o755)
            r = nsx(self.ns, "timeout", "30", "dhclient", "-1", "-v", "-cf", str(CLIENTS / "dhclient.conf"),
                    "-sf", str(hook), "-lf", str(self.topo.dir / f"{self.name}.leases"),
                    "-pf", str(pid), "eth0", check=False, timeout=60, env=env)
            # dhclient stays in the background to renew: stop it (we started it).
            if pid.exists():
                try:
                    os.kill(int(pid.read_text().strip()), signal.SIGTERM)
                except (ValueError, ProcessLookupError):
                    pass
        lease = {}
        if self.lease_file.exists():
            for line in self.lease_file.read_text().splitlines():
                k, _, v = line.partition("=")
                lease[k] = v
        if expect_lease:
            assert lease.get("ip"), f"{client} got no lease:\n{r.stdout}\n{r.stderr}\nagent log:\n{self.host.agent.tail() if self.host.agent else ''}"
        return lease

    def capture_dhcp(self) -> "DhcpCapture":
        """Records every DHCP packet eth0 sends or receives, while in a `with` block."""
        return DhcpCapture(self)

    def ip(self, *args: str) -> str:
        return nsx(self.ns, "ip", *args).stdout

    def ping(self, addr: str, count: int = 2, source: str | None = None) -> bool:
        extra = ["-I", source] if source else []
        return nsx(self.ns, "ping", "-c", str(count), "-W", "1", "-i", "0.2", *extra, addr,
                   check=False).returncode == 0

    def static(self, prefix: int = 24, gateway: str | None = None):
        """Configures the port's fixed IPs on eth0 as nova's Flat manager
        injected them (no DHCP); IPv6 without duplicate address detection."""
        for f in self.port["fixed_ips"]:
            ip = f["ip_address"]
            if ":" in ip:
                nsx(self.ns, "ip", "-6", "addr", "add", f"{ip}/64", "dev", "eth0", "nodad")
            else:
                nsx(self.ns, "ip", "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
        if gateway:
            nsx(self.ns, "ip", "route", "add", "default", "via", gateway)

    def listen(self, port: int) -> "Proc":
        return listen(self.topo, self.ns, self.name, port)

    def connect(self, addr: str, port: int, timeout: float = 2.0) -> bool:
        """Whether a TCP connection to addr:port is answered "ok"."""
        return connect(self.ns, addr, port, timeout) is not None


class DhcpCapture:
    """Every DHCP packet an instance's eth0 sends and receives, seen by a raw
    socket in its namespace (clients/dhcp_capture.py), so a reply the client
    ignores or never waits for is recorded too. Use as a context manager:
    capturing starts before the block and ends after it, once replies still
    on their way (another host's answer to the client's last request crosses
    the underlay) have had time to arrive."""

    # Bounds the wait for replies in flight after the client is done; a reply
    # takes one underlay round trip, milliseconds here.
    SETTLE_SECS = 1.5
    _count = 0

    def __init__(self, vm: "Instance"):
        DhcpCapture._count += 1
        self.vm = vm
        self.out = vm.topo.dir / f"{vm.name}.dhcp-capture-{DhcpCapture._count}.jsonl"
        self.proc: Proc | None = None
        self.packets: list[dict] = []

    def __enter__(self) -> "DhcpCapture":
        self.proc = Proc(["ip", "netns", "exec", self.vm.ns, "python3", str(CLIENTS / "dhcp_capture.py"),
                          "eth0", str(self.out)], self.out.with_suffix(".log"))
        self.vm.topo.procs.append(self.proc)
        ready = Path(f"{self.out}.ready")
        wait_until(f"DHCP capture on {self.vm.name}", lambda: ready.exists() or not self.proc.alive(), timeout=10)
        assert self.proc.alive(), f"DHCP capture failed to start:\n{self.proc.tail()}"
        return self

    def __exit__(self, *exc):
        time.sleep(self.SETTLE_SECS)
        self.proc.stop()
        text = self.out.read_text() if self.out.exists() else ""
        self.packets = [json.loads(line) for line in text.splitlines() if line.strip()]
        return False

    def replies(self) -> list[dict]:
        """What DHCP servers sent the instance."""
        return [p for p in self.packets if p["dir"] == "in" and p["sport"] == 67]

    def requests(self) -> list[dict]:
        """What the instance's client sent."""
        return [p for p in self.packets if p["dir"] == "out" and p["sport"] == 68]


def listen(topo: "Topology", ns: str, name: str, port: int) -> "Proc":
    """A TCP listener on every address (v4 and v6) in `ns` that answers
    "ok <its name> <the peer's address>"."""
    code = ("import socket\n"
            "s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n"
            "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('::', {port})); s.listen(16)\n"
            "while True:\n"
            "    c, peer = s.accept()\n"
            f"    c.sendall(('ok {name} ' + peer[0].replace('::ffff:', '')).encode()); c.close()\n")
    p = Proc(["ip", "netns", "exec", ns, "python3", "-c", code], topo.dir / f"{name}.listen{port}.log")
    topo.procs.append(p)
    # Listening before anyone connects.
    wait_until(f"{name} listening on {port}",
               lambda: f":{port:04X} " in nsx(ns, "cat", "/proc/net/tcp6").stdout, timeout=10)
    return p


def connect(ns: str, addr: str, port: int, timeout: float = 2.0) -> list[str] | None:
    """Connects from `ns`; the listener's answer split in words (["ok",
    name, peer]), or None when nothing answered."""
    code = ("import socket,sys\n"
            "try:\n"
            f"    c = socket.create_connection(('{addr}', {port}), timeout={timeout})\n"
            "    sys.stdout.write(c.recv(200).decode())\n"
            "except OSError:\n"
            "    sys.exit(1)\n")
    r = nsx(ns, "python3", "-c", code, check=False, timeout=timeout + 20)
    words = r.stdout.split()
    return words if r.returncode == 0 and words[:1] == ["ok"] else None


class Topology:
    def __init__(self, tmp: Path, feed_history: int = 100000, server_extra: str = ""):
        self.dir = tmp
        self.namespaces: list[str] = []
        self.procs: list[Proc] = []
        self.hosts: dict[str, Host] = {}
        self.fabric = f"{PREFIX}-fab"
        self.add_ns(self.fabric)
        for br in ("under", "prov"):
            sh(["ip", "-n", self.fabric, "link", "add", br, "type", "bridge"])
            sh(["ip", "-n", self.fabric, "link", "set", br, "up"])
        sh(["ip", "-n", self.fabric, "addr", "add", f"{SERVER_IP}/24", "dev", "under"])
        sh(["ip", "-n", self.fabric, "link", "set", "lo", "up"])
        (tmp / "server").mkdir()
        self.server_config = tmp / "server.toml"
        self.server_config.write_text(f"""
[server]
listen = "0.0.0.0:{API_PORT}"
data_dir = "{tmp / 'server'}"
[identity]
mode = "noauth"
[agents]
down_time_secs = 5
feed_history = {feed_history}
{server_extra}
""")
        self.server: Proc | None = None
        self.api = Api(self.fabric)
        self.start_server()

    def external_host(self, address: str = "203.0.113.1/24") -> str:
        """A host on the provider network (the external network's upstream
        router): a namespace on the fabric's provider bridge."""
        ns = f"{PREFIX}-ext"
        self.add_ns(ns)
        sh(["ip", "-n", self.fabric, "link", "add", "pext", "type", "veth", "peer", "name", "eth0", "netns", ns])
        sh(["ip", "-n", self.fabric, "link", "set", "pext", "master", "prov", "up"])
        nsx(ns, "ip", "addr", "add", address, "dev", "eth0")
        for dev in ("lo", "eth0"):
            nsx(ns, "ip", "link", "set", dev, "up")
        return ns

    def add_ns(self, ns: str):
        sh(["ip", "netns", "add", ns])
        self.namespaces.append(ns)

    def start_server(self):
        self.server = Proc(["ip", "netns", "exec", self.fabric, BIN, "server", "--config", str(self.server_config)],
                           self.dir / "server.log")
        self.procs.append(self.server)
        wait_until("the server", lambda: self.api.call("GET", "/v2.0/networks")[0] == 200)

    def add_host(self, name: str, dhcp_mode: str = "off", driver: str = "native", start: bool = True,
                 firewall: str = "", l3: str = "off") -> Host:
        h = Host(self, name, len(self.hosts) + 1, dhcp_mode, driver, firewall, f'mode = "{l3}"')
        self.hosts[name] = h
        if start:
            h.start_agent()
        return h

    def instance(self, host: str, port: dict, name: str) -> Instance:
        return Instance(self, self.hosts[host], port, name)

    def dhcp_server(self, net_id: str, host: str) -> dict:
        """The DHCP port `host` serves the network from."""
        ports = self.api.get(f"/v2.0/ports?network_id={net_id}&device_owner=network:dhcp")["ports"]
        mine = [p for p in ports if p["binding:host_id"] == host]
        assert len(mine) == 1, ports
        return mine[0]

    def wait_active(self, port_id: str):
        wait_until(f"port {port_id} ACTIVE", lambda: self.api.show_port(port_id)["status"] == "ACTIVE")

    def teardown(self):
        for p in reversed(self.procs):
            p.stop()
        self.api.thread.close()
        for ns in reversed(self.all_namespaces()):
            # Processes left in our namespaces are ours (dnsmasq, dhclient).
            for pid in sh(["ip", "netns", "pids", ns], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ValueError, ProcessLookupError):
                    pass
            sh(["ip", "netns", "del", ns], check=False)

    def all_namespaces(self) -> list[str]:
        """Ours: the ones we made, plus the DHCP namespaces our agents made."""
        listed = sh(["ip", "netns", "list"], check=False).stdout.split("\n")
        names = [line.split()[0] for line in listed if line.strip()]
        return sorted({n for n in names if n.startswith(PREFIX + "-")} | set(self.namespaces))


@pytest.fixture
def topology(tmp_path_factory, request):
    skip_unless_root()
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} is not built")
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-e2e-"))
    tmp.chmod(0o755)  # dnsmasq runs as nobody and reads its files under here
    made: list[Topology] = []

    def make(**kw) -> Topology:
        t = Topology(tmp, **kw)
        made.append(t)
        return t

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for t in made:
        if failed:
            for p in t.procs:
                print(f"--- {p.argv[-3:]} log tail ---\n{p.tail(60)}")
        t.teardown()
    if os.environ.get("NEUTRINO_E2E_KEEP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
