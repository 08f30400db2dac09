"""A restored turbine's recent ids and 10-minute buckets are decoded at first read (``from_aux(lazy=True)``):
the state is the one an eager decode gives, whatever is read first, and a turbine never touched writes
back the aux it was restored from."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest

from common.contracts import SIGNALS, make_event_id
from common.settings import load_settings
from models.features import FeatureWindow
from scorer.processing import BatchProcessor, RawRecord
from scorer.settings import ScorerSettings
from scorer.state import TurbineState

pytestmark = pytest.mark.unit


def _event(tid: str, t: datetime, value: float) -> bytes:
    d: dict[str, object] = {
        "schema_version": 1,
        "event_id": make_event_id(tid, t),
        "turbine_id": tid,
        "site_id": "SITE-A",
        "event_time": t.isoformat(),
    }
    d.update(dict.fromkeys(SIGNALS, None))
    d.update({"power_kw": 1000.0, "wind_speed_ms": 8.0, "gearbox_bearing_temp_c": value, "status_code": 0})
    return orjson.dumps(d)


def _records(values: list[bytes], start: int) -> list[RawRecord]:
    return [
        RawRecord(0, start + i, 1.0, v, "telemetry", orjson.loads(v)["turbine_id"].encode())
        for i, v in enumerate(values)
    ]


T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _processed(n_turbines: int = 6, seed: int = 3) -> BatchProcessor:
    """Turbines with history marks, out-of-order events, pending rescoring, several buckets."""
    rng = random.Random(seed)
    proc = BatchProcessor(load_settings(ScorerSettings))
    t0 = T0
    values = []
    for i in range(40):
        for k in range(n_turbines):
            t = t0 + timedelta(minutes=5 * i + rng.randint(-4, 0), seconds=rng.random() * 30)
            values.append(_event(f"WT-{k}", t, 40.0 + rng.random() * 30))
    for start in range(0, len(values), 37):
        chunk = values[start : start + 37]
        proc.process(_records(chunk, start))
    return proc


def _fields(st: TurbineState) -> dict[str, object]:
    return {
        name: getattr(st, name)
        for name in (
            "turbine_id", "site_id", "partition", "last_ts", "recent", "agg", "history", "last_tier",
            "late", "duplicates", "rescore", "newest_status", "pending",
        )
    }  # fmt: skip


def test_lazy_restore_equals_eager_and_the_loose_decode() -> None:
    proc = _processed()
    assert proc.turbines
    for tid, st in proc.turbines.items():
        aux = st.aux_bytes()
        window = FeatureWindow.from_bytes(st.window.to_bytes())
        eager = TurbineState.from_aux(tid, 1, window, aux)
        loose = TurbineState._from_aux_dict(tid, 1, window, orjson.loads(aux))  # the pre-lazy decode
        for first in ("recent", "agg", "aux_bytes"):
            lazy = TurbineState.from_aux(tid, 1, window, aux, lazy=True)
            assert lazy.site_id == st.site_id and lazy.pending == st.pending and lazy.history == st.history
            if first == "aux_bytes":
                assert lazy.aux_bytes() == aux  # untouched: written back as restored
            else:
                getattr(lazy, first)
            assert _fields(lazy) == _fields(eager) == _fields(loose)
            assert lazy == eager == loose
        assert eager.aux_bytes() == aux and eager.recent == st.recent and eager.agg == st.agg


def test_lazily_restored_processor_continues_as_an_eagerly_restored_one() -> None:
    settings = load_settings(ScorerSettings)
    src = _processed(seed=5)
    stored = [
        SimpleNamespace(
            turbine_id=t, site_id=s.site_id, partition=0, state=s.window.to_bytes(), aux=s.aux_bytes()
        )
        for t, s in src.turbines.items()
    ]
    lazy, eager = BatchProcessor(settings), BatchProcessor(settings)
    assert lazy.restore(stored) == len(stored)  # the worker's path: lazy
    eager.install([TurbineState.restore(w.turbine_id, 0, w.state, w.aux) for w in stored])
    assert all(st._lazy is not None for st in lazy.turbines.values())
    assert all(st._lazy is None for st in eager.turbines.values())
    t0 = T0 + timedelta(minutes=5 * 40)
    more = [_event("WT-1", t0 + timedelta(minutes=m), 55.0) for m in range(0, 60, 7)]
    more += [_event("WT-2", t0 - timedelta(minutes=3), 57.0)]  # out of order, inside the tolerance
    more += [_event("WT-3", t0 - timedelta(minutes=5 * 39), 57.0)]  # late
    more += [_event("WT-4", T0 + timedelta(minutes=5 * 39, seconds=s), 57.0) for s in range(0, 60, 9)]
    outs = [p.process(_records(more, 10_000)) for p in (lazy, eager)]
    assert outs[0].accepted == outs[1].accepted and outs[0].late == outs[1].late == 1
    assert outs[0].agg_rows == outs[1].agg_rows and outs[0].turbine_rows == outs[1].turbine_rows
    assert lazy.turbines["WT-0"]._lazy is not None  # never touched: nothing decoded
    assert lazy.turbines["WT-0"].aux_bytes() == next(w.aux for w in stored if w.turbine_id == "WT-0")
    for tid, st in eager.turbines.items():
        got = lazy.turbines[tid]
        assert got.aux_bytes() == st.aux_bytes(), tid
        assert got.window.to_bytes() == st.window.to_bytes(), tid
        assert _fields(got) == _fields(st), tid


def test_loose_or_old_aux_is_read_as_before() -> None:
    window = FeatureWindow.from_bytes(_processed(1).turbines["WT-0"].window.to_bytes())
    variants = [
        {"v": 1, "site": "S", "last": 5, "recent": {"a": 1, "b": 2.5}, "agg": {"600": [1, 2.0]}},  # ints
        {"v": 1, "site": "S", "last": None, "recent": None, "hist": [1, 2, 3], "late": 2.0},  # loose types
        {"v": 1, "site": "S", "tier": "high", "extra": {"x": [1]}, "rs": [3.5, 1], "pend": True},
        {"site": "S", "v": 1, "ns": 2, "dup": 4, "recent": {"x": 1.0}},  # another key order
    ]
    for data in variants:
        aux = orjson.dumps(data)
        want = TurbineState._from_aux_dict("WT", 0, window, data)
        for lazy in (False, True):
            assert TurbineState.from_aux("WT", 0, window, aux, lazy=lazy) == want


@pytest.mark.parametrize(
    "aux, match",
    [
        (b'{"v": 2, "site": "S"}', "unsupported checkpoint aux format 2"),
        (b'{"site": "S"}', "unsupported checkpoint aux format None"),
        (b'{"v": 1, "site": "S", "recent": {"a": 1', None),
        (b"\x00\xff", None),
    ],
)
def test_bad_aux_is_refused_at_restore(aux: bytes, match: str | None) -> None:
    window = FeatureWindow.from_bytes(_processed(1).turbines["WT-0"].window.to_bytes())
    with pytest.raises(ValueError, match=match):
        TurbineState.from_aux("WT-9", 0, window, aux, lazy=True)


def test_corrupt_buckets_are_named_at_first_read() -> None:
    window = FeatureWindow.from_bytes(_processed(1).turbines["WT-0"].window.to_bytes())
    st = TurbineState.from_aux("WT-9", 0, window, b'{"v":1,"site":"S","agg":{"600":"x"}}', lazy=True)
    assert st.site_id == "S"
    with pytest.raises(ValueError, match="turbine WT-9: corrupted checkpoint aux"):
        _ = st.agg
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = st.nope  # type: ignore[attr-defined]


def test_times_decode_to_the_same_doubles() -> None:
    rng = random.Random(11)
    window = FeatureWindow.from_bytes(_processed(1).turbines["WT-0"].window.to_bytes())
    for _ in range(3000):
        x = rng.choice([rng.random() * 2e9, rng.uniform(-1e300, 1e300), math.ldexp(rng.random(), -1070), 0.1])
        aux = orjson.dumps({"v": 1, "site": "S", "last": x, "hist": [x, -x, "low"], "rs": [x, 0]})
        st = TurbineState.from_aux("WT", 0, window, aux, lazy=True)
        assert st.last_ts == x and st.history is not None and st.history.score == -x and st.rescore.ts == x  # type: ignore[union-attr]


@pytest.mark.parametrize("last_tier", [None, "high"])
@pytest.mark.parametrize("pending", [False, True])
def test_fast_restore_of_a_bare_aux_equals_the_constructor(last_tier: str | None, pending: bool) -> None:
    """``from_aux`` writes the row's columns directly (not through ``cls(...)``): a state without marks,
    tier or events restores to the fields the constructor gives (the columns' defaults included)."""
    window = FeatureWindow()
    st = TurbineState("WT-BARE", "SITE-Z", 2, window, last_tier=last_tier, pending=pending, late=3)
    aux = st.aux_bytes()
    target = FeatureWindow()
    fast = TurbineState.from_aux("WT-BARE", 2, target, aux, lazy=True)
    built = TurbineState._from_aux_dict("WT-BARE", 2, FeatureWindow(), orjson.loads(aux))
    assert _fields(fast) == _fields(built)
    assert fast.history is None and fast.rescore is None and fast.last_ts == -math.inf
    assert fast.compacted_at == -math.inf and fast.aux_bytes() == aux
