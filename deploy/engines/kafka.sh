#!/usr/bin/env bash
# Apache Kafka for tests: one KRaft node (broker + controller) from Maven Central jars.
# usage: kafka.sh up|down|status|purge
#        kafka.sh fetch                  only download the jars (up.sh runs it beside the others)
#        kafka.sh tool NAME [ARGS...]   the bundled command line tools, e.g.
#          kafka.sh tool topics --bootstrap-server 127.0.0.1:9092 --list
#        NAME: topics, console-producer, console-consumer, consumer-groups, storage, or a class name
#
# The jars come from kafka/pom.xml through `mvn dependency:copy-dependencies` into the cache,
# once; later runs reuse them until the pom changes.
#
# FLOWLOOM_KAFKA_INSTANCE=NAME runs a second, independent broker (fault tests kill theirs without
# touching the shared one): it reuses the cached jars but has its own config, data, log, pid and lock
# under kafka/instances/NAME. Give it its own FLOWLOOM_KAFKA_PORT and FLOWLOOM_KAFKA_CONTROLLER_PORT.
# `purge` (instances only) stops it and deletes its folder.
set -euo pipefail
KAFKA_INSTANCE="${FLOWLOOM_KAFKA_INSTANCE:-}"
[[ -z $KAFKA_INSTANCE || $KAFKA_INSTANCE =~ ^[A-Za-z0-9_.-]+$ ]] || {
  printf '[kafka] ERROR: FLOWLOOM_KAFKA_INSTANCE=%s: use letters, digits, _ . and - only\n' "$KAFKA_INSTANCE" >&2
  exit 2
}
ENGINE=kafka${KAFKA_INSTANCE:+-$KAFKA_INSTANCE}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_PORT="${FLOWLOOM_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${FLOWLOOM_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${FLOWLOOM_KAFKA_HEAP:-512m}"
# Extra JVM options, e.g. `-XX:TieredStopAtLevel=1` for a broker that should start fast rather than run fast.
read -r -a KAFKA_JAVA_OPTS <<<"${FLOWLOOM_KAFKA_JAVA_OPTS:-}"
KAFKA_START_TIMEOUT="${FLOWLOOM_KAFKA_START_TIMEOUT:-120}"
KAFKA_HOME="$ENGINES_HOME/kafka"
KAFKA_LIB="$KAFKA_HOME/lib"
# What belongs to one broker; the jars above are shared by every instance.
KAFKA_STATE="$KAFKA_HOME${KAFKA_INSTANCE:+/instances/$KAFKA_INSTANCE}"
KAFKA_CONF="$KAFKA_STATE/config"
KAFKA_DATA="$KAFKA_STATE/data"
KAFKA_LOG="$KAFKA_STATE/kafka.log"
KAFKA_PIDFILE="$KAFKA_STATE/kafka.pid"
MAVEN_REPO="${FLOWLOOM_MAVEN_REPO:-$ENGINES_HOME/maven-repo}"
POM_SRC="$ENGINES_DIR/kafka/pom.xml"
KAFKA_BROKERS="$LOOPBACK:$KAFKA_PORT"
# The started-line every KRaft server logs once it serves clients.
READY_LINE='Kafka Server started'

java_bin() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then echo "$JAVA_HOME/bin/java"; else command -v java; fi
}

java_major() {
  local v
  v=$("$(java_bin)" -XshowSettings:properties -version 2>&1 |
    awk -F= '/java.specification.version/ {gsub(/ /, "", $2); print $2}')
  v=${v#1.}
  echo "${v%%.*}"
}

install_tools() {
  if ! java_bin >/dev/null || (($(java_major || echo 0) < 17)); then
    say "Java 17 is missing (found: $(java_bin 2>/dev/null || echo none)); installing it from apt"
    apt_install openjdk-17-jre-headless
    [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]] && export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
  fi
  if ! command -v mvn >/dev/null; then
    say "Maven is missing; installing it from apt"
    apt_install maven
  fi
}

pom_hash() { sha256sum "$POM_SRC" | cut -d' ' -f1; }

# The jar folder is rebuilt only when the pom changes; it is swapped in whole so that an
# interrupted download never leaves a partial lib/ behind.
fetch_jars() {
  local want
  want=$(pom_hash)
  if [[ -f $KAFKA_HOME/lib.pom-sha256 && $(<"$KAFKA_HOME/lib.pom-sha256") == "$want" && -d $KAFKA_LIB ]]; then
    return
  fi
  install_tools
  say "resolving the Kafka jars from Maven Central (first run only: ~60 MB, about a minute)"
  mkdir -p "$KAFKA_HOME/pom" "$MAVEN_REPO"
  cp "$POM_SRC" "$KAFKA_HOME/pom/pom.xml"
  rm -rf "$KAFKA_LIB.tmp"
  if ! mvn -B -q -f "$KAFKA_HOME/pom/pom.xml" -Dmaven.repo.local="$MAVEN_REPO" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIB.tmp" \
    >"$KAFKA_HOME/mvn.log" 2>&1; then
    show_log_tail "$KAFKA_HOME/mvn.log" 30
    die "Maven could not fetch the Kafka jars (log above, also in $KAFKA_HOME/mvn.log)" \
      "check that Maven Central is reachable (a proxy goes in ~/.m2/settings.xml), then re-run" \
      "the cached Maven repository is $MAVEN_REPO; deleting it forces a clean download"
  fi
  ls "$KAFKA_LIB.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 ||
    die "Maven finished but no kafka_2.13 jar is in $KAFKA_LIB.tmp" "see $KAFKA_HOME/mvn.log"
  rm -rf "$KAFKA_LIB"
  mv "$KAFKA_LIB.tmp" "$KAFKA_LIB"
  echo "$want" >"$KAFKA_HOME/lib.pom-sha256"
  say "jars ready in $KAFKA_LIB ($(find "$KAFKA_LIB" -name '*.jar' | wc -l) files, $(du -sh "$KAFKA_LIB" | cut -f1))"
}

kafka_java() {
  "$(java_bin)" -Dlog4j.configuration="file:$KAFKA_CONF/log4j.properties" -cp "$KAFKA_LIB/*" "$@"
}

# Rewritten on every start, so a changed port or setting applies after down + up.
write_config() {
  mkdir -p "$KAFKA_CONF" "$KAFKA_DATA"
  cp "$ENGINES_DIR/kafka/log4j.properties" "$KAFKA_CONF/log4j.properties"
  cat >"$KAFKA_CONF/server.properties" <<EOF
# Written by deploy/engines/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$LOOPBACK:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$LOOPBACK:$KAFKA_PORT,CONTROLLER://$LOOPBACK:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$LOOPBACK:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA

# One node: every replication factor and ISR minimum is 1.
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1

# Tests create topics on the fly and start consumer groups often.
auto.create.topics.enable=true
delete.topic.enable=true
num.partitions=1
group.initial.rebalance.delay.ms=0
# Fewer internal partitions than the default 50: the first group or transaction is ready sooner.
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10

# The broker is unfenced on a heartbeat; beating every 0.5 s instead of 2 s starts it ~3 s sooner.
broker.heartbeat.interval.ms=500

log.retention.hours=24
log.segment.bytes=104857600
num.network.threads=2
num.io.threads=4
EOF
}

ours_running() { pid_matches "$KAFKA_PIDFILE" "kafka.Kafka $KAFKA_CONF/server.properties"; }
broker_ready() { port_open "$KAFKA_PORT" && grep -qF "$READY_LINE" "$KAFKA_LOG" 2>/dev/null; }
kafka_pid() { cat "$KAFKA_PIDFILE" 2>/dev/null || true; }

format_storage() {
  [[ -f $KAFKA_DATA/meta.properties ]] && return
  local cluster_id
  if [[ -s $KAFKA_STATE/cluster-id ]]; then
    cluster_id=$(<"$KAFKA_STATE/cluster-id")
  else
    # What `StorageTool random-uuid` prints (16 random bytes, URL-safe base64 without padding, never
    # starting with "-"), without starting a JVM for it: a disposable instance starts seconds sooner.
    cluster_id=-
    while [[ $cluster_id == -* ]]; do
      cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    echo "$cluster_id" >"$KAFKA_STATE/cluster-id"
  fi
  say "formatting storage in $KAFKA_DATA (cluster id $cluster_id)"
  kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONF/server.properties" \
    --ignore-formatted >"$KAFKA_STATE/format.log" 2>&1 || {
    show_log_tail "$KAFKA_STATE/format.log"
    die "formatting the KRaft storage failed (log above)" \
      "to start from an empty broker: bash deploy/engines/kafka.sh down; rm -rf $KAFKA_DATA $KAFKA_STATE/cluster-id"
  }
}

start_broker() {
  [[ -f $KAFKA_LOG ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  rm -f "$KAFKA_PIDFILE"
  local java
  java=$(java_bin)
  say "starting Kafka $(basename "$(ls "$KAFKA_LIB"/kafka_2.13-*.jar)" .jar | sed 's/^kafka_2.13-//') on $KAFKA_BROKERS (controller $LOOPBACK:$KAFKA_CONTROLLER_PORT, heap $KAFKA_HEAP, log $KAFKA_LOG)"
  # setsid + nohup: the broker outlives this script and its terminal. The child shell writes
  # its own pid and then execs java, so the pidfile names the JVM. 9>&-: it must not inherit
  # (and so keep holding) our lock.
  # shellcheck disable=SC2016 # expanded by the child shell
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PIDFILE" \
    "$java" "-Xmx$KAFKA_HEAP" "-Xms$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${KAFKA_JAVA_OPTS[@]}" \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$KAFKA_CONF/log4j.properties" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONF/server.properties" \
    </dev/null >"$KAFKA_LOG" 2>&1 9>&- &
  local began=$SECONDS
  until broker_ready; do
    if ((SECONDS - began >= 2)) && ! ours_running; then
      show_log_tail "$KAFKA_LOG"
      die "the Kafka process exited during start-up (log above, also in $KAFKA_LOG)" \
        "a port in use shows as 'Address already in use': set FLOWLOOM_KAFKA_PORT / FLOWLOOM_KAFKA_CONTROLLER_PORT" \
        "a broken data folder: bash deploy/engines/kafka.sh down; rm -rf $KAFKA_DATA; then up again"
    fi
    if ((SECONDS - began >= KAFKA_START_TIMEOUT)); then
      show_log_tail "$KAFKA_LOG"
      die "Kafka did not become ready on $KAFKA_BROKERS within ${KAFKA_START_TIMEOUT}s (log above)" \
        "it may only be slow: raise FLOWLOOM_KAFKA_START_TIMEOUT, or run 'bash deploy/engines/kafka.sh status' in a moment" \
        "to stop it: bash deploy/engines/kafka.sh down"
    fi
    sleep 0.5
  done
  say "broker ready after $((SECONDS - began))s"
}

cmd_up() {
  take_lock
  if ours_running; then
    if broker_ready; then
      say "already up (pid $(kafka_pid), $KAFKA_BROKERS)"
      echo "FLOWLOOM_TEST_KAFKA_BROKERS=$KAFKA_BROKERS"
      return
    fi
    die "Kafka pid $(kafka_pid) is running but not ready on $KAFKA_BROKERS (still starting, or another port?)" \
      "wait and check: bash deploy/engines/kafka.sh status; its log: $KAFKA_LOG" \
      "or restart it: bash deploy/engines/kafka.sh down && bash deploy/engines/kafka.sh up"
  fi
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$port"; then
      die "port $LOOPBACK:$port is already in use by a process this script did not start" \
        "find it with: ss -ltnp 'sport = :$port'" \
        "stop it, or set FLOWLOOM_KAFKA_PORT / FLOWLOOM_KAFKA_CONTROLLER_PORT to free ports"
    fi
  done
  install_tools
  if [[ -n $KAFKA_INSTANCE ]]; then
    # The jars are shared: fetch them under the shared lock, never beside another fetch.
    FLOWLOOM_KAFKA_INSTANCE='' bash "$ENGINES_DIR/kafka.sh" fetch 9>&-
  else
    fetch_jars
  fi
  write_config
  format_storage
  start_broker
  say "up (pid $(kafka_pid), $KAFKA_BROKERS) in $((SECONDS - _START))s"
  echo "FLOWLOOM_TEST_KAFKA_BROKERS=$KAFKA_BROKERS"
}

cmd_down() {
  take_lock
  if ! ours_running; then
    rm -f "$KAFKA_PIDFILE"
    say "already down"
    return
  fi
  local pid
  pid=$(kafka_pid)
  say "stopping (pid $pid; a controlled shutdown takes a few seconds)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until 60 "stopped" pid_gone "$pid"; then
    warn "pid $pid still alive after 60s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 10 "killed" pid_gone "$pid" || die "pid $pid survived SIGKILL" "inspect it: ps -o pid,stat,args -p $pid"
  fi
  rm -f "$KAFKA_PIDFILE"
  say "down"
}

# Instances are disposable: stop one and delete its folder (the shared broker is never purged).
cmd_purge() {
  [[ -n $KAFKA_INSTANCE ]] || die "purge deletes a broker's data: it only applies to FLOWLOOM_KAFKA_INSTANCE brokers" \
    "to stop the shared broker: bash deploy/engines/kafka.sh down"
  cmd_down
  rm -rf "$KAFKA_STATE"
  say "purged $KAFKA_STATE"
}

cmd_status() {
  if ours_running && broker_ready; then
    echo "kafka:    up    pid $(kafka_pid)  $KAFKA_BROKERS (controller $LOOPBACK:$KAFKA_CONTROLLER_PORT)  FLOWLOOM_TEST_KAFKA_BROKERS=$KAFKA_BROKERS"
  elif ours_running; then
    echo "kafka:    starting or unhealthy  pid $(kafka_pid)  not ready on $KAFKA_BROKERS  log=$KAFKA_LOG"
    return 3
  else
    echo "kafka:    down  (start: bash deploy/engines/kafka.sh up)"
    return 3
  fi
}

# The classes behind Kafka 3.9's bin/kafka-*.sh scripts (some moved to kafka-tools in 3.x).
cmd_tool() {
  local name=${1:-}
  [[ -n $name ]] || die "usage: kafka.sh tool topics|console-producer|console-consumer|consumer-groups|storage|CLASS [ARGS...]"
  shift
  local class
  case "$name" in
    topics) class=org.apache.kafka.tools.TopicCommand ;;
    console-producer) class=kafka.tools.ConsoleProducer ;;
    console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    storage) class=kafka.tools.StorageTool ;;
    *) class=$name ;;
  esac
  [[ -d $KAFKA_LIB && -f $KAFKA_CONF/log4j.properties ]] ||
    die "the Kafka jars are not in $KAFKA_LIB yet" "run: bash deploy/engines/kafka.sh up"
  # Tools log only warnings, to stderr, so their stdout stays clean for scripts.
  "$(java_bin)" -Xmx256m -Dlog4j.configuration="file:$ENGINES_DIR/kafka/tools-log4j.properties" \
    -cp "$KAFKA_LIB/*" "$class" "$@"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  purge) cmd_purge ;;
  status) cmd_status ;;
  fetch) take_lock && fetch_jars ;;
  tool) shift && cmd_tool "$@" ;;
  *) printf 'usage: %s up|down|status|purge|fetch|tool NAME [ARGS...]\n' "$0" >&2 && exit 2 ;;
esac
