"""A plain HTTP client for the metadata tests, run inside an instance's
namespace: `http_get.py URL [METHOD] [BODY_BYTES] [SOURCE_IP]` prints
`<status>\\n<body>` (status 0 and the error when nothing answered)."""
import http.client
import sys
import urllib.parse

url = urllib.parse.urlsplit(sys.argv[1])
method = sys.argv[2] if len(sys.argv) > 2 else "GET"
body = b"x" * int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "0" else None
source = (sys.argv[4], 0) if len(sys.argv) > 4 else None
try:
    c = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=4, source_address=source)
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    c.request(method, path, body=body)
    r = c.getresponse()
    sys.stdout.write(f"{r.status}\n{r.read().decode(errors='replace')}")
except OSError as e:
    sys.stdout.write(f"0\n{e}")
