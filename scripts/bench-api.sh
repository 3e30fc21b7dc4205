#!/usr/bin/env bash
# API benchmark: Neutrino (release build, embedded SQLite) and the real
# Neutron (29.0.0 under uWSGI on MariaDB, from ../shared/peers/neutron) driven
# with the same scenarios in one run, then printed side by side.
#
#   scripts/bench-api.sh [--count N] [--big N] [--no-neutron]
#
#   --count N     ports per scenario a/b (default 1000; Neutron needs ~5 min per 1000)
#   --big N       also bulk-load N ports into Neutrino, time listing 10,000 and N,
#                 and sample RSS (default 100000; 0 = skip)
#   --no-neutron  measure Neutrino only
#
# Results: target/bench/{neutrino,neutrino-big,neutron}.jsonl and the table on stdout.
# Both servers run in noauth mode (no identity cost on either side). The client
# (neutrino-bench for Neutrino, bench.py for Neutron) shares the 2 cores with the server.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
COUNT=1000 BIG=100000 NEUTRON=1
while [ $# -gt 0 ]; do
    case "$1" in
        --count) COUNT="$2"; shift 2 ;;
        --big) BIG="$2"; shift 2 ;;
        --no-neutron) NEUTRON=0; shift ;;
        *) sed -n '2,15p' "$0"; exit 2 ;;
    esac
done
OUT="$REPO/target/bench"; mkdir -p "$OUT"
PEER="$REPO/../shared/peers/neutron"

cargo build --release -q -p neutrino -p neutrino-bench
BIN="$REPO/target/release"

# --- Neutrino -------------------------------------------------------------
DATA="$(mktemp -d /tmp/neutrino-bench.XXXXXX)"
PORT=19797
cat > "$DATA/config.toml" <<CFG
[server]
listen = "127.0.0.1:$PORT"
data_dir = "$DATA/data"
log = "warn"
[identity]
mode = "noauth"
[quotas]
network = -1
subnet = -1
port = -1
CFG
"$BIN/neutrino" server --config "$DATA/config.toml" > "$DATA/server.log" 2>&1 &
NPID=$!
cleanup() { kill "$NPID" 2>/dev/null || true; wait "$NPID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
echo "== Neutrino: scenarios a,c,b,d,e with N=$COUNT" >&2
"$BIN/neutrino-bench" --endpoint "http://127.0.0.1:$PORT" --count "$COUNT" --server-pid "$NPID" > "$OUT/neutrino.jsonl"
if [ "$BIG" -gt 0 ]; then
    echo "== Neutrino: bulk-load $BIG ports, list at 10000 and $BIG" >&2
    "$BIN/neutrino-bench" --endpoint "http://127.0.0.1:$PORT" --big "$BIG" --list-at 10000 --list-repeat 5 --server-pid "$NPID" > "$OUT/neutrino-big.jsonl"
fi
cleanup; trap - EXIT

# --- Neutron ----------------------------------------------------------------
if [ "$NEUTRON" = 1 ] && [ -x /opt/peers/neutron-venv/bin/python ]; then
    echo "== Neutron 29.0.0 (uWSGI 2x1, MariaDB): scenarios a,c,b,d,e with N=$COUNT" >&2
    NEUTRON_PORT=19798 "$PEER/run-server.sh" >&2
    NEUTRON_PORT=19798 "$PEER/run-server.sh" watch-rss 3600 > "$OUT/neutron-rss.txt" 2>&1 &
    WPID=$!
    /opt/peers/neutron-venv/bin/python "$PEER/bench.py" --endpoint http://127.0.0.1:19798 --count "$COUNT" > "$OUT/neutron.jsonl" || true
    NEUTRON_PORT=19798 "$PEER/run-server.sh" stop >&2 || true
    wait "$WPID" 2>/dev/null || true
elif [ "$NEUTRON" = 1 ]; then
    echo "== Neutron peer not installed (bash ../shared/peers/neutron/setup.sh): Neutrino only" >&2
fi

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name)
    if not os.path.exists(p): return {}
    rows = {}
    for line in open(p):
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line); rows[d.get("scenario")] = d
    return rows
n, p = load("neutrino.jsonl"), load("neutron.jsonl")
def cell(d, s):
    if s not in d: return "-"
    r = d[s]
    if s == "c":
        return "p50 %s / p99 %s ms" % (r.get("p50_ms"), r.get("p99_ms"))
    return "%s/s, p50 %s / p99 %s ms" % (r.get("rate_per_s"), r.get("p50_ms"), r.get("p99_ms"))
names = {"a": "a: create ports, c=1", "c": "c: list all ports of a", "b": "b: create ports, c=16",
         "d": "d: delete ports, c=1", "e": "e: net+subnet create, net delete (cycles)"}
print("| scenario | Neutrino | Neutron 29.0.0 |")
print("|---|---|---|")
for s in "acbde":
    print("| %s | %s | %s |" % (names[s], cell(n, s), cell(p, s)))
rss_n = n.get("end", {}).get("server_hwm_mib")
print("| server peak RSS (MiB) | %s | %s |" % (rss_n, open(os.path.join(out, "neutron-rss.txt")).read().strip().splitlines()[-1] if os.path.exists(os.path.join(out, "neutron-rss.txt")) else "-"))
big = load("neutrino-big.jsonl")
if big:
    print()
    print("Neutrino bulk load:")
    for k, v in big.items():
        print(" ", k, json.dumps(v, sort_keys=True))
PY
