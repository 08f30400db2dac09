#!/usr/bin/env bash
# Local stack without Docker: Apache Kafka (KRaft, single node) from Maven Central and Debian's
# PostgreSQL, both on 127.0.0.1, with their data in a project-local, git-ignored directory.
#
#   deploy/local/stack.sh up|down|status|logs [kafka|postgres]|reset
#
# Idempotent: `up` twice is fine. Errors say what is missing and where we looked.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${COCKPIT_STACK_DIR:-$ROOT/.stack}"
KAFKA_PORT="${COCKPIT_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${COCKPIT_KAFKA_CONTROLLER_PORT:-9093}"
PG_PORT="${COCKPIT_PG_PORT:-5433}"
PG_OS_USER="${COCKPIT_PG_OS_USER:-postgres}"
KAFKA_HEAP="${COCKPIT_KAFKA_HEAP:--Xms256m -Xmx768m}"

KAFKA_DIR="$STACK_DIR/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
POM="$ROOT/deploy/local/kafka/pom.xml"

say() { printf '\033[1;34m[stack]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[stack] error:\033[0m %s\n' "$*" >&2; exit 1; }

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM"; }

port_owner() { # prints "pid/command" listening on 127.0.0.1:$1, empty when free
  ss -H -ltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | head -1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- PostgreSQL
pg_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

pg_data_dir() {
  # PostgreSQL refuses to run as root; the data directory belongs to a dedicated OS user. When the
  # project lives where that user cannot reach (e.g. under /root), keep the data under /var/tmp.
  local preferred="$STACK_DIR/pg"
  if [[ -n "${COCKPIT_PG_DATA:-}" ]]; then echo "$COCKPIT_PG_DATA"; return; fi
  mkdir -p "$STACK_DIR"
  if runuser -u "$PG_OS_USER" -- test -x "$STACK_DIR" 2>/dev/null; then
    echo "$preferred"
  else
    echo "/var/tmp/cockpit-pg-$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
  fi
}

ensure_postgres_installed() {
  if [[ -z "$(pg_bindir)" ]]; then
    say "PostgreSQL server not found in /usr/lib/postgresql/*/bin: installing Debian's postgresql package"
    command -v apt-get >/dev/null || die "PostgreSQL is missing and apt-get is not available: install PostgreSQL >= 14 (looked in /usr/lib/postgresql/*/bin)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 -qq update && \
      apt-get -o DPkg::Lock::Timeout=600 -qq install -y postgresql postgresql-contrib >/dev/null \
      || die "apt-get install postgresql failed"
  fi
  getent passwd "$PG_OS_USER" >/dev/null || useradd --system --home /var/lib/postgresql --shell /bin/bash "$PG_OS_USER" \
    || die "cannot create OS user $PG_OS_USER to own the PostgreSQL data directory"
}

pg_running() {
  local bin data; bin="$(pg_bindir)"; data="$(pg_data_dir)"
  [[ -n "$bin" && -f "$data/postmaster.pid" ]] && runuser -u "$PG_OS_USER" -- "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

psql_admin() { # runs SQL as the cluster superuser over the unix socket
  local data; data="$(pg_data_dir)"
  runuser -u "$PG_OS_USER" -- "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$data/run" -p "$PG_PORT" -U postgres -d "${2:-postgres}" -tAc "$1"
}

postgres_up() {
  ensure_postgres_installed
  local bin data; bin="$(pg_bindir)"; data="$(pg_data_dir)"
  if pg_running; then
    say "PostgreSQL already running on 127.0.0.1:$PG_PORT (data: $data)"
  else
    local owner; owner="$(port_owner "$PG_PORT")"
    [[ -z "$owner" ]] || die "port $PG_PORT on 127.0.0.1 is already in use by $owner; stop it or set COCKPIT_PG_PORT"
    if [[ ! -f "$data/PG_VERSION" ]]; then
      say "initialising PostgreSQL cluster in $data (owner: $PG_OS_USER)"
      mkdir -p "$data" && chown "$PG_OS_USER" "$data" && chmod 700 "$data"
      runuser -u "$PG_OS_USER" -- "$bin/initdb" -D "$data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$STACK_DIR/pg-initdb.log" 2>&1 \
        || die "initdb failed, see $STACK_DIR/pg-initdb.log"
      cat >>"$data/postgresql.conf" <<EOF
# --- cockpit local stack
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$data/run'
max_connections = 200
shared_buffers = 256MB
synchronous_commit = on
logging_collector = off
timezone = 'UTC'
EOF
    fi
    runuser -u "$PG_OS_USER" -- mkdir -p "$data/run"
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    # -p: the port follows COCKPIT_PG_PORT even for a cluster initialised on another port.
    runuser -u "$PG_OS_USER" -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -o "-p $PG_PORT" -w -t 60 start >/dev/null \
      || die "PostgreSQL did not start, see $data/server.log"
  fi
  # Roles and database, idempotently. Passwords equal role names: local development only.
  psql_admin "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='cockpit_admin') THEN CREATE ROLE cockpit_admin LOGIN SUPERUSER PASSWORD 'cockpit_admin'; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='cockpit_writer') THEN CREATE ROLE cockpit_writer LOGIN PASSWORD 'cockpit_writer'; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='cockpit_reader') THEN CREATE ROLE cockpit_reader LOGIN PASSWORD 'cockpit_reader'; END IF;
  END \$\$;"
  if [[ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='cockpit'")" != "1" ]]; then
    psql_admin "CREATE DATABASE cockpit OWNER cockpit_writer"
  fi
  psql_admin "ALTER ROLE cockpit_reader SET default_transaction_read_only = on"
}

postgres_down() {
  local bin data; bin="$(pg_bindir)"; data="$(pg_data_dir)"
  if [[ -n "$bin" ]] && pg_running; then
    say "stopping PostgreSQL"
    runuser -u "$PG_OS_USER" -- "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  else
    say "PostgreSQL is not running"
  fi
}

# ---------------------------------------------------------------- Kafka
kafka_classpath() { echo "$KAFKA_LIBS/*"; }

ensure_kafka_libs() {
  command -v java >/dev/null || die "Java is missing: Kafka $(kafka_version) needs Java 17+ (looked for 'java' on PATH)"
  local jv; jv="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
  [[ -n "$jv" && "$jv" -ge 17 ]] || die "Java $jv found, Kafka $(kafka_version) needs Java 17+"
  local stamp="$KAFKA_LIBS/.kafka-$(kafka_version)"
  if [[ ! -f "$stamp" ]]; then
    command -v mvn >/dev/null || die "Maven is missing: it fetches the Kafka broker from Maven Central (looked for 'mvn' on PATH; apt-get install maven)"
    say "fetching Apache Kafka $(kafka_version) from Maven Central into $KAFKA_LIBS"
    rm -rf "$KAFKA_LIBS" && mkdir -p "$KAFKA_LIBS"
    mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS" >"$KAFKA_DIR/mvn.log" 2>&1 \
      || die "mvn dependency:copy-dependencies failed, see $KAFKA_DIR/mvn.log"
    touch "$stamp"
  fi
}

write_kafka_config() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  cat >"$KAFKA_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=268435456
EOF
  cat >"$KAFKA_DIR/log4j2.xml" <<EOF
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="$KAFKA_LOGS/server.log" filePattern="$KAFKA_LOGS/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.controller" level="WARN"/>
  </Loggers>
</Configuration>
EOF
}

kafka_running() { [[ -f "$KAFKA_PID" ]] && kill -0 "$(cat "$KAFKA_PID")" 2>/dev/null; }

kafka_up() {
  if kafka_running; then
    say "Kafka $(kafka_version) already running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
    return
  fi
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    local owner; owner="$(port_owner "$port")"
    [[ -z "$owner" ]] || die "port $port on 127.0.0.1 is already in use by $owner; stop it or set COCKPIT_KAFKA_PORT / COCKPIT_KAFKA_CONTROLLER_PORT"
  done
  ensure_kafka_libs
  write_kafka_config
  local cp; cp="$(kafka_classpath)"
  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    local cluster_id; cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
    say "formatting KRaft storage in $KAFKA_DATA (cluster $cluster_id)"
    java -cp "$cp" -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$KAFKA_DIR/server.properties" >"$KAFKA_LOGS/format.log" 2>&1 \
      || die "kafka storage format failed, see $KAFKA_LOGS/format.log"
  fi
  say "starting Kafka $(kafka_version) (KRaft) on 127.0.0.1:$KAFKA_PORT"
  # shellcheck disable=SC2086
  nohup java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties" \
    >"$KAFKA_LOGS/stdout.log" 2>&1 </dev/null &
  echo $! >"$KAFKA_PID"
  local deadline=$((SECONDS + 90))
  until port_open "$KAFKA_PORT" && grep -q "Kafka Server started" "$KAFKA_LOGS/server.log" 2>/dev/null; do
    kafka_running || die "Kafka exited during start-up, see $KAFKA_LOGS/stdout.log and $KAFKA_LOGS/server.log"
    ((SECONDS < deadline)) || die "Kafka did not accept clients within 90 s, see $KAFKA_LOGS/server.log"
    sleep 0.3
  done
}

kafka_down() {
  if kafka_running; then
    local pid; pid="$(cat "$KAFKA_PID")"
    say "stopping Kafka (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { say "Kafka did not stop in 20 s, killing"; kill -KILL "$pid"; }
    rm -f "$KAFKA_PID"
  else
    say "Kafka is not running"
  fi
}

# ---------------------------------------------------------------- commands
status() {
  local rc=0
  if kafka_running; then say "kafka     up    127.0.0.1:$KAFKA_PORT  version $(kafka_version)  pid $(cat "$KAFKA_PID")"
  else say "kafka     down"; rc=1; fi
  if [[ -n "$(pg_bindir)" ]] && pg_running; then say "postgres  up    127.0.0.1:$PG_PORT  data $(pg_data_dir)"
  else say "postgres  down"; rc=1; fi
  return $rc
}

logs() {
  case "${1:-all}" in
    kafka) tail -n "${LINES_TO_SHOW:-50}" "$KAFKA_LOGS/server.log" ;;
    postgres) tail -n "${LINES_TO_SHOW:-50}" "$(pg_data_dir)/server.log" ;;
    *) echo "== kafka ($KAFKA_LOGS/server.log)"; tail -n "${LINES_TO_SHOW:-20}" "$KAFKA_LOGS/server.log" 2>/dev/null || true
       echo "== postgres ($(pg_data_dir)/server.log)"; tail -n "${LINES_TO_SHOW:-20}" "$(pg_data_dir)/server.log" 2>/dev/null || true ;;
  esac
}

reset() {
  kafka_down; postgres_down
  say "deleting Kafka data $KAFKA_DATA and PostgreSQL data $(pg_data_dir)"
  rm -rf "$KAFKA_DATA" "$KAFKA_LOGS" "$(pg_data_dir)"
}

[[ $EUID -eq 0 ]] || [[ -n "${COCKPIT_PG_DATA:-}" ]] || die "run as root (it switches to the '$PG_OS_USER' OS user for PostgreSQL), or set COCKPIT_PG_DATA"
mkdir -p "$STACK_DIR" "$KAFKA_DIR"
case "${1:-}" in
  up) kafka_up; postgres_up; status ;;
  down) kafka_down; postgres_down ;;
  status) status ;;
  logs) logs "${2:-all}" ;;
  reset) reset ;;
  kafka-up) kafka_up ;;
  postgres-up) postgres_up ;;
  *) echo "usage: $0 up|down|status|logs [kafka|postgres]|reset" >&2; exit 2 ;;
esac
