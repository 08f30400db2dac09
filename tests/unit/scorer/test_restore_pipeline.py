"""Restore of partitions read in chunks (``Sink.load_partitions_streamed``): each chunk decoded on the
compute thread while the next is read gives the state a read-all-then-decode restore gives; a failed
restore leaves none of its turbines; a read retried after a DB failure installs each turbine once.
Chunks come as rows or, as the real sink hands them, as a ``StoredChunk`` (states packed in one buffer,
each buffer given back for a later chunk once decoded)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from common.db import DatabaseUnavailable
from models.window_store import StatePacker
from scorer.ports import StoredWindow
from scorer.restore_rows import StoredChunk
from scorer.runtime import ScorerRuntime
from scorer.state import HistoryMark
from tests.unit.scorer.fakes import FakeSink
from tests.unit.scorer.runtime_helpers import events, make_runtime

pytestmark = pytest.mark.unit


class StreamingSink(FakeSink):
    """The fake's rows handed over ``chunk`` at a time, as the real sink's streamed read does."""

    chunk = 2
    fail_after_chunks: int | None = None  # DB unavailable once, after that many chunks
    corrupt: str | None = None  # a turbine whose window bytes arrive damaged
    packed = False  # chunks as StoredChunk (states packed), as the real sink's

    def load_partitions_streamed(
        self,
        topic: str,
        partitions: Sequence[int],
        begin: Callable[[int], object],
        consume: Callable[[list[StoredWindow] | StoredChunk], object],
    ) -> tuple[dict[int, int], dict[str, HistoryMark]]:
        offs, stored, marks = self.load_partitions(topic, partitions)
        stored = [replace(w, state=b"\x00junk") if w.turbine_id == self.corrupt else w for w in stored]
        begin(len(stored))
        packer = StatePacker(64)
        for k in range(0, len(stored), self.chunk):
            if self.fail_after_chunks is not None and k // self.chunk == self.fail_after_chunks:
                self.fail_after_chunks = None
                raise DatabaseUnavailable("PostgreSQL at fake: connection lost (load_partitions_streamed)")
            part = stored[k : k + self.chunk]
            if not self.packed:
                consume(part)
                continue
            for w in part:
                packer.add(w.state)
            ids = [w.turbine_id for w in part]
            sites, parts, aux = [w.site_id for w in part], [w.partition for w in part], [w.aux for w in part]
            consume(StoredChunk(ids, sites, parts, packer.take(), aux))
        return offs, marks


class PackedSink(StreamingSink):
    packed = True


def _checkpointed(sink: FakeSink, tmp_path: Path) -> None:
    rt, _ = make_runtime(tmp_path, sink)
    batch = events([(f"WT-{k}", 10 * i) for i in range(4) for k in range(7)])

    async def go() -> None:
        await rt.handle_batch(batch)
        await rt.checkpoint()
        await rt.ingest.drain()

    try:
        asyncio.run(go())
    finally:
        rt.close()


def _restored(sink: FakeSink, tmp_path: Path) -> ScorerRuntime:
    rt, _ = make_runtime(tmp_path, sink)
    try:
        asyncio.run(rt.checkpointer.restore_partitions([0]))
    finally:
        rt.close()
    return rt


def _state(rt: ScorerRuntime) -> dict[str, tuple[bytes, bytes]]:
    proc = rt.processor
    return {t: (st.window.to_bytes(), st.aux_bytes()) for t, st in sorted(proc.turbines.items())}


@pytest.mark.parametrize("streaming", [StreamingSink, PackedSink])
def test_streamed_restore_equals_read_all_then_decode(tmp_path: Path, streaming: type[StreamingSink]) -> None:
    plain, streamed = FakeSink(), streaming()
    for sink in (plain, streamed):
        _checkpointed(sink, tmp_path)
    a, b = _restored(plain, tmp_path), _restored(streamed, tmp_path)
    assert len(a.processor.turbines) == 7 and _state(a) == _state(b)
    assert a.processor.next_offset == b.processor.next_offset == {0: 28}
    assert a.processor.store.turbine_ids() == b.processor.store.turbine_ids()


@pytest.mark.parametrize("streaming", [StreamingSink, PackedSink])
def test_failed_restore_leaves_none_of_its_turbines(tmp_path: Path, streaming: type[StreamingSink]) -> None:
    sink = streaming()
    _checkpointed(sink, tmp_path)
    sink.corrupt = "WT-5"  # third chunk
    rt, _ = make_runtime(tmp_path, sink)
    try:
        with pytest.raises(ValueError, match="FeatureWindow state"):
            asyncio.run(rt.checkpointer.restore_partitions([0]))
    finally:
        rt.close()
    assert rt.processor.turbines == {} and rt.processor.store.turbine_ids() == []
    assert 0 not in rt.restored and rt.processor.next_offset == {}


@pytest.mark.parametrize("streaming", [StreamingSink, PackedSink])
def test_read_retried_after_a_db_failure_installs_each_turbine_once(
    tmp_path: Path, streaming: type[StreamingSink]
) -> None:
    ref, sink = StreamingSink(), streaming()
    for s in (ref, sink):
        _checkpointed(s, tmp_path)
    sink.fail_after_chunks = 2  # two chunks installed, then the read fails and is retried
    before = len(sink.calls)
    rt = _restored(sink, tmp_path)
    assert sink.calls[before:] == ["load_partitions", "load_partitions"]
    assert _state(rt) == _state(_restored(ref, tmp_path))
    assert len(rt.processor.store.turbine_ids()) == 7


def test_restore_logs_where_its_time_went(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The restore's event carries its timeline (read, the compute thread's chunks, gc freeze, total)."""
    sink = StreamingSink()
    _checkpointed(sink, tmp_path)  # logs its own (empty) restore when the "scorer" logger is already at INFO
    caplog.set_level(logging.INFO, logger="scorer")
    caplog.clear()
    _restored(sink, tmp_path)
    (rec,) = [r for r in caplog.records if r.getMessage() == "partitions restored from checkpoint"]
    timing = rec.ctx["timing_ms"]  # type: ignore[attr-defined]
    assert set(timing) == {
        "read",
        "chunks_busy",
        "chunks_cpu",
        "first_chunk_at",
        "last_chunk_end",
        "gc_freeze",
        "total",
    }
    assert 0 <= timing["first_chunk_at"] <= timing["last_chunk_end"] <= timing["total"]
    assert timing["read"] <= timing["total"] and timing["chunks_busy"] >= 0
