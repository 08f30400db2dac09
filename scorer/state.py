"""Per-turbine streaming state and the pure decisions made on it (dedup, ordering, history policy).

Why not faust tables: a changelog record per event would cost more than scoring the event. Instead
each turbine's ``FeatureWindow`` plus this small bookkeeping (:class:`TurbineState`) lives in memory
and is checkpointed periodically to PostgreSQL together with the consumed offsets (see
``scorer.sink`` and docs/scorer.md).

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from common.rows import TELEMETRY_AGG_SIGNALS, AggRow
from models.features import FeatureWindow

#: Signals of ``telemetry_agg`` (means per 10-minute bucket), in table column order.
AGG_SIGNALS = TELEMETRY_AGG_SIGNALS
AGG_BUCKET_S = 600
_NA = len(AGG_SIGNALS)
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

    # ------------------------------------------------------------------ ingestion
    def accept(self, event_id: str, ts: float, values: dict[str, Any], tolerance_s: float) -> None:
        """Record an accepted (NEW or OUT_OF_ORDER) event: recent ids, newest time, aggregates."""
        recent = self.recent
        recent[event_id] = ts
        if ts > self.last_ts:
            self.last_ts = ts
            if len(recent) > 64:
                self._prune(tolerance_s)
        self._add_to_bucket(ts, values)

    def _prune(self, tolerance_s: float) -> None:
        horizon = self.last_ts - tolerance_s
        self.recent = {k: v for k, v in self.recent.items() if v > horizon}
        if len(self.recent) > MAX_RECENT_IDS:
            keep = sorted(self.recent.items(), key=lambda kv: kv[1])[-MAX_RECENT_IDS:]
            self.recent = dict(keep)
        oldest_open = int((horizon - AGG_BUCKET_S) // AGG_BUCKET_S) * AGG_BUCKET_S
        for bucket in [b for b in self.agg if b < oldest_open and b not in self.dirty_buckets]:
            del self.agg[bucket]

    def _add_to_bucket(self, ts: float, values: dict[str, Any]) -> None:
        bucket = int(ts // AGG_BUCKET_S) * AGG_BUCKET_S
        acc = self.agg.get(bucket)
        if acc is None:
            acc = self.agg[bucket] = [0.0] * (1 + 2 * _NA)
        acc[0] += 1
        for i, name in enumerate(AGG_SIGNALS):
            v = values.get(name)
            if v is not None:
                acc[1 + i] += v
                acc[1 + _NA + i] += 1
        self.dirty_buckets.add(bucket)

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
            }
        )

    @classmethod
    def restore(cls, turbine_id: str, partition: int, window_bytes: bytes, aux: bytes) -> TurbineState:
        data = orjson.loads(aux)
        if data.get("v") != AUX_FORMAT:
            raise ValueError(f"turbine {turbine_id}: unsupported checkpoint aux format {data.get('v')!r}")
        hist = data.get("hist")
        return cls(
            turbine_id=turbine_id,
            site_id=data["site"],
            partition=partition,
            window=FeatureWindow.from_bytes(window_bytes),
            last_ts=-math.inf if data.get("last") is None else float(data["last"]),
            recent={str(k): float(v) for k, v in data.get("recent", {}).items()},
            agg={int(k): list(v) for k, v in data.get("agg", {}).items()},
            history=None if hist is None else HistoryMark(float(hist[0]), float(hist[1]), str(hist[2])),
            last_tier=data.get("tier"),
            late=int(data.get("late", 0)),
            duplicates=int(data.get("dup", 0)),
        )
