"""FeatureWindow: online == offline, serialisation, out-of-order events, data-quality indicators."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from common.contracts import TelemetryEvent, make_event_id
from models.features import (
    FEATURE_NAMES,
    N_BINS,
    FeatureWindow,
    compute_features,
    feature_columns,
    fit_normal_model,
    hourly_means,
)
from tests.unit.models._synth import START, events_of, synth_fleet

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame, failures = synth_fleet(n_turbines=2, days=12, seed=3, failures_per_turbine=1, degradation_days=4)
    # Sprinkle missing values so the None/NaN paths are exercised on both sides.
    rng = np.random.default_rng(0)
    mask = rng.random(len(frame)) < 0.05
    frame.loc[mask, "gearbox_oil_temp_c"] = np.nan
    return frame, failures


@pytest.fixture(scope="module")
def normal_model(fleet):  # type: ignore[no-untyped-def]
    return fit_normal_model(hourly_means(fleet[0]))


def test_feature_names_unique_and_sized() -> None:
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES))
    assert FeatureWindow().features().shape == (len(FEATURE_NAMES),)


def test_online_equals_offline(fleet, normal_model) -> None:  # type: ignore[no-untyped-def]
    frame, _ = fleet
    tid = "WT-001"
    rows = events_of(frame[frame.turbine_id == tid])
    window = FeatureWindow(tid)
    for i, rec in enumerate(rows):
        # alternate contract objects and plain mappings: both are accepted
        window.update(TelemetryEvent(**rec) if i % 2 else rec)
    as_of = window.last_event_ts
    assert as_of is not None
    offline = compute_features(frame, normal_model, sample_times={tid: [as_of]})
    online = window.features(normal_model)
    assert len(offline) == 1
    np.testing.assert_array_equal(offline[list(FEATURE_NAMES)].to_numpy()[0], online)
    assert np.isfinite(online).sum() > 0.9 * len(FEATURE_NAMES)


def test_offline_samples_every_hour_match_prefix_replay(fleet, normal_model) -> None:  # type: ignore[no-untyped-def]
    frame, _ = fleet
    sub = frame[frame.turbine_id == "WT-002"]
    feats = compute_features(sub, normal_model, every_hours=24)
    assert len(feats) >= 11
    cut = feats["time"].iloc[5]
    window = FeatureWindow("WT-002")
    for rec in events_of(sub[sub.event_time <= cut]):
        window.update(rec)
    # batched (512 windows) vs single: same code, numpy may sum in another order -> 1e-12 tolerance
    np.testing.assert_allclose(
        feats[list(FEATURE_NAMES)].to_numpy()[5], window.features(normal_model), rtol=1e-10, atol=1e-10
    )


def test_serialisation_round_trip_and_size(fleet, normal_model) -> None:  # type: ignore[no-untyped-def]
    frame, _ = fleet
    window = FeatureWindow("WT-001")
    for rec in events_of(frame[frame.turbine_id == "WT-001"]):
        window.update(rec)
    blob = window.to_bytes()
    assert len(blob) <= 30_000
    clone = FeatureWindow.from_bytes(blob)
    assert clone.turbine_id == "WT-001"
    np.testing.assert_array_equal(clone.features(normal_model), window.features(normal_model))
    assert clone.data_quality() == window.data_quality()
    assert clone.to_bytes() == blob
    # the clone keeps working identically
    nxt = {"event_time": window.as_of + timedelta(minutes=10), "gearbox_oil_temp_c": 50.0}  # type: ignore[operator]
    window.update(nxt)
    clone.update(nxt)
    np.testing.assert_array_equal(clone.features(normal_model), window.features(normal_model))


def test_from_bytes_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="bad magic"):
        FeatureWindow.from_bytes(b"pickle?")
    blob = bytearray(FeatureWindow("x").to_bytes())
    blob[4] = 99  # format version
    with pytest.raises(ValueError, match="format 99"):
        FeatureWindow.from_bytes(bytes(blob))
    good = FeatureWindow("x").to_bytes()
    with pytest.raises(ValueError, match="corrupted"):
        FeatureWindow.from_bytes(good[:-10])


def _ev(hours: float, **values: float | None) -> dict:
    return {"event_time": START + timedelta(hours=hours), **values}


def test_out_of_order_within_window_is_binned_and_old_is_dropped() -> None:
    in_order = FeatureWindow()
    shuffled = FeatureWindow()
    events = [_ev(h / 6, gearbox_bearing_temp_c=60.0 + (h % 7)) for h in range(6 * 48)]
    for e in events:
        in_order.update(e)
    late = events[:]
    random.Random(1).shuffle(late[-30:])  # small disorder at the end
    for e in late:
        shuffled.update(e)
    np.testing.assert_allclose(
        shuffled.features()[: 8 * 16], in_order.features()[: 8 * 16], equal_nan=True, rtol=1e-12
    )
    before = shuffled.n_events
    shuffled.update(_ev(48 - N_BINS - 1, gearbox_bearing_temp_c=10.0))  # older than the ring
    assert shuffled.late_events_dropped == 1
    assert shuffled.n_events == before


def test_frozen_sensor_detected_and_spikes_counted() -> None:
    w = FeatureWindow()
    for i in range(6 * 10):  # 10 h at 10 min
        w.update(
            _ev(
                i / 6,
                gearbox_bearing_temp_c=71.5,  # frozen
                vibration_mm_s=2.0 + 0.01 * i + (30.0 if i == 40 else 0.0),  # one spike (up and down)
                main_bearing_temp_c=40.0 + 0.1 * (i % 3),
            )
        )
    dq = w.data_quality()
    assert "gearbox_bearing_temp_c" in dq["frozen_signals"]
    assert dq["frozen_signals"]["gearbox_bearing_temp_c"] >= 3.0
    assert "main_bearing_temp_c" not in dq["frozen_signals"]
    assert dq["spikes_24h"] == 2
    f = dict(zip(FEATURE_NAMES, w.features(), strict=True))
    assert f["n_frozen_key"] == 1
    assert f["frozen_max_hours"] >= 3.0


def test_data_quality_staleness_and_missing_share() -> None:
    w = FeatureWindow()
    assert w.data_quality()["events_in_window"] == 0
    for i in range(12):
        w.update(_ev(i / 6, gearbox_bearing_temp_c=None, vibration_mm_s=2.0 + i / 100))
    now = START + timedelta(hours=5)
    dq = w.data_quality(now=now)
    assert dq["seconds_since_last_event"] == pytest.approx((5 - 11 / 6) * 3600)
    assert 0.8 < dq["missing_share_24h"] < 1.0
    assert "gearbox_bearing_temp_c" in dq["silent_key_signals_24h"]
    assert w.as_of == START + timedelta(hours=11 / 6)


def test_update_accepts_naive_and_string_times_as_utc() -> None:
    a, b, c = FeatureWindow(), FeatureWindow(), FeatureWindow()
    t = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    a.update({"event_time": t, "power_kw": 10.0})
    b.update({"event_time": t.replace(tzinfo=None), "power_kw": 10.0})
    c.update({"event_time": "2024-03-01T12:00:00Z", "power_kw": 10.0})
    assert a.last_event_ts == b.last_event_ts == c.last_event_ts


def test_contract_event_is_accepted() -> None:
    t = datetime(2024, 3, 1, tzinfo=UTC)
    ev = TelemetryEvent(
        event_id=make_event_id("WT-1", t), turbine_id="WT-1", site_id="S", event_time=t, power_kw=5.0
    )
    w = FeatureWindow("WT-1")
    w.update(ev)
    assert w.n_events == 1


def test_every_feature_name_is_computed(normal_model) -> None:  # type: ignore[no-untyped-def]
    """With a normal model every name in FEATURE_NAMES has its own computed column (no silent NaN)."""
    cols = feature_columns([FeatureWindow().snapshot()], normal_model)
    assert set(cols) == set(FEATURE_NAMES)
    assert all(c.shape == (1,) for c in cols.values())


def test_load_response_recovers_the_load_dependent_excess() -> None:
    from models.features import _response

    rng = np.random.default_rng(3)
    load = rng.uniform(0.0, 2.2, size=(2, 168))
    dev = np.stack([1.0 + 4.0 * load, np.zeros_like(load)], axis=2) + rng.normal(0, 0.01, (2, 168, 2))
    dev[0, :5, 0] = np.nan  # missing hours are skipped
    beta, icpt = _response(dev, load, 72, 0.01)
    np.testing.assert_allclose(beta[:, 0], [4.0, 4.0], atol=0.05)
    np.testing.assert_allclose(icpt[:, 0], [1.0, 1.0], atol=0.05)
    np.testing.assert_allclose(beta[:, 1], [0.0, 0.0], atol=0.05)
    flat = np.full((1, 168), 1.5)  # no load variation: no estimate
    assert np.isnan(_response(dev[:1], flat, 72, 0.01)[0]).all()
