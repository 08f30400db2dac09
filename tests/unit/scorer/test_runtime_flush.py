"""The rescore flush timer writes the scores coalescing deferred, through the same write pipeline, and
acks nothing (it consumed nothing)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from scorer.ingest import PartitionAck
from tests.unit.scorer.runtime_helpers import committed, events, make_runtime

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tiny_scorer(tmp_path_factory: pytest.TempPathFactory) -> object:
    from models.registry import load_version, save_version
    from models.scoring import BatchScorer
    from tests.unit.models.conftest import tiny_models

    reg = tmp_path_factory.mktemp("registry")
    save_version(reg, tiny_models(), {"metrics": {}}, version="v1")
    return BatchScorer(load_version(reg, "v1"))


def test_deferred_rescoring_is_flushed_by_the_timer(tmp_path: Path, tiny_scorer: object) -> None:
    rt, sink = make_runtime(tmp_path)
    rt.settings = rt.settings.model_copy(
        update={"rescore_min_event_interval_s": 3600.0, "rescore_flush_s": 0.01}
    )
    rt.processor.settings = rt.settings
    rt.holder.scorer = tiny_scorer  # type: ignore[assignment]

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 10 * i) for i in range(6)]))
        await rt.checkpoint()
        await rt.handle_batch(events([("WT-1", 51)], start=6))  # 1 min later: deferred
        await rt.ingest.drain()
        assert "WT-1" in rt.processor.pending and sink.batches[-1].deferred == 1
        assert sink.batches[-1].state_rows == []
        time.sleep(0.02)  # the flush is due after rescore_flush_s of wall time
        await rt.flush_rescores()
        await rt.ingest.drain()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    flushed = sink.batches[-1]
    assert flushed.events == 0 and [r.turbine_id for r in flushed.state_rows] == ["WT-1"]
    assert flushed.state_rows[0].last_event_time == rt.processor.turbines["WT-1"].window.as_of
    assert not rt.processor.pending
    assert committed(rt) == [{0: 6}]  # the deferred batch waits for the next checkpoint
    assert rt.pending_acks == [PartitionAck(0, 7)]
