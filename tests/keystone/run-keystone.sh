#!/usr/bin/env bash
# Real OpenStack Keystone (from PyPI) as a test peer, on 127.0.0.1 only.
#
#   tests/keystone/run-keystone.sh start                 install if needed, init state, serve, wait
#   tests/keystone/run-keystone.sh stop                  kill the recorded gunicorn master PID
#   tests/keystone/run-keystone.sh status                running? (exit 0/1)
#   tests/keystone/run-keystone.sh register-network URL  catalog: service 'network' -> URL
#   tests/keystone/run-keystone.sh token [USER PASS PROJECT]   print a token (default admin)
#
# Environment (defaults):
#   KEYSTONE_VENV        <repo>/.venv          venv with keystone + gunicorn (scripts/setup-venv)
#   KEYSTONE_STATE       /tmp/neutrino-keystone  config, SQLite DB, fernet keys, logs, pid
#   KEYSTONE_PORT        35357
#   KEYSTONE_ADMIN_PASSWORD  admin-secret     (user admin, project admin, role admin)
#   KEYSTONE_NEUTRON_PASSWORD neutron-secret  (user neutron, project service, roles admin+service)
#   KEYSTONE_DEMO_PASSWORD   demo-secret      (user demo, project demo, role member)
#   KEYSTONE_READER_PASSWORD reader-secret    (user reader, project demo, role reader)
#   KEYSTONE_WORKERS     1                    gunicorn sync workers (>1 turns the cache off)
#   NEUTRINO_URL         (unset)              if set, `start` also registers it as 'network'
#   KEYSTONE_EXTRA_PROJECTS (unset)           comma-separated extra projects to create
#
# `start` writes $KEYSTONE_STATE/credentials.env (shell) and clouds.yaml (clouds
# keystone-admin, keystone-demo, keystone-reader, keystone-neutron).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${KEYSTONE_VENV:-$REPO/.venv}"
STATE="${KEYSTONE_STATE:-/tmp/neutrino-keystone}"
PORT="${KEYSTONE_PORT:-35357}"
WORKERS="${KEYSTONE_WORKERS:-1}"
# Keystone's in-memory cache is per process: with more than one worker a worker can
# serve a stale catalog or role list after another worker changed it. So the cache
# is on only with one worker (token validation ~0.7 s uncached, ~10 ms cached).
CACHE=true
[ "$WORKERS" = 1 ] || CACHE=false
export KS_URL="http://127.0.0.1:$PORT"
export KS_ADMIN_PASSWORD="${KEYSTONE_ADMIN_PASSWORD:-admin-secret}"
export KS_NEUTRON_PASSWORD="${KEYSTONE_NEUTRON_PASSWORD:-neutron-secret}"
export KS_DEMO_PASSWORD="${KEYSTONE_DEMO_PASSWORD:-demo-secret}"
export KS_READER_PASSWORD="${KEYSTONE_READER_PASSWORD:-reader-secret}"
export KS_REGION=RegionOne
export KS_EXTRA_PROJECTS="${KEYSTONE_EXTRA_PROJECTS:-}"
PIDFILE="$STATE/keystone.pid"
PY="$VENV/bin/python"

log() { echo "[keystone] $*" >&2; }

running() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

ensure_installed() {
    if [ -x "$PY" ] && "$PY" -c 'import keystone, gunicorn' 2>/dev/null \
        && [ -x "$VENV/bin/keystone-manage" ] && [ -x "$VENV/bin/gunicorn" ]; then
        return
    fi
    log "keystone/gunicorn missing in $VENV: running scripts/setup-venv"
    VENV="$VENV" "$REPO/scripts/setup-venv"
}

write_config() {
    mkdir -p "$STATE/etc" "$STATE/log"
    cat > "$STATE/etc/keystone.conf" <<EOF
# written by tests/keystone/run-keystone.sh
[DEFAULT]
log_file = $STATE/log/keystone.log
debug = false
use_stderr = false

[database]
connection = sqlite:///$STATE/keystone.db

[token]
provider = fernet
expiration = 3600

[fernet_tokens]
key_repository = $STATE/fernet-keys
max_active_keys = 3

[fernet_receipts]
key_repository = $STATE/fernet-keys

[credential]
key_repository = $STATE/credential-keys

[identity]
# bcrypt cost for newly set passwords: the minimum, tests authenticate a lot
password_hash_rounds = 4

[cache]
enabled = $CACHE
backend = dogpile.cache.memory

[oslo_policy]
enforce_new_defaults = true
enforce_scope = false
EOF
}

manage() {
    "$VENV/bin/keystone-manage" --config-file "$STATE/etc/keystone.conf" "$@" \
        >>"$STATE/log/keystone-manage.log" 2>&1 \
        || { log "keystone-manage $1 failed:"; tail -n 30 "$STATE/log/keystone-manage.log" >&2; exit 1; }
}

init_state() {
    # (Re)initialise unless the state was made for this port already.
    if [ -f "$STATE/.initialized" ] && [ "$(cat "$STATE/.initialized")" = "$PORT" ]; then
        return
    fi
    log "initialising $STATE (sqlite, fernet) for port $PORT"
    rm -rf "$STATE/keystone.db" "$STATE/fernet-keys" "$STATE/credential-keys" "$STATE/.initialized"
    write_config
    local me grp
    me="$(id -un)"; grp="$(id -gn)"
    manage db_sync
    manage fernet_setup --keystone-user "$me" --keystone-group "$grp"
    manage credential_setup --keystone-user "$me" --keystone-group "$grp"
    manage bootstrap \
        --bootstrap-username admin --bootstrap-password "$KS_ADMIN_PASSWORD" \
        --bootstrap-project-name admin --bootstrap-role-name admin \
        --bootstrap-service-name keystone --bootstrap-region-id "$KS_REGION" \
        --bootstrap-public-url "$KS_URL/v3" --bootstrap-internal-url "$KS_URL/v3" \
        --bootstrap-admin-url "$KS_URL/v3"
    echo "$PORT" > "$STATE/.initialized"
}

write_client_files() {
    cat > "$STATE/credentials.env" <<EOF
# written by tests/keystone/run-keystone.sh
KEYSTONE_URL=$KS_URL/v3
KEYSTONE_ADMIN_PASSWORD=$KS_ADMIN_PASSWORD
KEYSTONE_NEUTRON_PASSWORD=$KS_NEUTRON_PASSWORD
KEYSTONE_DEMO_PASSWORD=$KS_DEMO_PASSWORD
KEYSTONE_READER_PASSWORD=$KS_READER_PASSWORD
KEYSTONE_PID=$(cat "$PIDFILE")
EOF
    {
        echo "# written by tests/keystone/run-keystone.sh"
        echo "clouds:"
        local c u p proj
        for c in admin:admin:"$KS_ADMIN_PASSWORD":admin \
                 demo:demo:"$KS_DEMO_PASSWORD":demo \
                 reader:reader:"$KS_READER_PASSWORD":demo \
                 neutron:neutron:"$KS_NEUTRON_PASSWORD":service; do
            IFS=: read -r name u p proj <<<"$c"
            cat <<EOF
  keystone-$name:
    auth:
      auth_url: $KS_URL/v3
      username: $u
      password: "$p"
      project_name: $proj
      user_domain_name: Default
      project_domain_name: Default
    identity_api_version: 3
    region_name: $KS_REGION
    interface: public
EOF
        done
    } > "$STATE/clouds.yaml"
}

cmd_start() {
    if running; then
        log "already running (pid $(cat "$PIDFILE")) on $KS_URL"
        return
    fi
    local t0=$SECONDS
    ensure_installed
    mkdir -p "$STATE"
    init_state
    write_config
    log "starting gunicorn keystone.wsgi.api:application on 127.0.0.1:$PORT (workers $WORKERS)"
    # setsid: own process group, so a Ctrl-C of the caller does not hit it;
    # gunicorn writes its master PID to $PIDFILE (stop kills only that PID,
    # the master then stops its workers).
    OS_KEYSTONE_CONFIG_DIR="$STATE/etc" OS_KEYSTONE_CONFIG_FILES="keystone.conf" \
    PYTHONWARNINGS="ignore" \
        setsid "$VENV/bin/gunicorn" --bind "127.0.0.1:$PORT" --workers "$WORKERS" \
            --worker-class sync --timeout 120 --graceful-timeout 5 \
            --pid "$PIDFILE" --access-logfile "$STATE/log/access.log" \
            --error-logfile "$STATE/log/gunicorn.log" --no-control-socket \
            --pythonpath "$HERE" keystone_wsgi:application </dev/null >>"$STATE/log/gunicorn.out" 2>&1 &
    local launcher=$!
    # the pid file appears once gunicorn's master is up
    for _ in $(seq 1 100); do
        [ -s "$PIDFILE" ] && break
        kill -0 "$launcher" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$PIDFILE" ] || echo "$launcher" > "$PIDFILE"
    if ! "$PY" "$HERE/ks_admin.py" wait "$KS_URL" 90; then
        log "keystone failed to start; last log lines:"
        tail -n 40 "$STATE/log/gunicorn.log" "$STATE/log/keystone.log" >&2 2>/dev/null || true
        cmd_stop || true
        exit 1
    fi
    "$PY" "$HERE/ks_admin.py" setup >&2
    if [ -n "${NEUTRINO_URL:-}" ]; then
        "$PY" "$HERE/ks_admin.py" register-network "$NEUTRINO_URL" >&2
    fi
    write_client_files
    log "up: $KS_URL/v3 pid $(cat "$PIDFILE") ($((SECONDS - t0))s); clouds: $STATE/clouds.yaml"
}

cmd_stop() {
    if ! running; then
        log "not running"
        rm -f "$PIDFILE"
        return 0
    fi
    local pid
    pid="$(cat "$PIDFILE")"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still alive after 10s, SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    log "stopped pid $pid"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) if running; then echo "running pid $(cat "$PIDFILE") $KS_URL"; else echo "stopped"; exit 1; fi ;;
    register-network)
        [ -n "${2:-}" ] || { echo "usage: $0 register-network URL" >&2; exit 2; }
        "$PY" "$HERE/ks_admin.py" register-network "$2" ;;
    token)
        "$PY" "$HERE/ks_admin.py" token "${2:-admin}" "${3:-$KS_ADMIN_PASSWORD}" "${4:-admin}" ;;
    *) awk 'NR>1 && !/^#/{exit} NR>1' "$0" >&2; exit 2 ;;
esac
