"""The database side of the worker as the runtime sees it: a small interface, two implementations.

Why a ``Protocol``: the runtime's rules (acks only after the checkpoint that covers a durable write,
retry only while the database is unavailable, crash-only after a refused write, restore of partitions
and turbines) are tested in milliseconds against ``tests/unit/scorer/fakes.py``'s ``FakeSink``; the
real :class:`scorer.sink.Sink` (PostgreSQL) implements the same methods. Every method is blocking and is
called from one executor thread at a time; it raises ``common.db.DatabaseUnavailable`` when the
database cannot be reached (retried) and ``scorer.sink.WriteRejected`` when it refuses a statement (not
retried).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from common.rows import HistoryRow, StateRow, WindowRow
    from scorer.processing import BatchOutcome
    from scorer.sink import SweepSummary
    from scorer.state import HistoryMark


@dataclass
class StoredWindow:
    """A checkpointed window as read back: the bytes of the window and of its bookkeeping."""

    turbine_id: str
    site_id: str
    partition: int
    state: bytes
    aux: bytes


class SinkPort(Protocol):
    """What the worker (runtime, sweeps, liveness, dead letters, repairs) asks of its database."""

    # ---- stream and checkpoints (scorer/ingest.py, scorer/checkpoint.py)
    def write_batch(self, out: BatchOutcome, duration_ms: float) -> None: ...

    def write_checkpoint(self, topic: str, windows: Sequence[WindowRow], offsets: dict[int, int]) -> None: ...

    def load_partitions(
        self, topic: str, partitions: Sequence[int]
    ) -> tuple[dict[int, int], list[StoredWindow], dict[str, HistoryMark]]: ...

    def load_turbines(
        self, turbine_ids: Sequence[str]
    ) -> tuple[list[StoredWindow], dict[str, HistoryMark]]: ...

    # ---- sweeps (scorer/sweep.py)
    def load_all_windows(self, topic: str, exclude_partitions: Sequence[int] = ()) -> list[StoredWindow]: ...

    def claim_sweep(
        self, run_id: str, trigger: str, requested_at: datetime, stale_after_s: float
    ) -> bool: ...

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
    ) -> None: ...

    def write_sweep(
        self,
        run_id: str,
        model_version: str | None,
        parts: Iterable[tuple[Sequence[HistoryRow], Sequence[StateRow]]],
        summary: Callable[[], SweepSummary],
    ) -> None: ...

    def last_successful_sweep(self) -> datetime | None: ...

    def fleet_size(self) -> int: ...

    # ---- liveness (scorer/liveness.py)
    def heartbeat(
        self,
        started_at: datetime,
        model_version: str | None,
        events_per_minute: float,
        lag_messages: int,
        lag_seconds: float,
        details: dict[str, Any],
    ) -> None: ...

    # ---- dead-letter fallback (scorer/dead_letters.py)
    def claim_dead_letters(
        self, limit: int, stale_after_s: float
    ) -> list[tuple[int, bytes | None, bytes]]: ...

    def mark_dead_letters(self, published: Sequence[int], failed: Sequence[int] = ()) -> None: ...

    def purge_dead_letters(self, older_than_days: float) -> int: ...

    def pending_dead_letters(self) -> int: ...

    def close(self) -> None: ...
