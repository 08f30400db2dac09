"""Writes ``kernel_fixture.npz``: features and data-quality sums of seeded random stores.

    .venv/bin/python tests/unit/models/golden/make_kernel_fixture.py

First generated from the numpy feature kernels (commit before the fused numba kernel replaced them),
so ``test_feature_kernel.py`` checks the numba kernel against the numpy results: random events with
NaN / inf readings, gaps longer than the ring, statuses, out-of-order and late events, repairs, frozen
runs, empty rows, a one-event row, a one-row store; with and without a normal-behaviour model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from models.features import NBM_TARGETS, TRACKED_SIGNALS, NormalModel, WindowStore  # noqa: E402

K = len(TRACKED_SIGNALS)
T0 = 1_714_521_600.0  # 2024-05-01 UTC
N_ROWS = 48
STATUSES = (0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 999)


def normal_model() -> NormalModel:
    rng = np.random.default_rng(5)
    coef = rng.normal(0, 1, (7, 7)) * np.array([30, 5, 2, 3, 0.6, 1, 0.5])
    grid = np.arange(0.0, 30.01, 0.5)
    return NormalModel(NBM_TARGETS, coef, np.ones(7), grid, np.clip((grid - 3) ** 3 * 3, 0, 2250))


def build_store(seed: int = 7) -> tuple[WindowStore, np.ndarray]:
    """A store of N_ROWS rows fed with seeded random batches (deterministic: same state every run)."""
    rng = np.random.default_rng(seed)
    store = WindowStore(4)
    rows = store.rows_for([f"R{i:02d}" for i in range(N_ROWS)])
    # rows 0-1 stay empty; row 2 gets one event; the others a random history
    scale = rng.uniform(1, 40, (N_ROWS, K))
    level = rng.uniform(-20, 300, (N_ROWS, K))
    clocks = T0 + rng.uniform(0, 7200, N_ROWS)
    store.ingest(rows[[2]], np.array([T0]), level[[2]], np.array([0]), np.full((1, 3), np.nan))
    for batch in range(60):
        n = int(rng.integers(50, 400))
        who = rng.integers(3, N_ROWS, n)
        step = rng.choice([0.0, 60.0, 600.0, 600.0, 600.0, 1800.0, 3600.0, 5400.0], n)
        ts = np.empty(n)
        for i in range(n):
            r = who[i]
            if rng.random() < 0.002:
                clocks[r] += rng.choice([30 * 3600.0, 200 * 3600.0])  # gap (longer than the ring too)
            if rng.random() < 0.05:
                ts[i] = clocks[r] - rng.choice([600.0, 7200.0, 30 * 3600.0, 9 * 86400.0])  # late / old
            else:
                clocks[r] += step[i]
                ts[i] = clocks[r]
        hour = (ts - T0) / 3600.0
        vals = level[who] + scale[who] * np.sin(hour[:, None] / 7.0 + np.arange(K)) + rng.normal(0, 1, (n, K))
        vals[:, 8] = np.clip(vals[:, 8] * 8, 0, 2300)  # power_kw
        vals[:, 10] = np.abs(vals[:, 10]) % 31  # wind_speed_ms
        frozen = who % 5 == 0
        vals[frozen, 1] = 71.5  # a frozen sensor on some rows
        vals[rng.random((n, K)) < 0.04] = np.nan
        odd = rng.random((n, K)) < 0.002
        vals[odd] = rng.choice([np.inf, -np.inf, 1e6, 7e4, 0.0], int(odd.sum()))
        status = rng.choice(STATUSES, n)
        aux = rng.choice([np.nan, 0.0, 45.5, 359.0, 180.25], (n, 3))
        store.ingest(rows[who], ts, vals, status, aux)
        if batch in (20, 45):
            for r in rows[rng.integers(3, N_ROWS, 4)]:
                store.drop_before(int(r), float(clocks[r] - rng.uniform(0, 40) * 3600))
    return store, rows


def compute(store: WindowStore, rows: np.ndarray) -> dict[str, np.ndarray]:
    nm = normal_model()
    one = WindowStore(1)
    one_row = one.rows_for(["only"])
    one.copy_rows(store, rows[[10]], one_row)
    b = store.gather(rows, aux=True)
    return {
        "features_nm": store.features(rows, nm),
        "features_nonm": store.features(rows, None),
        "features_one_row": one.features(one_row, nm),
        "dq_ctr24": b.counters[:, -24:].sum(axis=1, dtype=np.int64),
        "dq_cnt24": b.counts[:, -24:].sum(axis=1, dtype=np.int64),
        "dq_events_all": b.counters[:, :, 0].sum(axis=1, dtype=np.int64),
        "dq_coverage24": (b.counters[:, -24:, 0] > 0).sum(axis=1).astype(np.int64),
        "dq_acnt24": b.aux_counts[:, -24:].sum(axis=1, dtype=np.int64),  # type: ignore[index]
    }


def main() -> None:
    store, rows = build_store()
    out = compute(store, rows)
    np.savez_compressed(HERE / "kernel_fixture.npz", **out)
    print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
    main()
