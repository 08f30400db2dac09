"""``BatchProcessor.restore`` of a ``StoredChunk`` (the streamed read's rows: columns, states packed in one
buffer) installs exactly what the same rows as ``StoredWindow`` objects install: the first checkpoint of
a turbine given twice, turbines already in memory untouched, history marks raised, a bad state refused
with nothing of the chunk left in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.features import FeatureWindow
from models.window_store import StatePacker
from scorer.ports import StoredWindow
from scorer.processing import BatchProcessor
from scorer.restore_rows import StoredChunk
from scorer.settings import ScorerSettings
from scorer.state import HistoryMark, TurbineState

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _settings(tmp_path: Path) -> ScorerSettings:
    return ScorerSettings(
        kafka_bootstrap_servers="127.0.0.1:1",
        database_url="postgresql://nobody@127.0.0.1:1/none",
        telemetry_topic="t",
        dead_letter_topic="t-dlq",
        command_topic="t-cmd",
        data_dir=tmp_path,
    )


def _row(tid: str, hours: int, partition: int) -> StoredWindow:
    w = FeatureWindow(tid)
    for h in range(hours):
        w.update({"event_time": (T0 + timedelta(hours=h)).timestamp(), "power_kw": 50.0 + h})
    st = TurbineState(tid, f"SITE-{partition}", partition, w)
    st.history = HistoryMark((T0 + timedelta(hours=hours - 1)).timestamp(), 12.5, "low")
    return StoredWindow(tid, st.site_id, partition, w.to_bytes(), st.aux_bytes())


def _chunk(rows: list[StoredWindow]) -> StoredChunk:
    packer = StatePacker(256)
    for w in rows:
        packer.add(w.state)
    return StoredChunk(
        [w.turbine_id for w in rows],
        [w.site_id for w in rows],
        [w.partition for w in rows],
        packer.take(),
        [w.aux for w in rows],
    )


def _state(p: BatchProcessor) -> dict[str, tuple[bytes, bytes, int]]:
    return {t: (s.window.to_bytes(), s.aux_bytes(), s.partition) for t, s in sorted(p.turbines.items())}


def test_chunk_restores_as_rows_do(tmp_path: Path) -> None:
    rows = [_row(f"WT-{i}", 2 + i, i % 3) for i in range(9)]
    rows.append(_row("WT-3", 30, 2))  # given twice: the first counts
    held = _row("WT-7", 5, 1)
    marks = {"WT-1": HistoryMark((T0 + timedelta(days=3)).timestamp(), 70.0, "high")}
    plain, packed = BatchProcessor(_settings(tmp_path)), BatchProcessor(_settings(tmp_path))
    for p in (plain, packed):
        p.restore([held])
    n_plain = plain.restore(rows, marks)
    chunk = _chunk(rows)
    assert list(chunk) == rows and len(chunk) == 10
    n_packed = packed.restore(chunk, marks)
    assert n_plain == n_packed == 8
    assert _state(packed) == _state(plain)
    assert packed.turbines["WT-1"].history == marks["WT-1"]
    assert packed.turbines["WT-3"].window.to_bytes() == rows[3].state
    assert packed.store.turbine_ids() == plain.store.turbine_ids()


def test_bad_state_in_a_chunk_leaves_none_of_it(tmp_path: Path) -> None:
    rows = [_row(f"WT-{i}", 3, 0) for i in range(5)]
    bad = rows[3].state[:6] + (13).to_bytes(2, "little") + rows[3].state[8:]  # a header of 13 bins
    rows[3] = StoredWindow("WT-3", "SITE-0", 0, bad, rows[3].aux)
    proc = BatchProcessor(_settings(tmp_path))
    with pytest.raises(ValueError, match="WT-3"):
        proc.restore(_chunk(rows))
    assert proc.turbines == {} and proc.store.turbine_ids() == []


def test_chunk_columns_must_agree() -> None:
    rows = [_row(f"WT-{i}", 3, 0) for i in range(3)]
    good = _chunk(rows)
    with pytest.raises(ValueError, match="3 turbine ids, 2 sites"):
        StoredChunk(good.turbine_ids, good.site_ids[:2], good.partitions, good.states, good.aux)
