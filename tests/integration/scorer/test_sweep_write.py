"""The sweep's write on the real PostgreSQL (no Kafka, ~10 s): one binary COPY per part (and one of its
distinct JSON documents) stores exactly
what the generic row writes store, in one transaction that a failed scoring rolls back entirely, and a
replay of the same rows changes nothing."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from common.rows import HistoryRow, StateRow
from scorer.sink import Sink, SweepSummary, sweep_copy_data, sweep_rows_pair

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
RUN = str(uuid.uuid4())
HISTORY = (
    "SELECT turbine_id, time, trigger, score, tier, probability, ttf_days, ttf_low_days, ttf_high_days, "
    "model_version, run_id::text, reasons, data_quality, calibration_version FROM score_history "
    "ORDER BY turbine_id"
)
STATE = (
    "SELECT turbine_id, site_id, as_of, trigger, score, tier, probability, ttf_days, ttf_low_days, "
    "ttf_high_days, model_version, run_id::text, reasons, data_quality, last_event_time, "
    "calibration_version FROM turbine_state ORDER BY turbine_id"
)


def _rows(prefix: str, n: int, run_id: str | None = RUN) -> tuple[list[HistoryRow], list[StateRow]]:
    hist, state = [], []
    for i in range(n):
        shared: dict[str, Any] = {
            "turbine_id": f"{prefix}-{i:03d}" if i % 5 else f"{prefix}-ü'\"\\{i}",
            "trigger": "sweep",
            "score": round(i * 7.31 % 100, 2),
            "tier": ("low", "moderate", "high", "critical", "unknown")[i % 5],
            "probability": None if i % 4 == 0 else i / 97,
            "ttf_days": None if i % 3 == 0 else 30.0 - i / 10,
            "ttf_low_days": 1e-300 if i == 1 else 0.5,
            "ttf_high_days": 30.0,
            "model_version": "v20261129-1",
            "run_id": run_id,
            "reasons": orjson.dumps(
                [{"indicator": "x", "text": f"naïve “quote” \\ {i}", "value": i}]
            ).decode(),
            "data_quality": orjson.dumps({"frozen_signals": {}, "nested": {"a": [1, None, 2.5]}}).decode(),
            "calibration_version": None if i % 2 else "c1",
        }
        as_of = T0 - timedelta(days=i % 2)
        hist.append(HistoryRow(time=as_of, **shared))
        state.append(
            StateRow(
                site_id="SITE-Ω" if i % 2 else "SITE-A",
                as_of=as_of,
                last_event_time=None if i == 2 else as_of - timedelta(minutes=i),
                **shared,
            )
        )
    order = sorted(range(n), key=lambda k: hist[k].turbine_id)
    return [hist[k] for k in order], [state[k] for k in order]


def _seed(url: str, hist: list[HistoryRow], state: list[StateRow], run_id: str = RUN) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for s in state:
            conn.execute(
                "INSERT INTO turbines (turbine_id, site_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (s.turbine_id, s.site_id),
            )
        conn.execute(
            "INSERT INTO sweep_runs (run_id, trigger, requested_at, started_at, status) "
            "VALUES (%s, 'on_demand', now(), now(), 'running') ON CONFLICT DO NOTHING",
            (run_id,),
        )


def _tables(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return conn.execute(HISTORY).fetchall(), conn.execute(STATE).fetchall()


def _write(sink: Sink, path: str, hist: list[HistoryRow], state: list[StateRow]) -> None:
    try:
        if path == "generic":  # unpaired rows (one state row short): each table by its own writes
            sink.finish_sweep(RUN, "succeeded", 23, {"low": 23}, "v", None, 5.0, hist, state[:-1])
            sink.run(lambda c: sink.write_rows(c, StateRow, state[-1:]))
        else:
            parts = [(hist[:10], state[:10]), (hist[10:], state[10:])]
            sink.write_sweep(RUN, "v", iter(parts), lambda: SweepSummary(23, {"low": 23}, 5.0))
    finally:
        sink.close()


def test_one_copy_per_part_stores_what_the_generic_writes_store(fresh_database: Callable[[str], str]) -> None:
    hist, state = _rows("WT", 23)
    assert sweep_rows_pair(hist, state)
    assert not sweep_rows_pair(hist, [dataclasses.replace(state[0], score=1.5), *state[1:]])
    data, docs = sweep_copy_data(hist, state)
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00") and docs.startswith(b"PGCOPY\n\xff\r\n\x00")
    # each distinct JSON document goes once (the rows share their data quality), not in the rows
    assert docs.count(hist[0].data_quality.encode()) == 1 and hist[0].data_quality.encode() not in data
    assert all(docs.count(h.reasons.encode()) == 1 for h in hist)
    got = {}
    for path in ("generic", "copy"):
        url = fresh_database(f"sweepw_{path}")
        _seed(url, hist, state)
        _write(Sink(url, "t", "t"), path, hist, state)
        got[path] = _tables(url)
        with psycopg.connect(url) as conn:
            run = conn.execute("SELECT status, turbines_scored, tier_counts FROM sweep_runs").fetchone()
            assert run == ("succeeded", 23, {"low": 23})
    assert got["copy"] == got["generic"]
    assert len(got["copy"][0]) == 23 and len(got["copy"][1]) == 23


def test_a_failed_scoring_leaves_nothing_and_a_replay_changes_nothing(
    fresh_database: Callable[[str], str],
) -> None:
    url = fresh_database("sweepw_tx")
    hist, state = _rows("WT", 12)
    _seed(url, hist, state)
    sink = Sink(url, "t", "t")

    def failing() -> Iterator[tuple[list[HistoryRow], list[StateRow]]]:
        yield hist[:6], state[:6]
        raise ValueError("scoring failed after the first part")

    try:
        with pytest.raises(ValueError, match="first part"):
            sink.write_sweep(RUN, "v", failing(), lambda: SweepSummary(12, {}, 1.0))
        assert _tables(url) == ([], [])
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT status FROM sweep_runs").fetchone() == ("running",)
        done = SweepSummary(12, {"low": 12}, 1.0)
        sink.write_sweep(RUN, "v", iter([(hist, state)]), lambda: done)  # the stage survives a rollback
        first = _tables(url)
        assert len(first[0]) == 12
        # The same rows again: no history row added, no state row rewritten.
        assert sink.run(lambda c: sink.write_sweep_rows(c, hist, state)) == (0, 0)
        # A newer run of the same data time: history kept (same key), state takes the new run id only
        # where the event time does not go back.
        rerun = str(uuid.uuid4())
        _seed(url, hist, state, rerun)
        h2, s2 = _rows("WT", 12, rerun)
        s2 = [dataclasses.replace(s, last_event_time=None) if k == 0 else s for k, s in enumerate(s2)]
        k = next(k for k, s in enumerate(s2) if k and s.last_event_time is not None)
        was = s2[k].last_event_time
        assert was is not None
        s2[k] = dataclasses.replace(s2[k], last_event_time=was - timedelta(hours=1))
        inserted, changed = sink.run(lambda c: sink.write_sweep_rows(c, h2, s2))
        assert inserted == 0 and changed == 11  # s2[k]'s event time went back: kept
    finally:
        sink.close()
    assert _tables(url)[0] == first[0]
