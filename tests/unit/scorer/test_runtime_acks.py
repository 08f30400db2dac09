"""Ack ordering: an event is acked only by the checkpoint that follows its batch's durable write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scorer.sink import WriteRejected
from tests.unit.scorer.runtime_helpers import events, make_runtime

pytestmark = pytest.mark.unit


def test_events_are_acked_only_after_the_checkpoint_covering_their_write(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    acked: list[tuple[int, int]] = []
    first = events([("WT-1", 10 * i) for i in range(6)], acked=acked)
    second = events([("WT-2", 10 * i) for i in range(4)], start=6, acked=acked)

    async def run() -> None:
        await rt.handle_batch(first)
        await asyncio.sleep(0.05)  # the pipelined write has finished by now
        assert sink.batches and acked == []  # durable rows, but windows and offsets are not
        assert rt.pending_acks == first
        await rt.handle_batch(second)  # waits for the first write, pipelines its own
        await rt.checkpoint()  # drains the second write, then windows + offsets, then acks

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert acked == [(0, i) for i in range(10)]
    assert rt.pending_acks == []
    assert sink.calls == [
        "load_partitions",
        "load_turbines",
        "write_batch",
        "load_turbines",
        "write_batch",
        "write_checkpoint",
    ]
    turbines, offsets = sink.checkpoints[-1]
    assert sorted(turbines) == ["WT-1", "WT-2"] and offsets == {0: 10}
    assert [b.accepted for b in sink.batches] == [6, 4]


def test_a_refused_write_breaks_the_worker_no_checkpoint_no_ack(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    sink.reject.add("write_batch")
    acked: list[tuple[int, int]] = []

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 0), ("WT-1", 10)], acked=acked))
        with pytest.raises(WriteRejected, match="InsufficientPrivilege"):
            await rt.checkpoint()  # the write it waits for was refused
        assert rt.broken is not None
        with pytest.raises(RuntimeError, match="a batch write failed earlier"):
            await rt.checkpoint()  # never a checkpoint past rows that were not written
        with pytest.raises(RuntimeError, match="a batch write failed earlier"):
            await rt.handle_batch(events([("WT-1", 20)], start=2, acked=acked))

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert acked == [] and rt.pending_acks == []
    assert "write_checkpoint" not in sink.calls
    assert sink.calls.count("write_batch") == 1  # refused: not retried


def test_a_refused_checkpoint_breaks_the_worker_and_acks_nothing(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    sink.reject.add("write_checkpoint")
    acked: list[tuple[int, int]] = []

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 0)], acked=acked))
        with pytest.raises(WriteRejected):
            await rt.checkpoint()
        with pytest.raises(RuntimeError, match="a batch write failed earlier"):
            await rt.handle_batch(events([("WT-1", 10)], start=1, acked=acked))

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert acked == [] and sink.calls.count("write_checkpoint") == 1 and sink.checkpoints == []


def test_events_of_an_old_consumer_generation_are_neither_applied_nor_acked(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)

    class App:
        consumer_generation_id = 2

    rt.app = App()
    acked: list[tuple[int, int]] = []
    batch = events([("WT-1", 0), ("WT-1", 10)], acked=acked)
    batch[0].message.generation_id = 2  # the second was fetched before a rebalance (generation 1)

    async def run() -> None:
        await rt.handle_batch(batch)
        await rt.checkpoint()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert acked == [(0, 0)]
    assert sink.batches[0].events == 1 and sink.checkpoints[-1][1] == {0: 1}
