"""Per-turbine features: one incremental definition used by the streaming scorer AND by training.

This module is the facade every caller imports from; the jobs live in:

- :mod:`models.signals`: tracked signals, counters, spike thresholds, horizons, bins, ``FEATURE_NAMES``;
- :mod:`models.normal_model`: the normal-behaviour model and the hourly means it is fitted on;
- :mod:`models.window_store`: the columnar state of all windows of a worker (:class:`WindowStore`)
  and its vectorised batch ingest;
- :mod:`models.feature_kernels`: features and data quality over gathered bin arrays.

Why bins: each tracked signal of an event goes into a one-hour bin (sum, count, max) of a 7-day ring,
plus a few data-quality counters; features (rolling means, maxima, spreads and slopes over 6 h .. 7 d,
residuals against a normal-behaviour model, power-curve residual, alarm counts, data quality) are
computed vectorised from the bins of many windows at once.

:class:`FeatureWindow` is a view on one row of a :class:`WindowStore` (``FeatureWindow(tid)`` makes a
private one-row store; ``store.window(tid)`` a view on a shared store). Offline, :func:`compute_features`
replays history through the same batch ingest and the same kernels, so training and serving agree.

Out-of-order events: an event whose hour is still inside the 7-day ring is added to its bin; older
events are ignored and counted (``late_events_dropped``). Frozen-sensor and spike detection only
look at in-order events (a late event says nothing about the current run of identical values).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

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
    BinArrays,
)
from models.feature_kernels import data_quality as _dq_kernel
from models.feature_kernels import feature_columns as _columns_kernel
from models.feature_kernels import feature_matrix as _matrix_kernel
from models.feature_kernels import response as _response
from models.normal_model import NormalModel, _design_nd, fit_normal_model, hourly_means
from models.signals import (
    AUX_COS,
    AUX_INPUTS,
    AUX_NDIR,
    AUX_PITCH,
    AUX_SIGNALS,
    AUX_SIN,
    AUX_WDIR,
    BASELINE_TAU_HOURS,
    BIN_SECONDS,
    C_ALARMS,
    C_CURTAILED,
    C_DOWN,
    C_EVENTS,
    C_MISSING,
    C_SPIKES,
    COMPONENT_SIGNALS,
    CONTEXT_SIGNALS,
    DEFAULT_FROZEN_MIN_COUNT,
    DEFAULT_FROZEN_MIN_SECONDS,
    FEATURE_NAMES,
    FULL_LOAD_MW,
    HORIZONS_H,
    KA,
    KC,
    KEY_SIGNALS,
    LOAD_RESPONSE_HOURS,
    N_BASE,
    N_BINS,
    N_COUNTERS,
    N_FEATURES,
    NBM_TARGETS,
    SPIKE_THRESHOLDS,
    TEMP_SIGNALS,
    TRACKED_SIGNALS,
    WINDOW_FORMAT_VERSION,
    K,
)
from models.window_store import NO_HOUR, STATE_FORMAT_VERSION, WindowStore, parse_state

__all__ = [
    "AUX_SIGNALS",
    "BASELINE_TAU_HOURS",
    "BIN_SECONDS",
    "COMPONENT_SIGNALS",
    "CONTEXT_SIGNALS",
    "C_ALARMS",
    "C_CURTAILED",
    "C_DOWN",
    "C_EVENTS",
    "C_MISSING",
    "C_SPIKES",
    "DEFAULT_FROZEN_MIN_COUNT",
    "DEFAULT_FROZEN_MIN_SECONDS",
    "FEATURE_NAMES",
    "FULL_LOAD_MW",
    "HORIZONS_H",
    "KA",
    "KEY_SIGNALS",
    "LOAD_RESPONSE_HOURS",
    "NBM_TARGETS",
    "N_BASE",
    "N_BINS",
    "N_COUNTERS",
    "N_FEATURES",
    "SPIKE_THRESHOLDS",
    "STATE_FORMAT_VERSION",
    "TEMP_SIGNALS",
    "TRACKED_SIGNALS",
    "WINDOW_FORMAT_VERSION",
    "FeatureWindow",
    "HourlyMeans",
    "K",
    "NormalModel",
    "WindowSnapshot",
    "WindowStore",
    "_design_nd",
    "_response",
    "compute_features",
    "feature_columns",
    "feature_matrix",
    "fit_normal_model",
    "hourly_means",
    "hourly_view",
    "replay",
    "window_data_quality",
    "window_features",
]

_STORED_CTR = [CTR_EVENTS, CTR_SPIKES, CTR_ALARMS, CTR_DOWN, CTR_CURTAILED]
_SNAP_CTR = [C_EVENTS, C_SPIKES, C_ALARMS, C_DOWN, C_CURTAILED]


def _to_epoch(value: Any) -> float:
    """Event time as epoch seconds; naive datetimes are taken as UTC (the contract requires UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _to_epoch(datetime.fromisoformat(value))
    if isinstance(value, np.datetime64):
        return float(value.astype("datetime64[ns]").astype(np.int64)) / 1e9
    raise TypeError(f"unsupported event_time {value!r}")


@dataclass
class WindowSnapshot:
    """Time-ordered bins of one window (oldest first): input of :func:`feature_matrix`."""

    sums: np.ndarray  # (N_BINS, K) float64
    counts: np.ndarray  # (N_BINS, K) uint32
    maxs: np.ndarray  # (N_BINS, K) float32 (-inf: no reading; only COMPONENT_SIGNALS are kept)
    counters: np.ndarray  # (N_BINS, N_COUNTERS) uint32
    frozen_hours: np.ndarray  # (K,)
    baseline: np.ndarray  # (N_BASE,) 30-day means (NaN until ~1 h of history)
    baseline_hours: float  # effective hours in the baseline
    aux_sums: np.ndarray | None = None  # (N_BINS, KA) float64, AUX_SIGNALS order (None: not kept)
    aux_counts: np.ndarray | None = None  # (N_BINS, KA) uint32
    newest_hour: int | None = None  # epoch hour (ts // 3600) of the newest bin; None = empty window


def _snapshot_of(b: BinArrays, i: int, newest_hour: int | None) -> WindowSnapshot:
    """Row ``i`` of gathered bins in the snapshot layout (six counters, every signal's max column)."""
    counts = b.counts[i].astype(np.uint32)
    counters = np.zeros((N_BINS, N_COUNTERS), dtype=np.uint32)
    counters[:, _SNAP_CTR] = b.counters[i][:, _STORED_CTR]
    counters[:, C_MISSING] = counters[:, C_EVENTS] * K - counts.sum(axis=1, dtype=np.uint32)
    maxs = np.full((N_BINS, K), -np.inf, dtype=np.float32)
    maxs[:, :KC] = b.maxs[i]
    aux_sums = aux_counts = None
    if b.aux_sums is not None and b.aux_counts is not None:
        aux_sums = np.zeros((N_BINS, KA))
        aux_sums[:, [AUX_PITCH, AUX_SIN, AUX_COS]] = b.aux_sums[i][:, [ASUM_PITCH, ASUM_SIN, ASUM_COS]]
        aux_counts = np.zeros((N_BINS, KA), dtype=np.uint32)
        ac = b.aux_counts[i]
        aux_counts[:, AUX_PITCH] = ac[:, ACNT_PITCH]
        aux_counts[:, AUX_WDIR] = ac[:, ACNT_WDIR]
        aux_counts[:, AUX_NDIR] = ac[:, ACNT_NDIR]
        aux_counts[:, AUX_SIN] = ac[:, ACNT_YAW]
        aux_counts[:, AUX_COS] = ac[:, ACNT_YAW]
    return WindowSnapshot(
        b.sums[i].astype(np.float64),
        counts,
        maxs,
        counters,
        b.frozen_hours[i],
        b.baseline[i],
        float(b.baseline_hours[i]),
        aux_sums=aux_sums,
        aux_counts=aux_counts,
        newest_hour=newest_hour,
    )


def _bins_of_snapshots(
    snaps: Sequence[WindowSnapshot],
    last_ts: float | None = None,
    first_ts: float | None = None,
    late: int = 0,
) -> BinArrays:
    """Stack snapshots into the kernels' input (the per-window times are only needed by data quality)."""
    ctr = np.stack([s.counters for s in snaps])
    aux_c = None
    if all(s.aux_counts is not None for s in snaps):
        aux_c = np.stack([s.aux_counts for s in snaps])[:, :, [AUX_PITCH, AUX_WDIR, AUX_NDIR, AUX_SIN]]  # type: ignore[misc]
    n = len(snaps)
    return BinArrays(
        sums=np.stack([s.sums for s in snaps]),
        counts=np.stack([s.counts for s in snaps]),
        maxs=np.stack([s.maxs[:, :KC] for s in snaps]),
        counters=ctr[:, :, _SNAP_CTR],
        frozen_hours=np.stack([s.frozen_hours for s in snaps]),
        baseline=np.stack([s.baseline for s in snaps]),
        baseline_hours=np.asarray([s.baseline_hours for s in snaps], dtype=np.float64),
        last_ts=np.full(n, np.nan if last_ts is None else last_ts),
        first_ts=np.full(n, np.nan if first_ts is None else first_ts),
        late=np.full(n, late, dtype=np.int64),
        aux_counts=aux_c,
    )


class FeatureWindow:
    """Rolling 7-day state of ONE turbine: a view on one row of a :class:`WindowStore`.

    ``FeatureWindow(tid)`` makes a private one-row store; ``store.window(tid)`` returns a view on a
    shared store (valid until the turbine is removed from it).
    """

    __slots__ = ("row", "store")

    def __init__(
        self,
        turbine_id: str = "",
        *,
        frozen_min_count: int = DEFAULT_FROZEN_MIN_COUNT,
        frozen_min_seconds: float = DEFAULT_FROZEN_MIN_SECONDS,
    ) -> None:
        self.store = WindowStore(1, frozen_min_count=frozen_min_count, frozen_min_seconds=frozen_min_seconds)
        self.row = int(self.store.rows_for([turbine_id])[0])

    @classmethod
    def view(cls, store: WindowStore, row: int) -> FeatureWindow:
        """A view on ``row`` of ``store`` (no copy)."""
        win = cls.__new__(cls)
        win.store = store
        win.row = int(row)
        return win

    @property
    def turbine_id(self) -> str:
        return self.store.turbine_id_of(self.row)

    # ---------------------------------------------------------------- ingestion
    def update(self, event: Any) -> None:
        """Add one reading (``TelemetryEvent`` or mapping with the same fields): the per-event path."""
        d = event if isinstance(event, Mapping) else event.__dict__
        get = d.get
        vals = [math.nan if (x := get(name)) is None else float(x) for name in TRACKED_SIGNALS]
        aux = [math.nan if (x := get(name)) is None else float(x) for name in AUX_INPUTS]
        self.store._ingest_one(self.row, _to_epoch(d["event_time"]), vals, int(get("status_code") or 0), aux)

    # ---------------------------------------------------------------- repairs
    def drop_before(self, ts: float) -> int:
        """Forget what the window holds from before ``ts`` (a repair, epoch seconds); returns hours cleared.

        Every hourly bin that starts before ``ts`` is cleared (the bin holding ``ts`` itself too, when
        the repair is mid-hour), the 30-day baseline is rebuilt from the completed hours kept, identical-
        value runs that started before ``ts`` end, and readings older than ``ts`` that arrive later are
        ignored (the floor is kept in :meth:`to_bytes`). A repair older than the window's first hour only
        sets that floor (the hours held and the baseline are already about the repaired turbine).
        Idempotent: a second call with the same or an older time changes nothing (a replayed repair
        command, a restore from a checkpoint).
        The newest event time (``as_of``) is unchanged: the turbine was last seen then.
        """
        return self.store.drop_before(self.row, ts)

    @property
    def repaired_before(self) -> float | None:
        """Epoch seconds of the last repair applied by :meth:`drop_before` (None: never)."""
        floor = float(self.store._floor[self.row])
        return None if floor == -math.inf else floor

    # ---------------------------------------------------------------- views
    @property
    def n_events(self) -> int:
        return int(self.store._total[self.row])

    @property
    def late_events_dropped(self) -> int:
        return int(self.store._late[self.row])

    @property
    def last_event_ts(self) -> float | None:
        ts = float(self.store._last_ts[self.row])
        return None if ts == -math.inf else ts

    @property
    def as_of(self) -> datetime | None:
        """Time of the newest event seen (the as-of time of a score computed from this window)."""
        ts = self.last_event_ts
        return None if ts is None else datetime.fromtimestamp(ts, UTC)

    def _bins(self, aux: bool = True) -> BinArrays:
        return self.store.gather(np.array([self.row]), aux=aux)

    def snapshot(self) -> WindowSnapshot:
        """Time-ordered copy of the bins (oldest hour first), in the snapshot layout."""
        newest = int(self.store._newest[self.row])
        return _snapshot_of(self._bins(), 0, None if newest == NO_HOUR else newest)

    def features(self, normal_model: NormalModel | None = None) -> np.ndarray:
        """Feature vector in ``FEATURE_NAMES`` order (NaN where not computable)."""
        return self.store.features(np.array([self.row]), normal_model)[0]

    def data_quality(
        self,
        now: datetime | None = None,
        snapshot: WindowSnapshot | None = None,
        fitted: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """Data-quality indicators used by the risk policy (JSON-serialisable).

        ``now`` enables ``seconds_since_last_event``; pass ``snapshot`` to reuse one already taken.
        ``fitted`` (the turbine's fitted sensors; None = all) limits the missing share, silent and
        frozen sensors to signals the turbine has: a sensor that is not fitted is not missing data.
        With ``fitted``, the missing share counts the fitted tracked signals and the fitted pitch angle
        and wind / nacelle directions.
        """
        if snapshot is None:
            b = self._bins(aux=fitted is not None)
        else:
            first = float(self.store._first[self.row])
            b = _bins_of_snapshots(
                [snapshot], self.last_event_ts, None if first == math.inf else first, self.late_events_dropped
            )
        t_now = None if now is None else _to_epoch(now)
        return _dq_kernel(b, [t_now], None if fitted is None else [fitted])[0]

    def hourly(self, snapshot: WindowSnapshot | None = None) -> HourlyMeans:
        """Hourly means of every tracked and auxiliary signal over the window (see :func:`hourly_view`)."""
        return hourly_view(snapshot if snapshot is not None else self.snapshot())

    # ---------------------------------------------------------------- serialisation
    def to_bytes(self) -> bytes:
        """Compact versioned state (format ``STATE_FORMAT_VERSION``): header + raw typed arrays, zlib."""
        return self.store.to_bytes(self.row)

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureWindow:
        """Inverse of :meth:`to_bytes` (format 2 states are converted); ``ValueError`` on a bad state."""
        state = parse_state(data)
        win = cls(
            str(state["turbine_id"]),
            frozen_min_count=int(state["_fmin_c"]),
            frozen_min_seconds=float(state["_fmin_s"]),
        )
        win.store.load(win.turbine_id, data)
        return win


@dataclass
class HourlyMeans:
    """Hourly view of one window, oldest hour first (``N_BINS`` hours ending with the newest bin).

    ``means`` holds every ``TRACKED_SIGNALS`` name, ``pitch_angle_deg``, ``yaw_error_sin`` /
    ``yaw_error_cos`` (hourly means of the sine / cosine of nacelle - wind direction) and
    ``yaw_error_deg`` (their circular mean, -180..180); NaN where the hour has no reading.
    ``counts`` holds the readings per hour of every tracked and auxiliary signal.
    """

    hour_start: np.ndarray  # (N_BINS,) epoch seconds of each hour's start (NaN for an empty window)
    means: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    events: np.ndarray  # events per hour
    down: np.ndarray  # fault / maintenance events per hour
    curtailed: np.ndarray  # curtailed events per hour
    alarms: np.ndarray  # alarm events per hour


def hourly_view(snap: WindowSnapshot) -> HourlyMeans:
    """:class:`HourlyMeans` of a snapshot (auxiliary signals all NaN when the snapshot has none)."""
    cnts = snap.counts.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tracked = snap.sums / np.where(cnts > 0, cnts, np.nan)
    means = {sig: tracked[:, k] for k, sig in enumerate(TRACKED_SIGNALS)}
    counts = {sig: snap.counts[:, k].astype(np.int64) for k, sig in enumerate(TRACKED_SIGNALS)}
    if snap.aux_sums is not None and snap.aux_counts is not None:
        acnt = snap.aux_counts.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            aux = snap.aux_sums / np.where(acnt > 0, acnt, np.nan)
        for j in (AUX_PITCH, AUX_SIN, AUX_COS):
            means[AUX_SIGNALS[j]] = aux[:, j]
        for j, sig in enumerate(AUX_SIGNALS):
            counts[sig] = snap.aux_counts[:, j].astype(np.int64)
    else:
        for j in (AUX_PITCH, AUX_SIN, AUX_COS):
            means[AUX_SIGNALS[j]] = np.full(N_BINS, np.nan)
        for sig in AUX_SIGNALS:
            counts[sig] = np.zeros(N_BINS, dtype=np.int64)
    means["yaw_error_deg"] = np.degrees(np.arctan2(means["yaw_error_sin"], means["yaw_error_cos"]))
    if snap.newest_hour is None:
        hour_start = np.full(N_BINS, np.nan)
    else:
        hour_start = (snap.newest_hour - N_BINS + 1 + np.arange(N_BINS)) * float(BIN_SECONDS)
    ctr = snap.counters.astype(np.int64)
    return HourlyMeans(
        hour_start=hour_start,
        means=means,
        counts=counts,
        events=ctr[:, C_EVENTS],
        down=ctr[:, C_DOWN],
        curtailed=ctr[:, C_CURTAILED],
        alarms=ctr[:, C_ALARMS],
    )


# --------------------------------------------------------------------------------------------------
# Features of many windows
# --------------------------------------------------------------------------------------------------


def feature_matrix(
    snapshots: Sequence[WindowSnapshot], normal_model: NormalModel | None = None
) -> np.ndarray:
    """Features of snapshots, shape ``(len(snapshots), N_FEATURES)`` (prefer :func:`window_features`)."""
    if not snapshots:
        return np.zeros((0, N_FEATURES))
    return _matrix_kernel(_bins_of_snapshots(snapshots), normal_model)


def feature_columns(
    snapshots: Sequence[WindowSnapshot], normal_model: NormalModel | None = None
) -> dict[str, np.ndarray]:
    """Named feature columns of a non-empty batch of snapshots (see :func:`feature_matrix`)."""
    return _columns_kernel(_bins_of_snapshots(snapshots), normal_model)


def windows_by_store(windows: Sequence[FeatureWindow]) -> list[tuple[WindowStore, np.ndarray, np.ndarray]]:
    """(store, positions in ``windows``, rows) per distinct store, in first-seen order."""
    stores = list(map(_STORE_OF, windows))
    rows = np.fromiter(map(_ROW_OF, windows), dtype=np.intp, count=len(windows))
    ids = list(map(id, stores))
    distinct = list(dict.fromkeys(ids))
    if len(distinct) == 1:  # the usual case (one worker's store): no per-window grouping
        return [(stores[0], np.arange(len(windows), dtype=np.intp), rows)]
    ids_arr = np.array(ids, dtype=np.uint64)
    out = []
    for sid in distinct:
        pos = np.flatnonzero(ids_arr == np.uint64(sid))
        out.append((stores[int(pos[0])], pos, rows[pos]))
    return out


_STORE_OF = operator.attrgetter("store")
_ROW_OF = operator.attrgetter("row")


def window_features(windows: Sequence[FeatureWindow], normal_model: NormalModel | None = None) -> np.ndarray:
    """Features of many windows, ``(len(windows), N_FEATURES)``: one gather per store they live in
    (windows of one store: the kernel's own matrix, not copied)."""
    groups = windows_by_store(windows)
    if len(groups) == 1:
        store, _pos, rows = groups[0]  # positions 0 .. n - 1 in order
        return store.features(rows, normal_model)
    out = np.empty((len(windows), N_FEATURES))
    for store, pos, rows in groups:
        out[pos] = store.features(rows, normal_model)
    return out


def _epoch_once(x: Any, seen: dict[Any, float]) -> float:
    t = seen.get(x)
    if t is None:
        t = seen[x] = _to_epoch(x)
    return t


def window_data_quality(
    windows: Sequence[FeatureWindow],
    now: datetime | float | Sequence[datetime | float | None] | None = None,
    fitted: Sequence[Collection[str] | None] | None = None,
) -> list[dict[str, Any]]:
    """``FeatureWindow.data_quality`` of many windows (one gather per store); ``now`` one time or one
    per window (None = unknown), ``fitted`` one sensor set per window (None = all)."""
    n = len(windows)
    if now is None or isinstance(now, datetime | int | float):
        t = math.nan if now is None else _to_epoch(now)
        nows = np.full(n, t)
    else:
        seen: dict[Any, float] = {}  # a sweep's items share their site's as-of: each converted once
        nows = np.array(
            [math.nan if x is None else _epoch_once(x, seen) for x in now],
            dtype=np.float64,
        )
    out: list[dict[str, Any]] = [{}] * n
    for store, pos, rows in windows_by_store(windows):
        fit = None if fitted is None else [fitted[i] for i in pos]
        for i, dq in zip(pos.tolist(), store.data_quality(rows, nows[pos], fit), strict=True):
            out[i] = dq
    return out


# --------------------------------------------------------------------------------------------------
# Offline replay
# --------------------------------------------------------------------------------------------------


@dataclass
class _FrameArrays:
    """A telemetry frame as the batch ingest's arrays (time order within each turbine)."""

    tids: np.ndarray  # (n,) str
    ts: np.ndarray  # (n,) epoch seconds
    values: np.ndarray  # (n, K) NaN = missing
    status: np.ndarray  # (n,) int
    aux: np.ndarray  # (n, 3) NaN = missing


def _frame_arrays(frame: pd.DataFrame) -> _FrameArrays:
    frame = frame.sort_values(["turbine_id", "event_time"], kind="stable")
    n = len(frame)
    # Microsecond integers / 1e6 round exactly like ``datetime.timestamp()`` of the online path.
    ts = pd.to_datetime(frame["event_time"], utc=True).dt.tz_localize(None)
    epoch = ts.to_numpy().astype("datetime64[us]").astype(np.int64) / 1e6

    def numeric(names: Sequence[str]) -> np.ndarray:
        out = np.full((n, len(names)), np.nan)
        for j, name in enumerate(names):
            if name in frame:
                col = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
                out[:, j] = np.where(np.isfinite(col), col, np.nan)
        return out

    status = (
        frame["status_code"].fillna(0).astype(int).to_numpy(np.int64)
        if "status_code" in frame
        else np.zeros(n, dtype=np.int64)
    )
    return _FrameArrays(
        frame["turbine_id"].astype(str).to_numpy(),
        epoch,
        numeric(TRACKED_SIGNALS),
        status,
        numeric(AUX_INPUTS),
    )


def _sample_times(ts: np.ndarray, given: Iterable[float] | None, every_hours: float) -> np.ndarray:
    if given is not None:
        return np.sort(np.asarray(list(given), dtype=np.float64))
    step = every_hours * 3600.0
    start = math.ceil(ts[0] / step) * step
    return np.arange(start, ts[-1] + 1e-9, step)


def replay(
    frame: pd.DataFrame,
    sample_times: Mapping[str, Iterable[float]] | None = None,
    every_hours: float = 1.0,
) -> Iterator[tuple[str, float, FeatureWindow]]:
    """Replay ``frame`` (any order; sorted here by time) through one window per turbine.

    Yields ``(turbine_id, sample_ts, window)`` after all events with ``event_time <= sample_ts``
    have been ingested (the events between two samples in one batch ingest). Sample times are either
    given per turbine (epoch seconds) or taken every ``every_hours`` on the hour grid between the
    turbine's first and last event. The window is live: read it before advancing the iterator.
    """
    fa = _frame_arrays(frame)
    if not len(fa.ts):
        return
    bounds = np.flatnonzero(np.r_[True, fa.tids[1:] != fa.tids[:-1], True])
    for a, b in itertools.pairwise(bounds):
        tid = str(fa.tids[a])
        ts = fa.ts[a:b]
        win = FeatureWindow(tid)
        rows = np.full(b - a, win.row)
        given = None if sample_times is None else sample_times.get(tid, [])
        i = 0
        for t in _sample_times(ts, given, every_hours):
            j = int(np.searchsorted(ts, t, side="right"))
            if j > i:
                sl = slice(a + i, a + j)
                win.store.ingest(rows[i:j], ts[i:j], fa.values[sl], fa.status[sl], fa.aux[sl])
                i = j
            yield tid, float(t), win


def compute_features(
    frame: pd.DataFrame,
    normal_model: NormalModel | None = None,
    *,
    every_hours: float = 1.0,
    sample_times: Mapping[str, Iterable[float]] | None = None,
    chunk: int = 512,
) -> pd.DataFrame:
    """Offline features: replay history through the batch ingest and sample it periodically.

    All turbines advance together, one ingest per round (round j = the events up to each turbine's
    j-th sample time); sampled rows are copied into a sample store whose features are computed
    ``chunk`` rows at a time. Returns one row per (turbine, sample time) with ``turbine_id``, ``time``
    (UTC) and the ``FEATURE_NAMES`` columns, sorted by turbine then time (samples before a turbine's
    first event are skipped).
    """
    fa = _frame_arrays(frame)
    empty = pd.DataFrame(np.zeros((0, N_FEATURES)), columns=list(FEATURE_NAMES))
    if not len(fa.ts):
        empty.insert(0, "time", pd.to_datetime(np.zeros(0), unit="s", utc=True))
        empty.insert(0, "turbine_id", [])
        return empty
    bounds = np.flatnonzero(np.r_[True, fa.tids[1:] != fa.tids[:-1], True])
    tids = [str(fa.tids[a]) for a in bounds[:-1]]
    store = WindowStore(len(tids))
    rows = store.rows_for(tids)
    # per event: its round (how many of its turbine's sample times are before it)
    ev_round = np.empty(len(fa.ts), dtype=np.int64)
    samples: list[np.ndarray] = []
    for g, (a, b) in enumerate(itertools.pairwise(bounds)):
        given = None if sample_times is None else sample_times.get(tids[g], [])
        s = _sample_times(fa.ts[a:b], given, every_hours)
        samples.append(s)
        ev_round[a:b] = np.searchsorted(s, fa.ts[a:b], side="left")
    ev_row = np.repeat(rows, np.diff(bounds))
    n_rounds = max((len(s) for s in samples), default=0)
    by_round = np.argsort(ev_round, kind="stable")
    round_starts = np.searchsorted(ev_round[by_round], np.arange(n_rounds + 1), side="left")
    sample_store = WindowStore(chunk)
    slots = sample_store.rows_for([f"s{i}" for i in range(chunk)])
    n_samp = np.array([len(s) for s in samples])
    out_tid: list[int] = []
    out_t: list[float] = []
    blocks: list[np.ndarray] = []
    pending = 0
    for j in range(n_rounds):
        sel = by_round[round_starts[j] : round_starts[j + 1]]
        if len(sel):
            store.ingest(ev_row[sel], fa.ts[sel], fa.values[sel], fa.status[sel], fa.aux[sel])
        ready = np.flatnonzero((n_samp > j) & ~np.isnan(store.last_event_ts(rows)))
        while len(ready):
            take = min(len(ready), chunk - pending)
            part, ready = ready[:take], ready[take:]
            sample_store.copy_rows(store, rows[part], slots[pending : pending + take])
            out_tid += part.tolist()
            out_t += [float(samples[g][j]) for g in part]
            pending += take
            if pending == chunk:
                blocks.append(sample_store.features(slots, normal_model))
                pending = 0
    if pending:
        blocks.append(sample_store.features(slots[:pending], normal_model))
    x = np.vstack(blocks) if blocks else np.zeros((0, N_FEATURES))
    order = np.lexsort((np.asarray(out_t), np.asarray(out_tid, dtype=np.int64)))
    out = pd.DataFrame(x[order], columns=list(FEATURE_NAMES))
    out.insert(0, "time", pd.to_datetime(np.asarray(out_t, dtype=float)[order], unit="s", utc=True))
    out.insert(0, "turbine_id", [tids[i] for i in np.asarray(out_tid, dtype=np.int64)[order]])
    return out
