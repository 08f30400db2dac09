"""Fleet scoring: routing by fitted sensors, data quality over fitted signals only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.contracts import SIGNALS
from models.calibration import Calibration, fit_calibration
from models.features import FeatureWindow
from models.fleet_scoring import FleetScorer
from models.operational import OperationalScorer
from models.policy import load_policy
from models.registry import load_version
from models.scoring import BatchScorer, FeatureRow
from models.sensor_sets import FULL, OPERATIONAL, SENSOR_SETS
from tests.unit.models.test_calibration import make_rows
from tests.unit.models.test_operational import derate, window_of

pytestmark = pytest.mark.unit

OPS = frozenset(
    {
        "wind_speed_ms",
        "wind_direction_deg",
        "ambient_temp_c",
        "power_kw",
        "rotor_rpm",
        "pitch_angle_deg",
        "nacelle_direction_deg",
    }
)


@dataclass
class Spec:
    fitted_sensors: frozenset[str] | None
    rated_power_kw: float | None = None


class Register:
    """Duck-typed stand-in for ``common.fleet.FleetRegister`` (only ``get`` is used)."""

    def __init__(self, specs: dict[str, Spec]) -> None:
        self.turbines = specs

    def get(self, turbine_id: str) -> Spec | None:
        return self.turbines.get(turbine_id)


@pytest.fixture(scope="module")
def calibration() -> Calibration:
    full = make_rows("FULL-1", days=40, seed=2)
    for sig in SENSOR_SETS[FULL] - set(full.columns):
        full[sig] = 40.0 + np.random.default_rng(3).normal(0, 1, len(full))
    frame = pd.concat([make_rows("T-1", days=40, seed=1, yaw_offset=3.0), full], ignore_index=True)
    cal = fit_calibration(frame, version="c-fleet")
    assert cal.turbines["FULL-1"].sensor_set == FULL
    return cal


@pytest.fixture
def full(registry: Path) -> BatchScorer:
    return BatchScorer(load_version(registry, "v1"), load_policy())


def _register() -> Register:
    return Register(
        {
            "T-1": Spec(OPS),
            "FULL-1": Spec(None),  # not declared = every sensor
            "BARE-1": Spec(frozenset({"power_kw", "wind_speed_ms"})),
        }
    )


def test_routing_and_annotations(full: BatchScorer, calibration: Calibration) -> None:
    fs = FleetScorer(full, OperationalScorer(load_policy(), calibration), _register())
    items = [
        ("BARE-1", window_of("T-1", 5)),
        ("T-1", window_of("T-1", 6)),
        ("FULL-1", window_of("FULL-1", 7, yaw_offset=0.0)),
        ("UNREGISTERED-1", window_of("T-1", 8)),
    ]
    out = fs.score(items)
    assert [a.turbine_id for a in out] == [t for t, _ in items]  # order kept
    bare, op, fullw, unreg = out
    assert bare.tier == "unknown" and bare.data_quality["sensor_set"] is None
    assert bare.reasons[0]["indicator"] == "no_sensor_set"
    assert (
        "ambient_temp_c" in bare.reasons[0]["text"]
        and "pitch_angle_deg or rotor_rpm" in bare.reasons[0]["text"]
    )
    assert op.data_quality["sensor_set"] == OPERATIONAL and op.tier == "low"
    assert op.data_quality["signals_used"] == [s for s in SIGNALS if s in OPS]
    assert op.data_quality["calibration_version"] == "c-fleet"
    assert op.probability is None and op.model_version == "operational/c-fleet"
    for a in (fullw, unreg):
        assert a.data_quality["sensor_set"] == FULL
        assert a.model_version == "v1" and a.probability is not None
    assert fullw.data_quality["calibration_version"] == "c-fleet"  # calibrated: its own power curve
    assert unreg.data_quality["calibration_version"] is None


def test_data_quality_counts_only_fitted_signals(full: BatchScorer, calibration: Calibration) -> None:
    """The operational export has no temperatures: they are not "missing" and not "silent"."""
    win = window_of("T-1", 9)
    unrouted = win.data_quality()
    assert unrouted["missing_share_24h"] > 0.5 and unrouted["silent_key_signals_24h"]  # as before
    fs = FleetScorer(full, OperationalScorer(load_policy(), calibration), _register())
    (a,) = fs.score([("T-1", win)])
    assert a.data_quality["missing_share_24h"] == 0.0
    assert a.data_quality["silent_key_signals_24h"] == []
    assert not any(r["indicator"].startswith(("missing_values", "silent_sensor")) for r in a.reasons)
    # a fitted sensor that sends nothing IS missing
    rows = make_rows("T-1", days=2, seed=3)
    rows["pitch_angle_deg"] = np.nan
    rows["power_kw"] = np.nan
    rows["rotor_rpm"] = np.nan
    rows["ambient_temp_c"] = np.nan
    w2 = FeatureWindow("T-1")
    for rec in rows.to_dict("records"):
        w2.update(rec)
    dq = w2.data_quality(fitted=OPS)
    assert dq["missing_share_24h"] == pytest.approx(4 / 7, abs=1e-3)
    (b,) = fs.score([("T-1", w2)])
    assert b.tier == "unknown" and b.reasons[0]["indicator"] == "missing_values"


def test_full_model_with_calibration_uses_the_turbines_own_curve(
    full: BatchScorer, calibration: Calibration
) -> None:
    win = window_of("FULL-1", 21, fault=derate, yaw_offset=0.0)
    register = _register()
    (plain,) = FleetScorer(full, None, register).score([("FULL-1", win)])
    (own,) = FleetScorer(full, OperationalScorer(load_policy(), calibration), register).score(
        [("FULL-1", win)]
    )
    assert not any(r["indicator"] == "power_curve_resid_24h" for r in own.reasons)
    power = [r for r in own.reasons if r["indicator"] == "power_curve_deviation"]
    assert power and "below its own power curve" in power[0]["text"]
    assert own.reasons[-1]["indicator"] == "failure_probability_7d"  # the model's reason stays last
    assert own.score == plain.score and own.tier == plain.tier  # the reason changes, not the model


def test_missing_scorers_are_named(calibration: Calibration) -> None:
    win = window_of("T-1", 10)
    fs = FleetScorer(None, None, _register())
    a, b = fs.score([("FULL-1", win), ("T-1", win)])
    assert a.tier == "unknown" and "ensure-default" in a.reasons[0]["text"]
    assert b.tier == "unknown" and "python -m models calibrate" in b.reasons[0]["text"]
    assert b.data_quality["sensor_set"] == OPERATIONAL


def test_stream_and_sweep_time(full: BatchScorer, calibration: Calibration) -> None:
    """now=None judges each window as of its newest event; a sweep's later as-of makes it stale."""
    win = window_of("T-1", 11)
    fs = FleetScorer(full, OperationalScorer(load_policy(), calibration), _register())
    (a,) = fs.score([("T-1", win)])
    assert a.data_quality["seconds_since_last_event"] == 0.0 and a.tier != "unknown"
    assert win.as_of is not None
    (b,) = fs.score([("T-1", win)], now=win.as_of + timedelta(hours=5))
    assert b.tier == "unknown" and b.reasons[0]["indicator"] == "stale_data"


def test_feature_rows_go_to_the_full_model(full: BatchScorer) -> None:
    win = window_of("FULL-1", 12, yaw_offset=0.0)
    row = FeatureRow(win.features(full.bundle.normal_model), win.as_of, win.data_quality(now=win.as_of))
    fs = FleetScorer(full, None, None)
    (a,) = fs.score([("FULL-1", row)])
    (b,) = full.score([("FULL-1", row)], now=win.as_of)
    assert a.score == b.score and a.data_quality["sensor_set"] == FULL


def test_undeclared_sensors_fall_back_to_what_the_calibration_saw(
    full: BatchScorer, calibration: Calibration
) -> None:
    """No register (or fitted sensors not declared): the calibration's signals decide the route."""
    fs = FleetScorer(full, OperationalScorer(load_policy(), calibration), None)
    assert fs.sensor_set("T-1") == OPERATIONAL  # its history had operational signals only
    assert fs.sensor_set("FULL-1") == FULL
    assert fs.sensor_set("NEW-1") == FULL  # neither registered nor calibrated
    (a,) = fs.score([("T-1", window_of("T-1", 13))])
    assert a.data_quality["sensor_set"] == OPERATIONAL and a.tier == "low"
