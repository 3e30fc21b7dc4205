#!/usr/bin/env python3
"""Idempotent Keystone v3 admin calls used by run-keystone.sh (stdlib only).

  ks_admin.py wait URL [SECONDS]           wait until GET URL/v3 answers 200
  ks_admin.py setup                        service/neutron(admin), demo/demo(member),
                                           demo/reader(reader)
  ks_admin.py register-network URL         service 'network' + public endpoint URL
  ks_admin.py token USER PASSWORD PROJECT  print a project-scoped token

Connection settings come from the environment that run-keystone.sh exports:
KS_URL (http://127.0.0.1:PORT, no /v3), KS_ADMIN_PASSWORD, KS_NEUTRON_PASSWORD,
KS_DEMO_PASSWORD, KS_READER_PASSWORD, KS_REGION.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request


def _req(method, url, token=None, body=None, ok=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        if e.code in ok:
            return e.code, dict(e.headers), (json.loads(raw) if raw else None)
        raise SystemExit(f"{method} {url} -> {e.code}: {raw[:500]!r}")


def v3():
    return os.environ["KS_URL"].rstrip("/") + "/v3"


def token(user, password, project):
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}},
    }}
    _, headers, _ = _req("POST", v3() + "/auth/tokens", body=body)
    return headers.get("X-Subject-Token") or headers.get("x-subject-token")


def admin_token():
    return token("admin", os.environ["KS_ADMIN_PASSWORD"], "admin")


def find(tok, collection, key, name, extra=""):
    _, _, body = _req("GET", f"{v3()}/{collection}?name={name}{extra}", tok)
    items = body[key]
    return items[0] if items else None


def ensure_project(tok, name):
    p = find(tok, "projects", "projects", name, "&domain_id=default")
    if p:
        return p["id"]
    _, _, body = _req("POST", v3() + "/projects", tok, {"project": {
        "name": name, "domain_id": "default", "description": f"{name} project"}})
    return body["project"]["id"]


def ensure_user(tok, name, password, project_id):
    u = find(tok, "users", "users", name, "&domain_id=default")
    if u:
        # Keep the password in step with the environment, but only change it when it
        # differs: a password change revokes the user's tokens, including ones
        # issued later in the same second (Keystone's revocation granularity).
        status, _, _ = _req("POST", v3() + "/auth/tokens", body={"auth": {"identity": {
            "methods": ["password"], "password": {"user": {
                "id": u["id"], "password": password}}}}}, ok=(201, 401))
        if status != 201:
            _req("PATCH", f"{v3()}/users/{u['id']}", tok, {"user": {"password": password}})
            time.sleep(1.1)
        return u["id"]
    _, _, body = _req("POST", v3() + "/users", tok, {"user": {
        "name": name, "domain_id": "default", "password": password,
        "default_project_id": project_id}})
    return body["user"]["id"]


def grant(tok, project_id, user_id, role_name):
    role = find(tok, "roles", "roles", role_name)
    if role is None:
        raise SystemExit(f"role {role_name} not found (keystone-manage bootstrap creates it)")
    _req("PUT", f"{v3()}/projects/{project_id}/users/{user_id}/roles/{role['id']}", tok)


def cmd_setup():
    tok = admin_token()
    service = ensure_project(tok, "service")
    neutron = ensure_user(tok, "neutron", os.environ["KS_NEUTRON_PASSWORD"], service)
    grant(tok, service, neutron, "admin")
    # keystonemiddleware-style deployments also give the service user the
    # 'service' role; create it so a server that checks for it can find it.
    if find(tok, "roles", "roles", "service") is None:
        _req("POST", v3() + "/roles", tok, {"role": {"name": "service"}})
    grant(tok, service, neutron, "service")
    demo = ensure_project(tok, "demo")
    demo_user = ensure_user(tok, "demo", os.environ["KS_DEMO_PASSWORD"], demo)
    grant(tok, demo, demo_user, "member")
    reader = ensure_user(tok, "reader", os.environ["KS_READER_PASSWORD"], demo)
    grant(tok, demo, reader, "reader")
    for extra in filter(None, os.environ.get("KS_EXTRA_PROJECTS", "").split(",")):
        ensure_project(tok, extra.strip())
    print(f"keystone: projects service={service} demo={demo}; users neutron, demo, reader")


def cmd_register_network(url):
    tok = admin_token()
    region = os.environ.get("KS_REGION", "RegionOne")
    _, _, body = _req("GET", v3() + "/services?type=network", tok)
    if body["services"]:
        sid = body["services"][0]["id"]
    else:
        _, _, b = _req("POST", v3() + "/services", tok, {"service": {
            "type": "network", "name": "neutron", "description": "Neutrino (Neutron API)",
            "enabled": True}})
        sid = b["service"]["id"]
    _, _, body = _req("GET", f"{v3()}/endpoints?service_id={sid}", tok)
    for ep in body["endpoints"]:
        _req("DELETE", f"{v3()}/endpoints/{ep['id']}", tok)
    for iface in ("public", "internal", "admin"):
        _req("POST", v3() + "/endpoints", tok, {"endpoint": {
            "service_id": sid, "interface": iface, "url": url, "region_id": region,
            "enabled": True}})
    print(f"keystone: network endpoint -> {url}")


def cmd_wait(url, seconds):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/v3", timeout=5) as resp:
                if resp.status == 200:
                    return
        except Exception as e:  # noqa: BLE001 - anything means "not yet"
            last = e
        time.sleep(0.5)
    raise SystemExit(f"keystone did not answer GET {url}/v3 within {seconds}s: {last}")


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd = argv[1]
    if cmd == "wait":
        cmd_wait(argv[2], float(argv[3]) if len(argv) > 3 else 90)
    elif cmd == "setup":
        cmd_setup()
    elif cmd == "register-network":
        cmd_register_network(argv[2])
    elif cmd == "token":
        print(token(argv[2], argv[3], argv[4]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
