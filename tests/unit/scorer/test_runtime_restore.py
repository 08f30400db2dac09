"""Restore: partition windows, history marks and offsets installed; moved turbines restored per turbine;
a replay after a restore skips what the checkpoint already holds and ends in the same windows."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from common.rows import HistoryRow
from scorer.ingest import FetchedBatch
from scorer.processing import BatchProcessor
from scorer.runtime import ScorerRuntime
from tests.unit.scorer.fakes import FakeSink
from tests.unit.scorer.runtime_helpers import T0, events, make_runtime

pytestmark = pytest.mark.unit


def _run(rt: ScorerRuntime, *batches: list[FetchedBatch], checkpoint: bool = True) -> None:
    async def go() -> None:
        for b in batches:
            await rt.handle_batch(b)
        if checkpoint:
            await rt.checkpoint()
        await rt.ingest.drain()

    try:
        asyncio.run(go())
    finally:
        rt.close()


def _reference(batches: list[list[FetchedBatch]]) -> BatchProcessor:
    """One uninterrupted processor fed every event once."""
    rt, _ = make_runtime(Path("/nonexistent-registry"))
    proc = rt.processor
    rt.close()
    for b in batches:
        proc.process([r for fetched in b for r in fetched.records])
    return proc


def test_restore_installs_partition_windows_offsets_and_history_marks(tmp_path: Path) -> None:
    sink = FakeSink()
    old0 = events([("WT-1", 10 * i) for i in range(5)] + [("WT-2", 0)])
    old1 = events([("WT-3", 0), ("WT-3", 10)], partition=1)
    rt, _ = make_runtime(tmp_path, sink)
    _run(rt, old0, old1)
    assert {(t, p): o for (t, p), o in sink.offsets.items()} == {("telemetry", 0): 6, ("telemetry", 1): 2}
    # A stream row written after that checkpoint (then a crash): newer than the checkpointed mark.
    newer = T0 + timedelta(hours=3)
    sink.rows.setdefault("score_history", []).append(
        HistoryRow(
            time=newer,
            turbine_id="WT-1",
            trigger="stream",
            score=71.0,
            tier="high",
            probability=0.5,
            ttf_days=None,
            ttf_low_days=None,
            ttf_high_days=None,
            model_version="v1",
            run_id=None,
            reasons="[]",
            data_quality="{}",
            calibration_version=None,
        )
    )

    rt2, _ = make_runtime(tmp_path, sink)
    # Replay from offset 3 of partition 0 (Kafka redelivers from the committed offset or before).
    replay = events([("WT-1", 30), ("WT-1", 40), ("WT-2", 0), ("WT-1", 50)], start=3)
    _run(rt2, replay)
    proc = rt2.processor
    assert set(proc.turbines) == {"WT-1", "WT-2"}  # partition 0's windows; WT-3 is on partition 1
    assert proc.next_offset[0] == 7 and 1 not in proc.next_offset
    assert sink.batches[-1].skipped_replayed == 3 and sink.batches[-1].accepted == 1
    mark = proc.turbines["WT-1"].history
    assert mark is not None and (mark.ts, mark.score, mark.tier) == (newer.timestamp(), 71.0, "high")
    ref = _reference([old0, events([("WT-1", 50)], start=6)])
    for tid in ("WT-1", "WT-2"):
        assert proc.turbines[tid].window.to_bytes() == ref.turbines[tid].window.to_bytes()
        aux, ref_aux = (orjson.loads(p.turbines[tid].aux_bytes()) for p in (proc, ref))
        assert aux.pop("hist") == ([newer.timestamp(), 71.0, "high"] if tid == "WT-1" else None)
        assert ref_aux.pop("hist") is None and aux == ref_aux  # the reference scored nothing


def test_a_turbine_arriving_on_another_partition_is_restored_per_turbine(tmp_path: Path) -> None:
    sink = FakeSink()
    before = events([("WT-9", 10 * i) for i in range(4)], partition=1)
    rt, _ = make_runtime(tmp_path, sink)
    _run(rt, before)
    # After a partition-count change WT-9 hashes to partition 2, which has no checkpoint of it.
    after = events([("WT-9", 40), ("WT-9", 50)], partition=2)
    rt2, _ = make_runtime(tmp_path, sink)
    _run(rt2, after)
    st = rt2.processor.turbines["WT-9"]
    assert st.partition == 2 and st.window.n_events == 6
    assert sink.calls.count("load_turbines") == 2  # once per runtime, for the unknown turbine
    ref = _reference([before, events([("WT-9", 40), ("WT-9", 50)], partition=1, start=4)])
    assert st.window.to_bytes() == ref.turbines["WT-9"].window.to_bytes()
    assert sink.windows["WT-9"][1].partition == 2  # the next checkpoint moves it to its new partition


def test_turbines_in_memory_are_not_restored_again(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    _run(
        rt,
        events([("WT-1", 0)]),
        events([("WT-1", 10)], start=1),
        events([("WT-1", 20), ("WT-5", 0)], start=2),
        checkpoint=False,
    )
    assert sink.calls.count("load_partitions") == 1
    assert sink.calls.count("load_turbines") == 2  # WT-1 at the first batch, WT-5 at the third
