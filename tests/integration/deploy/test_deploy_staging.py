"""`make deploy-staging` for real: a release of HEAD under supervisord, smoke-tested, restarted, rolled back.

One staging deployment per module (own directory, free ports, own database and topics on the test
services): the first deploy must pass its smoke test (timings recorded), supervisord must restart a
scorer killed with SIGKILL, and a release whose API reads another database (ready, but the smoke turbine
never shows) must fail its smoke test and be rolled back to the first release, which serves again.
The CI job's script (deploy/staging/k8s-deploy.sh) runs on a stub kubectl: Jobs, rollout, smoke test in
order, rollback when the rollout or the smoke test fails, nothing deployed when the migrations fail.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.harness import free_ports
from tests.integration.registry import CHECK_SNIPPET

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "staging" / "deploy.sh"
SUPERVISORCTL = ROOT / ".venv" / "bin" / "supervisorctl"


def model_source(shared: Path) -> Path:
    """A registry whose production model loads with this code: COCKPIT_TEST_REGISTRY, ./registry, or the
    session's shared tiny registry (trained once for all integration tests)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for candidate in (os.environ.get("COCKPIT_TEST_REGISTRY"), str(ROOT / "registry")):
        if candidate and (Path(candidate) / "PRODUCTION").is_file():
            cmd = [sys.executable, "-c", CHECK_SNIPPET, candidate]
            if subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True).returncode == 0:
                return Path(candidate)
    from tests.integration.registry import ensure_compatible  # trains a tiny model (~30-50 s) once

    return ensure_compatible(shared)


@dataclass
class Staging:
    dir: Path
    env: dict[str, str]
    api: str
    scorer: str

    def run(self, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(DEPLOY), *args],
            cwd=ROOT,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ctl(self, *args: str) -> str:
        res = subprocess.run(
            [str(SUPERVISORCTL), "-c", str(self.dir / "supervisord.conf"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return res.stdout

    def current(self) -> str:
        return os.readlink(self.dir / "current").rsplit("/", 1)[-1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last={last!r})")


def scorer_ready(staging: Staging) -> bool:
    try:
        body = httpx.get(f"{staging.scorer}/readyz", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return False
    return body.get("ready") is True and bool(body.get("partitions"))


@pytest.fixture(scope="module")
def staging(
    services: Any,
    tmp_path_factory: pytest.TempPathFactory,
    fresh_database: Callable[[str], str],
    integration_registry_dir: Path,
) -> Iterator[Staging]:
    base = tmp_path_factory.mktemp("staging")
    api_port, scorer_port = free_ports(2)
    tag = uuid.uuid4().hex[:6]
    db_name = f"cockpit_test_staging_{tag}"
    prefix = f"test-staging-{tag}."
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COCKPIT_", "STAGING_"))}
    env.update(
        STAGING_DIR=str(base / "st"),
        STAGING_API_PORT=str(api_port),
        STAGING_SCORER_PORT=str(scorer_port),
        STAGING_KAFKA=services.kafka_bootstrap,
        STAGING_ADMIN_DATABASE_URL=services.admin_url,
        STAGING_DB_NAME=db_name,
        STAGING_TOPIC_PREFIX=prefix,
        STAGING_MODEL_FROM=str(model_source(integration_registry_dir)),
        STAGING_READY_TIMEOUT="120",
        STAGING_SMOKE_TIMEOUT="60",
        OMP_NUM_THREADS="1",
    )
    st = Staging(base / "st", env, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{scorer_port}")
    try:
        yield st
    finally:
        down = st.run("down", timeout=120)
        print(down.stdout, down.stderr)
        import psycopg
        from kafka import KafkaAdminClient

        with psycopg.connect(services.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
        try:
            names = [t for t in admin.list_topics() if t.startswith(prefix)]
            if names:
                admin.delete_topics(names)
        finally:
            admin.close()


@pytest.fixture(scope="module")
def first_release(staging: Staging) -> str:
    res = staging.run("deploy")
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"first deploy failed:\n{out[-6000:]}"
    return staging.current()


def test_deploy_starts_supervised_processes_and_records_smoke_timings(
    staging: Staging, first_release: str
) -> None:
    status = staging.ctl("status")
    for program in ("scorer", "api"):
        assert re.search(rf"^{program}\s+RUNNING", status, re.M), status
    smoke = json.loads((staging.dir / "releases" / first_release / "smoke.json").read_text())
    assert smoke["ok"] is True and smoke["score_s"] is not None and smoke["publish_s"] is not None
    print(f"smoke: publish {smoke['publish_s']} s, score visible {smoke['score_s']} s after publishing")
    turbine = httpx.get(f"{staging.api}/v1/turbines/SMOKE-WT-001", timeout=10).json()
    as_of = datetime.fromisoformat(turbine["assessment"]["as_of"])
    assert as_of >= datetime.fromisoformat(smoke["event_time"])
    shown = staging.run("status", timeout=60).stdout
    assert first_release in shown and "score visible" in shown, shown


def test_supervisor_restarts_a_killed_scorer(staging: Staging, first_release: str) -> None:
    pid = int(staging.ctl("pid", "scorer").strip())
    os.kill(pid, signal.SIGKILL)

    def restarted() -> bool:
        new = staging.ctl("pid", "scorer").strip()
        return new.isdigit() and int(new) not in (0, pid) and "RUNNING" in staging.ctl("status", "scorer")

    wait_for(restarted, 60, "supervisord to restart the scorer")
    wait_for(lambda: scorer_ready(staging), 90, "the restarted scorer to be ready with partitions")
    log = (staging.dir / "logs" / "supervisord.log").read_text()
    assert "exited: scorer (terminated by SIGKILL; not expected)" in log, log[-2000:]


def test_release_failing_its_smoke_test_is_rolled_back(
    staging: Staging, first_release: str, fresh_database: Callable[[str], str]
) -> None:
    # The broken release's API reads another (migrated, empty) database: it is ready, but the turbine
    # the smoke test feeds is never visible through it.
    other = fresh_database("staging_other")
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(other)
    wrong = f"postgresql://cockpit_reader:cockpit_reader@{p['host']}:{p['port']}/{p['dbname']}"
    res = staging.run("deploy", "--env", f"COCKPIT_READER_DATABASE_URL={wrong}", STAGING_SMOKE_TIMEOUT="15")
    out = res.stdout + res.stderr
    assert res.returncode == 1, out[-6000:]
    assert "smoke FAILED at step score" in out, out[-6000:]
    assert f"rolled back to {first_release} (serving, smoke test passed)" in out, out[-6000:]
    assert staging.current() == first_release
    broken = [d for d in (staging.dir / "releases").iterdir() if (d / "FAILED").exists()]
    assert len(broken) == 1 and "smoke test" in (broken[0] / "FAILED").read_text()
    health = httpx.get(f"{staging.api}/v1/turbines/SMOKE-WT-001", timeout=10)
    assert health.status_code == 200 and health.json()["assessment"] is not None


# ---------------------------------------------------------------------- the CI's CD script, on a stub kubectl
K8S_DEPLOY = ROOT / "deploy" / "staging" / "k8s-deploy.sh"
STUB_KUBECTL = r"""#!/usr/bin/env bash
# Records each call; answers like a cluster where the previous image runs. FAIL=<word> fails that step.
echo "$*" >> "$KUBECTL_LOG"
case "$*" in
  *"apply -k"*) d="${@: -1}"; cp "$d/kustomization.yaml" "$KUBECTL_LOG.$(basename "$d").yaml" ;;
  *"get job cockpit-migrate"*) [[ "$FAIL" == migrate ]] && echo -n Failed || echo -n Complete ;;
  *"get job cockpit-models"*) echo -n Complete ;;
  *"jsonpath={.spec.template"*) echo -n "registry.example/cockpit:previous" ;;
  *"rollout status deployment/cockpit-api"*) [[ "$FAIL" == rollout ]] && exit 1 ;;
  *"api smoke"*) [[ "$FAIL" == smoke ]] && exit 1 ;;
esac
exit 0
"""


def run_k8s_deploy(tmp_path: Path, fail: str = "") -> tuple[int, list[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "kubectl"
    stub.write_text(STUB_KUBECTL)
    stub.chmod(0o755)
    log = tmp_path / f"kubectl-{fail or 'ok'}.log"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "IMAGE": "registry.example/cockpit",
        "TAG": "1.2.3",
        "KUBECTL_LOG": str(log),
        "FAIL": fail,
    }
    res = subprocess.run(["bash", str(K8S_DEPLOY)], env=env, capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return res.returncode, calls, res.stdout + res.stderr


def test_cd_script_runs_jobs_then_rollout_then_smoke(tmp_path: Path) -> None:
    code, calls, out = run_k8s_deploy(tmp_path)
    assert code == 0, out
    applies = [i for i, c in enumerate(calls) if c.startswith("apply -k")]
    smoke = next(i for i, c in enumerate(calls) if "python -m api smoke" in c)
    rollouts = [i for i, c in enumerate(calls) if "rollout status" in c]
    jobs = [i for i, c in enumerate(calls) if "get job" in c]
    assert len(applies) == 2 and max(jobs) < applies[1] < min(rollouts) < smoke, calls
    assert "COCKPIT_API_URL=http://cockpit-api.cockpit.svc" in calls[smoke]
    jobs_kustomization = (tmp_path / "kubectl-ok.log.jobs.yaml").read_text()
    assert "scorer.yaml" not in jobs_kustomization and "api.yaml" not in jobs_kustomization
    full = (tmp_path / "kubectl-ok.log.all.yaml").read_text()
    assert "newName: registry.example/cockpit" in full and 'newTag: "1.2.3"' in full
    assert not any("rollout undo" in c for c in calls)


@pytest.mark.parametrize("fail", ["rollout", "smoke"])
def test_cd_script_rolls_back_when_the_rollout_or_the_smoke_test_fails(tmp_path: Path, fail: str) -> None:
    code, calls, out = run_k8s_deploy(tmp_path, fail)
    assert code == 1, out
    undone = [c for c in calls if "rollout undo" in c]
    assert len(undone) == 2, calls
    assert "rolled back to registry.example/cockpit:previous" in out


def test_cd_script_stops_before_the_deployments_when_migrations_fail(tmp_path: Path) -> None:
    code, calls, out = run_k8s_deploy(tmp_path, "migrate")
    assert code == 1 and "migrations; deployments untouched" in out, out
    assert len([c for c in calls if c.startswith("apply -k")]) == 1
    assert not any("rollout" in c for c in calls)
