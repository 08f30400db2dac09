"""The event-level backtest as a user runs it: ``python -m models backtest`` on a small simulated hold-out
with a tiny model trained the way the scorer's integration tests train it (no Kafka, no database needed).

Duration: the session's shared tiny model (tests/integration/conftest.py; trained once for every
integration package) plus ~40-60 s for the replay of 6 turbines x 120 days in 6-hour batches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.registry import ROOT, ensure_compatible


@pytest.fixture(scope="module")
def registry(integration_registry_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared registry: the backtest writes into the version directory."""
    copy = tmp_path_factory.mktemp("backtest") / "registry"
    shutil.copytree(ensure_compatible(integration_registry_dir), copy, symlinks=True)
    return copy


def test_backtest_cli_writes_report_plot_and_card(registry: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "models",
        "backtest",
        "--registry",
        str(registry),
        "--fleet-seed",
        "4242",
        "--turbines",
        "6",
        "--days",
        "120",
        "--batch-minutes",
        "360",
        "--out",
        str(tmp_path / "copy.json"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
    # the table and the goals are printed
    assert "Event-level backtest" in proc.stdout and "oracle" in proc.stdout and "rules" in proc.stdout
    assert "goal: false critical episodes per turbine-year" in proc.stdout

    version = (registry / "PRODUCTION").read_text().strip()
    vdir = registry / version
    report = json.loads((vdir / "backtest.json").read_text())
    assert report == json.loads((tmp_path / "copy.json").read_text())
    # structure
    assert report["model_version"] == version
    assert set(report["sources"]) == {"model", "rules", "oracle"}
    for src in report["sources"].values():
        assert set(src["tiers"]) == {"high", "critical"}
        for t in src["tiers"].values():
            assert t["detected"] + t["missed"] == report["failures"]
            assert t["false_episodes"] <= t["episodes"]
    assert report["replay"]["accepted"] == report["replay"]["events"] == 6 * 120 * 144
    assert report["turbines"] == 6 and 1.5 < report["turbine_years"] < 2.0
    assert len(report["failures_detail"]) == report["failures"] >= 1
    assert {g["goal"] for g in report["goals"]} >= {
        "median first high warning before failure (days)",
        "median first critical warning before failure (days)",
        "false critical episodes per turbine-year",
        "better than the rules on every figure",
    }
    # sane values: the model flags at least one failure; the oracle (true health) never raises a false
    # alarm and warns at least as early as the model on the median
    model, oracle = report["sources"]["model"]["tiers"], report["sources"]["oracle"]["tiers"]
    assert model["high"]["detected"] >= 1
    assert oracle["high"]["detected"] == report["failures"]
    assert oracle["high"]["false_episodes"] == oracle["critical"]["false_episodes"] == 0
    for tier in ("high", "critical"):
        if model[tier]["median_lead_days"] is not None:
            assert oracle[tier]["median_lead_days"] >= model[tier]["median_lead_days"]
    assert 0.0 < report["sources"]["model"]["pr_auc"] <= report["sources"]["oracle"]["pr_auc"]
    # plot and model card
    assert (vdir / "backtest_lead_times.png").stat().st_size > 1000
    card = (vdir / "model_card.md").read_text()
    assert "## Event-level backtest" in card and "### Goals" in card
    assert "| oracle | high |" in card
    meta = json.loads((vdir / "metadata.json").read_text())
    assert meta["backtest"]["sources"] == report["sources"]
