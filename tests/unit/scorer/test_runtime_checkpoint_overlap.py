"""A checkpoint is written outside the runtime's lock: batches go on while it commits, it acks only
the offsets its snapshot covered, and a window changed after the snapshot stays dirty."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from common.rows import WindowRow
from scorer.ingest import PartitionAck
from tests.unit.scorer.fakes import FakeSink
from tests.unit.scorer.runtime_helpers import committed, events, make_runtime

pytestmark = pytest.mark.unit


class SlowCheckpointSink(FakeSink):
    """``write_checkpoint`` waits (on its own thread) until the test lets it commit."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write_checkpoint(self, topic: str, windows: Sequence[WindowRow], offsets: dict[int, int]) -> None:
        self.entered.set()
        assert self.release.wait(5), "the test never released the checkpoint write"
        super().write_checkpoint(topic, windows, offsets)


def test_batches_go_on_while_a_checkpoint_commits_and_only_its_snapshot_is_acked(tmp_path: Path) -> None:
    sink = SlowCheckpointSink()
    rt, _ = make_runtime(tmp_path, sink)

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 10 * i) for i in range(6)]))
        ckpt = asyncio.ensure_future(rt.checkpoint())
        while not sink.entered.is_set():
            await asyncio.sleep(0.005)
        # the checkpoint's write is running: the stream is not blocked by it
        await asyncio.wait_for(rt.handle_batch(events([("WT-2", 10 * i) for i in range(4)], start=6)), 5)
        await rt.ingest.drain()
        assert not ckpt.done() and committed(rt) == []
        assert "WT-2" in rt.processor.dirty and "WT-1" not in rt.processor.dirty
        sink.release.set()
        await ckpt
        # acked: the first batch only (the snapshot's offsets); the second waits for the next checkpoint
        assert committed(rt) == [{0: 6}]
        assert rt.pending_acks == [PartitionAck(0, 10)]
        assert sink.checkpoints == [(["WT-1"], {0: 6})]
        assert rt.processor.dirty == {"WT-2"}  # changed after the snapshot: still dirty
        await rt.checkpoint()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert committed(rt) == [{0: 6}, {0: 10}]
    assert rt.pending_acks == [] and not rt.processor.dirty
    assert sink.checkpoints[-1] == (["WT-2"], {0: 10})


def test_the_checkpoint_commits_after_the_batch_write_running_at_its_snapshot(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    order: list[str] = []
    write_batch, write_checkpoint = sink.write_batch, sink.write_checkpoint
    gate = threading.Event()

    def slow_batch(out, duration_ms):  # type: ignore[no-untyped-def]
        assert gate.wait(5)
        write_batch(out, duration_ms)
        order.append("batch")

    def ckpt(topic, windows, offsets):  # type: ignore[no-untyped-def]
        write_checkpoint(topic, windows, offsets)
        order.append("checkpoint")

    sink.write_batch = slow_batch  # type: ignore[method-assign]
    sink.write_checkpoint = ckpt  # type: ignore[method-assign]

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 10 * i) for i in range(3)]))  # its write waits on gate
        task = asyncio.ensure_future(rt.checkpoint())
        await asyncio.sleep(0.05)
        assert not task.done() and order == []
        gate.set()
        await task

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert order == ["batch", "checkpoint"]
    assert committed(rt) == [{0: 3}]
