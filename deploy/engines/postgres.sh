#!/usr/bin/env bash
# PostgreSQL 15 for tests: a dedicated cluster (initdb + pg_ctl), trust auth, loopback only.
# usage: postgres.sh up|down|status|purge
#
# A cluster of our own, rather than Debian's 15/main: it leaves /etc/postgresql alone, does not
# depend on pg_ctlcluster or systemd, and `down` + deleting its folder resets everything.
#
# FLOWLOOM_PG_INSTANCE=NAME runs a second, independent cluster (fault tests stop theirs without
# touching the shared one) in instances/NAME beside the shared cluster's folder, with its own lock.
# Give it its own FLOWLOOM_PG_PORT. `purge` (instances only) stops it and deletes its folder.
set -euo pipefail
PG_INSTANCE="${FLOWLOOM_PG_INSTANCE:-}"
[[ -z $PG_INSTANCE || $PG_INSTANCE =~ ^[A-Za-z0-9_.-]+$ ]] || {
  printf '[postgres] ERROR: FLOWLOOM_PG_INSTANCE=%s: use letters, digits, _ . and - only\n' "$PG_INSTANCE" >&2
  exit 2
}
ENGINE=postgres${PG_INSTANCE:+-$PG_INSTANCE}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_VERSION="${FLOWLOOM_PG_VERSION:-15}"
PG_PORT="${FLOWLOOM_PG_PORT:-5432}"
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
PG_DATABASES="${FLOWLOOM_PG_DATABASES:-flowloom flowloom_test}"
PG_URL="postgres://postgres@$LOOPBACK:$PG_PORT/flowloom_test"

# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user that the
# Debian package creates. That user cannot enter /root (mode 700), so the cluster lives under
# the cache only when the server user can reach it, and otherwise in postgres's own home.
if is_root; then SERVER_USER=postgres; else SERVER_USER=$(id -un); fi

as_server() {
  if is_root; then
    (cd / && runuser -u "$SERVER_USER" -- "$@")
  else
    "$@"
  fi
}

choose_base_dir() {
  if [[ -n ${FLOWLOOM_PG_DATA:-} ]]; then
    PG_BASE=$(dirname "$FLOWLOOM_PG_DATA")
    PG_DATA=$FLOWLOOM_PG_DATA
    return
  fi
  PG_BASE="$ENGINES_HOME/postgres/$PG_VERSION"
  if is_root && ! (cd / && runuser -u "$SERVER_USER" -- test -x "$ENGINES_HOME") 2>/dev/null; then
    PG_BASE="/var/lib/postgresql/flowloom/$PG_VERSION"
  fi
  [[ -n $PG_INSTANCE ]] && PG_BASE="$PG_BASE/instances/$PG_INSTANCE"
  PG_DATA="$PG_BASE/data"
}

set_paths() {
  choose_base_dir
  PG_LOG="$PG_BASE/server.log"
  PG_SOCKET_DIR="$PG_BASE/run"
}

server_running() {
  [[ -x $PG_BIN/pg_ctl && -f $PG_DATA/PG_VERSION ]] || return 1
  as_server "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

server_pid() { head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

accepting() { "$PG_BIN/pg_isready" -q -h "$LOOPBACK" -p "$PG_PORT" -t 2; }

psql_admin() {
  PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$LOOPBACK" -p "$PG_PORT" -U postgres -d postgres "$@"
}

install_server() {
  if [[ -x $PG_BIN/postgres && -x $PG_BIN/psql ]]; then return; fi
  say "PostgreSQL $PG_VERSION is not installed; installing it from apt"
  apt_install "postgresql-$PG_VERSION" "postgresql-client-$PG_VERSION"
  [[ -x $PG_BIN/postgres ]] || die "$PG_BIN/postgres is still missing after apt-get install" \
    "check: dpkg -L postgresql-$PG_VERSION | grep bin/postgres"
  # Where services may start at install time, Debian's postinst also starts its own 15/main on
  # 5432; check_port_free then names it and says how to stop it.
}

init_cluster() {
  [[ -f $PG_DATA/PG_VERSION ]] && return
  say "creating a cluster in $PG_DATA (initdb, superuser postgres, trust auth)"
  mkdir -p "$PG_BASE"
  is_root && chown "$SERVER_USER": "$PG_BASE"
  # initdb into a temporary folder and rename, so an interrupted run never leaves half a cluster.
  local tmp="$PG_BASE/data.initdb-tmp" locale=C.UTF-8
  locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$' || locale=C
  rm -rf "$tmp"
  as_server "$PG_BIN/initdb" -D "$tmp" -U postgres --auth=trust --encoding=UTF8 \
    --locale="$locale" --no-instructions >"$PG_BASE/initdb.log" 2>&1 || {
    show_log_tail "$PG_BASE/initdb.log"
    die "initdb failed (log above, also in $PG_BASE/initdb.log)" \
      "delete $PG_BASE and re-run; if it fails again, check free disk space and that user $SERVER_USER can write there"
  }
  echo "include_if_exists = 'flowloom.conf'" >>"$tmp/postgresql.conf"
  mv "$tmp" "$PG_DATA"
}

# Rewritten on every start so that a changed port or setting applies after down + up.
write_config() {
  as_server mkdir -p "$PG_SOCKET_DIR"
  local conf
  conf=$(
    cat <<EOF
# Written by deploy/engines/postgres.sh on every start; edit the script, not this file.
listen_addresses = '$LOOPBACK'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
max_connections = 200
# Test engine: fsync off survives a killed server process (the OS keeps the writes), not a
# power loss. synchronous_commit stays on, so a commit acknowledged before a kill -9 is kept.
fsync = off
full_page_writes = off
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
  )
  printf '%s\n' "$conf" | as_server tee "$PG_DATA/flowloom.conf" >/dev/null
}

# Another server holding our port is someone else's: say whose and stop.
check_port_free() {
  accepting || port_open "$PG_PORT" || return 0
  local hint=("set FLOWLOOM_PG_PORT to a free port, or stop whatever listens on $PG_PORT")
  if command -v pg_lsclusters >/dev/null; then
    local cluster
    cluster=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p && $4 == "online" {print $1" "$2}' | head -n1)
    [[ -n $cluster ]] && hint=("Debian cluster $cluster is running on $PG_PORT: stop it with 'pg_ctlcluster $cluster stop'" "${hint[@]}")
  fi
  die "port $LOOPBACK:$PG_PORT is already in use by another server (not the cluster in $PG_DATA)" "${hint[@]}"
}

ensure_databases() {
  local db
  for db in $PG_DATABASES; do
    if [[ $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'") != 1 ]]; then
      say "creating database $db"
      psql_admin -c "CREATE DATABASE \"$db\""
    fi
  done
}

cmd_up() {
  take_lock
  install_server
  set_paths
  if server_running; then
    if accepting; then
      ensure_databases
      say "already up (pid $(server_pid), $LOOPBACK:$PG_PORT, data $PG_DATA)"
      echo "FLOWLOOM_TEST_PG_URL=$PG_URL"
      return
    fi
    die "the cluster in $PG_DATA is running but does not answer on $LOOPBACK:$PG_PORT (another port?)" \
      "restart it on the new port: bash deploy/engines/postgres.sh down && bash deploy/engines/postgres.sh up"
  fi
  check_port_free
  init_cluster
  write_config
  say "starting PostgreSQL $PG_VERSION on $LOOPBACK:$PG_PORT (log $PG_LOG)"
  # 9>&-: the server must not inherit (and so keep holding) our lock.
  if ! as_server "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null 9>&-; then
    show_log_tail "$PG_LOG"
    die "PostgreSQL did not start (log above, also in $PG_LOG)" \
      "a stale lock after a crash is removed by pg_ctl itself; if the port is taken set FLOWLOOM_PG_PORT" \
      "to start from scratch: bash deploy/engines/postgres.sh down; rm -rf $PG_BASE"
  fi
  wait_until 30 "accepting connections" accepting || {
    show_log_tail "$PG_LOG"
    die "PostgreSQL started but does not accept connections on $LOOPBACK:$PG_PORT"
  }
  ensure_databases
  say "up (pid $(server_pid), $LOOPBACK:$PG_PORT, databases: $PG_DATABASES) in $((SECONDS - _START))s"
  echo "FLOWLOOM_TEST_PG_URL=$PG_URL"
}

cmd_down() {
  take_lock
  set_paths
  if ! server_running; then
    say "already down"
    return
  fi
  say "stopping (pid $(server_pid))"
  as_server "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null ||
    die "pg_ctl stop failed" "see $PG_LOG; as a last resort: kill \$(head -1 $PG_DATA/postmaster.pid)"
  say "down"
}

# Instances are disposable: stop one and delete its folder (the shared cluster is never purged).
cmd_purge() {
  [[ -n $PG_INSTANCE ]] || die "purge deletes a cluster's data: it only applies to FLOWLOOM_PG_INSTANCE clusters" \
    "to stop the shared cluster: bash deploy/engines/postgres.sh down"
  cmd_down
  rm -rf "$PG_BASE"
  say "purged $PG_BASE"
}

cmd_status() {
  set_paths
  if server_running && accepting; then
    echo "postgres: up    pid $(server_pid)  $LOOPBACK:$PG_PORT  FLOWLOOM_TEST_PG_URL=$PG_URL  data=$PG_DATA"
  elif server_running; then
    echo "postgres: up but not accepting on $LOOPBACK:$PG_PORT  data=$PG_DATA  log=$PG_LOG"
    return 3
  else
    echo "postgres: down  (start: bash deploy/engines/postgres.sh up)"
    return 3
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  purge) cmd_purge ;;
  status) cmd_status ;;
  *) usage_and_exit ;;
esac
