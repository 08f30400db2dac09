"""Supervised training on an operator's own failure log: validation, split, refusal, a tiny real run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import models.train as T
from models.cli import app
from models.features import FEATURE_NAMES
from models.registry import load_production
from models.train import (
    FailureLogError,
    History,
    NotEnoughFailures,
    TrainSettings,
    read_contract_history,
    read_failure_log,
    split_operator_history,
)

from ._synth import synth_fleet

pytestmark = pytest.mark.unit

HEADER = "turbine_id,component,failure_time,repair_time\n"
GOOD = "WT-001,gearbox,2024-01-10T10:00:00+01:00,2024-01-11T09:00:00Z\n"


def _log(tmp_path: Path, text: str, name: str = "failures.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _log_of(failures: pd.DataFrame, path: Path) -> Path:
    """The synthetic failures written as an operator would: one row each, times with offsets."""
    out = pd.DataFrame(
        {
            "turbine_id": failures["turbine_id"],
            "component": failures["mode"],
            "failure_time": failures["failure_time"]
            .dt.tz_convert("Europe/Paris")
            .map(lambda t: t.isoformat()),
            "repair_time": failures["repair_time"].map(lambda t: t.isoformat()),
        }
    )
    out.to_csv(path, index=False)
    return path


def test_valid_log_gives_onset_and_post_repair_washout(tmp_path: Path) -> None:
    p = _log(
        tmp_path, HEADER + GOOD + "\n" + "WT-002,main bearing,2024-02-01T00:00:00Z,2024-02-03T00:00:00Z\n"
    )
    log = read_failure_log(p, {"WT-001", "WT-002"}, horizon_days=30, washout_days=7)
    assert list(log["turbine_id"]) == ["WT-001", "WT-002"]
    first = log.iloc[0]
    assert first["failure_time"] == pd.Timestamp("2024-01-10T09:00:00Z")  # offset converted to UTC
    assert first["logged_repair_time"] == pd.Timestamp("2024-01-11T09:00:00Z")
    assert first["repair_time"] == pd.Timestamp("2024-01-18T09:00:00Z")  # + 7 days of washout
    assert first["onset_time"] == pd.Timestamp("2023-12-11T09:00:00Z")  # never "healthy"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty file"),
        ("turbine,component,failure_time\n" + GOOD, "line 1: missing column(s) turbine_id, repair_time"),
        (HEADER, "no failures listed"),
        (HEADER + "WT-001,gearbox,2024-01-10 10:00,2024-01-11T09:00:00Z\n", "line 2: failure_time"),
        (
            HEADER + "WT-001,gearbox,yesterday,2024-01-11T09:00:00Z\n",
            "line 2: failure_time: 'yesterday' is not",
        ),
        (HEADER + GOOD + "WT-001,gearbox,2024-03-10T10:00:00Z,\n", "line 3: repair_time: empty"),
        (HEADER + "WT-001,gearbox,2024-01-12T00:00:00Z,2024-01-11T00:00:00Z\n", "line 2: repair_time"),
        (
            HEADER + "WT 001,gearbox,2024-01-10T00:00:00Z,2024-01-11T00:00:00Z\n",
            "line 2: turbine_id 'WT 001'",
        ),
        (HEADER + "WT-\x00,gearbox,2024-01-10T00:00:00Z,2024-01-11T00:00:00Z\n", "line 2: turbine_id"),
        (
            HEADER + "WT-009,gearbox,2024-01-10T00:00:00Z,2024-01-11T00:00:00Z\n",
            "line 2: turbine_id 'WT-009' has no",
        ),
        (HEADER + "WT-001,,2024-01-10T00:00:00Z,2024-01-11T00:00:00Z\n", "line 2: component"),
        (HEADER + "WT-001,gearbox\n", "line 2: 2 fields"),
        (HEADER + GOOD + GOOD, "line 3: failure of WT-001 at 2024-01-10T09:00:00+00:00 repeats line 2"),
        (
            HEADER + GOOD + "WT-001,pitch,2024-01-11T00:00:00Z,2024-01-12T00:00:00Z\n",
            "line 3: failure_time of WT-001",
        ),
    ],
)
def test_bad_logs_are_refused_naming_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    p = _log(tmp_path, text)
    with pytest.raises(FailureLogError) as err:
        read_failure_log(p, {"WT-001", "WT-002"})
    assert str(p) in str(err.value)
    assert expected in str(err.value)


def test_binary_huge_and_missing_files_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    with pytest.raises(FailureLogError, match="not UTF-8"):
        read_failure_log(p)
    huge = _log(tmp_path, HEADER + "WT-001," + "x" * 300_000 + ",2024-01-10T00:00:00Z,2024-01-11T00:00:00Z\n")
    with pytest.raises(FailureLogError, match="not a readable CSV"):
        read_failure_log(huge)
    long_component = _log(
        tmp_path, HEADER + "WT-001," + "g" * 500 + ",2024-01-10T00:00:00Z,2024-01-11T00:00:00Z\n"
    )
    with pytest.raises(FailureLogError, match="line 2: component must be 1-100 printable"):
        read_failure_log(long_component)
    with pytest.raises(FailureLogError, match="failure log not found"):
        read_failure_log(tmp_path / "nope.csv")
    with pytest.raises(FailureLogError, match="history file not found"):
        read_contract_history(tmp_path / "nope.parquet")
    bad = tmp_path / "h.csv"
    bad.write_text("turbine_id,event_time\nWT-001,2024-01-01T00:00:00Z\nWT-001,not a time\n")
    with pytest.raises(FailureLogError, match="row 2: event_time 'not a time'"):
        read_contract_history(bad)


def test_too_few_failures_is_refused_with_counts_and_what_is_needed(tmp_path: Path) -> None:
    frame, failures = synth_fleet(n_turbines=4, days=170, failures_per_turbine=1, degradation_days=5)
    hist = History(frame, failures.assign(onset_time=failures["failure_time"]), source="synthetic")
    with pytest.raises(NotEnoughFailures, match=r"spans 30 days; .* needs at least 159 days"):
        short = frame[frame["event_time"] < frame["event_time"].min() + pd.Timedelta(days=30)]
        split_operator_history(History(short, failures), TrainSettings())
    with pytest.raises(NotEnoughFailures) as err:
        split_operator_history(hist, TrainSettings())
    text = str(err.value)
    assert "in the fitting part (needs 10)" in text and "hold-out part (needs 3)" in text
    assert "needs about" in text and "python -m models calibrate" in text
    # Same refusal through the CLI, exit code 2, before any training work.
    hp = tmp_path / "history.parquet"
    frame.to_parquet(hp)
    lp = _log_of(failures, tmp_path / "failures.csv")
    res = CliRunner().invoke(
        app, ["train", "--registry", str(tmp_path / "reg"), "--history", str(hp), "--failure-log", str(lp)]
    )
    assert res.exit_code == 2, res.output
    assert "too few failures to train" in res.output
    assert not (tmp_path / "reg").exists()
    res = CliRunner().invoke(app, ["train", "--history", str(hp)])
    assert res.exit_code == 2 and "--failure-log" in res.output


def test_split_is_by_turbine_and_time() -> None:
    frame, failures = synth_fleet(n_turbines=8, days=60, failures_per_turbine=0)
    hist = History(frame, failures.reindex(columns=["turbine_id", "failure_time", "repair_time"]))
    T_min = T.MIN_FIT_FAILURES
    try:
        T.MIN_FIT_FAILURES, T.MIN_HOLDOUT_FAILURES = 0, 0
        s = split_operator_history(hist, TrainSettings(gap_days=5, time_cut=0.7))
    finally:
        T.MIN_FIT_FAILURES, T.MIN_HOLDOUT_FAILURES = T_min, 3
    assert len(s.holdout_turbines) == 2
    assert set(s.train.frame["turbine_id"]).isdisjoint(s.holdout_turbines)
    assert set(s.holdout.frame["turbine_id"]) == set(s.holdout_turbines)
    assert s.train.frame["event_time"].max() < s.cut - pd.Timedelta(days=5)
    assert s.holdout.frame["event_time"].min() >= s.cut


def test_tiny_operator_training_registers_a_version_with_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real (tiny) run: features through FeatureWindow, hold-out on the operator's own turbines."""
    from models.pipeline import train_from_failure_log

    frame, failures = synth_fleet(n_turbines=8, days=90, seed=3, failures_per_turbine=5, degradation_days=8)
    hp = tmp_path / "history.parquet"
    frame.drop(columns=["event_id"]).to_parquet(hp)
    lp = _log_of(failures, tmp_path / "failures.csv")
    monkeypatch.setattr(T, "MIN_FIT_FAILURES", 4)
    monkeypatch.setattr(T, "MIN_HOLDOUT_FAILURES", 1)
    settings = TrainSettings(
        sample_every_hours=6, max_iter=10, min_samples_leaf=10, threads=1, gap_days=5, preset="operator"
    )
    res = train_from_failure_log(tmp_path / "reg", settings, hp, lp, promote_if="first")
    assert res.promoted
    bundle = load_production(tmp_path / "reg")
    meta = bundle.metadata
    fl = meta["training"]["failure_log"]
    assert fl["failures"] == len(failures) and fl["components"] == ["gearbox_bearing"]
    assert fl["failures_fit"] >= 4 and fl["failures_holdout"] >= 1
    assert fl["post_repair_excluded_days"] == pytest.approx(7.0)
    assert set(fl["holdout_turbines"]).isdisjoint(meta["training"]["calibration_turbines"])
    assert meta["metrics"]["holdout"]["turbines"] == len(fl["holdout_turbines"])
    assert meta["metrics"]["holdout"]["positives"] > 0
    assert meta["feature_names"] == list(FEATURE_NAMES)
    text = res.model_card.read_text()
    assert "failure log" in text and "| PR-AUC" in text and "## Operator data" in text
