"""Window state format 4 pinned by golden files, and the restore's guards against hostile headers.

``golden/window_v4_*.bin`` were written by the codec of commit f696bf9 (``golden/make_window_v4.py``)
from the golden v3 windows: whatever the kernels become, they must read those bytes to the same arrays
as the v3 files and write the very same bytes again (a checkpoint written by one version is restored
by the next, and an untouched turbine writes back exactly what it restored).
"""

from __future__ import annotations

import gc
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from models.features import FeatureWindow
from models.window_codec import OK, TOO_LONG, TOO_SHORT, TRUNCATED, body_size, decode_many
from models.window_store import _HEADER4, _HEADER4_DTYPE, _LAYOUTS, WindowStore, parse_state

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
V4 = sorted(p.name for p in GOLDEN.glob("window_v4_*.bin"))


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    out = parse_state(data)
    return {k: np.asarray(v) for k, v in out.items() if k not in ("turbine_id", "_top")}


def test_every_v4_golden_is_there() -> None:
    assert len(V4) == 6  # 2 cuts x 3 turbines, as the v3 files


@pytest.mark.parametrize("name", V4)
def test_v4_golden_reads_as_its_v3_source_and_writes_back_byte_identical(name: str) -> None:
    v4 = (GOLDEN / name).read_bytes()
    v3 = (GOLDEN / name.replace("window_v4_", "window_v3_")).read_bytes()
    got, want = _arrays(v4), _arrays(v3)
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    # bulk restore (the worker's path) and the one-state path write the same bytes back
    tid = parse_state(v4)["turbine_id"]
    single = WindowStore(1)
    single.load(tid, v4)
    assert single.to_bytes(single.row_of(tid)) == v4
    assert FeatureWindow.from_bytes(v4).to_bytes() == v4
    bulk = WindowStore(1)
    (row,) = bulk.load_many([tid], [v4]).tolist()
    assert bulk.to_bytes(row) == v4


def _v4_with(data: bytes, **fields: object) -> bytes:
    head = np.frombuffer(data[: _HEADER4.size], dtype=_HEADER4_DTYPE).copy()
    for k, v in fields.items():
        head[k] = v
    return head.tobytes() + data[_HEADER4.size :]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("_last_ts", 1e300),
        ("_last_ts", math.nan),
        ("_last_ts", math.inf),
        ("_first", -math.inf),
        ("_first", -1e18),
        ("_floor", math.nan),
        ("_newest", 1 << 60),
        ("_base_hour", -(1 << 61)),
        ("_fmin_s", -1.0),
        ("_late", -5),
        ("_total", -1),
    ],
)
def test_hostile_header_scalar_is_refused_naming_it(field: str, value: object) -> None:
    """A header whose times or counters no window can hold is corruption: refused with the field's name,
    the store unchanged (it loaded once and crashed the data-quality dict at the first sweep)."""
    good = (GOLDEN / V4[0]).read_bytes()
    bad = _v4_with(good, **{field: value})
    store = WindowStore(1)
    store.load_many(["keep"], [good])
    before = {k: getattr(store, k)[0].copy() for k in WindowStore._SPEC}
    with pytest.raises(ValueError, match=f"turbine x: corrupted FeatureWindow state: {field.lstrip('_')} = "):
        store.load_many(["x"], [bad])
    assert "x" not in store and len(store) == 1
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(store, k)[0], v, err_msg=k)
    with pytest.raises(ValueError, match=field.lstrip("_")):
        parse_state(bad)
    errors: list[tuple[int, str]] = []  # the sweep's path: skipped and named, the others load
    rows = store.load_many(["x", "y"], [bad, good], errors=errors)
    assert rows[0] == -1 and rows[1] >= 0 and "y" in store
    assert [i for i, _ in errors] == [0] and field.lstrip("_") in errors[0][1]


def test_hostile_v3_header_scalar_is_refused() -> None:
    v3 = bytearray((GOLDEN / "window_v3_0_WT-G01.bin").read_bytes())
    # v2/v3 header: magic ver flags n_bins k newest first last ...: ``last`` at offset 4+1+1+2+2+8+8
    struct.pack_into("<d", v3, 26, 1e300)
    with pytest.raises(ValueError, match="last_ts = "):
        WindowStore(1).load("x", bytes(v3))


def test_edge_times_still_load() -> None:
    """An empty window (infinite sentinels) and times inside datetime's range stay loadable."""
    empty = FeatureWindow("e").to_bytes()
    WindowStore(1).load_many(["e"], [empty])
    early = _v4_with(
        (GOLDEN / V4[0]).read_bytes(), _first=-62135596800.0, _floor=-math.inf, _last_ts=253402300799.0
    )
    store = WindowStore(1)
    store.load_many(["t"], [early])
    store.data_quality(store.rows_for(["t"]))


def test_unpack_statuses() -> None:
    """Each way a run-length body can be wrong gets its own status, and nothing is written for it."""
    lay = _LAYOUTS[0]
    raw = body_size(lay)
    # 130-byte runs of 7s, then one literal of zeros
    full = bytes([255, 7]) * (raw // 130) + bytes([raw % 130 - 1]) + bytes(raw % 130)
    cut = full[: -(raw % 130) - 1]  # ends between runs
    bodies = [
        full,
        full[:-1],  # the last literal is cut
        cut,  # short of the layout
        full + bytes([255, 1]),  # one run too many
        cut + bytes([255]),  # a run without its byte
    ]
    buf = b"".join(bodies)
    ends = np.cumsum([len(b) for b in bodies])
    starts = np.r_[0, ends[:-1]].astype(np.int64)
    store = WindowStore(len(bodies))
    rows = store.rows_for([str(i) for i in range(len(bodies))])
    for name in WindowStore._SPEC:
        getattr(store, name)[rows] = 0
    dsts, drows = store._section_arrays(
        rows, np.uint8, [np.zeros((len(bodies), 168 * n), dtype=np.uint8) for n in (12, 5, 4)]
    )
    status = decode_many(np.frombuffer(buf, dtype=np.uint8), starts, ends.astype(np.int64), dsts, drows, lay)
    assert status.tolist() == [OK, TRUNCATED, TOO_SHORT, TOO_LONG, TRUNCATED]
    assert (store._sum[rows[0]] != 0).any()  # 7s decoded into the first state's sections
    for r in rows[1:]:
        assert not store._sum[r].any()  # nothing written for a state that did not decode


def test_growth_keeps_held_rows_and_copies_no_free_ones() -> None:
    store = WindowStore(4)
    blob = (GOLDEN / V4[0]).read_bytes()
    store.load_many(["a", "b", "c"], [blob, blob, blob])
    store.remove(["c"])
    want = {k: getattr(store, k)[:2].copy() for k in WindowStore._SPEC}
    store.reserve(50)
    assert store.capacity >= 52
    for k, v in want.items():
        np.testing.assert_array_equal(getattr(store, k)[:2], v, err_msg=k)
    rows = store.load_many([f"n{i}" for i in range(40)], [blob] * 40)  # fresh rows decode fully
    for r in rows.tolist():
        for k in WindowStore._SPEC:
            np.testing.assert_array_equal(
                getattr(store, k)[r], getattr(store, k)[store.row_of("a")], err_msg=k
            )


def test_gc_is_left_enabled_by_a_failed_bulk_load() -> None:
    assert gc.isenabled()
    with pytest.raises(ValueError):
        WindowStore(1).load_many(["x"], [b"FWIN\x04" + bytes(200)])
    assert gc.isenabled()


def _counted(tid: str, per_hour: int) -> FeatureWindow:
    """A window whose largest count needs uint8 (per_hour < 256) or uint16 (more)."""
    w = FeatureWindow(tid)
    t0 = 1_790_000_000.0
    for k in range(per_hour):
        w.update({"event_time": t0 + k * 3600.0 / per_hour, "power_kw": float(k % 7)})
    w.update({"event_time": t0 + 7200.0, "power_kw": 1.0})
    return w


@pytest.mark.parametrize("pre_widen", [0, 300, 70_000])
@pytest.mark.parametrize("order", ["narrow first", "wide first"])
def test_counts_of_every_width_land_in_the_store(pre_widen: int, order: str) -> None:
    """Counts of the store's own width decode straight into its rows; other widths through arrays of
    their own, widened or converted: whatever the mix, the arrays equal the windows written."""
    windows = [_counted("n1", 5), _counted("w1", 400), _counted("n2", 9), _counted("w2", 300)]
    if order == "wide first":
        windows.reverse()
    blobs = [w.to_bytes() for w in windows]
    assert {b[5] for b in blobs} == {0, 1}  # uint8 and uint16 count widths
    store = WindowStore(2)
    store._widen(pre_widen)
    rows = store.load_many([w.turbine_id for w in windows], blobs)
    for w, r in zip(windows, rows.tolist(), strict=True):
        src = w.store
        s_row = src.row_of(w.turbine_id)
        for name in WindowStore._SPEC:
            np.testing.assert_array_equal(
                getattr(store, name)[r].astype(np.float64),
                getattr(src, name)[s_row].astype(np.float64),
                err_msg=name,
            )
        assert store.to_bytes(r) == w.to_bytes()
