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
of wall time. A stream batch flushes overdue turbines oldest first, at most ``max_per_batch``
(``COCKPIT_RESCORE_FLUSH_MAX_PER_BATCH``) of them; when it rescores nothing else and they are fewer
than ``max_per_batch``, it waits until the oldest has been pending ``(1 + FLUSH_GRACE) * flush_s``
(a scoring call has a fixed cost: a trickle of overdue turbines is gathered into fuller calls). The
flush timer (every ``flush_s``) drains every turbine overdue when it starts, in chunks of
``max_per_batch``, the lock released between chunks. Why bounded and per turbine: flushing every
pending turbine at once (1,000 of them: 0.3-0.6 s of scoring) stalled the batch that did it and every
event queued behind it; per-turbine deadlines spread the flushes, and since a rescored turbine becomes
pending again at its next event, they stay spread (they self-stagger).

The bound, precisely. A turbine whose newest accepted event was applied at wall time ``w`` without a
rescoring is pending since ``w`` at the latest, and is rescored, as of its newest event then, no later
than the earliest of:

* the first batch that makes it due (the rules above);
* under continuous traffic (a batch at least every ``P`` s): ``w + (1 + FLUSH_GRACE) * flush_s +
  ceil(pending / max_per_batch) * P``, where ``pending`` is the number of turbines pending then (at
  most the worker's turbines). From that age on, every turbine ahead of it in the order is older (also
  past the grace), so each batch takes ``max_per_batch`` turbines from the head, or every overdue one;
* the flush timer's first run after ``w + flush_s`` (runs are ``flush_s`` apart): by
  ``w + 2 * flush_s`` plus the time to drain what is overdue at that run (finite: the run takes only
  turbines overdue when it started, at most ``pending / max_per_batch + 1`` chunks).

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

#: A batch that rescores nothing else flushes fewer than ``max_per_batch`` overdue turbines only once the
#: oldest has been pending ``(1 + FLUSH_GRACE) * flush_s``: each scoring call has a fixed cost (tens of
#: ms: one predict per tree of each model), so a trickle of overdue turbines is gathered into fuller calls.
FLUSH_GRACE = 0.5

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

    def flush_now(self, ids: list[str], now: float, flush_s: float, limit: int, rescoring: bool) -> bool:
        """Whether a stream batch flushes the overdue turbines ``ids`` (from :meth:`overdue`, oldest
        first) now: when the batch rescores turbines anyway (``rescoring``: the call's fixed cost is
        paid), when they fill a chunk (``limit``), or when the oldest has been pending
        ``(1 + FLUSH_GRACE) * flush_s`` (or the wall clock went back); else they wait for more."""
        if not ids:
            return False
        if rescoring or len(ids) >= limit:
            return True
        since = self._since[ids[0]]
        return now - since >= (1 + FLUSH_GRACE) * flush_s or now < since

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
