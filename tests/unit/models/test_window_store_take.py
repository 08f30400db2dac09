"""``WindowStore.take``: the copy a checkpoint takes under the lock encodes to exactly the bytes of the
live store (random stores: several count widths, states of formats 2, 3 and 4 restored, rows reused)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.features import AUX_SIGNALS, TRACKED_SIGNALS
from models.window_store import _HEADER4, _HEADER4_DTYPE, WindowStore

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
K = len(TRACKED_SIGNALS)
T0 = 1_714_521_600.0  # 2024-05-01 UTC


def _ingest(store: WindowStore, rng: np.random.Generator, tids: list[str], n: int, step: float) -> None:
    who = rng.choice(len(tids), n)
    rows = store.rows_for(tids)[who]
    ts = T0 + np.sort(rng.uniform(0, step * n, n)) + rng.choice([0.0, -4000.0], n, p=[0.9, 0.1])
    vals = rng.normal(60, 30, (n, K))
    vals[rng.random((n, K)) < 0.1] = np.nan
    status = rng.choice([0, 0, 0, 1, 3, 999], n)
    aux = rng.normal(10, 5, (n, len(AUX_SIGNALS[:3])))
    store.ingest(rows, ts, vals, status, aux)


@pytest.mark.parametrize("seed", range(6))
def test_take_encodes_byte_identical_to_the_live_store(seed: int) -> None:
    rng = np.random.default_rng(seed)
    store = WindowStore(int(rng.integers(1, 8)))
    tids = [f"T{i}" for i in range(int(rng.integers(5, 40)))]
    _ingest(store, rng, tids, 3000, 90.0)
    if seed % 2:  # one turbine at 1 Hz for over an hour: the store's counts widen to uint16
        r = store.rows_for(["HZ"])
        n = 4000
        store.ingest(
            np.repeat(r, n),
            T0 + np.arange(n, dtype=float),
            rng.normal(60, 30, (n, K)),
            np.zeros(n, int),
            None,
        )
        assert store.count_dtype == np.uint16
    # states of older formats and of other widths restored into it
    olds = sorted(GOLDEN.glob("window_v[23]_*.bin"))
    store.load_many([f"OLD{i}" for i in range(len(olds))], [p.read_bytes() for p in olds])
    wide = WindowStore(1)
    wr = wide.rows_for(["W32"])
    m = 70_000 if seed == 5 else 300  # a count above 65,535: uint32 width (seed 5)
    wide.ingest(np.repeat(wr, m), np.full(m, T0 + 10.0), rng.normal(60, 30, (m, K)), np.zeros(m, int), None)
    store.load_many(["W32"], wide.to_bytes_many(wr))
    store.remove(tids[:3])  # freed rows, reused below
    _ingest(store, rng, [*tids[3:], "NEW1", "NEW2"], 500, 30.0)
    live = store.turbine_ids()
    rows = store.rows_for(live)
    widths: set[int] = set()
    for pick in (rows, rng.permutation(rows)[: max(1, len(rows) // 3)], rows[:1]):
        taken = store.take(pick)
        assert taken.count_dtype == store.count_dtype and len(taken) == len(pick)
        assert taken.turbine_ids() == [store.turbine_id_of(int(r)) for r in pick]
        want = store.to_bytes_many(pick)
        assert taken.to_bytes_many(np.arange(len(pick))) == want
        widths.update(int(np.frombuffer(b[: _HEADER4.size], dtype=_HEADER4_DTYPE)["flags"][0]) for b in want)
        # the copy is independent: changing the store afterwards changes nothing in it
        _ingest(store, rng, live, 200, 10.0)
        assert taken.to_bytes_many(np.arange(len(pick))) == want
        rows = store.rows_for(live)
    assert len(widths) == (3 if seed == 5 else 2)  # the count widths coded in one call: uint8 and wider
