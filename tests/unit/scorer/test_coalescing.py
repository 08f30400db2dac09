"""Rescore coalescing: the pure decisions (scorer/coalescing.py) and their use by the batch processor."""

from __future__ import annotations

import pytest

from common.contracts import (
    STATUS_ALARM_TEMPERATURE,
    STATUS_ALARM_VIBRATION,
    STATUS_CURTAILED,
    STATUS_FAULT,
    STATUS_MAINTENANCE,
    STATUS_OK,
)
from scorer.coalescing import (
    ALARM,
    BIN_SECONDS,
    FAULT,
    NORMAL,
    RescoreMark,
    flush_due,
    rescore_due,
    status_class,
)

pytestmark = pytest.mark.unit

H = 3600.0 * 500_000  # an hour boundary (epoch seconds)


def test_bin_width_is_the_windows() -> None:
    from models.features import BIN_SECONDS as WINDOW_BIN

    assert BIN_SECONDS == WINDOW_BIN


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (STATUS_OK, NORMAL),
        (STATUS_CURTAILED, NORMAL),
        (STATUS_MAINTENANCE, NORMAL),
        (None, NORMAL),
        (999, NORMAL),
        (STATUS_ALARM_TEMPERATURE, ALARM),
        (STATUS_ALARM_VIBRATION, ALARM),
        (STATUS_FAULT, FAULT),
    ],
)
def test_status_class(code: int | None, cls: int) -> None:
    assert status_class(code) == cls


def test_never_scored_is_due() -> None:
    assert rescore_due(None, H + 1.0, NORMAL, 60.0)


@pytest.mark.parametrize(
    ("mark_ts", "newest", "due"),
    [
        (H + 10.0, H + 10.0, False),  # nothing newer (out-of-order events only)
        (H + 10.0, H + 11.0, False),  # 1-Hz data: one second later
        (H + 10.0, H + 69.9, False),
        (H + 10.0, H + 70.0, True),  # the interval reached
        (H + 10.0, H + 610.0, True),  # 10-minute SCADA data: every reading
        (H + 3599.0, H + 3600.0, True),  # a new hour bin, one second later
        (H - 1.0, H + 0.5, True),
    ],
)
def test_event_time_interval_and_hour_bin(mark_ts: float, newest: float, due: bool) -> None:
    assert rescore_due(RescoreMark(mark_ts, NORMAL), newest, NORMAL, 60.0) is due


@pytest.mark.parametrize(
    ("before", "after"), [(NORMAL, ALARM), (ALARM, NORMAL), (ALARM, FAULT), (FAULT, NORMAL)]
)
def test_status_class_change_is_due_at_once(before: int, after: int) -> None:
    assert rescore_due(RescoreMark(H + 10.0, before), H + 11.0, after, 60.0)


def test_zero_interval_rescores_every_touch_with_a_newer_event() -> None:
    assert rescore_due(RescoreMark(H + 10.0, NORMAL), H + 10.001, NORMAL, 0.0)


def test_a_1hz_burst_costs_about_one_rescoring_a_minute() -> None:
    """3,600 one-second events in batches of 10: one rescoring per minute of event time (+ first, + hour)."""
    mark: RescoreMark | None = None
    scored = 0
    for batch in range(360):
        newest = H + 10.0 * batch + 9.0
        if rescore_due(mark, newest, NORMAL, 60.0):
            mark = RescoreMark(newest, NORMAL)
            scored += 1
    assert 55 <= scored <= 62


def test_flush_due() -> None:
    assert flush_due(None, 100.0, 10.0)
    assert not flush_due(100.0, 109.9, 10.0)
    assert flush_due(100.0, 110.0, 10.0)
    assert flush_due(100.0, 50.0, 10.0)  # the wall clock went back: flush rather than lag
