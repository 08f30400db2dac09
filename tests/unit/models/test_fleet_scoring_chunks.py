"""The sweep's chunks (``chunk_bounds``): contiguous, every item once, small first and last chunks when
the pass is pipelined (so the unoverlapped ends are short), fixed sizes otherwise."""

from __future__ import annotations

import pytest

from models.fleet_scoring import chunk_bounds

pytestmark = pytest.mark.unit


def _sizes(n: int, size: int, edge: int = 0) -> list[int]:
    bounds = chunk_bounds(n, size, edge)
    start = 0
    for a, b in bounds:  # contiguous, in order, none empty
        assert a == start and b > a
        start = b
    assert start == n
    return [b - a for a, b in bounds]


def test_fixed_sizes_without_an_edge() -> None:
    assert _sizes(0, 1024) == []
    assert _sizes(10, 3) == [3, 3, 3, 1]
    assert _sizes(10_000, 1024) == [1024] * 9 + [784]


def test_small_first_and_last_chunks() -> None:
    assert _sizes(10_000, 1024, 256) == [256] + [1024] * 9 + [272, 256]
    assert _sizes(2048, 1024, 256) == [256, 1024, 512, 256]
    assert _sizes(1536, 1024, 256) == [256, 1024, 256]
    # what is left before the last chunk is smaller than the edge: it goes into the last one
    assert _sizes(513, 1024, 256) == [256, 257]
    assert _sizes(600, 1024, 256) == [256, 344]


@pytest.mark.parametrize("n", [1, 2, 255, 256, 511, 512, 513, 1023, 1024, 1025, 1279, 1280, 1281, 5000])
def test_every_item_once_and_edges_bounded(n: int) -> None:
    sizes = _sizes(n, 1024, 256)
    assert max(sizes) <= 1024
    if n > 512:
        assert sizes[0] == 256 and sizes[-1] < 512


def test_an_edge_not_smaller_than_the_size_is_ignored() -> None:
    assert _sizes(10, 4, 4) == [4, 4, 2]
