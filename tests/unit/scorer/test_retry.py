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
from scorer.runtime import ScorerRuntime
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
