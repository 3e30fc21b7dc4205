#!/usr/bin/env bash
# Firewall programming benchmark: Neutrino's nftables security groups against
# Neutron's iptables firewall (IptablesFirewallDriver, linuxbridge, ipset on),
# same workload, same run, in a scratch network namespace of the benchmark's
# own (nothing touches the host's namespace). See crates/bench/src/fw_bench.rs.
#
#   sudo scripts/bench-firewall.sh              (~20 min with the defaults)
#   sudo SIZES=1000,2000 scripts/bench-firewall.sh --json
#
# Environment:
#   SIZES (1000,2000,5000,10000)  REPEATS (20: Neutrino change steps)
#   PEER_REPEATS (10: iptables-legacy change steps; each costs seconds at 10,000
#   ports)  PEER_NFT (1: also the iptables-nft backend)  PEER_NFT_REPEATS (3)
#   OUT (target/bench-firewall): where the table and JSON are kept.
# Extra arguments go to neutrino-fw-bench (e.g. --json, --no-peer, --dump DIR).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
[ "$(id -u)" = 0 ] || { echo "run as root (the benchmark unshares a network namespace)" >&2; exit 1; }

SIZES=${SIZES:-1000,2000,5000,10000}
REPEATS=${REPEATS:-20}
PEER_REPEATS=${PEER_REPEATS:-10}
PEER_NFT=${PEER_NFT:-1}
PEER_NFT_REPEATS=${PEER_NFT_REPEATS:-3}
OUT=${OUT:-$REPO/target/bench-firewall}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

missing=()
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
{ command -v iptables-legacy-restore >/dev/null || [ -x /usr/sbin/iptables-legacy-restore ]; } || missing+=(iptables)
command -v ipset >/dev/null || [ -x /usr/sbin/ipset ] || missing+=(ipset)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get install -y "${missing[@]}" >/dev/null || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
fi

log "building (cargo build --release -p neutrino-bench --bin neutrino-fw-bench)"
cargo build --release -p neutrino-bench --bin neutrino-fw-bench
BIN=$REPO/target/release/neutrino-fw-bench

args=(--sizes "$SIZES" --repeats "$REPEATS" --peer-repeats "$PEER_REPEATS" --peer-nft-repeats "$PEER_NFT_REPEATS")
[ "$PEER_NFT" = 1 ] && args+=(--peer-nft)

mkdir -p "$OUT"
log "versions: $(nft --version); $(iptables-legacy-restore --version 2>&1 | head -1); $(ipset version 2>&1 | head -1); kernel $(uname -r); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
json=0; extra=()
for a in "$@"; do if [ "$a" = --json ]; then json=1; else extra+=("$a"); fi; done
log "running $BIN ${args[*]} ${extra[*]:-}"
start=$(date +%s)
"$BIN" "${args[@]}" "${extra[@]}" --json > "$OUT/results.json"
log "done in $(( $(date +%s) - start )) s; load $(cut -d' ' -f1-3 /proc/loadavg); JSON in $OUT/results.json"

if [ "$json" = 1 ]; then
  cat "$OUT/results.json"
else
  # The table from the same results (no second run).
  "$BIN" --table-from "$OUT/results.json" | tee "$OUT/table.md"
fi
