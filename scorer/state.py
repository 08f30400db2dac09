"""Per-turbine streaming state and the pure decisions made on it (dedup, ordering, history policy).

Why not faust tables: a changelog record per event would cost more than scoring the event. Instead
each turbine's window (a view on a row of the worker's ``models.window_store.WindowStore``) plus this
small bookkeeping (:class:`TurbineState`) lives in memory and is checkpointed periodically to
PostgreSQL together with the consumed offsets (see ``scorer.sink`` and docs/scorer.md).

Event classification (per turbine, event time ``ts``, id ``event_id``):

* ``DUPLICATE`` - the id is in the turbine's recent-id set (ids of events newer than
  ``newest - tolerance``): dropped, counted.
* ``NEW`` - newer than the turbine's newest event: applied.
* ``OUT_OF_ORDER`` - older than the newest but within the tolerance: applied (the window adds it to
  its hourly bin, the 10-minute aggregate bucket is still open).
* ``LATE`` - older than ``newest - tolerance``: dropped from features and aggregates (we can no longer
  prove it is not a duplicate, its aggregate bucket is final) but counted per turbine and in metrics.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import orjson

from common.rows import TELEMETRY_AGG_SIGNALS, AggRow
from models.features import TRACKED_SIGNALS, FeatureWindow
from scorer.coalescing import NORMAL, RescoreMark, status_class

#: Signals of ``telemetry_agg`` (means per 10-minute bucket), in table column order.
AGG_SIGNALS = TELEMETRY_AGG_SIGNALS
AGG_BUCKET_S = 600
_NA = len(AGG_SIGNALS)
#: Columns of the aggregate signals in a (events x TRACKED_SIGNALS) value array.
AGG_COLUMNS = np.array([TRACKED_SIGNALS.index(name) for name in AGG_SIGNALS])
#: Hard cap of the recent-id set of one turbine (protects memory against absurd event rates).
MAX_RECENT_IDS = 20_000
AUX_FORMAT = 1


class Verdict(enum.Enum):
    NEW = "new"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE = "duplicate"
    LATE = "late"


def classify(
    last_ts: float, recent: dict[str, float], event_id: str, ts: float, tolerance_s: float
) -> Verdict:
    """Pure decision for one event given the turbine's newest event time and recent ids."""
    if event_id in recent:
        return Verdict.DUPLICATE
    if ts > last_ts:
        return Verdict.NEW
    if ts <= last_ts - tolerance_s:
        return Verdict.LATE
    return Verdict.OUT_OF_ORDER


@dataclass(frozen=True)
class HistoryMark:
    """The last row written to ``score_history`` for a turbine by the stream (event time, score, tier)."""

    ts: float
    score: float
    tier: str


def should_write_history(
    prev: HistoryMark | None,
    as_of_ts: float,
    score: float,
    tier: str,
    *,
    min_interval_s: float,
    max_interval_s: float,
    score_delta: float,
) -> bool:
    """History policy for stream scores (sweeps always write).

    Write when: there is no previous row; the tier changed; the score moved by ``score_delta`` and at
    least ``min_interval_s`` of event time passed; or ``max_interval_s`` passed (keeps charts alive).
    Never for an as-of time not after the previous row (same key = nothing new). Event time, not wall
    clock, so that a replay after a crash takes exactly the same decisions.
    """
    if prev is None:
        return True
    elapsed = as_of_ts - prev.ts
    if elapsed <= 0:
        return False
    if tier != prev.tier:
        return True
    if elapsed >= max_interval_s:
        return True
    return abs(score - prev.score) >= score_delta and elapsed >= min_interval_s


@dataclass
class TurbineState:
    """Everything the stream keeps for one turbine; serialised by :meth:`aux_bytes` at checkpoints."""

    turbine_id: str
    site_id: str
    partition: int
    window: FeatureWindow
    last_ts: float = -math.inf
    recent: dict[str, float] = field(default_factory=dict)
    agg: dict[int, list[float]] = field(default_factory=dict)  # bucket start -> [n, sums..., counts...]
    dirty_buckets: set[int] = field(default_factory=set)
    history: HistoryMark | None = None
    last_tier: str | None = None
    late: int = 0
    duplicates: int = 0
    # Rescore coalescing (scorer/coalescing.py): what the last stream score was based on, the status
    # class of the newest accepted event, and whether newer events wait for a rescoring.
    rescore: RescoreMark | None = None
    newest_status: int = NORMAL
    pending: bool = False
    compacted_at: float = -math.inf  # newest event time at the last compact() (not checkpointed)

    # ------------------------------------------------------------------ ingestion
    def accept(self, event_id: str, ts: float, tolerance_s: float, status_code: int = 0) -> None:
        """Record an accepted (NEW or OUT_OF_ORDER) event: recent ids, newest time and status class.

        Its 10-minute bucket is marked changed here (so a prune cannot drop it) and summed by
        :func:`add_to_buckets` over the batch's arrays.
        """
        recent = self.recent
        recent[event_id] = ts
        self.dirty_buckets.add(int(ts // AGG_BUCKET_S) * AGG_BUCKET_S)
        if ts > self.last_ts:
            self.last_ts = ts
            self.newest_status = status_class(status_code)
            if len(recent) > 64:
                self._prune(tolerance_s)

    def _prune(self, tolerance_s: float) -> None:
        horizon = self.last_ts - tolerance_s
        self.recent = {k: v for k, v in self.recent.items() if v > horizon}
        if len(self.recent) > MAX_RECENT_IDS:
            keep = sorted(self.recent.items(), key=lambda kv: kv[1])[-MAX_RECENT_IDS:]
            self.recent = dict(keep)
        oldest_open = int((horizon - AGG_BUCKET_S) // AGG_BUCKET_S) * AGG_BUCKET_S
        for bucket in [b for b in self.agg if b < oldest_open and b not in self.dirty_buckets]:
            del self.agg[bucket]

    def compact(self, tolerance_s: float) -> None:
        """After a batch's rows are taken: forget the ids and 10-minute buckets no accepted event can
        reach any more, at most once per bucket width of event time.

        Without it, ids and buckets were pruned only when a turbine held more than 64 recent ids: 10-minute
        data then carried up to 64 ids and ~60 written buckets between prunes (up to ~10 KB of aux in
        each checkpoint instead of ~1.3 KB).
        """
        if self.last_ts - self.compacted_at < AGG_BUCKET_S:
            return
        self.compacted_at = self.last_ts
        self._prune(tolerance_s)

    def take_agg_rows(self) -> list[AggRow]:
        """Rows for ``telemetry_agg`` of the buckets changed since the last call (full values: idempotent)."""
        rows = []
        for bucket in sorted(self.dirty_buckets):
            acc = self.agg.get(bucket)
            if acc is None:
                continue
            means = [acc[1 + i] / acc[1 + _NA + i] if acc[1 + _NA + i] else None for i in range(_NA)]
            rows.append(AggRow.of(datetime.fromtimestamp(bucket, UTC), self.turbine_id, int(acc[0]), means))
        self.dirty_buckets.clear()
        return rows

    # ------------------------------------------------------------------ checkpoint
    def aux_bytes(self) -> bytes:
        """Bookkeeping beside the window (JSON): what a restore needs to continue identically."""
        return orjson.dumps(
            {
                "v": AUX_FORMAT,
                "site": self.site_id,
                "last": None if self.last_ts == -math.inf else self.last_ts,
                "recent": self.recent,
                "agg": {str(k): v for k, v in self.agg.items()},
                "hist": None
                if self.history is None
                else [self.history.ts, self.history.score, self.history.tier],
                "tier": self.last_tier,
                "late": self.late,
                "dup": self.duplicates,
                "rs": None if self.rescore is None else [self.rescore.ts, self.rescore.status],
                "ns": self.newest_status,
                "pend": self.pending,
            }
        )

    @classmethod
    def restore(cls, turbine_id: str, partition: int, window_bytes: bytes, aux: bytes) -> TurbineState:
        """A state with a window of its own (a 1-row store); ``BatchProcessor.install`` moves it into
        the worker's store. The worker's restore path is ``BatchProcessor.restore`` (no copy)."""
        return cls.from_aux(turbine_id, partition, FeatureWindow.from_bytes(window_bytes), aux)

    @classmethod
    def from_aux(cls, turbine_id: str, partition: int, window: FeatureWindow, aux: bytes) -> TurbineState:
        """The state of a checkpoint whose window is already loaded (``window``)."""
        data = orjson.loads(aux)
        if data.get("v") != AUX_FORMAT:
            raise ValueError(f"turbine {turbine_id}: unsupported checkpoint aux format {data.get('v')!r}")
        hist = data.get("hist")
        rs = data.get("rs")  # absent in checkpoints written before coalescing: never stream-scored
        return cls(
            turbine_id=turbine_id,
            site_id=data["site"],
            partition=partition,
            window=window,
            last_ts=-math.inf if data.get("last") is None else float(data["last"]),
            recent={str(k): float(v) for k, v in data.get("recent", {}).items()},
            agg={int(k): v for k, v in data.get("agg", {}).items()},  # fresh lists from orjson
            history=None if hist is None else HistoryMark(float(hist[0]), float(hist[1]), str(hist[2])),
            last_tier=data.get("tier"),
            late=int(data.get("late", 0)),
            duplicates=int(data.get("dup", 0)),
            rescore=None if rs is None else RescoreMark(float(rs[0]), int(rs[1])),
            newest_status=int(data.get("ns", NORMAL)),
            pending=bool(data.get("pend", False)),
        )


def add_to_buckets(owners: Sequence[TurbineState], ts: np.ndarray, values: np.ndarray) -> None:
    """Add a batch's accepted events to their turbines' 10-minute aggregates (sums and counts).

    ``owners[i]`` is the state of event ``i``, ``ts`` the event times, ``values`` (events x
    ``AGG_SIGNALS``) with NaN for a missing value. One group per turbine and bucket, summed over arrays
    (a 1-Hz turbine's 600 readings of a bucket cost one Python step, not 600).
    """
    n = len(owners)
    if n == 0:
        return
    index: dict[int, int] = {}
    unique: list[TurbineState] = []
    codes = []
    for st in owners:
        code = index.get(id(st))
        if code is None:
            code = index[id(st)] = len(unique)
            unique.append(st)
        codes.append(code)
    owner = np.fromiter(codes, dtype=np.int64, count=n)
    bucket = np.floor_divide(ts, AGG_BUCKET_S).astype(np.int64)
    low = int(bucket.min())
    span = int(bucket.max()) - low + 1
    key = owner * span + (bucket - low)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    v = values[order]
    present = ~np.isnan(v)
    sums = np.add.reduceat(np.where(present, v, 0.0), starts, axis=0)
    counts = np.add.reduceat(present.astype(np.float64), starts, axis=0)
    n_events = np.diff(np.r_[starts, n]).tolist()
    groups = key[starts]
    bucket_starts = ((groups % span + low) * AGG_BUCKET_S).tolist()
    for st_index, start, k, sm, ct in zip(
        (groups // span).tolist(), bucket_starts, n_events, sums.tolist(), counts.tolist(), strict=True
    ):
        st = unique[st_index]
        acc = st.agg.get(start)
        if acc is None:
            st.agg[start] = [float(k), *sm, *ct]
        else:
            acc[0] += k
            acc[1:] = [a + b for a, b in zip(acc[1:], sm + ct, strict=True)]
        st.dirty_buckets.add(start)
