"""Fixtures for the CLI acceptance tests: a freshly started Neutrino server driven
by the real `openstack` CLI (python-openstackclient) from <repo>/.venv.

Environment:
  NEUTRINO_BIN              server binary (default <repo>/target/debug/neutrino)
  NEUTRINO_VENV             venv with openstack/keystone/gunicorn (default <repo>/.venv)
  NEUTRINO_REQUIRE_KEYSTONE 1 = fail (not skip) the keystone tests when Keystone is not
                            installed; .ci/run sets it, and CI=true implies it
  NEUTRINO_CLI_KEEP         1 = keep the temp dirs (server logs, configs) after the run
  NEUTRINO_CLI_REFERENCE_URL  reference run: check the suite itself against another
                            Neutron API server at this URL (e.g. real Neutron with
                            auth_strategy=keystone, validating against the Keystone
                            this suite starts, user neutron/neutron-secret). All users come
                            from Keystone then; tests of Neutrino-only features skip.

Every CLI call runs with --debug; when one fails unexpectedly the test failure shows
the command, the HTTP requests the CLI made and the server's responses.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("NEUTRINO_VENV", REPO / ".venv"))
OPENSTACK = VENV / "bin" / "openstack"
KEYSTONE_SCRIPT = REPO / "tests" / "keystone" / "run-keystone.sh"
CLI_TIMEOUT = 120
START_TIMEOUT = 60

# Users the builtin-identity config creates (password = name + "-pw").
BUILTIN_USERS = {
    # cloud name: (user, project, role)
    "neutrino-member": ("demo-member", "demo", "member"),
    "neutrino-reader": ("demo-reader", "demo", "reader"),
}
DEFAULT_NETWORK_QUOTA = 50   # [quotas] network in the test config (Neutron's default is 100)
DEFAULT_PORT_QUOTA = 500
REFERENCE_URL = os.environ.get("NEUTRINO_CLI_REFERENCE_URL", "").rstrip("/")


class ExternalServer:
    """Stands in for NeutrinoServer in a reference run (a server we did not start)."""

    def __init__(self, url: str):
        self.url = url

    def log_text(self) -> str:
        return ""

    def log_tail(self, n: int = 40) -> str:
        return "(external server: no log)"


# --------------------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _http_trace(stderr: str, last: int = 4) -> str:
    """The last few request/response pairs from `openstack --debug` output."""
    keep = []
    for line in stderr.splitlines():
        s = line.strip()
        if s.startswith(("REQ: curl", "RESP: [", "RESP BODY:")):
            keep.append(s if len(s) < 2000 else s[:2000] + " ...")
    # group into requests: each starts with REQ
    groups, cur = [], []
    for s in keep:
        if s.startswith("REQ:") and cur:
            groups.append(cur)
            cur = []
        cur.append(s)
    if cur:
        groups.append(cur)
    out = []
    for g in groups[-last:]:
        out.extend(g)
        out.append("")
    return "\n".join(out)


def _error_lines(stderr: str) -> str:
    """The CLI's own error message (last non-traceback lines)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    tail = []
    for ln in reversed(lines):
        if ln.startswith(("REQ:", "RESP", "  File ", "Traceback", "    ")):
            break
        tail.append(ln)
        if len(tail) >= 6:
            break
    return "\n".join(reversed(tail))


def _format_failure(cmd: list[str], proc: subprocess.CompletedProcess, why: str) -> str:
    shown = " ".join(shlex.quote(c) for c in cmd if c != "--debug")
    return (
        f"{why}\n$ {shown}\nexit code: {proc.returncode}\n"
        f"--- CLI error ---\n{_error_lines(proc.stderr)}\n"
        f"--- HTTP (last requests, from --debug) ---\n{_http_trace(proc.stderr)}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}"
    )


class Cli:
    """Runs the real `openstack` CLI for one cloud of one clouds.yaml."""

    def __init__(self, clouds_file: Path, cloud: str, server: "NeutrinoServer | None" = None):
        self.clouds_file = Path(clouds_file)
        self.cloud = cloud
        self.server = server

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_file)
        env["PYTHONWARNINGS"] = "ignore"
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(OPENSTACK), "--debug", "--os-cloud", self.cloud, *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=self._env(),
                                  timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"timed out after {CLI_TIMEOUT}s: openstack {' '.join(args)}\n"
                        f"{_http_trace((e.stderr or b'').decode(errors='replace'))}"
                        + self._server_tail())
        if check and proc.returncode != 0:
            pytest.fail(_format_failure(cmd, proc, "openstack CLI failed") + self._server_tail(),
                        pytrace=False)
        return proc

    def json(self, *args: str):
        """Run a command with `-f json` and return the parsed output."""
        cmd_args = [*args, "-f", "json"]
        proc = self.run(*cmd_args)
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError:
            cmd = [str(OPENSTACK), "--debug", "--os-cloud", self.cloud, *cmd_args]
            pytest.fail(_format_failure(cmd, proc, "CLI output is not JSON"), pytrace=False)

    def fail(self, *args: str) -> subprocess.CompletedProcess:
        """Run a command that must fail; returns the process (stderr for messages)."""
        proc = self.run(*args, check=False)
        if proc.returncode == 0:
            cmd = [str(OPENSTACK), "--os-cloud", self.cloud, *args]
            pytest.fail(_format_failure(cmd, proc, "expected the CLI to fail, it succeeded"),
                        pytrace=False)
        return proc

    def _server_tail(self) -> str:
        if self.server is None:
            return ""
        return "\n--- server log (tail) ---\n" + self.server.log_tail(30)


class NeutrinoServer:
    """One `neutrino server --config FILE` process (stopped by its PID)."""

    def __init__(self, binary: Path, workdir: Path, port: int, config: str):
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = workdir / "data"
        self.config_path = workdir / "neutrino.toml"
        self.log_path = workdir / "server.log"
        self.config = config
        self.proc: subprocess.Popen | None = None

    def start(self) -> "NeutrinoServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "server", "--config", str(self.config_path)],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "RUST_BACKTRACE": "1"})
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"neutrino server exited with {self.proc.returncode} during start-up\n"
                    f"config:\n{self.config}\nlog:\n{self.log_tail(60)}")
            try:
                status, _ = http_get(self.url + "/", timeout=2)
                if status == 200:
                    return self
                last = f"GET / -> {status}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"neutrino server not ready on {self.url} within {START_TIMEOUT}s "
                           f"({last})\nlog:\n{self.log_tail(60)}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the server's PID, wait, SIGKILL if it hangs. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
                return None
        return self.proc.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])


def hash_password(binary: Path, password: str) -> str:
    proc = subprocess.run([str(binary), "hash-password"], input=password, capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"`neutrino hash-password` failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-1000:]}")
    return proc.stdout.strip().splitlines()[-1].strip()


def toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string for our values


def write_clouds(path: Path, clouds: dict[str, dict]) -> Path:
    """Write a clouds.yaml (JSON is valid YAML, no PyYAML needed)."""
    path.write_text(json.dumps({"clouds": clouds}, indent=2))
    return path


def cloud_entry(auth_url: str, user: str, password: str, project: str) -> dict:
    return {
        "auth": {"auth_url": auth_url, "username": user, "password": password,
                 "project_name": project, "user_domain_name": "Default",
                 "project_domain_name": "Default"},
        "identity_api_version": 3,
        "region_name": "RegionOne",
        "interface": "public",
    }


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def workroot():
    d = Path(tempfile.mkdtemp(prefix="neutrino-cli-"))
    yield d
    if os.environ.get("NEUTRINO_CLI_KEEP") != "1":
        shutil.rmtree(d, ignore_errors=True)
    else:
        print(f"\nkept {d}")


@pytest.fixture(scope="session")
def openstack_cli() -> Path:
    if not OPENSTACK.exists():
        pytest.fail(f"{OPENSTACK} not found: run scripts/setup-venv (or .ci/run) once", pytrace=False)
    return OPENSTACK


@pytest.fixture(scope="session")
def neutrino_bin() -> Path:
    b = Path(os.environ.get("NEUTRINO_BIN", REPO / "target" / "debug" / "neutrino"))
    if not b.exists():
        pytest.fail(f"server binary {b} not found: build it with `cargo build -p neutrino` "
                    f"(or set NEUTRINO_BIN)", pytrace=False)
    return b


def builtin_config(port: int, data_dir: Path, users_toml: str) -> str:
    return f"""\
[server]
listen = "127.0.0.1:{port}"
data_dir = {toml_str(str(data_dir))}

[identity]
mode = "builtin"
token_ttl_secs = 3600

[[identity.projects]]
name = "demo"

[[identity.projects]]
name = "quota-test"

{users_toml}
[network]
base_mac = "fa:16:3e:00:00:00"

[quotas]
network = {DEFAULT_NETWORK_QUOTA}
port = {DEFAULT_PORT_QUOTA}
"""


@pytest.fixture(scope="session")
def builtin_server(request, openstack_cli, workroot):
    """Neutrino with builtin identity; users demo-member (member) and demo-reader (reader)."""
    if REFERENCE_URL:
        pytest.skip("reference run: Neutrino-only (builtin identity server) test")
    neutrino_bin = request.getfixturevalue("neutrino_bin")
    port = free_port()
    users = []
    for user, project, role in BUILTIN_USERS.values():
        try:
            h = hash_password(neutrino_bin, user + "-pw")
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
        users.append(f"""[[identity.users]]
name = "{user}"
password_hash = {toml_str(h)}
project = "{project}"
roles = ["{role}"]
""")
    workdir = workroot / "builtin"
    srv = NeutrinoServer(neutrino_bin, workdir, port,
                         builtin_config(port, workdir / "data", "\n".join(users)))
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def admin_clouds(builtin_server) -> Path:
    """The clouds.yaml the server wrote on first start (cloud `neutrino`, user admin)."""
    path = builtin_server.data_dir / "clouds.yaml"
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not path.exists():
        pytest.fail(f"server did not write {path}; data_dir holds "
                    f"{sorted(p.name for p in builtin_server.data_dir.glob('*'))}\n"
                    f"log:\n{builtin_server.log_tail()}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def admin(request) -> Cli:
    """Admin of project admin (builtin identity: the server-written clouds.yaml)."""
    if REFERENCE_URL:
        ks = request.getfixturevalue("keystone")
        return Cli(ks["clouds"], "keystone-admin", ExternalServer(REFERENCE_URL))
    return Cli(request.getfixturevalue("admin_clouds"), "neutrino",
               request.getfixturevalue("builtin_server"))


@pytest.fixture(scope="session")
def user_clouds(builtin_server, workroot) -> Path:
    auth_url = f"{builtin_server.url}/v3"
    return write_clouds(workroot / "user-clouds.yaml", {
        cloud: cloud_entry(auth_url, user, user + "-pw", project)
        for cloud, (user, project, _role) in BUILTIN_USERS.items()})


def _user_cli(request, cloud: str, ks_cloud: str) -> Cli:
    if REFERENCE_URL:
        ks = request.getfixturevalue("keystone")
        return Cli(ks["clouds"], ks_cloud, ExternalServer(REFERENCE_URL))
    return Cli(request.getfixturevalue("user_clouds"), cloud,
               request.getfixturevalue("builtin_server"))


@pytest.fixture(scope="session")
def member(request) -> Cli:
    """User with role member in project demo."""
    return _user_cli(request, "neutrino-member", "keystone-demo")


@pytest.fixture(scope="session")
def reader(request) -> Cli:
    """User with role reader in project demo."""
    return _user_cli(request, "neutrino-reader", "keystone-reader")


# --------------------------------------------------------------------------- keystone mode

def _keystone_installed() -> bool:
    return all((VENV / "bin" / n).exists() for n in ("keystone-manage", "gunicorn"))


@pytest.fixture(scope="session")
def keystone_neutrino_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def keystone(workroot, keystone_neutrino_port, openstack_cli):
    """Real Keystone (tests/keystone/run-keystone.sh) on a free port, with the
    `network` service pointing at the Neutrino of `keystone_server`."""
    required = os.environ.get("NEUTRINO_REQUIRE_KEYSTONE") == "1" or \
        os.environ.get("CI", "").lower() in ("1", "true")
    if not _keystone_installed():
        msg = (f"Keystone is not installed in {VENV} (no keystone-manage/gunicorn): "
               f"run scripts/setup-venv")
        if required:
            pytest.fail(msg + " [required: CI / NEUTRINO_REQUIRE_KEYSTONE=1]", pytrace=False)
        pytest.skip(msg)
    port = free_port()
    state = workroot / "keystone"
    network_url = (REFERENCE_URL or f"http://127.0.0.1:{keystone_neutrino_port}") + "/"
    env = {**os.environ, "KEYSTONE_PORT": str(port), "KEYSTONE_STATE": str(state),
           "KEYSTONE_VENV": str(VENV), "NEUTRINO_URL": network_url,
           "KEYSTONE_EXTRA_PROJECTS": "quota-test"}
    if REFERENCE_URL:  # the reference server validates tokens with a fixed service password
        env["KEYSTONE_PORT"] = os.environ.get("KEYSTONE_PORT", "35357")
        port = int(env["KEYSTONE_PORT"])
    proc = subprocess.run(["bash", str(KEYSTONE_SCRIPT), "start"], env=env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    info = {"url": f"http://127.0.0.1:{port}/v3", "state": state, "env": env,
            "clouds": state / "clouds.yaml", "start_output": proc.stderr}
    try:
        if proc.returncode != 0:
            pytest.fail(f"run-keystone.sh start failed ({proc.returncode}):\n"
                        f"{proc.stdout}\n{proc.stderr[-4000:]}", pytrace=False)
        creds = {}
        for line in (state / "credentials.env").read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                creds[k] = v
        info["creds"] = creds
        yield info
    finally:
        subprocess.run(["bash", str(KEYSTONE_SCRIPT), "stop"], env=env, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def keystone_server(request, keystone, keystone_neutrino_port, workroot):
    """Neutrino in identity mode `keystone`, validating tokens against the real Keystone."""
    if REFERENCE_URL:
        yield ExternalServer(REFERENCE_URL)
        return
    neutrino_bin = request.getfixturevalue("neutrino_bin")
    port = keystone_neutrino_port
    workdir = workroot / "keystone-mode"
    config = f"""\
[server]
listen = "127.0.0.1:{port}"
data_dir = {toml_str(str(workdir / "data"))}

[identity]
mode = "keystone"

[identity.keystone]
url = {toml_str(keystone["url"])}
username = "neutron"
password = {toml_str(keystone["creds"]["KEYSTONE_NEUTRON_PASSWORD"])}
project_name = "service"
user_domain_name = "Default"
project_domain_name = "Default"

[network]
base_mac = "fa:16:3e:00:00:00"
"""
    srv = NeutrinoServer(neutrino_bin, workdir, port, config)
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def ks_admin(keystone, keystone_server) -> Cli:
    return Cli(keystone["clouds"], "keystone-admin", keystone_server)


@pytest.fixture(scope="session")
def ks_demo(keystone, keystone_server) -> Cli:
    return Cli(keystone["clouds"], "keystone-demo", keystone_server)
