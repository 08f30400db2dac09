"""``_retry`` waits only for an unavailable database; any other error ends the call at once (no stall)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from common.db import DatabaseUnavailable
from common.settings import load_settings
from models.policy import load_policy
from scorer.model import ModelHolder
from scorer.runtime import ScorerRuntime, WorkerStopping
from scorer.settings import ScorerSettings
from scorer.sink import Sink, WriteRejected

pytestmark = pytest.mark.unit


def _runtime(tmp_path: Path) -> ScorerRuntime:
    settings = load_settings(ScorerSettings, registry_dir=str(tmp_path), db_retry_max_backoff_s=0.01)
    return ScorerRuntime(settings, ModelHolder(tmp_path, load_policy()))


def test_only_database_unavailable_is_retried(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise DatabaseUnavailable("PostgreSQL at x: connection refused")
        return "ok"

    try:
        assert asyncio.run(rt._retry("stream_batch", flaky)) == "ok"
        assert len(calls) == 3 and rt.db_ok and rt.db_error is None

        def refused() -> None:
            calls.append(1)
            raise WriteRejected("score_history", psycopg.errors.InsufficientPrivilege("permission denied"))

        calls.clear()
        with pytest.raises(WriteRejected, match="score_history: InsufficientPrivilege"):
            asyncio.run(rt._retry("stream_batch", refused))
        assert len(calls) == 1  # not retried
        assert "InsufficientPrivilege" in str(rt.db_error)

        def bug() -> None:
            raise KeyError("a bug")

        with pytest.raises(KeyError):
            asyncio.run(rt._retry("checkpoint", bug))
    finally:
        rt.close()


def test_sink_turns_connection_failures_into_database_unavailable() -> None:
    sink = Sink("postgresql://nobody:secret@127.0.0.1:1/none", "w", "g")
    with pytest.raises(DatabaseUnavailable) as info:
        sink.pending_dead_letters()
    assert "secret" not in str(info.value)  # the password is redacted
    sink.close()


def test_dead_letter_publish_is_bounded_then_goes_straight_to_the_fallback(tmp_path: Path) -> None:
    """Kafka unreachable: the letters come back for the PostgreSQL fallback within the bound, and the
    next batch does not wait on the topic again (no per-batch stall while it is broken)."""
    import time

    from scorer.processing import DeadLetterRecord

    settings = load_settings(
        ScorerSettings,
        registry_dir=str(tmp_path),
        kafka_bootstrap_servers="127.0.0.1:1",
        dead_letter_publish_attempts=2,
        dead_letter_publish_timeout_s=0.5,
    )
    rt = ScorerRuntime(settings, ModelHolder(tmp_path, load_policy()))
    letters = [DeadLetterRecord(b"{}", "malformed_json", "bad", "t", 0, i, None) for i in range(3)]

    async def run() -> tuple[list[DeadLetterRecord], float, list[DeadLetterRecord], float]:
        t0 = time.monotonic()
        first = await rt.dead_letters.publish(letters)
        t1 = time.monotonic()
        second = await rt.dead_letters.publish(letters[:1])
        t2 = time.monotonic()
        await rt.dead_letters.close()
        return first, t1 - t0, second, t2 - t1

    try:
        first, first_s, second, second_s = asyncio.run(run())
    finally:
        rt.close()
    assert first == letters and second == letters[:1]
    assert first_s < 5.0  # bounded: 2 attempts x 0.5 s timeouts + 0.2 s backoff (generous margin)
    assert second_s < 1.0  # no Kafka call at all while the topic is known to fail
    assert rt.dlq_error is not None and "refused 3 letter(s)" in rt.dlq_error
    assert rt.dead_letters.total.labels("fallback")._value.get() == 4


def test_batch_after_close_is_left_unacked_not_a_crash(tmp_path: Path) -> None:
    """A clean stop racing a batch (pools closed by the final checkpoint hook) is not a crash (exit 1)."""
    rt = _runtime(tmp_path)
    rt.model_ready.set()
    rt.close()
    with pytest.raises(WorkerStopping, match="final checkpoint"):
        asyncio.run(rt.handle_batch([object()]))
    with pytest.raises(WorkerStopping, match="pools are closed"):
        asyncio.run(rt._in(rt.compute, lambda: 1))
    assert rt.pending_acks == []
