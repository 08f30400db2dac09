"""models/drift.py: reference distributions, PSI and KS on known distributions, hostile input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.drift import (
    EPS,
    FILENAME,
    NON_STATIONARY,
    WARM_COLUMN,
    WARM_COVERAGE_HOURS,
    DriftReference,
    DriftReferenceError,
    compare,
    ks,
    months_of,
    noise_floor,
    psi,
    reference_files,
    reference_from_matrix,
    severity,
)
from models.features import FEATURE_NAMES

pytestmark = pytest.mark.unit

NAMES = ("a", "b", "c")


def _normal(n: int, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(shift, 1.0, n), rng.uniform(0, 10, n), np.full(n, 3.0)])


def test_identical_distribution_has_psi_near_zero() -> None:
    ref = reference_from_matrix(_normal(20_000, seed=1), NAMES)
    p, k = compare(ref, _normal(20_000, seed=2))
    assert np.all(p < 0.01), p
    assert np.all(k[:2] < 0.02), k
    # the reference's own matrix: deciles hold 10 % each, PSI exactly ~0
    assert psi(ref, _normal(20_000, seed=1))[0] == pytest.approx(0.0, abs=1e-6)


def test_shifted_distribution_has_high_psi_on_that_feature_only() -> None:
    ref = reference_from_matrix(_normal(20_000, seed=1), NAMES)
    p = psi(ref, _normal(5_000, shift=1.0, seed=3))
    assert p[0] > 0.25  # one standard deviation: significant
    assert p[1] < 0.02 and p[2] < 0.01
    assert ks(ref, _normal(5_000, shift=1.0, seed=3))[0] == pytest.approx(0.38, abs=0.05)  # 2*Phi(0.5)-1


def test_psi_matches_the_formula_on_known_bins() -> None:
    # reference: a feature uniform on 0..9 (integers): 10 bins of 10 %; sample: all in the lowest bin
    x = np.arange(1000, dtype=float)[:, None] % 10
    ref = reference_from_matrix(x, ["u"])
    assert len(ref.features[0].edges) == 9
    sample = np.zeros((100, 1))
    expected = (1 - 0.1) * math.log(1 / 0.1) + 9 * (EPS - 0.1) * math.log(EPS / 0.1)
    assert psi(ref, sample)[0] == pytest.approx(expected, rel=1e-6)
    assert ks(ref, sample)[0] == pytest.approx(0.9)


def test_severity_thresholds_are_parameters() -> None:
    assert severity(0.05, 0.1, 0.25) == "none"
    assert severity(0.1, 0.1, 0.25) == "moderate"
    assert severity(0.3, 0.1, 0.25) == "significant"
    assert severity(math.nan, 0.1, 0.25) == "none"
    assert severity(0.3, 0.5, 1.0) == "none"
    with pytest.raises(ValueError, match="out of order"):
        severity(0.3, 0.3, 0.2)


def test_missing_values_are_a_bin_of_their_own() -> None:
    ref = reference_from_matrix(_normal(5_000, seed=1), NAMES)
    silent = _normal(1_000, seed=4)
    silent[:, 0] = np.nan  # a sensor gone silent: all missing
    silent[:10, 1] = np.inf
    p, k = compare(ref, silent)
    assert p[0] > 5  # every row in the (empty in training) missing bin
    assert math.isnan(k[0])  # no finite values to compare
    assert 0.04 < p[1] < 0.1  # 1 % missing: (0.01 - EPS) * ln(0.01 / EPS) = 0.046, plus noise


def test_hostile_reference_input() -> None:
    x = _normal(500, seed=1)
    x[::7, 0] = np.nan
    x[::11, 1] = np.inf
    x[::13, 1] = -np.inf
    ref = reference_from_matrix(x, NAMES)
    f0 = ref.features[0]
    assert f0.shares[-1] == pytest.approx(np.mean(np.arange(500) % 7 == 0))
    assert np.all(np.isfinite(f0.edges))
    # a constant feature: one edge, everything in its first bin; a constant sample is no drift
    c = ref.features[2]
    assert list(c.edges) == [3.0] and c.shares[0] == 1.0
    assert psi(ref, _normal(100, seed=9))[2] == pytest.approx(0.0)
    # an all-NaN training column: no edges, everything missing; no crash
    x[:, 0] = np.nan
    ref2 = reference_from_matrix(x, NAMES)
    assert ref2.features[0].edges.size == 0 and ref2.features[0].shares[-1] == 1.0
    with pytest.raises(DriftReferenceError, match="no training rows"):
        reference_from_matrix(np.zeros((0, 3)), NAMES)
    with pytest.raises(DriftReferenceError, match="does not match 2 feature names"):
        reference_from_matrix(x, ["a", "b"])


def test_empty_and_misshapen_samples() -> None:
    ref = reference_from_matrix(_normal(500, seed=1), NAMES)
    p, k = compare(ref, np.zeros((0, 3)))
    assert np.all(np.isnan(p)) and np.all(np.isnan(k))
    with pytest.raises(ValueError, match="2 columns"):
        psi(ref, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="lacks reference features"):
        psi(ref, np.zeros((5, 2)), names=["a", "b"])
    # columns found by name, in any order
    x = _normal(2_000, seed=5)
    assert np.allclose(psi(ref, x[:, ::-1], names=["c", "b", "a"]), psi(ref, x))


def test_monthly_shares_compare_a_season_with_its_own_month() -> None:
    rng = np.random.default_rng(0)
    n = 12 * 600
    months = np.repeat(np.arange(1, 13), 600)
    temp = 10 * np.sin((months - 4) / 12 * 2 * np.pi) + rng.normal(0, 2, n)  # seasonal temperature
    times = (pd.Timestamp("2024-01-15") + pd.to_timedelta((months - 1) * 30, unit="D")).to_numpy()
    times = times.astype("datetime64[s]")
    ref = reference_from_matrix(temp[:, None], ["t"], times)
    assert sorted(ref.features[0].monthly) == list(range(1, 13))
    january = temp[months == 1][:, None]
    jan_months = np.ones(len(january), dtype=int)
    assert psi(ref, january, months=jan_months)[0] < 0.05  # January against January: no drift
    assert psi(ref, january)[0] > 1.0  # against the whole year it would be
    assert psi(ref, january + 6, months=jan_months)[0] > 1.0  # a warm January is drift


def test_warming_up_rows_and_counters_are_left_out() -> None:
    names = ["x", WARM_COLUMN, "baseline_hours"]
    x = np.column_stack([np.arange(100.0), np.full(100, 168.0), np.arange(100.0)])
    x[:30, 1] = WARM_COVERAGE_HOURS - 1
    ref = reference_from_matrix(x, names)
    assert ref.rows == 70
    assert ref.names == ("x",)  # both counters are NON_STATIONARY
    assert {"baseline_hours", WARM_COLUMN} <= NON_STATIONARY


def test_json_round_trip_and_refusals() -> None:
    rng = np.random.default_rng(1)
    times = np.datetime64("2024-01-01") + rng.integers(0, 365 * 86400, 5_000).astype("timedelta64[s]")
    ref = reference_from_matrix(_normal(5_000, seed=1), NAMES, times)
    back = DriftReference.from_json(ref.to_json())
    assert back.names == ref.names and back.rows == ref.rows and back.month_rows == ref.month_rows
    sample = _normal(800, shift=0.3, seed=6)
    m = months_of(np.full(800, pd.Timestamp("2024-03-10", tz="UTC").timestamp()))
    assert np.allclose(psi(back, sample, months=m), psi(ref, sample, months=m), atol=1e-4)
    with pytest.raises(DriftReferenceError, match="not valid JSON"):
        DriftReference.from_json(b"\x00\xff{", "x.json")
    with pytest.raises(DriftReferenceError, match="format"):
        DriftReference.from_json('{"format": 99}')
    data = ref.to_dict()
    data["features"][0]["shares"] = [0.5, 0.5]
    with pytest.raises(DriftReferenceError, match=r"feature 'a'.*'shares' has 2 values"):
        DriftReference.from_dict(data)
    data = ref.to_dict()
    data["features"][1]["edges"] = [3.0, 1.0]
    with pytest.raises(DriftReferenceError, match=r"feature 'b'.*strictly increasing"):
        DriftReference.from_dict(data)
    data = ref.to_dict()
    data["features"][0]["monthly"] = {"13": data["features"][0]["shares"]}
    with pytest.raises(DriftReferenceError, match="months 1-12"):
        DriftReference.from_dict(data)
    with pytest.raises(DriftReferenceError, match="expected an object"):
        DriftReference.from_json("[1, 2]")


def test_reference_files_of_a_training_dataset() -> None:
    rng = np.random.default_rng(2)
    n = 400
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    frame[WARM_COLUMN] = 168.0
    frame["time"] = pd.date_range("2024-01-01", periods=n, freq="4h", tz="UTC")
    files = reference_files(frame)
    ref = DriftReference.from_json(files[FILENAME])
    assert len(ref.names) == len(FEATURE_NAMES) - len(NON_STATIONARY)
    assert ref.rows == n and sum(ref.month_rows.values()) == n and set(ref.month_rows) == {1, 2, 3}


def test_noise_floor_grows_as_groups_shrink() -> None:
    rng = np.random.default_rng(3)
    # 16 turbines, each with its own persistent offset (like a turbine's own sensor offsets)
    offsets = rng.normal(0, 1, 16)
    x = np.concatenate([rng.normal(o, 0.2, (300, 1)) for o in offsets])
    groups = np.repeat([f"WT-{i:02d}" for i in range(16)], 300)
    ref = reference_from_matrix(x, ["r"], groups=groups)
    assert ref.features[0].by_turbine is not None and ref.features[0].by_turbine.shape == (16, 11)
    two, eight = noise_floor(ref, 2)[0], noise_floor(ref, 8)[0]
    assert two > 2.0 > eight > 0.05  # two turbines cover two deciles: high PSI by chance
    back = DriftReference.from_json(ref.to_json())
    got, want = back.features[0].by_turbine, ref.features[0].by_turbine
    assert got is not None and np.allclose(got, want, atol=1e-5)
    # without turbine shares the floor is 0
    assert noise_floor(reference_from_matrix(x, ["r"]), 2)[0] == 0.0


def test_scorer_says_when_the_version_has_no_reference(tmp_path: Path) -> None:
    from scorer.drift import DriftMonitor
    from scorer.settings import ScorerSettings

    mon = DriftMonitor(ScorerSettings())
    mon.load_reference("v20240101-000000", tmp_path)
    report = mon.compute()
    assert report.status == "not_available"
    assert "version v20240101-000000 has no reference" in report.detail and "retrain" in report.detail
    (tmp_path / FILENAME).write_text("{not json")
    mon.load_reference("v2", tmp_path)
    assert mon.compute().status == "not_available" and "not valid JSON" in (mon.reference_problem or "")


def test_reference_files_of_a_history_without_warm_windows_is_empty() -> None:
    frame = pd.DataFrame(np.zeros((5, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    frame["time"] = pd.date_range("2024-01-01", periods=5, freq="4h", tz="UTC")
    assert reference_files(frame) == {}  # coverage 0 h everywhere: training goes on without one
