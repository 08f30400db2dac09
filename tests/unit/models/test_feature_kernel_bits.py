"""The feature kernel gives the same bits as the kernel of d185f53 (``golden/kernel_bits.npz``, see
``golden/make_kernel_bits.py``): its speed-ups (branch-free sums, the interpolation's first guess)
change no value, NaN and infinities included, with and without a normal model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def bits() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    sys.path.insert(0, str(GOLDEN))
    try:
        import make_kernel_bits
    finally:
        sys.path.remove(str(GOLDEN))
    want = np.load(GOLDEN / "kernel_bits.npz")
    return make_kernel_bits.compute(), {k: want[k] for k in want.files}


@pytest.mark.parametrize("key", ["features_nm", "features_regular", "features_irregular", "features_nonm"])
def test_features_are_the_former_kernels_bit_for_bit(
    bits: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], key: str
) -> None:
    got, want = bits[0][key], bits[1][key]
    assert got.shape == want.shape == (48, 272)
    assert np.isfinite(want).any() and np.isnan(want).any()
    bad = np.argwhere(got.view(np.int64) != want.view(np.int64))
    assert not len(bad), [(int(r), int(c), got[r, c], want[r, c]) for r, c in bad[:5]]
