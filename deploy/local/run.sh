#!/usr/bin/env bash
# Starts (or stops) the whole local cockpit and says where to look, once it really is ready:
# virtualenv, Kafka + PostgreSQL (stack.sh), migrations, Kafka topics, default model version (trained
# once), scorer worker, API + web, accelerated simulator producer. Each step says how long it took.
#
#   deploy/local/run.sh start|stop|status
#
# Ports (all configurable, so a second checkout can run beside the first): COCKPIT_PORT (API, 8000),
# COCKPIT_WEB_PORT (scorer, 6066), COCKPIT_PRODUCER_METRICS_PORT (9308), COCKPIT_KAFKA_PORT (9092),
# COCKPIT_KAFKA_CONTROLLER_PORT (9093), COCKPIT_PG_PORT (5433). See deploy/local/env.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=deploy/local/env.sh
source "$ROOT/deploy/local/env.sh"
PY="$ROOT/.venv/bin/python"
LOGS="$ROOT/.stack/logs"
PIDS="$ROOT/.stack/pids"
API_PORT="$COCKPIT_PORT"
SCORER_PORT="$COCKPIT_WEB_PORT"
PRODUCER_METRICS_PORT="$COCKPIT_PRODUCER_METRICS_PORT"
SPEED="${COCKPIT_SIM_SPEED:-600}"
KEEP_LOGS=5                       # previous runs' logs kept as <name>.log.1 .. .5
SCORER_READY_TIMEOUT="${COCKPIT_SCORER_READY_TIMEOUT:-180}"
#: Measured (docs/operations.md): 70 s on an idle 2-core machine, 16 min on 2 cores shared with other work.
MODEL_TRAINING_ESTIMATE="about 1-2 min on an idle 2-core machine (70 s measured), up to ~16 min when the cores are busy"
export COCKPIT_REGISTRY_DIR="${COCKPIT_REGISTRY_DIR:-$ROOT/registry}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# A fresh deployment gets its first fleet sweep within a minute of the first telemetry.
export COCKPIT_SWEEP_CHECK_INTERVAL_S="${COCKPIT_SWEEP_CHECK_INTERVAL_S:-60}"
# A local API key for POST /v1/sweeps, made once and kept in the git-ignored stack directory.
KEY_FILE="$ROOT/.stack/api-key"
[[ -s "$KEY_FILE" ]] || { mkdir -p "$ROOT/.stack"; head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$KEY_FILE"; chmod 600 "$KEY_FILE"; }
export COCKPIT_API_KEY="${COCKPIT_API_KEY:-$(cat "$KEY_FILE")}"
mkdir -p "$LOGS" "$PIDS"
say() { printf '\033[1;32m[cockpit]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[cockpit] error:\033[0m %s\n' "$*" >&2; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
TIMINGS=()
timed() { # label, then the command: runs it in the foreground and records how long it took
  local label="$1"; shift
  local t0; t0="$(now)"
  "$@"
  local took; took="$(since "$t0")"
  TIMINGS+=("$label ${took} s")
  say "$label: done in ${took} s"
}

running() { [[ -f "$PIDS/$1.pid" ]] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

rotate_log() { # keeps the previous runs' logs: name.log -> name.log.1 -> ... -> name.log.$KEEP_LOGS
  local log="$LOGS/$1.log" i
  [[ -s "$log" ]] || return 0
  rm -f "$log.$KEEP_LOGS"
  for ((i = KEEP_LOGS - 1; i >= 1; i--)); do
    [[ -f "$log.$i" ]] && mv -f "$log.$i" "$log.$((i + 1))"
  done
  mv -f "$log" "$log.1"
}

launch() { # name, then the command; logs to .stack/logs/<name>.log (the previous one is rotated)
  local name="$1"; shift
  if running "$name"; then say "$name already running (pid $(cat "$PIDS/$name.pid"))"; return; fi
  rotate_log "$name"
  nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  say "$name started (pid $!, log .stack/logs/$name.log)"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_port() { # port, variable, name: fail early when someone else listens there
  local port="$1" var="$2" name="$3"
  running "$name" && return 0
  port_free "$port" || die "port $port on 127.0.0.1 is already in use (needed by the $name); stop what uses it or set $var"
}

wait_until() { # name, seconds, description, then a command that succeeds when ready
  local name="$1" seconds="$2" what="$3"; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    running "$name" || die "$name exited during start-up; last lines of .stack/logs/$name.log:
$(tail -n 20 "$LOGS/$name.log")"
    ((SECONDS < deadline)) || die "$name: $what not reached within $seconds s; see .stack/logs/$name.log
$(tail -n 10 "$LOGS/$name.log")"
    sleep 1
  done
}

# The scorer is ready when /readyz says so AND it owns partitions (it must be consuming telemetry).
scorer_ready() {
  curl -fsS "http://127.0.0.1:$SCORER_PORT/readyz" 2>/dev/null | "$PY" -c '
import json, sys
body = json.load(sys.stdin)
sys.exit(0 if body.get("ready") is True and body.get("partitions") else 1)'
}

# The API is ready for users when its /readyz says it serves reads (the database answers as the reader).
api_db_ready() {
  curl -sS "http://127.0.0.1:$API_PORT/readyz" 2>/dev/null | "$PY" -c '
import json, sys
body = json.load(sys.stdin)
sys.exit(0 if body.get("checks", {}).get("database", {}).get("ok") is True else 1)'
}

stack_up() { bash "$ROOT/deploy/local/stack.sh" up; }
migrate() { "$PY" -m common migrate; }
# The demo fleet's register (ids, sites, rated power, rotor, commissioning, all sensors fitted), written by the
# simulator from the fleet the producer runs and imported (idempotent: unchanged turbines are not rewritten).
fleet_register() {
  local file="$ROOT/.stack/fleet_register.yaml" out
  out="$("$PY" -m simulator register --out "$file" 2>&1)" || die "writing the demo fleet register failed: $out"
  "$PY" -m common fleet import "$file"
}
topics() { "$PY" -m common topics; }

default_model() {
  if [[ ! -s "$COCKPIT_REGISTRY_DIR/PRODUCTION" ]]; then
    say "first run: training the default model version once ($MODEL_TRAINING_ESTIMATE; later runs reuse it)"
  fi
  "$PY" -m models ensure-default --registry "$COCKPIT_REGISTRY_DIR"
}

start_scorer() {
  launch scorer "$PY" -m scorer worker
  wait_until scorer "$SCORER_READY_TIMEOUT" "ready with partitions assigned (/readyz)" scorer_ready
}

start_api() {
  launch api "$PY" -m api serve --host 127.0.0.1 --port "$API_PORT"
  wait_until api 60 "database reachable (/readyz)" api_db_ready
}

start_monitoring() { bash "$ROOT/deploy/local/monitoring.sh" up; }

start_producer() {
  launch producer "$PY" -m producers simulate --speed "$SPEED" --metrics-port "$PRODUCER_METRICS_PORT"
  wait_until producer 60 "metrics endpoint" curl -fsS -o /dev/null "http://127.0.0.1:$PRODUCER_METRICS_PORT/metrics"
}

start() {
  local t0; t0="$(now)"
  check_port "$API_PORT" COCKPIT_PORT api
  check_port "$SCORER_PORT" COCKPIT_WEB_PORT scorer
  check_port "$PRODUCER_METRICS_PORT" COCKPIT_PRODUCER_METRICS_PORT producer
  bash "$ROOT/deploy/local/monitoring.sh" check
  timed "python environment" bash "$ROOT/deploy/local/setup.sh"
  timed "Kafka + PostgreSQL" stack_up
  timed "database migrations" migrate
  timed "fleet register" fleet_register
  timed "Kafka topics" topics
  timed "default model" default_model
  timed "scorer ready" start_scorer
  timed "API ready" start_api
  timed "producer started" start_producer
  timed "Prometheus + Alertmanager ready" start_monitoring
  local total; total="$(since "$t0")"
  local topics_line
  topics_line="$("$PY" -c 'from common.settings import CommonSettings as S; s = S(); print(s.telemetry_topic, s.dead_letter_topic, s.command_topic, sep=", ")')"
  local api_url="http://127.0.0.1:$API_PORT"
  local cli_prefix=""
  [[ "$API_PORT" == 8000 ]] || cli_prefix="COCKPIT_API_URL=$api_url "
  cat <<EOF

  Cockpit is ready (start-up ${total} s: $(IFS=';'; echo "${TIMINGS[*]}" | sed 's/;/, /g'))
    web cockpit      $api_url/
    API docs         $api_url/docs   (ReDoc: $api_url/redoc)
    API metrics      $api_url/metrics
    scorer           http://127.0.0.1:$SCORER_PORT/readyz   metrics: http://127.0.0.1:$SCORER_PORT/metrics
    producer metrics http://127.0.0.1:$PRODUCER_METRICS_PORT/metrics   (simulator at ${SPEED}x)
    Kafka            $COCKPIT_KAFKA_BOOTSTRAP_SERVERS (controller 127.0.0.1:$COCKPIT_KAFKA_CONTROLLER_PORT); topics $topics_line
    PostgreSQL       $COCKPIT_READER_DATABASE_URL
    Prometheus       http://127.0.0.1:$COCKPIT_PROMETHEUS_PORT/alerts   (targets: http://127.0.0.1:$COCKPIT_PROMETHEUS_PORT/targets)
    Alertmanager     http://127.0.0.1:$COCKPIT_ALERTMANAGER_PORT/
    CLI              ${cli_prefix}.venv/bin/cockpit top   |   ${cli_prefix}.venv/bin/cockpit status
    sweep now        ${cli_prefix}COCKPIT_API_KEY=\$(cat .stack/api-key) .venv/bin/cockpit sweep
    logs             make logs SERVICE=scorer|api|producer|prometheus|alertmanager|kafka|postgres   (previous runs: .stack/logs/*.log.1..$KEEP_LOGS)
    stop             make down (make run resumes)   wipe data: make reset

EOF
}

stop() {
  bash "$ROOT/deploy/local/monitoring.sh" down || true
  for name in producer api scorer; do
    if running "$name"; then
      local pid; pid="$(cat "$PIDS/$name.pid")"
      say "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && { say "$name did not stop in 20 s, killing"; kill -KILL "$pid" 2>/dev/null || true; }
    fi
    rm -f "$PIDS/$name.pid"
  done
}

status() {
  for name in scorer api producer; do
    if running "$name"; then say "$name up (pid $(cat "$PIDS/$name.pid"))"; else say "$name down"; fi
  done
  bash "$ROOT/deploy/local/monitoring.sh" status || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
