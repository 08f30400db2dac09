"""The Typer CLI: export writes labelled history; scenarios/show describe the bundled scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from common.contracts import SIGNALS
from simulator.cli import app

pytestmark = pytest.mark.unit

runner = CliRunner()


def test_export_writes_telemetry_and_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "data" / "history.parquet"
    result = runner.invoke(
        app,
        [
            "export",
            "--turbines",
            "3",
            "--days",
            "20",
            "--seed",
            "1",
            "--preset",
            "training",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 3 * 20 * 144
    assert list(frame.columns) == ["event_id", "turbine_id", "site_id", "event_time", *SIGNALS, "status_code"]
    failures = pd.read_parquet(tmp_path / "data" / "history.failures.parquet")
    faults = pd.read_parquet(tmp_path / "data" / "history.sensor_faults.parquet")
    doc = json.loads((tmp_path / "data" / "history.ground_truth.json").read_text())
    assert doc["rows"] == len(frame)
    assert doc["config"]["preset"] == "training"
    assert len(doc["failures"]) == len(failures)
    assert len(doc["sensor_faults"]) == len(faults)
    assert {"turbine_id", "mode", "onset_time", "failure_time", "repair_time"} <= set(failures.columns)
    # byte-identical on a second run
    again = tmp_path / "again.parquet"
    runner.invoke(
        app,
        ["export", "-n", "3", "--days", "20", "--seed", "1", "--preset", "training", "-o", str(again), "-q"],
    )
    assert again.read_bytes() == out.read_bytes()


def test_export_turbine_years_and_scenario_base(tmp_path: Path) -> None:
    out = tmp_path / "h.parquet"
    result = runner.invoke(
        app,
        [
            "export",
            "--scenario",
            "healthy_fleet",
            "--turbines",
            "4",
            "--turbine-years",
            "0.0219",
            "--period",
            "3600",
            "-o",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame["turbine_id"].nunique() == 4
    assert len(frame) == 4 * 48  # 0.0219 turbine-years / 4 turbines = 2 days of hourly readings
    assert frame["event_time"].min() == pd.Timestamp("2024-04-01T00:00:00Z")


def test_export_errors_are_clear(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "--preset", "fast", "-o", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2
    assert "realistic" in result.output
    result = runner.invoke(app, ["export", "--period", "7", "-o", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2
    assert "must divide one day" in result.output
    result = runner.invoke(
        app, ["export", "--days", "1", "--turbine-years", "1", "-o", str(tmp_path / "x.pq")]
    )
    assert result.exit_code == 2


def test_scenarios_and_show() -> None:
    result = runner.invoke(app, ["scenarios"])
    assert result.exit_code == 0
    assert "gearbox_bearing_failure" in result.output
    result = runner.invoke(app, ["show", "two_failures_one_site"])
    assert result.exit_code == 0, result.output
    assert "pitch_hydraulic" in result.output and "main_bearing" in result.output
    result = runner.invoke(app, ["show", "nope"])
    assert result.exit_code == 2
    assert "healthy_fleet" in result.output
