"""Benchmark of the scoring hot paths: FeatureWindow.update, window state size, batched scoring.

    .venv/bin/python bench/bench_scoring.py                      # production model of ./registry if any
    .venv/bin/python bench/bench_scoring.py --registry registry/ --version v...

Reports, in one run (so ratios compare like with like on the same machine):
- ``FeatureWindow.update`` cost per event for contract objects and plain dicts, and the implied
  events/s of one core (the scorer's budget is >= 20,000 events/s per worker including everything);
- serialised window size (target <= 30 KB) and to_bytes/from_bytes cost;
- batched scoring cost per turbine at 1, 100 and 10,000 turbines, and a per-turbine predict loop at
  100 turbines as the baseline (ratio loop / batched).
Without a registry it fits stand-in models of the default size on random features (predict cost
depends on model size, not on what the trees learned).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from common.contracts import TelemetryEvent, make_event_id  # noqa: E402
from models.features import FEATURE_NAMES, FeatureWindow, fit_normal_model, hourly_means  # noqa: E402
from models.policy import load_policy  # noqa: E402
from models.registry import ModelBundle, RegistryError, load_production, load_version  # noqa: E402
from models.scoring import BatchScorer  # noqa: E402
from models.ttf import COND_LEVELS, TTFQuantile, TwoStageTTF  # noqa: E402


def synthetic_events(n: int, start: datetime, period_s: int = 600, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = start + timedelta(seconds=period_s * i)
        wind = float(max(0.0, 8 + 3 * np.sin(i / 50) + rng.normal(0, 1)))
        power = float(min(2250.0, max(0.0, (wind - 3) ** 3 * 3)))
        amb = float(10 + 5 * np.sin(i / 144 * 2 * np.pi))
        base = 30 + 0.012 * power + 0.6 * amb
        out.append(
            {
                "event_id": make_event_id("WT-001", t),
                "turbine_id": "WT-001",
                "site_id": "SITE-A",
                "event_time": t,
                "wind_speed_ms": round(wind, 3),
                "wind_direction_deg": 240.0,
                "ambient_temp_c": round(amb, 3),
                "power_kw": round(power, 3),
                "rotor_rpm": round(min(16.8, 1.2 * wind), 3),
                "generator_rpm": round(min(1797.0, 128 * wind), 3),
                "pitch_angle_deg": 1.0,
                "nacelle_direction_deg": 240.0,
                "gearbox_oil_temp_c": round(base + rng.normal(0, 0.3), 3),
                "gearbox_bearing_temp_c": round(base + 8 + rng.normal(0, 0.3), 3),
                "generator_winding_temp_c": round(base + 20 + rng.normal(0, 0.3), 3),
                "generator_bearing_temp_c": round(base + 2 + rng.normal(0, 0.3), 3),
                "main_bearing_temp_c": round(20 + 0.5 * amb + rng.normal(0, 0.3), 3),
                "vibration_mm_s": round(1.5 + 0.0005 * power + rng.normal(0, 0.05), 3),
                "converter_temp_c": round(30 + 0.005 * power + 0.5 * amb + rng.normal(0, 0.3), 3),
                "pitch_hydraulic_pressure_bar": round(180 + rng.normal(0, 2), 3),
                "status_code": 0,
            }
        )
    return out


def stand_in_bundle(events: list[dict]) -> ModelBundle:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, len(FEATURE_NAMES)))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 1, len(x)) > 2).astype(int)
    ttf = np.clip(30 - 8 * x[:, 0] + rng.normal(0, 2, len(x)), 0, 30)
    common = {"max_iter": 300, "max_leaf_nodes": 31, "early_stopping": False}
    models: dict = {"classifier": HistGradientBoostingClassifier(**common).fit(x, y)}
    # same structure as a trained version: two-stage TTF (gate + conditional log-TTF quantiles)
    deg = ttf < 30
    gate = HistGradientBoostingClassifier(**common).fit(x, deg.astype(int))
    cond = [
        HistGradientBoostingRegressor(loss="quantile", quantile=q, **common).fit(x[deg], np.log1p(ttf[deg]))
        for q in COND_LEVELS
    ]
    two_stage = TwoStageTTF(gate, cond, 30.0, threshold=0.5)
    for q in (10, 50, 90):
        models[f"ttf_q{q}"] = TTFQuantile(two_stage, q / 100)
    models["normal_model"] = fit_normal_model(hourly_means(pd.DataFrame(events)))
    return ModelBundle(version="stand-in", models=models, metadata={"ttf_horizon_days": 30.0})


def per_call(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", default=str(ROOT / "registry"))
    ap.add_argument("--version", default=None)
    ap.add_argument("--big", type=int, default=10_000, help="largest batch (turbines)")
    args = ap.parse_args()

    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = synthetic_events(8 * 144, start)  # 8 days at 10 min
    contract = [TelemetryEvent(**e) for e in events]
    rows: list[tuple[str, str]] = []

    # --- update cost
    for label, evs in (("TelemetryEvent", contract), ("dict", events)):
        best = float("inf")
        for _ in range(5):
            w = FeatureWindow("WT-001")
            t0 = time.perf_counter()
            for e in evs:
                w.update(e)
            best = min(best, (time.perf_counter() - t0) / len(evs))
        rows.append(
            (f"FeatureWindow.update ({label})", f"{best * 1e6:.2f} us/event = {1 / best:,.0f} events/s")
        )
    window = FeatureWindow("WT-001")
    for e in events:
        window.update(e)
    blob = window.to_bytes()
    rows.append(
        ("serialised window (7 days of 10-min data)", f"{len(blob) / 1024:.1f} KB ({len(blob)} bytes)")
    )
    rows.append(("to_bytes", f"{per_call(window.to_bytes, 200) * 1e6:.0f} us"))
    rows.append(("from_bytes", f"{per_call(lambda: FeatureWindow.from_bytes(blob), 200) * 1e6:.0f} us"))
    rows.append(("FeatureWindow.features (single)", f"{per_call(window.features, 50) * 1e3:.2f} ms"))

    # --- scoring
    try:
        bundle = load_version(args.registry, args.version) if args.version else load_production(args.registry)
        source = f"registry version {bundle.version}"
    except RegistryError as exc:
        bundle = stand_in_bundle(events)
        source = f"stand-in models ({exc})"
    scorer = BatchScorer(bundle, load_policy())
    now = window.as_of + timedelta(minutes=5)  # type: ignore[operator]
    pool = [(f"WT-{i:05d}", FeatureWindow.from_bytes(blob)) for i in range(args.big)]
    batched: dict[int, float] = {}
    for n in (1, 100, args.big):
        items = pool[:n]
        repeat = 20 if n == 1 else (5 if n <= 100 else 1)
        batched[n] = per_call(lambda items=items: scorer.score(items, now=now), repeat) / n
        rows.append((f"BatchScorer.score, {n:,} turbines", f"{batched[n] * 1e3:.3f} ms/turbine"))
    loop_items = pool[:100]

    def loop() -> None:
        for it in loop_items:
            scorer.score([it], now=now)

    per_loop = per_call(loop, 1) / 100
    rows.append(("per-turbine predict loop, 100 turbines", f"{per_loop * 1e3:.3f} ms/turbine"))
    rows.append(("ratio loop / batched at 100", f"{per_loop / batched[100]:.1f}x"))

    width = max(len(r[0]) for r in rows)
    print(f"bench_scoring - {source}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print("-" * (width + 40))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
