"""The sweep overlap's split of each chunk's predict between the helper and the scoring thread moves
toward equal CPU in both threads (the split changes no value: tests/unit/scorer/test_sweep_rows.py)."""

from __future__ import annotations

import pytest

from models import fleet_scoring
from models.fleet_scoring import _Balance

pytestmark = pytest.mark.unit


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _run(monkeypatch: pytest.MonkeyPatch, feat: float, rest: float, predict: float, chunks: int) -> float:
    """Chunks of 1,000 rows: helper features ``feat`` s, scoring thread ``rest`` s besides its predict,
    a whole chunk's predict ``predict`` s split by the learnt share; returns the final share."""
    clock = _Clock()
    monkeypatch.setattr(fleet_scoring.time, "thread_time", clock)
    bal = _Balance(0.5)
    for _ in range(chunks):
        share = bal.share
        head, tail = predict * share, predict * (1 - share)
        clock.t += tail + rest  # the scoring thread's cycle: its predict, then everything else
        bal.done(1000, feat, head, tail)
        bal.received()
    return bal.share


def test_the_share_moves_to_equal_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # features 20 ms, the rest 40 ms, predict 40 ms: helper 20 + 40 s = 40 + 40 (1 - s) -> s = 0.75
    assert _run(monkeypatch, 0.020, 0.040, 0.040, 12) == pytest.approx(0.75, abs=0.01)
    # features heavier than everything else: the helper predicts nothing
    assert _run(monkeypatch, 0.200, 0.010, 0.040, 12) == pytest.approx(0.0, abs=0.01)
    # the scoring thread's rest heavier than features + predict: the helper predicts everything
    assert _run(monkeypatch, 0.010, 0.300, 0.040, 12) == pytest.approx(1.0, abs=0.01)


def test_nothing_measured_keeps_the_share(monkeypatch: pytest.MonkeyPatch) -> None:
    bal = _Balance(0.5)
    bal.done(100, 0.01, 0.0, 0.0)  # before any chunk was received
    assert bal.share == 0.5
    bal.received()
    bal.done(0, 0.01, 0.0, 0.0)  # an empty chunk
    bal.done(100, 0.01, 0.0, 0.0)  # no predict time measured
    assert bal.share == 0.5
