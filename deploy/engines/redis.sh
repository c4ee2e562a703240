#!/usr/bin/env bash
# Redis for tests: redis-server from apt, loopback only, no persistence, daemonized.
# usage: redis.sh up|down|status
set -euo pipefail
ENGINE=redis
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REDIS_PORT="${FLOWLOOM_REDIS_PORT:-6379}"
REDIS_DIR="$ENGINES_HOME/redis"
REDIS_PIDFILE="$REDIS_DIR/redis-$REDIS_PORT.pid"
REDIS_LOG="$REDIS_DIR/redis-$REDIS_PORT.log"
REDIS_URL="redis://$LOOPBACK:$REDIS_PORT"

cli() { timeout 5 redis-cli -h "$LOOPBACK" -p "$REDIS_PORT" "$@"; }
answers_ping() { [[ $(cli ping 2>/dev/null) == PONG ]]; }
ours_running() { pid_matches "$REDIS_PIDFILE" redis-server; }

install_server() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return
  say "redis-server is not installed; installing it from apt"
  apt_install redis-server redis-tools
  command -v redis-server >/dev/null || die "redis-server is still missing after apt-get install" \
    "check: dpkg -L redis-server | grep bin/"
}

cmd_up() {
  take_lock
  install_server
  mkdir -p "$REDIS_DIR"
  if ours_running; then
    if answers_ping; then
      say "already up (pid $(<"$REDIS_PIDFILE"), $LOOPBACK:$REDIS_PORT)"
      echo "FLOWLOOM_TEST_REDIS_URL=$REDIS_URL"
      return
    fi
    die "redis-server pid $(<"$REDIS_PIDFILE") is running but does not answer PING on $LOOPBACK:$REDIS_PORT" \
      "restart it: bash deploy/engines/redis.sh down && bash deploy/engines/redis.sh up" \
      "its log: $REDIS_LOG"
  fi
  if port_open "$REDIS_PORT"; then
    local who=""
    answers_ping && who=" (a Redis server, pid $(cli info server 2>/dev/null | tr -d '\r' | awk -F: '$1 == "process_id" {print $2}'))"
    die "port $LOOPBACK:$REDIS_PORT is already in use by a server this script did not start$who" \
      "stop it (Debian's service: 'service redis-server stop'), or set FLOWLOOM_REDIS_PORT to a free port"
  fi
  rm -f "$REDIS_PIDFILE"
  say "starting redis-server $(redis-server --version | awk '{sub(/^v=/, "", $3); print $3}') on $LOOPBACK:$REDIS_PORT (log $REDIS_LOG)"
  # No RDB snapshots and no AOF: test data is disposable, and a fork for BGSAVE would only
  # add latency. 9>&-: the daemon must not inherit (and so keep holding) our lock.
  redis-server --bind "$LOOPBACK" --port "$REDIS_PORT" --protected-mode yes \
    --save '' --appendonly no --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" 9>&- ||
    die "redis-server failed to start" "see $REDIS_LOG"
  wait_until 15 "answering PING" answers_ping || {
    show_log_tail "$REDIS_LOG"
    die "redis-server did not answer PING on $LOOPBACK:$REDIS_PORT within 15s (log above)" \
      "check the log for a bind error; set FLOWLOOM_REDIS_PORT if the port is taken"
  }
  wait_until 5 "pidfile written" ours_running || warn "no pidfile at $REDIS_PIDFILE yet; 'down' may not find the server"
  say "up (pid $(<"$REDIS_PIDFILE"), $LOOPBACK:$REDIS_PORT) in $((SECONDS - _START))s"
  echo "FLOWLOOM_TEST_REDIS_URL=$REDIS_URL"
}

cmd_down() {
  take_lock
  if ! ours_running; then
    rm -f "$REDIS_PIDFILE"
    say "already down"
    return
  fi
  local pid
  pid=$(<"$REDIS_PIDFILE")
  say "stopping (pid $pid)"
  cli shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until 15 "stopped" pid_gone "$pid"; then
    warn "pid $pid still alive after 15s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$REDIS_PIDFILE"
  say "down"
}

cmd_status() {
  if ours_running && answers_ping; then
    echo "redis:    up    pid $(<"$REDIS_PIDFILE")  $LOOPBACK:$REDIS_PORT  FLOWLOOM_TEST_REDIS_URL=$REDIS_URL"
  elif ours_running; then
    echo "redis:    up but not answering PING on $LOOPBACK:$REDIS_PORT  log=$REDIS_LOG"
    return 3
  else
    echo "redis:    down  (start: bash deploy/engines/redis.sh up)"
    return 3
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) usage_and_exit ;;
esac
