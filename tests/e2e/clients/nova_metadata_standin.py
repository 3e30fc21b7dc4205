"""A stand-in for Nova's metadata API (Nova does not run here), for the
proxy backend's test: `nova_metadata_standin.py HOST PORT SECRET INSTANCES`
where INSTANCES is a JSON object instance id -> project id. It checks a
request as Nova's `MetadataRequestHandler` does with
`[neutron] service_metadata_proxy = True` (nova/api/metadata/handler.py):
each missing header is a 400 naming it; the signature, hex HMAC-SHA256 of
X-Instance-ID under the shared secret compared in constant time, else 403
"Invalid proxy request signature."; an unknown instance or a project that is
not the instance's, 404. It then answers meta_data.json with what it was
sent, so the test sees the headers; any other path is a 404."""
import hashlib
import hmac
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOST, PORT, SECRET, INSTANCES = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])


class Handler(BaseHTTPRequestHandler):
    def answer(self, status: int, body: str, ctype: str = "text/plain; charset=UTF-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        h = self.headers
        for name in ("X-Instance-ID", "X-Instance-ID-Signature", "X-Tenant-ID"):
            if h.get(name) is None:
                return self.answer(400, f"{name} header is missing from request.")
        for name in ("X-Instance-ID", "X-Tenant-ID"):
            if len(h.get_all(name)) > 1:
                return self.answer(400, f"Multiple {name} headers were found in request.")
        instance, tenant = h["X-Instance-ID"], h["X-Tenant-ID"]
        want = hmac.new(SECRET.encode(), instance.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, h["X-Instance-ID-Signature"]):
            return self.answer(403, "Invalid proxy request signature.")
        if INSTANCES.get(instance) != tenant:
            return self.answer(404, "Not Found")
        url = urlsplit(self.path)
        if url.path.rstrip("/") != "/openstack/latest/meta_data.json":
            return self.answer(404, "Not Found")
        self.answer(200, json.dumps({
            "uuid": instance,
            "query": url.query,
            "headers": {k: h[k] for k in ("X-Forwarded-For", "X-Tenant-ID", "X-Instance-ID")},
        }), "application/json")

    def log_message(self, fmt, *args):
        sys.stderr.write(fmt % args + "\n")


server = ThreadingHTTPServer((HOST, PORT), Handler)
print("listening", flush=True)
server.serve_forever()
