"""The feature kernel's one-value ``np.interp`` (the power-curve residual): the first-guess search on a
regular grid finds the interval the bisection finds, so every value is the same to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

from models.feature_kernels import _interp, _interp_inv_step

pytestmark = pytest.mark.unit


def _grids() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        np.arange(61) * 0.5,  # the power curve's grid (0 .. 30 m/s by 0.5)
        np.linspace(-3.0, 7.0, 41),  # a regular grid whose steps are not exact in binary
        np.sort(rng.uniform(0, 25, 30)),  # irregular
        np.array([0.0, 1.0, 1.0, 1.0, 2.0, 5.0, 5.0, 9.0]),  # repeated points
        np.array([2.0, 3.0]),
        np.concatenate(([0.0], np.geomspace(1e-6, 1e6, 50))),  # steps of very different sizes
    ]


def _xs(xp: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(11)
    lo, hi = float(xp[0]), float(xp[-1])
    span = hi - lo
    return np.concatenate(
        (
            xp,  # exactly on the grid points
            np.nextafter(xp, np.inf),
            np.nextafter(xp, -np.inf),
            rng.uniform(lo - 0.1 * span, hi + 0.1 * span, 2000),
            [np.nan, np.inf, -np.inf, lo, hi, -0.0, 0.0, 1e300, -1e300],
        )
    )


@pytest.mark.parametrize("g", range(6))
def test_the_first_guess_search_gives_the_bisections_values_bit_for_bit(g: int) -> None:
    xp = _grids()[g]
    inv = _interp_inv_step(xp)
    assert inv > 0
    fp = np.cos(xp) * 1000.0
    fp[len(fp) // 2] = np.nan  # a NaN value in the curve follows numpy's rules either way
    for x in _xs(xp):
        fast = _interp(float(x), xp, fp, inv)
        slow = _interp(float(x), xp, fp, -1.0)
        assert np.array(fast).view(np.int64) == np.array(slow).view(np.int64), (g, x, fast, slow)


def test_matches_numpy_on_a_clean_increasing_grid() -> None:
    xp = np.arange(61) * 0.5
    fp = np.sqrt(xp) * 300.0
    inv = _interp_inv_step(xp)
    xs = _xs(xp)
    got = np.array([_interp(float(x), xp, fp, inv) for x in xs])
    np.testing.assert_array_equal(got, np.interp(xs, xp, fp))


@pytest.mark.parametrize(
    "xp",
    [
        np.array([1.0]),
        np.array([3.0, 1.0, 2.0]),  # not increasing
        np.array([1.0, 1.0]),  # no span
        np.array([0.0, np.nan, 2.0]),
        np.array([0.0, np.inf]),
        np.array([-1e308, 1e308]),  # the span overflows
    ],
)
def test_grids_without_a_usable_step_bisect(xp: np.ndarray) -> None:
    assert _interp_inv_step(xp) == -1.0
