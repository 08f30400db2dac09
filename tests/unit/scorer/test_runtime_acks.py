"""Ack ordering: an offset is acked only by the checkpoint that follows its batch's durable write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scorer.ingest import FetchedBatch, PartitionAck
from scorer.sink import WriteRejected
from tests.unit.scorer.runtime_helpers import committed, events, make_runtime, records

pytestmark = pytest.mark.unit


def test_events_are_acked_only_after_the_checkpoint_covering_their_write(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    first = events([("WT-1", 10 * i) for i in range(6)])
    second = events([("WT-2", 10 * i) for i in range(4)], start=6)

    async def run() -> None:
        await rt.handle_batch(first)
        await asyncio.sleep(0.05)  # the pipelined write has finished by now
        assert sink.batches and committed(rt) == []  # durable rows, but windows and offsets are not
        assert rt.pending_acks == [PartitionAck(0, 6)]
        await rt.handle_batch(second)  # waits for the first write, pipelines its own
        assert rt.pending_acks == [PartitionAck(0, 6)]  # the second write may still run
        await rt.checkpoint()  # drains the second write, then windows + offsets, then acks

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert committed(rt) == [{0: 10}]  # one ack per partition: its next offset after both batches
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

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 0), ("WT-1", 10)]))
        with pytest.raises(WriteRejected, match="InsufficientPrivilege"):
            await rt.checkpoint()  # the write it waits for was refused
        assert rt.broken is not None
        with pytest.raises(RuntimeError, match="a batch write failed earlier"):
            await rt.checkpoint()  # never a checkpoint past rows that were not written
        with pytest.raises(RuntimeError, match="a batch write failed earlier"):
            await rt.handle_batch(events([("WT-1", 20)], start=2))

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert committed(rt) == [] and rt.pending_acks == []
    assert "write_checkpoint" not in sink.calls
    assert sink.calls.count("write_batch") == 1  # refused: not retried


def test_a_refused_checkpoint_breaks_the_worker_and_acks_nothing(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    sink.reject.add("write_checkpoint")

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 0)]))
        with pytest.raises(WriteRejected):
            await rt.checkpoint()
        with pytest.raises(RuntimeError, match="a batch write failed earlier"):
            await rt.handle_batch(events([("WT-1", 10)], start=1))

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert committed(rt) == [] and sink.calls.count("write_checkpoint") == 1 and sink.checkpoints == []


def test_records_of_an_old_consumer_generation_are_neither_applied_nor_acked(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)

    class App:
        consumer_generation_id = 2

    rt.app = App()
    fresh = FetchedBatch(2, records([("WT-1", 0)]))
    stale = FetchedBatch(1, records([("WT-1", 10)], partition=1))  # fetched before a rebalance

    async def run() -> None:
        await rt.handle_batch([fresh, stale])
        await rt.checkpoint()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert committed(rt) == [{0: 1}]
    assert sink.batches[0].events == 1 and sink.checkpoints[-1][1] == {0: 1}


def test_acks_of_partitions_revoked_by_a_rebalance_are_dropped(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)

    class TP:
        def __init__(self, partition: int) -> None:
            self.topic, self.partition = "telemetry", partition

    async def run() -> None:
        await rt.on_assigned({TP(0), TP(1)})
        await rt.handle_batch(events([("WT-1", 0), ("WT-1", 10)]) + events([("WT-2", 0)], partition=1))
        await rt.ingest.drain()
        assert sorted(rt.pending_acks, key=lambda a: a.partition) == [PartitionAck(0, 2), PartitionAck(1, 1)]
        await rt.on_assigned({TP(1)})  # partition 0 went to another worker before a checkpoint
        assert rt.pending_acks == [PartitionAck(1, 1)]
        await rt.checkpoint()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert committed(rt) == [{1: 1}]
    assert sink.checkpoints[-1][1] == {1: 1}  # only owned partitions are checkpointed


def test_the_ack_is_the_newest_next_offset_per_partition_never_past_the_checkpoint(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    # Two fetched batches of partition 0 and one of partition 2 in one micro-batch, then another batch.
    batch = [
        FetchedBatch(None, records([("WT-1", 0), ("WT-1", 10)], partition=0, start=40)),
        FetchedBatch(None, records([("WT-3", 0)], partition=2, start=7)),
        FetchedBatch(None, records([("WT-1", 20)], partition=0, start=42)),
    ]

    async def run() -> None:
        await rt.handle_batch(batch)
        await rt.handle_batch(events([("WT-1", 30)], start=43))
        await rt.checkpoint()
        await rt.checkpoint()  # nothing new: no second ack

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert committed(rt) == [{0: 44, 2: 8}]
    checkpointed = sink.checkpoints[-1][1]
    assert all(off <= checkpointed[p] for p, off in committed(rt)[0].items())
