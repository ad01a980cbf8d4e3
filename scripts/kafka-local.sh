#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft: broker and controller in one JVM) for tests and local flows,
# without Docker. The jars come from Maven Central through scripts/kafka/pom.xml into a cache outside the repo.
#
#   bash scripts/kafka-local.sh start [--keep-data]   resolve jars (once), format storage, start, wait until ready
#   bash scripts/kafka-local.sh wait                  block until the running broker accepts clients
#   bash scripts/kafka-local.sh stop                  SIGTERM, wait, then SIGKILL
#   bash scripts/kafka-local.sh status                "running ..." (exit 0) or "stopped ..." (exit 3)
#
# Environment:
#   KAFKA_PORT (9092)            client listener on 127.0.0.1; each port is its own broker (run dir, pid, data)
#   KAFKA_CONTROLLER_PORT        controller listener (default KAFKA_PORT + 1)
#   KAFKA_LOCAL_HOME             cache and run directories (default ~/.cache/iot-anomaly-kafka)
#   KAFKA_DATA_DIR               keep the broker's data here across starts (default: a fresh dir per start)
#   KAFKA_KEEP_DATA=1            same as --keep-data: reuse the default data dir (broker-restart tests)
#   KAFKA_HEAP_OPTS              JVM heap (default -Xms256m -Xmx768m)
#   KAFKA_READY_TIMEOUT (90)     seconds to wait for "Kafka Server started" and for a client to create a topic
#   KAFKA_STOP_TIMEOUT (30)      seconds between SIGTERM and SIGKILL
#   KAFKA_CDS (1)                0 turns off the JVM class-data archive that speeds up starts after the first
#
# Cache layout ($KAFKA_LOCAL_HOME): kafka-<version>-log4j-<version>-<pom hash>/ holds lib/ (45 jars, 43 MB), a
# formatted-storage template and the class-data archive (~50 MB); run-<port>/ holds server.properties, server.log,
# kafka.pid and data/. Measured on a 2-core machine: first start ~43 s (36 s of it Maven downloads), then ~5-7 s.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_SCRIPTS="$REPO_DIR/scripts/kafka"
POM="$KAFKA_SCRIPTS/pom.xml"
LOG4J_CONFIG="$KAFKA_SCRIPTS/log4j2.properties"
WAIT_READY="$KAFKA_SCRIPTS/wait-ready.js"

HOST=127.0.0.1
PORT="${KAFKA_PORT:-9092}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || (( PORT < 1 || PORT > 65534 )); then
  echo "kafka-local: KAFKA_PORT must be a port number (got \"$PORT\")" >&2
  exit 2
fi
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
if ! [[ "$CONTROLLER_PORT" =~ ^[0-9]+$ ]] || (( CONTROLLER_PORT < 1 || CONTROLLER_PORT > 65535 || CONTROLLER_PORT == PORT )); then
  echo "kafka-local: KAFKA_CONTROLLER_PORT must be a port number other than KAFKA_PORT (got \"$CONTROLLER_PORT\")" >&2
  exit 2
fi

LOCAL_HOME="${KAFKA_LOCAL_HOME:-$HOME/.cache/iot-anomaly-kafka}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
LOG4J_VERSION="$(sed -n 's:.*<log4j.version>\(.*\)</log4j.version>.*:\1:p' "$POM")"
# Keyed by the versions and by the pom's content, so editing the pom never reuses jars resolved from an older one.
POM_HASH="$(sha256sum "$POM" | cut -c1-10)"
DIST_DIR="$LOCAL_HOME/kafka-$KAFKA_VERSION-log4j-$LOG4J_VERSION-$POM_HASH"
LIB_DIR="$DIST_DIR/lib"

RUN_DIR="$LOCAL_HOME/run-$PORT"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_FILE="$RUN_DIR/server.log"
PROPS_FILE="$RUN_DIR/server.properties"
DEFAULT_DATA_DIR="$RUN_DIR/data"
DATA_DIR="${KAFKA_DATA_DIR:-$DEFAULT_DATA_DIR}"
# The official apache/kafka image's default id; fixed so a kept data dir formats and starts again.
CLUSTER_ID="${KAFKA_CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
ADDRESS="$HOST:$PORT"

say() { echo "kafka-local[$PORT]: $*"; }
die() { echo "kafka-local[$PORT]: $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
# Seconds since $1 with one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

broker_pid() {
  # Prints the pid only if it is our broker: a live java process started with this port's server.properties
  # (a stale pid file may name a pid the system has reused for something else).
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -F -- "kafka.Kafka $PROPS_FILE" || return 1
  echo "$pid"
}

alive() {
  # Running and not a zombie (an exited broker whose new parent has not reaped it yet counts as gone).
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || echo X)"
  [[ "$state" != "Z" && "$state" != "X" ]]
}

port_in_use() {
  # A successful TCP connect means something is listening there already.
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

require_tools() {
  command -v java >/dev/null || die "java is not on PATH (Kafka $KAFKA_VERSION needs Java 17 or newer)"
  command -v node >/dev/null || die "node is not on PATH (the readiness probe uses kafkajs)"
}

resolve_jars() {
  if [[ -f "$LIB_DIR/.complete" ]]; then
    say "jars: cached in $LIB_DIR ($(find "$LIB_DIR" -name '*.jar' | wc -l) jars, Kafka $KAFKA_VERSION)"
    return
  fi
  command -v mvn >/dev/null || die "mvn is not on PATH: it resolves Kafka $KAFKA_VERSION from Maven Central into $LIB_DIR"
  mkdir -p "$DIST_DIR"
  # One resolver at a time (two test processes may start brokers on different ports at once).
  exec 8>"$DIST_DIR/.lock"
  flock 8
  if [[ -f "$LIB_DIR/.complete" ]]; then
    exec 8>&-
    say "jars: resolved by another process into $LIB_DIR"
    return
  fi
  local started staging
  started="$(now)"
  staging="$DIST_DIR/lib.partial"
  rm -rf "$staging"
  say "downloading Kafka $KAFKA_VERSION + log4j $LOG4J_VERSION from Maven Central into $LIB_DIR ..."
  # Maven 3.8 prints colour resets even in batch mode; strip them (pipefail keeps mvn's exit status).
  mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$staging" 2>&1 \
    | sed 's/\x1b\[[0-9;]*m//g' \
    || die "mvn could not resolve the Kafka jars (see above); is Maven Central reachable?"
  # Staged then renamed, so an interrupted download never looks like a complete cache.
  rm -rf "$LIB_DIR"
  mv "$staging" "$LIB_DIR"
  touch "$LIB_DIR/.complete"
  exec 8>&-
  say "download: $(since "$started") s ($(find "$LIB_DIR" -name '*.jar' | wc -l) jars, $(du -sh "$LIB_DIR" | cut -f1))"
}

write_properties() {
  mkdir -p "$RUN_DIR"
  cat >"$PROPS_FILE" <<EOF
# Generated by scripts/kafka-local.sh for a single-node test broker; edits are overwritten at the next start.
process.roles=broker,controller
node.id=1
# Static voters: no "StorageTool format --standalone" needed (Kafka 4.3+ rejects combining the two).
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
# One broker: every internal topic must have replication 1, or the group coordinator is never available.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join consumer groups all the time; the default 3 s delay would slow every first join.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
EOF
}

format_storage() {
  # StorageTool costs a JVM start (~2 s). Its output for a fresh log dir depends only on the Kafka version, the
  # cluster id and the node id, so the first start formats a template and later fresh starts copy it.
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    say "format: kept data in $DATA_DIR"
    return
  fi
  local started template="$DIST_DIR/formatted-$CLUSTER_ID-node1"
  started="$(now)"
  if [[ ! -f "$template/meta.properties" ]]; then
    exec 8>"$DIST_DIR/.lock"
    flock 8
    if [[ ! -f "$template/meta.properties" ]]; then
      rm -rf "$template.partial"
      mkdir -p "$template.partial"
      sed "s|^log.dirs=.*|log.dirs=$template.partial|" "$PROPS_FILE" >"$DIST_DIR/format.properties"
      java -cp "$LIB_DIR/*" -Dlog4j2.configurationFile="$LOG4J_CONFIG" kafka.tools.StorageTool \
        format -t "$CLUSTER_ID" -c "$DIST_DIR/format.properties" --ignore-formatted >"$RUN_DIR/format.log" 2>&1 \
        || { cat "$RUN_DIR/format.log" >&2; die "formatting the storage template $template failed"; }
      rm -rf "$template"
      mv "$template.partial" "$template"
    fi
    exec 8>&-
  fi
  cp -a "$template/." "$DATA_DIR/"
  say "format: $(since "$started") s ($DATA_DIR)"
}

cds_options() {
  # Class-data sharing: the first broker run records the classes it loaded into an archive when it exits (written
  # per port, renamed into place by `stop`), later starts map it and reach "Kafka Server started" ~2 s sooner.
  # Keyed by the java binary and version; a stale or broken archive is ignored by the JVM. KAFKA_CDS=0 turns it off.
  [[ "${KAFKA_CDS:-1}" == "1" ]] || return 0
  local java_key
  java_key="$( { readlink -f "$(command -v java)"; java -version 2>&1; } | sha256sum | cut -c1-10)"
  CDS_ARCHIVE="$DIST_DIR/classes-$java_key.jsa"
  if [[ -s "$CDS_ARCHIVE" ]]; then
    echo "-XX:SharedArchiveFile=$CDS_ARCHIVE -Xlog:cds=off -Xlog:cds+dynamic=off"
  else
    echo "-XX:ArchiveClassesAtExit=$RUN_DIR/classes.jsa.partial -Xlog:cds=off -Xlog:cds+dynamic=off"
    echo "$CDS_ARCHIVE" >"$RUN_DIR/classes.jsa.target"
  fi
}

wait_started() {
  # Blocks until the log says "Kafka Server started" (or the process dies, or the timeout passes).
  local pid="$1" deadline=$((SECONDS + READY_TIMEOUT))
  until grep -q "Kafka Server started" "$LOG_FILE" 2>/dev/null; do
    if ! alive "$pid"; then
      tail -n 40 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      die "the broker exited during start-up (log above, full log in $LOG_FILE)"
    fi
    (( SECONDS < deadline )) || die "no \"Kafka Server started\" after $READY_TIMEOUT s (log: $LOG_FILE)"
    sleep 0.2
  done
}

wait_client_ready() {
  node "$WAIT_READY" "$ADDRESS" "$READY_TIMEOUT" || die "the broker started but no client could create a topic at $ADDRESS (log: $LOG_FILE)"
}

cmd_start() {
  local keep_data="${KAFKA_KEEP_DATA:-0}"
  [[ "${1:-}" == "--keep-data" ]] && keep_data=1
  local pid
  # One `start` per port at a time: a second caller waits here, then finds the broker running.
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.start.lock"
  flock 9
  if pid="$(broker_pid)"; then
    say "already running (pid $pid) at $ADDRESS"
    cmd_wait
    return 0
  fi
  require_tools
  port_in_use "$PORT" && die "port $PORT is already in use by another program; choose another with KAFKA_PORT=<port>"
  port_in_use "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is already in use; choose another with KAFKA_CONTROLLER_PORT=<port>"

  local total_started
  total_started="$(now)"
  resolve_jars
  write_properties
  if [[ -z "${KAFKA_DATA_DIR:-}" && "$keep_data" != "1" ]]; then
    # A fresh log dir per start: tests never see topics or committed offsets of an earlier run.
    rm -rf "$DEFAULT_DATA_DIR"
  fi
  mkdir -p "$DATA_DIR"
  format_storage

  local started cds
  rm -f "$RUN_DIR/classes.jsa.partial" "$RUN_DIR/classes.jsa.target"
  cds="$(cds_options)"
  started="$(now)"
  : >"$LOG_FILE"
  # setsid: a Ctrl-C in the terminal (or a test runner's process-group signal) does not reach the broker;
  # `stop` ends it through the pid file.
  # shellcheck disable=SC2086 # HEAP_OPTS is a list of JVM flags
  setsid java $HEAP_OPTS $cds -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -cp "$LIB_DIR/*" kafka.Kafka "$PROPS_FILE" \
    >>"$LOG_FILE" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  say "started pid $pid (Kafka $KAFKA_VERSION, log $LOG_FILE)"
  wait_started "$pid"
  say "start: $(since "$started") s to \"Kafka Server started\""
  wait_client_ready
  say "ready at $ADDRESS: $(since "$started") s after launch, $(since "$total_started") s in all"
}

cmd_wait() {
  local pid
  pid="$(broker_pid)" || die "not running at $ADDRESS; start it with: bash scripts/kafka-local.sh start"
  wait_started "$pid"
  wait_client_ready
  say "ready at $ADDRESS (pid $pid)"
}

cmd_stop() {
  local pid
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE"
    say "not running at $ADDRESS"
    return 0
  fi
  local started deadline=$((SECONDS + STOP_TIMEOUT))
  started="$(now)"
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid" && (( SECONDS < deadline )); do sleep 0.2; done
  if alive "$pid"; then
    say "no exit $STOP_TIMEOUT s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while alive "$pid" && (( SECONDS < deadline )); do sleep 0.1; done
    alive "$pid" && die "pid $pid survived SIGKILL"
  fi
  rm -f "$PID_FILE"
  say "stopped pid $pid in $(since "$started") s"
  # Put the class-data archive written at exit into place (see cds_options), if this run made one.
  if [[ -s "$RUN_DIR/classes.jsa.partial" && -f "$RUN_DIR/classes.jsa.target" ]]; then
    local target
    target="$(cat "$RUN_DIR/classes.jsa.target")"
    [[ -s "$target" ]] || mv "$RUN_DIR/classes.jsa.partial" "$target"
  fi
  rm -f "$RUN_DIR/classes.jsa.partial" "$RUN_DIR/classes.jsa.target"
}

cmd_status() {
  local pid
  if pid="$(broker_pid)"; then
    echo "running: Kafka $KAFKA_VERSION at $ADDRESS (pid $pid, log $LOG_FILE)"
    return 0
  fi
  echo "stopped: $ADDRESS"
  return 3
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  wait) cmd_wait ;;
  *)
    echo "usage: bash scripts/kafka-local.sh start [--keep-data] | stop | status | wait" >&2
    exit 2
    ;;
esac
