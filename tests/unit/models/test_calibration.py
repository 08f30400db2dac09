"""Calibration: a known power curve is recovered, short history is refused, hostile frames are handled."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.contracts import STATUS_CURTAILED, STATUS_OK
from models.calibration import (
    MIN_DAYS,
    POWER,
    YAW,
    Calibration,
    CalibrationError,
    fit_calibration,
    hourly_arrays,
)
from models.calibration_registry import (
    CalibrationRegistryError,
    list_calibrations,
    load_calibration,
    load_production_calibration,
    save_calibration,
)
from models.features import FeatureWindow
from models.sensor_sets import FULL, OPERATIONAL

pytestmark = pytest.mark.unit

START = datetime(2024, 3, 1, tzinfo=UTC)
RATED = 2000.0
OPERATIONAL_COLUMNS = (
    "wind_speed_ms",
    "wind_direction_deg",
    "ambient_temp_c",
    "power_kw",
    "rotor_rpm",
    "pitch_angle_deg",
    "nacelle_direction_deg",
)


def true_power(v: np.ndarray, rated: float = RATED) -> np.ndarray:
    """Cubic between cut-in 3 m/s and rated 12 m/s, flat to cut-out 25 m/s, idle -10 kW otherwise."""
    v = np.asarray(v, dtype=float)
    p = rated * (v**3 - 27.0) / (12.0**3 - 27.0)
    p = np.where(v < 3.0, -10.0, np.where(v >= 12.0, rated, p))
    return np.where(v >= 25.0, -10.0, p)


def true_pitch(v: np.ndarray) -> np.ndarray:
    return np.where(v < 3.0, 60.0, np.where(v < 12.0, 0.5, 0.5 + 2.6 * np.maximum(v - 12.0, 0) ** 0.8))


def make_rows(
    turbine_id: str = "T-1",
    days: float = 40.0,
    seed: int = 0,
    start: datetime = START,
    yaw_offset: float = 0.0,
    temperatures: bool = False,
) -> pd.DataFrame:
    """10-minute contract rows of one healthy turbine with a known power curve."""
    rng = np.random.default_rng(seed)
    n = int(days * 144)
    t = pd.date_range(start, periods=n, freq="600s", tz="UTC")
    # AR(1) wind around 8 m/s (hours of calm and of strong wind), 10-minute turbulence on top
    w = np.empty(n)
    w[0] = 8.0
    eps = rng.normal(0, 0.35, n)
    for i in range(1, n):
        w[i] = 8.0 + 0.985 * (w[i - 1] - 8.0) + eps[i]
    wind = np.clip(w + rng.normal(0, 0.3, n), 0.0, 30.0)
    power = true_power(wind) * (1 + rng.normal(0, 0.015, n))
    hours = np.arange(n) / 6.0
    amb = 10 + 6 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.3, n)
    wdir = (200 + np.cumsum(rng.normal(0, 2.0, n))) % 360
    frame = pd.DataFrame(
        {
            "turbine_id": turbine_id,
            "event_time": t,
            "wind_speed_ms": wind,
            "wind_direction_deg": wdir,
            "ambient_temp_c": amb,
            "power_kw": power,
            "rotor_rpm": np.clip(wind * 1.4, 9.0, 16.8) + rng.normal(0, 0.1, n),
            "pitch_angle_deg": true_pitch(wind) + rng.normal(0, 0.2, n),
            "nacelle_direction_deg": (wdir + yaw_offset + rng.normal(0, 3.0, n)) % 360,
            "status_code": STATUS_OK,
        }
    )
    if temperatures:
        frame["gearbox_oil_temp_c"] = amb + 20 + 15 * np.maximum(power, 0) / 1000 + rng.normal(0, 0.5, n)
    return frame


@pytest.fixture(scope="module")
def healthy() -> pd.DataFrame:
    return pd.concat(
        [make_rows("T-1", seed=1, yaw_offset=4.0, temperatures=True), make_rows("T-2", seed=2)],
        ignore_index=True,
    )


def test_known_power_curve_is_recovered(healthy: pd.DataFrame) -> None:
    cal = fit_calibration(healthy)
    assert sorted(cal.turbines) == ["T-1", "T-2"] and not cal.refused
    tc = cal.turbines["T-1"]
    centers = np.asarray(tc.bin_centers)
    med = np.array([np.nan if v is None else v for v in tc.power_median])
    for v in (5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0):
        i = int(np.flatnonzero(centers == v)[0])
        assert med[i] == pytest.approx(float(true_power(np.array(v))), rel=0.03), v
    assert tc.cut_in_ms == pytest.approx(3.0, abs=0.6)
    assert tc.rated_wind_ms == pytest.approx(12.0, abs=0.6)
    assert tc.rated_power_kw == pytest.approx(RATED, rel=0.03)
    assert tc.rated_power_source == "data"
    # expected pitch at partial load ~0.5°, the yaw offset is the turbine's own
    assert float(tc.expected_pitch(np.array([8.0]))[0]) == pytest.approx(0.5, abs=0.2)
    yaw = tc.deviations[YAW]
    assert yaw.normal(48) is not None
    assert yaw.normal(48)[0] == pytest.approx(4.0, abs=1.0)  # type: ignore[index]
    # the spread is the turbine's own and small for a steady synthetic turbine
    center, spread = tc.deviations[POWER].normal(48)  # type: ignore[misc]
    assert abs(center) < 0.05 and 0 < spread < 0.05
    assert "power_high" in tc.deviations  # the hours expected near rated, where a derating shows
    assert "gearbox_oil_temp_c" in tc.temperature_models
    model = tc.temperature_models["gearbox_oil_temp_c"]
    assert float(model.expected(np.array([1000.0]), np.array([10.0]))[0]) == pytest.approx(45.0, abs=1.0)
    assert tc.sensor_set == OPERATIONAL  # no component temperatures besides the oil -> operational
    assert tc.signals == [
        "wind_speed_ms",
        "wind_direction_deg",
        "ambient_temp_c",
        "power_kw",
        "rotor_rpm",
        "pitch_angle_deg",
        "nacelle_direction_deg",
        "gearbox_oil_temp_c",
    ]
    assert set(tc.normal_ranges) == set(tc.signals)


def test_too_little_history_is_refused_with_a_clear_message() -> None:
    short = make_rows("SHORT-1", days=10)
    with pytest.raises(CalibrationError) as exc:
        fit_calibration(short)
    msg = str(exc.value)
    assert "SHORT-1" in msg and "10.0 days" in msg and f"at least {MIN_DAYS:.0f} days" in msg


def test_one_short_turbine_is_refused_the_others_fitted(healthy: pd.DataFrame) -> None:
    frame = pd.concat([healthy[healthy.turbine_id == "T-2"], make_rows("SHORT-1", days=10)])
    cal = fit_calibration(frame)
    assert list(cal.turbines) == ["T-2"]
    assert "SHORT-1" in cal.refused and "days" in cal.refused["SHORT-1"]


def test_calm_history_is_refused_naming_the_bins() -> None:
    calm = make_rows("CALM-1", days=40)
    calm["wind_speed_ms"] = np.minimum(calm["wind_speed_ms"], 7.0)
    calm["power_kw"] = true_power(calm["wind_speed_ms"].to_numpy())

    class Spec:
        fitted_sensors = None
        rated_power_kw = RATED

    class Register:
        def get(self, tid: str) -> Spec:
            return Spec()

    with pytest.raises(CalibrationError, match=r"CALM-1: never reached 95 % of its rated power \(2000 kW"):
        fit_calibration(calm, Register())  # type: ignore[arg-type]
    # without a rated power the calm turbine's plateau is taken as rated, with a warning
    tc = fit_calibration(calm).turbines["CALM-1"]
    assert any("rated power not in the register" in w for w in tc.warnings)


def test_missing_columns_and_wrong_input_are_named() -> None:
    with pytest.raises(CalibrationError, match="event_time"):
        fit_calibration(pd.DataFrame({"turbine_id": ["a"], "power_kw": [1.0]}))
    with pytest.raises(CalibrationError, match="power_kw"):
        fit_calibration(pd.DataFrame({"turbine_id": ["a"], "event_time": [START], "wind_speed_ms": [1.0]}))
    with pytest.raises(CalibrationError, match="table"):
        fit_calibration([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(CalibrationError, match="no usable rows"):
        fit_calibration(
            pd.DataFrame({"turbine_id": [None], "event_time": ["x"], "wind_speed_ms": [1.0], "power_kw": [1]})
        )


def test_hostile_frame(healthy: pd.DataFrame) -> None:
    base = healthy[healthy.turbine_id == "T-2"].copy()
    rng = np.random.default_rng(5)
    n = len(base)
    idx = rng.choice(n, 400, replace=False)
    base = base.reset_index(drop=True)
    base.loc[idx[:100], "power_kw"] = np.nan
    base.loc[idx[100:150], "wind_speed_ms"] = np.inf
    base.loc[idx[150:200], "ambient_temp_c"] = -273.2  # a sentinel
    base.loc[idx[200:250], "pitch_angle_deg"] = -np.inf
    base.loc[idx[250:300], "power_kw"] = -50.0  # stopped, self-consumption
    base.loc[idx[300:350], "status_code"] = STATUS_CURTAILED
    base["power_kw"] = base["power_kw"].astype(object)
    base.loc[idx[350:360], "power_kw"] = "n/a"  # text in a numeric column
    dup = base.iloc[:500].copy()
    dup["power_kw"] = 0.0  # duplicated timestamps with other values: the first row is kept
    bad_ids = base.iloc[:5].copy()
    bad_ids["turbine_id"] = ["", None, "bad id", "x\x00", 7]
    no_pitch = make_rows("NOPITCH-1", seed=9).drop(columns=["pitch_angle_deg"])
    garbage_time = base.iloc[:3].copy()
    garbage_time["event_time"] = ["yesterday", None, "2024-13-45"]
    frame = pd.concat([base, dup, bad_ids, no_pitch, garbage_time], ignore_index=True)
    frame["event_time"] = frame["event_time"].astype(object)
    cal = fit_calibration(frame)
    assert sorted(cal.turbines) == ["NOPITCH-1", "T-2"]
    text = " | ".join(cal.warnings)
    assert "500 duplicated (turbine_id, event_time) rows" in text
    assert "5 invalid turbine_id" in text
    assert "3 unreadable event_time" in text
    assert "invalid ambient_temp_c values" in text and "invalid wind_speed_ms values" in text
    tc = cal.turbines["T-2"]
    med = np.array([np.nan if v is None else v for v in tc.power_median])
    i8 = tc.bin_centers.index(8.0)
    assert med[i8] == pytest.approx(float(true_power(np.array(8.0))), rel=0.03)  # duplicates did not win
    nop = cal.turbines["NOPITCH-1"]
    assert "pitch_angle_deg" not in nop.signals and nop.pitch_median is None
    assert nop.sensor_set == OPERATIONAL  # rotor speed is enough
    assert "pitch" not in nop.deviations and "rotor_speed" in nop.deviations


def test_register_fitted_sensors_and_rated_power(healthy: pd.DataFrame) -> None:
    class Spec:
        def __init__(self, fitted: frozenset[str] | None, rated: float | None) -> None:
            self.fitted_sensors = fitted
            self.rated_power_kw = rated

    class Register:
        turbines = {"T-1": None, "T-2": None, "GONE-1": None}

        def get(self, tid: str) -> Spec | None:
            if tid == "T-1":
                return Spec(frozenset({"wind_speed_ms", "power_kw", "ambient_temp_c", "rotor_rpm"}), 2050.0)
            return None

    cal = fit_calibration(healthy, Register())  # type: ignore[arg-type]
    tc = cal.turbines["T-1"]
    assert tc.rated_power_kw == 2050.0 and tc.rated_power_source == "register"
    assert tc.signals == ["wind_speed_ms", "ambient_temp_c", "power_kw", "rotor_rpm"]
    assert YAW not in tc.deviations and tc.pitch_median is None
    assert cal.turbines["T-2"].sensor_set == OPERATIONAL
    assert any("GONE-1" in w for w in cal.warnings)


def test_full_set_turbine() -> None:
    frame = make_rows("F-1", days=35, seed=3)
    for sig in (
        "gearbox_oil_temp_c",
        "gearbox_bearing_temp_c",
        "generator_winding_temp_c",
        "generator_bearing_temp_c",
        "main_bearing_temp_c",
        "converter_temp_c",
        "vibration_mm_s",
        "pitch_hydraulic_pressure_bar",
    ):
        frame[sig] = 40.0 + np.random.default_rng(1).normal(0, 1, len(frame))
    cal = fit_calibration(frame)
    assert cal.turbines["F-1"].sensor_set == FULL
    assert any("only 35 days" in w for w in cal.turbines["F-1"].warnings)


def test_hourly_aggregation_matches_the_window(healthy: pd.DataFrame) -> None:
    """Calibration and scoring read the same hourly means (one definition)."""
    rows = healthy[healthy.turbine_id == "T-1"].iloc[: 6 * 24 * 5]
    win = FeatureWindow("T-1")
    for rec in rows.to_dict("records"):
        win.update(rec)
    hm = win.hourly()
    _, h = hourly_arrays(rows.reset_index(drop=True), ["wind_speed_ms", "power_kw", "pitch_angle_deg"])
    n = len(h["power_kw"])
    for sig in ("wind_speed_ms", "power_kw", "pitch_angle_deg", "yaw_error_sin", "yaw_error_cos"):
        # the window keeps float32 hourly sums (models/window_store.py): relative error ~1e-7
        np.testing.assert_allclose(hm.means[sig][-n:], h[sig], rtol=1e-6, atol=1e-6, err_msg=sig)
    np.testing.assert_array_equal(hm.events[-n:], h["events"])


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


def test_registry_round_trip_and_integrity(tmp_path: Path, healthy: pd.DataFrame) -> None:
    reg = tmp_path / "registry"
    assert load_production_calibration(reg) is None
    cal = fit_calibration(healthy, version="c1")
    path = save_calibration(reg, cal)
    assert path == reg / "calibrations" / "c1"
    meta = json.loads((path / "metadata.json").read_text())
    assert (
        meta["turbines"] == ["T-1", "T-2"]
        and meta["data_start"]
        and len(meta["sha256"]["calibration.json"]) == 64
    )
    loaded = load_production_calibration(reg)
    assert loaded is not None and loaded.version == "c1"
    tc, tc2 = cal.turbines["T-1"], loaded.turbines["T-1"]
    winds = np.linspace(0, 26, 53)
    np.testing.assert_allclose(tc.expected_power(winds), tc2.expected_power(winds))
    assert tc2.deviations[POWER].normal(48) == tc.deviations[POWER].normal(48)
    save_calibration(reg, fit_calibration(healthy, version="c2"), promote=False)
    rows = list_calibrations(reg)
    assert [(r["version"], r["production"]) for r in rows] == [("c1", True), ("c2", False)]
    with pytest.raises(CalibrationRegistryError, match="already exists"):
        save_calibration(reg, cal)
    # a file edited after saving is refused, naming the file
    data = path / "calibration.json"
    data.write_text(data.read_text().replace('"T-1"', '"T-9"', 1))
    with pytest.raises(CalibrationRegistryError, match="sha256 mismatch"):
        load_calibration(reg, "c1")
    with pytest.raises(CalibrationRegistryError, match="does not exist"):
        load_calibration(reg, "nope")
    (reg / "calibrations" / "PRODUCTION").write_text("")
    with pytest.raises(CalibrationRegistryError, match="empty production pointer"):
        load_production_calibration(reg)


def test_models_list_ignores_the_calibrations_directory(tmp_path: Path, healthy: pd.DataFrame) -> None:
    from models.registry import list_versions

    reg = tmp_path / "registry"
    save_calibration(reg, fit_calibration(healthy, version="c1"))
    assert list_versions(reg) == []


def _flat(text: str) -> str:
    """CLI output without rich's line wrapping."""
    return " ".join(text.split())


def test_cli_calibrate(tmp_path: Path, healthy: pd.DataFrame) -> None:
    from typer.testing import CliRunner

    from models.cli import app

    src = tmp_path / "contract.csv"
    frame = pd.concat([healthy, make_rows("SHORT-1", days=5)])
    frame.to_csv(src, index=False)
    reg = tmp_path / "registry"
    res = CliRunner().invoke(app, ["calibrate", "--input", str(src), "--registry", str(reg)])
    assert res.exit_code == 0, res.output
    assert "2 turbine(s) calibrated, 1 refused" in _flat(res.output)
    assert "SHORT-1: only" in _flat(res.output)
    cal = load_production_calibration(reg)
    assert cal is not None and sorted(cal.turbines) == ["T-1", "T-2"]
    res = CliRunner().invoke(app, ["calibrate", "--input", str(src), "--registry", str(reg), "--strict"])
    assert res.exit_code == 1
    res = CliRunner().invoke(
        app, ["calibrate", "--input", str(tmp_path / "nope.csv"), "--registry", str(reg)]
    )
    assert res.exit_code == 2 and "input file not found" in _flat(res.output)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"\x00garbage")
    res = CliRunner().invoke(app, ["calibrate", "--input", str(bad), "--registry", str(reg)])
    assert res.exit_code == 2 and "cannot read contract rows" in _flat(res.output)
    short = tmp_path / "short.csv"
    make_rows("SHORT-1", days=5).to_csv(short, index=False)
    res = CliRunner().invoke(app, ["calibrate", "--input", str(short), "--registry", str(reg)])
    assert res.exit_code == 1 and "SHORT-1: only 5.0 days" in _flat(res.output)


def test_start_time_is_kept_in_utc() -> None:
    frame = make_rows("TZ-1", days=31, start=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=3))
    frame["event_time"] = frame["event_time"].dt.tz_convert("Europe/Berlin").astype(str)  # "+01:00" strings
    cal = fit_calibration(frame)
    assert cal.turbines["TZ-1"].data_start.startswith("2024-01-01T00:03:00+00:00")


def test_short_turbine_borrows_its_types_calibration(healthy: pd.DataFrame) -> None:
    """Same manufacturer and model in the register: a turbine with too little history of its own (or none
    at all) gets the type's curves, with a warning saying so; another type is still refused."""

    class Spec:
        def __init__(self, model: str) -> None:
            self.manufacturer = "Windmaster"
            self.model = model
            self.fitted_sensors = None
            self.rated_power_kw = None

    class Register:
        turbines = {
            "T-1": Spec("WM2"),
            "T-2": Spec("WM2"),
            "NEW-1": Spec("WM2"),
            "ODD-1": Spec("X9"),
            "NOROWS-1": Spec("WM2"),
        }

        def get(self, tid: str) -> Spec | None:
            return self.turbines.get(tid)

    frame = pd.concat([healthy, make_rows("NEW-1", days=10, seed=7), make_rows("ODD-1", days=10, seed=8)])
    cal = fit_calibration(frame, Register())  # type: ignore[arg-type]
    assert sorted(cal.turbines) == ["NEW-1", "NOROWS-1", "T-1", "T-2"]
    assert list(cal.refused) == ["ODD-1"]
    new = cal.turbines["NEW-1"]
    assert new.basis == "type: Windmaster WM2 (from T-1, T-2)"
    assert "only 10.0 days" in new.warnings[0] and "calibrated from its type" in new.warnings[0]
    assert not new.temperature_models and not any(k.startswith("temp:") for k in new.deviations)
    np.testing.assert_allclose(
        new.expected_power(np.array([8.0])), cal.turbines["T-1"].expected_power(np.array([8.0])), rtol=0.02
    )
    # the type's yaw offsets differ (4° and 0°): the borrowed spread is wider than either member's
    yaw = [cal.turbines[t].deviations[YAW].normal(48) for t in ("T-1", "T-2", "NEW-1")]
    assert yaw[2][1] > max(yaw[0][1], yaw[1][1])  # type: ignore[index]
    assert cal.turbines["NOROWS-1"].rows == 0
    assert cal.turbines["T-1"].basis == "own"
    # stored and read back
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.turbines["NEW-1"].basis.startswith("type:")


def test_status_codes_missing_on_some_rows_mean_ok(healthy: pd.DataFrame) -> None:
    frame = healthy[healthy.turbine_id == "T-2"].copy()
    frame["status_code"] = frame["status_code"].astype(float)
    frame.loc[frame.index[::2], "status_code"] = np.nan
    cal = fit_calibration(frame)
    assert cal.turbines["T-2"].normal_rows > 0.9 * fit_calibration(healthy).turbines["T-2"].normal_rows
    assert not any("no status codes" in w for w in cal.warnings)
    frame["status_code"] = np.nan
    assert any("no status codes" in w for w in fit_calibration(frame).warnings)
