#!/usr/bin/env bash
# Installs everything the cockpit needs on a fresh machine, from the project's own files:
# Debian packages (PostgreSQL, Prometheus + Alertmanager; Chromium with --browser), the Python 3.11 virtualenv from
# requirements.lock, and the Kafka broker jars from Maven Central. Idempotent and quick when done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

want_browser=0
[[ "${1:-}" == "--browser" ]] && want_browser=1
# --docs (make docs): Chromium too, plus pandoc and Node.js/npm for the French deliverables (docs/fr/build)
want_docs=0
if [[ "${1:-}" == "--docs" ]]; then want_browser=1; want_docs=1; fi

apt_missing=()
ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_missing+=(postgresql postgresql-contrib)
command -v java >/dev/null || apt_missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || apt_missing+=(maven)
if [[ $want_browser == 1 ]] && [[ ! -x /usr/bin/chromium ]]; then apt_missing+=(chromium fonts-dejavu-core); fi
if [[ $want_docs == 1 ]]; then
  command -v pandoc >/dev/null || apt_missing+=(pandoc)
  command -v npm >/dev/null || apt_missing+=(nodejs npm)
fi
# Monitoring (deploy/local/monitoring.sh): Prometheus + promtool and Alertmanager from Debian.
{ command -v prometheus && command -v promtool; } >/dev/null || apt_missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || apt_missing+=(prometheus-alertmanager)
# the scorer worker's allocator (common/jemalloc.py; COCKPIT_ALLOCATOR=auto falls back to glibc without it)
compgen -G "/usr/lib/*-linux-gnu/libjemalloc.so.2" >/dev/null || apt_missing+=(libjemalloc2)
if ((${#apt_missing[@]})); then
  command -v apt-get >/dev/null || die "missing system packages (${apt_missing[*]}) and no apt-get to install them"
  say "installing Debian packages: ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-o DPkg::Lock::Timeout=600 -qq)
  # Debian's packages would start their own daemons (prometheus on :9090, alertmanager on :9093/:9094,
  # postgresql on :5432): the cockpit runs its own processes, so the install starts none of them
  # (policy-rc.d, unless the machine already has one) and the Debian monitoring services stay disabled.
  policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1; fi
  apt_ok=1
  apt-get "${apt_opts[@]}" update >/dev/null || apt_ok=0
  ((apt_ok)) && { apt-get "${apt_opts[@]}" install -y --no-install-recommends "${apt_missing[@]}" >/dev/null || apt_ok=0; }
  ((own_policy)) && rm -f "$policy"
  ((apt_ok)) || die "apt-get could not install ${apt_missing[*]} (see apt's messages above; Prometheus, promtool and Alertmanager come from Debian's 'prometheus' and 'prometheus-alertmanager' packages)"
  if [[ -d /run/systemd/system ]]; then  # only the services of the packages installed just now
    for pkg in prometheus prometheus-alertmanager; do
      if [[ " ${apt_missing[*]} " == *" $pkg "* ]]; then systemctl disable --now "$pkg" >/dev/null 2>&1 || true; fi
    done
  fi
fi

PY="${COCKPIT_PYTHON:-}"
if [[ -z "$PY" ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$(command -v "$candidate")"; break
    fi
  done
fi
[[ -n "$PY" ]] || die "Python 3.11 is required (looked for python3.11 and python3 on PATH; set COCKPIT_PYTHON)"

stamp="$VENV/.installed-$(cat "$ROOT/requirements.lock" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  [[ -x "$VENV/bin/python" ]] || { say "creating virtualenv $VENV with $PY"; "$PY" -m venv "$VENV"; }
  [[ -x "$VENV/bin/uv" ]] || "$VENV/bin/pip" install -q --disable-pip-version-check uv
  say "installing locked Python dependencies (requirements.lock)"
  "$VENV/bin/uv" pip install -q -p "$VENV/bin/python" -r "$ROOT/requirements.lock"
  "$VENV/bin/uv" pip install -q -p "$VENV/bin/python" --no-deps -e "$ROOT"
  rm -f "$VENV"/.installed-*; touch "$stamp"
fi

# Kafka jars (Maven Central) are fetched by the stack script on first `up`.
say "ready: $("$VENV/bin/python" --version), venv $VENV"
