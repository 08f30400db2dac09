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

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from models.features import FeatureWindow, window_data_quality, window_features
from models.operational import OperationalScorer
from models.policy import RiskPolicy
from models.scoring import MAX_BATCH, BatchScorer, FeatureRow, RiskAssessment, unknown_assessment
from models.sensor_sets import FULL, OPERATIONAL, missing_for, sensor_set_for, signals_used

if TYPE_CHECKING:
    from common.fleet import FleetRegister

#: Reasons of the full model that compare with the simulator's power curve (replaced when calibrated).
SIMULATOR_POWER_REASONS = frozenset({"power_curve_resid_24h"})


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
        nows: Sequence[datetime | None] = (
            [now] * len(items) if now is None or isinstance(now, datetime) else now
        )
        if len(nows) != len(items):
            raise ValueError(f"{len(nows)} times for {len(items)} items")
        out: list[RiskAssessment | None] = [None] * len(items)
        full_idx: list[int] = []
        op_idx: list[int] = []
        fitted = [self.fitted(tid) for tid, _ in items]
        for i, (tid, item) in enumerate(items):
            route = sensor_set_for(fitted[i])
            if route == FULL and self.full is not None:
                full_idx.append(i)
            elif route == OPERATIONAL and self.operational is not None:
                op_idx.append(i)
            else:
                out[i] = self._unroutable(tid, item, nows[i], fitted[i], route)
        if op_idx:
            assert self.operational is not None
            done = self.operational.assess_many(
                [items[i] for i in op_idx], [nows[i] for i in op_idx], [fitted[i] for i in op_idx]
            )
            for i, a in zip(op_idx, done, strict=True):
                out[i] = self._annotate(a, OPERATIONAL, fitted[i])
        for start in range(0, len(full_idx), MAX_BATCH):  # bounds the memory of the feature gather
            chunk = full_idx[start : start + MAX_BATCH]
            scored = self._score_full(
                [items[i] for i in chunk], [nows[i] for i in chunk], [fitted[i] for i in chunk]
            )
            for i, a in zip(chunk, scored, strict=True):
                out[i] = a
        return [a for a in out if a is not None]

    def _score_full(
        self,
        items: Sequence[tuple[str, Any]],
        nows: Sequence[datetime | None],
        fitted: Sequence[frozenset[str] | None],
    ) -> list[RiskAssessment]:
        assert self.full is not None
        bundle = self.full.bundle
        win_idx = [i for i, (_, it) in enumerate(items) if isinstance(it, FeatureWindow)]
        windows: list[FeatureWindow] = [items[i][1] for i in win_idx]
        x = np.empty((len(items), len(bundle.feature_names)))
        dqs: list[dict[str, Any]] = [{}] * len(items)
        as_ofs: list[datetime | None] = [it.as_of for _, it in items]
        if win_idx:
            x[win_idx] = window_features(windows, bundle.normal_model)
            win_dq = window_data_quality(
                windows,
                [nows[i] or as_ofs[i] for i in win_idx],
                fitted=[fitted[i] for i in win_idx],
            )
            for i, dq in zip(win_idx, win_dq, strict=True):
                dqs[i] = dq
        is_window = set(win_idx)
        for i, (_, it) in enumerate(items):
            if i not in is_window:
                x[i] = np.asarray(it.features, dtype=float) if isinstance(it, FeatureRow) else np.nan
                dqs[i] = dict(getattr(it, "data_quality", {}) or {})
        results = self.full.score_features([tid for tid, _ in items], x, as_ofs, dqs)
        op = self.operational
        for i, a in enumerate(results):
            self._annotate(a, FULL, fitted[i])
            if op is not None and i in is_window and self._calibrated(a.turbine_id):
                a.reasons = [r for r in a.reasons if r.get("indicator") not in SIMULATOR_POWER_REASONS]
                own = op.power_reason(a.turbine_id, items[i][1].snapshot())
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
