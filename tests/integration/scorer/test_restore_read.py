"""The streamed checkpoint read (``Sink.load_partitions_streamed``) gives what the read-all path gives,
history marks included (each window's newest ``stream`` row, now probed in the same rows), on the real
PostgreSQL; and a worker's restore of it equals a restore of the read-all rows (no Kafka, ~10 s)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from common.rows import HistoryRow, WindowRow
from models.features import TRACKED_SIGNALS, FeatureWindow
from scorer.ports import StoredWindow
from scorer.processing import BatchProcessor
from scorer.settings import ScorerSettings
from scorer.sink import Sink
from scorer.state import TurbineState

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)
GROUP, TOPIC = "g-restore", "telemetry-restore"


def _window(tid: str, hours: int) -> bytes:
    w = FeatureWindow(tid)
    for h in range(hours):
        w.update({"event_time": (T0 + timedelta(hours=h)).timestamp(), "power_kw": 100.0 + h})
    return w.to_bytes()


def _hist(tid: str, hours: int, trigger: str, score: float, tier: str) -> HistoryRow:
    return HistoryRow(
        time=T0 + timedelta(hours=hours),
        turbine_id=tid,
        trigger=trigger,
        score=score,
        tier=tier,
        probability=None,
        ttf_days=None,
        ttf_low_days=None,
        ttf_high_days=None,
        model_version="v1",
        run_id=None,
        reasons="[]",
        data_quality="{}",
        calibration_version=None,
    )


def _seed(sink: Sink) -> None:
    windows = []
    for i in range(11):
        tid = f"WT-{i:02d}"
        st = TurbineState(tid, f"SITE-{i % 2}", i % 3, FeatureWindow(tid))
        windows.append(
            WindowRow(
                consumer_group=GROUP,
                turbine_id=tid,
                site_id=st.site_id,
                topic=TOPIC,
                partition=i % 3,
                last_event_time=T0,
                state=_window(tid, 1 + i),
                aux=st.aux_bytes(),
            )
        )
    sink.write_checkpoint(TOPIC, windows, {0: 17, 1: 4, 2: 99})
    history = [
        _hist("WT-00", 1, "stream", 10.0, "low"),
        _hist("WT-00", 5, "stream", 55.5, "high"),  # the newest stream row: the mark
        _hist("WT-00", 9, "sweep", 99.0, "critical"),  # newer, but a sweep: not a mark
        _hist("WT-01", 3, "stream", 20.0, "moderate"),
        _hist("WT-03", 2, "sweep", 5.0, "low"),  # sweeps only: no mark
        _hist("WT-04", 7, "stream", 40.0, "moderate"),
        _hist("WT-99", 1, "stream", 1.0, "low"),  # no checkpoint: never read by a partition restore
    ]
    sink.run(lambda c: sink.write_rows(c, HistoryRow, history))


def _key(w: StoredWindow) -> tuple[str, str, int, bytes, bytes]:
    return (w.turbine_id, w.site_id, w.partition, bytes(w.state), bytes(w.aux))


@pytest.mark.parametrize("chunk", [1, 3, 1024])
def test_streamed_read_equals_read_all_with_marks(fresh_database: Callable[[str], str], chunk: int) -> None:
    url = fresh_database("restoreread")
    sink = Sink(url, "w", GROUP)
    try:
        _seed(sink)
        offs, rows, marks = sink.load_partitions(TOPIC, [0, 1])
        counts: list[int] = []
        chunks: list[list[StoredWindow]] = []
        s_offs, s_marks = sink.load_partitions_streamed(TOPIC, [0, 1], counts.append, chunks.append, chunk)
        by_id = sink.run(lambda c: Sink._history_marks(c, [w.turbine_id for w in rows]))
    finally:
        sink.close()
    assert s_offs == offs == {0: 17, 1: 4}
    streamed = [w for part in chunks for w in part]
    assert counts == [len(rows)] == [8]  # WT-00..10 on partitions 0 and 1
    assert all(0 < len(part) <= chunk for part in chunks)
    assert sorted(map(_key, streamed)) == sorted(map(_key, rows))
    assert s_marks == marks == by_id
    assert set(s_marks) == {"WT-00", "WT-01", "WT-04"}
    assert (s_marks["WT-00"].score, s_marks["WT-00"].tier) == (55.5, "high")
    assert s_marks["WT-00"].ts == (T0 + timedelta(hours=5)).timestamp()


def test_restore_of_streamed_rows_equals_restore_of_read_all(
    fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    url = fresh_database("restorerows")
    sink = Sink(url, "w", GROUP)
    try:
        _seed(sink)
        _offs, rows, marks = sink.load_partitions(TOPIC, [0, 1, 2])
        chunks: list[list[StoredWindow]] = []
        _s_offs, s_marks = sink.load_partitions_streamed(TOPIC, [0, 1, 2], lambda n: None, chunks.append, 4)
    finally:
        sink.close()
    settings = ScorerSettings(
        kafka_bootstrap_servers="127.0.0.1:1",
        database_url=url,
        telemetry_topic=TOPIC,
        dead_letter_topic=TOPIC + "-dlq",
        command_topic=TOPIC + "-cmd",
        data_dir=tmp_path,
    )
    plain, streamed = BatchProcessor(settings), BatchProcessor(settings)
    plain.restore(rows, marks)
    for part in chunks:
        streamed.restore(part)
    streamed.install([], s_marks)

    def state(p: BatchProcessor) -> dict[str, tuple[bytes, bytes, object]]:
        return {t: (s.window.to_bytes(), s.aux_bytes(), s.history) for t, s in sorted(p.turbines.items())}

    assert len(plain.turbines) == 11
    assert state(streamed) == state(plain)
    assert plain.turbines["WT-00"].history is not None and plain.turbines["WT-00"].history.score == 55.5
    # untouched turbines write back exactly what was read (the aux too when no newer mark was raised)
    by_id = {w.turbine_id: w for w in rows}
    for tid, (window, aux, _mark) in state(streamed).items():
        assert window == bytes(by_id[tid].state), tid
        if tid not in s_marks:
            assert aux == bytes(by_id[tid].aux), tid


def test_windows_are_stored_in_their_rows(fresh_database: Callable[[str], str]) -> None:
    """Migration 0009: a week-long window (~7.7 KB) stays in its heap row (no TOAST probes at restore),
    the aux goes out of line, and both read back byte for byte."""
    url = fresh_database("restorestorage")
    rng = np.random.default_rng(7)
    signals = TRACKED_SIGNALS[:8]  # 8 noisy signals of 12: a ~7.2 KB state, as the bench's (7.7 KB)
    w = FeatureWindow("WT-BIG")
    for k in range(7 * 24 * 6):
        values = rng.normal(50, 5, len(signals)).tolist()
        w.update(
            {"event_time": (T0 + timedelta(minutes=10 * k)).timestamp()}
            | dict(zip(signals, values, strict=True))
        )
    state = w.to_bytes()
    assert 6_000 < len(state) < 8_100
    st = TurbineState("WT-BIG", "SITE", 0, w)
    rows = [WindowRow(GROUP, f"WT-{i:03d}", "SITE", TOPIC, 0, T0, state, st.aux_bytes()) for i in range(20)]
    sink = Sink(url, "w", GROUP)
    try:
        sink.write_checkpoint(TOPIC, rows, {0: 1})
        chunks: list[list[StoredWindow]] = []
        sink.load_partitions_streamed(TOPIC, [0], lambda n: None, chunks.append, 8)
    finally:
        sink.close()
    with psycopg.connect(url) as conn:
        storage = dict(
            conn.execute(
                "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'scorer_windows'::regclass "
                "AND attname IN ('state', 'aux')"
            ).fetchall()
        )
        heap = conn.execute("SELECT pg_relation_size('scorer_windows')").fetchone()
    assert storage == {"state": "m", "aux": "e"}
    assert heap is not None and heap[0] >= 20 * 7_000  # one window per heap page, not a TOAST pointer
    got = sorted((w.turbine_id, bytes(w.state), bytes(w.aux)) for part in chunks for w in part)
    assert got == sorted((r.turbine_id, r.state, r.aux) for r in rows)
