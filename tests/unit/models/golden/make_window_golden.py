"""Writes the feature-window golden files (run from the repository root; only when the semantics change).

    .venv/bin/python tests/unit/models/golden/make_window_golden.py

First generated from commit a8d0c09 (the per-object ``FeatureWindow`` on ``array.array`` bins, float64
sums, format v2), BEFORE the columnar store: ``test_window_golden.py`` checks the store against it.
A small deterministic event set: 3 turbines over ~10 days at 10 minutes with gaps (one > 168 h),
statuses, missing / NaN values, a frozen sensor, spikes, out-of-order and late events, and a repair.
"""

from __future__ import annotations

import json
import math
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from models.features import FEATURE_NAMES, TRACKED_SIGNALS, FeatureWindow  # noqa: E402

START = datetime(2024, 3, 1, tzinfo=UTC)
TIDS = ("WT-G01", "WT-G02", "WT-G03")
STATUSES = (0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
CUTS_H = (130.0, 241.0)  # sample points (hours after START): before and after the ring wraps
REPAIR_H = 200.5  # WT-G02 is repaired mid-hour
NOW_H = 242.0
FITTED = ("gearbox_oil_temp_c", "vibration_mm_s", "power_kw", "pitch_angle_deg", "wind_direction_deg")


def events() -> list[dict]:
    """All events of the three turbines, in the arrival order used by the golden files."""
    rng = np.random.default_rng(11)
    pyr = random.Random(11)
    out: list[dict] = []
    lates: list[dict] = []
    for i, tid in enumerate(TIDS):
        evs = []
        for n in range(242 * 6):
            h = n / 6
            if i == 1 and 60 <= h < 90:  # a 30-hour gap
                continue
            if i == 2 and 30 <= h < 210:  # a gap longer than the ring
                continue
            wind = float(np.clip(7 + 3 * math.sin(h / 17 + i) + rng.normal(0, 1.5), 0, 30))
            power = float(min(2250.0, max(0.0, (wind - 3) ** 3 * 3)))
            amb = 8 + 5 * math.sin(2 * math.pi * h / 24) + float(rng.normal(0, 0.5))
            base = 35 + 0.012 * power + 0.6 * amb
            rec: dict = {
                "turbine_id": tid,
                "event_time": START + timedelta(hours=h, seconds=int(rng.integers(0, 60))),
                "wind_speed_ms": round(wind, 3),
                "power_kw": round(power, 2),
                "ambient_temp_c": round(amb, 3),
                "rotor_rpm": round(min(16.8, 1.2 * wind), 3),
                "gearbox_oil_temp_c": round(base + float(rng.normal(0, 0.3)), 3),
                "gearbox_bearing_temp_c": round(base + 8 + float(rng.normal(0, 0.3)), 3),
                "generator_winding_temp_c": round(base + 20 + float(rng.normal(0, 0.3)), 3),
                "generator_bearing_temp_c": round(base + 2 + float(rng.normal(0, 0.3)), 3),
                "main_bearing_temp_c": round(20 + 0.5 * amb + float(rng.normal(0, 0.3)), 3),
                "converter_temp_c": round(30 + 0.005 * power + 0.5 * amb, 3),
                "vibration_mm_s": round(1.5 + 0.0005 * power + float(rng.normal(0, 0.05)), 3),
                "pitch_hydraulic_pressure_bar": round(180 + float(rng.normal(0, 2)), 3),
                "pitch_angle_deg": round(float(rng.uniform(0, 10)), 2),
                "wind_direction_deg": round(float(rng.uniform(0, 360)), 1),
                "nacelle_direction_deg": round(float(rng.uniform(0, 360)), 1),
                "status_code": STATUSES[int(rng.integers(0, len(STATUSES)))],
            }
            if i == 0 and h >= 230:  # frozen sensor at the end
                rec["gearbox_bearing_temp_c"] = 71.5
            if rng.random() < 0.01:  # spike
                rec["vibration_mm_s"] = rec["vibration_mm_s"] + 30.0
            for sig in (*TRACKED_SIGNALS, "pitch_angle_deg", "wind_direction_deg"):
                u = rng.random()
                if u < 0.03:
                    rec[sig] = None
                elif u < 0.05:
                    rec[sig] = math.nan
                elif u < 0.06:
                    rec.pop(sig, None)
            evs.append(rec)
        # local disorder, duplicates of times, and events older than the ring
        for j in range(0, len(evs) - 8, 97):
            chunk = evs[j : j + 8]
            pyr.shuffle(chunk)
            evs[j : j + 8] = chunk
        for j in range(50, len(evs), 301):
            dup = dict(evs[j])
            dup["power_kw"] = 5.0
            evs.insert(j + 1, dup)
        late = dict(evs[3])
        late["event_time"] = START - timedelta(days=1)
        lates.append(late)
        out.extend(evs)
    order = sorted(
        range(len(out)), key=lambda k: (out[k]["event_time"] + timedelta(hours=2 if k % 53 == 0 else 0), k)
    )
    arrival = [out[k] for k in order]
    for j, late in enumerate(lates):  # they arrive near the end, after newer events
        arrival.insert(len(arrival) * 9 // 10 + j, late)
    return arrival


def play(evs: list[dict], cut_h: float) -> dict[str, FeatureWindow]:
    wins = {tid: FeatureWindow(tid) for tid in TIDS}
    repaired = False
    for e in evs:
        t_h = (e["event_time"] - START).total_seconds() / 3600
        if t_h > cut_h:
            continue
        if not repaired and t_h >= REPAIR_H + 3:
            wins["WT-G02"].drop_before((START + timedelta(hours=REPAIR_H)).timestamp())
            repaired = True
        wins[e["turbine_id"]].update(e)
    return wins


def normal_model_arrays() -> dict[str, np.ndarray]:
    """A fixed normal-behaviour model (stored in the golden file, so a refit cannot move the goldens)."""
    rng = np.random.default_rng(5)
    coef = rng.normal(0, 1, (7, 7)) * np.array([30, 5, 2, 3, 0.6, 1, 0.5])
    grid = np.arange(0.0, 30.01, 0.5)
    return {
        "coef": coef,
        "resid_std": np.ones(7),
        "pc_wind": grid,
        "pc_power": np.clip((grid - 3) ** 3 * 3, 0, 2250),
    }


def main() -> None:
    from models.features import NBM_TARGETS, NormalModel

    evs = events()
    nm_arrays = normal_model_arrays()
    nm = NormalModel(NBM_TARGETS, **nm_arrays)
    now = (START + timedelta(hours=NOW_H)).timestamp()
    out: dict[str, np.ndarray] = {f"nm_{k}": v for k, v in nm_arrays.items()}
    dq: dict[str, dict] = {}
    for c, cut in enumerate(CUTS_H):
        wins = play(evs, cut)
        out[f"features_{c}"] = np.vstack([wins[t].features(nm) for t in TIDS])
        out[f"features_nonm_{c}"] = np.vstack([wins[t].features() for t in TIDS])
        for t in TIDS:
            (HERE / f"window_v2_{c}_{t}.bin").write_bytes(wins[t].to_bytes())
            hm = wins[t].hourly()
            out[f"hourly_{c}_{t}"] = np.column_stack(
                [hm.means[s] for s in sorted(hm.means)] + [hm.events, hm.down, hm.alarms]
            )
            dq[f"{c}/{t}"] = {
                "plain": wins[t].data_quality(),
                "now": wins[t].data_quality(now=datetime.fromtimestamp(now, UTC)),
                "fitted": wins[t].data_quality(fitted=FITTED),
                "n_events": wins[t].n_events,
                "late": wins[t].late_events_dropped,
                "repaired_before": wins[t].repaired_before,
            }
    np.savez_compressed(HERE / "window_golden.npz", feature_names=np.asarray(FEATURE_NAMES), **out)
    (HERE / "window_golden_dq.json").write_text(json.dumps(dq, indent=1, sort_keys=True) + "\n")
    print(f"{len(evs)} events, {len(TIDS)} turbines -> {HERE}")


if __name__ == "__main__":
    main()
