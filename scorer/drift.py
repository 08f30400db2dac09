"""Feature drift of the turbines this worker scores, against the production version's reference.

Decisions (docs/models.md, "Drift monitoring"):

* **What is sampled.** When a turbine scored by the full model has moved ``drift_sample_hours`` of
  event time since its last sample, its feature row is computed once more and kept (the same sampling
  as training, ``sample_every_hours``): a live turbine scored every few seconds does not outweigh a
  replayed one. Rows of warming-up windows (< 120 h in the last 168 h) are not kept; turbines scored by
  the operational model set are not compared (their reference is their own calibration).
* **Bounded memory.** Per site, rows of the last ``drift_window_hours`` of the site's event time, at
  most ``drift_max_rows_per_site`` (float32, ~1 kB a row).
* **Who computes.** Every worker, over the turbines of its own partitions (a site may be split between
  workers: each reports its share, keyed by ``worker_id``). The computation (PSI and KS per feature,
  per site and for the worker's whole population, ``site="*"``) runs every ``drift_interval_s`` in the
  auxiliary thread, never on the event loop; the result goes to the gauges and to the
  ``feature_drift`` table (one compact row per run).
* **No reference, no drift.** A version trained before drift references existed has no
  ``drift_reference.json``: the status is ``not_available`` and says to retrain; nothing is invented.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from common.logging import event
from models.drift import (
    FILENAME,
    SEVERITIES,
    DriftReference,
    DriftReferenceError,
    compare,
    months_of,
    noise_floor,
    severity,
    warm_mask,
)
from models.features import FEATURE_NAMES, NormalModel, window_features
from models.scoring import MAX_BATCH
from scorer.settings import ScorerSettings

if TYPE_CHECKING:
    from models.scoring import RiskAssessment
    from scorer.metrics import ScorerMetrics
    from scorer.state import TurbineState

log = logging.getLogger("scorer.drift")

#: Label of a worker's whole population in the gauges and the summary (site ids never contain "*").
FLEET = "*"
#: Features kept per site in the database summary (all features are in the gauges).
TOP_FEATURES = 10
#: Runs older than this are deleted when a new one is written.
RETENTION = timedelta(days=7)
STATUSES: tuple[str, ...] = ("ok", "moderate", "drift", "insufficient_data", "not_available")


@dataclass
class SiteDrift:
    site_id: str
    rows: int
    status: str  # ok | moderate | drift | insufficient_data
    psi: dict[str, float] = field(default_factory=dict)
    ks: dict[str, float] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)  # chance PSI of as many healthy turbines
    turbines: int = 0

    def excess(self, feature: str) -> float:
        v = self.psi.get(feature, math.nan)
        return max(v - self.floor.get(feature, 0.0), 0.0) if math.isfinite(v) else -1.0

    @property
    def max_excess(self) -> float:
        return max((self.excess(f) for f in self.psi), default=0.0)

    @property
    def max_psi(self) -> float | None:
        vals = [v for v in self.psi.values() if math.isfinite(v)]
        return max(vals) if vals else None

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(SEVERITIES, 0)
        for s in self.severity.values():
            out[s] += 1
        return out

    def summary(self, top: int = TOP_FEATURES) -> dict[str, Any]:
        ranked = sorted((f for f, v in self.psi.items() if math.isfinite(v)), key=self.excess, reverse=True)
        keep = [f for f in ranked if self.severity[f] != "none"] or ranked[:top]
        keep = keep[: max(top, sum(1 for f in ranked if self.severity[f] == "significant"))]
        mx = self.max_psi
        return {
            "site_id": self.site_id,
            "rows": self.rows,
            "turbines": self.turbines,
            "status": self.status,
            "max_psi": None if mx is None else round(mx, 4),
            "severities": self.counts(),
            "features": [
                {
                    "feature": f,
                    "psi": round(self.psi[f], 4),
                    "ks": None if not math.isfinite(self.ks[f]) else round(self.ks[f], 4),
                    "chance_psi": round(self.floor.get(f, 0.0), 4),
                    "severity": self.severity[f],
                }
                for f in keep
            ],
        }


@dataclass
class DriftReport:
    computed_at: datetime
    model_version: str | None
    status: str
    detail: str
    window_rows: int
    sites: list[SiteDrift] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"sites": [s.summary() for s in self.sites]}


def _status(severities: Sequence[str]) -> str:
    if "significant" in severities:
        return "drift"
    return "moderate" if "moderate" in severities else "ok"


class DriftMonitor:
    """Rolling sample of scored feature rows per site, and the periodic comparison with the reference."""

    def __init__(self, settings: ScorerSettings, metrics: ScorerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._lock = threading.Lock()
        self._rows: dict[str, deque[tuple[float, str, np.ndarray]]] = {}
        self._newest: dict[str, float] = {}
        self._last_sample: dict[str, float] = {}
        self.reference: DriftReference | None = None
        self.reference_version: str | None = None
        self.reference_problem: str | None = None
        self.last: DriftReport | None = None

    # ------------------------------------------------------------------ sampling (compute thread)
    def observe(
        self,
        scored: Sequence[tuple[TurbineState, RiskAssessment]],
        normal_model: NormalModel | None,
    ) -> int:
        """Keep the feature rows of the turbines due for a sample; returns how many were kept.

        Never raises (a drift problem must not stop the scoring): a failure is logged.
        """
        try:
            return self._observe(scored, normal_model)
        except Exception as exc:
            event(
                log, "drift sampling failed", logging.ERROR, error=str(exc)[:300], exc_type=type(exc).__name__
            )
            return 0

    def _observe(
        self, scored: Sequence[tuple[TurbineState, RiskAssessment]], normal_model: NormalModel | None
    ) -> int:
        every = self.settings.drift_sample_hours * 3600.0
        due: list[tuple[TurbineState, float]] = []
        for st, a in scored:
            if a.data_quality.get("sensor_set", "full") != "full":
                continue
            as_of = st.window.as_of
            if as_of is None:
                continue
            ts = as_of.timestamp()
            last = self._last_sample.get(st.turbine_id)
            if last is None or ts - last >= every or ts < last:
                due.append((st, ts))
        if not due:
            return 0
        window = self.settings.drift_window_hours * 3600.0
        kept = 0
        # In chunks of MAX_BATCH turbines, as the scoring does: a batch that touches the whole fleet
        # would otherwise build one float64 matrix of every row (+ the kernel's temporaries) at once.
        for start in range(0, len(due), MAX_BATCH):
            kept += self._keep(due[start : start + MAX_BATCH], normal_model, window)
        return kept

    def _keep(
        self, due: Sequence[tuple[TurbineState, float]], normal_model: NormalModel | None, window: float
    ) -> int:
        x = window_features([st.window for st, _ in due], normal_model)  # one gather per store
        warm = warm_mask(x, FEATURE_NAMES)
        kept = 0
        with self._lock:
            for (st, ts), row, ok in zip(due, x, warm, strict=True):
                self._last_sample[st.turbine_id] = ts
                if not ok:
                    continue
                rows = self._rows.get(st.site_id)
                if rows is None:
                    rows = self._rows[st.site_id] = deque(maxlen=self.settings.drift_max_rows_per_site)
                rows.append((ts, st.turbine_id, row.astype(np.float32)))
                newest = max(self._newest.get(st.site_id, ts), ts)
                self._newest[st.site_id] = newest
                while rows and rows[0][0] < newest - window:
                    rows.popleft()
                kept += 1
        return kept

    def sample(self) -> dict[str, tuple[np.ndarray, np.ndarray, set[str]]]:
        """Copy of the window per site: (rows x FEATURE_NAMES, event times (epoch s), turbines)."""
        window = self.settings.drift_window_hours * 3600.0
        out: dict[str, tuple[np.ndarray, np.ndarray, set[str]]] = {}
        with self._lock:
            for site, rows in self._rows.items():
                newest = self._newest.get(site, 0.0)
                kept = [(ts, tid, r) for ts, tid, r in rows if ts >= newest - window]
                if kept:
                    out[site] = (
                        np.stack([r for _, _, r in kept]).astype(float),
                        np.asarray([ts for ts, _, _ in kept], dtype=float),
                        {tid for _, tid, _ in kept},
                    )
        return out

    # ------------------------------------------------------------------ reference (aux thread)
    def load_reference(self, version: str | None, version_dir: Path | None) -> None:
        """Read ``drift_reference.json`` of the production version (once per version)."""
        if version == self.reference_version and (self.reference is not None or self.reference_problem):
            return
        self.reference, self.reference_version, self.reference_problem = None, version, None
        if version is None or version_dir is None:
            self.reference_problem = "no production model loaded"
            return
        path = version_dir / FILENAME
        if not path.is_file():
            self.reference_problem = (
                f"not available: version {version} has no reference ({path} missing: trained before "
                "drift references, or on too short a history); retrain (python -m models train)"
            )
            event(log, "drift reference missing", logging.WARNING, version=version, path=str(path))
            return
        try:
            self.reference = DriftReference.from_json(path.read_bytes(), str(path))
        except (OSError, DriftReferenceError) as exc:
            self.reference_problem = f"not available: {exc}"[:500]
            event(log, "drift reference unusable", logging.ERROR, version=version, error=str(exc)[:300])
            return
        event(log, "drift reference loaded", version=version, features=len(self.reference.features))

    # ------------------------------------------------------------------ computation (aux thread)
    def compute(self, now: datetime | None = None) -> DriftReport:
        s = self.settings
        now = now or datetime.now(UTC)
        samples = self.sample()
        total = sum(len(t) for _, t, _ in samples.values())
        ref = self.reference
        if ref is None:
            report = DriftReport(
                now, self.reference_version, "not_available", self.reference_problem or "not available", total
            )
            self.last = report
            return report
        names = list(FEATURE_NAMES)
        groups = dict(samples)
        if len(samples) > 1 and total:
            groups[FLEET] = (
                np.concatenate([x for x, _, _ in samples.values()]),
                np.concatenate([t for _, t, _ in samples.values()]),
                set().union(*(tids for _, _, tids in samples.values())),
            )
        elif samples:
            only = next(iter(samples.values()))
            groups[FLEET] = only
        sites: list[SiteDrift] = []
        floors: dict[int, np.ndarray] = {}
        for site, (x, ts, tids) in sorted(groups.items()):
            n = len(ts)
            if n < s.drift_min_rows:
                sites.append(SiteDrift(site, n, "insufficient_data", turbines=len(tids)))
                continue
            p, k = compare(ref, x, names, months_of(ts))
            if len(tids) not in floors:
                floors[len(tids)] = noise_floor(ref, len(tids))
            floor = floors[len(tids)]
            excess = np.where(np.isfinite(p), np.maximum(p - floor, 0.0), np.nan)
            sev = [severity(v, s.drift_psi_moderate, s.drift_psi_significant) for v in excess]
            fnames = ref.names
            sites.append(
                SiteDrift(
                    site,
                    n,
                    _status(sev),
                    dict(zip(fnames, p.tolist(), strict=True)),
                    dict(zip(fnames, k.tolist(), strict=True)),
                    dict(zip(fnames, sev, strict=True)),
                    dict(zip(fnames, floor.tolist(), strict=True)),
                    len(tids),
                )
            )
        judged = [x for x in sites if x.status != "insufficient_data"]
        if not judged:
            status = "insufficient_data"
            detail = (
                f"{total} sampled rows; a site needs {s.drift_min_rows} (one per turbine per "
                f"{s.drift_sample_hours:g} h of event time, windows warmer than 120 h)"
            )
        else:
            status = _status([x.status.replace("drift", "significant") for x in judged])
            worst = max(judged, key=lambda x: x.max_excess)
            top = max(worst.psi, key=worst.excess)
            n_sig = sum(x.counts()["significant"] for x in judged if x.site_id != FLEET)
            detail = (
                f"largest drift: {top} at site {worst.site_id}, PSI {worst.psi[top]:.2f} "
                f"(chance level for {worst.turbines} turbines {worst.floor.get(top, 0.0):.2f}); "
                f"{n_sig} significant site-features"
            )
        report = DriftReport(now, self.reference_version, status, detail, total, sites)
        self.last = report
        return report

    def export(self, report: DriftReport) -> None:
        """Set the gauges from a report (labels of sites no longer sampled are dropped)."""
        m = self.metrics
        if m is None:
            return
        m.feature_drift_psi.clear()
        m.feature_drift_max_psi.clear()
        m.feature_drift_features.clear()
        m.feature_drift_rows.clear()
        m.feature_drift_reference.set(0 if report.status == "not_available" else 1)
        m.feature_drift_last_run.set(report.computed_at.timestamp())
        for site in report.sites:
            m.feature_drift_rows.labels(site.site_id).set(site.rows)
            if site.status == "insufficient_data":
                continue
            for f, v in site.psi.items():
                if math.isfinite(v):
                    m.feature_drift_psi.labels(f, site.site_id).set(v)
            mx = site.max_psi
            if mx is not None:
                m.feature_drift_max_psi.labels(site.site_id).set(mx)
            for sev, n in site.counts().items():
                m.feature_drift_features.labels(site.site_id, sev).set(n)

    async def run(self, runtime: Any) -> DriftReport | None:
        """One periodic run: reference of the production version, computation, gauges, database row."""
        holder = runtime.holder
        bundle = getattr(holder.scorer, "bundle", None) if holder.scorer is not None else None
        version = getattr(bundle, "version", None)
        vdir = getattr(bundle, "path", None)
        await runtime._in(runtime.aux, self.load_reference, version, vdir)
        t0 = time.perf_counter()
        report = await runtime._in(runtime.aux, self.compute)
        self.export(report)
        await runtime._in(
            runtime.aux, write_report, self.settings.database_url, self.settings.worker_id, report
        )
        event(
            log,
            "feature drift computed",
            status=report.status,
            detail=report.detail,
            rows=report.window_rows,
            sites=len(report.sites),
            model_version=report.model_version,
            duration_ms=round((time.perf_counter() - t0) * 1000, 1),
        )
        return report


def write_report(database_url: str, worker_id: str, report: DriftReport) -> None:
    """Insert one run into ``feature_drift`` and delete runs older than ``RETENTION``."""
    from common.db import connect

    summary = orjson.dumps(report.summary(), option=orjson.OPT_SERIALIZE_NUMPY).decode()
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO feature_drift (computed_at, worker_id, model_version, status, detail, window_rows, "
            "summary) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb) "
            "ON CONFLICT (worker_id, computed_at) DO NOTHING",
            (
                report.computed_at,
                worker_id,
                report.model_version,
                report.status,
                report.detail[:1000],
                report.window_rows,
                summary,
            ),
        )
        conn.execute("DELETE FROM feature_drift WHERE computed_at < %s", (report.computed_at - RETENTION,))
        conn.commit()
