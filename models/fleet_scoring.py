"""Fleet scoring: each turbine scored by the model that matches the sensors it actually has.

``FleetScorer(full, operational, register).score(items, now)`` routes every ``(turbine_id, window)``
by ``sensor_set_for(spec.fitted_sensors)`` (no register entry or no declared sensors: the full set):

- ``full``: the failure models (``models.scoring.BatchScorer``), batched as today; when the turbine
  has a calibration, the power-curve reason compares it with ITS OWN curve, not the simulator's;
- ``operational``: ``models.operational.OperationalScorer`` against the turbine's calibration;
- none satisfied: ``unknown``, naming the sensors it lacks.

Fitted sensors come from the register; a turbine the register does not declare them for (or that is not
registered) is routed by the signals its calibration found in its history, else by the full set.

Every assessment's ``data_quality`` carries ``sensor_set``, ``signals_used`` and
``calibration_version``, and counts only fitted signals (a sensor that is not fitted is not missing).
``now=None`` judges each item as of its own newest event (the stream path); a sweep passes its as-of
(one for all, or one per item: each turbine as of its site's data time).

Windows are views on a ``models.window_store.WindowStore``: the features of all windows routed to the
full model are gathered in one pass per store (``window_features``), their data quality computed over
arrays (``window_data_quality``); only a calibrated turbine's own power-curve reason reads its window's
snapshot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from models.features import FeatureWindow, window_data_quality, window_features, windows_by_store
from models.operational import OperationalScorer
from models.policy import RiskPolicy
from models.scoring import MAX_BATCH, BatchScorer, FeatureRow, RiskAssessment, unknown_assessment
from models.sensor_sets import FULL, OPERATIONAL, missing_for, sensor_set_for, signals_used

if TYPE_CHECKING:
    from common.fleet import FleetRegister

_HELPER: ThreadPoolExecutor | None = None
_HELPER_LOCK = threading.Lock()


def _helper() -> ThreadPoolExecutor:
    """One helper thread (created on first use) for :meth:`FleetScorer.score_iter`'s overlap."""
    global _HELPER
    with _HELPER_LOCK:
        if _HELPER is None:
            _HELPER = ThreadPoolExecutor(1, thread_name_prefix="fleet-predict")
        return _HELPER


#: Share of a chunk's rows the overlap's helper thread predicts after gathering their features (the
#: scoring thread predicts the rest beside data quality, policy and rows) at the start of a pass; each
#: next chunk's share is then set from the thread CPU the two threads spent on the chunks done
#: (:class:`_Balance`), so that both have the same work (the sweep's critical path is the longer one).
HELPER_PREDICT_SHARE = 0.5


class _Balance:
    """The share of a chunk's rows the helper predicts, so that both threads spend the same CPU.

    Per chunk done: the helper's CPU for the features ``F`` and for its rows' predict, the scoring
    thread's for its rows' predict and for everything else it did since the previous chunk ``R`` (data
    quality, policy, the caller's rows). With ``P`` the predict of a whole chunk (per-row cost of
    both parts), the helper takes ``s`` with ``F + s P = R + (1 - s) P``; the estimate is smoothed
    (half the old share, half the new one). Only the split moves: every row is predicted on its own,
    so the values do not depend on it.
    """

    def __init__(self, share: float) -> None:
        self.share = share
        self._mark: float | None = None  # scoring thread CPU when it last received a chunk

    def received(self) -> None:
        self._mark = time.thread_time()

    def done(self, rows: int, feat_s: float, head_s: float, tail_s: float) -> None:
        """A chunk of ``rows`` rows was assessed: ``head_s`` / ``tail_s`` are the two threads' predicts
        of their rows (together ``P``); the cycle is read from the scoring thread's CPU clock."""
        if self._mark is None or rows <= 0:
            return
        cycle = time.thread_time() - self._mark
        rest = max(0.0, cycle - tail_s)
        whole = head_s + tail_s
        if whole <= 0.0:
            return
        target = min(1.0, max(0.0, (rest + whole - feat_s) / (2.0 * whole)))
        self.share = 0.5 * self.share + 0.5 * target


def chunk_bounds(n: int, size: int, edge: int = 0) -> list[tuple[int, int]]:
    """(start, end) of the chunks of ``n`` items: ``size`` items each; with ``edge`` > 0 the first chunk
    and the last one hold at most ``edge`` items (the last: less than ``2 * edge`` when the rest before it
    is smaller than ``edge``), so that a pipeline over the chunks fills and drains quickly: the first
    chunk's features and the last chunk's rows (and their write) are the parts nothing else overlaps.

    ``chunk_bounds(10_000, 1024, 256)``: 256, nine of 1,024, 272, 256.
    """
    if n <= 0:
        return []
    size = max(1, size)
    if edge <= 0 or edge >= size or n <= 2 * edge:
        return [(start, min(n, start + size)) for start in range(0, n, size)]
    out = [(0, edge)]
    start = edge
    while n - start > size + edge:
        out.append((start, start + size))
        start += size
    if n - start >= 2 * edge:  # what is left before the last chunk (less than ``edge``: in the last)
        out.append((start, n - edge))
        start = n - edge
    out.append((start, n))
    return out


#: Reasons of the full model that compare with the simulator's power curve (replaced when calibrated).
SIMULATOR_POWER_REASONS = frozenset({"power_curve_resid_24h"})


def _as_ofs(items: Sequence[tuple[str, Any]]) -> list[datetime | None]:
    """Each item's ``as_of``: a window's newest event time read for all windows at once (one datetime
    per distinct time: a fleet's readings share their 10-min stamps), another item's own."""
    out: list[datetime | None] = [None] * len(items)
    win_idx = [i for i, (_, it) in enumerate(items) if isinstance(it, FeatureWindow)]
    made: dict[float, datetime] = {}
    if win_idx:
        for store, pos, rows in windows_by_store([items[i][1] for i in win_idx]):
            for p, ts in zip(pos.tolist(), store.last_event_ts(rows).tolist(), strict=True):
                if ts == ts:  # not NaN: the window has an event
                    t = made.get(ts)
                    if t is None:
                        t = made[ts] = datetime.fromtimestamp(ts, UTC)
                    out[win_idx[p]] = t
    for i, (_, it) in enumerate(items):
        if not isinstance(it, FeatureWindow):
            out[i] = it.as_of
    return out


class FleetScorer:
    """Routes turbines to the full or the operational model (see the module docstring)."""

    def __init__(
        self,
        full: BatchScorer | None,
        operational: OperationalScorer | None,
        register: FleetRegister | None = None,
        policy: RiskPolicy | None = None,
    ) -> None:
        self.full = full
        self.operational = operational
        self.register = register
        self._used: dict[tuple[str | None, frozenset[str] | None], list[str]] = {}  # signals_used cache
        self._balance = _Balance(HELPER_PREDICT_SHARE)  # the overlap's split, learnt over the chunks
        self.policy = policy or (
            full.policy
            if full is not None
            else operational.policy
            if operational is not None
            else RiskPolicy()
        )

    # ---------------------------------------------------------------- routing
    def fitted(self, turbine_id: str) -> frozenset[str] | None:
        """The turbine's fitted sensors: from the register when declared there, else the signals its
        calibration found in its history, else None (= every sensor)."""
        spec = self.register.get(turbine_id) if self.register is not None else None
        if spec is not None and spec.fitted_sensors is not None:
            return frozenset(spec.fitted_sensors)
        op = self.operational
        tc = op.calibration.get(turbine_id) if op is not None and op.calibration is not None else None
        return frozenset(tc.signals) if tc is not None else None

    def sensor_set(self, turbine_id: str) -> str | None:
        return sensor_set_for(self.fitted(turbine_id))

    @property
    def calibration_version(self) -> str | None:
        op = self.operational
        return op.calibration.version if op is not None and op.calibration is not None else None

    def _calibrated(self, turbine_id: str) -> bool:
        op = self.operational
        return op is not None and op.calibration is not None and op.calibration.get(turbine_id) is not None

    # ---------------------------------------------------------------- scoring
    def score(
        self,
        items: Sequence[tuple[str, Any]],
        now: datetime | Sequence[datetime | None] | None = None,
    ) -> list[RiskAssessment]:
        """Assessments in the order of ``items``; ``now``: one time for all items, or one per item."""
        out: list[RiskAssessment | None] = [None] * len(items)
        for idx, done in self.score_iter(items, now):
            for i, a in zip(idx, done, strict=True):
                out[i] = a
        return [a for a in out if a is not None]

    def score_iter(
        self,
        items: Sequence[tuple[str, Any]],
        now: datetime | Sequence[datetime | None] | None = None,
        *,
        overlap: bool = False,
        chunk: int | None = None,
    ) -> Iterator[tuple[list[int], list[RiskAssessment]]]:
        """:meth:`score` in parts as they are done: (positions in ``items``, their assessments).

        Parts: the turbines no model takes, those of the operational model, then the full model's in
        chunks of ``chunk`` turbines (default ``MAX_BATCH``; in ``items`` order). ``overlap``: each
        next chunk's features (the numba kernel, which releases the GIL) and the prediction of its first
        rows (a share learnt from both threads' CPU so that they do the same work, :class:`_Balance`;
        compiled trees, also without the GIL) run in a helper thread while this one judges data
        quality, predicts the other rows and applies the policy to the current chunk (the sweep: two
        cores).
        """
        nows: Sequence[datetime | None] = (
            [now] * len(items) if now is None or isinstance(now, datetime) else now
        )
        if len(nows) != len(items):
            raise ValueError(f"{len(nows)} times for {len(items)} items")
        full_idx: list[int] = []
        op_idx: list[int] = []
        unroutable: list[int] = []
        done: list[RiskAssessment] = []
        fitted = [self.fitted(tid) for tid, _ in items]
        for i, (tid, item) in enumerate(items):
            route = sensor_set_for(fitted[i])
            if route == FULL and self.full is not None:
                full_idx.append(i)
            elif route == OPERATIONAL and self.operational is not None:
                op_idx.append(i)
            else:
                unroutable.append(i)
                done.append(self._unroutable(tid, item, nows[i], fitted[i], route))
        if unroutable:
            yield unroutable, done
        if op_idx:
            assert self.operational is not None
            scored = self.operational.assess_many(
                [items[i] for i in op_idx], [nows[i] for i in op_idx], [fitted[i] for i in op_idx]
            )
            yield (
                op_idx,
                [self._annotate(a, OPERATIONAL, fitted[i]) for i, a in zip(op_idx, scored, strict=True)],
            )
        size = max(1, chunk or MAX_BATCH)
        bounds = chunk_bounds(len(full_idx), size, edge=size // 4 if overlap else 0)
        chunks = [full_idx[start:end] for start, end in bounds]
        if not chunks:
            return
        # bounded memory: one chunk's features gathered at a time (two with ``overlap``)
        pool = _helper() if overlap and len(chunks) > 1 else None
        pending: list[Future[tuple[np.ndarray, dict[str, np.ndarray], float, float]]] = []
        balance = self._balance
        try:
            for k, idx in enumerate(chunks):
                part = [items[i] for i in idx]
                if pool is not None:  # this chunk's features (if not yet asked) and the next one's
                    for nxt in chunks[k + len(pending) : k + 2]:
                        pending.append(
                            pool.submit(self._features_and_head, [items[i] for i in nxt], balance.share)
                        )
                dqs = self._full_data_quality(part, [nows[i] for i in idx], [fitted[i] for i in idx])
                if pool is None:
                    x, pred = self._predict_full(part)
                    yield idx, self._assess_full(part, [fitted[i] for i in idx], dqs, x, pred)
                    continue
                # the helper predicted the chunk's first rows, this thread predicts the others
                assert self.full is not None
                x, head, feat_s, head_s = pending.pop(0).result()
                n_head = len(head["probability"])
                t0 = time.thread_time()
                tail = self.full.bundle.predict(x[n_head:])
                tail_s = time.thread_time() - t0
                pred = {name: np.concatenate((head[name], tail[name])) for name in head}
                if k:
                    balance.done(len(x), feat_s, head_s, tail_s)
                balance.received()
                yield idx, self._assess_full(part, [fitted[i] for i in idx], dqs, x, pred)
        finally:  # stopped early: the helper must not go on reading windows the caller may now change
            for f in pending:
                f.cancel()
            wait(pending)

    def _predict_full(self, items: Sequence[tuple[str, Any]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(feature matrix, the bundle's prediction) of one chunk (:meth:`_features_full`)."""
        assert self.full is not None
        x = self._features_full(items)
        return x, self.full.bundle.predict(x)

    def _features_and_head(
        self, items: Sequence[tuple[str, Any]], share: float
    ) -> tuple[np.ndarray, dict[str, np.ndarray], float, float]:
        """(feature matrix, the bundle's prediction of its first ``share`` of rows, this thread's CPU
        seconds for the features, for the prediction): the helper's part of a chunk (each row is
        predicted on its own: the same values as one call)."""
        assert self.full is not None
        t0 = time.thread_time()
        x = self._features_full(items)
        t1 = time.thread_time()
        head = self.full.bundle.predict(x[: int(len(x) * share)])
        return x, head, t1 - t0, time.thread_time() - t1

    def _features_full(self, items: Sequence[tuple[str, Any]]) -> np.ndarray:
        """Feature matrix of one chunk: the windows' features gathered from their stores in one pass,
        a precomputed row's own."""
        assert self.full is not None
        bundle = self.full.bundle
        if all(isinstance(it, FeatureWindow) for _, it in items):  # the usual chunk: no copy
            x = window_features([it for _, it in items], bundle.normal_model)
            if x.shape == (len(items), len(bundle.feature_names)):
                return x
        x = np.empty((len(items), len(bundle.feature_names)))
        win_idx: list[int] = []
        windows: list[FeatureWindow] = []
        for i, (_, it) in enumerate(items):
            if isinstance(it, FeatureWindow):
                win_idx.append(i)
                windows.append(it)
            else:
                x[i] = np.asarray(it.features, dtype=float) if isinstance(it, FeatureRow) else np.nan
        if win_idx:
            x[win_idx] = window_features(windows, bundle.normal_model)
        return x

    def _full_data_quality(
        self,
        items: Sequence[tuple[str, Any]],
        nows: Sequence[datetime | None],
        fitted: Sequence[frozenset[str] | None],
    ) -> list[dict[str, Any]]:
        """Data quality of one chunk: the windows' over their stores' arrays (as of ``nows``, their
        own newest event when None), a precomputed row's own (a copy)."""
        dqs: list[dict[str, Any]] = [{}] * len(items)
        win_idx = [i for i, (_, it) in enumerate(items) if isinstance(it, FeatureWindow)]
        if win_idx:
            win_dq = window_data_quality(
                [items[i][1] for i in win_idx],
                [nows[i] or items[i][1].as_of for i in win_idx],
                fitted=[fitted[i] for i in win_idx],
            )
            for i, dq in zip(win_idx, win_dq, strict=True):
                dqs[i] = dq
        for i, (_, it) in enumerate(items):
            if not isinstance(it, FeatureWindow):
                dqs[i] = dict(getattr(it, "data_quality", {}) or {})
        return dqs

    def _assess_full(
        self,
        items: Sequence[tuple[str, Any]],
        fitted: Sequence[frozenset[str] | None],
        dqs: list[dict[str, Any]],
        x: np.ndarray,
        pred: dict[str, np.ndarray],
    ) -> list[RiskAssessment]:
        assert self.full is not None
        as_ofs = _as_ofs(items)
        results = self.full.assess([tid for tid, _ in items], x, pred, as_ofs, dqs)
        op = self.operational
        for i, a in enumerate(results):
            self._annotate(a, FULL, fitted[i])
            window = items[i][1]
            if op is not None and isinstance(window, FeatureWindow) and self._calibrated(a.turbine_id):
                a.reasons = [r for r in a.reasons if r.get("indicator") not in SIMULATOR_POWER_REASONS]
                own = op.power_reason(a.turbine_id, window.snapshot())
                if own is not None:
                    pos = next(
                        (
                            k
                            for k, r in enumerate(a.reasons)
                            if r.get("indicator") == "failure_probability_7d"
                        ),
                        len(a.reasons),
                    )
                    a.reasons.insert(pos, own)
        return results

    def _annotate(
        self, a: RiskAssessment, sensor_set: str | None, fitted: Collection[str] | None
    ) -> RiskAssessment:
        a.data_quality["sensor_set"] = sensor_set
        key = (sensor_set, None if fitted is None else frozenset(fitted))
        used = self._used.get(key)
        if used is None:
            used = self._used[key] = [] if sensor_set is None else signals_used(sensor_set, fitted)
        a.data_quality["signals_used"] = list(used)  # a copy: the dict is the assessment's own
        a.data_quality["calibration_version"] = (
            self.calibration_version if self._calibrated(a.turbine_id) else None
        )
        return a

    def _unroutable(
        self,
        turbine_id: str,
        item: Any,
        now: datetime | None,
        fitted: frozenset[str] | None,
        route: str | None,
    ) -> RiskAssessment:
        if route is None:
            have = ", ".join(sorted(fitted or ())) or "none"
            needs = ", ".join(missing_for(OPERATIONAL, fitted))
            indicator = "no_sensor_set"
            text = (
                f"its fitted sensors ({have}) satisfy no model: the operational model also needs {needs} "
                "(fleet register, fitted_sensors)"
            )
        elif route == FULL:
            indicator = "no_model_output"
            text = "no production model for the full sensor set (python -m models ensure-default)"
        else:
            indicator = "no_calibration"
            text = "operational scoring is not set up: no calibration loaded (python -m models calibrate)"
        dq: dict[str, Any] = {}
        as_of = getattr(item, "as_of", None)
        if isinstance(item, FeatureWindow):
            dq = item.data_quality(now=now or as_of, fitted=fitted)
        a = unknown_assessment(turbine_id, as_of, indicator, text, dq)
        return self._annotate(a, route, fitted)
