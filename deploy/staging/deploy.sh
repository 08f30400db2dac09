#!/usr/bin/env bash
# Local staging: a built release of this repository, in its own directory, ports, database and topics,
# run under supervisord (restarts crashed processes), smoke-tested, rolled back when the smoke test fails.
#
#   deploy/staging/deploy.sh deploy [--ref REF] [--env KEY=VALUE]...   build + deploy + smoke (+ rollback)
#   deploy/staging/deploy.sh status | down | rollback | smoke
#
# A release is `git archive REF` (default HEAD: committed code only) in $STAGING_DIR/releases/<id>/src,
# with a virtualenv made by uv from that release's requirements-prod.lock (shared by every release with
# the same lock: $STAGING_DIR/venvs/<hash>), and its settings in releases/<id>/release.env (COCKPIT_*
# variables: the processes get those and nothing from the calling shell). `current` points at the running
# release, `previous` at the one before. Before switching: database (created if missing), migrations,
# Kafka topics, a production model in $STAGING_DIR/registry (copied from $STAGING_MODEL_FROM, default the
# dev registry, when it has a loadable one; otherwise `python -m models ensure-default` trains it once).
# After switching: supervisord restarts scorer and API, both must become ready, then `python -m api smoke`
# (one event in, one score out through the API). Any failure after the switch rolls back to `previous`.
#
# Settings (shell variables, not COCKPIT_*: they configure this script, never a cockpit process):
#   STAGING_DIR (.stack/staging)  STAGING_API_PORT (8100)  STAGING_SCORER_PORT (6166)
#   STAGING_KAFKA (127.0.0.1:$COCKPIT_KAFKA_PORT or 9092)  STAGING_ADMIN_DATABASE_URL (local stack admin)
#   STAGING_DB_NAME (cockpit_staging)  STAGING_TOPIC_PREFIX (staging.)  STAGING_PARTITIONS (3)
#   STAGING_MODEL_FROM (./registry)  STAGING_READY_TIMEOUT (180 s)  STAGING_SMOKE_TIMEOUT (60 s)
#   STAGING_KEEP_RELEASES (5)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STAGING="${STAGING_DIR:-$ROOT/.stack/staging}"
mkdir -p "$STAGING"
STAGING="$(cd "$STAGING" && pwd)"
API_PORT="${STAGING_API_PORT:-8100}"
SCORER_PORT="${STAGING_SCORER_PORT:-6166}"
KAFKA="${STAGING_KAFKA:-127.0.0.1:${COCKPIT_KAFKA_PORT:-9092}}"
ADMIN_URL="${STAGING_ADMIN_DATABASE_URL:-postgresql://cockpit_admin:cockpit_admin@127.0.0.1:${COCKPIT_PG_PORT:-5433}/postgres}"
DB_NAME="${STAGING_DB_NAME:-cockpit_staging}"
TOPIC_PREFIX="${STAGING_TOPIC_PREFIX:-staging.}"
PARTITIONS="${STAGING_PARTITIONS:-3}"
MODEL_FROM="$(realpath -m "${STAGING_MODEL_FROM:-$ROOT/registry}")"
READY_TIMEOUT="${STAGING_READY_TIMEOUT:-180}"
SMOKE_TIMEOUT="${STAGING_SMOKE_TIMEOUT:-60}"
KEEP_RELEASES="${STAGING_KEEP_RELEASES:-5}"
SUPERVISORD="${STAGING_SUPERVISORD:-$ROOT/.venv/bin/supervisord}"
SUPERVISORCTL="${STAGING_SUPERVISORCTL:-$ROOT/.venv/bin/supervisorctl}"
UV="${STAGING_UV:-$(command -v uv || echo "$ROOT/.venv/bin/uv")}"
PYTHON_BASE="${STAGING_PYTHON:-$(command -v python3.11 || command -v python3)}"
CONF="$STAGING/supervisord.conf"
LOGS="$STAGING/logs"

say() { printf '\033[1;35m[staging]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[staging] error:\033[0m %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
TIMINGS=()
timed() { # label, command...: runs it, prints and records its duration; returns its status
  local label="$1"; shift
  local t0 rc=0; t0="$(now)"
  "$@" || rc=$?
  local took; took="$(since "$t0")"
  TIMINGS+=("$label ${took}s")
  if ((rc == 0)); then say "$label: done in ${took} s"; else say "$label: FAILED (exit $rc) after ${took} s"; fi
  return "$rc"
}

ctl() { "$SUPERVISORCTL" -c "$CONF" "$@"; }
supervisor_up() { [[ -S "$STAGING/supervisor.sock" ]] && ctl pid >/dev/null 2>&1; }
release_of() { [[ -L "$STAGING/$1" ]] && basename "$(readlink "$STAGING/$1")"; }

# ------------------------------------------------------------------------------------------ build
build_release() { # ref -> RELEASE (id), REL (dir)
  local ref="$1" sha
  sha="$(git -C "$ROOT" rev-parse --verify "$ref^{commit}")" || die "no such git ref: $ref"
  RELEASE="$(date -u +%Y%m%dT%H%M%SZ)-${sha:0:10}"
  REL="$STAGING/releases/$RELEASE"
  mkdir -p "$REL/src"
  git -C "$ROOT" archive --format=tar "$sha" | tar -x -C "$REL/src"
  [[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]] \
    || say "note: uncommitted changes in $ROOT are not part of the release (it is commit ${sha:0:10})"
  printf '{"release": "%s", "commit": "%s", "ref": "%s", "built_at": "%s"}\n' \
    "$RELEASE" "$sha" "$ref" "$(date -u +%FT%TZ)" >"$REL/release.json"
  say "release $RELEASE: commit $sha ($ref) in $REL/src"
}

build_venv() { # one virtualenv per production lock (and Python), reused by later releases
  local lock="$REL/src/requirements-prod.lock"
  [[ -f "$lock" ]] || die "$lock missing: a release needs the production lock"
  local hash; hash="$( (cat "$lock"; "$PYTHON_BASE" --version) | sha256sum | cut -c1-16)"
  local venv="$STAGING/venvs/$hash"
  if [[ -f "$venv/.complete" ]]; then
    say "virtualenv $venv reused (same requirements-prod.lock)"
  else
    [[ -x "$UV" ]] || die "uv not found (looked on PATH and in $ROOT/.venv/bin; run make setup)"
    rm -rf "$venv"
    "$UV" venv -q -p "$PYTHON_BASE" "$venv"
    "$UV" pip install -q -p "$venv/bin/python" -r "$lock"
    touch "$venv/.complete"
    say "virtualenv $venv built from requirements-prod.lock"
  fi
  ln -sfn "$venv" "$REL/venv"
}

write_env() { # the release's settings: everything a process of this release reads, nothing more
  local writer reader out
  out="$("$REL/venv/bin/python" "$ROOT/deploy/staging/database.py" "$ADMIN_URL" "$DB_NAME")" || return $?
  writer="$(sed -n 's/^WRITER=//p' <<<"$out")"
  reader="$(sed -n 's/^READER=//p' <<<"$out")"
  local key_file="$STAGING/api-key"
  [[ -s "$key_file" ]] || { head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$key_file"; chmod 600 "$key_file"; }
  mkdir -p "$STAGING/registry" "$STAGING/var/scorer" "$LOGS"
  cat >"$REL/release.env" <<EOF
COCKPIT_KAFKA_BOOTSTRAP_SERVERS=$KAFKA
COCKPIT_TELEMETRY_TOPIC=${TOPIC_PREFIX}telemetry.v1
COCKPIT_DEAD_LETTER_TOPIC=${TOPIC_PREFIX}telemetry.dlq.v1
COCKPIT_COMMAND_TOPIC=${TOPIC_PREFIX}scorer.commands.v1
COCKPIT_TELEMETRY_PARTITIONS=$PARTITIONS
COCKPIT_DATABASE_URL=$writer
COCKPIT_READER_DATABASE_URL=$reader
COCKPIT_REGISTRY_DIR=$STAGING/registry
COCKPIT_CONSUMER_GROUP=cockpit-scorer-${TOPIC_PREFIX%.}
COCKPIT_WEB_HOST=127.0.0.1
COCKPIT_WEB_PORT=$SCORER_PORT
COCKPIT_HOST=127.0.0.1
COCKPIT_PORT=$API_PORT
COCKPIT_DATA_DIR=$STAGING/var/scorer
COCKPIT_API_KEY=$(cat "$key_file")
COCKPIT_SESSION_TIMEOUT_S=10
COCKPIT_LOG_FORMAT=json
OMP_NUM_THREADS=1
EOF
  local kv
  for kv in "${EXTRA_ENV[@]}"; do echo "$kv" >>"$REL/release.env"; done
  chmod 600 "$REL/release.env"
}

in_release() { # dir, command...: run a command of that release with its settings only
  local dir="$1"; shift
  local -a vars=()
  local line
  while IFS= read -r line; do [[ -n "$line" && "$line" != \#* ]] && vars+=("$line"); done <"$dir/release.env"
  (cd "$dir/src" && env -i PATH="$dir/venv/bin:/usr/local/bin:/usr/bin:/bin" HOME="${HOME:-/root}" LANG=C.UTF-8 \
    PYTHONPATH="$dir/src" PYTHONUNBUFFERED=1 "${vars[@]}" "$@")
}

migrate() { in_release "$REL" python -m common migrate; }
topics() { in_release "$REL" python -m common topics; }

model() { # a production model that loads with THIS release in the staging registry
  local check="import sys; from models.registry import load_production; load_production(sys.argv[1])"
  loads() { [[ -s "$1/PRODUCTION" ]] && in_release "$REL" python -c "$check" "$1" 2>/dev/null; }
  if loads "$STAGING/registry"; then
    say "production model $(tr -d '[:space:]' <"$STAGING/registry/PRODUCTION") loads with this release"
    return 0
  fi
  if loads "$MODEL_FROM"; then # the dev registry's production version (no training)
    local version; version="$(tr -d '[:space:]' <"$MODEL_FROM/PRODUCTION")"
    rm -rf "$STAGING/registry/$version"
    cp -a "$MODEL_FROM/$version" "$STAGING/registry/$version"
    echo "$version" >"$STAGING/registry/PRODUCTION.tmp" && mv -f "$STAGING/registry/PRODUCTION.tmp" "$STAGING/registry/PRODUCTION"
    say "model $version copied from $MODEL_FROM"
    return 0
  fi
  say "no model in $STAGING/registry or $MODEL_FROM that loads with this release: training the default one (minutes)"
  in_release "$REL" python -m models ensure-default --registry "$STAGING/registry" --threads 1
}

# ------------------------------------------------------------------------------------------ supervisor
write_supervisor_conf() {
  mkdir -p "$STAGING/bin" "$LOGS"
  cat >"$STAGING/bin/program" <<EOF
#!/usr/bin/env bash
# Started by supervisord: runs one program of the CURRENT release with that release's settings only.
set -euo pipefail
REL="\$(readlink -f "$STAGING/current")"
vars=()
while IFS= read -r line; do [[ -n "\$line" && "\$line" != \#* ]] && vars+=("\$line"); done <"\$REL/release.env"
case "\$1" in
  scorer) args=(-m scorer worker) ;;
  api) args=(-m api serve) ;;
  *) echo "unknown program \$1" >&2; exit 2 ;;
esac
cd "\$REL/src"
exec env -i PATH="\$REL/venv/bin:/usr/local/bin:/usr/bin:/bin" HOME="\${HOME:-/root}" LANG=C.UTF-8 \\
  PYTHONPATH="\$REL/src" PYTHONUNBUFFERED=1 "\${vars[@]}" "\$REL/venv/bin/python" "\${args[@]}"
EOF
  chmod +x "$STAGING/bin/program"
  cat >"$CONF" <<EOF
; generated by deploy/staging/deploy.sh
[unix_http_server]
file=$STAGING/supervisor.sock
chmod=0700

[supervisord]
logfile=$LOGS/supervisord.log
pidfile=$STAGING/supervisord.pid
directory=$STAGING
childlogdir=$LOGS

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$STAGING/supervisor.sock

[program:scorer]
command=$STAGING/bin/program scorer
autostart=false
autorestart=true
startsecs=5
startretries=3
stopsignal=TERM
stopwaitsecs=40
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$LOGS/scorer.log
stdout_logfile_maxbytes=20MB
stdout_logfile_backups=5

[program:api]
command=$STAGING/bin/program api
autostart=false
autorestart=true
startsecs=3
startretries=3
stopsignal=TERM
stopwaitsecs=20
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$LOGS/api.log
stdout_logfile_maxbytes=20MB
stdout_logfile_backups=5
EOF
}

ensure_supervisor() {
  write_supervisor_conf
  if supervisor_up; then
    ctl reread >/dev/null && ctl update >/dev/null
    return 0
  fi
  [[ -x "$SUPERVISORD" ]] || die "supervisord not found at $SUPERVISORD (it is in requirements.lock: run make setup)"
  local port
  for port in "$API_PORT" "$SCORER_PORT"; do
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "port $port is already in use; set STAGING_API_PORT / STAGING_SCORER_PORT"
  done
  # supervisord keeps the environment it starts with; the programs start from an empty one (bin/program).
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="${HOME:-/root}" LANG=C.UTF-8 "$SUPERVISORD" -c "$CONF"
  local i
  for i in $(seq 1 50); do supervisor_up && break; sleep 0.2; done
  supervisor_up || die "supervisord did not start; see $LOGS/supervisord.log"
  say "supervisord started (pid $(cat "$STAGING/supervisord.pid"), config $CONF)"
}

# ------------------------------------------------------------------------------------------ checks
state_of() { ctl status "$1" 2>/dev/null | awk '{print $2}' || true; }

scorer_ready() { # /readyz 200 with partitions assigned (it consumes telemetry)
  local body
  body="$(curl -fsS -m 5 "http://127.0.0.1:$SCORER_PORT/readyz" 2>/dev/null)" || return 1
  python3 -c '
import json, sys
body = json.loads(sys.argv[1])
sys.exit(0 if body.get("ready") is True and body.get("partitions") else 1)' "$body" 2>/dev/null
}

api_ready() { # ready to serve reads: /readyz answers 200, or its database check is ok
  local body code
  body="$(curl -sS -m 5 -w '\n%{http_code}' "http://127.0.0.1:$API_PORT/readyz" 2>/dev/null)" || return 1
  code="${body##*$'\n'}"
  [[ "$code" == 200 ]] && return 0
  python3 -c '
import json, sys
body = json.loads(sys.argv[1])
sys.exit(0 if body.get("checks", {}).get("database", {}).get("ok") is True else 1)' "${body%$'\n'*}" 2>/dev/null
}

wait_ready() { # both programs RUNNING under supervisor and ready, within READY_TIMEOUT
  local deadline=$((SECONDS + READY_TIMEOUT)) s_ok=0 a_ok=0 name st
  while ((SECONDS < deadline)); do
    for name in scorer api; do
      st="$(state_of "$name")"
      if [[ "$st" == FATAL || "$st" == EXITED ]]; then
        say "$name is $st under supervisor; last lines of $LOGS/$name.log:"
        tail -n 15 "$LOGS/$name.log" >&2 || true
        return 1
      fi
    done
    ((s_ok)) || { scorer_ready && s_ok=1 && say "scorer ready (http://127.0.0.1:$SCORER_PORT/readyz)"; }
    ((a_ok)) || { api_ready && a_ok=1 && say "API ready (http://127.0.0.1:$API_PORT/readyz)"; }
    ((s_ok && a_ok)) && return 0
    sleep 1
  done
  ((s_ok)) || { say "scorer not ready within $READY_TIMEOUT s; /readyz: $(curl -sS -m 5 "http://127.0.0.1:$SCORER_PORT/readyz" 2>&1 | head -c 600)"; }
  ((a_ok)) || { say "API not ready within $READY_TIMEOUT s; /readyz: $(curl -sS -m 5 "http://127.0.0.1:$API_PORT/readyz" 2>&1 | head -c 600)"; }
  return 1
}

restart_programs() { # stop both (the scorer checkpoints on SIGTERM), then start the current release
  ctl stop scorer api >/dev/null 2>&1 || true
  ctl start scorer api
}

smoke() { # run the release's own smoke test against the running programs
  local dir="$1"
  in_release "$dir" python -m api smoke --timeout "$SMOKE_TIMEOUT" --report "$dir/smoke.json"
}

switch_to() { # atomically point `current` at a release directory
  ln -sfn "$1" "$STAGING/current.tmp" && mv -Tf "$STAGING/current.tmp" "$STAGING/current"
}

rollback_to() { # previous release dir: switch back, restart, check
  local prev="$1"
  say "rolling back to $(basename "$prev")"
  switch_to "$prev"
  timed "rollback restart" restart_programs || true
  if timed "rollback ready" wait_ready && timed "rollback smoke" smoke "$prev"; then
    say "rolled back: $(basename "$prev") is serving again"
    return 0
  fi
  say "the rollback to $(basename "$prev") did not pass its checks either: see $LOGS/"
  return 1
}

prune() {
  local keep cur prev
  cur="$(release_of current || true)"; prev="$(release_of previous || true)"
  keep="$KEEP_RELEASES"
  ls -1 "$STAGING/releases" 2>/dev/null | sort -r | tail -n +"$((keep + 1))" | while read -r old; do
    [[ "$old" == "$cur" || "$old" == "$prev" ]] && continue
    rm -rf "${STAGING:?}/releases/$old"
  done
}

# ------------------------------------------------------------------------------------------ commands
deploy() {
  local ref="HEAD"
  EXTRA_ENV=()
  while (($#)); do
    case "$1" in
      --ref) ref="$2"; shift 2 ;;
      --env) [[ "$2" == *=* ]] || die "--env wants KEY=VALUE (got $2)"; EXTRA_ENV+=("$2"); shift 2 ;;
      *) die "unknown option $1 (deploy [--ref REF] [--env KEY=VALUE]...)" ;;
    esac
  done
  local t0; t0="$(now)"
  timed "build release" build_release "$ref"
  timed "virtualenv" build_venv
  timed "release settings + database" write_env || die "database $DB_NAME could not be prepared (admin URL: ${ADMIN_URL%%@*}@…); the running release is unchanged"
  timed "database migrations" migrate || die "migrations failed; the running release is unchanged"
  timed "Kafka topics" topics || die "Kafka topics could not be ensured on $KAFKA; the running release is unchanged"
  timed "model" model || die "no production model in $STAGING/registry; the running release is unchanged"
  timed "supervisor" ensure_supervisor
  local prev=""
  [[ -L "$STAGING/current" ]] && prev="$(readlink -f "$STAGING/current")"
  switch_to "$REL"
  local failed=""
  timed "restart under supervisor" restart_programs || failed="restart"
  [[ -n "$failed" ]] || timed "ready" wait_ready || failed="${failed:-ready}"
  [[ -n "$failed" ]] || timed "smoke test" smoke "$REL" || failed="${failed:-smoke test}"
  local total; total="$(since "$t0")"
  if [[ -z "$failed" ]]; then
    [[ -n "$prev" && "$prev" != "$REL" ]] && ln -sfn "$prev" "$STAGING/previous"
    echo "$(date -u +%FT%TZ) deployed $RELEASE in ${total}s: ${TIMINGS[*]}" >>"$STAGING/deploys.log"
    prune
    cat <<EOF

  Staging release $RELEASE deployed in ${total} s ($(IFS=';'; echo "${TIMINGS[*]}" | sed 's/;/, /g'))
    API + web      http://127.0.0.1:$API_PORT/   scorer http://127.0.0.1:$SCORER_PORT/readyz
    smoke timings  $REL/smoke.json
    logs           $LOGS/{scorer,api,supervisord}.log
    status / stop  make staging-status / make staging-down

EOF
    return 0
  fi
  echo "failed at: $failed" >"$REL/FAILED"
  echo "$(date -u +%FT%TZ) FAILED $RELEASE at $failed after ${total}s" >>"$STAGING/deploys.log"
  if [[ -n "$prev" && "$prev" != "$REL" ]]; then
    if rollback_to "$prev"; then
      echo "$(date -u +%FT%TZ) rolled back to $(basename "$prev")" >>"$STAGING/deploys.log"
      die "release $RELEASE failed at step '$failed'; rolled back to $(basename "$prev") (serving, smoke test passed)"
    fi
    die "release $RELEASE failed at step '$failed'; the rollback to $(basename "$prev") failed too: see $LOGS/"
  fi
  die "release $RELEASE failed at step '$failed' and there is no previous release to roll back to; see $LOGS/"
}

status() {
  say "staging directory $STAGING"
  say "current release:  $(release_of current || echo none)"
  say "previous release: $(release_of previous || echo none)"
  if supervisor_up; then ctl status || true; else say "supervisord is not running (make deploy-staging starts it)"; fi
  if [[ -L "$STAGING/current" && -f "$STAGING/current/smoke.json" ]]; then
    say "last smoke test of the current release: $(python3 - "$STAGING/current/smoke.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"ok={d['ok']} publish={d['publish_s']} s, score visible {d['score_s']} s after publishing")
PY
)"
  fi
  say "API http://127.0.0.1:$API_PORT/   scorer http://127.0.0.1:$SCORER_PORT/readyz   logs $LOGS/"
  tail -n 5 "$STAGING/deploys.log" 2>/dev/null || true
}

down() {
  if supervisor_up; then
    say "stopping scorer, API and supervisord"
    ctl stop all >/dev/null || true
    ctl shutdown >/dev/null || true
    local i
    for i in $(seq 1 100); do [[ -f "$STAGING/supervisord.pid" ]] && kill -0 "$(cat "$STAGING/supervisord.pid")" 2>/dev/null || break; sleep 0.2; done
  else
    say "supervisord is not running"
  fi
}

manual_rollback() {
  [[ -L "$STAGING/previous" ]] || die "no previous release recorded in $STAGING/previous"
  supervisor_up || die "supervisord is not running: deploy first"
  local prev cur; prev="$(readlink -f "$STAGING/previous")"; cur="$(readlink -f "$STAGING/current")"
  rollback_to "$prev" || die "rollback checks failed"
  ln -sfn "$cur" "$STAGING/previous"
}

case "${1:-}" in
  deploy) shift; deploy "$@" ;;
  status) status ;;
  down) down ;;
  rollback) manual_rollback ;;
  smoke) [[ -L "$STAGING/current" ]] || die "nothing deployed in $STAGING"; smoke "$(readlink -f "$STAGING/current")" ;;
  *) echo "usage: $0 deploy [--ref REF] [--env KEY=VALUE]... | status | down | rollback | smoke" >&2; exit 2 ;;
esac
