#!/usr/bin/env bash
# Starts (or stops) the cockpit's own processes on top of the local stack and says where to look.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOGS="$ROOT/.stack/logs"
PIDS="$ROOT/.stack/pids"
mkdir -p "$LOGS" "$PIDS"
say() { printf '\033[1;32m[cockpit]\033[0m %s\n' "$*"; }

case "${1:-start}" in
  start)
    say "stack is up: Kafka 127.0.0.1:9092, PostgreSQL 127.0.0.1:5433 (database cockpit, migrations applied)"
    say "logs: make logs SERVICE=kafka|postgres   stop: make down   wipe: make reset"
    ;;
  stop)
    for pidfile in "$PIDS"/*.pid; do
      [[ -f "$pidfile" ]] || continue
      pid="$(cat "$pidfile")"; name="$(basename "$pidfile" .pid)"
      if kill -0 "$pid" 2>/dev/null; then say "stopping $name (pid $pid)"; kill -TERM "$pid" || true; fi
      rm -f "$pidfile"
    done
    ;;
  status)
    for pidfile in "$PIDS"/*.pid; do
      [[ -f "$pidfile" ]] || continue
      pid="$(cat "$pidfile")"; name="$(basename "$pidfile" .pid)"
      if kill -0 "$pid" 2>/dev/null; then say "$name up (pid $pid)"; else say "$name down"; fi
    done
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
