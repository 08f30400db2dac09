"""The latest reading's measurements JSON (``scorer.processing._measurements``) is byte for byte what a
``{signal: value}`` dict through ``_json`` gives (NaN and infinities as null), for any float64 values."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from common.contracts import SIGNALS
from scorer.processing import _json, _measurements

pytestmark = pytest.mark.unit


def _reference(signals: np.ndarray) -> list[str]:
    out = []
    for row in signals.tolist():
        values = [None if v != v else v for v in row]  # NaN -> None, as the dict path did
        out.append(_json(dict(zip(SIGNALS, values, strict=True))))
    return out


def test_the_template_equals_a_dict_per_reading_for_every_kind_of_value() -> None:
    rng = np.random.default_rng(11)
    for scale in (1e-300, 1e-8, 1.0, 37.5, 1e6, 1e17, 1e300):
        signals = rng.normal(0.0, scale, size=(40, len(SIGNALS)))
        signals[rng.random(signals.shape) < 0.15] = np.nan
        signals[0, :4] = [0.0, -0.0, np.inf, -np.inf]
        signals[1, :4] = [5e-324, 1.7976931348623157e308, 123456789012345678.0, 0.1 + 0.2]
        got = _measurements(signals)
        assert got == _reference(signals)
        for doc, row in zip(got, signals.tolist(), strict=True):
            parsed = orjson.loads(doc)
            assert list(parsed) == list(SIGNALS)
            assert all((v is None) == (not np.isfinite(x)) for v, x in zip(parsed.values(), row, strict=True))


def test_no_reading_and_a_non_contiguous_selection() -> None:
    assert _measurements(np.empty((0, len(SIGNALS)))) == []
    grid = np.arange(3 * len(SIGNALS), dtype=np.float64).reshape(3, len(SIGNALS)) / 7
    picked = grid[[2, 0]]
    assert _measurements(picked) == _reference(picked)
    assert _measurements(grid[:, :][::2]) == _reference(grid[::2])
