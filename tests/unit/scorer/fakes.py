"""In-memory stand-ins for the worker's database and Kafka consumer (unit tests of scorer/runtime.py).

``FakeSink`` implements ``scorer.ports.SinkPort`` with dicts: checkpointed windows and offsets, the
written rows of every table, the newest ``stream`` history row per turbine (the history marks a restore
reads). It can be told to be unavailable for the next N calls (``unavailable``: raises
``DatabaseUnavailable``, the runtime retries) or to refuse a method (``reject``: raises
``WriteRejected``, never retried), and records every call in order (``calls``). ``FakeCommitter``
records the offsets the checkpoint acks (what faust's consumer would commit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from common.db import DatabaseUnavailable
from common.rows import HistoryRow, Row, StateRow, WindowRow
from scorer.ports import SinkPort, StoredWindow
from scorer.processing import BatchOutcome
from scorer.sink import SweepSummary, WriteRejected
from scorer.state import HistoryMark


class FakeSink:
    """A database in dicts; every method checks the failure knobs first."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.unavailable: dict[str, int] = {}  # method -> calls left that raise DatabaseUnavailable
        self.reject: set[str] = set()  # methods that raise WriteRejected
        self.windows: dict[str, tuple[str, WindowRow]] = {}  # turbine -> (topic, row)
        self.offsets: dict[tuple[str, int], int] = {}
        self.rows: dict[str, list[Row]] = {}  # table -> rows in write order
        self.batches: list[BatchOutcome] = []
        self.checkpoints: list[tuple[list[str], dict[int, int]]] = []  # (turbines, offsets) per call
        self.closed = False

    # ------------------------------------------------------------------ knobs
    def _enter(self, method: str, table: str = "fake") -> None:
        self.calls.append(method)
        left = self.unavailable.get(method, 0)
        if left > 0:
            self.unavailable[method] = left - 1
            raise DatabaseUnavailable(f"PostgreSQL at fake: connection refused ({method})")
        if method in self.reject:
            raise WriteRejected(table, psycopg.errors.InsufficientPrivilege("permission denied"))

    def _add(self, rows: Sequence[Row]) -> None:
        for r in rows:
            self.rows.setdefault(r.TABLE, []).append(r)

    def marks(self, turbine_ids: Sequence[str]) -> dict[str, HistoryMark]:
        """Newest ``stream`` history row of each turbine, as ``Sink._history_marks`` reads it."""
        out: dict[str, HistoryMark] = {}
        for r in self.rows.get("score_history", []):
            assert isinstance(r, HistoryRow)
            if r.trigger != "stream" or r.turbine_id not in turbine_ids:
                continue
            ts = r.time.timestamp()
            if r.turbine_id not in out or ts > out[r.turbine_id].ts:
                out[r.turbine_id] = HistoryMark(ts, r.score, r.tier)
        return out

    @staticmethod
    def _stored(row: WindowRow) -> StoredWindow:
        return StoredWindow(row.turbine_id, row.site_id, row.partition, row.state, row.aux)

    # ------------------------------------------------------------------ stream and checkpoints
    def write_batch(self, out: BatchOutcome, duration_ms: float) -> None:
        self._enter("write_batch", "score_history")
        self._add(out.turbine_rows)
        self._add(out.latest_rows)
        self._add(out.agg_rows)
        self._add(out.history_rows)
        self._add(out.state_rows)
        self.batches.append(out)

    def write_checkpoint(self, topic: str, windows: Sequence[WindowRow], offsets: dict[int, int]) -> None:
        self._enter("write_checkpoint", "scorer_windows")
        for w in windows:
            self.windows[w.turbine_id] = (topic, w)
        for p, off in offsets.items():
            self.offsets[(topic, p)] = off
        self.checkpoints.append(([w.turbine_id for w in windows], dict(offsets)))

    def load_partitions(
        self, topic: str, partitions: Sequence[int]
    ) -> tuple[dict[int, int], list[StoredWindow], dict[str, HistoryMark]]:
        self._enter("load_partitions")
        offs = {p: o for (t, p), o in self.offsets.items() if t == topic and p in partitions}
        stored = [
            self._stored(w) for t, w in self.windows.values() if t == topic and w.partition in partitions
        ]
        return offs, stored, self.marks([w.turbine_id for w in stored])

    def load_turbines(self, turbine_ids: Sequence[str]) -> tuple[list[StoredWindow], dict[str, HistoryMark]]:
        self._enter("load_turbines")
        stored = [self._stored(w) for t, (_topic, w) in self.windows.items() if t in turbine_ids]
        return stored, self.marks(turbine_ids)

    # ------------------------------------------------------------------ sweeps
    def load_all_windows(self, topic: str, exclude_partitions: Sequence[int] = ()) -> list[StoredWindow]:
        self._enter("load_all_windows")
        return [
            self._stored(w)
            for t, w in self.windows.values()
            if not (t == topic and w.partition in exclude_partitions)
        ]

    def claim_sweep(self, run_id: str, trigger: str, requested_at: datetime, stale_after_s: float) -> bool:
        self._enter("claim_sweep")
        return True

    def finish_sweep(
        self,
        run_id: str,
        status: str,
        turbines: int,
        tier_counts: dict[str, int],
        model_version: str | None,
        error: str | None,
        duration_ms: float,
        history_rows: Sequence[HistoryRow],
        state_rows: Sequence[StateRow],
    ) -> None:
        self._enter("finish_sweep")
        self._add(history_rows)
        self._add(state_rows)

    def write_sweep(
        self,
        run_id: str,
        model_version: str | None,
        parts: Iterable[tuple[Sequence[HistoryRow], Sequence[StateRow]]],
        summary: Callable[[], SweepSummary],
    ) -> None:
        self._enter("write_sweep")
        for history_rows, state_rows in parts:
            self._add(history_rows)
            self._add(state_rows)
        summary()

    def last_successful_sweep(self) -> datetime | None:
        self._enter("last_successful_sweep")
        return None

    def fleet_size(self) -> int:
        self._enter("fleet_size")
        return len(self.windows)

    # ------------------------------------------------------------------ liveness, dead letters
    def heartbeat(
        self,
        started_at: datetime,
        model_version: str | None,
        events_per_minute: float,
        lag_messages: int,
        lag_seconds: float,
        details: dict[str, Any],
    ) -> None:
        self._enter("heartbeat")

    def claim_dead_letters(self, limit: int, stale_after_s: float) -> list[tuple[int, bytes | None, bytes]]:
        self._enter("claim_dead_letters")
        return []

    def mark_dead_letters(self, published: Sequence[int], failed: Sequence[int] = ()) -> None:
        self._enter("mark_dead_letters")

    def purge_dead_letters(self, older_than_days: float) -> int:
        self._enter("purge_dead_letters")
        return 0

    def pending_dead_letters(self) -> int:
        self._enter("pending_dead_letters")
        return 0

    def close(self) -> None:
        self.closed = True


# ---------------------------------------------------------------------------------------------- offsets
@dataclass
class FakeCommitter:
    """Stands for faust's consumer: records every ``ack_offsets`` call of the checkpoint, in order."""

    acks: list[dict[int, int]] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)

    def ack_offsets(self, topic: str, offsets: Mapping[int, int]) -> None:
        self.topics.append(topic)
        self.acks.append(dict(offsets))


def _conforms(sink: FakeSink) -> SinkPort:
    return sink  # mypy: FakeSink implements scorer.ports.SinkPort (like scorer.sink.Sink)
