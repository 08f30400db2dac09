"""The store's large arrays are plain 4 KB-page anonymous maps, not numpy's huge-page-advised memory (a
cold restore faults them in: see ``models.window_store._empty``), and growing or widening a store
keeps every value."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from models.window_store import _MAP_MIN, WindowStore, _empty

pytestmark = pytest.mark.unit


def _vm_flags(addr: int) -> list[str] | None:
    """VmFlags of the mapping of this process that holds ``addr`` (Linux), else None."""
    smaps = Path("/proc/self/smaps")
    if not smaps.exists():
        return None
    inside = False
    for line in smaps.read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= addr < hi
        elif inside and line.startswith("VmFlags:"):
            return line.split()[1:]
    return None


def test_a_large_array_is_an_anonymous_map_without_huge_page_advice() -> None:
    arr = _empty((1024, 168, 12), np.float32)
    assert arr.nbytes >= _MAP_MIN
    assert arr.shape == (1024, 168, 12) and arr.dtype == np.float32 and arr.flags.writeable
    assert not arr.any()  # fresh pages read as zeros
    arr[-1, -1, -1] = 2.5
    assert arr[-1, -1, -1] == 2.5
    if sys.platform.startswith("linux"):
        flags = _vm_flags(arr.ctypes.data + arr.nbytes // 2)
        assert flags is not None and "hg" not in flags  # hg: madvise(MADV_HUGEPAGE)
        numpys = np.empty(4 * _MAP_MIN, np.uint8)  # numpy advises its whole 2 MB pages inside
        assert "hg" in (_vm_flags(numpys.ctypes.data + numpys.nbytes // 2) or ["hg"])


def test_a_small_array_is_numpys() -> None:
    arr = _empty((3, 4), np.int64)
    assert arr.shape == (3, 4) and arr.dtype == np.int64 and arr.base is None


def test_growing_and_widening_keep_every_value() -> None:
    store = WindowStore(2)
    ids = [f"T{i}" for i in range(3000)]
    rows = store.rows_for(ids)  # grows past _MAP_MIN for the large arrays
    assert store._sum.nbytes >= _MAP_MIN
    rng = np.random.default_rng(7)
    store._sum[rows] = rng.normal(size=store._sum[rows].shape).astype(np.float32)
    store._cnt[rows] = rng.integers(0, 255, size=store._cnt[rows].shape, dtype=np.uint8)
    before_sum, before_cnt = store._sum[rows].copy(), store._cnt[rows].copy()
    store._widen(1000)
    assert store._cnt.dtype == np.uint16 and store._ctr.dtype == np.uint16 and store._acnt.dtype == np.uint16
    assert (store._cnt[rows] == before_cnt).all()
    more = store.rows_for([f"U{i}" for i in range(2000)])
    assert len(set(more.tolist()) & set(rows.tolist())) == 0
    assert (store._sum[rows] == before_sum).all() and (store._cnt[rows] == before_cnt).all()
