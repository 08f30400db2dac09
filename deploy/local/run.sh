#!/usr/bin/env bash
# Starts (or stops) the cockpit's own processes on top of the local stack and says where to look:
# default model version (built if missing), scorer worker, accelerated simulator producer, API + web.
#
#   deploy/local/run.sh start|stop|status
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
LOGS="$ROOT/.stack/logs"
PIDS="$ROOT/.stack/pids"
API_PORT="${COCKPIT_PORT:-8000}"
SCORER_PORT="${COCKPIT_WEB_PORT:-6066}"
PRODUCER_METRICS_PORT="${COCKPIT_PRODUCER_METRICS_PORT:-9308}"
SPEED="${COCKPIT_SIM_SPEED:-600}"
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

running() { [[ -f "$PIDS/$1.pid" ]] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

launch() { # name, then the command; logs to .stack/logs/<name>.log
  local name="$1"; shift
  if running "$name"; then say "$name already running (pid $(cat "$PIDS/$name.pid"))"; return; fi
  nohup "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  say "$name started (pid $!, log .stack/logs/$name.log)"
}

wait_http() { # url, name, seconds
  local deadline=$((SECONDS + $3))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    running "$2" || die "$2 exited during start-up; last lines of .stack/logs/$2.log:
$(tail -n 20 "$LOGS/$2.log")"
    ((SECONDS < deadline)) || die "$2 did not answer on $1 within $3 s; see .stack/logs/$2.log"
    sleep 1
  done
}

start() {
  "$PY" -m common migrate  # idempotent; the scorer and the API need the latest schema
  say "building the default model version if the registry has none ($COCKPIT_REGISTRY_DIR)"
  "$PY" -m models ensure-default --registry "$COCKPIT_REGISTRY_DIR"
  launch scorer "$PY" -m scorer worker
  launch api "$PY" -m api serve --host 127.0.0.1 --port "$API_PORT"
  wait_http "http://127.0.0.1:$API_PORT/healthz" api 60
  wait_http "http://127.0.0.1:$SCORER_PORT/healthz" scorer 120
  launch producer "$PY" -m producers simulate --speed "$SPEED" --metrics-port "$PRODUCER_METRICS_PORT"
  cat <<EOF

  Cockpit is running
    web cockpit      http://127.0.0.1:$API_PORT/
    API docs         http://127.0.0.1:$API_PORT/docs
    API metrics      http://127.0.0.1:$API_PORT/metrics
    scorer metrics   http://127.0.0.1:$SCORER_PORT/metrics
    producer metrics http://127.0.0.1:$PRODUCER_METRICS_PORT/metrics
    Kafka            127.0.0.1:9092 (topics telemetry.v1, telemetry.dlq.v1, scorer.commands.v1)
    PostgreSQL       postgresql://cockpit_reader:cockpit_reader@127.0.0.1:5433/cockpit
    CLI              .venv/bin/cockpit top   |   .venv/bin/cockpit status
    sweep now        COCKPIT_API_KEY=\$(cat .stack/api-key) .venv/bin/cockpit sweep
    logs             make logs SERVICE=scorer|api|producer|kafka|postgres
    stop             make down          wipe data: make reset

EOF
}

stop() {
  for name in producer api scorer; do
    if running "$name"; then
      local pid; pid="$(cat "$PIDS/$name.pid")"
      say "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/$name.pid"
  done
}

status() {
  for name in scorer api producer; do
    if running "$name"; then say "$name up (pid $(cat "$PIDS/$name.pid"))"; else say "$name down"; fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
