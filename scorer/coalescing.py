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

Otherwise it is *pending*. Pending turbines are rescored by the next batch that makes them due, or by a
flush at least every ``COCKPIT_RESCORE_FLUSH_S`` of wall time (:func:`flush_due`), so no turbine's score
lags its newest accepted event by more than those bounds. The decisions use event time only (the mark
is the event time a score was based on), so as-of times and the history policy stay deterministic on
replay; only the flush, which rescores as of the same newest event, looks at the wall clock.
"""

from __future__ import annotations

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


def flush_due(last_flush: float | None, now: float, flush_s: float) -> bool:
    """Whether pending turbines are rescored now (wall clock, epoch seconds); ``last_flush`` None = never.

    A clock that went backwards (``now < last_flush``) flushes: better one rescoring too many than a
    score that lags for as long as the clock was off.
    """
    return last_flush is None or now - last_flush >= flush_s or now < last_flush
