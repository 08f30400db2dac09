"""``TurbineState.from_aux_many`` (a restore's bookkeeping a column at a time) gives exactly what
``from_aux(lazy=True)`` of each turbine gives: every book column of every row, every state field, the
same errors; rows in one run or scattered, rows reused (buckets freed), auxes of another shape."""

from __future__ import annotations

import math

import orjson
import pytest

from models.features import FeatureWindow
from models.window_store import WindowStore
from scorer.book import _COLUMNS, book_for
from scorer.state import AUX_FORMAT, TurbineState

pytestmark = pytest.mark.unit

FIELDS = (
    "turbine_id", "site_id", "partition", "last_ts", "recent", "agg", "history", "last_tier", "late",
    "duplicates", "rescore", "newest_status", "pending", "compacted_at",
)  # fmt: skip


def _aux(i: int) -> bytes:
    """Auxes as ``aux_bytes`` writes them, every optional field present or not."""
    return orjson.dumps(
        {
            "v": AUX_FORMAT,
            "site": f"SITE-{i % 3}",
            "last": None if i % 5 == 0 else 1_767_600_000.0 + i,
            "recent": {} if i % 2 else {f"{i:08x}-0000-4000-8000-000000000000": 1_767_600_000.5 + i},
            "agg": {} if i % 3 else {"1767600000": [1.0] + [float(i)] * 9 + [1.0] * 9},
            "hist": None if i % 4 == 0 else [1_767_500_000.0 + i, 0.25 * (i % 4), "moderate"],
            "tier": None if i % 6 == 0 else ("high" if i % 2 else "low"),
            "late": i % 7,
            "dup": i % 11,
            "rs": None if i % 3 == 1 else [1_767_599_000.0 + i, i % 4],
            "ns": i % 3,
            "pend": i % 2 == 0,
        }
    )


def _book_rows(store: WindowStore, rows: list[int]) -> dict[str, list[object]]:
    book = book_for(store)
    return {name: [getattr(book, name)[r] for r in rows] for name in _COLUMNS}


def _fields(st: TurbineState) -> dict[str, object]:
    return {name: getattr(st, name) for name in FIELDS}


def _dirty(store: WindowStore, rows: list[int]) -> None:
    """Rows that held another turbine: buckets, marks, counters (a restore must reset all of it)."""
    for r in rows:
        st = TurbineState.from_aux("OLD", 2, FeatureWindow.view(store, r), _aux(3))
        st.last_ts = 5.0
        st.compacted_at = 9.0
        assert st.agg  # buckets in the pool


@pytest.mark.parametrize("scatter", [False, True])
def test_many_equals_one_by_one(scatter: bool) -> None:
    n = 40
    ids = [f"WT-{i:03d}" for i in range(n)]
    parts = [i % 3 for i in range(n)]
    auxes = [_aux(i) for i in range(n)]
    results = []
    for many in (False, True):
        store = WindowStore(4)
        store.rows_for([f"X{i}" for i in range(2 * n)])
        rows = list(range(2 * n - 1, 0, -2)) if scatter else list(range(5, 5 + n))
        _dirty(store, rows[::3])
        if many:
            states = TurbineState.from_aux_many(ids, parts, store, rows, auxes)
        else:
            view = FeatureWindow.view
            states = [
                TurbineState.from_aux(t, p, view(store, r), a, lazy=True)
                for t, p, r, a in zip(ids, parts, rows, auxes, strict=True)
            ]
        book = _book_rows(store, rows)
        pool = (len(book_for(store).b_start), book_for(store)._b_free)
        assert [st.window.row for st in states] == rows
        results.append((book, pool, [_fields(st) for st in states]))
    assert results[0] == results[1]
    assert any(math.isinf(v) for v in results[1][0]["last_ts"])  # a missing "last" kept its default


def test_another_shape_goes_one_by_one_and_errors_are_the_same() -> None:
    store = WindowStore(8)
    rows = [int(r) for r in store.rows_for([f"X{i}" for i in range(6)])]
    loose = orjson.dumps({"v": AUX_FORMAT, "site": "S", "late": 2.0, "recent": {"a": 1}})  # loose types
    auxes = [_aux(1), loose, _aux(2)]
    states = TurbineState.from_aux_many(["A", "B", "C"], [0, 1, 2], store, rows[:3], auxes)
    assert [st.late for st in states] == [1, 2, 2] and states[1].recent == {"a": 1.0}
    bad = orjson.dumps({**orjson.loads(_aux(4)), "v": 99})
    with pytest.raises(ValueError, match="turbine E: unsupported checkpoint aux format 99"):
        TurbineState.from_aux_many(["D", "E"], [0, 0], store, rows[3:5], [_aux(5), bad])
    with pytest.raises(orjson.JSONDecodeError):  # not JSON at all: what from_aux raises
        TurbineState.from_aux_many(["F"], [0], store, rows[5:6], [b"\xff\x00garbage"])
