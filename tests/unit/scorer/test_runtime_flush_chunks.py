"""The rescore flush timer drains the overdue turbines in chunks of ``rescore_flush_max_per_batch``,
oldest first, releasing the lock between chunks: a batch that arrives meanwhile waits for one chunk,
not for the whole pending set (scorer/coalescing.py, scorer/ingest.py ``flush_rescores``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.unit.scorer.runtime_helpers import events, make_runtime

pytestmark = pytest.mark.unit

IDS = [f"WT-{i}" for i in range(7)]


@pytest.fixture(scope="module")
def tiny_scorer(tmp_path_factory: pytest.TempPathFactory) -> object:
    from models.registry import load_version, save_version
    from models.scoring import BatchScorer
    from tests.unit.models.conftest import tiny_models

    reg = tmp_path_factory.mktemp("registry")
    save_version(reg, tiny_models(), {"metrics": {}}, version="v1")
    return BatchScorer(load_version(reg, "v1"))


def test_the_flush_timer_writes_chunks_and_lets_a_batch_in_between(
    tmp_path: Path, tiny_scorer: object
) -> None:
    rt, sink = make_runtime(tmp_path)
    rt.settings = rt.settings.model_copy(
        update={
            "rescore_min_event_interval_s": 3600.0,
            "rescore_flush_s": 0.01,
            "rescore_flush_max_per_batch": 3,
        }
    )
    rt.processor.settings = rt.settings
    rt.holder.scorer = tiny_scorer  # type: ignore[assignment]

    async def run() -> None:
        await rt.handle_batch(events([(t, 0) for t in IDS]))  # first scores
        await rt.handle_batch(events([(t, 1) for t in IDS], start=len(IDS)))  # all deferred
        await rt.ingest.drain()
        assert list(rt.processor.pending) == IDS and sink.batches[-1].deferred == len(IDS)
        time.sleep(0.02)  # every one is overdue now
        flush = asyncio.ensure_future(rt.flush_rescores())
        await asyncio.sleep(0)  # the timer holds the lock for its first chunk
        await rt.handle_batch(events([("WT-NEW", 0)], start=2 * len(IDS)))
        await flush
        await rt.ingest.drain()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    writes = sink.batches[2:]
    flushed = [[r.turbine_id for r in b.state_rows if r.turbine_id != "WT-NEW"] for b in writes]
    assert [b.events for b in writes] == [0, 1, 0]  # chunk, the batch (it flushed a chunk too), chunk
    assert flushed == [IDS[:3], IDS[3:6], IDS[6:]]  # oldest first, at most 3 a write, each once
    assert writes[1].state_rows[0].turbine_id == "WT-NEW"  # its own first score
    assert not rt.processor.pending
    assert all(
        r.last_event_time == rt.processor.turbines[r.turbine_id].window.as_of
        for b in writes
        for r in b.state_rows
    )
