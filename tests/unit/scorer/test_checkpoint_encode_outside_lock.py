"""A periodic checkpoint encodes its snapshot outside the runtime's lock: batches go on while a large
snapshot is encoded (even batches changing the windows being encoded), and the rows written are the
bytes of the state at the snapshot, byte for byte."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.window_store import WindowStore
from tests.unit.scorer.runtime_helpers import committed, events, make_runtime

pytestmark = pytest.mark.unit


def test_a_batch_runs_while_the_snapshot_is_encoded_and_the_bytes_are_the_snapshots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, sink = make_runtime(tmp_path)
    entered, release = threading.Event(), threading.Event()
    encoding_thread: list[str] = []
    real = WindowStore.to_bytes_many

    def gated(self: WindowStore, rows: Any) -> list[bytes]:
        if self is not rt.processor.store:  # the snapshot's copy: hold the encode until released
            encoding_thread.append(threading.current_thread().name)
            entered.set()
            assert release.wait(10), "the test never released the encode"
        return real(self, rows)

    monkeypatch.setattr(WindowStore, "to_bytes_many", gated)
    fleet = [f"WT-{i:03d}" for i in range(300)]

    async def run() -> None:
        await rt.handle_batch(events([(t, 10 * m) for m in range(4) for t in fleet]))
        await rt.ingest.drain()
        proc = rt.processor
        rows = np.array([proc.turbines[t].window.row for t in fleet], dtype=np.intp)
        want = dict(zip(fleet, real(proc.store, rows), strict=True))
        want_aux = {t: proc.turbines[t].aux_bytes() for t in fleet}
        ckpt = asyncio.ensure_future(rt.checkpoint())
        while not entered.is_set():
            await asyncio.sleep(0.005)
        # the encode is running: the lock is free, and a batch changing the encoded windows completes
        assert not rt.lock.locked()
        start = len(fleet) * 4
        await asyncio.wait_for(rt.handle_batch(events([(t, 50) for t in fleet[:100]], start=start)), 10)
        await rt.ingest.drain()
        assert not ckpt.done() and sink.checkpoints == []
        assert rt.processor.dirty == set(fleet[:100])  # changed after the snapshot: dirty again
        changed = rt.processor.store.to_bytes(int(rows[0]))
        assert changed != want[fleet[0]]
        release.set()
        await ckpt
        # written: the state at the snapshot, not the one after the batch that ran meanwhile
        assert [(sorted(ids), offs) for ids, offs in sink.checkpoints] == [(fleet, {0: start})]
        for t in fleet:
            row = sink.windows[t][1]
            assert row.state == want[t] and row.aux == want_aux[t], t
        assert committed(rt) == [{0: start}]
        await rt.checkpoint()  # the windows changed meanwhile go in the next one
        assert sorted(sink.checkpoints[-1][0]) == fleet[:100] and sink.checkpoints[-1][1] == {0: start + 100}
        assert sink.windows[fleet[0]][1].state == changed
        assert sink.windows[fleet[0]][1].aux == rt.processor.turbines[fleet[0]].aux_bytes()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert encoding_thread and all(n.startswith("scorer-checkpoint") for n in encoding_thread)
    assert not rt.processor.dirty


def test_a_checkpoint_holding_the_lock_writes_the_same_rows(tmp_path: Path) -> None:
    """Rebalance/stop checkpoints (lock held throughout) write the same bytes as the periodic one."""
    outs = []
    for hold in (False, True):
        rt, sink = make_runtime(tmp_path / str(hold))

        async def run(rt: Any = rt, hold: bool = hold) -> None:
            await rt.handle_batch(events([(f"WT-{i}", 10 * m) for m in range(3) for i in range(20)]))
            await rt.checkpointer.checkpoint(hold_lock=hold)

        try:
            asyncio.run(run())
        finally:
            rt.close()
        outs.append(
            {t: (w.state, w.aux, w.last_event_time, w.partition) for t, (_, w) in sink.windows.items()}
        )
    assert outs[0] == outs[1] and len(outs[0]) == 20


def test_an_encode_that_fails_marks_the_runtime_broken_and_acks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot cleared its dirty marks: a later checkpoint must never ack offsets past windows that
    were not written, so a failed encode ends the worker like a refused write."""
    rt, sink = make_runtime(tmp_path)

    def boom(self: WindowStore, rows: Any) -> list[bytes]:
        raise MemoryError("encode failed")

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 10 * i) for i in range(3)]))
        monkeypatch.setattr(WindowStore, "to_bytes_many", boom)
        with pytest.raises(MemoryError):
            await rt.checkpoint()
        assert isinstance(rt.broken, MemoryError)
        with pytest.raises(Exception, match="encode failed"):
            await rt.checkpoint()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert committed(rt) == [] and sink.checkpoints == []
