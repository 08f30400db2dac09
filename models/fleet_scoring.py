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
``now=None`` judges each item as of its own newest event (the stream path); a sweep passes its as-of.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from models.features import FeatureWindow, feature_matrix
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
    def score(self, items: Sequence[tuple[str, Any]], now: datetime | None = None) -> list[RiskAssessment]:
        """Assessments in the order of ``items``."""
        out: list[RiskAssessment | None] = [None] * len(items)
        full_idx: list[int] = []
        for i, (tid, item) in enumerate(items):
            fitted = self.fitted(tid)
            route = sensor_set_for(fitted)
            if route == FULL and self.full is not None:
                full_idx.append(i)
            elif route == OPERATIONAL and self.operational is not None:
                a = self.operational.assess(tid, item, now, fitted)
                out[i] = self._annotate(a, OPERATIONAL, fitted)
            else:
                out[i] = self._unroutable(tid, item, now, fitted, route)
        for start in range(0, len(full_idx), MAX_BATCH):
            chunk = full_idx[start : start + MAX_BATCH]
            for i, a in zip(chunk, self._score_full([items[i] for i in chunk], now), strict=True):
                out[i] = a
        return [a for a in out if a is not None]

    def _score_full(self, items: Sequence[tuple[str, Any]], now: datetime | None) -> list[RiskAssessment]:
        assert self.full is not None
        bundle = self.full.bundle
        snaps = {i: it.snapshot() for i, (_, it) in enumerate(items) if isinstance(it, FeatureWindow)}
        x = np.empty((len(items), len(bundle.feature_names)))
        win_idx = sorted(snaps)
        if win_idx:
            x[win_idx] = feature_matrix([snaps[i] for i in win_idx], bundle.normal_model)
        dqs: list[dict[str, Any]] = []
        as_ofs: list[datetime | None] = []
        fitted = [self.fitted(tid) for tid, _ in items]
        for i, (_, it) in enumerate(items):
            as_ofs.append(it.as_of)
            if isinstance(it, FeatureWindow):
                dqs.append(it.data_quality(now=now or it.as_of, snapshot=snaps[i], fitted=fitted[i]))
            else:
                x[i] = np.asarray(it.features, dtype=float) if isinstance(it, FeatureRow) else np.nan
                dqs.append(dict(getattr(it, "data_quality", {}) or {}))
        results = self.full.score_features([tid for tid, _ in items], x, as_ofs, dqs)
        op = self.operational
        for i, a in enumerate(results):
            self._annotate(a, FULL, fitted[i])
            if op is not None and i in snaps and self._calibrated(a.turbine_id):
                a.reasons = [r for r in a.reasons if r.get("indicator") not in SIMULATOR_POWER_REASONS]
                own = op.power_reason(a.turbine_id, snaps[i])
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
        a.data_quality["signals_used"] = [] if sensor_set is None else signals_used(sensor_set, fitted)
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
