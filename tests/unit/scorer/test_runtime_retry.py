"""Retry rules of the runtime's database calls, through the sink interface (fake sink, no services)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from scorer.sink import WriteRejected
from tests.unit.scorer.runtime_helpers import committed, events, make_runtime

pytestmark = pytest.mark.unit


def _errors(rt: object, kind: str) -> float:
    value = rt.metrics.registry.get_sample_value("scorer_db_errors_total", {"kind": kind})  # type: ignore[attr-defined]
    return 0.0 if value is None else float(value)


def test_unavailable_database_is_retried_with_backoff_and_nothing_is_lost(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    sink.unavailable = {"write_batch": 3, "write_checkpoint": 2, "load_partitions": 1}
    seen_unready: list[bool] = []

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 0), ("WT-1", 10), ("WT-2", 0)]))
        while sink.unavailable["write_batch"] and not seen_unready:
            await asyncio.sleep(0.001)
        seen_unready.append(not rt.db_ok)  # reported while it retries (readiness says why)
        await rt.checkpoint()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert sink.calls.count("load_partitions") == 2
    assert sink.calls.count("write_batch") == 4 and len(sink.batches) == 1
    assert sink.calls.count("write_checkpoint") == 3 and len(sink.checkpoints) == 1
    assert committed(rt) == [{0: 3}]
    assert rt.db_ok and rt.db_error is None and rt.broken is None
    assert seen_unready == [True]
    assert (_errors(rt, "restore"), _errors(rt, "stream_batch"), _errors(rt, "checkpoint")) == (1, 3, 2)


def test_a_refused_restore_is_not_retried_and_the_batch_fails(tmp_path: Path) -> None:
    rt, sink = make_runtime(tmp_path)
    sink.reject.add("load_turbines")

    async def run() -> None:
        with pytest.raises(WriteRejected):
            await rt.handle_batch(events([("WT-1", 0)]))

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert sink.calls.count("load_turbines") == 1 and sink.batches == [] and rt.pending_acks == []
    assert "InsufficientPrivilege" in str(rt.db_error)


def test_backoff_grows_and_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt, sink = make_runtime(tmp_path)
    rt.settings = rt.settings.model_copy(update={"db_retry_max_backoff_s": 1.0})
    sink.unavailable = {"write_checkpoint": 5}
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        # The patch is process-wide (asyncio.sleep): event loops left running in other threads by
        # earlier tests of the same session (clients, consumers) must keep their real sleeps.
        if threading.current_thread() is not threading.main_thread():
            await real_sleep(delay)
            return
        sleeps.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("scorer.runtime.asyncio.sleep", fake_sleep)

    async def run() -> None:
        await rt.handle_batch(events([("WT-1", 0)]))
        await rt.checkpoint()

    try:
        asyncio.run(run())
    finally:
        rt.close()
    assert sleeps == [0.25, 0.5, 1.0, 1.0, 1.0]
