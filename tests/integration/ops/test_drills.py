"""The incident drills of docs/runbooks/ run end to end: each induces its incident, sees the signals,
applies the remediation and checks recovery (deploy/drills/*.py, exit 0 only when every step held).

Each drill runs as an operator runs it (a subprocess), on its own sandbox: own database and topics on
the test services, free ports, a copy of this session's tiny model. Its step report (title, outcome,
seconds) is read back from test-artifacts/drills/<name>.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
DRILLS = ROOT / "deploy" / "drills"
REPORTS = ROOT / "test-artifacts" / "drills"


def run_drill(script: str, args: list[str], timeout: float = 600) -> dict[str, Any]:
    name = script.removesuffix(".py").replace("_", "-")
    report = REPORTS / f"{name}.json"
    report.unlink(missing_ok=True)
    res = subprocess.run(
        [sys.executable, str(DRILLS / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(res.stdout[-12000:])
    assert res.returncode == 0, (
        f"drill {script} failed (exit {res.returncode}):\n{res.stdout[-6000:]}{res.stderr[-3000:]}"
    )
    body: dict[str, Any] = json.loads(report.read_text())
    assert body["ok"] is True and body["steps"] and all(s["ok"] for s in body["steps"]), body
    return body


@pytest.fixture
def service_args(services: Any, ops_registry: Path) -> list[str]:
    return [
        "--kafka",
        services.kafka_bootstrap,
        "--admin-url",
        services.admin_url,
        "--model-from",
        str(ops_registry),
    ]


def test_drill_ci_red_risk_score() -> None:
    body = run_drill("ci_red_risk_score.py", [])
    assert any("test_tier_boundaries" in t for t in body["facts"]["failed_tests"])


def test_drill_sweep_failed(service_args: list[str]) -> None:
    body = run_drill("sweep_failed.py", service_args)
    titles = [s["title"] for s in body["steps"]]
    assert any(t.startswith("(a)") for t in titles) and any(t.startswith("(b)") for t in titles)
    assert any(t.startswith("(c)") for t in titles)


def test_drill_cockpit_unreachable(service_args: list[str]) -> None:
    body = run_drill("cockpit_unreachable.py", service_args)
    assert body["facts"]["api_down_cli_exit"] == 3 and body["facts"]["db_down_list_status"] == 503
