# shellcheck shell=bash
# Sourced by deploy/local/run.sh and the Makefile: every local port comes from one COCKPIT_* variable,
# and the URLs the services read are derived from those ports, so a second checkout started with other
# ports (COCKPIT_PORT=8100 COCKPIT_KAFKA_PORT=9192 ... make run) runs beside the first without clashes.
# An explicit COCKPIT_KAFKA_BOOTSTRAP_SERVERS / COCKPIT_DATABASE_URL / COCKPIT_READER_DATABASE_URL in the
# environment or in ./.env wins over the derived value.
_cockpit_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

export COCKPIT_PORT="${COCKPIT_PORT:-8000}"                                    # API + web cockpit
export COCKPIT_WEB_PORT="${COCKPIT_WEB_PORT:-6066}"                            # scorer /metrics /readyz
export COCKPIT_PRODUCER_METRICS_PORT="${COCKPIT_PRODUCER_METRICS_PORT:-9308}"  # simulator producer /metrics
export COCKPIT_KAFKA_PORT="${COCKPIT_KAFKA_PORT:-9092}"
export COCKPIT_KAFKA_CONTROLLER_PORT="${COCKPIT_KAFKA_CONTROLLER_PORT:-9093}"
export COCKPIT_PG_PORT="${COCKPIT_PG_PORT:-5433}"
export COCKPIT_PROMETHEUS_PORT="${COCKPIT_PROMETHEUS_PORT:-9099}"                  # Prometheus (monitoring.sh)
export COCKPIT_ALERTMANAGER_PORT="${COCKPIT_ALERTMANAGER_PORT:-9094}"              # Alertmanager (monitoring.sh)

_cockpit_in_dotenv() { [[ -f "$_cockpit_root/.env" ]] && grep -qE "^[[:space:]]*(export[[:space:]]+)?$1=" "$_cockpit_root/.env"; }

_cockpit_default() { # name value: export name=value unless the environment or .env already sets it
  if [[ -z "${!1:-}" ]] && ! _cockpit_in_dotenv "$1"; then export "$1=$2"; fi
}

_cockpit_default COCKPIT_KAFKA_BOOTSTRAP_SERVERS "127.0.0.1:$COCKPIT_KAFKA_PORT"
_cockpit_default COCKPIT_DATABASE_URL "postgresql://cockpit_writer:cockpit_writer@127.0.0.1:$COCKPIT_PG_PORT/cockpit"
_cockpit_default COCKPIT_READER_DATABASE_URL "postgresql://cockpit_reader:cockpit_reader@127.0.0.1:$COCKPIT_PG_PORT/cockpit"
unset -f _cockpit_default _cockpit_in_dotenv
unset _cockpit_root
