"""A restore's decode on two threads and its rows faulted in ahead (``WindowStore.prefault``): the same
rows as a decode on one thread, bad states named whichever half they fall in, nothing of a failed call
left in the store, and a prefault never changes a byte of the store (it may run while rows are written)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

import models.window_store as ws
from models.features import K
from models.window_store import _HEADER4, WindowStore

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
N = 2 * ws._THREAD_MIN + 37  # two decode threads, halves of unequal size


def _source(n: int, seed: int = 5) -> tuple[WindowStore, np.ndarray, list[bytes]]:
    src = WindowStore(1)
    rows = src.rows_for([f"S{i}" for i in range(n)])
    rng = np.random.default_rng(seed)
    per = 12
    m = n * per
    src.ingest(
        np.repeat(rows, per),
        T0 + np.tile(np.arange(per) * 600.0, n),
        rng.normal(60, 15, (m, K)),
        rng.integers(0, 4, m),
        rng.normal(0, 90, (m, 3)),
    )
    return src, rows, src.to_bytes_many(rows)


def _bad_body(blob: bytes) -> bytes:
    """A consistent header whose 1-byte body says "128 literal bytes follow": fails only in the kernel."""
    hs = _HEADER4.size
    tid_len = int.from_bytes(blob[hs - 6 : hs - 4], "little")
    return blob[: hs - 4] + (1).to_bytes(4, "little") + blob[hs : hs + tid_len] + b"\x7f"


def test_two_decode_threads_give_the_rows_of_one() -> None:
    src, rows, blobs = _source(N)
    ids = [f"T{i}" for i in range(N)]
    one = WindowStore(1)
    got_one = one.load_many(ids, blobs)  # no overlap: decoded on this thread
    two = WindowStore(1)
    started: list[int] = []
    real = ws._V4Job.start

    def spy(job: ws._V4Job, *, thread: bool) -> None:
        real(job, thread=thread)
        started.append(len(job._threads))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ws._V4Job, "start", spy)
        got_two = two.load_many(ids, blobs, overlap=lambda r: None)
    assert started == [2]
    for name in WindowStore._SPEC:
        np.testing.assert_array_equal(getattr(two, name)[got_two], getattr(src, name)[rows], err_msg=name)
        np.testing.assert_array_equal(getattr(two, name)[got_two], getattr(one, name)[got_one], err_msg=name)
    assert two.data_quality(got_two) == one.data_quality(got_one)


@pytest.mark.parametrize("at", [3, N // 2 - 1, N // 2, N - 1])
def test_a_bad_state_in_either_half_is_named_and_nothing_stays(at: int) -> None:
    _src, _rows, blobs = _source(N)
    ids = [f"T{i}" for i in range(N)]
    bad = list(blobs)
    bad[at] = _bad_body(blobs[at])
    store = WindowStore(1)
    with pytest.raises(ValueError, match=f"turbine T{at}: corrupted FeatureWindow state: body ends inside"):
        store.load_many(ids, bad, overlap=lambda r: None)
    assert len(store) == 0 and len(store._free) == store.capacity
    errors: list[tuple[int, str]] = []
    got = store.load_many(ids, bad, overlap=lambda r: None, errors=errors)
    assert [i for i, _ in errors] == [at] and got[at] == -1 and (np.delete(got, at) >= 0).all()


def test_prefault_changes_no_byte_and_loads_stay_identical() -> None:
    src, rows, blobs = _source(N)
    ids = [f"T{i}" for i in range(N)]
    store = WindowStore(1)
    first = store.load_many(ids[:100], blobs[:100])
    before = {name: getattr(store, name)[first].copy() for name in WindowStore._SPEC}
    store.reserve(N - 100)
    t = store.prefault(N - 100)
    got = store.load_many(ids[100:], blobs[100:], overlap=lambda r: None)  # while it may still run
    if t is not None:
        t.join()
        # and once more over rows in use: the kernel maps pages, it never writes them
        again = store.prefault(len(store._free)) if store._free else None
        if again is not None:
            again.join()
    for name in WindowStore._SPEC:
        np.testing.assert_array_equal(getattr(store, name)[first], before[name], err_msg=name)
        np.testing.assert_array_equal(getattr(store, name)[got], getattr(src, name)[rows[100:]], err_msg=name)


def test_prefault_whole_pages_of_used_rows_keep_their_bytes() -> None:
    """Populating pages that hold rows in use (the madvise covers whole pages around free rows)."""
    src, rows, blobs = _source(300)
    store = WindowStore(1)
    got = store.load_many([f"T{i}" for i in range(300)], blobs)
    before = {name: getattr(store, name).copy() for name in WindowStore._SPEC}
    arrays = [getattr(store, name).reshape(store.capacity, -1) for name in WindowStore._SPEC]
    if ws._madvise() is not None:
        ws._populate(arrays)
    for name in WindowStore._SPEC:
        np.testing.assert_array_equal(getattr(store, name), before[name], err_msg=name)
        np.testing.assert_array_equal(getattr(store, name)[got], getattr(src, name)[rows], err_msg=name)


def test_prefault_is_nothing_without_rows_or_kernel_support(monkeypatch: pytest.MonkeyPatch) -> None:
    store = WindowStore(4)
    assert store.prefault(0) is None
    monkeypatch.setattr(ws, "_libc_madvise", [None])
    assert store.prefault(3) is None
    store.reserve(10)
    assert store.prefault(10) is None
