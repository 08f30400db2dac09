"""The sink writes typed rows identically through both paths (one unnest statement, binary COPY +
staging table) and rewrites only what changed, on the real PostgreSQL (no Kafka, ~10 s)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from common.rows import AggRow, HistoryRow, LatestRow, StateRow, TurbineSeenRow
from scorer.sink import WRITES, Sink

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _history(n: int, prefix: str) -> list[HistoryRow]:
    return [
        HistoryRow(
            time=T0,
            turbine_id=f"{prefix}-{i:05d}",
            trigger="sweep",
            score=float(i % 100),
            tier="low",
            probability=None if i % 3 else 0.25,
            ttf_days=10,
            ttf_low_days=None,
            ttf_high_days=20.5,
            model_version="v1",
            run_id=str(uuid.UUID(int=i + 1)),
            reasons=orjson.dumps([{"indicator": "x", "value": i}]).decode(),
            data_quality=orjson.dumps({"missing_share": 0.5}).decode(),
            calibration_version=None,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("path", ["unnest", "copy"])
def test_both_write_paths_store_the_same_values(fresh_database: Callable[[str], str], path: str) -> None:
    url = fresh_database("sink")
    n = 3 if path == "unnest" else WRITES[HistoryRow].copy_min_rows + 5
    rows = _history(n, path)
    sink = Sink(url, "t", "t")
    try:
        assert sink.run(lambda c: sink.write_rows(c, HistoryRow, rows)) == n
    finally:
        sink.close()
    with psycopg.connect(url) as conn:
        got = conn.execute(
            "SELECT turbine_id, score, probability, ttf_days, ttf_low_days, run_id::text, reasons, "
            "data_quality, jsonb_typeof(reasons) FROM score_history ORDER BY turbine_id"
        ).fetchall()
    want = [
        (
            r.turbine_id,
            r.score,
            r.probability,
            r.ttf_days,
            r.ttf_low_days,
            r.run_id,
            orjson.loads(r.reasons),
            orjson.loads(r.data_quality),
            "array",
        )
        for r in rows
    ]
    assert got == want


def test_only_what_changed_is_rewritten(fresh_database: Callable[[str], str]) -> None:
    url = fresh_database("sinkchg")
    sink = Sink(url, "t", "t")
    seen = [TurbineSeenRow(f"WT-{i}", "SITE", T0) for i in range(3)]
    latest = [LatestRow(f"WT-{i}", T0, '{"power_kw": 1.0}', 0) for i in range(3)]
    agg = [AggRow.of(T0, f"WT-{i}", 2, [1.0] * 9) for i in range(3)]
    state = [
        StateRow(
            turbine_id=f"WT-{i}",
            site_id="SITE",
            as_of=T0,
            trigger="stream",
            score=10.0,
            tier="low",
            probability=None,
            ttf_days=None,
            ttf_low_days=None,
            ttf_high_days=None,
            model_version="v1",
            run_id=None,
            reasons="[]",
            data_quality="{}",
            last_event_time=T0,
            calibration_version=None,
        )
        for i in range(3)
    ]

    def write(cls: type, rows: list) -> int:  # type: ignore[type-arg]
        return sink.run(lambda c: sink.write_rows(c, cls, rows))

    try:
        assert [write(TurbineSeenRow, seen), write(LatestRow, latest)] == [3, 3]
        assert [write(AggRow, agg), write(StateRow, state)] == [3, 3]
        # The same rows again (a replay): nothing rewritten.
        assert [write(TurbineSeenRow, seen), write(LatestRow, latest), write(AggRow, agg)] == [0, 0, 0]
        assert write(StateRow, state) == 0
        # Older event times never move a row back; a newer one moves it forward.
        older = timedelta(hours=-1)
        assert write(TurbineSeenRow, [dataclasses.replace(r, last_event_time=T0 + older) for r in seen]) == 0
        assert (
            write(StateRow, [dataclasses.replace(r, last_event_time=T0 + older, score=99.0) for r in state])
            == 0
        )
        assert write(LatestRow, [dataclasses.replace(r, event_time=T0 + older) for r in latest]) == 0
        newer = [dataclasses.replace(r, last_event_time=T0 + timedelta(hours=1)) for r in seen[:1]]
        assert write(TurbineSeenRow, newer) == 1
        assert write(AggRow, [AggRow.of(T0, "WT-0", 3, [2.0] * 9)]) == 1
    finally:
        sink.close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT max(last_event_time) FROM turbines").fetchone() == (
            T0 + timedelta(hours=1),
        )
        assert conn.execute("SELECT max(score) FROM turbine_state").fetchone() == (10.0,)
        assert conn.execute("SELECT sum(samples) FROM telemetry_agg").fetchone() == (7,)
