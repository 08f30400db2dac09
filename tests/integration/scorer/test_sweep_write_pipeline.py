"""The sweep's pipelined part write on the real PostgreSQL (~5 s): a row the database refuses inside the
pipeline names its table and rolls the whole sweep back; the same sink then writes the next sweep, its
parts one after another through the emptied stage, with exact row counts."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

import psycopg
import pytest

from scorer.sink import Sink, SweepSummary, WriteRejected
from tests.integration.scorer.test_sweep_write import RUN, _rows, _seed, _tables

pytestmark = pytest.mark.integration


def test_a_refused_row_names_its_table_and_the_next_sweep_writes_every_part(
    fresh_database: Callable[[str], str],
) -> None:
    url = fresh_database("sweepw_pipe")
    hist, state = _rows("WP", 30)
    _seed(url, hist, state)
    sink = Sink(url, "t", "t")
    bad_h = [dataclasses.replace(h, score=150.0) if k == 17 else h for k, h in enumerate(hist)]
    bad_s = [dataclasses.replace(s, score=150.0) if k == 17 else s for k, s in enumerate(state)]
    parts = [(bad_h[k : k + 10], bad_s[k : k + 10]) for k in (0, 10, 20)]
    try:
        with pytest.raises(WriteRejected) as err:  # score_history's CHECK (0 <= score <= 100)
            sink.write_sweep(RUN, "v", iter(parts), lambda: SweepSummary(30, {}, 1.0))
        assert err.value.table == "score_history"
        assert _tables(url) == ([], [])  # the first part's rows went with the rollback
        good = [(hist[k : k + 10], state[k : k + 10]) for k in (0, 10, 20)]
        sink.write_sweep(RUN, "v", iter(good), lambda: SweepSummary(30, {"low": 30}, 1.0))
        history, current = _tables(url)
        assert [r[0] for r in history] == [h.turbine_id for h in hist]
        assert [r[0] for r in current] == [s.turbine_id for s in state]
        with psycopg.connect(url) as conn:
            run = conn.execute("SELECT status, turbines_scored FROM sweep_runs").fetchone()
            logged = conn.execute("SELECT count(*) FROM scoring_log WHERE operation = 'sweep'").fetchone()
        assert run == ("succeeded", 30) and logged == (1,)
        # a newer data time: every part inserts its history rows and changes its state rows
        newer = str(uuid.uuid4())
        _seed(url, hist, state, newer)
        h2, s2 = _rows("WP", 30, newer)
        later = [dataclasses.replace(h, time=h.time.replace(year=2027)) for h in h2]
        s_later = [
            dataclasses.replace(s, as_of=h.time, last_event_time=h.time)
            for h, s in zip(later, s2, strict=True)
        ]
        counts = sink.run(
            lambda c: [sink.write_sweep_rows(c, later[k : k + 10], s_later[k : k + 10]) for k in (0, 10, 20)]
        )
        assert counts == [(10, 10)] * 3
    finally:
        sink.close()


def test_rows_of_a_failed_part_are_not_kept_in_the_stage(fresh_database: Callable[[str], str]) -> None:
    """A part refused by turbine_state (no turbines row: foreign key) leaves nothing for the next write."""
    url = fresh_database("sweepw_pipe_fk")
    hist, state = _rows("WF", 8)
    _seed(url, hist[:4], state[:4])  # the other four turbines are unknown to `turbines`
    sink = Sink(url, "t", "t")
    try:
        with pytest.raises(WriteRejected) as err:
            sink.run(lambda c: sink.write_sweep_rows(c, hist, state))
        assert err.value.table == "turbine_state"
        assert sink.run(lambda c: sink.write_sweep_rows(c, hist[:4], state[:4])) == (4, 4)
        assert [len(t) for t in _tables(url)] == [4, 4]
    finally:
        sink.close()
