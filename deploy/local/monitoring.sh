#!/usr/bin/env bash
# Local monitoring: Prometheus (Debian's `prometheus`) and Alertmanager (`prometheus-alertmanager`), our own
# processes (the Debian services are never started), with the project's configuration:
#   - Prometheus: deploy/prometheus/local.yml rendered with this checkout's ports, rules from
#     deploy/prometheus/alerts.yml, data in .stack/prometheus/data;
#   - Alertmanager: deploy/alertmanager/alertmanager.yml, data in .stack/alertmanager/data, cluster port off.
#
#   deploy/local/monitoring.sh up|down|status|check   (check: its ports are free, or ours)
#
# Ports (deploy/local/env.sh): COCKPIT_PROMETHEUS_PORT (9099), COCKPIT_ALERTMANAGER_PORT (9094); the scrape
# targets are COCKPIT_PORT (API), COCKPIT_WEB_PORT (scorer), COCKPIT_PRODUCER_METRICS_PORT (producer).
# Tests and drills may also set: COCKPIT_MONITORING_DIR (instead of .stack), COCKPIT_ALERT_RULES (rules file),
# COCKPIT_PROMETHEUS_SCRAPE_INTERVAL / COCKPIT_PROMETHEUS_EVALUATION_INTERVAL (15s),
# COCKPIT_ALERTMANAGER_GROUP_WAIT (the file's 30s), COCKPIT_ALERT_WEBHOOK_URL (a webhook for every alert).
# `up` is idempotent: when already running it re-renders the configuration and reloads it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=deploy/local/env.sh
source "$ROOT/deploy/local/env.sh"

export COCKPIT_PROMETHEUS_SCRAPE_INTERVAL="${COCKPIT_PROMETHEUS_SCRAPE_INTERVAL:-15s}"
export COCKPIT_PROMETHEUS_EVALUATION_INTERVAL="${COCKPIT_PROMETHEUS_EVALUATION_INTERVAL:-15s}"
export COCKPIT_ALERT_RULES="${COCKPIT_ALERT_RULES:-$ROOT/deploy/prometheus/alerts.yml}"
MON_DIR="${COCKPIT_MONITORING_DIR:-$ROOT/.stack}"
PROM_DIR="$MON_DIR/prometheus"
AM_DIR="$MON_DIR/alertmanager"
LOGS="$MON_DIR/logs"
PROM_TEMPLATE="$ROOT/deploy/prometheus/local.yml"
AM_CONFIG="$ROOT/deploy/alertmanager/alertmanager.yml"
PY="${COCKPIT_MONITORING_PYTHON:-$ROOT/.venv/bin/python}"
READY_TIMEOUT="${COCKPIT_MONITORING_READY_TIMEOUT:-60}"

say() { printf '\033[1;35m[monitoring]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[monitoring] error:\033[0m %s\n' "$*" >&2; exit 1; }

prom_url() { echo "http://127.0.0.1:$COCKPIT_PROMETHEUS_PORT"; }
am_url() { echo "http://127.0.0.1:$COCKPIT_ALERTMANAGER_PORT"; }
pid_file() { echo "$MON_DIR/$1/$1.pid"; }
running() { [[ -f "$(pid_file "$1")" ]] && kill -0 "$(cat "$(pid_file "$1")")" 2>/dev/null; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

binaries() {
  local missing=()
  for bin in prometheus promtool prometheus-alertmanager amtool; do command -v "$bin" >/dev/null || missing+=("$bin"); done
  ((${#missing[@]} == 0)) || die "not installed: ${missing[*]} (looked on PATH=$PATH); run 'make setup' (Debian packages prometheus and prometheus-alertmanager)"
  [[ -x "$PY" ]] || die "no Python at $PY to render the configuration; run 'make setup'"
}

render() { # writes $PROM_DIR/prometheus.yml and $AM_DIR/alertmanager.yml, then validates both
  mkdir -p "$PROM_DIR/data" "$AM_DIR/data" "$LOGS"
  [[ -f "$COCKPIT_ALERT_RULES" ]] || die "alert rules not found: $COCKPIT_ALERT_RULES (COCKPIT_ALERT_RULES)"
  "$PY" - "$PROM_TEMPLATE" "$PROM_DIR/prometheus.yml" "$AM_CONFIG" "$AM_DIR/alertmanager.yml" <<'PYEOF' \
    || die "could not render the monitoring configuration (the line above says why)"
import os, string, sys
import yaml
prom_template, prom_out, am_in, am_out = sys.argv[1:5]
try:
    text = string.Template(open(prom_template).read()).substitute(os.environ)
except KeyError as exc:
    sys.exit(f"{prom_template}: variable {exc.args[0]} is not set")
open(prom_out, "w").write(f"# rendered from {prom_template} by deploy/local/monitoring.sh: edit the template\n" + text)
am = yaml.safe_load(open(am_in))
if os.environ.get("COCKPIT_ALERTMANAGER_GROUP_WAIT"):
    am["route"]["group_wait"] = os.environ["COCKPIT_ALERTMANAGER_GROUP_WAIT"]
    am["route"]["group_interval"] = os.environ["COCKPIT_ALERTMANAGER_GROUP_WAIT"]
if os.environ.get("COCKPIT_ALERT_WEBHOOK_URL"):
    for receiver in am["receivers"]:
        receiver["webhook_configs"] = [{"url": os.environ["COCKPIT_ALERT_WEBHOOK_URL"], "send_resolved": True}]
with open(am_out, "w") as fh:
    fh.write(f"# rendered from {am_in} by deploy/local/monitoring.sh: edit that file\n")
    yaml.safe_dump(am, fh, sort_keys=False)
PYEOF
  promtool check config "$PROM_DIR/prometheus.yml" >"$PROM_DIR/check.log" 2>&1 \
    || die "Prometheus configuration refused (rendered from $PROM_TEMPLATE):
$(cat "$PROM_DIR/check.log")"
  amtool check-config "$AM_DIR/alertmanager.yml" >"$AM_DIR/check.log" 2>&1 \
    || die "Alertmanager configuration refused ($AM_CONFIG):
$(cat "$AM_DIR/check.log")"
}

wait_ready() { # name url: until GET url/-/ready answers 200, or the process dies, or the timeout
  local name="$1" url="$2" deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 2 "$url/-/ready" 2>/dev/null; do
    running "$name" || die "$name exited during start-up; last lines of $LOGS/$name.log:
$(tail -n 20 "$LOGS/$name.log" 2>/dev/null)"
    ((SECONDS < deadline)) || die "$name: $url/-/ready did not answer within $READY_TIMEOUT s; see $LOGS/$name.log"
    sleep 0.5
  done
}

launch() { # name port variable, then the command
  local name="$1" port="$2" var="$3"; shift 3
  if running "$name"; then
    say "$name already running (pid $(cat "$(pid_file "$name")")): configuration reloaded"
    kill -HUP "$(cat "$(pid_file "$name")")"
    return
  fi
  port_free "$port" || die "port $port on 127.0.0.1 is already in use (needed by $name); stop what uses it or set $var"
  [[ -f "$LOGS/$name.log" ]] && mv -f "$LOGS/$name.log" "$LOGS/$name.log.1"
  nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
  say "$name started (pid $!, log $LOGS/$name.log)"
}

up() {
  check  # both ports before starting either
  binaries
  render
  launch alertmanager "$COCKPIT_ALERTMANAGER_PORT" COCKPIT_ALERTMANAGER_PORT \
    prometheus-alertmanager --config.file="$AM_DIR/alertmanager.yml" --storage.path="$AM_DIR/data" \
    --web.listen-address="127.0.0.1:$COCKPIT_ALERTMANAGER_PORT" --web.external-url="$(am_url)" \
    --cluster.listen-address=
  launch prometheus "$COCKPIT_PROMETHEUS_PORT" COCKPIT_PROMETHEUS_PORT \
    prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
    --storage.tsdb.retention.time=15d --web.listen-address="127.0.0.1:$COCKPIT_PROMETHEUS_PORT" \
    --web.external-url="$(prom_url)" --web.enable-lifecycle
  wait_ready alertmanager "$(am_url)"
  wait_ready prometheus "$(prom_url)"
  say "Prometheus $(prom_url)/alerts (rules: $COCKPIT_ALERT_RULES), Alertmanager $(am_url)/ — ready"
}

stop_one() {
  local name="$1"
  if running "$name"; then
    local pid; pid="$(cat "$(pid_file "$name")")"
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { say "$name did not stop in 20 s, killing"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$(pid_file "$name")"
}

down() { stop_one prometheus; stop_one alertmanager; }

check() { # before setup (make run): fails at once when a monitoring port is taken by another process
  running alertmanager || port_free "$COCKPIT_ALERTMANAGER_PORT" \
    || die "port $COCKPIT_ALERTMANAGER_PORT on 127.0.0.1 is already in use (needed by alertmanager); stop what uses it or set COCKPIT_ALERTMANAGER_PORT"
  running prometheus || port_free "$COCKPIT_PROMETHEUS_PORT" \
    || die "port $COCKPIT_PROMETHEUS_PORT on 127.0.0.1 is already in use (needed by prometheus); stop what uses it or set COCKPIT_PROMETHEUS_PORT"
}

status() {
  local rc=0
  if running prometheus && curl -fsS -o /dev/null --max-time 2 "$(prom_url)/-/ready"; then
    local targets=""
    [[ -x "$PY" ]] && targets="$(curl -fsS --max-time 3 "$(prom_url)/api/v1/targets?state=active" | "$PY" -c '
import json, sys
ts = json.load(sys.stdin)["data"]["activeTargets"]
print("  targets: " + ", ".join("%s %s" % (t["labels"]["job"], t["health"]) for t in ts))' 2>/dev/null || true)"
    say "prometheus    up    $(prom_url)  pid $(cat "$(pid_file prometheus)")$targets"
  else say "prometheus    down"; rc=1; fi
  if running alertmanager && curl -fsS -o /dev/null --max-time 2 "$(am_url)/-/ready"; then
    say "alertmanager  up    $(am_url)  pid $(cat "$(pid_file alertmanager)")"
  else say "alertmanager  down"; rc=1; fi
  return $rc
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  check) check ;;
  *) echo "usage: $0 up|down|status|check" >&2; exit 2 ;;
esac
