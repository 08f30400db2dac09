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
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from operator import lt
from typing import Any

import msgspec
import numpy as np
import orjson

from common.rows import TELEMETRY_AGG_SIGNALS, AggRow
from models.features import TRACKED_SIGNALS, FeatureWindow
from scorer.book import BUCKET_WIDTH, book_for, text_code, text_of
from scorer.book import DEFAULTS as BOOK_DEFAULTS
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
_NO_FIFO: list[str] = []
_NEG_INF = -math.inf  # one object (``-math.inf`` makes a new float at each evaluation)
#: TurbineState's attributes kept in the book's columns (what moves with a state to another row).
_SCALARS = (
    "site_id", "partition", "last_ts", "history", "last_tier", "late", "duplicates", "rescore",
    "newest_status", "pending", "compacted_at",
)  # fmt: skip


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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class AuxInputs:
    """A turbine's bookkeeping as :meth:`TurbineState.aux_bytes` writes it (:meth:`encode`)."""

    site: str
    last_ts: float
    recent: dict[str, float]
    agg: dict[int, array[float]]
    history: HistoryMark | None
    tier: str | None
    late: int
    duplicates: int
    rescore: RescoreMark | None
    newest_status: int
    pending: bool

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": AUX_FORMAT,
                "site": self.site,
                "last": None if self.last_ts == -math.inf else self.last_ts,
                "recent": self.recent,
                "agg": {str(k): v.tolist() for k, v in self.agg.items()},
                "hist": None
                if self.history is None
                else [self.history.ts, self.history.score, self.history.tier],
                "tier": self.tier,
                "late": self.late,
                "dup": self.duplicates,
                "rs": None if self.rescore is None else [self.rescore.ts, self.rescore.status],
                "ns": self.newest_status,
                "pend": self.pending,
            }
        )


@dataclass(slots=True)
class Admitted:
    """What :meth:`TurbineState.admit` decided for one turbine's events of a batch (event indices)."""

    first: int | None = None  # first event not a duplicate (the turbine counts as touched)
    newest: int | None = None  # the accepted event that became the newest (its status class counts)
    latest_first: int | None = None  # first accepted event that was the newest when accepted
    latest: int | None = None  # last such event: the turbine's latest reading
    duplicates: int = 0
    late: int = 0


class TurbineState:
    """What the stream keeps for one turbine: a thin view on its row of the worker's bookkeeping
    columns (``scorer/book.py``, the row of its window in the store), serialised by :meth:`aux_bytes`
    at checkpoints. The attributes read and write those columns (values, not objects kept per turbine).

    ``recent`` (id -> event time) is the dedup memory: kept inline in the book between batches when it
    fits (at most ``book.INLINE_IDS`` uuid ids), else as a dict on this object; a batch works on it as
    a dict (:attr:`recent` builds it; :meth:`compact` puts it back inline). Beside the dict (not
    checkpointed; rebuilt from ``recent`` whenever that dict was replaced) the ids in the order they
    were added while their times rose strictly (``_fifo`` from ``_head``) and the others (``_ooo``):
    forgetting the ids at or below a horizon pops the front of ``_fifo`` and scans ``_ooo`` instead of
    rebuilding the dict, so a 1-Hz turbine (3,600 ids within the default tolerance, one prune per event)
    costs O(1) per event. The dict that remains is the one a rebuild would give (same ids, same order).

    ``agg`` (10-minute bucket start -> [n, sums..., counts...]) lives in the book's bucket pool; reading
    :attr:`agg` gives a copy. Buckets of another width (an odd old checkpoint) stay in a dict here.
    """

    __slots__ = (
        "_aggd",
        "_book",
        "_fifo",
        "_head",
        "_ids",
        "_indexed",
        "_lazy",
        "_ooo",
        "_row",
        "_store",
        "_top",
        "dirty_buckets",
        "turbine_id",
    )

    def __init__(
        self,
        turbine_id: str,
        site_id: str,
        partition: int,
        window: FeatureWindow,
        last_ts: float = -math.inf,
        recent: dict[str, float] | None = None,
        agg: dict[int, array[float]] | None = None,
        dirty_buckets: set[int] | None = None,
        history: HistoryMark | None = None,
        last_tier: str | None = None,
        late: int = 0,
        duplicates: int = 0,
        rescore: RescoreMark | None = None,
        newest_status: int = NORMAL,
        pending: bool = False,
        compacted_at: float = -math.inf,
    ) -> None:
        self._attach(turbine_id, window)
        self._ids = recent
        self.dirty_buckets = dirty_buckets
        self.site_id = site_id
        self.partition = partition
        self.last_ts = last_ts
        self.history = history
        self.last_tier = last_tier
        self.late = late
        self.duplicates = duplicates
        self.rescore = rescore
        self.newest_status = newest_status
        self.pending = pending
        self.compacted_at = compacted_at
        if agg:
            self._agg_load(agg)

    def _attach(self, turbine_id: str, window: FeatureWindow) -> int:
        """A new state on ``window``'s row: the row's columns at their defaults, no recent ids, no
        buckets, nothing lazy; returns the row (the constructor starts here)."""
        book = book_for(window.store)
        book.reset(window.row)
        row = book.row_ints[window.row]  # (an int made at the book's growth, not now)
        self._bind(turbine_id, window.store, book, row)
        return row

    def _bind(self, turbine_id: str, store: Any, book: Any, row: int) -> None:
        """The slots of a new state on ``row`` of ``book`` (whose columns the caller reset): no recent
        ids, no buckets, nothing lazy (:meth:`_attach`, and ``from_aux_many`` for many rows at once)."""
        self.turbine_id = turbine_id
        self._store = store
        self._book = book
        self._row = row
        self._ids = None
        self._aggd: dict[int, array[float]] | None = None
        self.dirty_buckets = None
        self._fifo: list[str] = _NO_FIFO  # (never changed: _index() gives a list of its own first)
        self._head = 0
        self._top = _NEG_INF
        self._ooo: list[str] | None = None
        self._indexed: dict[str, float] | None = None
        # A restored turbine not touched since: the checkpoint's JSON of ``recent`` and ``agg``, not
        # decoded yet (decoded at first read of either).
        self._lazy: tuple[msgspec.Raw, msgspec.Raw] | None = None

    # ------------------------------------------------------------------ the row's columns
    @property
    def window(self) -> FeatureWindow:
        return FeatureWindow.view(self._store, self._row)  # (made at each read: not kept per turbine)

    @window.setter
    def window(self, window: FeatureWindow) -> None:
        """A window on another row (``BatchProcessor._adopt`` moves a state into the worker's store):
        the bookkeeping moves with it."""
        if window.store is self._store and window.row == self._row:
            return
        self._ensure()
        recent = self.recent  # kept on this object while it moves
        agg = self._agg_snapshot()
        values = {name: getattr(self, name) for name in _SCALARS}
        self._book.free_buckets(self._row)
        self._store = window.store
        self._book = book = book_for(window.store)
        book.reset(window.row)
        self._row = book.row_ints[window.row]
        for name, value in values.items():
            setattr(self, name, value)
        self._ids = recent
        self._aggd = None
        self._agg_load(agg)

    @property
    def site_id(self) -> str:
        return text_of(self._book.site[self._row])  # type: ignore[attr-defined]

    @site_id.setter
    def site_id(self, value: str) -> None:
        self._book.site[self._row] = text_code(value)  # type: ignore[attr-defined]

    @property
    def partition(self) -> int:
        return self._book.partition[self._row]  # type: ignore[attr-defined,no-any-return]

    @partition.setter
    def partition(self, value: int) -> None:
        self._book.partition[self._row] = value  # type: ignore[attr-defined]

    @property
    def last_ts(self) -> float:
        return self._book.last_ts[self._row]  # type: ignore[attr-defined,no-any-return]

    @last_ts.setter
    def last_ts(self, value: float) -> None:
        self._book.last_ts[self._row] = value  # type: ignore[attr-defined]

    @property
    def compacted_at(self) -> float:
        """Newest event time at the last :meth:`compact` (not checkpointed)."""
        return self._book.compacted_at[self._row]  # type: ignore[attr-defined,no-any-return]

    @compacted_at.setter
    def compacted_at(self, value: float) -> None:
        self._book.compacted_at[self._row] = value  # type: ignore[attr-defined]

    @property
    def late(self) -> int:
        return self._book.late[self._row]  # type: ignore[attr-defined,no-any-return]

    @late.setter
    def late(self, value: int) -> None:
        self._book.late[self._row] = value  # type: ignore[attr-defined]

    @property
    def duplicates(self) -> int:
        return self._book.dup[self._row]  # type: ignore[attr-defined,no-any-return]

    @duplicates.setter
    def duplicates(self, value: int) -> None:
        self._book.dup[self._row] = value  # type: ignore[attr-defined]

    @property
    def last_tier(self) -> str | None:
        code = self._book.tier[self._row]  # type: ignore[attr-defined]
        return None if code < 0 else text_of(code)

    @last_tier.setter
    def last_tier(self, value: str | None) -> None:
        self._book.tier[self._row] = -1 if value is None else text_code(value)  # type: ignore[attr-defined]

    @property
    def history(self) -> HistoryMark | None:
        """The last row written to ``score_history`` by the stream (a new mark object at each read)."""
        book, row = self._book, self._row
        code = book.hist_tier[row]  # type: ignore[attr-defined]
        if code < 0:
            return None
        return HistoryMark(book.hist_ts[row], book.hist_score[row], text_of(code))  # type: ignore[attr-defined]

    @history.setter
    def history(self, mark: HistoryMark | None) -> None:
        book, row = self._book, self._row
        if mark is None:
            book.hist_tier[row] = -1  # type: ignore[attr-defined]
            return
        book.hist_ts[row] = mark.ts  # type: ignore[attr-defined]
        book.hist_score[row] = mark.score  # type: ignore[attr-defined]
        book.hist_tier[row] = text_code(mark.tier)  # type: ignore[attr-defined]

    @property
    def rescore(self) -> RescoreMark | None:
        """What the last stream score was based on (scorer/coalescing.py; a new object at each read)."""
        book, row = self._book, self._row
        if not book.has_rs[row]:  # type: ignore[attr-defined]
            return None
        return RescoreMark(book.rs_ts[row], book.rs_status[row])  # type: ignore[attr-defined]

    @rescore.setter
    def rescore(self, mark: RescoreMark | None) -> None:
        book, row = self._book, self._row
        if mark is None:
            book.has_rs[row] = 0  # type: ignore[attr-defined]
            return
        book.rs_ts[row] = mark.ts  # type: ignore[attr-defined]
        book.rs_status[row] = mark.status  # type: ignore[attr-defined]
        book.has_rs[row] = 1  # type: ignore[attr-defined]

    @property
    def newest_status(self) -> int:
        """Status class of the newest accepted event (rescore coalescing)."""
        return self._book.newest_status[self._row]  # type: ignore[attr-defined,no-any-return]

    @newest_status.setter
    def newest_status(self, value: int) -> None:
        self._book.newest_status[self._row] = value  # type: ignore[attr-defined]

    @property
    def pending(self) -> bool:
        """Newer events wait for a rescoring."""
        return bool(self._book.pending[self._row])  # type: ignore[attr-defined]

    @pending.setter
    def pending(self, value: bool) -> None:
        self._book.pending[self._row] = 1 if value else 0  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ recent ids, buckets
    @property
    def recent(self) -> dict[str, float]:
        ids = self._ids
        if ids is None:
            if self._lazy is not None:
                self._decode_lazy()
                return self.recent
            ids = self._ids = self._book.ids(self._row)
        return ids

    @recent.setter
    def recent(self, value: dict[str, float]) -> None:
        self._ensure()
        self._ids = value

    def _recent_copy(self) -> dict[str, float]:
        """A copy of ``recent`` that leaves the inline ids inline (a checkpoint)."""
        self._ensure()
        ids = self._ids
        return ids.copy() if ids is not None else self._book.ids(self._row)

    def _park(self) -> None:
        """Put ``recent`` back inline when it fits (its side structures go with the dict)."""
        ids = self._ids
        if ids is not None and self._book.park_ids(self._row, ids):
            self._ids = None
            self._fifo = _NO_FIFO
            self._ooo = self._indexed = None
            self._head = 0
            self._top = _NEG_INF

    @property
    def agg(self) -> dict[int, array[float]]:
        """The 10-minute buckets (a copy: they change through :func:`add_to_buckets` and prunes)."""
        return self._agg_snapshot()

    def _agg_snapshot(self) -> dict[int, array[float]]:
        self._ensure()
        if self._aggd is not None:
            return {k: v[:] for k, v in self._aggd.items()}
        return dict(self._book.bucket_items(self._row))

    def _agg_load(self, agg: dict[int, array[float]]) -> None:
        if any(len(v) != BUCKET_WIDTH for v in agg.values()):
            self._aggd = dict(agg)  # not the pool's width: kept as decoded
            return
        book, row = self._book, self._row
        for start, values in agg.items():
            slot = book.add_bucket(row, start)
            book.b_data[slot] = np.frombuffer(values, dtype=np.float64)

    def _agg_min(self) -> float:
        self._ensure()
        if self._aggd is not None:
            return min(self._aggd) if self._aggd else math.inf
        return self._book.bucket_min(self._row)

    def _agg_drop(self, before: int, keep: Any) -> None:
        if self._aggd is not None:
            for bucket in [b for b in self._aggd if b < before and b not in keep]:
                del self._aggd[bucket]
        else:
            self._book.drop_buckets(self._row, before, keep)

    def _ensure(self) -> None:
        if self._lazy is not None:
            self._decode_lazy()

    def _decode_lazy(self) -> None:
        raw_recent, raw_agg = self._lazy  # type: ignore[misc]
        try:  # the same conversions as an eager decode (``_aux_fields``)
            recent = _id_times(orjson.loads(memoryview(raw_recent)) or {})
            agg = {int(k): array("d", v) for k, v in orjson.loads(memoryview(raw_agg)).items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"turbine {self.turbine_id}: corrupted checkpoint aux: {exc}") from exc
        self._lazy = None
        if self._ids is None:  # (a dict given meanwhile keeps it)
            self._ids = recent
        self._agg_load(agg)

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.turbine_id,
            self.site_id,
            self.partition,
            self._store,  # the window: the same row of the same store
            self._row,
            self.last_ts,
            self.recent,
            self.agg,
            self.dirty_buckets,
            self.history,
            self.last_tier,
            self.late,
            self.duplicates,
            self.rescore,
            self.newest_status,
            self.pending,
            self.compacted_at,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TurbineState):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TurbineState({self.turbine_id!r}, row={self._row}, last_ts={self.last_ts!r})"

    # ------------------------------------------------------------------ ingestion
    def accept(self, event_id: str, ts: float, tolerance_s: float, status_code: int = 0) -> None:
        """Record an accepted (NEW or OUT_OF_ORDER) event: recent ids, newest time and status class.

        Its 10-minute bucket is marked changed (a prune cannot drop it); :func:`add_to_buckets` sums
        the batch's events into the buckets. :meth:`admit` does the same for a turbine's run of events.
        """
        self._remember(event_id, ts)
        self.mark_bucket(ts)
        if ts > self.last_ts:
            self.last_ts = ts
            self.newest_status = status_class(status_code)
            if len(self.recent) > 64:
                self._prune(tolerance_s)

    def mark_bucket(self, ts: float) -> None:
        bucket = int(ts // AGG_BUCKET_S) * AGG_BUCKET_S
        if self.dirty_buckets is None:
            self.dirty_buckets = {bucket}
        else:
            self.dirty_buckets.add(bucket)

    def _remember(self, event_id: str, ts: float) -> None:
        if self._indexed is not self.recent:
            self._index()
        self.recent[event_id] = ts
        if ts > self._top:
            self._fifo.append(event_id)
            self._top = ts
        elif self._ooo is None:
            self._ooo = [event_id]
        else:
            self._ooo.append(event_id)

    def _index(self) -> None:
        """The side structures of ``recent`` as it is (restored, or replaced by hand)."""
        fifo: list[str] = []
        ooo: list[str] = []
        top = -math.inf
        for k, v in self.recent.items():
            if v > top:
                fifo.append(k)
                top = v
            else:
                ooo.append(k)
        self._fifo, self._head, self._top = fifo, 0, top
        self._ooo = ooo or None
        self._indexed = self.recent

    def _forget_ids(self, horizon: float) -> None:
        """Forget the recent ids at or below ``horizon`` (what a rebuild of the dict would keep)."""
        recent = self.recent
        if self._indexed is not recent:
            self._index()
        fifo, head = self._fifo, self._head
        end = len(fifo)
        while head < end:  # times rise along fifo: the ids to forget are a prefix
            v = recent.get(fifo[head])
            if v is not None:  # (None: deleted by hand)
                if v > horizon:
                    break
                del recent[fifo[head]]
            head += 1
        if head * 2 >= end:  # more forgotten ids than kept ones: drop them (amortised O(1) per id)
            del fifo[:head]
            head = 0
        self._head = head
        ooo = self._ooo
        if ooo is not None:
            keep = []
            for k in ooo:
                v = recent.get(k)
                if v is not None and v <= horizon:
                    del recent[k]
                elif v is not None:
                    keep.append(k)
            self._ooo = keep or None

    def _prune(self, tolerance_s: float) -> None:
        """Forget the ids at or below ``last_ts - tolerance_s`` (keeping at most MAX_RECENT_IDS, the
        newest) and the closed 10-minute buckets not changed by the batch being applied."""
        horizon = self.last_ts - tolerance_s
        self._forget_ids(horizon)
        recent = self.recent
        if len(recent) > MAX_RECENT_IDS:
            kept = sorted(recent.items(), key=lambda kv: kv[1])[-MAX_RECENT_IDS:]
            self.recent = dict(kept)
            self._index()
        oldest_open = int((horizon - AGG_BUCKET_S) // AGG_BUCKET_S) * AGG_BUCKET_S
        if self._agg_min() < oldest_open:
            self._agg_drop(oldest_open, self.dirty_buckets or ())

    def compact(self, tolerance_s: float) -> None:
        """After a batch's rows are taken: forget the ids and 10-minute buckets no accepted event can
        reach any more, at most once per bucket width of event time.

        Without it, ids and buckets were pruned only when a turbine held more than 64 recent ids: 10-minute
        data then carried up to 64 ids and ~60 written buckets between prunes (up to ~10 KB of aux in
        each checkpoint instead of ~1.3 KB).
        """
        self.dirty_buckets = None
        if self.last_ts - self.compacted_at < AGG_BUCKET_S:
            self._park()
            return
        self.compacted_at = self.last_ts
        self._prune(tolerance_s)
        if self._head:  # no reference to a forgotten id is kept between batches (memory)
            del self._fifo[: self._head]
            self._head = 0
        self._park()

    def admit(
        self,
        rows: Sequence[int],
        ids: Sequence[str],
        ts: Sequence[float],
        tolerance_s: float,
        accepted: list[int],
    ) -> Admitted:
        """Classify this turbine's events ``rows`` of a batch (arrival order) and record the accepted
        ones exactly as :func:`classify` then :meth:`accept` per event would (same verdicts, same
        ``recent``, prunes at the same events). Accepted indices are appended to ``accepted`` as they
        are decided; the status class of the newest one is the caller's (``Admitted.newest``), and so
        are the buckets' sums (:func:`add_to_buckets`).
        """
        res = Admitted()
        recent = self.recent
        if self._indexed is not recent:
            self._index()
        last = self.last_ts
        if self._admit_new_run(rows, ids, ts, tolerance_s, accepted, res):
            return res
        marked = len(accepted)
        # The prune after a NEW event (more than 64 ids) only forgets ids unless the cap or a closed
        # bucket is at stake: then it is done in full (the batch's buckets marked first, as accept did).
        agg_min = self._agg_min()
        fifo = self._fifo
        for i in rows:
            eid = ids[i]
            if eid in recent:  # classify's first rule
                res.duplicates += 1
                continue
            t = ts[i]
            if res.first is None:
                res.first = i
            new = t > last  # classify's second rule
            if not new and classify(last, recent, eid, t, tolerance_s) is Verdict.LATE:
                res.late += 1
                continue
            recent[eid] = t
            if t > self._top:
                fifo.append(eid)
                self._top = t
            elif self._ooo is None:
                self._ooo = [eid]
            else:
                self._ooo.append(eid)
            accepted.append(i)
            if new:
                last = t
                res.newest = i
            if t >= last:  # the newest so far (ties: the later one): the turbine's latest reading
                if res.latest_first is None:
                    res.latest_first = i
                res.latest = i
            if new and len(recent) > 64:
                horizon = last - tolerance_s
                oldest_open = int((horizon - AGG_BUCKET_S) // AGG_BUCKET_S) * AGG_BUCKET_S
                if len(recent) <= MAX_RECENT_IDS and agg_min >= oldest_open:
                    self._forget_ids(horizon)
                    continue
                for j in accepted[marked:]:  # this batch's buckets are protected from the prune
                    self.mark_bucket(ts[j])
                marked = len(accepted)
                self.last_ts = last
                self._prune(tolerance_s)
                recent = self.recent
                fifo = self._fifo
                agg_min = self._agg_min()
        self.last_ts = last  # (no later prune in this batch before compact(): no bucket to protect)
        self.duplicates += res.duplicates
        self.late += res.late
        if res.first is None:  # not touched: no compact() follows
            self._park()
        return res

    def _admit_new_run(
        self,
        rows: Sequence[int],
        ids: Sequence[str],
        ts: Sequence[float],
        tolerance_s: float,
        accepted: list[int],
        res: Admitted,
    ) -> bool:
        """The usual case at once: every event of the run is NEW (unknown ids, none twice, times rising
        from after the newest). False (nothing changed) when it is not, or when the prunes the events
        would trigger one by one are not equivalent to one prune after the last.

        Equivalent when no event reaches more than 64 ids (no prune), or when every event does: at
        least 64 of the ids already known outlive the last event's horizon, so the dict holds more than
        64 ids after each insertion. Horizons only rise, so each prune forgets a subset of what the last
        one forgets, and a bucket one prune drops is never one of the run's (they are all newer).
        """
        n = len(rows)
        if not n:
            return False
        run_ts = [ts[i] for i in rows]
        if not run_ts[0] > self.last_ts or (n > 1 and not all(map(lt, run_ts, islice(run_ts, 1, None)))):
            return False
        run_ids = [ids[i] for i in rows]
        recent = self.recent
        if (n > 1 and len(set(run_ids)) != n) or not recent.keys().isdisjoint(run_ids):
            return False
        size = len(recent)
        newest = run_ts[-1]
        horizon = newest - tolerance_s
        prune = size + n > 64
        if prune and (size + n > MAX_RECENT_IDS or size - self._count_at_or_below(horizon) < 64):
            return False
        recent.update(zip(run_ids, run_ts, strict=True))
        self._fifo.extend(run_ids)  # after the newest, rising: each one is above the fifo's top
        self._top = newest
        self.last_ts = newest
        accepted.extend(rows)
        res.first = res.latest_first = rows[0]
        res.newest = res.latest = rows[-1]
        if prune:
            oldest_open = int((horizon - AGG_BUCKET_S) // AGG_BUCKET_S) * AGG_BUCKET_S
            if self._agg_min() < oldest_open:  # a closed bucket goes: the run's own are protected
                for t in run_ts:
                    self.mark_bucket(t)
                self._prune(tolerance_s)
            else:
                self._forget_ids(horizon)
        return True

    def _count_at_or_below(self, horizon: float) -> int:
        """How many recent ids a prune at ``horizon`` would forget (the fifo's prefix, the others)."""
        recent = self.recent
        count = 0
        for k in islice(self._fifo, self._head, None):
            v = recent.get(k)
            if v is None:
                continue
            if v > horizon:
                break
            count += 1
        for k in self._ooo or ():
            v = recent.get(k)
            if v is not None and v <= horizon:
                count += 1
        return count

    # ------------------------------------------------------------------ checkpoint
    def aux_bytes(self) -> bytes:
        """Bookkeeping beside the window (JSON): what a restore needs to continue identically."""
        return self.aux_inputs(copy=False).encode()

    def aux_inputs(self, *, copy: bool = True) -> AuxInputs:
        """What :meth:`aux_bytes` encodes; ``copy``: the dedup dict and the bucket arrays copied (the
        only parts changed in place), so a checkpoint takes it under the lock and encodes it outside.
        Both are always copies now (``copy`` is kept for callers): ids kept inline stay inline."""
        return AuxInputs(
            site=self.site_id,
            last_ts=self.last_ts,
            recent=self._recent_copy(),
            agg=self._agg_snapshot(),
            history=self.history,
            tier=self.last_tier,
            late=self.late,
            duplicates=self.duplicates,
            rescore=self.rescore,
            newest_status=self.newest_status,
            pending=self.pending,
        )

    @classmethod
    def restore(cls, turbine_id: str, partition: int, window_bytes: bytes, aux: bytes) -> TurbineState:
        """A state with a window of its own (a 1-row store); ``BatchProcessor.install`` moves it into
        the worker's store. The worker's restore path is ``BatchProcessor.restore`` (no copy)."""
        return cls.from_aux(turbine_id, partition, FeatureWindow.from_bytes(window_bytes), aux)

    @classmethod
    def from_aux(
        cls, turbine_id: str, partition: int, window: FeatureWindow, aux: bytes, *, lazy: bool = False
    ) -> TurbineState:
        """The state of a checkpoint whose window is already loaded (``window``).

        ``lazy``: ``recent`` and ``agg`` (the bulk of the aux: ~70 % of its decode) stay undecoded
        until first read; everything else (what the sweep, the tier counts, the history marks and the
        pending set read for every turbine) is decoded now. The result is the same state either way.
        """
        head = _aux_head(aux)
        if head is None:  # not the shape aux_bytes writes: decoded as it always was
            return cls._from_aux_dict(turbine_id, partition, window, orjson.loads(aux))
        (st,) = cls._from_heads([turbine_id], [partition], window.store, [window.row], [head])
        if not lazy:
            st._decode_lazy()
        return st

    @classmethod
    def from_aux_many(
        cls,
        turbine_ids: Sequence[str],
        partitions: Sequence[int],
        store: Any,
        rows: list[int],
        auxes: Sequence[bytes],
    ) -> list[TurbineState]:
        """``from_aux(turbine_ids[i], partitions[i], FeatureWindow.view(store, rows[i]), auxes[i],
        lazy=True)`` for every ``i``: the same states and book columns, the same errors, with the
        bookkeeping written a column at a time (``Book.reset_many``) instead of a row at a time. A
        restore calls it once per chunk of ~1,000 turbines on its compute thread, where per-row
        writes were a third of the cost. Any aux in another shape than ``aux_bytes`` writes: every
        turbine of the call goes through :meth:`from_aux`, as always."""
        heads = [_aux_head(aux) for aux in auxes]
        if None in heads:
            view = FeatureWindow.view
            return [
                cls.from_aux(tid, part, view(store, row), aux, lazy=True)
                for tid, part, row, aux in zip(turbine_ids, partitions, rows, auxes, strict=True)
            ]
        return cls._from_heads(turbine_ids, partitions, store, rows, heads)  # type: ignore[arg-type]

    @classmethod
    def _from_heads(
        cls,
        turbine_ids: Sequence[str],
        partitions: Sequence[int],
        store: Any,
        rows: list[int],
        ok: Sequence[_AuxHead],
    ) -> list[TurbineState]:
        """The one rule from a checkpoint's aux head to a state and its row's columns (what ``cls(...)``
        with these fields does, written into the columns directly: no property setters, no mark
        objects), for :meth:`from_aux` (one turbine) and :meth:`from_aux_many` (a restore's chunk)."""
        for tid, head in zip(turbine_ids, ok, strict=True):
            if head.v != AUX_FORMAT:
                raise ValueError(f"turbine {tid}: unsupported checkpoint aux format {head.v!r}")
        hist = [h.hist for h in ok]
        rs = [h.rs for h in ok]
        d = BOOK_DEFAULTS
        values: dict[str, list[Any]] = {  # what from_aux writes into each column (else its default)
            "site": [text_code(h.site) for h in ok],
            "partition": list(partitions),
            "last_ts": [d["last_ts"] if h.last is None else h.last for h in ok],
            "hist_ts": [d["hist_ts"] if m is None else m[0] for m in hist],
            "hist_score": [d["hist_score"] if m is None else m[1] for m in hist],
            "hist_tier": [d["hist_tier"] if m is None else text_code(m[2]) for m in hist],
            "tier": [d["tier"] if h.tier is None else text_code(h.tier) for h in ok],
            "late": [h.late for h in ok],
            "dup": [h.dup for h in ok],
            "rs_ts": [d["rs_ts"] if m is None else m[0] for m in rs],
            "rs_status": [d["rs_status"] if m is None else m[1] for m in rs],
            "has_rs": [d["has_rs"] if m is None else 1 for m in rs],
            "newest_status": [h.ns for h in ok],
            "pending": [1 if h.pend else 0 for h in ok],
        }
        book = book_for(store)
        book.reset_many(rows, values)
        ints = book.row_ints
        new = cls.__new__
        out = []
        for tid, row, head in zip(turbine_ids, rows, ok, strict=True):
            st = new(cls)
            st._bind(tid, store, book, ints[row])
            st._lazy = (head.recent, head.agg)
            out.append(st)
        return out

    @classmethod
    def _from_aux_dict(
        cls, turbine_id: str, partition: int, window: FeatureWindow, data: Any
    ) -> TurbineState:
        """Any aux ``orjson`` reads (loose types converted as ``float``/``int``/``str`` do)."""
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
            recent=_id_times(data.get("recent") or {}),
            agg={int(k): array("d", v) for k, v in data.get("agg", {}).items()},
            history=None if hist is None else HistoryMark(float(hist[0]), float(hist[1]), str(hist[2])),
            last_tier=data.get("tier"),
            late=int(data.get("late", 0)),
            duplicates=int(data.get("dup", 0)),
            rescore=None if rs is None else RescoreMark(float(rs[0]), int(rs[1])),
            newest_status=int(data.get("ns", NORMAL)),
            pending=bool(data.get("pend", False)),
        )


class _AuxHead(msgspec.Struct):
    """An aux as :meth:`TurbineState.aux_bytes` writes it, strictly typed; ``recent`` and ``agg`` kept
    as their JSON text (validated, not decoded). Whatever this refuses is decoded loosely instead."""

    site: str
    v: Any = None
    last: float | None = None
    recent: msgspec.Raw = msgspec.Raw(b"{}")
    agg: msgspec.Raw = msgspec.Raw(b"{}")
    hist: tuple[float, float, str] | None = None
    tier: str | None = None
    late: int = 0
    dup: int = 0
    rs: tuple[float, int] | None = None
    ns: int = NORMAL
    pend: bool = False


_AUX_DECODER = msgspec.json.Decoder(_AuxHead)
_BRACE = ord("{")


def _aux_head(aux: bytes) -> _AuxHead | None:
    try:
        head = _AUX_DECODER.decode(aux)
    except msgspec.DecodeError:
        return None
    recent, agg = memoryview(head.recent), memoryview(head.agg)  # JSON values: never empty
    if recent[0] != _BRACE or agg[0] != _BRACE:  # an int compare: ~1 us less than a slice compare
        return None
    return head


def _id_times(recent: dict[str, float]) -> dict[str, float]:
    """The recent ids of a checkpoint: as orjson gave them when every time is a float (no copy)."""
    if set(map(type, recent.values())) <= {float}:
        return recent
    return {str(k): float(v) for k, v in recent.items()}


def add_to_buckets(
    states: Sequence[TurbineState], owner: np.ndarray, ts: np.ndarray, values: np.ndarray
) -> list[AggRow]:
    """Add a batch's accepted events to their turbines' 10-minute aggregates; the rows of the changed
    buckets (whole values: an idempotent upsert), by turbine in ``states`` order, then by bucket.

    ``owner[i]`` is the index in ``states`` of event ``i``'s turbine, ``ts`` the event times (arrival
    order), ``values`` (events x ``AGG_SIGNALS``) with NaN for a missing value. One group per turbine
    and bucket, summed over arrays (a 1-Hz turbine's 600 readings of a bucket cost one step, not 600);
    a bucket's sums then add to what it held (``acc + batch``, as each batch did); the means of all
    changed buckets are computed over arrays too.
    """
    n = len(owner)
    if n == 0:
        return []
    bucket = np.floor_divide(ts, AGG_BUCKET_S).astype(np.int64)
    low = int(bucket.min())
    span = int(bucket.max()) - low + 1
    key = owner.astype(np.int64) * span + (bucket - low)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    v = values[order]
    present = ~np.isnan(v)
    total = np.empty((len(starts), 1 + 2 * _NA), dtype=np.float64)
    total[:, 0] = np.diff(np.r_[starts, n])
    total[:, 1 : 1 + _NA] = np.add.reduceat(np.where(present, v, 0.0), starts, axis=0)
    total[:, 1 + _NA :] = np.add.reduceat(present.astype(np.float64), starts, axis=0)
    groups = key[starts]
    owners = (groups // span).tolist()
    buckets = ((groups % span + low) * AGG_BUCKET_S).tolist()
    for g, (o, b) in enumerate(zip(owners, buckets, strict=True)):
        st = states[o]
        st._ensure()
        odd = st._aggd
        if odd is not None:  # buckets of an odd old checkpoint: as they always were
            acc = odd.get(b)
            if acc is None:
                odd[b] = array("d", total[g].tobytes())
            else:
                held = np.frombuffer(acc, dtype=np.float64)
                held += total[g]
                total[g] = held
            continue
        book, row = st._book, st._row
        slot = book.find_bucket(row, b)
        if slot < 0:
            slot = book.add_bucket(row, b)  # (may grow the pool: b_data read after)
            book.b_data[slot] = total[g]
        else:  # what the bucket held + this batch (float additions, as one add per batch always was)
            held = book.b_data[slot]
            held += total[g]
            total[g] = held
    counts = total[:, 1 + _NA :]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (total[:, 1 : 1 + _NA] / counts).astype(object)
    means[counts == 0] = None
    stamps = {b: datetime.fromtimestamp(b, UTC) for b in set(buckets)}
    tids = [states[o].turbine_id for o in owners]
    samples = total[:, 0].astype(np.int64).tolist()
    return list(map(AggRow, *means.T.tolist(), [stamps[b] for b in buckets], tids, samples))
