#!/usr/bin/env bash
# DHCPv4 benchmark: Neutrino's native DHCP (the agent, fed 100,000 ports
# through the Neutron API) against Kea and dnsmasq, on one perfdhcp rig, in
# one run, then printed side by side and written to docs/benchmarks.md.
#
#   sudo scripts/bench-dhcp.sh            (run as root; ~15-20 min with PERIOD=10)
#
# Rig (two network namespaces joined by a veth pair; nothing touches the root
# namespace's interfaces):
#   dhb-srv  dhb-s0 ---- veth ---- dhb-c0  dhb-cli
#   dhb-cli: perfdhcp, acting as a relay agent: 10.99.255.254/16 on dhb-c0,
#            giaddr 10.99.255.254, replies expected unicast at giaddr:67.
#   native:  dhb-srv is the agent's host namespace (agent.host_netns); dhb-s0
#            is the physical interface of a flat network (physnet1), so the
#            agent enslaves it to the network's bridge brq...; the DHCP port's
#            address lives in <prefix>qdhcp-<net> and is what perfdhcp targets.
#            The Neutrino server runs in dhb-srv too (127.0.0.1:9696).
#   peers:   Kea / dnsmasq in dhb-srv on dhb-s0 = 10.99.0.1/16 (the rig is
#            rebuilt between the native part and the peers).
#
# Method (per variant; the same as ../shared/peers/dhcp, reimplemented here):
#   a flood run (perfdhcp without -r) gives M exchanges/s; then rates
#   0.4M 0.6M 0.8M 1.0M 1.2M 1.5M 2M until the first with >= DROP_LIMIT % lost
#   4-way exchanges (halving if 0.4M fails, doubling if all pass), then REFINE
#   bisection steps. lost = 1 - ACKs/DISCOVERs. Kea and dnsmasq are restarted
#   with an empty lease file for every run; the native server keeps no lease
#   state (reservations only), so the agent stays up across runs.
#   CPU: utime+stime of the server process (for native: the whole agent
#   process, all threads) and of perfdhcp, in % of ONE core over the run.
#
# Environment:
#   PERIOD (10 s per run)  REFINE (2)  DROP_LIMIT (1.0)  CLIENTS (50000: -R for
#   the pool variants)  NRESV (100000 native reservations)  KEA_NRESV (50000)
#   BULK (10000 ports per bulk request)  VARIANTS ("native kea kea-mt kea-resv
#   dnsmasq")  DNSMASQ_RATES ("50 100 150 200": dnsmasq collapses under a flood,
#   so it runs at these rates only)  WRITE_DOCS (1: replace/append the section
#   in docs/benchmarks.md)  KEEP (0: 1 keeps the work dir)
#   LOADGEN (perfdhcp | neutrino): the load generator. neutrino = this repository's
#   neutrino-dhcp-load (crates/bench, built here), a single-threaded relay-agent DORA
#   generator with the same roles as perfdhcp (giaddr, -M MACs / -R clients, 1 s drop
#   time, lost = 1 - ACKs/DISCOVERs); its flood run is closed-loop with LG_OUTSTANDING
#   (64) exchanges in flight. Its results go to their own docs section
#   ("..., neutrino-dhcp-load") and to target/bench-dhcp-neutrino.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

PERIOD=${PERIOD:-10}
REFINE=${REFINE:-2}
DROP_LIMIT=${DROP_LIMIT:-1.0}
CLIENTS=${CLIENTS:-50000}
NRESV=${NRESV:-100000}
KEA_NRESV=${KEA_NRESV:-50000}
BULK=${BULK:-10000}
VARIANTS=${VARIANTS:-"native kea kea-mt kea-resv dnsmasq"}
DNSMASQ_RATES=${DNSMASQ_RATES:-"50 100 150 200"}
WRITE_DOCS=${WRITE_DOCS:-1}
KEEP=${KEEP:-0}
LOADGEN=${LOADGEN:-perfdhcp}
LG_OUTSTANDING=${LG_OUTSTANDING:-64}
case "$LOADGEN" in
  perfdhcp) GEN_NAME=perfdhcp ;;
  neutrino) GEN_NAME=neutrino-dhcp-load ;;
  *) echo "LOADGEN must be perfdhcp or neutrino" >&2; exit 2 ;;
esac
LG_BIN="$REPO/target/release/neutrino-dhcp-load"

SRV_NS=dhb-srv CLI_NS=dhb-cli SRV_IF=dhb-s0 CLI_IF=dhb-c0
RELAY=10.99.255.254
NS_PREFIX=dhbn-            # the agent's DHCP namespaces: dhbn-qdhcp-<net>
API=http://127.0.0.1:9696
BIN="$REPO/target/release/neutrino"
WORK=$(mktemp -d /tmp/neutrino-bench-dhcp.XXXXXX)
chmod 755 "$WORK"
RES=$WORK/results
mkdir -p "$RES"
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# ---------------------------------------------------------------- cleanup --
PIDS=()            # every long-running process we started
SERVER_PID=        # the DHCP server whose CPU counts (agent / kea / dnsmasq)

stop_pid() {       # stop_pid PID: TERM, wait up to 5 s, KILL
  local pid=$1
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

our_namespaces() {
  ip netns list | awk '{print $1}' | grep -E "^(${SRV_NS}|${CLI_NS}|${NS_PREFIX}qdhcp-.*)$" || true
}

rig_down() {
  local ns pid
  for ns in $(our_namespaces); do
    # Whatever still runs in these namespaces was started by this script
    # (we refuse to start when they are busy, see rig_check).
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_pid "$SERVER_PID"
  local i
  for (( i=${#PIDS[@]}-1; i>=0; i-- )); do stop_pid "${PIDS[$i]}"; done
  rig_down
  if [ "$KEEP" = 1 ] || [ $rc != 0 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rig_check() {      # refuse to take over namespaces that someone else is using
  local ns pids
  for ns in $(our_namespaces); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      echo "namespace $ns is in use (pids: $pids): another rig run? stop it first" >&2
      trap - EXIT; exit 1
    fi
  done
}

# rig_up native|peer: fresh namespaces and veth pair. peer: dhb-s0 carries
# 10.99.0.1/16 for Kea/dnsmasq; native: dhb-s0 has no address (it becomes a
# bridge port of the flat network).
rig_up() {
  rig_down
  ip netns add "$SRV_NS"; ip netns add "$CLI_NS"
  ip -n "$SRV_NS" link add "$SRV_IF" type veth peer name "$CLI_IF" netns "$CLI_NS"
  ip -n "$SRV_NS" link set "$SRV_IF" address 02:db:00:00:00:01
  ip -n "$CLI_NS" link set "$CLI_IF" address 02:db:00:00:00:02
  ip -n "$SRV_NS" link set lo up; ip -n "$CLI_NS" link set lo up
  [ "$1" = peer ] && ip -n "$SRV_NS" addr add 10.99.0.1/16 dev "$SRV_IF"
  ip -n "$CLI_NS" addr add "$RELAY/16" dev "$CLI_IF"
  ip -n "$SRV_NS" link set "$SRV_IF" up; ip -n "$CLI_NS" link set "$CLI_IF" up
}

# ----------------------------------------------------------- reservations --
# MAC i = 02:db:01:XX:XX:XX (i = 1..N, 24-bit i). A /16 holds < 65,536 hosts,
# so 100,000 reservations need two subnets: k = i-1 < 60,000 -> 10.99.a.b,
# the rest -> 10.100.a.b (a = 1 + k'/250, b = 1 + k'%250).
# resv.csv: mac,ip,subnet (0 = 10.99.0.0/16, 1 = 10.100.0.0/16)
gen_reservations() {
  awk -v n="$NRESV" 'BEGIN{for(i=1;i<=n;i++){k=i-1; s=0; if(k>=60000){k-=60000; s=1}
      printf "02:db:01:%02x:%02x:%02x,10.%d.%d.%d,%d\n", int(i/65536)%256, int(i/256)%256, i%256,
             99+s, 1+int(k/250), 1+k%250, s}}' > "$WORK/resv.csv"
  cut -d, -f1 "$WORK/resv.csv" > "$WORK/macs-native.txt"
  head -n "$KEA_NRESV" "$WORK/resv.csv" | awk -F, '$3==0' > "$WORK/resv-kea.csv"
  cut -d, -f1 "$WORK/resv-kea.csv" > "$WORK/macs-kea.txt"
}

# ------------------------------------------------------------------ sweep --
proc_ticks() {     # utime+stime of a process (all threads), in clock ticks
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo $(( ${12} + ${13} ))
}
srv_udp_drops() {  # UDP RcvbufErrors summed over the server-side namespaces (the agent's
                   # qdhcp namespaces, dhb-srv). Not for Kea: in raw-socket mode it receives
                   # on a packet socket and keeps a UDP "fallback" socket on port 67 that it
                   # only drains, so drops there are not lost requests.
  local ns t=0 n
  case "$VARIANT" in kea*) echo 0; return ;; esac
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^(${SRV_NS}|${NS_PREFIX}qdhcp-.*)$"); do
    n=$(ip netns exec "$ns" awk '/^Udp:/{if (++k == 1) for (i=1;i<=NF;i++) c[$i]=i; else print $c["RcvbufErrors"]}' /proc/net/snmp 2>/dev/null)
    t=$((t + ${n:-0}))
  done
  echo "$t"
}
host_cpu() {       # "busy total" jiffies, all cores
  awk '/^cpu /{t=0; for(i=2;i<=9;i++) t+=$i; print t-$5-$6, t; exit}' /proc/stat
}

TARGET=            # address perfdhcp sends to
PERF_EXTRA=()      # e.g. (-M macs.txt)
LG_EXTRA=()        # the same for neutrino-dhcp-load: (--macs macs.txt) or (--clients N)
LOST=100

perfdhcp_probe() { # one DORA answered within ~60 s? (with the selected generator)
  for _ in $(seq 120); do
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server died during start"; return 1; }
    if [ "$LOADGEN" = neutrino ]; then
      if timeout 10 ip netns exec "$CLI_NS" "$LG_BIN" --server "$TARGET" --relay "$RELAY" --rate 5 \
          --duration 1 --timeout-ms 500 "${LG_EXTRA[@]}" 2>&1 \
          | awk '/^RESULT /{for(i=2;i<=NF;i++){split($i,kv,"="); if(kv[1]=="completed") ok=(kv[2]>0)}} END{exit !ok}'; then
        return 0
      fi
    elif timeout 10 ip netns exec "$CLI_NS" perfdhcp -4 -l "$CLI_IF" -r 5 -p 1 -W 500000 "${PERF_EXTRA[@]}" "$TARGET" 2>&1 \
        | awk '/Statistics for: REQUEST-ACK/{ra=1} ra && /^received packets:/{ok=($3>0)} END{exit !ok}'; then
      return 0
    fi
    sleep 0.5
  done
  log "no DORA answered in 60 s"; return 1
}

# run_one VARIANT RATE|max: appends a row to $RES/VARIANT.tsv, sets LOST
run_one() {
  local v=$1 rate=$2 out rarg=() s0 s1 hb0 ht0 hb1 ht1 t0 t1 alive=yes
  out=$RES/$v.r$rate.log
  [ "$rate" != max ] && rarg=(-r "$rate")
  server_start
  if ! perfdhcp_probe; then
    server_stop
    printf '%s\t%s\t0\t0\t0\t100\t\t\t\t\t0\t0\t0\tno\t\t\t\t\t0\n' "$v" "$rate" >> "$RES/$v.tsv"
    LOST=100; return 0
  fi
  read -r hb0 ht0 < <(host_cpu)
  local d0 d1; d0=$(srv_udp_drops)
  s0=$(proc_ticks "$SERVER_PID"); t0=$(date +%s.%N)
  # Generator CPU for both: user+sys of the whole command (bash `time`).
  if [ "$LOADGEN" = neutrino ]; then
    if [ "$rate" = max ]; then rarg=(--rate 0 --outstanding "$LG_OUTSTANDING"); else rarg=(--rate "$rate"); fi
    {
      TIMEFORMAT='perfdhcp_time real=%R user=%U sys=%S'
      time timeout $((PERIOD + 60)) ip netns exec "$CLI_NS" "$LG_BIN" --server "$TARGET" --relay "$RELAY" \
        "${rarg[@]}" --duration "$PERIOD" --timeout-ms 1000 "${LG_EXTRA[@]}" || true
    } > "$out" 2>&1
  else
  {
    TIMEFORMAT='perfdhcp_time real=%R user=%U sys=%S'
    time timeout $((PERIOD + 60)) ip netns exec "$CLI_NS" perfdhcp -4 -l "$CLI_IF" "${rarg[@]}" \
      -R "$CLIENTS" -p "$PERIOD" -W 1000000 "${PERF_EXTRA[@]}" "$TARGET" || true
  } > "$out" 2>&1
  fi
  t1=$(date +%s.%N); s1=$(proc_ticks "$SERVER_PID")
  d1=$(srv_udp_drops)
  read -r hb1 ht1 < <(host_cpu)
  kill -0 "$SERVER_PID" 2>/dev/null || alive=no
  server_stop
  awk -v v="$v" -v rate="$rate" -v period="$PERIOD" -v alive="$alive" -v sticks=$((s1 - s0)) \
      -v tck="$CLK_TCK" -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
      -v hb=$((hb1 - hb0)) -v ht=$((ht1 - ht0)) -v sdrops=$((d1 - d0)) '
    /Statistics for: DISCOVER-OFFER/ {sec="do"}
    /Statistics for: REQUEST-ACK/    {sec="ra"}
    /^sent packets:/     {x[sec "_sent"]=$3}
    /^received packets:/ {x[sec "_recv"]=$3}
    /^avg delay:/        {x[sec "_avg"]=$3}
    /^max delay:/        {x[sec "_max"]=$3}
    /^perfdhcp_time/     {split($3,u,"="); split($4,s,"="); pc=u[2]+s[2]}
    /^RESULT /           {for (i=2; i<=NF; i++) {split($i,kv,"="); r[kv[1]]=kv[2]}
                          x["do_sent"]=r["started"]; x["ra_recv"]=r["completed"]
                          x["do_avg"]=r["do_avg_ms"]; x["do_max"]=r["do_max_ms"]; x["do_p99"]=r["do_p99_ms"]
                          x["ra_avg"]=r["ra_avg_ms"]; x["ra_max"]=r["ra_max_ms"]; x["ra_p99"]=r["ra_p99_ms"]
                          x["rcvbuf"]=r["rcvbuf_errors"]}
    END {
      off=x["do_sent"]+0; comp=x["ra_recv"]+0
      lost=(off>0)?100*(1-comp/off):100; if (alive!="yes") lost=100
      printf "%s\t%s\t%d\t%d\t%.0f\t%.3f\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%.1f\t%s\t%d\n", v, rate, off, comp,
        comp/period, lost, x["do_avg"], x["do_max"], x["ra_avg"], x["ra_max"],
        100*sticks/tck/wall, 100*pc/wall, (ht>0)?100*hb/ht:0, alive, x["do_p99"], x["ra_p99"],
        (comp>0)?1e6*pc/comp:0, x["rcvbuf"], sdrops
    }' "$out" >> "$RES/$v.tsv"
  local row; row=$(tail -1 "$RES/$v.tsv")
  awk -F'\t' -v g="$GEN_NAME" '{printf "  %-9s rate=%-6s exch/s=%-6s lost=%-7s%% DO avg/max=%s/%s ms RA avg/max=%s/%s ms srv=%s%% %s=%s%% (%s us/exch) host=%s%% alive=%s%s srv-udp-rcvbuf-drops=%s\n",
               $1,$2,$5,$6,$7,$8,$9,$10,$11,g,$12,$17,$13,$14,($18!="" ? " gen-rcvbuf-drops=" $18 : ""),$19}' <<< "$row" >&2
  LOST=$(cut -f6 <<< "$row")
}

passes() { awk -v l="$1" -v lim="$DROP_LIMIT" 'BEGIN{exit !(l < lim)}'; }
round_rate() { awk -v r="$1" 'BEGIN{g=(r>=2000)?50:((r>=200)?10:1); r=int(r/g+0.5)*g; if(r<1)r=1; print r}'; }

# sweep VARIANT [fixed rates]: prints nothing; results in $RES/VARIANT.{tsv,best}
sweep() {
  local v=$1 fixed=${2:-} max=0 best=0 fail=0 r rates
  printf 'variant\trate\toffered\tcompleted\texch_s\tlost_pct\tdo_avg\tdo_max\tra_avg\tra_max\tsrv_cpu\tgen_cpu\thost_busy\talive\tdo_p99\tra_p99\tgen_us_per_exch\tgen_rcvbuf_drops\tsrv_udp_rcvbuf_drops\n' > "$RES/$v.tsv"
  log "== $v (PERIOD=${PERIOD}s, drop limit ${DROP_LIMIT}%, generator $GEN_NAME)"
  if [ -n "$fixed" ]; then
    rates=$fixed
  else
    run_one "$v" max
    max=$(tail -1 "$RES/$v.tsv" | cut -f5)
    [ "$max" -gt 0 ] || max=10
    rates=$(for f in 0.4 0.6 0.8 1.0 1.2 1.5 2.0; do round_rate "$(awk -v m="$max" -v f="$f" 'BEGIN{print m*f}')"; done | awk '!seen[$0]++')
  fi
  for r in $rates; do
    run_one "$v" "$r"
    if passes "$LOST"; then best=$r; else fail=$r; break; fi
  done
  if [ "$best" = 0 ]; then
    r=${fail:-$max}
    while [ "$r" -gt 1 ]; do
      fail=$r; r=$(round_rate $(( r / 2 )))
      run_one "$v" "$r"
      if passes "$LOST"; then best=$r; break; fi
    done
  fi
  if [ "$fail" = 0 ] && [ -z "$fixed" ]; then
    for _ in $(seq 6); do
      r=$(round_rate $(( best * 2 )))
      run_one "$v" "$r"
      if passes "$LOST"; then best=$r; else fail=$r; break; fi
    done
  fi
  if [ "$fail" != 0 ] && [ "$best" != 0 ]; then
    for _ in $(seq "$REFINE"); do
      r=$(round_rate $(( (best + fail) / 2 )))
      { [ "$r" -le "$best" ] || [ "$r" -ge "$fail" ]; } && break
      run_one "$v" "$r"
      if passes "$LOST"; then best=$r; else fail=$r; fi
    done
  fi
  echo "$best $fail $max" > "$RES/$v.best"
  log "$v: best rate under ${DROP_LIMIT}% lost = $best/s (first fail $fail/s, flood $max/s)"
}

# ----------------------------------------------------------------- native --
api() {            # api METHOD PATH [BODY_FILE] -> response body on stdout
  local args=(-sS --fail-with-body -X "$1" -H 'content-type: application/json' "$API$2")
  [ $# -ge 3 ] && args+=(--data-binary "@$3")
  ip netns exec "$SRV_NS" curl "${args[@]}"
}
metric() {         # value of an agent metric (sum of samples)
  ip netns exec "$SRV_NS" curl -sf http://127.0.0.1:9697/metrics 2>/dev/null \
    | awk -v m="$1" '$1==m || index($1, m "{")==1 {s+=$2; f=1} END{if(f) print s; else print 0}'
}

AGENT_PID=
NSERVER_PID=
LOAD_RATE=
NATIVE_NOTES=

native_setup() {
  rig_up native
  mkdir -p "$WORK/server" "$WORK/agent"
  cat > "$WORK/server.toml" <<EOF
[server]
listen = "127.0.0.1:9696"
data_dir = "$WORK/server"
log = "warn"
[identity]
mode = "noauth"
[quotas]
network = -1
subnet = -1
port = -1
EOF
  ip netns exec "$SRV_NS" "$BIN" server --config "$WORK/server.toml" > "$WORK/server.log" 2>&1 &
  NSERVER_PID=$!; PIDS+=("$NSERVER_PID")
  for _ in $(seq 100); do api GET /v2.0/networks >/dev/null 2>&1 && break; sleep 0.2; done
  api GET /v2.0/networks > /dev/null

  echo '{"network": {"name": "bench-dhcp", "provider:network_type": "flat",
         "provider:physical_network": "physnet1", "mtu": 1450}}' > "$WORK/net.json"
  NET_ID=$(api POST /v2.0/networks "$WORK/net.json" | jq -r .network.id)
  local mtu; mtu=$(api GET "/v2.0/networks/$NET_ID" | jq -r .network.mtu)
  [ "$mtu" = 1450 ] || NATIVE_NOTES+="network mtu is $mtu (1450 not accepted). "
  jq -n --arg net "$NET_ID" '{subnet: {network_id: $net, name: "bench-a", ip_version: 4,
      cidr: "10.99.0.0/16", gateway_ip: "10.99.0.1", dns_nameservers: ["10.99.0.1"],
      allocation_pools: [{start: "10.99.0.2", end: "10.99.0.254"}], enable_dhcp: true}}' > "$WORK/sub-a.json"
  jq -n --arg net "$NET_ID" '{subnet: {network_id: $net, name: "bench-b", ip_version: 4,
      cidr: "10.100.0.0/16", gateway_ip: "10.100.0.1", dns_nameservers: ["10.99.0.1"],
      allocation_pools: [{start: "10.100.0.2", end: "10.100.0.254"}], enable_dhcp: true}}' > "$WORK/sub-b.json"
  SUB_A=$(api POST /v2.0/subnets "$WORK/sub-a.json" | jq -r .subnet.id)
  SUB_B=$(api POST /v2.0/subnets "$WORK/sub-b.json" | jq -r .subnet.id)

  # Bulk bodies first (not timed), then the timed POSTs.
  mkdir -p "$WORK/bulk"
  awk -F, -v net="$NET_ID" -v sa="$SUB_A" -v sb="$SUB_B" -v bulk="$BULK" -v dir="$WORK/bulk" '
    function flush() { if (n) { print "]}" > f; close(f) } n=0 }
    { if (n == 0) { f = sprintf("%s/%06d.json", dir, NR); printf "{\"ports\": [" > f }
      printf "%s{\"network_id\":\"%s\",\"name\":\"vm-%d\",\"mac_address\":\"%s\",\"device_owner\":\"compute:nova\",\"fixed_ips\":[{\"subnet_id\":\"%s\",\"ip_address\":\"%s\"}]}",
             (n ? "," : ""), net, NR, $1, ($3 == 0 ? sa : sb), $2 > f
      if (++n == bulk) flush() }
    END { flush() }' "$WORK/resv.csv"
  log "loading $NRESV ports through the API ($BULK per bulk request)"
  local t0 t1 f got
  t0=$(date +%s.%N)
  for f in "$WORK"/bulk/*.json; do
    got=$(api POST /v2.0/ports "$f" | jq '.ports | length')
    [ "$got" -gt 0 ] || { log "bulk create returned no ports for $f"; return 1; }
  done
  t1=$(date +%s.%N)
  LOAD_RATE=$(awk -v n="$NRESV" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f ports/s (%.1f s for %d ports)", n/(b-a), b-a, n}')
  log "bulk load: $LOAD_RATE"

  cat > "$WORK/agent.toml" <<EOF
[agent]
host = "bench-dhcp"
server_url = "$API"
secret_file = "$WORK/server/agent-secret"
namespace_prefix = "$NS_PREFIX"
state_dir = "$WORK/agent"
metrics_listen = "127.0.0.1:9697"
host_netns = "$SRV_NS"
report_interval_secs = 5

[l2]
physical_interface_mappings = { physnet1 = "$SRV_IF" }

[dhcp]
mode = "all"
driver = "native"
EOF
  local a0; a0=$(date +%s.%N)
  RUST_LOG=${RUST_LOG:-warn} "$BIN" agent --config "$WORK/agent.toml" > "$WORK/agent.log" 2>&1 &
  AGENT_PID=$!; PIDS+=("$AGENT_PID")
  log "agent pid $AGENT_PID: waiting for neutrino_agent_dhcp_reservations >= $NRESV"
  local n=0
  for _ in $(seq 600); do
    kill -0 "$AGENT_PID" 2>/dev/null || { log "agent died:"; tail -20 "$WORK/agent.log" >&2; return 1; }
    n=$(metric neutrino_agent_dhcp_reservations)
    awk -v n="$n" -v m="$NRESV" 'BEGIN{exit !(n >= m)}' && break
    sleep 0.5
  done
  awk -v n="$n" -v m="$NRESV" 'BEGIN{exit !(n >= m)}' || { log "only $n reservations after 300 s"; return 1; }
  AGENT_READY=$(awk -v a="$a0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  log "agent serves $n reservations (${AGENT_READY} s after start)"

  local dhcp
  dhcp=$(api GET "/v2.0/ports?network_id=$NET_ID&device_owner=network:dhcp")
  TARGET=$(jq -r --arg s "$SUB_A" '.ports[0].fixed_ips[] | select(.subnet_id == $s) | .ip_address' <<< "$dhcp")
  [ -n "$TARGET" ] && [ "$TARGET" != null ] || { log "no network:dhcp port: $dhcp"; return 1; }
  NATIVE_TARGET=$TARGET
  log "DHCP port address (perfdhcp target): $TARGET"
  SERVER_PID=$AGENT_PID
  PERF_EXTRA=(-M "$WORK/macs-native.txt"); LG_EXTRA=(--macs "$WORK/macs-native.txt")
  # The relay address must reach the DHCP port over the bridge.
  for _ in $(seq 60); do
    ip netns exec "$CLI_NS" ping -c1 -W1 "$TARGET" >/dev/null 2>&1 && break; sleep 0.5
  done
  ip netns exec "$CLI_NS" ping -c1 -W1 "$TARGET" >/dev/null || { log "$RELAY cannot reach $TARGET"; return 1; }
  # One handshake checked by hand: the reply must carry the reserved address.
  perfdhcp_probe
}

# ------------------------------------------------------------------- peers --
kea_conf() {       # kea_conf VARIANT > json
  local mt=false pools='"pools": [ { "pool": "10.99.0.10 - 10.99.255.200" } ],' resv=''
  [ "$1" = kea-mt ] && mt=true
  if [ "$1" = kea-resv ]; then
    pools='"reservations-in-subnet": true, "reservations-out-of-pool": true,'
    resv=$(awk -F, 'BEGIN{printf "\"reservations\": ["} {printf "%s{\"hw-address\":\"%s\",\"ip-address\":\"%s\"}", (NR>1?",":""), $1, $2} END{print "],"}' "$WORK/resv-kea.csv")
  fi
  cat <<EOF
{ "Dhcp4": {
  "interfaces-config": { "interfaces": ["$SRV_IF"], "dhcp-socket-type": "raw" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$WORK/kea/leases4.csv", "lfc-interval": 3600 },
  "multi-threading": { "enable-multi-threading": $mt, "thread-pool-size": 2, "packet-queue-size": 64 },
  "host-reservation-identifiers": [ "hw-address" ],
  "valid-lifetime": 4000, "renew-timer": 1000, "rebind-timer": 2000,
  "subnet4": [ { "id": 1, "subnet": "10.99.0.0/16", $pools $resv
      "option-data": [ { "name": "routers", "data": "10.99.0.1" },
                       { "name": "domain-name-servers", "data": "10.99.0.1" },
                       { "name": "interface-mtu", "data": "1450" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "stdout" } ], "severity": "WARN" } ]
} }
EOF
}

dnsmasq_conf() {
  cat <<EOF
port=0
interface=$SRV_IF
bind-interfaces
dhcp-authoritative
dhcp-lease-max=200000
dhcp-leasefile=$WORK/dnsmasq/leases
dhcp-option=option:router,10.99.0.1
dhcp-option=option:dns-server,10.99.0.1
dhcp-option=option:mtu,1450
quiet-dhcp
dhcp-range=10.99.0.10,10.99.255.200,255.255.0.0,4000s
no-ping
EOF
}

VARIANT=
server_start() {
  case "$VARIANT" in
    native) ;;     # the agent stays up; SERVER_PID is the agent
    kea*)
      rm -f "$WORK"/kea/leases4.csv* "$WORK"/kea/*.pid
      ip netns exec "$SRV_NS" env KEA_PIDFILE_DIR="$WORK/kea" KEA_LOCKFILE_DIR="$WORK/kea" \
        /usr/sbin/kea-dhcp4 -c "$WORK/kea/$VARIANT.json" >> "$WORK/kea/$VARIANT.log" 2>&1 &
      SERVER_PID=$! ;;
    dnsmasq)
      rm -f "$WORK/dnsmasq/leases"
      ip netns exec "$SRV_NS" /usr/sbin/dnsmasq --keep-in-foreground --conf-file="$WORK/dnsmasq/dnsmasq.conf" \
        --pid-file= --log-facility=- >> "$WORK/dnsmasq/dnsmasq.log" 2>&1 &
      SERVER_PID=$! ;;
  esac
}
server_stop() {
  [ "$VARIANT" = native ] && return 0
  stop_pid "$SERVER_PID"; SERVER_PID=
}

# ------------------------------------------------------------------- main --
rig_check
for tool in $([ "$LOADGEN" = perfdhcp ] && echo perfdhcp) kea-dhcp4 dnsmasq jq curl; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
    echo "$tool missing: install kea-dhcp4-server kea-admin dnsmasq-base jq curl (../shared/peers/dhcp/setup.sh)" >&2; exit 1; }
done
if [ ! -x "$BIN" ]; then
  log "building $BIN (cargo build --release -p neutrino)"
  cargo build --release -p neutrino
fi
if [ "$LOADGEN" = neutrino ]; then
  log "building $LG_BIN (cargo build --release -p neutrino-bench --bin neutrino-dhcp-load)"
  cargo build --release -p neutrino-bench --bin neutrino-dhcp-load
fi
gen_reservations

for VARIANT in $VARIANTS; do
  PERF_EXTRA=(); LG_EXTRA=(--clients "$CLIENTS")
  case "$VARIANT" in
    native)
      native_setup
      # The agent's own CPU with no DHCP traffic (feed follow, resync, metrics), over 5 s.
      i0=$(proc_ticks "$AGENT_PID"); sleep 5; i1=$(proc_ticks "$AGENT_PID")
      AGENT_IDLE=$(awk -v t=$((i1 - i0)) -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", 100*t/hz/5}')
      log "agent CPU with no DHCP traffic: ${AGENT_IDLE}% of a core"
      sweep native
      # Agent RSS with the table loaded, then tear the native side down.
      AGENT_RSS=$(awk '/^VmRSS/{printf "%.0f MiB", $2/1024}' "/proc/$AGENT_PID/status")
      ip netns exec "$SRV_NS" curl -sf http://127.0.0.1:9697/metrics | grep -E '^neutrino_dhcp' > "$RES/native-metrics.txt" || true
      SERVER_PID=
      stop_pid "$AGENT_PID"; stop_pid "$NSERVER_PID"
      rig_down ;;
    kea|kea-mt|kea-resv)
      ns_exists "$SRV_NS" && ip -n "$SRV_NS" addr show dev "$SRV_IF" 2>/dev/null | grep -q 10.99.0.1/16 || rig_up peer
      mkdir -p "$WORK/kea"; TARGET=10.99.0.1
      [ "$VARIANT" = kea-resv ] && { PERF_EXTRA=(-M "$WORK/macs-kea.txt"); LG_EXTRA=(--macs "$WORK/macs-kea.txt"); }
      kea_conf "$VARIANT" > "$WORK/kea/$VARIANT.json"
      ip netns exec "$SRV_NS" /usr/sbin/kea-dhcp4 -t "$WORK/kea/$VARIANT.json" > "$WORK/kea/$VARIANT.check" 2>&1 \
        || { log "kea config check failed: $WORK/kea/$VARIANT.check"; exit 1; }
      sweep "$VARIANT" ;;
    dnsmasq)
      ns_exists "$SRV_NS" && ip -n "$SRV_NS" addr show dev "$SRV_IF" 2>/dev/null | grep -q 10.99.0.1/16 || rig_up peer
      mkdir -p "$WORK/dnsmasq"; TARGET=10.99.0.1
      dnsmasq_conf > "$WORK/dnsmasq/dnsmasq.conf"
      sweep dnsmasq "$DNSMASQ_RATES" ;;
    *) echo "unknown variant $VARIANT" >&2; exit 2 ;;
  esac
done

# ----------------------------------------------------------------- report --
label() {
  case "$1" in
    native)   echo "Neutrino native (agent, $NRESV reservations via the API)" ;;
    kea)      echo "Kea memfile, single-thread, pool" ;;
    kea-mt)   echo "Kea memfile, multi-thread (2 thr, q 64), pool" ;;
    kea-resv) echo "Kea, $KEA_NRESV hw-address reservations, no pool" ;;
    dnsmasq)  echo "dnsmasq dynamic, no-ping (rates $DNSMASQ_RATES only)" ;;
  esac
}
# limit VARIANT: what held the rate, judged from the first failing run (or the best run)
limit() {
  local v=$1 best fail max row
  read -r best fail max < "$RES/$v.best"
  row=$(awk -F'\t' -v r="$fail" -v b="$best" 'NR>1 && $2==r {f=$0} NR>1 && $2==b {p=$0} END{print (f!="" ? f : p)}' "$RES/$v.tsv")
  awk -F'\t' -v ncpu="$NCPU" -v fail="$fail" -v g="$GEN_NAME" '{
      srv=$11; perf=$12; host=$13
      drops=($18 != "" && $18 > 0) ? sprintf("; %s replies dropped at the generator socket (rcvbuf full)", $18) : ""
      if ($19 > 0) drops=drops sprintf("; %s requests dropped at the server UDP socket (rcvbuf full)", $19)
      if (drops != "") drops=sprintf("%s (%d exchanges lost)", drops, $3-$4)
      if (fail == 0) what="no failing rate reached: the sweep ran out of steps"
      else if (perf >= 85 && srv < 85) what=sprintf("%s (%s%% of a core) while the server used %s%%", g, perf, srv)
      else if (host >= 90) what=sprintf("the machine: %s%% of all %d cores busy (server %s%%, %s %s%%)", host, ncpu, srv, g, perf)
      else if (srv >= 85) what=sprintf("the server (%s%% of a core)", srv)
      else what=sprintf("neither saturated (server %s%%, %s %s%%, host %s%%): losses from bursts/latency", srv, g, perf, host)
      printf "at %s/s: %s%s", $2, what, drops }' <<< "$row"
}

TABLE=$WORK/table.md
{
  if [ "$LOADGEN" = neutrino ]; then LAT="avg / p99 / max"; else LAT="avg / max"; fi
  echo "| variant | best rate, < ${DROP_LIMIT} % lost (exch/s) | lost % | DISCOVER→OFFER $LAT ms | REQUEST→ACK $LAT ms | server CPU % (1 core) | server µs CPU / exch | $GEN_NAME CPU % | $GEN_NAME µs CPU / exch | other busy % (1 core) | flood: exch/s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for v in $VARIANTS; do
    [ -s "$RES/$v.best" ] || continue
    read -r best fail max < "$RES/$v.best"
    awk -F'\t' -v b="$best" -v l="$(label "$v")" -v m="$max" -v ncpu="$NCPU" -v p99="$([ "$LOADGEN" = neutrino ] && echo 1)" '
      NR>1 && $2==b {row=$0; split($0,B,"\t")}
      END { if (row=="") printf "| %s | none | | | | | | | | | %s |\n", l, m
            else { d=B[7] " / " (p99 ? B[15] " / " : "") B[8]; r=B[9] " / " (p99 ? B[16] " / " : "") B[10]
                   printf "| %s | **%s** (%s) | %s | %s | %s | %s | %.0f | %s | %.0f | %.0f | %s |\n", l, b, B[5], B[6], d, r, B[11],
                        (B[5]>0 ? 1e4*B[11]/B[5] : 0), B[12], B[17], B[13]*ncpu-B[11]-B[12], (m>0?m:"n/a") } }' "$RES/$v.tsv"
  done
} > "$TABLE"
{
  for v in $VARIANTS; do [ -s "$RES/$v.best" ] && echo "- $v: limited $(limit "$v")"; done
} > "$WORK/limits.md"

KEA_BEST=0
for v in kea kea-mt kea-resv; do
  [ -s "$RES/$v.best" ] || continue
  b=$(cut -d' ' -f1 "$RES/$v.best"); [ "$b" -gt "$KEA_BEST" ] && KEA_BEST=$b
done
NATIVE_BEST=$( [ -s "$RES/native.best" ] && cut -d' ' -f1 "$RES/native.best" || echo 0)
if [ "$KEA_BEST" -gt 0 ] && [ "$NATIVE_BEST" -gt 0 ]; then
  FLOOR=$(awk -v n="$NATIVE_BEST" -v k="$KEA_BEST" 'BEGIN{r=n/k; printf "native %d/s vs Kea best %d/s = %.2fx: the 2x floor is %s", n, k, r, (r>=2 ? "MET" : "NOT met")}')
else
  FLOOR="not evaluated (a variant is missing)"
fi

if [ "$LOADGEN" = neutrino ]; then GENV="neutrino-dhcp-load (crates/bench, release build)"; else GENV="perfdhcp from kea-admin $(dpkg-query -W -f='${Version}' kea-admin 2>/dev/null)"; fi
VERSIONS="neutrino $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+local changes') (release build); kea-dhcp4 $(/usr/sbin/kea-dhcp4 -V 2>/dev/null | head -1); $GENV; $(/usr/sbin/dnsmasq --version | head -1 | awk '{print $1, $2, $3}'); kernel $(uname -r); $NCPU CPUs"

echo
cat "$TABLE"
echo
cat "$WORK/limits.md"
echo
echo "$FLOOR"
[ -n "$LOAD_RATE" ] && echo "bulk load through the API: $LOAD_RATE; agent ready ${AGENT_READY:-?} s after start, RSS ${AGENT_RSS:-?}, idle CPU ${AGENT_IDLE:-?}% of a core"
[ -n "$NATIVE_NOTES" ] && echo "note: $NATIVE_NOTES"

SECTION=$WORK/section.md
if [ "$LOADGEN" = neutrino ]; then
  HEAD_TITLE="DHCP (native vs Kea vs dnsmasq, neutrino-dhcp-load)"; HEAD_RE="## $HEAD_TITLE"
  AFTER_RE='## DHCP (native vs Kea vs dnsmasq)'; CMD_ENV="LOADGEN=neutrino "; RESDIR=$REPO/target/bench-dhcp-neutrino
else
  HEAD_TITLE="DHCP (native vs Kea vs dnsmasq)"; HEAD_RE="## $HEAD_TITLE"
  AFTER_RE=; CMD_ENV=; RESDIR=$REPO/target/bench-dhcp
fi
{
  echo "## $HEAD_TITLE — $(date -u +%Y-%m-%d), this repository's $NCPU-core machine"
  echo
  echo "\`sudo ${CMD_ENV}PERIOD=$PERIOD REFINE=$REFINE scripts/bench-dhcp.sh\` (started $STARTED; load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)). Versions: $VERSIONS."
  echo
  if [ "$LOADGEN" = neutrino ]; then
  echo "Generator: \`neutrino-dhcp-load\` (crates/bench/src/dhcp_load.rs) instead of perfdhcp:"
  echo "one thread, one UDP socket bound to giaddr:67 (1 ms receive timeout, no busy"
  echo "polling), packets patched in place from templates, no allocation in the loop;"
  echo "same roles and counting as perfdhcp (relay giaddr/hops 1, full DORA with options"
  echo "50/54, 1 s drop time per step, lost = 1 - ACKs/DISCOVERs, MACs of the \`-M\` file"
  echo "in file order or \`--clients $CLIENTS\` generated MACs). Open-loop pacing at the"
  echo "given rate; its flood run is closed-loop with $LG_OUTSTANDING exchanges in flight."
  echo "p99 latencies from a 1 µs histogram. Everything else below is the perfdhcp method."
  echo
  fi
  echo "Method: two namespaces joined by a veth pair; perfdhcp (DHCPv4 DORA) acts as a"
  echo "relay (giaddr $RELAY, replies unicast to giaddr:67). Per variant: a flood run,"
  echo "then fractions 0.4-2x of its rate until the first with >= ${DROP_LIMIT} % lost 4-way"
  echo "exchanges (1 - ACKs/DISCOVERs, 1 s drop time), then $REFINE bisection steps; ${PERIOD} s"
  echo "per run. Kea/dnsmasq restart with an empty lease file for every run. Neutrino: a"
  echo "server (noauth, temp data dir) and an agent (native driver, dhcp mode all) whose"
  echo "host namespace is the server side of the rig, with the veth end as the physical"
  echo "interface of a flat network (mtu 1450) with subnets 10.99.0.0/16 (gateway/dns"
  echo "10.99.0.1) and 10.100.0.0/16 (a /16 cannot hold $NRESV hosts); $NRESV ports"
  echo "loaded through \`POST /v2.0/ports\` in bulks of $BULK ($LOAD_RATE), perfdhcp \`-M\`"
  echo "with exactly their MACs, sent to the \`network:dhcp\` port (${NATIVE_TARGET:-?}) across the"
  echo "agent's bridge. Kea-resv uses $KEA_NRESV of the same MACs as hw-address"
  echo "reservations; pool variants use \`-R $CLIENTS\`. CPU = utime+stime of the server"
  echo "process (for Neutrino the whole agent process) and of perfdhcp over the run, in"
  echo "% of one core; \"other\" = everything else busy on the machine (kernel softirq"
  echo "for the veth traffic, other users of this shared box), in % of one core; server"
  echo "µs CPU / exch = server CPU time per completed exchange at the best rate."
  echo "The generator shares the $NCPU cores with the server; generator CPU = user+sys"
  echo "of its command (bash \`time\`), µs / exch = that per completed exchange."
  echo
  cat "$TABLE"
  echo
  echo "What limits the rate (judged at the first failing rate):"
  echo
  cat "$WORK/limits.md"
  echo
  [ -n "$LOAD_RATE" ] && { echo "Neutrino side: agent serving ${NRESV} reservations ${AGENT_READY:-?} s after it started, RSS ${AGENT_RSS:-?},"; echo "${AGENT_IDLE:-?} % of a core with no DHCP traffic."; echo; }
  echo "**Floor (at least 2x Kea's best rate on the same rig): $FLOOR.**"
  [ -n "$NATIVE_NOTES" ] && { echo; echo "Note: $NATIVE_NOTES"; }
  echo
} > "$SECTION"
rm -rf "$RESDIR"; cp -r "$RES" "$RESDIR" 2>/dev/null || true
cp "$SECTION" "$RESDIR/section.md" 2>/dev/null || true

if [ "$WRITE_DOCS" = 1 ]; then
  # Replace an earlier section of this name (up to the next "## ") in place; else put
  # it after the section whose heading starts with AFTER_RE (the perfdhcp one), else append.
  awk -v f="$SECTION" -v head="$HEAD_RE" -v after="$AFTER_RE" '
    function emit() { while ((getline l < f) > 0) print l; close(f); done=1; pend=0 }
    index($0, head) == 1 {skip=1; if (!done) emit(); next}
    skip && /^## / {skip=0}
    skip {next}
    pend && /^## / {emit(); pend=0}
    after != "" && index($0, after) == 1 && !done {pend=1}
    {print}
    END {if (pend || !done) {print ""; emit()}}' docs/benchmarks.md > "$WORK/benchmarks.md"
  cat "$WORK/benchmarks.md" > docs/benchmarks.md
  log "wrote the section to docs/benchmarks.md (raw results: $RESDIR)"
fi
