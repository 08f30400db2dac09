"""Rescore coalescing: a burst of events of one turbine costs one rescoring (pure decisions).

Why: the features are built on hourly bins; rescoring a 1-Hz turbine at every micro-batch (every
100 ms) recomputes almost the same features thousands of times an hour. A turbine the batch touched is
rescored only when its score can have moved:

* it was never stream-scored (no :class:`RescoreMark`);
* its newest event time moved by at least ``min_interval_s`` (``COCKPIT_RESCORE_MIN_EVENT_INTERVAL_S``,
  default 60 s of EVENT time) since its last stream score: 10-minute SCADA data is rescored at every
  reading, 1-Hz data about once a minute of event time;
* its newest event entered another hourly bin (the window's unit of time);
* its status moved to or from an alarm or a fault (an operator must see it at once).

Otherwise it is *pending* (:class:`PendingRescores`: turbine -> wall time it became pending, in that
order). A pending turbine is *overdue* once it has been pending ``flush_s`` (``COCKPIT_RESCORE_FLUSH_S``)
of wall time, and *late* once pending ``LATE_FLUSHES * flush_s``. Overdue turbines are flushed (rescored)
oldest first in chunks of at most ``max_per_batch`` (``COCKPIT_RESCORE_FLUSH_MAX_PER_BATCH``), each
chunk inside a stream batch or by the flush timer, and chunks are spaced by :func:`flush_gap` (so every
pending turbine is flushed once per ``flush_s``, and the stream recovers between two chunks). A batch
flushes a chunk when the gap has elapsed since the last one, when it rescores turbines anyway (the
scoring call's fixed cost, tens of ms, is paid), or when the oldest pending turbine is late. The timer
(every ``flush_s``) flushes the same way and, when no batch ran for ``IDLE_FLUSHES * flush_s`` (no
traffic), drains every overdue turbine. Why: flushing every pending turbine at once (1,000 of them:
0.3-0.6 s of scoring) stalled the batch that did it and every event queued behind it; chunks in
consecutive batches measured worse still (each call's fixed cost, no recovery between them).
Per-turbine deadlines keep the flushes spread: a rescored turbine is pending again from its next event.

The bound, precisely. A turbine whose newest accepted event was applied at wall time ``w`` without a
rescoring is pending since ``w`` at the latest, and is rescored, as of its newest event then, no later
than the earliest of:

* the first batch that makes it due (the rules above);
* under continuous traffic (a batch at least every ``P`` s): ``w + LATE_FLUSHES * flush_s +
  ceil(pending / max_per_batch) * P``, ``pending`` being the turbines pending then (at most the
  worker's turbines): once it is late, every turbine ahead of it is older, hence late too, and each
  batch flushes ``max_per_batch`` of them from the head;
* without traffic: the flush timer's first run after ``w + flush_s`` (runs are ``flush_s`` apart),
  which drains every overdue turbine: by ``w + 2 * flush_s`` plus the drain.

So no stream score lags its turbine's newest accepted event by more than these wall-clock bounds, and
between rescorings the events it has not seen stay within ``min_interval_s`` of event time, one hour
bin and one status class of the score's as-of time (anything else makes the turbine due at once). The
decisions use event time only (the mark is the event time a score was based on, and a flush rescores
as of the turbine's newest event), so as-of times and the history policy stay deterministic on
replay; only WHEN a pending turbine is flushed looks at the wall clock.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass

from common.contracts import (
    STATUS_ALARM_PRESSURE,
    STATUS_ALARM_TEMPERATURE,
    STATUS_ALARM_VIBRATION,
    STATUS_FAULT,
)

#: Width of a window bin (models.features.BIN_SECONDS; repeated here so the API can import the module
#: without numpy: a test pins both equal).
BIN_SECONDS = 3600

#: A pending turbine is *late* after this many ``flush_s``: then it is flushed without waiting for the
#: chunk spacing (:func:`flush_gap`).
LATE_FLUSHES = 2.0
#: The stream is idle when no batch ran for this many ``flush_s``: the flush timer then drains every
#: overdue turbine (no event waits behind it).
IDLE_FLUSHES = 0.5

#: Status classes: a change of class makes a turbine due at once.
NORMAL, ALARM, FAULT = 0, 1, 2
_ALARMS = frozenset({STATUS_ALARM_TEMPERATURE, STATUS_ALARM_VIBRATION, STATUS_ALARM_PRESSURE})


def status_class(status_code: int | None) -> int:
    """``ALARM`` for the alarm codes, ``FAULT`` for a fault, else ``NORMAL`` (curtailment, maintenance...)."""
    if status_code in _ALARMS:
        return ALARM
    if status_code == STATUS_FAULT:
        return FAULT
    return NORMAL


@dataclass(frozen=True, slots=True)
class RescoreMark:
    """What the last stream score of a turbine was based on: its newest event time and status class."""

    ts: float
    status: int


def rescore_due(mark: RescoreMark | None, newest_ts: float, status: int, min_interval_s: float) -> bool:
    """Whether a touched turbine whose newest event is at ``newest_ts`` (status class ``status``) is
    rescored now; False = pending (see the module docstring)."""
    if mark is None:
        return True
    if status != mark.status:
        return True
    if newest_ts // BIN_SECONDS != mark.ts // BIN_SECONDS:
        return True
    return newest_ts - mark.ts >= min_interval_s


def flush_gap(flush_s: float, max_per_batch: int, pending: int) -> float:
    """Wall time between two flush chunks of a stream worker: ``flush_s * max_per_batch / pending``
    (at most ``flush_s``), so chunks of ``max_per_batch`` flush every pending turbine once per
    ``flush_s`` and the worker recovers between two of them."""
    return flush_s * max_per_batch / max(pending, max_per_batch)


def gap_elapsed(last: float | None, now: float, gap: float) -> bool:
    """Whether ``gap`` seconds passed since ``last`` (None: never; a clock that went back: yes)."""
    return last is None or now - last >= gap or now < last


class PendingRescores:
    """Turbines whose rescoring is deferred, in the order they became pending, with that wall time.

    An insertion-ordered dict (turbine -> epoch seconds it became pending): a turbine keeps its first
    pending time until it is rescored (:meth:`discard`), so the head is always the oldest. A turbine
    restored pending from a checkpoint (its pending time unknown) goes to the head, overdue at once.
    """

    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, turbine_id: object) -> bool:
        return turbine_id in self._since

    def __iter__(self) -> Iterator[str]:
        return iter(self._since)

    def since(self, turbine_id: str) -> float | None:
        """Wall time the turbine became pending (-inf: restored pending), None when not pending."""
        return self._since.get(turbine_id)

    def add(self, turbine_id: str, now: float) -> None:
        """Pending from ``now`` (wall clock, epoch seconds); a turbine already pending keeps its time."""
        self._since.setdefault(turbine_id, now)

    def add_overdue(self, turbine_ids: Iterable[str]) -> None:
        """Pending since an unknown time (restored from a checkpoint): at the head, overdue at once."""
        new = [t for t in turbine_ids if t not in self._since]
        if new:
            head = dict.fromkeys(new, -math.inf)
            head.update(self._since)
            self._since = head

    def discard(self, turbine_id: str) -> None:
        self._since.pop(turbine_id, None)

    def clear(self) -> None:
        self._since.clear()

    def overdue(self, now: float, flush_s: float, limit: int, skip: Container[str] = ()) -> list[str]:
        """Up to ``limit`` turbines pending for at least ``flush_s`` at ``now``, oldest first (those in
        ``skip`` are passed over, not counted). Nothing is removed: a rescoring removes its turbine.

        The walk stops at the first turbine not overdue (all behind it are younger). A pending time
        after ``now`` (the wall clock went back) counts as overdue: better one rescoring too many than
        a score that lags for as long as the clock was off.
        """
        out: list[str] = []
        if limit <= 0:
            return out
        for tid, since in self._since.items():
            if not (now - since >= flush_s or now < since):
                break
            if tid in skip:
                continue
            out.append(tid)
            if len(out) >= limit:
                break
        return out
