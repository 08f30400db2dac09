"""Benchmark of the scoring hot paths: the columnar window store, its batch ingest, features, scoring.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_scoring.py             # production model of ./registry
    .venv/bin/python bench/bench_scoring.py --registry registry/ --version v... --big 100000

Reports, in one run (so ratios compare like with like on the same, possibly busy, machine):
- ingest cost per event: ``WindowStore.ingest`` batches (vectorised path) vs the per-event path on the
  same arrays, and ``FeatureWindow.update`` of dicts (what the scorer did per event), with the ratio;
- memory: bytes per turbine of the store's arrays (``nbytes() / capacity``);
- ``to_bytes`` / ``load`` cost per window and the serialised size;
- the first-use cost of the numba feature kernels (``warm_up``: compile, or load from numba's on-disk
  cache when this source was compiled before);
- features per turbine at 1,000 / 10,000 / ``--big`` turbines (``WindowStore.features``: the fused
  numba kernel reads each row's ring in place), beside two baselines from the same run: the floor (one
  gather of the same rows plus one sum over the gathered arrays) and, up to 10,000 turbines, the
  per-window path (one ``snapshot()`` copy per window, then ``feature_matrix`` of the snapshots);
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

from common.contracts import make_event_id  # noqa: E402
from models.feature_kernels import warm_up  # noqa: E402
from models.features import (  # noqa: E402
    FEATURE_NAMES,
    TRACKED_SIGNALS,
    FeatureWindow,
    feature_matrix,
    fit_normal_model,
    hourly_means,
)
from models.policy import load_policy  # noqa: E402
from models.registry import ModelBundle, RegistryError, load_production, load_version  # noqa: E402
from models.scoring import BatchScorer  # noqa: E402
from models.ttf import COND_LEVELS, TTFQuantile, TwoStageTTF  # noqa: E402
from models.window_store import WindowStore  # noqa: E402


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


def fleet_arrays(events: list[dict], n_turbines: int, seed: int = 1) -> dict[str, np.ndarray]:
    """The same readings for ``n_turbines`` turbines, interleaved in time order (the live case):
    each turbine's readings are jittered and its events shifted by up to 10 minutes."""
    rng = np.random.default_rng(seed)
    base_ts = np.array([e["event_time"].timestamp() for e in events])
    vals = np.array([[e.get(s, np.nan) for s in TRACKED_SIGNALS] for e in events], dtype=np.float64)
    aux = np.array(
        [[e["pitch_angle_deg"], e["wind_direction_deg"], e["nacelle_direction_deg"]] for e in events]
    )
    n = len(events)
    shift = rng.uniform(0, 600, n_turbines)
    ts = (base_ts[:, None] + shift[None, :]).reshape(-1)
    turb = np.tile(np.arange(n_turbines), n)
    order = np.argsort(ts, kind="stable")
    noise = rng.normal(0, 0.05, (n * n_turbines, len(TRACKED_SIGNALS)))
    return {
        "turbine": turb[order],
        "ts": ts[order],
        "values": (np.repeat(vals, n_turbines, axis=0) + noise)[order].round(3),
        "status": np.zeros(n * n_turbines, dtype=np.int64),
        "aux": np.repeat(aux, n_turbines, axis=0)[order],
    }


def best_of(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def filled_store(template: WindowStore, n: int) -> tuple[WindowStore, np.ndarray]:
    """A store of ``n`` turbines whose rows are copies of the template's (features cost the same)."""
    store = WindowStore(n)
    rows = store.rows_for([f"WT-{i:06d}" for i in range(n)])
    src = np.arange(n) % len(template)
    for i in range(0, n, 4096):
        store.copy_rows(template, src[i : i + 4096], rows[i : i + 4096])
    return store, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", default=str(ROOT / "registry"))
    ap.add_argument("--version", default=None)
    ap.add_argument("--big", type=int, default=100_000, help="largest fleet for the features (turbines)")
    ap.add_argument("--ingest-turbines", type=int, default=1_000, help="fleet of the ingest comparison")
    ap.add_argument("--batch", type=int, default=5_000, help="events per ingest batch")
    args = ap.parse_args()

    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = synthetic_events(8 * 144, start)  # 8 days at 10 min
    rows: list[tuple[str, str]] = []
    rows.append(("feature kernels warm_up (compile or cache load)", f"{warm_up():.2f} s"))

    # --- ingest: batch path vs per-event path on the same arrays, same events
    n_t = args.ingest_turbines
    fa = fleet_arrays(events[: 2 * 144], n_t)  # 2 days of a 1,000-turbine fleet (288,000 events)
    n_ev = len(fa["ts"])

    def run_batches() -> WindowStore:
        st = WindowStore(n_t)
        r = st.rows_for([f"WT-{i:06d}" for i in range(n_t)])[fa["turbine"]]
        for i in range(0, n_ev, args.batch):
            sl = slice(i, i + args.batch)
            st.ingest(r[sl], fa["ts"][sl], fa["values"][sl], fa["status"][sl], fa["aux"][sl])
        return st

    n_seq = min(n_ev, 60_000)

    def run_sequential() -> WindowStore:
        st = WindowStore(n_t)
        r = st.rows_for([f"WT-{i:06d}" for i in range(n_t)])[fa["turbine"]].tolist()
        ts, vals, aux = fa["ts"].tolist(), fa["values"].tolist(), fa["aux"].tolist()
        for i in range(n_seq):
            st._ingest_one(r[i], ts[i], vals[i], 0, aux[i])
        return st

    t_batch = best_of(run_batches, 3) / n_ev
    t_seq = best_of(run_sequential, 2) / n_seq
    dict_events = [{**e, "event_time": e["event_time"]} for e in events]
    t_update = best_of(
        lambda: [w.update(e) for w in [FeatureWindow("WT-001")] for e in dict_events], 2
    ) / len(events)
    rows.append(
        (
            f"ingest, batches of {args.batch:,} ({n_t:,} turbines)",
            f"{t_batch * 1e6:.2f} us/event = {1 / t_batch:,.0f} events/s",
        )
    )
    rows.append(
        ("ingest, per-event path (same arrays)", f"{t_seq * 1e6:.2f} us/event = {1 / t_seq:,.0f} events/s")
    )
    rows.append(("FeatureWindow.update (dict events)", f"{t_update * 1e6:.2f} us/event"))
    rows.append(("ratio per-event / batch", f"{t_seq / t_batch:.1f}x"))

    # --- state: memory and serialisation
    template = WindowStore(64)
    trows = template.rows_for([f"T-{i}" for i in range(64)])
    fa8 = fleet_arrays(events, 64, seed=2)
    tr = trows[fa8["turbine"]]
    for i in range(0, len(tr), 20_000):
        sl = slice(i, i + 20_000)
        template.ingest(tr[sl], fa8["ts"][sl], fa8["values"][sl], fa8["status"][sl], fa8["aux"][sl])
    rows.append(
        (
            "store arrays per turbine (nbytes / capacity)",
            f"{template.nbytes() / template.capacity:,.0f} bytes",
        )
    )
    blob = template.to_bytes(0)
    rows.append(
        ("serialised window (7 days of 10-min data)", f"{len(blob) / 1024:.1f} KB ({len(blob)} bytes)")
    )
    rows.append(("to_bytes", f"{per_call(lambda: template.to_bytes(0), 200) * 1e6:.0f} us"))
    sink = WindowStore(2)
    rows.append(("load", f"{per_call(lambda: sink.load('WT-x', blob), 200) * 1e6:.0f} us"))

    # --- features per turbine at fleet scale vs same-run baselines
    frame_nm = hourly_means(__import__("pandas").DataFrame(events))
    normal_model = fit_normal_model(frame_nm)
    for n in (1_000, 10_000, args.big):
        store, srows = filled_store(template, n)
        t_feat = best_of(
            lambda store=store, srows=srows: store.features(srows, normal_model), 2 if n < 50_000 else 1
        )

        def floor(store: WindowStore = store, srows: np.ndarray = srows) -> None:
            for i in range(0, len(srows), 1024):
                b = store.gather(srows[i : i + 1024])
                _ = float(b.sums.sum(dtype=np.float64)) + float(b.counts.sum())

        t_floor = best_of(floor, 2 if n < 50_000 else 1)
        line = f"{t_feat / n * 1e6:.1f} us/turbine (total {t_feat:.2f} s)"
        line += f"; floor gather+sum {t_floor / n * 1e6:.1f} us"
        if n <= 10_000:
            wins = [store.window(f"WT-{i:06d}") for i in range(n)]

            def old_path(wins: list[FeatureWindow] = wins) -> None:
                for i in range(0, len(wins), 2048):
                    feature_matrix([w.snapshot() for w in wins[i : i + 2048]], normal_model)

            t_old = best_of(old_path, 1)
            line += f"; per-window snapshots {t_old / n * 1e6:.1f} us ({t_old / t_feat:.1f}x slower)"
        rows.append((f"features, {n:,} turbines (store {store.nbytes() / 2**20:,.0f} MiB)", line))
        del store

    # --- scoring
    try:
        bundle = load_version(args.registry, args.version) if args.version else load_production(args.registry)
        source = f"registry version {bundle.version}"
    except RegistryError as exc:
        bundle = stand_in_bundle(events)
        source = f"stand-in models ({exc})"
    scorer = BatchScorer(bundle, load_policy())
    window = FeatureWindow.from_bytes(blob)
    now = window.as_of + timedelta(minutes=5)  # type: ignore[operator]
    pool = [(f"WT-{i:05d}", FeatureWindow.from_bytes(blob)) for i in range(10_000)]
    batched: dict[int, float] = {}
    for n in (1, 100, 10_000):
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
