"""All feature windows of one worker in contiguous numpy arrays (row = turbine; hour bin x statistic).

Why columnar: one Python object per turbine made every event and every feature computation a
Python-level loop. Here a batch of events updates the rows with a handful of vectorised operations
(:meth:`WindowStore.ingest`) and the features of thousands of rows come from one fused kernel that
reads each row's ring in place (:meth:`WindowStore.features` -> :mod:`models.feature_kernels`).
``models.features.FeatureWindow`` is a view on one row, so every existing caller keeps its API.

Semantics (unchanged from the per-object window): each tracked signal of an event is added to the
bin of its hour in a 7-day ring (sum, count, max); an event older than the ring is dropped and
counted; only in-order events (time >= newest seen) extend identical-value runs (frozen sensors) and
count spikes; when the newest hour moves, the previous newest hour is folded into a 30-day
exponentially weighted baseline of hourly means; readings before a repair floor are ignored.

Dtypes (why each; measured: ``nbytes() / capacity`` = 16,832 bytes per turbine, arrays only,
``bench/bench_scoring.py``):

- ``_sum`` float32 (168 x 12): hourly sums of readings bounded by the contract (|x| <= 20,000); float32
  keeps ~7 significant digits, far below sensor noise, and halves the largest array. The batch path
  adds in float32 in event order (``np.add.at``), exactly as the sequential path does, so both agree
  to the bit.
- ``_max`` float16 (168 x 8): maxima of COMPONENT_SIGNALS only (the only maxima features use); values
  are clipped to +-65,504 (float16's range; contract bounds are <= 400 for these signals) and rounded
  to 11 significant bits (relative 4.9e-4: 0.04 degC at 80 degC, below sensor resolution).
- ``_cnt``, ``_ctr``, ``_acnt``: counts and counters in uint8, widened for the whole store to uint16,
  then uint32 (uint64), the first time a bin would overflow (e.g. 1-Hz data), never saturated. The
  missing-value counter is not stored: missing = events x K - readings (one or the other per event
  and signal). Stored counters: events, spikes, alarms, down, curtailed.
- ``_asum`` float32 (pitch, yaw sine, yaw cosine) and ``_acnt`` (pitch, wind direction, nacelle
  direction, yaw pairs): the operational auxiliary signals.
- per row: ``_last`` float64 (frozen-run equality compares exact readings), run lengths uint32, run
  starts / times / baseline float64, hours int64.

Every path that changes a row (``ingest``'s vectorised fast path, its per-event path, ``drop_before``,
``load``) goes through the same arithmetic, so the end state of a batch is identical to feeding its
events one by one (``tests/unit/models/test_window_store.py`` checks every array with hypothesis).
"""

from __future__ import annotations

import ctypes
import math
import mmap
import struct
import sys
import threading
import zlib
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from models.feature_kernels import (
    ACNT_NDIR,
    ACNT_PITCH,
    ACNT_WDIR,
    ACNT_YAW,
    ASUM_COS,
    ASUM_PITCH,
    ASUM_SIN,
    CTR_ALARMS,
    CTR_CURTAILED,
    CTR_DOWN,
    CTR_EVENTS,
    CTR_SPIKES,
    N_ACNT,
    N_ASUM,
    N_CTR,
    BinArrays,
    quality_dicts,
    ring_features,
    ring_quality_sums,
)
from models.signals import (
    AUX_COS,
    AUX_NDIR,
    AUX_PITCH,
    AUX_SIN,
    AUX_WDIR,
    BIN_SECONDS,
    C_ALARMS,
    C_CURTAILED,
    C_DOWN,
    C_EVENTS,
    C_SPIKES,
    DECAY,
    DEFAULT_FROZEN_MIN_COUNT,
    DEFAULT_FROZEN_MIN_SECONDS,
    KA,
    KC,
    N_BASE,
    N_BINS,
    N_COUNTERS,
    N_FEATURES,
    P_IDX,
    R_IDX,
    SPIKE_THR,
    STATUS_COUNTER,
    K,
)
from models.window_codec import STATUS_TEXT, Section, decode_many, encode_many, layout

if TYPE_CHECKING:
    from models.features import FeatureWindow
    from models.normal_model import NormalModel

#: Serialisation format of :meth:`WindowStore.to_bytes`; bump on any layout change. Version 4: a
#: fixed header with every per-row scalar, the turbine id, then the arrays byte-planed and run-length
#: coded (:mod:`models.window_codec`), so :meth:`WindowStore.load_many` decodes thousands of states
#: into the store's rows in one kernel call. Version 3 (the same arrays, zlib) and version 2 (the
#: per-object window: float64 sums, float32 maxima of every signal, six counters) are still read. Not
#: to be confused with ``models.signals.WINDOW_FORMAT_VERSION`` (the window's definition, which trained
#: models record): every format stores the same statistics.
STATE_FORMAT_VERSION = 4
_MAGIC = b"FWIN"
_HEADER = struct.Struct(
    "<4sBBHHqdddQQ"
)  # v2/v3: magic ver flags n_bins k newest first last fmin_s late total
#: v4: magic ver count-width n_bins k newest first last fmin_s late total fmin_c base_hour floor
#: id-length body-length; then the turbine id (UTF-8) and the coded body.
_HEADER4 = struct.Struct("<4sBBHHqdddqqIqdHI")
_HEADER4_DTYPE = np.dtype(
    [
        ("magic", "S4"),
        ("ver", "u1"),
        ("flags", "u1"),
        ("n_bins", "<u2"),
        ("k", "<u2"),
        ("_newest", "<i8"),
        ("_first", "<f8"),
        ("_last_ts", "<f8"),
        ("_fmin_s", "<f8"),
        ("_late", "<i8"),
        ("_total", "<i8"),
        ("_fmin_c", "<u4"),
        ("_base_hour", "<i8"),
        ("_floor", "<f8"),
        ("tid_len", "<u2"),
        ("body_len", "<u4"),
    ]
)
assert _HEADER4_DTYPE.itemsize == _HEADER4.size
_SCALARS4 = ("_newest", "_first", "_last_ts", "_fmin_s", "_late", "_total", "_fmin_c", "_base_hour", "_floor")
#: v4 body sections, in order (itemsize 0 = the state's count width)
_SECTIONS = (
    Section("_last", 1, K, 8, np.float64),
    Section("_run", 1, K, 4, np.uint32),
    Section("_run_start", 1, K, 8, np.float64),
    Section("_base_s", 1, N_BASE, 8, np.float64),
    Section("_base_w", 1, N_BASE, 8, np.float64),
    Section("_sum", N_BINS, K, 4, np.float32),
    Section("_max", N_BINS, KC, 2, np.float16),
    Section("_asum", N_BINS, N_ASUM, 4, np.float32),
    Section("_cnt", N_BINS, K, 0, None),
    Section("_ctr", N_BINS, N_CTR, 0, None),
    Section("_acnt", N_BINS, N_ACNT, 0, None),
)
_COUNT_SECTIONS = frozenset(i for i, sec in enumerate(_SECTIONS) if sec.itemsize == 0)
_LAYOUTS = [layout(_SECTIONS, np.dtype(dt).itemsize) for dt in (np.uint8, np.uint16, np.uint32, np.uint64)]
#: rows grow by this factor when full (doubling left up to half the arrays unused: 26.9 KB per turbine
#: at 10,000 turbines instead of 16.8; x1.2 keeps nbytes / turbines <= 20.2 KB, and the unused rows are
#: never touched, so they cost address space, not memory); a bulk load grows to the exact need.
GROWTH = 1.2
#: v2 flags: bit 0 = counts stored as uint16; bit 1 = auxiliary section; bit 2 = repair floor follows.
_V2_SMALL, _V2_AUX, _V2_FLOOR = 1, 2, 4
NO_HOUR = -(1 << 62)
_COUNT_DTYPES: tuple[type[np.unsignedinteger[Any]], ...] = (np.uint8, np.uint16, np.uint32, np.uint64)
_F16_MAX = float(np.finfo(np.float16).max)

_ALARM_CODES = np.array(sorted(s for s, c in STATUS_COUNTER.items() if c == C_ALARMS), dtype=np.int64)
_DOWN_CODES = np.array(sorted(s for s, c in STATUS_COUNTER.items() if c == C_DOWN), dtype=np.int64)
_CURT_CODES = np.array(sorted(s for s, c in STATUS_COUNTER.items() if c == C_CURTAILED), dtype=np.int64)
_STATUS_CTR = {
    s: {C_ALARMS: CTR_ALARMS, C_DOWN: CTR_DOWN, C_CURTAILED: CTR_CURTAILED}[c]
    for s, c in STATUS_COUNTER.items()
}

#: Baseline decay factors DECAY ** n for n < len (one table for every path, so all paths agree).
_DECAY_LIST = [DECAY**n for n in range(4096)]
_DECAY_TABLE = np.asarray(_DECAY_LIST)


_THR = [float(x) for x in SPIKE_THR]
_DEG = math.pi / 180.0


class _Views:
    """Flat memoryviews of a store's arrays (rebuilt when arrays are reallocated: grow, widen)."""

    def __init__(self, st: WindowStore) -> None:
        def flat(a: np.ndarray) -> Any:  # memoryview; items are Python floats or ints
            return a.reshape(-1).data

        self.sum, self.cnt, self.ctr = flat(st._sum), flat(st._cnt), flat(st._ctr)
        self.asum, self.acnt = flat(st._asum), flat(st._acnt)
        self.last, self.run, self.run_start = flat(st._last), flat(st._run), flat(st._run_start)
        self.base_s, self.base_w, self.base_hour = flat(st._base_s), flat(st._base_w), flat(st._base_hour)
        self.newest, self.first, self.last_ts = flat(st._newest), flat(st._first), flat(st._last_ts)
        self.floor, self.late, self.total = flat(st._floor), flat(st._late), flat(st._total)
        self.max_bits = flat(st._max.view(np.uint16))
        self.f32: Any = np.zeros(1, dtype=np.float32).data


_HALF: list[float] = []
_PACK_E = struct.Struct("<e")
_UNPACK_H = struct.Struct("<H")


def _half_table() -> list[float]:
    """Value of every float16 bit pattern (built once): the per-event path reads maxima through it."""
    if not _HALF:
        _HALF.extend(
            np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64).tolist()
        )
    return _HALF


def _f16_bits(x: float) -> int:
    """Bits of :func:`_f16` of one CLIPPED reading (struct rounds half to even from double, as numpy)."""
    return int(_UNPACK_H.unpack(_PACK_E.pack(x))[0])


def _yaw(diff_deg: float) -> tuple[float, float]:
    """float32 sine and cosine of one yaw error, with numpy's sin/cos over an array like the vectorised
    path (one implementation for both: the same bits whatever the array length)."""
    err = np.array([diff_deg]) * _DEG
    return float(np.sin(err).astype(np.float32)[0]), float(np.cos(err).astype(np.float32)[0])


def _decay(n: np.ndarray) -> np.ndarray:
    """``DECAY ** n`` per element, from the shared table (Python's pow beyond it)."""
    inside = (n >= 0) & (n < len(_DECAY_LIST))
    out = _DECAY_TABLE[np.where(inside, n, 0)]
    for i in np.flatnonzero(~inside):
        out[i] = DECAY ** int(n[i])
    return out


def _f16(v: np.ndarray) -> np.ndarray:
    """Maxima storage: clipped to float16's finite range, then rounded (monotonic, so max commutes)."""
    return np.minimum(np.maximum(v, -_F16_MAX), _F16_MAX).astype(np.float16)


#: store arrays of at least this many bytes get an anonymous map of their own (see :func:`_empty`)
_MAP_MIN = 4 << 20


def _empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """``np.empty(shape, dtype)`` for a store's arrays: one of :data:`_MAP_MIN` bytes or more is a
    private anonymous map of its own (zero pages until written; unmapped when the array goes).

    Why not numpy's: numpy asks for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every array
    from 4 MB, and with THP in "madvise" mode each first touch then zeroes a whole 2 MB page. A cold
    restore faults in ~170 MB of new rows (10,000 windows): measured on this VM, populating them took
    32-708 ms with 2 MB pages (474 ms in the run next to this one; ``compact_stall`` stayed 0: the cost
    is the zeroing and the hypervisor's backing of fresh memory, not compaction) against 54-62 ms as
    4 KB pages; the cold decode of 10,000 windows 581 vs 166-186 ms of CPU. 4 KB pages also keep the
    resident size to the rows really used."""
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    if nbytes < _MAP_MIN or not hasattr(mmap, "MAP_PRIVATE"):
        return np.empty(shape, dtype=dt)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(buf, dtype=dt).reshape(shape)


def _count_dtype_for(value: int) -> type[np.unsignedinteger[Any]]:
    for dt in _COUNT_DTYPES:
        if value <= np.iinfo(dt).max:
            return dt
    raise OverflowError(f"count {value} does not fit 64 bits")


class WindowStore:
    """All windows of one worker in contiguous arrays (row = turbine x hour bin x signal statistics).

    Rows grow by :data:`GROWTH` (a bulk :meth:`load_many` to the exact need); freed rows
    (:meth:`remove`) are reused. ``window(tid)`` returns a live
    :class:`models.features.FeatureWindow` view of a row (it stays valid until that turbine is removed).
    """

    #: name -> (shape after the row axis, dtype or "count", fill value of an empty row)
    _SPEC: dict[str, tuple[tuple[int, ...], Any, float]] = {
        "_sum": ((N_BINS, K), np.float32, 0.0),
        "_cnt": ((N_BINS, K), "count", 0),
        "_max": ((N_BINS, KC), np.float16, -math.inf),
        "_ctr": ((N_BINS, N_CTR), "count", 0),
        "_asum": ((N_BINS, N_ASUM), np.float32, 0.0),
        "_acnt": ((N_BINS, N_ACNT), "count", 0),
        "_last": ((K,), np.float64, math.nan),
        "_run": ((K,), np.uint32, 0),
        "_run_start": ((K,), np.float64, 0.0),
        "_base_s": ((N_BASE,), np.float64, 0.0),
        "_base_w": ((N_BASE,), np.float64, 0.0),
        "_base_hour": ((), np.int64, NO_HOUR),
        "_newest": ((), np.int64, NO_HOUR),
        "_first": ((), np.float64, math.inf),
        "_last_ts": ((), np.float64, -math.inf),
        "_floor": ((), np.float64, -math.inf),
        "_late": ((), np.int64, 0),
        "_total": ((), np.int64, 0),
        "_fmin_c": ((), np.int64, 0),
        "_fmin_s": ((), np.float64, 0.0),
    }

    _sum: np.ndarray
    _cnt: np.ndarray
    _max: np.ndarray
    _ctr: np.ndarray
    _asum: np.ndarray
    _acnt: np.ndarray
    _last: np.ndarray
    _run: np.ndarray
    _run_start: np.ndarray
    _base_s: np.ndarray
    _base_w: np.ndarray
    _base_hour: np.ndarray
    _newest: np.ndarray
    _first: np.ndarray
    _last_ts: np.ndarray
    _floor: np.ndarray
    _late: np.ndarray
    _total: np.ndarray
    _fmin_c: np.ndarray
    _fmin_s: np.ndarray

    def __init__(
        self,
        capacity: int = 1024,
        *,
        frozen_min_count: int = DEFAULT_FROZEN_MIN_COUNT,
        frozen_min_seconds: float = DEFAULT_FROZEN_MIN_SECONDS,
    ) -> None:
        self.frozen_min_count = int(frozen_min_count)
        self.frozen_min_seconds = float(frozen_min_seconds)
        self._cdtype: type[np.unsignedinteger[Any]] = np.uint8
        self._cmax = int(np.iinfo(np.uint8).max)
        self._mv: _Views | None = None
        self._used = np.zeros(0, dtype=bool)
        self._row: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._free: list[int] = []
        self._cap = 0
        self._grow(max(1, int(capacity)))

    # ---------------------------------------------------------------- rows
    def _grow(self, capacity: int) -> None:
        """Reallocate every array for ``capacity`` rows. Rows not allocated hold no defined value
        (``np.empty``: their pages cost no memory until used): :meth:`_allocate` resets a row, a bulk
        load writes every array of it. Only rows up to the last one in use are copied (free rows hold
        nothing: copying a fresh worker's empty rows faulted in ~17 MB for nothing)."""
        old = self._cap
        held = np.flatnonzero(self._used[:old])
        keep = int(held[-1]) + 1 if len(held) else 0
        for name, (shape, dtype, _fill) in self._SPEC.items():
            dt = self._cdtype if dtype == "count" else dtype
            arr = _empty((capacity, *shape), dt)
            if keep:
                arr[:keep] = getattr(self, name)[:keep]
            setattr(self, name, arr)
        self._mv = None
        used = np.zeros(capacity, dtype=bool)
        used[:old] = self._used[:old]
        self._used = used
        self._ids.extend([None] * (capacity - old))
        self._free[:0] = range(capacity - 1, old - 1, -1)  # pop() hands out the lowest row first
        self._cap = capacity

    def _reset(self, row: int) -> None:
        for name, (_shape, _dtype, fill) in self._SPEC.items():
            getattr(self, name)[row] = fill
        self._fmin_c[row] = self.frozen_min_count
        self._fmin_s[row] = self.frozen_min_seconds

    def _reserve(self, extra: int, *, exact: bool = False) -> None:
        """Make room for ``extra`` more rows: by at least :data:`GROWTH`, or (``exact``, a bulk load)
        to the exact need when that is more than the step (a few rows at a time would otherwise copy
        the whole store for each)."""
        short = extra - len(self._free)
        if short <= 0:
            return
        step = math.ceil(self._cap * GROWTH)
        target = self._cap + short
        if not exact or target < step:
            target = max(target, step)
        self._grow(target)

    def reserve(self, extra: int) -> None:
        """Room for ``extra`` more rows in one growth (a restore read in chunks knows its total first:
        loading chunk by chunk would otherwise copy the whole store at each growth)."""
        self._reserve(extra, exact=True)

    def prefault(self, count: int) -> threading.Thread | None:
        """Fault in, on a helper thread, the memory of the next ``count`` rows a load takes (the lowest
        free rows, when they are one run): ``madvise(MADV_POPULATE_WRITE)``, which maps the pages
        without changing a byte, so the rows may be written meanwhile. Returns the thread (None when
        there is nothing to do or the kernel lacks it: Linux < 5.14).

        Why: a restore decodes ~17 KB per window into fresh pages; their first-touch faults were ~40 %
        of the decode's CPU (on this VM, 10,000 windows: ~100 ms), on the restore's critical path. Started
        when the row count is known, before the first rows arrive, they run while the DB read waits."""
        count = min(count, len(self._free))
        if count <= 0 or _madvise() is None:
            return None
        lo = self._free[-1]
        hi = lo + count
        if self._free[-count] != hi - 1 or hi > self._cap:
            return None
        arrays = [getattr(self, name).reshape(self._cap, -1)[lo:hi] for name in self._SPEC]
        t = threading.Thread(target=_populate, args=(arrays,), name="window-prefault", daemon=True)
        t.start()
        return t

    def _allocate(self, turbine_id: str) -> int:
        if not self._free:
            self._reserve(1)
        row = self._free.pop()
        self._reset(row)
        self._ids[row] = turbine_id
        self._used[row] = True
        self._row[turbine_id] = row
        return row

    def row_of(self, turbine_id: str) -> int | None:
        return self._row.get(turbine_id)

    def rows_for(self, turbine_ids: Sequence[str]) -> np.ndarray:
        """Rows of these turbines (allocated, empty, for ids not seen yet), as an intp array."""
        out = np.empty(len(turbine_ids), dtype=np.intp)
        get = self._row.get
        new = sum(1 for tid in turbine_ids if tid not in self._row)
        if new > len(self._free):
            self._reserve(new)
        for i, tid in enumerate(turbine_ids):
            row = get(tid)
            out[i] = self._allocate(tid) if row is None else row
        return out

    def remove(self, turbine_ids: Iterable[str]) -> None:
        """Forget these turbines; their rows are reused by later allocations."""
        for tid in turbine_ids:
            row = self._row.pop(tid, None)
            if row is not None:
                self._ids[row] = None
                self._used[row] = False
                self._free.append(row)

    def turbine_ids(self) -> list[str]:
        return list(self._row)

    def turbine_id_of(self, row: int) -> str:
        tid = self._ids[row]
        if tid is None:
            raise KeyError(f"row {row} is free")
        return tid

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, turbine_id: object) -> bool:
        return turbine_id in self._row

    def window(self, turbine_id: str) -> FeatureWindow:
        """A live :class:`~models.features.FeatureWindow` view of the turbine's row (allocated if new)."""
        from models.features import FeatureWindow

        row = int(self.rows_for([turbine_id])[0])
        return FeatureWindow.view(self, row)

    def nbytes(self) -> int:
        """Bytes held by the arrays (capacity rows, not only the used ones)."""
        return sum(getattr(self, name).nbytes for name in self._SPEC)

    @property
    def capacity(self) -> int:
        return self._cap

    @property
    def count_dtype(self) -> np.dtype[Any]:
        return np.dtype(self._cdtype)

    def _widen(self, needed: int) -> None:
        """Make the count arrays hold ``needed`` (whole store; the first time a bin would overflow)."""
        if needed <= np.iinfo(self._cdtype).max:
            return
        dt = _count_dtype_for(needed)
        self._cdtype = dt
        self._cmax = int(np.iinfo(dt).max)
        self._mv = None
        for name in ("_cnt", "_ctr", "_acnt"):
            old = getattr(self, name)
            arr = _empty(old.shape, dt)
            arr[...] = old
            setattr(self, name, arr)

    def take(self, rows: np.ndarray) -> WindowStore:
        """A new store holding a copy of ``rows`` (row ``i`` of it = ``rows[i]`` here, same turbine ids,
        same count width): one fancy-index copy per array. A checkpoint takes it under the runtime's
        lock and encodes it outside (``take(rows).to_bytes_many(arange)`` == ``to_bytes_many(rows)``)."""
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        n = len(rows)
        out = WindowStore.__new__(WindowStore)
        out.frozen_min_count, out.frozen_min_seconds = self.frozen_min_count, self.frozen_min_seconds
        out._cdtype, out._cmax = self._cdtype, self._cmax
        out._mv = None
        for name in self._SPEC:
            setattr(out, name, getattr(self, name)[rows])
        ids = [self.turbine_id_of(int(r)) for r in rows]
        out._ids = list(ids)
        out._row = {tid: i for i, tid in enumerate(ids)}
        out._used = np.ones(n, dtype=bool)
        out._free = []
        out._cap = n
        return out

    def copy_rows(self, src: WindowStore, src_rows: np.ndarray, dst_rows: np.ndarray) -> None:
        """Copy the state of ``src_rows`` of ``src`` into this store's (allocated) ``dst_rows``."""
        self._widen(int(np.iinfo(src._cdtype).max) if src._cdtype != self._cdtype else 0)
        for name in self._SPEC:
            getattr(self, name)[dst_rows] = getattr(src, name)[src_rows]

    # ---------------------------------------------------------------- ingestion
    def ingest(
        self,
        rows: np.ndarray,
        ts: np.ndarray,
        values: np.ndarray,
        status: np.ndarray,
        aux: np.ndarray | None = None,
    ) -> None:
        """Add a batch of events (arrival order): ``values`` (n, K) float64 in TRACKED_SIGNALS order and
        ``aux`` (n, 3) float64 = pitch angle, wind direction, nacelle direction, NaN = missing; ``status``
        (n,) int; ``ts`` epoch seconds.

        The end state is identical to feeding the events one by one in that order. Rows whose events
        in the batch are in time order, start at or after the row's newest event and span less than
        the ring (the live case) take a vectorised path; every other row (out-of-order or late
        events, a gap longer than the ring) takes the per-event path on the same arrays.
        """
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        ts = np.asarray(ts, dtype=np.float64).reshape(-1)
        n = len(rows)
        values = np.asarray(values, dtype=np.float64).reshape(n, K)
        status = np.asarray(status, dtype=np.int64).reshape(n)
        aux = np.full((n, 3), np.nan) if aux is None else np.asarray(aux, dtype=np.float64).reshape(n, 3)
        if len(ts) != n:
            raise ValueError(f"ingest: {len(ts)} times for {n} rows")
        if n == 0:
            return
        if not np.isfinite(ts).all():
            bad = int(np.flatnonzero(~np.isfinite(ts))[0])
            raise ValueError(f"ingest: event {bad} has a non-finite time {ts[bad]!r}")
        if rows.min() < 0 or rows.max() >= self._cap or not self._used[rows].all():
            raise ValueError("ingest: a row is not allocated (use rows_for)")
        keep = ts >= self._floor[rows]  # before the turbine's last repair: ignored, like update()
        if not keep.all():
            rows, ts, values, status, aux = rows[keep], ts[keep], values[keep], status[keep], aux[keep]
            if not len(rows):
                return
        order = np.argsort(rows, kind="stable")
        r_s, t_s = rows[order], ts[order]
        starts = np.flatnonzero(np.r_[True, r_s[1:] != r_s[:-1]])
        ends = np.r_[starts[1:], len(r_s)]
        urows = r_s[starts]
        h_s = np.floor_divide(t_s, float(BIN_SECONDS)).astype(np.int64)
        decreasing = np.r_[False, (t_s[1:] < t_s[:-1]) & (r_s[1:] == r_s[:-1])]
        bad_order = np.add.reduceat(decreasing, starts) > 0
        newest = self._newest[urows]
        base = np.where(newest == NO_HOUR, h_s[starts], newest)
        fast = ~bad_order & (t_s[starts] >= self._last_ts[urows]) & (h_s[ends - 1] - base < N_BINS)
        if fast.all():
            self._ingest_fast(r_s, t_s, h_s, values[order], status[order], aux[order], starts, ends, urows)
            return
        seg_fast = np.repeat(fast, ends - starts)
        if seg_fast.any():
            sel = order[seg_fast]
            f_starts = np.flatnonzero(np.r_[True, rows[sel][1:] != rows[sel][:-1]])
            f_ends = np.r_[f_starts[1:], len(sel)]
            self._ingest_fast(
                rows[sel],
                ts[sel],
                h_s[seg_fast],
                values[sel],
                status[sel],
                aux[sel],
                f_starts,
                f_ends,
                urows[fast],
            )
        slow_rows = np.zeros(self._cap, dtype=bool)
        slow_rows[urows[~fast]] = True
        for i in np.flatnonzero(slow_rows[rows]):  # arrival order
            self._ingest_one(int(rows[i]), float(ts[i]), values[i], int(status[i]), aux[i])

    def _views(self) -> _Views:
        """Flat memoryviews of the arrays for the per-event path (Python floats, no numpy scalars)."""
        if self._mv is None:
            self._mv = _Views(self)
        return self._mv

    def _ingest_one(
        self, r: int, ts: float, v: np.ndarray | list[float], status: int, a: np.ndarray | list[float] | None
    ) -> None:
        """The per-event path (``FeatureWindow.update`` and the rows ``ingest`` cannot vectorise).

        Scalar Python over memoryviews (no numpy call per event except when the hour moves). Float32
        sums: the reading is rounded to float32, then added in double and rounded again, which is
        exactly float32 addition (a double holds the exact sum of two float32), as the vectorised
        path's float32 ``np.add.at``; maxima go through the same float16 rounding (``_f16_bits``).
        """
        mv = self._mv if self._mv is not None else self._views()
        if ts < mv.floor[r]:
            return
        hour = int(ts // BIN_SECONDS)
        newest = mv.newest[r]
        if hour > newest:
            self._advance(r, hour)
        elif hour <= newest - N_BINS:
            mv.late[r] += 1
            return
        mv.total[r] += 1
        slot = hour % N_BINS
        vals = v.tolist() if isinstance(v, np.ndarray) else v
        in_order = ts >= mv.last_ts[r]
        if in_order:
            mv.last_ts[r] = ts
        if ts < mv.first[r]:
            mv.first[r] = ts
        bin_ = r * N_BINS + slot
        cb = bin_ * N_CTR
        if mv.ctr[cb + CTR_EVENTS] + 1 > self._cmax:
            self._widen(mv.ctr[cb + CTR_EVENTS] + 1)
            mv = self._views()
        base = bin_ * K
        lb = r * K
        s, c, last, run, rs, f32 = mv.sum, mv.cnt, mv.last, mv.run, mv.run_start, mv.f32
        mh, tab, mb = mv.max_bits, _half_table(), bin_ * KC
        spikes = 0
        for k in range(K):
            x = vals[k]
            if x != x:
                continue
            j = base + k
            try:
                f32[0] = x
                s[j] = s[j] + f32[0]
            except OverflowError:  # beyond float32: inf, like numpy
                with np.errstate(over="ignore", invalid="ignore"):
                    self._sum.reshape(-1)[j] += np.float64(x).astype(np.float32)
            c[j] += 1
            if k < KC:  # hourly maximum in float16 (clipped as _f16: a -inf reading counts as -65504)
                xc = -_F16_MAX if x < -_F16_MAX else (_F16_MAX if x > _F16_MAX else x)
                if xc > tab[mh[mb + k]]:
                    mh[mb + k] = _f16_bits(xc)
            if in_order:
                q = lb + k
                p = last[q]
                if x == p:
                    run[q] += 1
                else:
                    if abs(x - p) > _THR[k]:
                        spikes += 1
                    last[q] = x
                    run[q] = 1
                    rs[q] = ts
        ctr = mv.ctr
        if spikes:
            if ctr[cb + CTR_SPIKES] + spikes > self._cmax:
                self._widen(ctr[cb + CTR_SPIKES] + spikes)
                mv = self._views()
                ctr = mv.ctr
            ctr[cb + CTR_SPIKES] += spikes
        ctr[cb + CTR_EVENTS] += 1
        if status:
            which = _STATUS_CTR.get(status)
            if which is not None:
                ctr[cb + which] += 1
        if a is None:
            return
        pitch, wdir, ndir = a.tolist() if isinstance(a, np.ndarray) else a
        ab, ac = bin_ * N_ASUM, bin_ * N_ACNT
        asum, acnt, f32 = mv.asum, mv.acnt, mv.f32
        if math.isfinite(pitch):
            f32[0] = pitch
            asum[ab + ASUM_PITCH] = asum[ab + ASUM_PITCH] + f32[0]
            acnt[ac + ACNT_PITCH] += 1
        w_ok, n_ok = math.isfinite(wdir), math.isfinite(ndir)
        if w_ok:
            acnt[ac + ACNT_WDIR] += 1
        if n_ok:
            acnt[ac + ACNT_NDIR] += 1
        if w_ok and n_ok:
            sin, cos = _yaw(ndir - wdir)
            asum[ab + ASUM_SIN] = asum[ab + ASUM_SIN] + sin
            asum[ab + ASUM_COS] = asum[ab + ASUM_COS] + cos
            acnt[ac + ACNT_YAW] += 1

    def _advance(self, r: int, hour: int) -> None:
        """Move row ``r``'s ring to ``hour``: fold the previous newest hour, clear skipped / reused bins."""
        old = int(self._newest[r])
        if old != NO_HOUR:
            self._fold_one(r, old)
            n = min(hour - old, N_BINS)
            if n <= 4:
                for h in range(old + 1, old + 1 + n):
                    slot = h % N_BINS
                    self._sum[r, slot] = 0.0
                    self._cnt[r, slot] = 0
                    self._max[r, slot] = -np.inf
                    self._ctr[r, slot] = 0
                    self._asum[r, slot] = 0.0
                    self._acnt[r, slot] = 0
            else:
                self._clear(np.full(n, r), (old + 1 + np.arange(n)) % N_BINS)
        self._newest[r] = hour

    def _fold_one(self, r: int, hour: int) -> None:
        """:meth:`_fold` of one row in scalar Python (same operations in the same order)."""
        mv = self._views()
        bs, bw = mv.base_s, mv.base_w
        o = r * N_BASE
        bh = mv.base_hour[r]
        if bh != NO_HOUR:
            n = hour - bh
            d = _DECAY_LIST[n] if 0 <= n < len(_DECAY_LIST) else DECAY**n
            for i in range(o, o + N_BASE):
                bs[i] *= d
                bw[i] *= d
        mv.base_hour[r] = hour
        bin_ = r * N_BINS + hour % N_BINS
        cb = bin_ * N_CTR
        if mv.ctr[cb + CTR_DOWN] or mv.ctr[cb + CTR_CURTAILED]:
            return
        base = bin_ * K
        s, c = mv.sum, mv.cnt
        for k in range(K):
            n = c[base + k]
            if n:
                m = s[base + k] / n
                bs[o + k] += m
                bw[o + k] += 1.0
                if k == P_IDX:
                    bs[o + K] += m * m
                    bw[o + K] += 1.0
                elif k == R_IDX:
                    bs[o + K + 1] += m * m
                    bw[o + K + 1] += 1.0

    def _clear(self, rows: np.ndarray, slots: np.ndarray) -> None:
        self._sum[rows, slots] = 0.0
        self._cnt[rows, slots] = 0
        self._max[rows, slots] = -np.inf
        self._ctr[rows, slots] = 0
        self._asum[rows, slots] = 0.0
        self._acnt[rows, slots] = 0

    def _fold(self, rows: np.ndarray, hours: np.ndarray) -> None:
        """Fold the completed bins of ``hours`` into the rows' 30-day baselines (rows unique).

        Down-time and curtailed hours only decay the baseline: they are not "normal operation".
        """
        bh = self._base_hour[rows]
        has = bh != NO_HOUR
        if has.any():
            d = _decay(hours[has] - bh[has])[:, None]
            self._base_s[rows[has]] *= d
            self._base_w[rows[has]] *= d
        self._base_hour[rows] = hours
        slots = hours % N_BINS
        c = self._ctr[rows, slots]
        normal = (c[:, CTR_DOWN] == 0) & (c[:, CTR_CURTAILED] == 0)
        if not normal.all():
            rows, slots = rows[normal], slots[normal]
        if not len(rows):
            return
        n = self._cnt[rows, slots].astype(np.float64)
        ok = n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            m = self._sum[rows, slots].astype(np.float64) / n
        bs, bw = self._base_s[rows], self._base_w[rows]
        bw[:, :K][ok] += 1.0
        with np.errstate(invalid="ignore", over="ignore"):  # inf readings: inf / NaN, like one by one
            bs[:, :K][ok] += m[ok]
            for k, col in ((P_IDX, K), (R_IDX, K + 1)):
                okk = ok[:, k]
                bs[okk, col] += m[okk, k] * m[okk, k]
                bw[okk, col] += 1.0
        self._base_s[rows] = bs
        self._base_w[rows] = bw

    def _ingest_fast(
        self,
        r: np.ndarray,
        t: np.ndarray,
        h: np.ndarray,
        v: np.ndarray,
        st: np.ndarray,
        a: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        urows: np.ndarray,
    ) -> None:
        """Vectorised path: events grouped by row (``starts``/``ends``), in time order within each row,
        none older than the row's newest event, spanning less than the ring."""
        m = len(r)
        lens = ends - starts
        seg = np.repeat(np.arange(len(urows)), lens)
        seg_start = starts[seg]
        idx = np.arange(m)
        old = self._newest[urows]
        has_old = old != NO_HOUR
        hfirst, hlast = h[starts], h[ends - 1]
        start_h = np.where(has_old, old, hfirst)

        # 1. clear the bins of the hours the ring moves over: (start_h, hlast]
        n_clear = hlast - start_h
        if n_clear.any():
            k = np.arange(N_BINS)
            mask = ((k[None, :] - (start_h[:, None] + 1)) % N_BINS) < n_clear[:, None]
            cr, cs = np.nonzero(mask)
            self._clear(urows[cr], cs)

        # 2. spikes and identical-value runs per (row, signal): previous valid reading by forward fill
        valid = ~np.isnan(v)
        vidx = np.where(valid, idx[:, None], -1)
        prev_idx = np.maximum.accumulate(vidx, axis=0)
        prev_idx = np.vstack([np.full((1, K), -1), prev_idx[:-1]])
        in_seg = prev_idx >= seg_start[:, None]
        last_old = self._last[urows]
        prev_val = np.where(in_seg, v[np.maximum(prev_idx, 0), np.arange(K)], last_old[seg])
        with np.errstate(invalid="ignore"):
            same = v == prev_val
            change = valid & ~same
            spike = change & (np.abs(v - prev_val) > SPIKE_THR)
        spikes_ev = spike.sum(axis=1)
        cidx = np.where(change, idx[:, None], -1)
        lc = np.maximum.reduceat(cidx, starts, axis=0)
        has_change = lc >= starts[:, None]
        cvp = np.vstack([np.zeros((1, K), dtype=np.int64), np.cumsum(valid, axis=0)])
        n_valid = cvp[ends] - cvp[starts]
        lc0 = np.maximum(lc, 0)
        n_after = cvp[ends] - np.take_along_axis(cvp, lc0, axis=0)  # valid readings from the last change on
        cols = np.arange(K)[None, :]
        run = self._run[urows]
        self._run[urows] = np.where(has_change, n_after, run + n_valid).astype(np.uint32)
        self._last[urows] = np.where(has_change, v[lc0, cols], last_old)
        self._run_start[urows] = np.where(has_change, t[lc0], self._run_start[urows])

        # 3. per-bin counters (exact increments first: they decide whether the counts must widen)
        binidx = r * N_BINS + h % N_BINS
        ukey, inv = np.unique(binidx, return_inverse=True)
        nu = len(ukey)
        ev_inc = np.bincount(inv, minlength=nu)
        sp_inc = np.bincount(inv, weights=spikes_ev, minlength=nu).astype(np.int64)
        ctr = self._ctr.reshape(-1, N_CTR)
        cur = ctr[ukey]
        need = max(int((cur[:, CTR_EVENTS] + ev_inc).max()), int((cur[:, CTR_SPIKES] + sp_inc).max()))
        if need > np.iinfo(self._cdtype).max:
            self._widen(need)
            ctr = self._ctr.reshape(-1, N_CTR)
            cur = ctr[ukey]
        inc = np.zeros((nu, N_CTR), dtype=np.int64)
        inc[:, CTR_EVENTS] = ev_inc
        inc[:, CTR_SPIKES] = sp_inc
        for col, codes in ((CTR_ALARMS, _ALARM_CODES), (CTR_DOWN, _DOWN_CODES), (CTR_CURTAILED, _CURT_CODES)):
            hit = np.isin(st, codes)
            if hit.any():
                inc[:, col] = np.bincount(inv[hit], minlength=nu)
        ctr[ukey] = cur + inc.astype(self._cdtype)

        # 4. sums (float32, in event order), counts, maxima
        ev_i, k_i = np.nonzero(valid)
        flat = binidx[ev_i] * K + k_i
        with np.errstate(invalid="ignore", over="ignore"):
            np.add.at(self._sum.reshape(-1), flat, v[ev_i, k_i].astype(np.float32))
        cnt = self._cnt.reshape(-1, K)
        cinc = np.bincount(inv[ev_i] * K + k_i, minlength=nu * K).reshape(nu, K)
        cnt[ukey] += cinc.astype(self._cdtype)
        comp = k_i < KC
        if comp.any():
            fl = binidx[ev_i[comp]] * KC + k_i[comp]
            np.maximum.at(self._max.reshape(-1), fl, _f16(v[ev_i[comp], k_i[comp]]))

        # 5. auxiliary signals
        ok = np.isfinite(a)
        acnt = self._acnt.reshape(-1, N_ACNT)
        ainc = np.zeros((nu, N_ACNT), dtype=np.int64)
        asum = self._asum.reshape(-1)
        if ok[:, 0].any():
            sel = np.flatnonzero(ok[:, 0])
            np.add.at(asum, binidx[sel] * N_ASUM + ASUM_PITCH, a[sel, 0].astype(np.float32))
            ainc[:, ACNT_PITCH] = np.bincount(inv[sel], minlength=nu)
        ainc[:, ACNT_WDIR] = np.bincount(inv, weights=ok[:, 1], minlength=nu).astype(np.int64)
        ainc[:, ACNT_NDIR] = np.bincount(inv, weights=ok[:, 2], minlength=nu).astype(np.int64)
        both = ok[:, 1] & ok[:, 2]
        if both.any():
            sel = np.flatnonzero(both)
            err = (a[sel, 2] - a[sel, 1]) * _DEG  # numpy sin/cos, as the per-event path (_yaw)
            np.add.at(asum, binidx[sel] * N_ASUM + ASUM_SIN, np.sin(err).astype(np.float32))
            np.add.at(asum, binidx[sel] * N_ASUM + ASUM_COS, np.cos(err).astype(np.float32))
            ainc[:, ACNT_YAW] = np.bincount(inv[sel], minlength=nu)
        acnt[ukey] += ainc.astype(self._cdtype)

        # 6. per-row scalars
        self._total[urows] += lens
        self._first[urows] = np.minimum(self._first[urows], t[starts])
        self._last_ts[urows] = t[ends - 1]
        self._newest[urows] = hlast

        # 7. fold completed hours into the baseline, in order: the previous newest hour each time the
        #    newest hour moved (old newest, then every batch hour but the last)
        new_hour = np.r_[True, h[1:] != h[:-1]] | (idx == seg_start)
        f_seg, f_hour = seg[new_hour], h[new_hour]
        add_old = has_old & (old < hfirst)
        if add_old.any():
            f_seg = np.r_[np.flatnonzero(add_old), f_seg]
            f_hour = np.r_[old[add_old], f_hour]
            o = np.argsort(f_seg, kind="stable")
            f_seg, f_hour = f_seg[o], f_hour[o]
        last_of_seg = np.r_[f_seg[1:] != f_seg[:-1], True]
        f_seg, f_hour = f_seg[~last_of_seg], f_hour[~last_of_seg]
        if len(f_seg):
            first_pos = np.flatnonzero(np.r_[True, f_seg[1:] != f_seg[:-1]])
            rank = np.arange(len(f_seg)) - np.repeat(first_pos, np.diff(np.r_[first_pos, len(f_seg)]))
            for step in range(int(rank.max()) + 1):
                sel = rank == step
                self._fold(urows[f_seg[sel]], f_hour[sel])

    # ---------------------------------------------------------------- repairs
    def drop_before(self, row: int, ts: float) -> int:
        """Forget what the row holds from before ``ts`` (a repair, epoch seconds); returns hours cleared.

        See :meth:`models.features.FeatureWindow.drop_before` for the rules.
        """
        ts = float(ts)
        if not math.isfinite(ts) or ts <= self._floor[row]:
            return 0
        self._floor[row] = ts
        cutoff = math.ceil(ts / BIN_SECONDS)  # first hour kept: it starts at or after ts
        newest = int(self._newest[row])
        if newest != NO_HOUR and cutoff <= newest - N_BINS + 1:
            # A repair older than the whole window (recorded late): every hour held is after it; the
            # baseline keeps its post-repair weeks. Only later-arriving older readings are refused.
            self._first[row] = max(float(self._first[row]), ts)
            return 0
        cleared = 0
        if newest != NO_HOUR:
            hours = np.arange(newest - N_BINS + 1, min(cutoff, newest + 1))
            slots = hours % N_BINS
            cleared = int(np.count_nonzero(self._ctr[row, slots, CTR_EVENTS]))
            self._clear(np.full(len(slots), row), slots)
        self._base_s[row] = 0.0
        self._base_w[row] = 0.0
        self._base_hour[row] = NO_HOUR
        if newest != NO_HOUR:
            rr = np.array([row])
            for hh in range(max(cutoff, newest - N_BINS + 1), newest):  # completed hours kept
                self._fold(rr, np.array([hh], dtype=np.int64))
        ended = self._run_start[row] < ts
        self._run[row][ended] = 0
        self._last[row][ended] = math.nan
        last_ts = float(self._last_ts[row])
        if last_ts == -math.inf:
            return cleared
        # nothing kept when the repair is after the newest event: the next reading starts the history
        self._first[row] = math.inf if ts > last_ts else max(float(self._first[row]), ts)
        return cleared

    # ---------------------------------------------------------------- views
    def last_event_ts(self, rows: np.ndarray) -> np.ndarray:
        """Newest event time per row (epoch seconds), NaN where the row has no event."""
        t = self._last_ts[np.asarray(rows, dtype=np.intp)]
        return np.where(t == -np.inf, np.nan, t)

    def frozen_hours(self, rows: np.ndarray) -> np.ndarray:
        """(len, K): hours the current identical-value run of each signal lasts (0 when not frozen)."""
        rows = np.asarray(rows, dtype=np.intp)
        last_ts = self._last_ts[rows][:, None]
        dur = last_ts - self._run_start[rows]
        frozen = (
            (self._run[rows] >= self._fmin_c[rows][:, None])
            & (dur >= self._fmin_s[rows][:, None])
            & (last_ts != -np.inf)
        )
        return np.where(frozen, dur / 3600.0, 0.0)

    def time_order(self, rows: np.ndarray) -> np.ndarray:
        """(len, N_BINS) ring slots of each row, oldest hour first."""
        return (self._start(rows)[:, None] + np.arange(N_BINS)[None, :]) % N_BINS

    def gather(self, rows: np.ndarray, *, aux: bool = False) -> BinArrays:
        """The rows' bins in time order (one fancy-index per array) and the scalars features need."""
        rows = np.asarray(rows, dtype=np.intp)
        order = self.time_order(rows)
        rr = rows[:, None]
        baseline, bw = self._baseline(rows)
        first = self._first[rows]
        return BinArrays(
            sums=self._sum[rr, order],
            counts=self._cnt[rr, order],
            maxs=self._max[rr, order],
            counters=self._ctr[rr, order],
            frozen_hours=self.frozen_hours(rows),
            baseline=baseline,
            baseline_hours=bw[:, P_IDX].copy(),
            last_ts=self.last_event_ts(rows),
            first_ts=np.where(first == np.inf, np.nan, first),
            late=self._late[rows].copy(),
            aux_sums=self._asum[rr, order] if aux else None,
            aux_counts=self._acnt[rr, order] if aux else None,
        )

    def _baseline(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(30-day means (len, N_BASE), NaN until ~1 h of history; their weights (len, N_BASE))."""
        bw = self._base_w[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(bw > 0.5, self._base_s[rows] / bw, np.nan), bw

    def _start(self, rows: np.ndarray) -> np.ndarray:
        """Ring slot of each row's oldest hour."""
        newest = self._newest[rows]
        return np.where(newest == NO_HOUR, 0, (newest + 1) % N_BINS)

    def features(self, rows: np.ndarray, normal_model: NormalModel | None) -> np.ndarray:
        """(len(rows), N_FEATURES) in FEATURE_NAMES order: the fused kernel reads the rings in place."""
        rows = np.asarray(rows, dtype=np.intp)
        if not len(rows):
            return np.zeros((0, N_FEATURES))
        baseline, bw = self._baseline(rows)
        return ring_features(
            self._sum,
            self._cnt,
            self._max,
            self._ctr,
            rows,
            self._start(rows),
            self.frozen_hours(rows),
            baseline,
            bw[:, P_IDX],
            normal_model,
        )

    def data_quality(
        self,
        rows: np.ndarray,
        now: np.ndarray | None = None,
        fitted: Sequence[Collection[str] | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Data-quality dicts of the rows (as FeatureWindow.data_quality); ``now``: epoch s, NaN = none."""
        rows = np.asarray(rows, dtype=np.intp)
        nows: list[float | None] | None = None
        if now is not None:
            arr = np.broadcast_to(np.asarray(now, dtype=np.float64), rows.shape)
            nows = [None if math.isnan(x) else float(x) for x in arr.tolist()]
        if not len(rows):
            return []
        sums = ring_quality_sums(
            self._cnt, self._ctr, self._acnt if fitted is not None else None, rows, self._start(rows)
        )
        first = self._first[rows]
        return quality_dicts(
            sums,
            self.frozen_hours(rows),
            self.last_event_ts(rows),
            np.where(first == np.inf, np.nan, first),
            self._late[rows],
            nows,
            fitted,
        )

    # ---------------------------------------------------------------- serialisation
    def to_bytes(self, row: int) -> bytes:
        """Versioned state of one row (format ``STATE_FORMAT_VERSION``; see :meth:`to_bytes_many`)."""
        return self.to_bytes_many(np.array([row]))[0]

    def to_bytes_many(self, rows: np.ndarray) -> list[bytes]:
        """Format-4 states of ``rows``: a struct header with the row's scalars, the turbine id, and the
        arrays coded by :func:`models.window_codec.encode_many` (one kernel call for all rows; no
        pickle). Counts are stored in the narrowest width holding the row's largest count."""
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        n = len(rows)
        if not n:
            return []
        ids = [self.turbine_id_of(int(r)).encode() for r in rows]
        top = np.maximum(
            np.maximum(
                self._cnt[rows].reshape(n, -1).max(axis=1), self._ctr[rows].reshape(n, -1).max(axis=1)
            ),
            self._acnt[rows].reshape(n, -1).max(axis=1),
        ).astype(np.uint64)
        width = np.searchsorted(_COUNT_LIMITS, top)  # index into _COUNT_DTYPES
        head = np.zeros(n, dtype=_HEADER4_DTYPE)
        head["magic"], head["ver"], head["flags"] = _MAGIC, STATE_FORMAT_VERSION, width
        head["n_bins"], head["k"] = N_BINS, K
        for name in _SCALARS4:
            head[name] = getattr(self, name)[rows]
        head["tid_len"] = [len(t) for t in ids]
        out: list[bytes] = [b""] * n
        for w in np.unique(width).tolist():
            sel = np.flatnonzero(width == w)
            dt = _COUNT_DTYPES[w]
            srcs, srows = self._section_arrays(rows[sel], dt, None)
            buf, starts, lens = encode_many(srcs, srows, _LAYOUTS[w])
            head["body_len"][sel] = lens
            raw = head[sel].tobytes()
            mv = buf.data  # memoryview: slices copy nothing until joined
            hs = _HEADER4.size
            for i, j in enumerate(sel.tolist()):
                s = int(starts[i])
                out[j] = b"".join((raw[i * hs : (i + 1) * hs], ids[j], mv[s : s + int(lens[i])]))
        return out

    def _section_arrays(
        self, rows: np.ndarray, count_dtype: Any, counts: list[np.ndarray] | None, *, direct: bool = False
    ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """Each v4 section as a (rows, bytes) uint8 array and the row of each state in it.

        Store arrays are used in place; count sections are copies in ``count_dtype`` (one row per
        state): converted from the store (``counts`` None, encoding), or the given empty arrays to
        decode into; or (``direct``, ``count_dtype`` being the store's) the store's own arrays too.
        """
        n = len(rows)
        arrays: list[np.ndarray] = []
        srows = np.empty((len(_SECTIONS), n), dtype=np.intp)
        c = 0
        if direct and np.dtype(count_dtype) != np.dtype(self._cdtype):
            raise ValueError(f"counts of {np.dtype(count_dtype)} into a store of {np.dtype(self._cdtype)}")
        for i, sec in enumerate(_SECTIONS):
            if sec.itemsize or direct:
                arrays.append(getattr(self, sec.name).reshape(self._cap, -1).view(np.uint8))
                srows[i] = rows
            else:
                if counts is None:
                    tmp = np.ascontiguousarray(
                        getattr(self, sec.name)[rows].reshape(n, -1).astype(count_dtype)
                    )
                else:
                    tmp = counts[c]
                    c += 1
                arrays.append(tmp.view(np.uint8))
                srows[i] = np.arange(n)
        return tuple(arrays), srows

    def load(self, turbine_id: str, data: bytes) -> int:
        """Restore a row from :meth:`to_bytes` (this format, 3 or 2) under ``turbine_id``; returns the
        row. Raises ``ValueError`` on an unknown format or a corrupted state (the store is then unchanged).
        """
        if _is_v4(data) and turbine_id not in self._row:
            return int(self.load_many([turbine_id], [data])[0])  # straight into a fresh row
        state = parse_state(data)
        self._widen(state.pop("_top"))
        row = int(self.rows_for([turbine_id])[0])
        for name, value in state.items():
            if name != "turbine_id":
                getattr(self, name)[row] = value
        return row

    def load_many(
        self,
        turbine_ids: Sequence[str],
        blobs: Sequence[bytes] | PackedStates,
        overlap: Callable[[np.ndarray], object] | None = None,
        errors: list[tuple[int, str]] | None = None,
    ) -> np.ndarray:
        """Restore many rows at once (a worker's restore); returns their rows, in order.

        ``blobs``: one ``bytes`` per state, or a :class:`PackedStates` (states back to back in one
        buffer, as a restore's read packs them: decoded in place, no copy). Format-4 states of turbines
        not in the store yet are decoded straight into fresh rows by one kernel call per count width
        (headers parsed as one numpy record array; no per-state Python); the store grows to the exact
        need. Other states (formats 3 and 2, turbines
        already held) go through :meth:`load`. An id given twice: its last state counts. The end state
        equals ``load`` of each state in order.

        ``overlap(rows)``, when given, runs on this thread while the kernel decodes on another (it
        releases the GIL): e.g. the caller's own per-turbine bookkeeping, which only needs the rows.
        Raises ``ValueError`` naming the turbine and what is wrong; the format-4 states of the call are
        then not loaded (states read by :meth:`load` before it may be). With ``errors`` given, a bad
        state is skipped instead (its row is -1) and ``(index, message)`` appended: one unreadable
        checkpoint does not stop the others (a sweep); ``overlap`` may then see rows of states that
        turn out bad.
        """
        n = len(turbine_ids)
        if len(blobs) != n:
            raise ValueError(f"load_many: {n} turbine ids for {len(blobs)} states")
        last = {tid: i for i, tid in enumerate(turbine_ids)}
        fast: list[int] = []
        slow: list[int] = []
        v4 = blobs.v4() if isinstance(blobs, PackedStates) else [_is_v4(b) for b in blobs]
        for tid, i in last.items():
            if v4[i] and tid not in self._row:  # the same test as load's: no recursion
                fast.append(i)
            else:
                slow.append(i)
        slow_new = sum(1 for i in slow if turbine_ids[i] not in self._row)
        out = np.full(n, -1, dtype=np.intp)
        job = None
        if fast:
            packed = (
                blobs.take(fast)
                if isinstance(blobs, PackedStates)
                else PackedStates.join([blobs[i] for i in fast])
            )
            job = _V4Job(self, [turbine_ids[i] for i in fast], packed, slow_new, errors)
            if errors is not None:  # header errors, with the caller's indices
                errors.extend((fast[j], m) for j, m in job.bad)
            fast = [fast[j] for j in job.kept]
        else:
            self._reserve(slow_new, exact=True)
        done = False
        try:
            for i in slow:
                try:
                    out[i] = self.load(turbine_ids[i], blobs[i])
                except ValueError as exc:
                    if errors is None:
                        raise
                    errors.append((i, f"turbine {turbine_ids[i]}: {exc}"))
            if job is not None:
                out[fast] = job.rows
                job.start(thread=overlap is not None and len(fast) >= _THREAD_MIN)
            if overlap is not None:
                overlap(out[[last[t] for t in turbine_ids]] if len(last) != n else out)
            done = True
        finally:
            if job is not None:
                job.wait()
                if not done:
                    job.release()
        if job is not None:
            for j, m in job.finish():  # only with ``errors``: the states that did not decode
                out[fast[j]] = -1
                errors.append((fast[j], m))  # type: ignore[union-attr]
        if len(last) != n:
            out = out[[last[t] for t in turbine_ids]]
        return out


class PackedStates:
    """Window states (:meth:`WindowStore.to_bytes` output) back to back in one uint8 buffer: state ``i``
    is ``buf[starts[i]:ends[i]]``. :meth:`WindowStore.load_many` decodes format-4 states straight from
    it. Why: a restore's read packs each state as it arrives (:class:`StatePacker`) into one buffer per
    chunk, so the per-state ``bytes`` object is dropped at once and no chunk-sized join is made later
    (each such join faulted in ~8 MB of fresh pages: most of a cold restore's page faults)."""

    __slots__ = ("_spare", "buf", "ends", "starts")

    def __init__(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        if buf.dtype != np.uint8 or buf.ndim != 1 or len(starts) != len(ends):
            raise ValueError("PackedStates: a 1-d uint8 buffer and as many starts as ends")
        if len(starts) and (
            int(starts.min()) < 0 or int(ends.max()) > len(buf) or bool((ends < starts).any())
        ):
            raise ValueError("PackedStates: a state lies outside its buffer")
        self.buf = buf
        self.starts = starts.astype(np.int64, copy=False)
        self.ends = ends.astype(np.int64, copy=False)
        self._spare: tuple[list[np.ndarray], np.ndarray] | None = None  # see StatePacker

    def release(self) -> None:
        """The caller is done with these states (and every :meth:`take` of them): a buffer from a
        :class:`StatePacker` goes back to it for a later chunk (no fresh pages to fault in)."""
        if self._spare is not None:
            spare, whole = self._spare
            self._spare = None
            if len(spare) < StatePacker.SPARE:
                spare.append(whole)

    @classmethod
    def join(cls, blobs: Sequence[bytes]) -> PackedStates:
        """Pack separate states (one copy of each)."""
        lens = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
        ends = np.cumsum(lens)
        return cls(np.frombuffer(b"".join(blobs), dtype=np.uint8), ends - lens, ends)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> bytes:
        return self.buf[int(self.starts[i]) : int(self.ends[i])].tobytes()

    def take(self, idx: Sequence[int] | np.ndarray) -> PackedStates:
        """The states at ``idx`` (same buffer, no copy)."""
        sel = np.asarray(idx, dtype=np.intp)
        return PackedStates(self.buf, self.starts[sel], self.ends[sel])

    def v4(self) -> list[bool]:
        """Per state, whether it is format 4 (the test of ``_is_v4``), for all at once."""
        ok = (self.ends - self.starts) > _HEADER4.size
        at = self.starts[ok]
        good = self.buf[at + 4] == STATE_FORMAT_VERSION
        for k, byte in enumerate(_MAGIC):
            good &= self.buf[at + k] == byte
        ok[ok] = good
        return ok.tolist()  # type: ignore[no-any-return]

    def heads(self) -> np.ndarray:
        """The format-4 headers of every state (all longer than a header), as one record array."""
        at = self.starts[:, None] + np.arange(_HEADER4.size, dtype=np.int64)
        return np.ascontiguousarray(self.buf[at]).view(_HEADER4_DTYPE).reshape(len(self))


class StatePacker:
    """Packs states into one buffer as they arrive (:class:`PackedStates`), one copy each; the buffer
    doubles when full. :meth:`take` hands over what was packed and starts a new buffer sized for the
    next chunk, reusing one given back by :meth:`PackedStates.release` when there is one: a restore's
    chunks then cycle through a few buffers instead of faulting in a fresh one each (a fresh page
    costs far more than the copy on this VM: ~0.5-1 ms per MB). Buffers are plain anonymous maps, not
    numpy's (which asks for transparent huge pages above 4 MB: measured, more kernel time per chunk)."""

    SPARE = 3  # buffers kept for reuse

    def __init__(self, capacity: int = 1 << 20) -> None:
        self._cap = max(int(capacity), 1 << 12)
        self._spare: list[np.ndarray] = []  # appended by other threads (release), popped here
        self._new(self._cap)

    @staticmethod
    def _alloc(capacity: int) -> np.ndarray:
        return np.frombuffer(mmap.mmap(-1, capacity), dtype=np.uint8)

    def _new(self, capacity: int) -> None:
        buf = None
        while self._spare:
            got = self._spare.pop()
            if len(got) >= capacity:
                buf = got
                break
        self._buf = self._alloc(capacity) if buf is None else buf
        self._view = self._buf.data
        self._at = 0
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, state: bytes) -> None:
        at = self._at
        end = at + len(state)
        if end > len(self._buf):
            grown = self._alloc(max(2 * len(self._buf), end))
            grown[:at] = self._buf[:at]
            self._buf, self._view = grown, grown.data
        self._view[at:end] = state
        self._starts.append(at)
        self._ends.append(end)
        self._at = end

    def __len__(self) -> int:
        return len(self._starts)

    def take(self, next_count: int | None = None) -> PackedStates:
        """What was packed; the next buffer holds ``next_count`` states of this chunk's mean size
        (+1/8), or as much as this chunk (+1/8) without it."""
        out = PackedStates(
            self._buf[: self._at],
            np.array(self._starts, dtype=np.int64),
            np.array(self._ends, dtype=np.int64),
        )
        out._spare = (self._spare, self._buf)
        need = self._at if not next_count or not self._starts else self._at * next_count // len(self._starts)
        self._cap = max(need + need // 8, 1 << 12)
        self._new(self._cap)
        return out


_MADV_POPULATE_WRITE = 23  # linux/mman.h (Linux >= 5.14)
_PAGE = 4096
_libc_madvise: list[Any] = []


def _madvise() -> Any:
    """libc's ``madvise`` (ctypes: the call releases the GIL), or None off Linux; looked up once."""
    if not _libc_madvise:
        fn = None
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(None, use_errno=True).madvise
                fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                fn.restype = ctypes.c_int
            except (OSError, AttributeError):
                fn = None
        _libc_madvise.append(fn)
    return _libc_madvise[0]


#: bytes populated per madvise call: the call holds the process's mmap lock, which every other
#: thread's mmap/munmap (a large malloc: a chunk of read rows, a joined buffer) waits for; one call
#: over a whole array (~80 MB at 10,000 rows) held the DB read for up to 1.3 s on the loaded VM.
_POPULATE_STEP = 2 << 20


def _populate(arrays: list[np.ndarray]) -> None:
    """Map the whole pages inside each (contiguous) array writable, contents unchanged, a few MB per
    call; an error (an old kernel: EINVAL) stops it quietly: the decode then faults the pages in."""
    madvise = _madvise()
    for arr in arrays:
        start = -(-arr.ctypes.data // _PAGE) * _PAGE
        end = (arr.ctypes.data + arr.nbytes) // _PAGE * _PAGE
        for at in range(start, end, _POPULATE_STEP):
            if madvise(at, min(_POPULATE_STEP, end - at), _MADV_POPULATE_WRITE) != 0:
                return


#: below this many format-4 states, ``load_many`` decodes on the calling thread (a thread costs ~0.1 ms)
_THREAD_MIN = 256


class _V4Job:
    """Format-4 states of turbines the store does not hold, decoded into rows reserved for them.

    Headers are checked at construction (``ValueError``); :meth:`start` decodes (here or on a thread),
    :meth:`finish` checks every state decoded and only then fills counts, scalars and ids (before
    that the rows are not the store's: :meth:`release` gives them back)."""

    def __init__(
        self,
        store: WindowStore,
        ids: list[str],
        blobs: PackedStates,
        extra: int,
        errors: list[tuple[int, str]] | None,
    ) -> None:
        self.skip = errors is not None
        self.bad: list[tuple[int, str]] = []  # header errors: (index in ids, message)
        self.kept: list[int] = list(range(len(ids)))
        hs = _HEADER4.size
        head = blobs.heads()
        starts, lens = blobs.starts, blobs.ends - blobs.starts
        body_starts = starts + hs + head["tid_len"].astype(np.int64)
        body_ends = body_starts + head["body_len"].astype(np.int64)
        bad = (
            (head["n_bins"] != N_BINS)
            | (head["k"] != K)
            | (head["flags"] >= len(_COUNT_DTYPES))
            | (body_ends != starts + lens)
            | _bad_scalars(head)
        )
        if bad.any():
            msgs = [
                (i, f"turbine {ids[i]}: {_v4_header_error(head[i], int(lens[i]))}")
                for i in np.flatnonzero(bad).tolist()
            ]
            if errors is None:
                raise ValueError(msgs[0][1])
            self.bad = msgs
            keep = ~bad
            self.kept = np.flatnonzero(keep).tolist()
            ids = [ids[i] for i in self.kept]
            head, body_starts, body_ends = head[keep], body_starts[keep], body_ends[keep]
        n = len(ids)
        self.store, self.ids, self.head = store, ids, head
        self.buf = blobs.buf  # decoded in place: bodies are found by their offsets in it
        store._reserve(n + extra, exact=True)
        self.rows = np.array([store._free.pop() for _ in range(n)], dtype=np.intp)
        self.status = np.zeros(n, dtype=np.int8)
        # states by count width: (width, their indices, body starts, body ends)
        self.groups = [
            (w, sel, body_starts[sel], body_ends[sel])
            for w in np.unique(head["flags"]).tolist()
            for sel in [np.flatnonzero(head["flags"] == w)]
        ]
        self.plan: list[tuple[Any, ...]] = []
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None

    def _prepare(self) -> None:
        """Where each group decodes, decided when the decode starts (a state loaded by ``load`` before
        may have widened the store's counts): counts of the store's own width straight into its rows;
        other widths into arrays of their own, converted by :meth:`finish`."""
        st = self.store
        for w, sel, starts, ends in self.groups:
            dt = _COUNT_DTYPES[w]
            tmp = None
            if dt != st._cdtype:
                tmp = [
                    np.empty((len(sel), N_BINS * sec.cols), dtype=dt) for sec in _SECTIONS if not sec.itemsize
                ]
            dsts, drows = st._section_arrays(self.rows[sel], dt, tmp, direct=tmp is None)
            self.plan.append((w, sel, tmp, dsts, drows, starts, ends))

    def _run(self, part: int = 0, parts: int = 1) -> None:
        """Decode the states of share ``part`` of ``parts`` (each group split in contiguous pieces)."""
        try:
            for w, sel, _tmp, dsts, drows, starts, ends in self.plan:
                a, b = len(sel) * part // parts, len(sel) * (part + 1) // parts
                if a < b:
                    self.status[sel[a:b]] = decode_many(
                        self.buf, starts[a:b], ends[a:b], dsts, drows[:, a:b], _LAYOUTS[w]
                    )
        except BaseException as exc:  # re-raised by finish() on the caller's thread
            self._error = exc

    def start(self, *, thread: bool) -> None:
        """Decode here, or (``thread``) on helper threads while the caller goes on: two when the job is
        large enough (the kernel releases the GIL: a restore's tail, once the DB read is done, decodes
        on both cores)."""
        self._prepare()
        if thread:
            parts = 2 if len(self.rows) >= 2 * _THREAD_MIN else 1
            self._threads = [
                threading.Thread(target=self._run, args=(k, parts), name="window-decode", daemon=True)
                for k in range(parts)
            ]
            for t in self._threads:
                t.start()
        else:
            self._run()

    def wait(self) -> None:
        for t in self._threads:
            t.join()
        self._threads = []

    def release(self) -> None:
        self.store._free.extend(self.rows[::-1].tolist())  # pop() hands out the lowest row first

    def finish(self) -> list[tuple[int, str]]:
        """Commit the decoded rows. A state that did not decode: ``ValueError`` (nothing committed), or
        with ``errors`` its row is given back and ``(index, message)`` returned."""
        st = self.store
        if self._error is not None:
            self.release()
            raise self._error
        failed: list[tuple[int, str]] = []
        ok = self.status == 0
        if not ok.all():
            bad = np.flatnonzero(~ok)
            failed = [
                (
                    int(i),
                    f"turbine {self.ids[i]}: corrupted FeatureWindow state: {STATUS_TEXT[self.status[i]]}",
                )
                for i in bad
            ]
            if not self.skip:
                self.release()
                raise ValueError(failed[0][1])
            st._free.extend(self.rows[bad[::-1]].tolist())
        rows = self.rows
        for _w, sel, tmp, *_ in self.plan:
            if tmp is None:  # decoded in place
                continue
            good = ok[sel]
            if not good.all():  # only with ``errors``: the states that decoded
                tmp = [t[good] for t in tmp]
            if len(tmp[0]):
                st._widen(max(int(t.max()) for t in tmp))
                r = rows[sel][good]
                st._cnt[r] = tmp[0].reshape(-1, N_BINS, K)
                st._ctr[r] = tmp[1].reshape(-1, N_BINS, N_CTR)
                st._acnt[r] = tmp[2].reshape(-1, N_BINS, N_ACNT)
        rows = rows[ok]
        for name in _SCALARS4:
            getattr(st, name)[rows] = self.head[name][ok]
        st._used[rows] = True
        for tid, r in zip(
            [t for t, g in zip(self.ids, ok.tolist(), strict=True) if g], rows.tolist(), strict=True
        ):
            st._ids[r] = tid
            st._row[tid] = r
        return failed


#: Event times a state may hold: datetime's range (its data-quality dict formats them as dates); and
#: the hours of those times. Anything else in a header is corruption (hostile bytes must not load).
_TS_MIN, _TS_MAX = -62135596800.0, 253402300799.0
_H_MIN, _H_MAX = int(_TS_MIN // BIN_SECONDS), int(_TS_MAX // BIN_SECONDS)


def _time_ok(v: Any, empty: float) -> Any:
    return (v == empty) | ((v >= _TS_MIN) & (v <= _TS_MAX))


def _hour_ok(v: Any) -> Any:
    return (v == NO_HOUR) | ((v >= _H_MIN) & (v <= _H_MAX))


#: header scalar -> its rule (element-wise over a header record array, or on one value)
_SCALAR_RULES: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("_last_ts", lambda v: _time_ok(v, -math.inf)),
    ("_first", lambda v: _time_ok(v, math.inf)),
    ("_floor", lambda v: _time_ok(v, -math.inf)),
    ("_newest", _hour_ok),
    ("_base_hour", _hour_ok),
    ("_fmin_s", lambda v: (v >= 0) & (v <= _TS_MAX)),
    ("_late", lambda v: v >= 0),
    ("_total", lambda v: v >= 0),
)


def _bad_scalars(head: np.ndarray) -> np.ndarray:
    """Per state of a header record array: a scalar outside what any window holds."""
    bad = np.zeros(len(head), dtype=bool)
    for name, ok in _SCALAR_RULES:
        bad |= ~ok(head[name])
    return bad


def _scalar_error(values: Any) -> str | None:
    """The first header scalar of one state (record or dict) outside its rule, named."""
    for name, ok in _SCALAR_RULES:
        if not ok(values[name]):
            return f"corrupted FeatureWindow state: {name.lstrip('_')} = {values[name]!r} is out of range"
    return None


def _is_v4(data: bytes) -> bool:
    return len(data) > _HEADER4.size and data[4] == STATE_FORMAT_VERSION and data[:4] == _MAGIC


_COUNT_LIMITS = np.array([np.iinfo(dt).max for dt in _COUNT_DTYPES], dtype=np.uint64)


def _v4_header_error(head: Any, size: int) -> str:
    if head["n_bins"] != N_BINS or head["k"] != K:
        return (
            f"FeatureWindow state format 4 (bins={head['n_bins']}, signals={head['k']}) is not supported; "
            f"expected bins={N_BINS}, signals={K}"
        )
    if head["flags"] >= len(_COUNT_DTYPES):
        return f"corrupted FeatureWindow state: count type {head['flags']}"
    scalar = _scalar_error(head)
    if scalar is not None:
        return scalar
    want = _HEADER4.size + int(head["tid_len"]) + int(head["body_len"])
    return f"corrupted FeatureWindow state: {size} bytes, its header names {want}"


def warm_up_codec() -> float:
    """Compile (or load from numba's disk cache) the format-4 kernels for uint8 and uint16 counts: a
    worker calls it at start so its first restore or checkpoint does not pay it. Returns seconds."""
    import time

    t0 = time.perf_counter()
    store = WindowStore(2)
    rows = store.rows_for(["warm-up"])
    for needed in (0, 256):
        store._widen(needed)
        store._cnt[rows] = needed
        blobs = store.to_bytes_many(rows)
        WindowStore(1).load_many(["w"], blobs)
    return time.perf_counter() - t0


def state_turbine_id(data: bytes) -> str:
    """The turbine id stored in a :meth:`WindowStore.to_bytes` state (any supported format)."""
    if len(data) > _HEADER4.size and data[:4] == _MAGIC and data[4] == STATE_FORMAT_VERSION:
        head = np.frombuffer(data, dtype=_HEADER4_DTYPE, count=1)[0]
        return _v4_id(data, head)
    return str(parse_state(data)["turbine_id"])


def _v4_id(data: bytes, head: Any) -> str:
    hs = _HEADER4.size
    try:
        return data[hs : hs + int(head["tid_len"])].decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"corrupted FeatureWindow state: {exc}") from exc


def _parse_v4(data: bytes) -> dict[str, Any]:
    """Arrays of one format-4 state (decoded into a one-row scratch store)."""
    if len(data) <= _HEADER4.size:
        raise ValueError(f"corrupted FeatureWindow state: truncated at byte {len(data)}")
    head = np.frombuffer(data, dtype=_HEADER4_DTYPE, count=1)
    tid = _v4_id(data, head[0])
    scratch = WindowStore(1)
    try:
        row = int(scratch.load_many(["state"], [data])[0])
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("turbine state: ")) from None
    out: dict[str, Any] = {"turbine_id": tid}
    for name in WindowStore._SPEC:
        out[name] = getattr(scratch, name)[row]
    out["_top"] = max(int(out["_cnt"].max()), int(out["_ctr"].max()), int(out["_acnt"].max()))
    return out


def parse_state(data: bytes) -> dict[str, Any]:
    """Arrays of one serialised row, in the store's layout (format 2 converted), plus ``turbine_id``
    and ``_top`` (its largest count). Raises ``ValueError`` naming what is wrong."""
    if len(data) < _HEADER.size or data[:4] != _MAGIC:
        raise ValueError("not a FeatureWindow state (bad magic)")
    if data[4] == STATE_FORMAT_VERSION:
        return _parse_v4(data)
    _magic, ver, flags, n_bins, k, newest, first, last, fmin_s, late, total = _HEADER.unpack_from(data)
    if ver not in (2, 3) or n_bins != N_BINS or k != K:
        raise ValueError(
            f"FeatureWindow state format {ver} (bins={n_bins}, signals={k}) is not supported; "
            f"expected {STATE_FORMAT_VERSION}, 3 or 2 (bins={N_BINS}, signals={K})"
        )
    try:
        body = zlib.decompress(data[_HEADER.size :])
    except zlib.error as exc:
        raise ValueError(f"corrupted FeatureWindow state: {exc}") from exc
    pos = 0

    def take(dtype: Any, n: int) -> np.ndarray:
        nonlocal pos
        size = np.dtype(dtype).itemsize * n
        if pos + size > len(body):
            raise ValueError(f"corrupted FeatureWindow state: truncated at byte {pos} of {len(body)}")
        arr = np.frombuffer(body, dtype=dtype, count=n, offset=pos)
        pos += size
        return arr

    try:
        tid_len, fmin_c = struct.unpack_from("<HI", body)
        pos = 6
        tid = body[pos : pos + tid_len].decode()
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupted FeatureWindow state: {exc}") from exc
    pos += tid_len
    out: dict[str, Any] = {
        "turbine_id": tid,
        "_newest": newest,
        "_first": first,
        "_last_ts": last,
        "_fmin_s": fmin_s,
        "_fmin_c": fmin_c,
        "_late": late,
        "_total": total,
    }
    out["_last"] = take(np.float64, K)
    out["_run"] = take(np.uint32, K)
    out["_run_start"] = take(np.float64, K)
    out["_base_s"] = take(np.float64, N_BASE)
    out["_base_w"] = take(np.float64, N_BASE)
    if ver == 3:
        if flags >= len(_COUNT_DTYPES):
            raise ValueError(f"corrupted FeatureWindow state: count type {flags}")
        out["_base_hour"] = int(take(np.int64, 1)[0])
        out["_floor"] = float(take(np.float64, 1)[0])
        out["_sum"] = take(np.float32, N_BINS * K).reshape(N_BINS, K)
        out["_max"] = take(np.float16, N_BINS * KC).reshape(N_BINS, KC)
        out["_asum"] = take(np.float32, N_BINS * N_ASUM).reshape(N_BINS, N_ASUM)
        ct = _COUNT_DTYPES[flags]
        out["_cnt"] = take(ct, N_BINS * K).reshape(N_BINS, K)
        out["_ctr"] = take(ct, N_BINS * N_CTR).reshape(N_BINS, N_CTR)
        out["_acnt"] = take(ct, N_BINS * N_ACNT).reshape(N_BINS, N_ACNT)
    else:  # format 2: convert to the compact layout
        out["_base_hour"] = int(take(np.int64, 1)[0])
        ct2 = np.uint16 if flags & _V2_SMALL else np.uint32
        out["_sum"] = take(np.float64, N_BINS * K).reshape(N_BINS, K).astype(np.float32)
        out["_cnt"] = take(ct2, N_BINS * K).reshape(N_BINS, K)
        out["_max"] = _f16(take(np.float32, N_BINS * K).reshape(N_BINS, K)[:, :KC].astype(np.float64))
        ctr6 = take(ct2, N_BINS * N_COUNTERS).reshape(N_BINS, N_COUNTERS)
        out["_ctr"] = ctr6[:, [C_EVENTS, C_SPIKES, C_ALARMS, C_DOWN, C_CURTAILED]]
        asum = np.zeros((N_BINS, N_ASUM), dtype=np.float32)
        acnt = np.zeros((N_BINS, N_ACNT), dtype=ct2)
        floor = -math.inf
        if flags & _V2_AUX:
            s5 = take(np.float64, N_BINS * KA).reshape(N_BINS, KA)
            c5 = take(ct2, N_BINS * KA).reshape(N_BINS, KA)
            asum = s5[:, [AUX_PITCH, AUX_SIN, AUX_COS]].astype(np.float32)
            acnt = c5[:, [AUX_PITCH, AUX_WDIR, AUX_NDIR, AUX_SIN]]
            if flags & _V2_FLOOR:
                floor = float(take(np.float64, 1)[0])
        out["_asum"], out["_acnt"], out["_floor"] = asum, acnt, floor
    scalar = _scalar_error(out)
    if scalar is not None:
        raise ValueError(scalar)
    out["_top"] = max(int(out["_cnt"].max()), int(out["_ctr"].max()), int(out["_acnt"].max()))
    return out


__all__ = [
    "NO_HOUR",
    "STATE_FORMAT_VERSION",
    "WindowStore",
    "parse_state",
    "state_turbine_id",
    "warm_up_codec",
]
